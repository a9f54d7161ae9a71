"""The deploy bundle works on its own: unpacked into an empty directory, nothing else on sys.path."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import JWT_SECRET, SIGN_ENV

ROOT = Path(__file__).resolve().parents[2]

INVOKE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import jwt, index
assert jwt.__file__.startswith(sys.argv[1]), jwt.__file__
token = jwt.encode({"sub": "bundle-user", "exp": int(time.time()) + 60}, sys.argv[2], algorithm="HS256")
event = json.loads(sys.argv[3])
event["headers"]["Authorization"] = "Bearer " + token
result = index.main_handler(event, {"request_id": "bundle-test"})
print(json.dumps({"result": result, "modules": sorted(m.split(".")[0] for m in sys.modules)}))
"""


@pytest.fixture(scope="module")
def sign_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build"), "sign", "--out", str(out)], check=True)
    return out / "sign.zip"


def test_sign_bundle_runs_from_an_empty_directory_in_a_fresh_interpreter(sign_bundle: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "code"
    with zipfile.ZipFile(sign_bundle) as archive:
        archive.extractall(unpacked)
    assert (unpacked / "index.py").exists() and (unpacked / "shared" / "signing.py").exists()
    event = json.loads((ROOT / "tests" / "events" / "apigw_post.json").read_text())
    # -I -S: no user site, no site-packages, no PYTHON* variables: only the stdlib and the bundle.
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", INVOKE, str(unpacked), JWT_SECRET, json.dumps(event)],
                          capture_output=True, text=True, env=SIGN_ENV, cwd=unpacked, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["result"]["statusCode"] == 200, report["result"]
    assert "signature" in json.loads(report["result"]["body"])
    # The signature path is stdlib + PyJWT: no SDK, no crypto library, no web framework.
    assert not {"tencentcloud", "qcloud_cos", "cryptography", "requests", "flask", "psycopg"} & set(report["modules"])


def test_sign_bundle_is_reproducible_and_lean(sign_bundle: Path, tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build"), "sign", "--out", str(tmp_path)], check=True)
    first, second = zipfile.ZipFile(sign_bundle), zipfile.ZipFile(tmp_path / "sign.zip")
    names = first.namelist()
    assert names == second.namelist()
    # Sources are byte-identical (marshal'd bytecode may differ in reference flags between runs).
    assert all(first.read(n) == second.read(n) for n in names if not n.endswith(".pyc"))
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "functions/", ".venv/"))]
    assert "index.py" in names and "jwt/__init__.py" in names
    # SCF's code directory is read-only: bytecode must ship, compiled for CPython 3.10.
    assert "shared/__pycache__/signing.cpython-310.pyc" in names
