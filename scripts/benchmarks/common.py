"""Timing helpers shared by the benchmark sections: best-of-N and median-of-processes."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def per_call(fn: Callable[[], object], number: int = 5000, repeat: int = 7) -> float:
    """Seconds per call: the best of `repeat` runs (the least disturbed by the rest of the machine)."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def process_seconds(code: str, env: Mapping[str, str], runs: int = 15, cwd: Path | None = None) -> float:
    """Median wall time of a fresh `python -I -S -c code` (isolated: no site-packages, no user env)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-c", code], env=dict(env), cwd=cwd, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def build_bundle(name: str, out: Path) -> Path:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build"), name, "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return out / f"{name}.zip"
