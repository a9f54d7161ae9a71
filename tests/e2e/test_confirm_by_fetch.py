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

PART = {"Type": "TranscodeFiles", "Definition": 100010}


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


@pytest.mark.parametrize(
    ("deleted", "answer", "kept_parts", "gone"),
    [
        # VOD no longer has 424242: the delete is recorded.
        (lambda kept: {"FileIdSet": ["424242"]}, 200, [], "deleted"),
        # Some parts of a file VOD still has (as on VOD's FileDeleted page): recorded, the media stays.
        (
            lambda kept: {"FileIdSet": [kept], "FileDeleteResultInfo": [{"FileId": kept, "DeleteParts": [PART]}]},
            200,
            [("TranscodeFiles", 100010)],
            None,
        ),
        # The whole of a file VOD still lists (a lie, or VOD's API not caught up yet): nothing is recorded and
        # VOD is asked to come again, the true part of the delivery included.
        (lambda kept: {"FileIdSet": [kept, "424242"]}, 503, [], None),
    ],
    ids=["gone", "some-parts", "still-listed"],
)
def test_a_delete_counts_as_vod_confirms_it(
    vod_stack: VodStack,
    confirming: Callable[..., Any],
    tmp_path: Path,
    deleted: Callable[[str], dict[str, Any]],
    answer: int,
    kept_parts: list[tuple[str, int]],
    gone: str | None,
) -> None:
    committed = vod_stack.upload(sample_video(tmp_path / "b.mp4", size=200_000), user="bob")
    vod_stack.record(committed["fileId"])  # its NewFileUpload, pushed by the emulator, is in
    assert confirming(vod_event("FileDeleted", **deleted(committed["fileId"])))["statusCode"] == answer
    kept = vod_stack.store.upload(committed["fileId"])
    assert kept is not None and (kept.status, kept.user_id) == ("uploaded", "bob")
    assert [(p.type, p.definition) for p in kept.deleted_parts] == kept_parts
    record = vod_stack.store.upload("424242")
    assert (record and record.status) == gone


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
