"""The whole upload flow on loopback, through the testing kit's local stack: token → /signature → VOD
emulator (Apply, COS multipart, Commit) → the event reaches the store (PUSH through the callback, or
PULL through events_pull)."""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.config import load_vod_api_settings
from shared.logs import set_level
from shared.pull_service import drain
from shared.store import open_store
from shared.vod_api import SdkEventQueue, make_client
from tests.clocks import OffsetClock
from tests.conftest import run_command
from vodlocal import localstack
from vodtesting import load_function, sample_video, signed
from vodtesting.pgserver import PostgresServer
from vodtesting.stack import SignatureRefused, VodStack, start_stack_with


def uploads_show(file_id: str) -> dict[str, Any]:
    proc = run_command("vod-uploads", "show", file_id, "--json")
    assert proc.returncode == 0, proc.stderr
    shown: dict[str, Any] = json.loads(proc.stdout)
    return shown


@pytest.fixture
def pull_stack(start_vod_stack: Callable[..., VodStack]) -> tuple[VodStack, OffsetClock]:
    """A stack whose emulator queues events for PullEvents, on a clock the test can move."""
    clock = OffsetClock()
    return start_vod_stack(pull=True, clock=clock, long_poll_seconds=0.2), clock


def test_push_flow_records_the_upload_for_the_signed_in_user(vod_stack: VodStack, tmp_path: Path) -> None:
    committed = vod_stack.upload(sample_video(tmp_path / "holiday.mp4"), user="alice@example.com")
    record = vod_stack.record(committed["fileId"])
    shown = uploads_show(committed["fileId"])  # the operator's view, from the same store
    assert record.user_id == shown["upload"]["user_id"] == "alice@example.com"
    assert shown["upload"]["file_id"] == committed["fileId"]
    assert shown["upload"]["media_url"] == committed["video"]["url"]
    assert [e["event_type"] for e in shown["events"]] == ["NewFileUpload"]
    assert [r.file_id for r in vod_stack.records("alice@example.com")] == [committed["fileId"]]


def test_a_users_records_come_oldest_first(vod_stack: VodStack, tmp_path: Path) -> None:
    # GIVEN two uploads of one user, the second after the first was recorded
    first = vod_stack.upload(sample_video(tmp_path / "first.mp4", size=100_000), user="fay")["fileId"]
    vod_stack.record(first)
    second = vod_stack.upload(sample_video(tmp_path / "second.mp4", size=100_000), user="fay")["fileId"]
    vod_stack.record(second)
    # THEN records() lists them as its docstring says: oldest first
    assert [r.file_id for r in vod_stack.records("fay")] == [first, second]


@pytest.fixture
def hook_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An app's after-commit hook, set as the README says: before the stack starts (a fixture listed first)."""
    monkeypatch.setenv("AFTER_COMMIT_HOOK", "tests.callback.hook_target:append_to_file_slowly")
    monkeypatch.setenv("HOOK_TARGET_FILE", str(tmp_path / "hook-calls"))
    return tmp_path / "hook-calls"


def test_an_after_commit_hook_set_before_the_stack_starts_sees_each_upload(
    hook_calls: Path, vod_stack: VodStack, tmp_path: Path
) -> None:
    committed = vod_stack.upload(sample_video(tmp_path / "hooked.mp4", size=100_000), user="heidi")
    vod_stack.record(committed["fileId"])  # the hook runs after the commit: record() waits for it too
    [line] = hook_calls.read_text().splitlines()
    assert line.split()[1:] == ["NewFileUpload", "heidi"]


def test_a_wait_for_a_record_that_times_out_says_what_it_still_waited_for(
    hook_calls: Path, vod_stack: VodStack, tmp_path: Path
) -> None:
    file_id = vod_stack.upload(sample_video(tmp_path / "hooked.mp4", size=100_000), user="ivan")["fileId"]
    with pytest.raises(TimeoutError, match=r"no record of nope, after 0\.01 s"):
        vod_stack.record("nope", timeout=0.01)
    deadline = time.monotonic() + 30
    while vod_stack.store.upload(file_id) is None:  # stored: its hook (half a second) begins
        assert time.monotonic() < deadline, "the upload was never recorded"
        time.sleep(0.005)
    with pytest.raises(TimeoutError, match="is recorded, but an after-commit hook of its events still runs"):
        vod_stack.record(file_id, timeout=0.05)
    vod_stack.record(file_id)  # done
    with pytest.raises(TimeoutError, match="is recorded, but not as `until` asks"):
        vod_stack.record(file_id, lambda record: record.deleted, timeout=0.05)  # `until` second, as the README has it


