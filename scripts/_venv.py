"""Imported first by the scripts that need the project's dependencies: started by another Python (the
shebang's python3), a script re-runs itself under .venv/bin/python, so nobody has to activate the venv.
`make setup` (or `make serve`/`make test`) creates the venv."""

from __future__ import annotations

import os
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parent.parent / ".venv"

if (VENV / "bin" / "python").exists() and Path(sys.prefix).resolve() != VENV.resolve():
    os.execv(VENV / "bin" / "python", [str(VENV / "bin" / "python"), sys.argv[0], *sys.argv[1:]])
