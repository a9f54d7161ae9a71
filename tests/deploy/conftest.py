"""Deploy fixtures: CPython 3.10 (SCF's runtime), another interpreter to build with, and the bundles that
`scf deploy` would ship, made by running the deploy config's own build hook (`make deploy-build`)."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy import scf_framework
from vodtesting.ci import missing

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "serverless.yml"
# A deployer who has set every setting the config uses: the ones no function can do without, and the others
# empty (their defaults).
REQUIRED_SETTINGS = {
    "VOD_SECRET_ID": "AKIDsign-upload-only",
    "VOD_SECRET_KEY": "sign-key-0123456789",
    "VOD_CONTEXT_KEY": "context-key-0123456789abcdef-0123456789",
    "AUTH_JWT_SECRET": "jwt-secret-0123456789abcdef-0123456789",
    "VOD_CALLBACK_SIGN_KEY": "Key123abc0123456789",
    "DATABASE_URL": "postgresql://vod_events@db.internal/vod",
    "UPLOADS_DATABASE_URL": "postgresql://vod_reader@db.internal/vod",
    "VOD_API_SECRET_ID": "AKIDapi",
    "VOD_API_SECRET_KEY": "api-key-0123456789",
}
DEPLOYER_ENV = {**dict.fromkeys(scf_framework.env_sources(CONFIG), ""), **REQUIRED_SETTINGS}


@pytest.fixture(scope="session")
def python310() -> str:
    found = subprocess.run([str(ROOT / "scripts" / "find-python"), "3.10"], capture_output=True, text=True, check=False)
    if found.returncode != 0:
        missing("a CPython 3.10 (SCF's runtime)", found.stderr.strip())
    return found.stdout.strip()


def _version(python: str) -> tuple[int, int] | None:
    try:
        probe = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True, check=False
        )
    except OSError:  # no such program: a candidate this machine does not have
        return None
    return tuple(map(int, probe.stdout.split())) if probe.returncode == 0 else None  # type: ignore[return-value]


@pytest.fixture(scope="session")
def other_python() -> str:
    """A CPython >= 3.11 to build with: what a developer's machine often has instead of 3.10."""
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [
        sys.executable,
        "/usr/bin/python3",
        *sorted(glob.glob(f"{pyenv}/versions/3.1[1-9]*/bin/python3")),
        "python3.13",
        "python3.12",
        "python3.11",
    ]
    for candidate in candidates:
        version = _version(candidate)
        if version is not None and version >= (3, 11):
            return candidate
    missing("a Python >= 3.11 besides 3.10", "none found to show that a non-3.10 build works")


@pytest.fixture(scope="session")
def uploaded() -> scf_framework.Files:
    """What `scf deploy` uploads for serverless.yml: its hook (`make deploy-build`) runs first, as the CLI runs it."""
    config = scf_framework.load_config(CONFIG, environ=DEPLOYER_ENV)
    return scf_framework.cli_upload(CONFIG, config["inputs"]["src"], environ=DEPLOYER_ENV)


@pytest.fixture(scope="session")
def bundles(uploaded: scf_framework.Files) -> Path:
    """build/, as the hook left it (requested after `uploaded`, so the build has run)."""
    return ROOT / "build"