def test_the_stacks_functions_keep_the_settings_it_started_with(
    vod_stack: VodStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An app's test setting its own database (or keys) while the stack runs must not redirect the stack's
    # callback, which first serves when the emulator's delivery arrives, after the upload returned.
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/app.sqlite3")
    monkeypatch.setenv("VOD_CALLBACK_SIGN_KEY", "AppSignKey0123")
    committed = vod_stack.upload(sample_video(tmp_path / "later.mp4", size=100_000), user="dave")
    assert vod_stack.record(committed["fileId"]).user_id == "dave"
    assert not (tmp_path / "app.sqlite3").exists()


def test_the_media_url_serves_the_uploaded_bytes(vod_stack: VodStack, tmp_path: Path) -> None:
    video = sample_video(tmp_path / "clip.mp4", size=2 * 1024 * 1024 + 7)
    committed = vod_stack.upload(video, user="bob")
    served = requests.get(committed["video"]["url"], timeout=30)
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


def _queue(stack: VodStack) -> SdkEventQueue:
    return SdkEventQueue(make_client(load_vod_api_settings()), int(stack.settings["VOD_SUB_APP_ID"]))


def _drain_now(stack: VodStack, source: Any) -> Any:
    return drain(
        source,
        stack.store,
        deadline=time.time() + 60,
        clock=time.time,
        reserve_seconds=0,
        stop_when_empty=True,
        keys=(stack.settings["VOD_CONTEXT_KEY"],),
    )


def test_pull_flow_survives_a_crash_between_commit_and_confirm(
    pull_stack: tuple[VodStack, OffsetClock], tmp_path: Path
) -> None:
    stack, clock = pull_stack
    committed = stack.upload(sample_video(tmp_path / "a.mp4"), user="carol")
    queue = _queue(stack)

    def drain_now(source: Any) -> Any:
        return _drain_now(stack, source)

    with pytest.raises(SystemExit):
        drain_now(CrashBeforeConfirm(queue))
    assert stack.store.file_report(committed["fileId"]) is not None  # committed before the crash

    clock.offset = 31  # VOD hands unconfirmed events out again after 30 s
    report = drain_now(queue)
    assert (report.pulled, report.recorded, report.duplicates, report.confirmed) == (1, 0, 1, 1)

    clock.offset = 62  # confirmed: nothing comes back
    assert drain_now(queue).pulled == 0
    shown = uploads_show(committed["fileId"])
    assert shown["upload"]["user_id"] == "carol"
    assert len(shown["events"]) == 1


def test_one_event_pushed_and_pulled_is_recorded_once(pull_stack: tuple[VodStack, OffsetClock], tmp_path: Path) -> None:
    # GIVEN an upload's event, pushed to the callback as VOD pushes it (its absent fields left out)
    stack, clock = pull_stack
    committed = stack.upload(sample_video(tmp_path / "b.mp4", size=100_000), user="erin")
    emulator = stack._stack.emulator  # its queue, as the PUSH worker would read it
    [queued] = emulator.state.pull_events(emulator.clock(), limit=16, window=30, retention=10**6, new_handle=str)
    delivery = signed(queued.body, stack.settings["VOD_CALLBACK_SIGN_KEY"])
    pushed = requests.post(stack.events_url, json=delivery, timeout=30)
    assert pushed.status_code == 200 and pushed.json()["duplicate"] is False, pushed.text
    # WHEN PullEvents hands the same event out (its absent fields null, as VOD's API answers)
    clock.offset = 31
    report = _drain_now(stack, _queue(stack))
    # THEN it is the same event: recorded once
    assert (report.pulled, report.recorded, report.duplicates) == (1, 0, 1)
    assert len(uploads_show(committed["fileId"])["events"]) == 1


def test_the_deployed_pull_function_drains_within_its_time_limit(
    pull_stack: tuple[VodStack, OffsetClock], tmp_path: Path
) -> None:
    stack, _ = pull_stack
    committed = stack.upload(sample_video(tmp_path / "b.mp4"), user="dave")
    handler = load_function("events_pull", {**os.environ, "VOD_PULL_RESERVE_SECONDS": "16"})
    # A 17 s limit less the 16 s reserve: about a second of pulling (events begun until 2 s), then it stops by itself.
    report = handler({"Type": "Timer", "TriggerName": "vod_events_pull"}, {"time_limit_in_ms": 17_000})
    assert (report["recorded"], report["confirmed"], report["stopped"]) == (1, 1, "deadline")
    assert stack.record(committed["fileId"]).user_id == "dave"


ROLE = ("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN")


@pytest.mark.postgres
@pytest.mark.parametrize("in_scf", [True, False], ids=["in-scf", "elsewhere"])
def test_the_pull_function_signs_with_the_execution_roles_current_keys_inside_scf(
    start_vod_stack: Callable[..., VodStack],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_server: PostgresServer,
    in_scf: bool,
) -> None:
    # GIVEN a warm container started with an execution role's keys, which since then SCF renewed in the
    # environment (so the keys it started with have expired); elsewhere, the environment at call time is not
    # the function's (a test's, a laptop's), so only the keys it was started with count. VOD takes the valid
    # keys only with their own token (t1): the keys of one set and the token of the other are refused.
    stack = start_vod_stack(pull=True, long_poll_seconds=0.2, session_token="t1")
    committed = stack.upload(sample_video(tmp_path / "r.mp4", size=100_000), user="erin")
    valid = (stack.settings["TENCENTCLOUD_SECRET_ID"], stack.settings["TENCENTCLOUD_SECRET_KEY"], "t1")
    expired = ("AKIDexpired", "gone", "t0")
    started, now = (expired, valid) if in_scf else (valid, expired)
    account = ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY")
    env = {name: value for name, value in os.environ.items() if name not in account}
    database = postgres_server.create_database()  # inside SCF only PostgreSQL is taken
    scf = {"TENCENTCLOUD_RUNENV": "SCF"} if in_scf else {}
    handler = load_function(
        "events_pull",
        {
            **env,
            **dict(zip(ROLE, started, strict=True)),
            **scf,
            "DATABASE_URL": database,
            "VOD_PULL_RESERVE_SECONDS": "16",
        },
    )
    for name, value in zip(ROLE, now, strict=True):
        monkeypatch.setenv(name, value)
    report = handler({"Type": "Timer", "TriggerName": "vod_events_pull"}, {"time_limit_in_ms": 17_000})
    # THEN it pulls with the valid ones
    assert (report["recorded"], report["confirmed"]) == (1, 1), report
    record = open_store(database).upload(committed["fileId"])
    assert record is not None and record.user_id == "erin"


def test_the_kits_stack_uses_its_own_settings_not_the_shells(
    monkeypatch: pytest.MonkeyPatch, start_vod_stack: Callable[..., VodStack], tmp_path: Path
) -> None:
    # An app's CI exports its own settings for its own tests: the stack keeps to its own database and keys.
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/apps-own.sqlite3")
    monkeypatch.setenv("AUTH_JWT_SECRET", "the-apps-own-secret-0123456789abcdef")
    monkeypatch.setenv("AUTH_JWT_AUDIENCE", "the-apps-own-api")  # a setting the stack itself leaves unset
    monkeypatch.setenv("VOD_CALLBACK_INSECURE", "true")  # the app's local setting: the stack signs its events
    stack = start_vod_stack()
    committed = stack.upload(sample_video(tmp_path / "own.mp4", size=100_000), user="ann")
    assert stack.record(committed["fileId"]).user_id == "ann"
    assert not (tmp_path / "apps-own.sqlite3").exists()


def test_a_stack_that_cannot_start_leaves_the_environment_as_it_was(tmp_path: Path) -> None:
    before = dict(os.environ)
    with pytest.raises(TypeError):
        VodStack(tmp_path / "s", no_such_option=1)  # the emulator's: it refuses it after the gateway started
    assert dict(os.environ) == before


@pytest.mark.parametrize(
    ("choices", "status", "code", "said"),
    [
        ({"procedure": "NotAllowed"}, 403, "policy_violation", "procedure 'NotAllowed' is not allowed"),
        ({"procdure": "x"}, 400, "unknown_field", "unknown field 'procdure'"),
    ],
)
def test_the_kits_stack_says_why_the_sign_function_refused(
    vod_stack: VodStack, tmp_path: Path, choices: dict[str, str], status: int, code: str, said: str
) -> None:
    with pytest.raises(SignatureRefused) as refused:
        vod_stack.upload(sample_video(tmp_path / "v.mp4", size=1000), user="ann", **choices)
    assert (refused.value.status, refused.value.code) == (status, code) and said in refused.value.message
    assert f"the sign function refused ({status}) {code}: {said}" in str(refused.value)


# A file deleted in VOD (DeleteMedia, here through the SDK as a back office calls it) reaches the record as VOD's
# FileDeleted event: the whole file, or only some of its parts (the media stays).
DELETES = [((), True, []), ((("TranscodeFiles", 0),), False, [("TranscodeFiles", 0)])]
DELETE_IDS = ["whole-file", "transcodes"]


@pytest.mark.parametrize(("parts", "deleted", "deleted_parts"), DELETES, ids=DELETE_IDS)
def test_a_file_deleted_in_vod_is_recorded_from_its_pushed_event(
    vod_stack: VodStack, tmp_path: Path, parts: tuple[tuple[str, int], ...], deleted: bool, deleted_parts: list[Any]
) -> None:
    committed = vod_stack.upload(sample_video(tmp_path / "gone.mp4", size=100_000), user="gus")
    vod_stack.record(committed["fileId"])
    vod_stack.delete(committed["fileId"], *parts)
    record = vod_stack.record(committed["fileId"], until=lambda r: r.deleted or bool(r.deleted_parts))
    assert (record.user_id, record.deleted, [(p.type, p.definition) for p in record.deleted_parts]) == (
        "gus",
        deleted,
        deleted_parts,
    )
    assert [e["event_type"] for e in uploads_show(committed["fileId"])["events"]] == ["NewFileUpload", "FileDeleted"]


@pytest.mark.parametrize(("parts", "deleted", "deleted_parts"), DELETES, ids=DELETE_IDS)
def test_a_file_deleted_in_vod_is_recorded_from_its_pulled_event(
    pull_stack: tuple[VodStack, OffsetClock],
    tmp_path: Path,
    parts: tuple[tuple[str, int], ...],
    deleted: bool,
    deleted_parts: list[Any],
) -> None:
    stack, _ = pull_stack
    committed = stack.upload(sample_video(tmp_path / "gone.mp4", size=100_000), user="hal")
    stack.delete(committed["fileId"], *parts)
    report = _drain_now(stack, _queue(stack))
    assert (report.pulled, report.recorded, report.confirmed) == (2, 2, 2)
    record = stack.store.upload(committed["fileId"])
    assert record is not None and record.user_id == "hal"
    assert (record.deleted, [(p.type, p.definition) for p in record.deleted_parts]) == (deleted, deleted_parts)


def test_a_stack_puts_the_tests_log_level_back_as_it_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a test logging at DEBUG, and a LOG_LEVEL of ERROR for the stack's functions (whose imports set the level)
    before = set_level("DEBUG")
    try:
        monkeypatch.setenv("LOG_LEVEL", "ERROR")
        start_stack_with(monkeypatch, tmp_path / "stack").stop()
        # THEN the process logs at DEBUG again, for the tests that come next
        assert set_level(before) == "DEBUG"
    finally:
        set_level(before)


def test_a_stack_stopped_with_a_request_still_running_stops_all_the_same_under_warnings_as_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack whose gateway still answers a request when stopped (a slow after-commit hook), in a test run
    # that takes warnings as errors
    stack = start_stack_with(monkeypatch, tmp_path / "stack")
    monkeypatch.setattr(localstack.InFlight, "wait_until_idle", lambda self, seconds: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(RuntimeWarning, match="still ran after 30 s"):
            stack.stop()
    monkeypatch.undo()
    # THEN all the same it stopped whole: its environment is back, and a stack starts again in its directory (its
    # lock let go, its store closed)
    assert "VOD_CONTEXT_KEY" not in os.environ or os.environ["VOD_CONTEXT_KEY"] != stack.settings["VOD_CONTEXT_KEY"]
    start_stack_with(monkeypatch, tmp_path / "stack").stop()
