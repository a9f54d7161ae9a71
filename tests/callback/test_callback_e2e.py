"""End to end over real HTTP: a signature issued for user U, an upload event carrying its sourceContext
delivered to /vod-events through functions-framework, then `vod-uploads` names U."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from shared.events import expected_sign
from tests.conftest import CALLBACK_ENV, CALLBACK_SIGN_KEY, JWT_SECRET, SIGN_ENV, LeakGuard, run_command
from tests.scf import load_event
from vodemu.signature import signed_parameters
from vodlocal import localstack

ROOT = Path(__file__).resolve().parents[2]
USER = "u-42:ops team"  # a ':' and a space: the user id is everything after the second ':'


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """The harness gateway (sign + callback functions) on a loopback port; yields (base URL, DATABASE_URL)."""
    database_url = f"sqlite:///{tmp_path}/vod.sqlite3"
    for name, value in {**SIGN_ENV, **CALLBACK_ENV, "DATABASE_URL": database_url}.items():
        monkeypatch.setenv(name, value)
    gateway = localstack.start_gateway()  # functions-framework serving scripts/vodlocal/harness.py
    yield gateway.url, database_url
    gateway.stop()


def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # 4xx/5xx raise, failing the test
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def uploads(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_command("vod-uploads", *args, env={"DATABASE_URL": database_url})


def test_signed_upload_is_recorded_for_its_user(stack: tuple[str, str], leak_guard: LeakGuard) -> None:
    base, database_url = stack
    token = jwt.encode({"sub": USER, "exp": int(time.time()) + 300}, JWT_SECRET, algorithm="HS256")
    signature = leak_guard.add(post(f"{base}/signature", {}, {"Authorization": f"Bearer {token}"})["signature"])
    source_context = str(signed_parameters(signature)["sourceContext"])
    assert source_context is not None and source_context.endswith(f":{USER}")

    # What VOD sends once the client's upload is committed: the signature's sourceContext, echoed back.
    file_id = f"5285890784{uuid.uuid4().int % 10**9:09d}"
    event = load_event("vod_new_file_upload")
    event["FileUploadEvent"]["FileId"] = file_id
    event["FileUploadEvent"]["MediaBasicInfo"]["SourceInfo"]["SourceContext"] = source_context
    t = int(time.time()) + 600
    answer = post(f"{base}/vod-events", {**event, "T": t, "Sign": expected_sign(CALLBACK_SIGN_KEY, t)})
    assert answer["ok"] is True and answer["duplicate"] is False

    shown = uploads(database_url, "show", file_id, "--json")
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["upload"]["user_id"] == USER and record["upload"]["status"] == "uploaded"
    assert [e["event_type"] for e in record["events"]] == ["NewFileUpload"]

    listed = uploads(database_url, "list", "--user", USER)
    assert listed.returncode == 0 and file_id in listed.stdout
