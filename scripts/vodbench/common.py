"""Timing helpers shared by the benchmark sections: best-of-N and median-of-processes."""

from __future__ import annotations

import functools
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from vodlocal.localstack import loopback_only

ROOT = Path(__file__).resolve().parents[2]

# The benchmark's own dev settings (never real credentials): what a sign function (and the stack) reads.
SECRET_ID = "AKIDbench000000000000000000000000000"
SECRET_KEY = "benchSecretKey0123456789abcdefABCD"
JWT_SECRET = "bench-jwt-secret-0123456789-abcdefghijklmnop"
CONTEXT_KEY = "bench-context-key-0123456789-abcdefgh"
SUB_APP_ID = "1500000001"
SIGN_ENV = {
    "TENCENTCLOUD_SECRET_ID": SECRET_ID,
    "TENCENTCLOUD_SECRET_KEY": SECRET_KEY,
    "VOD_SUB_APP_ID": SUB_APP_ID,
    "AUTH_JWT_SECRET": JWT_SECRET,
    "VOD_CONTEXT_KEY": CONTEXT_KEY,
}


@contextmanager
def quiet_servers() -> Iterator[None]:
    """The in-process servers' request logs (werkzeug's, the emulator's, the uploader's) kept off the output."""
    loggers = {name: logging.getLogger(name).level for name in ("werkzeug", "vodemu", "vodupload")}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in loggers.items():
            logging.getLogger(name).setLevel(level)


@contextmanager
def environment(values: Mapping[str, str] | None = None) -> Iterator[None]:
    """For the duration: `values` set, no proxy variables (loopback traffic must never go through
    one), NO_PROXY naming the loopback hosts; the environment is restored afterwards."""
    saved = dict(os.environ)
    loopback_only(os.environ)
    os.environ.update(values or {})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def goal(value: float, limit: float, *, at_least: bool = False, unit: str = "×", places: int = 2) -> str:
    """A target and its verdict from one number, as its row prints it (`places` after the point): '≤ ×2 (not yet
    met)'. (Judged unrounded, ×0.504 would print as ×0.50 and be 'not yet met'.)"""
    value = round(value, places)
    met = value >= limit if at_least else value <= limit
    bound = f"{unit}{limit:g}" if unit == "×" else f"{limit:g} {unit}"
    return f"{'≥' if at_least else '≤'} {bound} ({'met' if met else 'not yet met'})"


@dataclass(frozen=True)
class Figure:
    """One row of the table `vod-bench` ends with (the README's): what, its result, the baseline it is set
    against (measured in the same run), and its target with the verdict."""

    name: str
    result: str
    baseline: str = "—"
    target: str = "—"


@dataclass
class Section:
    """What a section measured: detail lines (label, text), and its rows of the table."""

    lines: list[tuple[str, str]]
    figures: list[Figure]


def markdown_table(figures: list[Figure]) -> str:
    rows = [("figure", "result", "baseline (same run)", "target"), ("---",) * 4]
    rows += [(f.name, f.result, f.baseline, f.target) for f in figures]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def per_call(fns: Mapping[str, Callable[[], object]], number: int = 5000, repeat: int = 7) -> dict[str, float]:
    """Seconds per call of each of `fns` (label -> function): the best of `repeat` runs (the least disturbed by
    the rest of the machine), taken in turns, so that a busier moment weighs on all of them alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for label, fn in fns.items():
            best[label] = min(best[label], timeit.timeit(fn, number=number) / number)
    return best


K = TypeVar("K")  # what a launch is labelled with


@dataclass(frozen=True)
class Launch:
    """One fresh interpreter's job: `code`, with exactly `env`, run in `cwd`."""

    code: str
    env: Mapping[str, str]
    cwd: Path | None = None


@functools.cache
def bundle_python() -> str:
    """SCF's CPython 3.10, which the bundles are built for (their bytecode its) and timed on: as scripts/build
    finds it (BUILD_PYTHON, else this interpreter if it is one, else scripts/find-python 3.10)."""
    if os.environ.get("BUILD_PYTHON"):
        return os.environ["BUILD_PYTHON"]
    if sys.version_info[:2] == (3, 10) and sys.implementation.name == "cpython":
        return sys.executable
    found = subprocess.run([str(ROOT / "scripts" / "find-python"), "3.10"], capture_output=True, check=True)
    return found.stdout.decode().strip()


