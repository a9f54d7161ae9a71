"""Run a function package the way SCF does: a fresh CPython 3.10, only the package on sys.path."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Runs inside the fresh interpreter: note which environment variables the function's own code (index,
# shared.*) asks for, import index.py, optionally invoke it, report as one JSON line.
INVOKE = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
reads = set()

class Environ(dict):
    def _note(self, key):
        caller = sys._getframe(2).f_globals.get("__name__", "")
        if caller == "index" or caller.startswith("shared"):
            reads.add(key)
    def get(self, key, default=None):
        self._note(key)
        return super().get(key, default)
    def __getitem__(self, key):
        self._note(key)
        return super().__getitem__(key)
    def __contains__(self, key):
        self._note(key)
        return super().__contains__(key)

os.environ = Environ(os.environ)
import index
given = sys.argv[2]
event = json.loads(open(given[1:]).read() if given.startswith("@") else given)
result = index.main_handler(event, json.loads(sys.argv[3])) if event else None
report = {"result": result, "reads": sorted(reads), "version": list(sys.version_info[:3]),
          "modules": sorted({m.split(".")[0] for m in sys.modules}),
          "files": {m: getattr(sys.modules[m], "__file__", None) or "" for m in ("jwt", "tencentcloud")
                    if m in sys.modules}}
# This process's own high-water mark (getrusage's ru_maxrss would be the parent's, pytest's, when that was larger)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({**report, "peak_kib": peak}))
"""


@dataclass(frozen=True)
class Run:
    returncode: int
    stderr: str
    report: dict[str, Any]


def run_package(
    python: str, code: Path, env: dict[str, str], event: Any = None, *, cwd: Path, context: dict[str, Any] | None = None
) -> Run:
    # -I -S: no site-packages, no user site, no PYTHON* variables: only the stdlib and the package.
    context = context or {"request_id": "bundle-test", "time_limit_in_ms": 5000}
    given = json.dumps(event)
    if len(given) > 100_000:  # longer than one argument may be (Linux: 128 KiB): read from a file
        (cwd / "event.json").write_text(given)
        given = f"@{cwd / 'event.json'}"
    proc = subprocess.run(
        [python, "-I", "-S", "-c", INVOKE, str(code), given, json.dumps(context)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    return Run(proc.returncode, proc.stderr, report)
