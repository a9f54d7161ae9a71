"""Event notifications: what an upload produces and how it is delivered, PUSH or PULL
(https://www.tencentcloud.com/document/product/266/33948)."""

from __future__ import annotations

import hashlib
import logging
import socket
import stat
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pytest
from tencentcloud.vod.v20180717 import models

from tests.clocks import FrozenClock
from tests.conftest import closed_loopback_port
from vodemu import delivery, events
from vodemu.app import Emulator
from vodemu.delivery import (
    EventConfigError,
    PushSettings,
    PushWorker,
    is_loopback_url,
    post_json,
    updated_event_config,
)
from vodemu.state import PULL, EventConfig, MediaFile, UploadOptions

from .emulator_fixtures import (
    SUB_APP_ID,
    Receiver,
    apply_video,
    bucket_of,
    client_upload,
    cloud_request,
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


def _push_run_by_the_test(emulator: Emulator, attempts: int) -> PushWorker:
    """A PUSH worker over the emulator's queue whose rounds (deliver_due) the test runs in its own thread.

    The emulator's own worker is stopped first. With zero retry delays every pending event is due
    again in the next round, so each round is exactly one more attempt: no waiting on a thread.
    """
    emulator.push_worker.stop()
    settings = PushSettings((0.0,) * (attempts - 1), timeout_seconds=10, sign_ttl_seconds=600)
    return PushWorker(emulator.state, emulator.signal, emulator.clock, settings)


def _push_rounds(worker: PushWorker, rounds: int) -> None:
    for _ in range(rounds):
        worker.deliver_due()


# -- PUSH ----------------------------------------------------------------------------------------


def test_push_reaches_the_receiver_signed_and_is_retried_after_a_500(
    emulator: Emulator, clock: FrozenClock, receiver: Receiver, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="vodemu.events")
    receiver.statuses = [500]
    vod(emulator).ModifyEventConfig(
        cloud_request(
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


def test_push_gives_up_after_the_last_attempt(emulator: Emulator, clock: FrozenClock, receiver: Receiver):
    receiver.statuses = [503, 500, 502, 200]
    emulator.configure_events(notification_url=receiver.url)
    client_upload(emulator, clock)
    assert wait_until(lambda: emulator.state.push_status() == [(1, "failed", 3, "HTTP 502")])
    assert len(receiver.received) == 3


def test_push_without_sign_key_has_no_sign_fields(emulator: Emulator, clock: FrozenClock, receiver: Receiver):
    emulator.configure_events(notification_url=receiver.url)
    client_upload(emulator, clock)
    [body] = receiver.wait_for(1)
    assert "Sign" not in body
    assert "T" not in body


def test_an_unreachable_receiver_counts_as_a_failure(emulator: Emulator, clock: FrozenClock):
    worker = _push_run_by_the_test(emulator, attempts=2)
    emulator.configure_events(notification_url=f"http://127.0.0.1:{closed_loopback_port()}/nothing-listens")
    client_upload(emulator, clock)
    _push_rounds(worker, 2)
    [(seq, status, attempts, error)] = emulator.state.push_status()
    assert (seq, status, attempts) == (1, "failed", 2)
    assert error is not None and error.startswith("URLError")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_post_json_does_not_follow_redirects(start_receiver: Callable[[], Receiver], status: int):
    redirector, elsewhere = start_receiver(), start_receiver()
    redirector.statuses = [status]
    redirector.redirect_to = elsewhere.url
    assert post_json(redirector.url, b'{"EventType": "NewFileUpload"}', 10) == status
    assert redirector.methods == ["POST"]
    assert elsewhere.methods == []  # a followed redirect would have been requested before post_json returned


def test_a_redirect_is_a_failed_delivery(
    emulator: Emulator, clock: FrozenClock, start_receiver: Callable[[], Receiver]
):
    worker = _push_run_by_the_test(emulator, attempts=2)
    redirector, elsewhere = start_receiver(), start_receiver()
    redirector.statuses = [302, 302]
    redirector.redirect_to = elsewhere.url  # loopback here, but the emulator never checked it: it must not go
    emulator.configure_events(notification_url=redirector.url)
    client_upload(emulator, clock)
    _push_rounds(worker, 2)
    assert emulator.state.push_status() == [(1, "failed", 2, "HTTP 302")]
    assert redirector.methods == ["POST", "POST"]
    assert elsewhere.methods == []


def test_pending_push_events_survive_a_restart(
    emulator_factory: Callable[..., Emulator], clock: FrozenClock, receiver: Receiver
):
    first = emulator_factory()
    first.push_worker.stop()
    first.configure_events(notification_url=receiver.url)
    committed = client_upload(first, clock)
    first.close()
    emulator_factory()  # same state directory
    [body] = receiver.wait_for(1)
    assert body["FileUploadEvent"]["FileId"] == committed["fileId"]


def test_the_state_holding_the_sign_key_is_readable_by_its_owner_only(emulator: Emulator):
    emulator.configure_events(notification_url="http://127.0.0.1:9/cb", sign_key="SignKeyOfThisTest")
    files = sorted(emulator.state.path.parent.glob(f"{emulator.state.path.name}*"))
    assert len(files) == 3  # the database, its -wal and -shm
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in files} == dict.fromkeys(
        [path.name for path in files], 0o600
    )


def test_push_with_no_url_queues_nothing(emulator: Emulator, clock: FrozenClock):
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
        ("http://[::1]:9000/", True),
        ("http://127.8.9.10/", True),
        ("http://localhost.example.com/", False),
        ("http://192.168.1.2/", False),
        ("file:///etc/passwd", False),
        ("http://[::1", False),
        ("", False),
    ],
)
def test_is_loopback_url(url: str, ok: bool, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(delivery, "_resolve", lambda host: pytest.fail(f"{host} must not be resolved"))
    assert is_loopback_url(url) is ok


@pytest.mark.parametrize(
    ("resolved", "ok"),
    [
        pytest.param(["127.0.0.1", "::1"], True, id="loopback v4 and v6"),
        pytest.param(["127.0.1.1"], True, id="anywhere in 127/8"),
        pytest.param(["10.1.2.3"], False, id="remote"),
        pytest.param(["127.0.0.1", "192.168.1.5"], False, id="partly remote"),
        pytest.param([], False, id="no address"),
        pytest.param(socket.gaierror(socket.EAI_NONAME, "unknown"), False, id="does not resolve"),
    ],
)
def test_localhost_counts_only_when_it_resolves_to_loopback_alone(
    resolved: Sequence[str] | OSError, ok: bool, monkeypatch: pytest.MonkeyPatch
):
    asked = []

    def resolve(host: str) -> Sequence[str]:
        asked.append(host)
        if isinstance(resolved, OSError):
            raise resolved
        return resolved

    monkeypatch.setattr(delivery, "_resolve", resolve)
    assert is_loopback_url("https://localhost:8443/vod-events") is ok
    assert asked == ["localhost"]


EVENT_CONFIG_REFUSALS = [
    pytest.param({"notification_url": "https://example.com/cb"}, "loopback", id="remote url"),
    pytest.param({"notification_url": "ftp://127.0.0.1/cb"}, "loopback", id="scheme"),
    pytest.param({"mode": "EMAIL"}, "PUSH or PULL", id="mode"),
    pytest.param({"sign_key": "not-alnum!"}, "SignKey", id="sign key"),
    pytest.param({"sign_key": "a" * 33}, "SignKey", id="sign key too long"),
    pytest.param({"upload_switch": "YES"}, "ON or OFF", id="switch"),
]


@pytest.mark.parametrize(("fields", "hint"), EVENT_CONFIG_REFUSALS)
def test_configure_events_checks_what_modify_event_config_checks(emulator: Emulator, fields: dict[str, str], hint: str):
    before = emulator.event_config()
    with pytest.raises(EventConfigError, match=hint):
        emulator.configure_events(**fields)
    assert emulator.event_config() == before


def test_an_event_config_update_changes_only_the_fields_given():
    current = EventConfig(mode=PULL, notification_url="http://127.0.0.1/x", sign_key="k1", upload_switch="ON")
    assert updated_event_config(current) == current
    cleared = updated_event_config(current, notification_url="", sign_key="", delete_switch="ON")
    assert cleared == replace(current, notification_url="", sign_key="", delete_switch="ON")


# -- what an upload produces ---------------------------------------------------------------------


def test_upload_switch_off_suppresses_new_file_upload(emulator: Emulator, clock: FrozenClock):
    emulator.configure_events(mode=PULL, upload_switch="OFF")
    client_upload(emulator, clock)
    assert _pulled(emulator) == []
    client_upload(emulator, clock, procedure="LongVideoPreset")
    assert [e["EventType"] for e in _pulled(emulator)] == ["ProcedureStateChanged", "ProcedureStateChanged"]


@pytest.mark.parametrize(
    ("notify_mode", "statuses"),
    [
        pytest.param(None, ["PROCESSING", "FINISH"], id="not given"),
        pytest.param("Change", ["PROCESSING", "FINISH"], id="Change"),
        pytest.param("Finish", ["FINISH"], id="Finish"),
        pytest.param("None", [], id="None"),
    ],
)
def test_procedure_events_follow_the_task_notify_mode(
    emulator: Emulator, clock: FrozenClock, notify_mode: str | None, statuses: list[str]
):
    emulator.configure_events(mode=PULL)
    signed: dict[str, Any] = {"task_notify_mode": notify_mode} if notify_mode else {}
    committed = client_upload(emulator, clock, procedure="LongVideoPreset", session_context="ctx-1", **signed)
    upload, *changes = _pulled(emulator)
    assert upload["EventType"] == "NewFileUpload"
    task_id = upload["FileUploadEvent"]["ProcedureTaskId"]
    assert task_id.startswith(f"{SUB_APP_ID}-procedurev2-")
    assert [(e["EventType"], e["ProcedureStateChangeEvent"]["Status"]) for e in changes] == [
        ("ProcedureStateChanged", status) for status in statuses
    ]
    for event in changes:
        change = event["ProcedureStateChangeEvent"]
        assert change["TaskId"] == task_id
        assert change["FileId"] == committed["fileId"]
        assert change["SessionContext"] == "ctx-1"
        assert change.get("TasksNotifyMode") == notify_mode  # as signed; left out when not signed


def test_only_the_finish_event_carries_the_task_results(emulator: Emulator, clock: FrozenClock):
    emulator.configure_events(mode=PULL)
    committed = client_upload(emulator, clock, procedure="LongVideoPreset")
    _, processing, finish = _pulled(emulator)
    assert processing["ProcedureStateChangeEvent"]["MediaProcessResultSet"] == []
    [result] = finish["ProcedureStateChangeEvent"]["MediaProcessResultSet"]
    assert result["Type"] == "Transcode"
    assert result["TranscodeTask"]["Output"]["Url"] == committed["video"]["url"]


@pytest.mark.parametrize("notify_mode", [None, "Change", "Finish", "None"])
@pytest.mark.parametrize("procedure", [None, ""], ids=["not signed", "signed empty"])  # as Tencent's Node demo signs
def test_without_a_procedure_no_state_changes_whatever_the_mode(notify_mode: str | None, procedure: str | None):
    options = UploadOptions(storage_region="ap-guangzhou", procedure=procedure, task_notify_mode=notify_mode)
    assert events.procedure_statuses(options) == ()


def test_without_procedure_there_is_no_task_id(emulator: Emulator, clock: FrozenClock):
    emulator.configure_events(mode=PULL)
    client_upload(emulator, clock)
    [event] = _pulled(emulator)
    assert event["FileUploadEvent"]["ProcedureTaskId"] == ""
    assert "ProcedureStateChangeEvent" not in event


def test_a_repeated_commit_sends_no_second_event(emulator: Emulator, clock: FrozenClock):
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


def _null_paths(value: Any, path: str = "") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _null_paths(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _null_paths(v, f"{path}[{i}]")]
    return []


def test_events_leave_null_fields_out():
    media = _media(options=UploadOptions(storage_region="ap-guangzhou", procedure="P"), procedure_task_id="t")
    upload = events.new_file_upload(media, _url)
    change = events.procedure_state_changed(media, "FINISH", _url)
    assert _null_paths(upload) == []
    assert _null_paths(change) == []
    assert "TasksNotifyMode" not in change["ProcedureStateChangeEvent"]  # None in the options: left out


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
        ("PULL", "ProcedureStateChanged"),
    ]
    assert events.upload_events(media, EventConfig(mode="PUSH", upload_switch="ON"), _url) == []
