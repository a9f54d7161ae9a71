"""The repository's scripts without a .py name (scripts/build, scripts/vendor-sdk): loaded as modules, or run."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

from tests.checkout import ROOT


def load_script(name: str) -> ModuleType:
    module_name = name.replace("-", "_")
    loader = importlib.machinery.SourceFileLoader(module_name, str(ROOT / "scripts" / name))
    spec = importlib.util.spec_from_loader(module_name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def build(
    *args: str | Path, python: str = sys.executable, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """scripts/build run by `python` (its output kept, its exit status for the caller to check)."""
    command = [python, str(ROOT / "scripts" / "build"), *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
