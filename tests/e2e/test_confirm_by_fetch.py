"""VOD_CALLBACK_CONFIRM=fetch against the emulator over HTTP, with the real SDK: what is recorded is what VOD
answers (DescribeMediaInfos), so a validly signed body that lies changes nothing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import closed_loopback_port
from vodtesting import http_event, sample_video, signed, signed_parameters, vod_event
from vodtesting.stack import VodStack


@pytest.fixture
def confirming(vod_stack: VodStack, vod_function: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    """A callback with VOD_CALLBACK_CONFIRM=fetch, on the stack's store, asking the stack's emulator."""
    keys = (
        "TENCENTCLOUD_SECRET_ID",
        "TENCENTCLOUD_SECRET_KEY",
        "VOD_SUB_APP_ID",
        "VOD_API_ENDPOINT",
        "VOD_CALLBACK_SIGN_KEY",
        "VOD_CONTEXT_KEY",
        "DATABASE_URL",
    )
    env = {name: os.environ[name] for name in keys}
    handler = vod_function("callback", env={**env, "VOD_CALLBACK_CONFIRM": "fetch"})

    def deliver(payload: dict[str, Any]) -> dict[str, Any]:
        event = http_event("POST", "/vod-events", body=signed(payload, env["VOD_CALLBACK_SIGN_KEY"]))
        answer: dict[str, Any] = handler(event, {"request_id": "confirm"})
        return answer

    return deliver


def test_a_lying_body_changes_nothing(vod_stack: VodStack, confirming: Callable[..., Any], tmp_path: Path) -> None:
    # GIVEN Alice's real upload, recorded
    committed = vod_stack.upload(sample_video(tmp_path / "a.mp4", size=200_000), user="alice")
    before = vod_stack.record(committed["fileId"])
    # WHEN a validly signed body claims it for Mallory (her own sealed context) with another name and URL
    mallory = signed_parameters(vod_stack.signature("mallory"))["sourceContext"]
    forged = vod_event(
        "NewFileUpload",
        FileId=committed["fileId"],
        SourceContext=mallory,
        Name="mine",
        MediaUrl="http://evil.example/x.mp4",
    )
    assert confirming(forged)["statusCode"] == 200
    # THEN the record is what VOD says: still Alice's, same name and URL, no conflict
    after = vod_stack.record(committed["fileId"])
    assert (after.user_id, after.name, after.media_url, after.conflicts) == ("alice", before.name, before.media_url, ())
    assert after.confirmed is False  # the first delivery (PUSH, before the option) was the body's word


def test_a_file_vod_does_not_know_is_recorded_unconfirmed(vod_stack: VodStack, confirming: Callable[..., Any]) -> None:
    mallory = signed_parameters(vod_stack.signature("mallory"))["sourceContext"]
    assert confirming(vod_event("NewFileUpload", FileId="999999999", SourceContext=mallory))["statusCode"] == 200
    record = vod_stack.record("999999999")
    assert (record.user_id, record.attribution, record.confirmed) == (None, "unconfirmed", False)


def test_a_delete_counts_only_for_files_vod_no_longer_has(
    vod_stack: VodStack, confirming: Callable[..., Any], tmp_path: Path
) -> None:
    committed = vod_stack.upload(sample_video(tmp_path / "b.mp4", size=200_000), user="bob")
    assert confirming(vod_event("FileDeleted", FileIdSet=[committed["fileId"], "424242"]))["statusCode"] == 200
    kept, gone = vod_stack.record(committed["fileId"]), vod_stack.record("424242")
    assert (kept.status, kept.user_id) == ("uploaded", "bob")  # VOD still has it: the delete was a lie
    assert gone.status == "deleted"


def test_vod_unreachable_is_a_503_so_vod_retries(vod_function: Callable[..., Any], tmp_path: Path) -> None:
    env = {
        "VOD_CALLBACK_SIGN_KEY": "Key123",
        "VOD_CONTEXT_KEY": "k" * 32,
        "VOD_CALLBACK_CONFIRM": "fetch",
        "VOD_SECRET_ID": "AKIDx",
        "VOD_SECRET_KEY": "s" * 32,
        "VOD_API_ENDPOINT": f"http://127.0.0.1:{closed_loopback_port()}",
        "DATABASE_URL": f"sqlite:///{tmp_path}/vod.sqlite3",
    }
    handler = vod_function("callback", env=env)
    answer = handler(http_event("POST", "/vod-events", body=signed(vod_event("NewFileUpload"), "Key123")), {})
    assert answer["statusCode"] == 503 and '"vod_unavailable"' in answer["body"]
