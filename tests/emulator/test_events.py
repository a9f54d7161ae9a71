"""Event notifications: what an upload produces (REFERENCE §3) and how it is delivered (PUSH, PULL)."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from tencentcloud.vod.v20180717 import models
from vodemu import events
from vodemu.app import Emulator
from vodemu.delivery import is_loopback_url
from vodemu.state import PULL, EventConfig, MediaFile, UploadOptions

from .emulator_fixtures import (
    SUB_APP_ID,
    MutableClock,
    Receiver,
    apply_video,
    bucket_of,
    client_upload,
    cos_for_apply,
    key_of,
    signature,
    ugc,
    vod,
    wait_until,
)


def _pulled(emulator: Emulator) -> list[dict[str, Any]]:
    """Pull everything queued and confirm it, as bodies (the SDK model would drop unknown fields)."""
    pulled = emulator.state.pull_events(
        emulator.clock(), limit=16, window=30, retention=10**6, new_handle=lambda: uuid.uuid4().hex
    )
    emulator.state.confirm_events([p.handle for p in pulled], emulator.clock(), window=30)
    return [p.body for p in pulled]


# -- PUSH ----------------------------------------------------------------------------------------


def test_push_reaches_the_receiver_signed_and_is_retried_after_a_500(
    emulator: Emulator, clock: MutableClock, receiver: Receiver, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="vodemu.events")
    receiver.statuses = [500]
    vod(emulator).ModifyEventConfig(
        _request(
            models.ModifyEventConfigRequest,
            Mode="PUSH",
            NotificationUrl=receiver.url,
            SignKey="key123",
            UploadMediaCompleteEventSwitch="ON",
        )
    )
    committed = client_upload(emulator, clock, b"pushed", source_context="user-9")

    first, second = receiver.wait_for(2)
    assert first == second
    assert second["EventType"] == "NewFileUpload"
    assert second["FileUploadEvent"]["FileId"] == committed["fileId"]
    assert second["FileUploadEvent"]["MediaBasicInfo"]["SourceInfo"] == {
        "SourceType": "Upload",
        "SourceContext": "user-9",
    }
    assert second["T"] == int(clock()) + 600
    assert second["Sign"] == hashlib.md5(f"key123{second['T']}".encode()).hexdigest()
    assert wait_until(lambda: emulator.state.push_status() == [(1, "delivered", 2, None)])
    attempts = [r.getMessage() for r in caplog.records if r.name == "vodemu.events"]
    assert any("attempt 1/3 failed (HTTP 500)" in m for m in attempts)
    assert any("attempt 2/3 delivered" in m for m in attempts)


def test_push_gives_up_after_the_last_attempt(emulator: Emulator, clock: MutableClock, receiver: Receiver):
    receiver.statuses = [503, 500, 502, 200]
    emulator.configure_events(notification_url=receiver.url)
    client_upload(emulator, clock)
    assert wait_until(lambda: emulator.state.push_status() == [(1, "failed", 3, "HTTP 502")])
    assert len(receiver.received) == 3


def test_push_without_sign_key_has_no_sign_fields(emulator: Emulator, clock: MutableClock, receiver: Receiver):
    emulator.configure_events(notification_url=receiver.url)
    client_upload(emulator, clock)
    [body] = receiver.wait_for(1)
    assert "Sign" not in body
    assert "T" not in body


def test_an_unreachable_receiver_counts_as_a_failure(emulator_factory: Callable[..., Emulator], clock: MutableClock):
    emulator = emulator_factory(push_retry_delays=(0.01,))
    emulator.configure_events(notification_url="http://127.0.0.1:9/nothing-listens")
    client_upload(emulator, clock)
    assert wait_until(lambda: [s[:3] for s in emulator.state.push_status()] == [(1, "failed", 2)])


def test_pending_push_events_survive_a_restart(
    emulator_factory: Callable[..., Emulator], clock: MutableClock, receiver: Receiver
):
    first = emulator_factory()
    first.push_worker.stop()
    first.configure_events(notification_url=receiver.url)
    committed = client_upload(first, clock)
    first.close()
    emulator_factory()  # same state directory
    [body] = receiver.wait_for(1)
    assert body["FileUploadEvent"]["FileId"] == committed["fileId"]


def test_push_with_no_url_queues_nothing(emulator: Emulator, clock: MutableClock):
    emulator.configure_events(notification_url="")
    client_upload(emulator, clock)
    assert emulator.state.push_status() == []


def test_notification_url_must_be_loopback(emulator: Emulator):
    with pytest.raises(ValueError, match="loopback"):
        emulator.configure_events(notification_url="http://10.0.0.1/cb")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://127.0.0.1:8080/x", True),
        ("https://localhost/x", True),
        ("http://[::1]:9000/", True),
        ("http://127.8.9.10/", True),
        ("http://localhost.example.com/", False),
        ("http://192.168.1.2/", False),
        ("file:///etc/passwd", False),
        ("http://[::1", False),
        ("", False),
    ],
)
def test_is_loopback_url(url: str, ok: bool):
    assert is_loopback_url(url) is ok


# -- what an upload produces ---------------------------------------------------------------------


def test_upload_switch_off_suppresses_new_file_upload(emulator: Emulator, clock: MutableClock):
    emulator.configure_events(mode=PULL, upload_switch="OFF")
    client_upload(emulator, clock)
    assert _pulled(emulator) == []
    client_upload(emulator, clock, procedure="LongVideoPreset")
    assert [e["EventType"] for e in _pulled(emulator)] == ["ProcedureStateChanged"]


def test_procedure_events_follow_the_task_notify_mode(emulator: Emulator, clock: MutableClock):
    emulator.configure_events(mode=PULL)
    committed = client_upload(
        emulator, clock, procedure="LongVideoPreset", task_notify_mode="Change", session_context="ctx-1"
    )
    upload, processing, finish = _pulled(emulator)
    task_id = upload["FileUploadEvent"]["ProcedureTaskId"]
    assert task_id.startswith(f"{SUB_APP_ID}-procedurev2-")
    for event, status in ((processing, "PROCESSING"), (finish, "FINISH")):
        change = event["ProcedureStateChangeEvent"]
        assert (event["EventType"], change["Status"], change["TaskId"]) == ("ProcedureStateChanged", status, task_id)
        assert change["FileId"] == committed["fileId"]
        assert change["SessionContext"] == "ctx-1"
        assert change["TasksNotifyMode"] == "Change"
    [result] = finish["ProcedureStateChangeEvent"]["MediaProcessResultSet"]
    assert result["Type"] == "Transcode"
    assert result["TranscodeTask"]["Output"]["Url"] == committed["video"]["url"]
    assert processing["ProcedureStateChangeEvent"]["MediaProcessResultSet"] == []

    client_upload(emulator, clock, procedure="LongVideoPreset")  # default mode: Finish
    assert [e.get("ProcedureStateChangeEvent", {}).get("Status") for e in _pulled(emulator)] == [None, "FINISH"]
    client_upload(emulator, clock, procedure="LongVideoPreset", task_notify_mode="None")
    assert [e["EventType"] for e in _pulled(emulator)] == ["NewFileUpload"]


def test_without_procedure_there_is_no_task_id(emulator: Emulator, clock: MutableClock):
    emulator.configure_events(mode=PULL)
    client_upload(emulator, clock)
    [event] = _pulled(emulator)
    assert event["FileUploadEvent"]["ProcedureTaskId"] == ""
    assert "ProcedureStateChangeEvent" not in event


def test_a_repeated_commit_sends_no_second_event(emulator: Emulator, clock: MutableClock):
    emulator.configure_events(mode=PULL)
    data = apply_video(emulator, clock, 3)
    cos_for_apply(emulator, data).put_object(
        Bucket=bucket_of(data), Key=key_of(data["video"]["storagePath"]), Body=b"abc"
    )
    commit = {"signature": signature(clock), "vodSessionKey": data["vodSessionKey"]}
    first, again = ugc(emulator, "CommitUploadUGC", commit), ugc(emulator, "CommitUploadUGC", commit)
    assert again["data"]["fileId"] == first["data"]["fileId"]
    assert len(_pulled(emulator)) == 1


def _media(**changes: Any) -> MediaFile:
    base = MediaFile(
        file_id="5285890784273533167",
        name="clip",
        type="mp4",
        bucket="vodugc-ap-guangzhou-1250000000",
        media_key="1/abc/f0.mp4",
        size=42,
        options=UploadOptions(storage_region="ap-guangzhou"),
        created_at=1547051782,
        updated_at=1547051782,
    )
    return MediaFile(**{**base.__dict__, **changes})


def _url(bucket: str, key: str) -> str:
    return f"http://127.0.0.1:1/vod-media/{bucket}/{key}"


def test_new_file_upload_shape():
    event = events.new_file_upload(_media(), _url)
    info = event["FileUploadEvent"]["MediaBasicInfo"]
    assert info["CreateTime"] == "2019-01-09T16:36:22Z"
    assert info["ExpireTime"] == "9999-12-31T23:59:59Z"
    assert info["CoverUrl"] == ""
    assert info["MediaUrl"] == _url("vodugc-ap-guangzhou-1250000000", "1/abc/f0.mp4")
    assert info["SourceInfo"] == {"SourceType": "Upload", "SourceContext": ""}
    assert event["FileUploadEvent"]["MetaData"]["Size"] == 42


def test_null_fields_are_omitted():
    assert events.without_nulls({"a": None, "b": [{"c": None, "d": 1}], "e": {"f": None}}) == {"b": [{"d": 1}], "e": {}}


def test_push_signature():
    assert events.push_signature("abc", 1700000000) == hashlib.md5(b"abc1700000000").hexdigest()
    body = events.signed_push_body({"EventType": "X"}, "abc", 1000.9, 600)
    assert body == {"EventType": "X", "Sign": events.push_signature("abc", 1600), "T": 1600}
    assert events.signed_push_body({"EventType": "X"}, "", 1000, 600) == {"EventType": "X"}


def test_upload_events_routing():
    media = _media(options=UploadOptions(storage_region="ap-guangzhou", procedure="P"), procedure_task_id="t")
    pull = events.upload_events(media, EventConfig(mode=PULL, upload_switch="ON"), _url)
    assert [(mode, e["EventType"]) for mode, e in pull] == [
        ("PULL", "NewFileUpload"),
        ("PULL", "ProcedureStateChanged"),
    ]
    assert events.upload_events(media, EventConfig(mode="PUSH", upload_switch="ON"), _url) == []


def _request(model: Any, **fields: Any) -> Any:
    request = model()
    for name, value in fields.items():
        setattr(request, name, value)
    return request
