"""The README's demo command runs the whole flow and shows the record with the user id."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_command, user_env

ROOT = Path(__file__).resolve().parents[2]


def test_demo_uploads_and_shows_the_record(tmp_path: Path) -> None:
    proc = run_command("vod-demo", base=user_env(), env={"HOME": str(tmp_path)}, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "committed: FileId" in proc.stdout
    record = proc.stdout.split("the record the callback stored")[1]
    assert "dev-user" in record and "NewFileUpload" in record
    assert "cover URL" in record and "/vod-media/" in record
    assert "stack stopped." in proc.stdout
    assert "Traceback" not in proc.stderr


def test_a_setting_the_functions_refuse_is_named_not_a_traceback(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "VOD_SIGNATURE_TTL": "abc"}
    proc = run_command("vod-demo", base=user_env(), env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "VOD_SIGNATURE_TTL" in proc.stderr and "Traceback" not in proc.stderr
