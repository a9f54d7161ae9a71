"""What each part may import (ARCHITECTURE.md), checked rather than hoped for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Imports every vodemu module with `shared` made unimportable: the emulator is a test oracle, and a bug it
# shared with the product would pass every test.
_IMPORT_EMULATOR_WITHOUT_SHARED = """
import importlib, pkgutil, sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name == "shared" or name.startswith("shared."):
            raise ImportError(f"the emulator imported {name}")

sys.meta_path.insert(0, Refuse())
import vodemu
names = [m.name for m in pkgutil.walk_packages(vodemu.__path__, "vodemu.")]
for name in names:
    importlib.import_module(name)
assert not any(m == "shared" or m.startswith("shared.") for m in sys.modules)
print(len(names))
"""


def test_the_emulator_imports_nothing_from_shared(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _IMPORT_EMULATOR_WITHOUT_SHARED],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) >= 10  # every module was imported, not an empty package


def test_nothing_edits_sys_path() -> None:
    # Packages are installed (pyproject.toml); a tool that edits sys.path imports what it should not.
    sources = [p for part in ("shared", "functions", "scripts") for p in (ROOT / part).rglob("*.py")]
    assert len(sources) > 50
    assert [str(p.relative_to(ROOT)) for p in sources if "sys.path" in p.read_text()] == []
