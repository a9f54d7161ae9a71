"""What each part may import (ARCHITECTURE.md), checked rather than hoped for."""

from __future__ import annotations

import re
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
    editing = [str(p.relative_to(ROOT)) for p in sources if "sys.path" in p.read_text()]
    # but the harness, which puts back what functions-framework adds as it loads the harness file
    assert editing == ["scripts/vodlocal/harness.py"]
    assert "sys.path[:] = path" in (ROOT / editing[0]).read_text()


def test_every_log_event_the_functions_write_is_in_the_readmes_table() -> None:
    # An operator sets alerts from that table: an event missing from it is one nobody watches.
    sources = "".join(p.read_text() for part in ("shared", "functions") for p in (ROOT / part).rglob("*.py"))
    # Each call's first text that is an event's name (its level may be an expression holding other texts)
    calls = [re.search(r'f?"(request|[a-z_]+\.[a-z_.{}]+)"', call[:300]) for call in sources.split("log_event(")[1:]]
    written = {found[1] for found in calls if found} - {"event.name", "pull.{call}_failed"}  # the docstring's
    written |= {f"pull.{call}_failed" for call in ("pull", "confirm")}  # log_event(ERROR, f"pull.{call}_failed")
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("**Logs.**") : readme.index("## Deploy")]
    documented = set(re.findall(r"^\| ((?:`[a-z_.]+`(?:, )?)+) \|", table, re.MULTILINE))
    named = {name for cell in documented for name in re.findall(r"`([a-z_.]+)`", cell)}
    assert len(written) > 15 and written == named
