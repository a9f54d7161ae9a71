"""The whole upload flow on loopback: token → /signature → VOD emulator (Apply, COS multipart,
Commit) → the event reaches the store (PUSH through the callback, or PULL through events_pull)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
from vodlocal import localstack
from vodlocal.harness import load_handler

from shared.config import load_vod_api_settings
from shared.pull_service import drain
from shared.store import open_store
from shared.vod_api import SdkEventQueue, make_client
from tests.clocks import OffsetClock
from tests.conftest import LeakGuard, command
from tests.e2e.flow import sample_video, upload

ROOT = Path(__file__).resolve().parents[2]




def uploads_show(file_id: str) -> dict[str, Any]:
    proc = subprocess.run([command("vod-uploads"), "show", file_id, "--json"],
                          capture_output=True, text=True, env=dict(os.environ), timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    shown: dict[str, Any] = json.loads(proc.stdout)
    return shown


def wait_for(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_push_flow_records_the_upload_for_the_signed_in_user(tmp_path: Path, restore_environ: None,
                                                             leak_guard: LeakGuard) -> None:
    stack = localstack.start_stack(tmp_path / "state")
    try:
        token = localstack.mint_token(os.environ["AUTH_JWT_SECRET"], "alice@example.com")
        video = sample_video(tmp_path / "holiday.mp4")
        committed = upload(stack.gateway.url, stack.emulator.url, token, video, leak_guard)
        store = open_store(os.environ["DATABASE_URL"])
        wait_for(lambda: store.file_report(committed["fileId"]) is not None)
    finally:
        stack.stop()
    shown = uploads_show(committed["fileId"])
    assert shown["upload"]["user_id"] == "alice@example.com"
    assert shown["upload"]["file_id"] == committed["fileId"]
    assert shown["upload"]["media_url"] == committed["video"]["url"]
    assert [e["event_type"] for e in shown["events"]] == ["NewFileUpload"]


def test_the_media_url_serves_the_uploaded_bytes(tmp_path: Path, restore_environ: None, leak_guard: LeakGuard) -> None:
    stack = localstack.start_stack(tmp_path / "state")
    try:
        token = localstack.mint_token(os.environ["AUTH_JWT_SECRET"], "bob")
        video = sample_video(tmp_path / "clip.mp4", size=2 * 1024 * 1024 + 7)
        committed = upload(stack.gateway.url, stack.emulator.url, token, video, leak_guard)
        served = requests.get(committed["video"]["url"], timeout=30)
    finally:
        stack.stop()
    assert served.status_code == 200
    assert served.content == video.read_bytes()


class CrashBeforeConfirm:
    """The PULL function dying after its commit, before ConfirmEvents."""

    def __init__(self, queue: SdkEventQueue) -> None:
        self.queue = queue

    def pull(self) -> list[dict[str, Any]]:
        return self.queue.pull()

    def confirm(self, handles: Sequence[str]) -> None:
        raise SystemExit("killed between commit and confirm")


def test_pull_flow_survives_a_crash_between_commit_and_confirm(tmp_path: Path, restore_environ: None,
                                                               leak_guard: LeakGuard) -> None:
    clock = OffsetClock()
    stack = localstack.start_stack(tmp_path / "state", pull=True, clock=clock, long_poll_seconds=0.2)
    try:
        token = localstack.mint_token(os.environ["AUTH_JWT_SECRET"], "carol")
        committed = upload(stack.gateway.url, stack.emulator.url, token, sample_video(tmp_path / "a.mp4"), leak_guard)
        queue = SdkEventQueue(make_client(load_vod_api_settings()), int(os.environ["VOD_SUB_APP_ID"]))
        store = open_store(os.environ["DATABASE_URL"])

        with pytest.raises(SystemExit):
            drain(CrashBeforeConfirm(queue), store, deadline=time.time() + 60, clock=time.time, reserve_seconds=0,
                  stop_when_empty=True)
        assert store.file_report(committed["fileId"]) is not None  # committed before the crash

        clock.offset = 31  # VOD hands unconfirmed events out again after 30 s
        report = drain(queue, store, deadline=time.time() + 60, clock=time.time, reserve_seconds=0,
                       stop_when_empty=True)
        assert (report.pulled, report.recorded, report.duplicates, report.confirmed) == (1, 0, 1, 1)

        clock.offset = 62  # confirmed: nothing comes back
        assert drain(queue, store, deadline=time.time() + 60, clock=time.time, reserve_seconds=0,
                     stop_when_empty=True).pulled == 0
    finally:
        stack.stop()
    shown = uploads_show(committed["fileId"])
    assert shown["upload"]["user_id"] == "carol"
    assert len(shown["events"]) == 1


def test_the_deployed_pull_function_drains_within_its_time_limit(tmp_path: Path, restore_environ: None,
                                                                 leak_guard: LeakGuard) -> None:
    stack = localstack.start_stack(tmp_path / "state", pull=True, long_poll_seconds=0.2)
    try:
        token = localstack.mint_token(os.environ["AUTH_JWT_SECRET"], "dave")
        committed = upload(stack.gateway.url, stack.emulator.url, token, sample_video(tmp_path / "b.mp4"), leak_guard)
        os.environ["VOD_PULL_RESERVE_SECONDS"] = "11"
        handler = load_handler("events_pull", ROOT / "functions" / "events_pull" / "index.py")
        # A 12 s limit less the 11 s reserve: about a second of pulling, then it stops by itself.
        report = handler({"Type": "Timer", "TriggerName": "vod_events_pull"}, {"time_limit_in_ms": 12_000})
    finally:
        stack.stop()
    assert (report["recorded"], report["confirmed"], report["stopped"]) == (1, 1, "deadline")
    assert uploads_show(committed["fileId"])["upload"]["user_id"] == "dave"
