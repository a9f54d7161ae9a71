"""Deploy bundles work on their own: unpacked into an empty directory, nothing else on sys.path."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CALLBACK_SIGN_KEY, JWT_SECRET, SECRET_ID, SECRET_KEY, SIGN_ENV
from tests.scf import http_event, load_event

ROOT = Path(__file__).resolve().parents[2]

# Runs inside the fresh interpreter: import the bundle's index.py, optionally invoke it, report.
INVOKE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import index
event = json.loads(sys.argv[2])
result = index.main_handler(event, {"request_id": "bundle-test"}) if event else None
print(json.dumps({"result": result, "modules": sorted({m.split(".")[0] for m in sys.modules}),
                  "files": {m: getattr(sys.modules[m], "__file__", None) or "" for m in ("jwt", "tencentcloud")
                            if m in sys.modules}}))
"""


def _sign_event() -> dict[str, Any]:
    import jwt

    token = jwt.encode({"sub": "bundle-user", "exp": int(time.time()) + 300}, JWT_SECRET, algorithm="HS256")
    return http_event("apigw", headers={"Authorization": f"Bearer {token}"})


def _callback_event() -> dict[str, Any]:
    expiry = int(time.time()) + 600
    body = {**load_event("vod_new_file_upload"), "T": expiry,
            "Sign": hashlib.md5(f"{CALLBACK_SIGN_KEY}{expiry}".encode()).hexdigest()}
    return http_event("function_url", path="/vod-events", body=json.dumps(body))


@dataclass(frozen=True)
class Case:
    function: str
    env: dict[str, str]
    event: Any = None  # builds the event to invoke with; None = import only
    must_ship: tuple[str, ...] = ()
    must_not_ship: tuple[str, ...] = ()
    must_not_import: tuple[str, ...] = ()


CASES = [
    Case("sign", SIGN_ENV, _sign_event, must_ship=("jwt/__init__.py",),
         must_not_ship=("tencentcloud/", "psycopg/", "cryptography/", "shared/store/", "shared/events.py"),
         must_not_import=("tencentcloud", "qcloud_cos", "cryptography", "requests", "flask", "psycopg")),
    Case("callback", {"VOD_CALLBACK_SIGN_KEY": CALLBACK_SIGN_KEY, "DATABASE_URL": "sqlite:///events.sqlite3"},
         _callback_event, must_ship=("psycopg/__init__.py", "shared/store/postgres.py"),
         must_not_ship=("tencentcloud/", "jwt/", "shared/vod_api.py", "shared/auth.py"),
         # the push path never loads the Tencent SDK, and SQLite users never load psycopg
         must_not_import=("tencentcloud", "qcloud_cos", "requests", "psycopg", "jwt")),
    Case("events_pull", {"TENCENTCLOUD_SECRET_ID": SECRET_ID, "TENCENTCLOUD_SECRET_KEY": SECRET_KEY,
                         "DATABASE_URL": "sqlite:///events.sqlite3"},
         must_ship=("tencentcloud/vod/v20180717/vod_client.py", "tencentcloud/common/abstract_client.py"),
         must_not_ship=("tencentcloud/cvm/", "qcloud_cos/", "jwt/")),
]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build"), *(c.function for c in CASES), "--out", str(out)],
                   check=True)
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.function)
def test_bundle_runs_from_an_empty_directory_in_a_fresh_interpreter(bundles: Path, tmp_path: Path,
                                                                    case: Case) -> None:
    archive = zipfile.ZipFile(bundles / f"{case.function}.zip")
    names = archive.namelist()
    assert "index.py" in names and "shared/http.py" in names
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "functions/", ".venv/", ".local/"))]
    # SCF's code directory is read-only: bytecode must ship, compiled for CPython 3.10.
    assert "shared/__pycache__/http.cpython-310.pyc" in names
    for wanted in case.must_ship:
        assert wanted in names, wanted
    for unwanted in case.must_not_ship:
        assert not [n for n in names if n.startswith(unwanted)], unwanted

    code = tmp_path / "code"
    archive.extractall(code)
    event = case.event() if case.event else None
    # -I -S: no site-packages, no user site, no PYTHON* variables: only the stdlib and the bundle.
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", INVOKE, str(code), json.dumps(event)],
                          capture_output=True, text=True, env=case.env, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not set(case.must_not_import) & set(report["modules"])
    assert all(path.startswith(str(code)) for path in report["files"].values()), report["files"]
    if event is not None:
        assert report["result"]["statusCode"] == 200, report["result"]


def test_builds_are_repeatable(bundles: Path, tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build"), "sign", "--out", str(tmp_path)], check=True)
    first, second = zipfile.ZipFile(bundles / "sign.zip"), zipfile.ZipFile(tmp_path / "sign.zip")
    assert first.namelist() == second.namelist()
    # Sources are byte-identical (marshal'd bytecode may differ in reference flags between runs).
    assert all(first.read(n) == second.read(n) for n in first.namelist() if not n.endswith(".pyc"))


def test_an_unusable_jwt_key_fails_the_cold_start_not_every_request(bundles: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    public_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    zipfile.ZipFile(bundles / "sign.zip").extractall(tmp_path / "code")
    env = {**SIGN_ENV, "AUTH_JWT_SECRET": "", "AUTH_JWT_PUBLIC_KEY": public_pem}
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", INVOKE, str(tmp_path / "code"), "null"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    # RS256 needs `cryptography`, which the lean sign bundle leaves out unless asked for.
    assert proc.returncode != 0
    assert "AUTH_JWT_ALGORITHMS: RS256 needs the `cryptography` package" in proc.stderr
