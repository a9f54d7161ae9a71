"""The uploads function behind the local gateway (HTTP through functions-framework), and `vod-upload --wait`
following a real upload's task flow to its end."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import LeakGuard, command
from vodtesting import sample_video
from vodtesting.stack import VodStack


@pytest.fixture
def stack_with_task_flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leak_guard: LeakGuard) -> Iterator[VodStack]:
    monkeypatch.setenv("VOD_PROCEDURE", "LongVideoPreset")  # every upload starts a task flow
    stack = VodStack(tmp_path / "state")
    try:
        yield stack
    finally:
        leak_guard.values.update(stack.secrets)
        stack.stop()


def test_the_status_api_over_http(stack_with_task_flow: VodStack, tmp_path: Path) -> None:
    stack = stack_with_task_flow
    committed = stack.upload(sample_video(tmp_path / "v.mp4", size=200_000), user="ann")
    stack.record(committed["fileId"])
    auth = {"Authorization": f"Bearer {stack.token('ann')}"}
    one = requests.get(
        f"{stack.gateway_url}/uploads/{committed['fileId']}", headers=auth, params={"wait": 5}, timeout=30
    )
    listed = requests.get(f"{stack.gateway_url}/uploads", headers=auth, timeout=30).json()
    others = requests.get(
        f"{stack.gateway_url}/uploads/{committed['fileId']}",
        timeout=30,
        headers={"Authorization": f"Bearer {stack.token('bob')}"},
    )
    assert one.status_code == 200 and one.json()["fileId"] == committed["fileId"] and one.headers["ETag"]
    assert [u["fileId"] for u in listed["uploads"]] == [committed["fileId"]]
    assert others.status_code == 404
    # Follow the task flow with ?wait until it stops changing: then the same ETag is a 304 with no body.
    tag, answers = one.headers["ETag"], list[requests.Response]()
    while len(answers) < 10 and (not answers or answers[-1].status_code == 200):
        answers.append(
            requests.get(
                f"{stack.gateway_url}/uploads/{committed['fileId']}",
                timeout=30,
                params={"wait": 2},
                headers={**auth, "If-None-Match": tag},
            )
        )
        tag = answers[-1].headers["ETag"]
    assert answers[-1].status_code == 304 and answers[-1].content == b""


def test_vod_upload_wait_ends_with_the_finished_record(stack_with_task_flow: VodStack, tmp_path: Path) -> None:
    stack = stack_with_task_flow
    proc = subprocess.run(
        [
            command("vod-upload"),
            str(sample_video(tmp_path / "w.mp4", size=300_000)),
            "--gateway",
            stack.gateway_url,
            "--vod-endpoint",
            stack.emulator_url,
            "--wait",
            "--wait-timeout",
            "60",
            "--json",
            "--checkpoint-dir",
            str(tmp_path / "checkpoints"),
        ],
        env={**os.environ, "VOD_UPLOAD_TOKEN": stack.token("wendy")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    done, settled = (json.loads(line) for line in proc.stdout.strip().splitlines()[-2:])
    assert done["status"] == "done"
    assert (settled["status"], settled["upload"]["fileId"], settled["upload"]["status"]) == (
        "settled",
        done["fileId"],
        "finished",
    )
    assert [t["status"] for t in settled["upload"]["tasks"]] == ["finished"]
    assert stack.record(done["fileId"]).user_id == "wendy"