def process_seconds(launches: Mapping[K, Launch], runs: int = 31) -> dict[K, float]:
    """Median wall time of a fresh `python3.10 -B -E -s -S -c code` for each of `launches` (label -> launch): no
    site-packages, no PYTHON* variables, no user site, only the stdlib and the current directory, where
    `import index` finds a bundle as SCF does, and no bytecode written (the bundle's is what SCF has). Run in turns
    (one of each, `runs` times), so that a busier moment of the machine weighs on all of them alike and their
    ratios hold."""
    times: dict[K, list[float]] = {label: [] for label in launches}
    for _ in range(runs):
        for label, launch in launches.items():
            started = time.perf_counter()
            subprocess.run(
                [bundle_python(), "-B", "-E", "-s", "-S", "-c", launch.code],
                env=dict(launch.env),
                cwd=launch.cwd,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            times[label].append(time.perf_counter() - started)
    return {label: statistics.median(seconds) for label, seconds in times.items()}


@dataclass(frozen=True)
class ColdStart:
    bare: float  # seconds: a fresh interpreter that imports nothing
    cold: float  # seconds: the same, importing the bundle's index.py (settings loaded, as in SCF)
    bundle_bytes: int
    layers: dict[str, float]  # label -> seconds of each layer's code (an import, or an import and a request)


@dataclass(frozen=True)
class Bundle:
    """A function's deploy bundle to time: its settings, and `layers` (label -> code: imports, or a first
    request), timed the same way as its import, to show where the time goes."""

    name: str
    env: Mapping[str, str]
    layers: Mapping[str, str] = field(default_factory=dict)


def bundle_cold_starts(bundles: Sequence[Bundle]) -> list[ColdStart]:
    """Build each function's deploy bundle, unpack it, and time its import as SCF would (no dev venv); the
    bundles' launches all in turns, so that ratios between bundles hold as well as within one."""
    with tempfile.TemporaryDirectory() as tmp:
        launches: dict[tuple[int, str], Launch] = {}
        sizes = []
        for index, bundle in enumerate(bundles):
            out = Path(tmp) / str(index)
            subprocess.run(
                [sys.executable, str(ROOT / "scripts" / "build"), bundle.name, "--out", str(out)],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,  # shown if the build fails (no CPython 3.10, say): CalledProcessError.stderr
            )
            archive, code = out / f"{bundle.name}.zip", out / "code"
            sizes.append(archive.stat().st_size)
            zipfile.ZipFile(archive).extractall(code)
            env = {"PATH": os.environ.get("PATH", ""), **bundle.env}
            codes = {_BARE: "import sys", _COLD: "import index", **bundle.layers}
            launches.update({(index, label): Launch(text, env, code) for label, text in codes.items()})
        seconds = process_seconds(launches)
    starts = []
    for index, size in enumerate(sizes):
        mine = {label: value for (owner, label), value in seconds.items() if owner == index}
        starts.append(ColdStart(mine.pop(_BARE), mine.pop(_COLD), size, mine))
    return starts


_BARE, _COLD = "\0bare", "\0cold"  # labels no layer can have


def bundle_cold_start(name: str, env: Mapping[str, str], layers: Mapping[str, str] | None = None) -> ColdStart:
    """One bundle's cold start (`bundle_cold_starts`)."""
    return bundle_cold_starts([Bundle(name, env, layers or {})])[0]


def on_memory(path: str) -> bool:
    """Whether `path` is on a filesystem in memory (tmpfs), where fsync does nothing: no baseline there is durable."""
    try:
        with open("/proc/mounts") as mounts:
            points = [line.split()[1:3] for line in mounts]
    except OSError:  # not Linux: not known, not said
        return False
    real = os.path.realpath(path)
    # The longest mount point above it; of several on one point, the last mounted (the one in effect)
    under = [
        (len(point), i, kind)
        for i, (point, kind) in enumerate(points)
        if f"{real}/".startswith(point.rstrip("/") + "/")
    ]
    return max(under)[2] in ("tmpfs", "ramfs")


def cold_start_rows(name: str, start: ColdStart, note: str) -> list[tuple[str, str]]:
    def over(seconds: float) -> str:
        return f"{(seconds - start.bare) * 1e3:8.1f} ms"

    return [
        ("bare interpreter start (python3.10 -B -E -s -S)", f"{start.bare * 1e3:8.1f} ms"),
        *((f"  of which: {label}, over bare", over(seconds)) for label, seconds in start.layers.items()),
        (
            f"cold import of the {name} bundle over bare",
            f"{over(start.cold)}  (×{start.cold / start.bare:.2f} of bare; {note})",
        ),
        (f"{name} bundle, zipped", f"{start.bundle_bytes / 1024:8.1f} KiB"),
    ]


def bundle_figure(name: str, start: ColdStart, note: str = "", goal_text: str = "—") -> Figure:
    return Figure(
        f"{name} bundle{note}",
        f"{(start.cold - start.bare) * 1e3:.0f} ms cold import over bare; {start.bundle_bytes / 1024:,.0f} KiB zipped",
        f"a bare interpreter ({start.bare * 1e3:.1f} ms)",
        goal_text,
    )
