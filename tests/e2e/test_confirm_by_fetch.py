"""VOD_CALLBACK_CONFIRM=fetch against the emulator over HTTP: what is recorded is what VOD
answers (DescribeMediaInfos, DescribeTaskDetail), so a validly signed body that lies changes nothing."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from shared.callback_service import make_callback_endpoint
from shared.config import load_callback_settings
from shared.http.serve import serve
from shared.source_context import seal
from shared.store import TaskRecord, UploadRecord, open_store
from shared.store.projection import DISPROOF_MARGIN
from shared.vod_confirm import LISTING_LAG_SECONDS
from tests.clocks import OffsetClock
from tests.conftest import CONTEXT_KEY, Output, Serve, closed_loopback_port
from vodemu.uploads import UploadService
from vodtesting import FILE_ID, http_event, sample_video, signed, signed_parameters, vod_event
from vodtesting.events import TASK_ID
from vodtesting.pgserver import PostgresServer
from vodtesting.stack import VodStack

PART = {"Type": "TranscodeFiles", "Definition": 100010}


@pytest.fixture
def vod_stack(monkeypatch: pytest.MonkeyPatch, start_vod_stack: Callable[..., VodStack]) -> VodStack:
    monkeypatch.setenv("VOD_PROCEDURE", "LongVideoPreset")  # every upload starts a task flow, whose events count too
    return start_vod_stack()


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


def _request_line(output: Output) -> dict[str, Any]:
    return [line for line in output.lines() if line["event"] == "request"][-1]


def test_a_lying_body_changes_nothing(
    vod_stack: VodStack, confirming: Callable[..., Any], tmp_path: Path, output: Output
) -> None:
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
    assert _request_line(output)["confirmed"] is True  # the log says whose word this delivery's user is


def test_an_endpoint_written_in_capitals_is_signed_as_vod_checks(
    vod_stack: VodStack, vod_function: Callable[..., Any], tmp_path: Path
) -> None:
    committed = vod_stack.upload(sample_video(tmp_path / "u.mp4", size=100_000), user="uma")
    keys = ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "VOD_SUB_APP_ID", "VOD_CONTEXT_KEY")
    env = {name: os.environ[name] for name in keys} | {"VOD_CALLBACK_CONFIRM": "fetch", "VOD_CALLBACK_SIGN_KEY": "K1"}
    env |= {"VOD_API_ENDPOINT": os.environ["VOD_API_ENDPOINT"].replace("127.0.0.1", "LocalHost")}
    handler = vod_function("callback", env={**env, "DATABASE_URL": f"sqlite:///{tmp_path}/vod.sqlite3"})
    event = vod_event("NewFileUpload", FileId=committed["fileId"])
    answer = handler(http_event("POST", "/vod-events", body=signed(event, "K1")), {})
    assert answer["statusCode"] == 200, answer["body"]  # VOD answered the callback's question: it was signed right
    store = open_store(f"sqlite:///{tmp_path}/vod.sqlite3")
    upload = store.upload(committed["fileId"])
    store.close()
    assert upload is not None and (upload.user_id, upload.confirmed) == ("uma", True)  # and its answer recorded


def test_a_stack_that_confirms_every_push_records_uploads_and_task_flows(
    monkeypatch: pytest.MonkeyPatch, start_vod_stack: Callable[..., VodStack], tmp_path: Path
) -> None:
    monkeypatch.setenv("VOD_PROCEDURE", "LongVideoPreset")
    monkeypatch.setenv("VOD_CALLBACK_CONFIRM", "fetch")
    stack = start_vod_stack()
    committed = stack.upload(sample_video(tmp_path / "c.mp4", size=200_000), user="cat")
    record = stack.record(committed["fileId"])
    assert (record.user_id, record.confirmed, record.media_url) == ("cat", True, committed["video"]["url"])
    [task] = _settled_tasks(stack, committed["fileId"])
    assert (task.task_id, task.outcome) == (record.procedure_task_id, "finished")
    assert [r.urls for r in task.results] == [(committed["video"]["url"],)]
    # AND a delete made in VOD is confirmed by it (its FileDeleted, pushed by the emulator): the file is no longer
    # listed, so the delete is recorded
    stack.delete(committed["fileId"])
    assert stack.record(committed["fileId"], until=lambda r: r.deleted).user_id == "cat"


ROLE = ("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN")


@pytest.mark.postgres
@pytest.mark.parametrize("in_scf", [True, False], ids=["in-scf", "elsewhere"])
def test_vod_is_asked_with_the_execution_roles_current_keys_inside_scf(
    start_vod_stack: Callable[..., VodStack],
    vod_function: Callable[..., Any],
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    in_scf: bool,
) -> None:
    # GIVEN a warm callback started with an execution role's keys, which SCF has since renewed in the environment
    # (as the pull function's test in test_upload_flow.py); VOD takes the valid keys only with their token, t1
    stack = start_vod_stack(session_token="t1")
    committed = stack.upload(sample_video(tmp_path / "r.mp4", size=100_000), user="erin")
    valid = (stack.settings["TENCENTCLOUD_SECRET_ID"], stack.settings["TENCENTCLOUD_SECRET_KEY"], "t1")
    expired = ("AKIDexpired", "gone", "t0")
    started, now = (expired, valid) if in_scf else (valid, expired)
    names = ("VOD_SUB_APP_ID", "VOD_API_ENDPOINT", "VOD_CALLBACK_SIGN_KEY", "VOD_CONTEXT_KEY")
    env = {name: os.environ[name] for name in names} | dict(zip(ROLE, started, strict=True))
    env |= {"VOD_CALLBACK_CONFIRM": "fetch", "DATABASE_URL": postgres_server.create_database()}  # SCF: PostgreSQL
    handler = vod_function("callback", env={**env, **({"TENCENTCLOUD_RUNENV": "SCF"} if in_scf else {})})
    for name, value in zip(ROLE, now, strict=True):
        monkeypatch.setenv(name, value)
    # WHEN VOD's event of the upload comes
    body = signed(vod_event("NewFileUpload", FileId=committed["fileId"]), env["VOD_CALLBACK_SIGN_KEY"])
    answer = handler(http_event("POST", "/vod-events", body=body), {})
    # THEN VOD was asked with the valid keys, and vouched for Erin's upload
    assert answer["statusCode"] == 200, answer
    record = open_store(env["DATABASE_URL"]).upload(committed["fileId"])
    assert record is not None and (record.user_id, record.confirmed) == ("erin", True)


def _settled_tasks(stack: VodStack, file_id: str) -> list[TaskRecord]:
    deadline = time.monotonic() + 30
    while not (tasks := stack.store.tasks(file_id)) or any(t.outcome == "processing" for t in tasks):
        assert time.monotonic() < deadline, f"the tasks of {file_id} did not settle: {tasks}"
        time.sleep(0.05)
    return tasks


def test_a_lying_task_body_changes_nothing(vod_stack: VodStack, confirming: Callable[..., Any], tmp_path: Path) -> None:
    # GIVEN Alice's real upload and its task flow, recorded
    committed = vod_stack.upload(sample_video(tmp_path / "t.mp4", size=200_000), user="alice")
    vod_stack.record(committed["fileId"])
    [before] = _settled_tasks(vod_stack, committed["fileId"])
    record = vod_stack.store.upload(committed["fileId"])
    assert record is not None and [r.urls for r in before.results] == [(record.media_url,)]
    # WHEN a validly signed body reports that task with its own name, URL and output (and another status)
    evil = "http://evil.example/x.mp4"
    output = {"Type": "Transcode", "TranscodeTask": {"Status": "SUCCESS", "ErrCode": 0, "Output": {"Url": evil}}}
    lies = {"FileName": "mine", "FileUrl": evil, "MediaProcessResultSet": [output], "SessionContext": "forged"}
    for status in ("FINISH", "PROCESSING"):
        forged = vod_event(
            "ProcedureStateChanged", FileId=committed["fileId"], TaskId=before.task_id, Status=status, **lies
        )
        assert confirming(forged)["statusCode"] == 200
    # THEN the task and the upload are as VOD has them (but for when the upload was last heard of, and the two
    # commits that recorded the bodies)
    assert vod_stack.store.tasks(committed["fileId"]) == [before]
    assert vod_stack.store.upload(committed["fileId"]) == record._replace(
        last_event_at=ANY, revision=record.revision + 2
    )


@pytest.mark.parametrize("file_id", [None, "999999999"], ids=["the real file", "another file"])
def test_a_task_vod_does_not_know_is_a_503(
    vod_stack: VodStack, confirming: Callable[..., Any], tmp_path: Path, file_id: str | None
) -> None:
    committed = vod_stack.upload(sample_video(tmp_path / "u.mp4", size=200_000), user="alice")
    vod_stack.record(committed["fileId"])
    forged = vod_event("ProcedureStateChanged", FileId=file_id or committed["fileId"], TaskId="1400-procedurev2-x")
    answer = confirming(forged)
    assert answer["statusCode"] == 503 and '"vod_unavailable"' in answer["body"]
    assert all(t.task_id != "1400-procedurev2-x" for t in vod_stack.store.tasks(committed["fileId"]))
    assert vod_stack.store.upload("999999999") is None


@pytest.mark.parametrize(
    ("field", "named"),
    [
        ("ProcedureTaskId", "made-up"),
        ("ProcedureTaskId", "bob's"),
        ("ReviewAudioVideoTaskId", "made-up"),
        ("ReviewAudioVideoTaskId", "alice's"),  # her task flow, not a review task
    ],
)
def test_an_upload_body_naming_a_task_vod_does_not_have_for_it_is_a_503(
    vod_stack: VodStack, confirming: Callable[..., Any], tmp_path: Path, field: str, named: str
) -> None:
    # GIVEN Alice's upload, recorded with its task flow, and Bob's
    alice = vod_stack.upload(sample_video(tmp_path / "a.mp4", size=200_000), user="alice")["fileId"]
    bob = vod_stack.upload(sample_video(tmp_path / "b.mp4", size=200_000), user="bob")["fileId"]
    _settled_tasks(vod_stack, alice)
    before = vod_stack.store.upload(alice)
    # WHEN a validly signed upload body of Alice's file names another task (a task flow the uploader would follow)
    owner = {"alice's": alice, "bob's": bob}.get(named)
    task_id = vod_stack.record(owner).procedure_task_id if owner else "1400-procedurev2-made-up"
    answer = confirming(vod_event("NewFileUpload", FileId=alice, **{field: task_id}))
    # THEN VOD is asked to come again (a genuine body would name the file's own), and nothing changed
    assert answer["statusCode"] == 503 and '"vod_unavailable"' in answer["body"]
    assert vod_stack.store.upload(alice) == before


def _iso(offset: float) -> str:
    """The time `offset` seconds from now, as VOD writes times."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


@pytest.mark.parametrize(
    ("made", "status"),
    [
        ("2026-01-01T00:00:00Z", 200),
        (lambda: _iso(-LISTING_LAG_SECONDS - 60), 200),  # times from when the test runs, not when it was collected
        # made so recently by the body's account that VOD's API may not list it yet: asked to come again
        (lambda: _iso(-60), 503),
        (lambda: _iso(3600), 503),
        # no time to go by (VOD writes one, with its zone): recorded unconfirmed
        (None, 200),
        ("yesterday", 200),
        (lambda: _iso(-60).rstrip("Z"), 200),
        ("0001-01-01T00:00:00+01:00", 200),
        ("9999-12-31T23:59:59-23:59", 503),
    ],
    ids=["old", "before-the-lag", "within-the-lag", "ahead", "no-time", "not-a-time", "no-zone", "first", "last"],
)
def test_a_file_vod_does_not_know_is_recorded_unconfirmed_unless_the_body_says_it_was_made_just_now(
    vod_stack: VodStack,
    confirming: Callable[..., Any],
    output: Output,
    made: str | Callable[[], str] | None,
    status: int,
) -> None:
    mallory = signed_parameters(vod_stack.signature("mallory"))["sourceContext"]
    create_time = made() if callable(made) else made
    body = vod_event("NewFileUpload", FileId="999999999", SourceContext=mallory, CreateTime=create_time)
    answer = confirming(body)
    assert answer["statusCode"] == status, answer["body"]
    record = vod_stack.store.upload("999999999")
    if status == 503:  # nothing recorded: VOD delivers it again
        assert record is None and '"vod_unavailable"' in answer["body"]
    else:
        assert record is not None and (record.user_id, record.attribution) == (None, "unconfirmed")
        assert record.confirmed is False and _request_line(output)["confirmed"] is False


def test_an_upload_event_that_comes_before_vod_lists_its_file_is_recorded_when_it_comes_again(
    monkeypatch: pytest.MonkeyPatch, vod_stack: VodStack, confirming: Callable[..., Any], tmp_path: Path
) -> None:
    # GIVEN VOD's upload event of a file its API does not list yet (here: a FileId the emulator gives out next)
    upcoming = "5285890784273599998"
    early = vod_event("NewFileUpload", FileId=upcoming, CreateTime=_iso(0))
    assert confirming(early)["statusCode"] == 503 and vod_stack.store.upload(upcoming) is None
    # WHEN VOD lists it (Alice's upload), and delivers the event again
    monkeypatch.setattr(UploadService, "_new_file_id", lambda service: upcoming)
    assert vod_stack.upload(sample_video(tmp_path / "a.mp4", size=100_000), user="alice")["fileId"] == upcoming
    again = confirming(early)
    # THEN it is recorded, not a duplicate of a delivery that recorded nothing; the upload is Alice's
    assert again["statusCode"] == 200 and json.loads(again["body"])["duplicate"] is False
    assert vod_stack.record(upcoming).user_id == "alice"


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
        # Some parts of a file VOD no longer has: deleted whole, as VOD says (however VOD lists a whole delete)
        (
            lambda kept: {
                "FileIdSet": ["424242"],
                "FileDeleteResultInfo": [{"FileId": "424242", "DeleteParts": [PART]}],
            },
            200,
            [],
            "deleted",
        ),
    ],
    ids=["gone", "some-parts", "still-listed", "parts-of-a-file-gone"],
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
    assert kept is not None and (kept.deleted, kept.user_id) == (False, "bob")
    assert [(p.type, p.definition) for p in kept.deleted_parts] == kept_parts
    record = vod_stack.store.upload("424242")
    assert (record and record.status) == gone


@pytest.mark.parametrize(
    ("delete_before", "deleted"),
    [(DISPROOF_MARGIN + 60, False), (60, True)],  # within the margin: a delete VOD could have made then
    ids=["minutes-before", "within-the-margin"],
)
def test_a_delete_of_a_file_vod_had_not_given_out_does_not_delete_the_upload_that_gets_it(
    monkeypatch: pytest.MonkeyPatch,
    start_vod_stack: Callable[..., VodStack],
    tmp_path: Path,
    delete_before: float,
    deleted: bool,
) -> None:
    # GIVEN a stack that confirms every PUSH, and a validly signed delete (a Sign replayed by whoever saw one
    # delivery) of a FileId VOD has not given out yet, recorded: VOD answered that it has no such file
    monkeypatch.setenv("VOD_CALLBACK_CONFIRM", "fetch")
    stack = start_vod_stack()
    guessed = "5285890784273599999"  # a guess at the FileIds VOD gives out next
    clock = OffsetClock()
    clock.advance(-delete_before)
    settings = load_callback_settings(os.environ)
    endpoint = make_callback_endpoint(settings, lambda: stack.store, now=clock)
    forged = signed(vod_event("FileDeleted", FileIdSet=[guessed]), os.environ["VOD_CALLBACK_SIGN_KEY"], now=clock())
    answer = serve(http_event("POST", "/vod-events", body=forged), {"request_id": "r"}, endpoint, settings.http)
    assert answer["statusCode"] == 200 and stack.record(guessed).status == "deleted"
    # WHEN VOD gives that FileId to Alice's upload, and its NewFileUpload, confirmed with VOD, comes
    monkeypatch.setattr(UploadService, "_new_file_id", lambda service: guessed)
    committed = stack.upload(sample_video(tmp_path / "a.mp4", size=200_000), user="alice")
    # THEN her upload stands, hers: VOD listed the file after the delete said it was gone, so it was not
    assert committed["fileId"] == guessed
    record = _recorded_upload(stack, guessed)
    assert (record.deleted, record.user_id, record.confirmed) == (deleted, "alice", True)


def _recorded_upload(stack: VodStack, file_id: str) -> UploadRecord:
    deadline = time.monotonic() + 30
    while (record := stack.store.upload(file_id)) is None or not record.uploaded:
        assert time.monotonic() < deadline, f"the upload of {file_id} was not recorded"
        time.sleep(0.05)
    return record


_FETCH_ENV = {
    "VOD_CALLBACK_SIGN_KEY": "Key123",
    "VOD_CONTEXT_KEY": "k" * 32,
    "VOD_CALLBACK_CONFIRM": "fetch",
    "VOD_SECRET_ID": "AKIDx",
    "VOD_SECRET_KEY": "s" * 32,
}


def _cut_off(handler: BaseHTTPRequestHandler) -> None:
    """An answer that ends (the connection closed) before the length it announced."""
    handler.rfile.read(int(handler.headers["Content-Length"]))
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "500")
    handler.end_headers()
    handler.wfile.write(b'{"Response": {"MediaInfoSet": [')
    handler.close_connection = True


@pytest.mark.parametrize(
    ("refusal", "why"),
    [
        (None, "ConnectionRefusedError"),  # VOD not reached
        ({"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "bad key"}}, "AuthFailure.SignatureFailure"),
        ("cut off", "IncompleteRead"),
    ],
    ids=["unreachable", "keys-refused", "answer-cut-off"],
)
def test_vod_not_answering_is_a_503_so_vod_retries_and_the_log_says_why(
    vod_function: Callable[..., Any],
    scripted_vod: Callable[[dict[str, Any]], str],
    loopback_http: Callable[[Callable[[BaseHTTPRequestHandler], None]], str],
    output: Output,
    tmp_path: Path,
    refusal: dict[str, Any] | str | None,
    why: str,
) -> None:
    if refusal is None:
        endpoint = f"http://127.0.0.1:{closed_loopback_port()}"
    else:
        endpoint = loopback_http(_cut_off) if isinstance(refusal, str) else scripted_vod(refusal)
    env = {**_FETCH_ENV, "VOD_API_ENDPOINT": endpoint, "DATABASE_URL": f"sqlite:///{tmp_path}/vod.sqlite3"}
    handler = vod_function("callback", env=env)
    output.skip()
    answer = handler(http_event("POST", "/vod-events", body=signed(vod_event("NewFileUpload"), "Key123")), {})
    assert answer["statusCode"] == 503 and '"vod_unavailable"' in answer["body"]
    [line] = output.lines()
    assert line["vod_error"] == f"DescribeMediaInfos failed: {why}"


def test_a_body_that_is_no_event_is_a_400_before_the_store_or_vod_is_asked(
    vod_function: Callable[..., Any], scripted_vod: Callable[[dict[str, Any]], str], tmp_path: Path
) -> None:
    # GIVEN a store that is down (its path a directory) and VOD answering
    (tmp_path / "down").mkdir()
    env = {
        **_FETCH_ENV,
        "VOD_API_ENDPOINT": scripted_vod({"MediaInfoSet": []}),
        "DATABASE_URL": f"sqlite:///{tmp_path}/down",
    }
    # WHEN VOD signs a body that is no event THEN it is refused as such (logged as VOD's), not a 503 of the store's
    body = signed({"EventType": "NewFileUpload", "FileUploadEvent": 7}, "Key123")
    answer = vod_function("callback", env=env)(http_event("POST", "/vod-events", body=body), {})
    assert (answer["statusCode"], json.loads(answer["body"])["error"]["code"]) == (400, "malformed_event")


def test_a_delete_of_many_files_asks_vod_in_parallel_calls(
    vod_function: Callable[..., Any], loopback_http: Serve, tmp_path: Path
) -> None:
    # GIVEN a VOD that has none of 100 files (5 calls of 20), and notes how many calls it is answering at once
    asked: list[str] = []
    calls: list[int] = []  # FileIds per call: VOD takes at most 20 (DescribeMediaInfos)
    lock, overlapped = threading.Lock(), threading.Event()
    in_flight = [0]

    def answer(handler: BaseHTTPRequestHandler) -> None:
        call = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        with lock:
            asked.extend(call["FileIds"])
            calls.append(len(call["FileIds"]))
            in_flight[0] += 1
            if in_flight[0] > 1:
                overlapped.set()
        overlapped.wait(5)  # one call at a time: each waits its 5 s in turn, and the test fails below
        with lock:
            in_flight[0] -= 1
        body = json.dumps({"Response": {"MediaInfoSet": [], "NotExistFileIdSet": call["FileIds"], "RequestId": "r"}})
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body.encode())

    database = f"sqlite:///{tmp_path}/vod.sqlite3"
    env = {**_FETCH_ENV, "VOD_API_ENDPOINT": loopback_http(answer), "DATABASE_URL": database}
    file_ids = [str(5285890784273533000 + i) for i in range(100)]
    # WHEN a FileDeleted names them all
    event = http_event("POST", "/vod-events", body=signed(vod_event("FileDeleted", FileIdSet=file_ids), "Key123"))
    result = vod_function("callback", env=env)(event, {})
    # THEN VOD was asked of each once, in calls made at once (one after another, 1,000 FileIds would outlast the
    # callback's timeout, and each retry), and the delete is recorded
    assert result["statusCode"] == 200 and sorted(asked) == file_ids and overlapped.is_set()
    assert calls == [20] * 5
    store = open_store(database)
    assert {(u and u.status) for u in map(store.upload, file_ids)} == {"deleted"}
    store.close()


_PROCESSING = {"TaskId": TASK_ID, "Status": "PROCESSING", "FileId": FILE_ID, "MediaProcessResultSet": []}


def _refused_while_vod_answers(
    vod_function: Callable[..., Any], vod_endpoint: str, tmp_path: Path, event: dict[str, Any]
) -> str:
    """Deliver `event`, signed, to the fetch-mode callback whose VOD API is `vod_endpoint`: it must be a 503 that
    VOD will retry. Returns the callback's database URL."""
    database = f"sqlite:///{tmp_path}/vod.sqlite3"
    env = {**_FETCH_ENV, "VOD_API_ENDPOINT": vod_endpoint, "DATABASE_URL": database}
    answer = vod_function("callback", env=env)(http_event("POST", "/vod-events", body=signed(event, "Key123")), {})
    assert answer["statusCode"] == 503 and '"vod_unavailable"' in answer["body"]
    return database


@pytest.mark.parametrize(
    ("vod_answer", "logged"),
    [
        # A FINISH whose task VOD still has processing (its API behind its events): recorded as VOD has the task,
        # it would leave the record processing for good, as no other event of the task is coming.
        ({"TaskType": "Procedure", "Status": "PROCESSING", "ProcedureTask": _PROCESSING}, "finished yet"),
        ({"TaskType": "EditMedia", "Status": "FINISH", "EditMediaTask": {"TaskId": TASK_ID}}, "no procedure task"),
        ({"TaskType": "Procedure", "ProcedureTask": [_PROCESSING]}, "no procedure task"),
        ({"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}, "RequestLimitExceeded"),
        # VOD's answer, not the body, is malformed: a 503 (delivered again), not a 400 blaming the delivery
        (
            {
                "TaskType": "Procedure",
                "Status": "FINISH",
                "ProcedureTask": {**_PROCESSING, "Status": "FINISH", "TaskId": None},
            },
            "DescribeTaskDetail answered an unexpected shape: ProcedureStateChangeEvent.TaskId",
        ),
    ],
    ids=["still-processing", "another-type", "not-an-object", "throttled", "no-task-id"],
)
def test_a_task_event_vod_does_not_vouch_for_is_a_503(
    vod_function: Callable[..., Any],
    scripted_vod: Callable[[dict[str, Any]], str],
    output: Output,
    tmp_path: Path,
    vod_answer: dict[str, Any],
    logged: str,
) -> None:
    event = vod_event("ProcedureStateChanged", TaskId=TASK_ID, FileId=FILE_ID, Status="FINISH")
    database = _refused_while_vod_answers(vod_function, scripted_vod(vod_answer), tmp_path, event)
    assert logged in output.text()
    assert open_store(database).tasks(FILE_ID) == []


@pytest.mark.parametrize(
    ("media_info", "field"),
    [
        ({"BasicInfo": "x"}, "FileUploadEvent.MediaBasicInfo"),
        ({"BasicInfo": {"SourceInfo": "x"}}, "FileUploadEvent.MediaBasicInfo.SourceInfo"),
        (
            {"BasicInfo": {"SourceInfo": {"SourceContext": 7}}},
            "FileUploadEvent.MediaBasicInfo.SourceInfo.SourceContext",
        ),
        (
            {"BasicInfo": {"SourceInfo": {"SourceContext": "u2:r1:" + "a" * 22 + ":\ud800"}}},
            "FileUploadEvent.MediaBasicInfo.SourceInfo.SourceContext",
        ),
        ({"BasicInfo": {"Name": 5}}, "FileUploadEvent.MediaBasicInfo.Name"),
        ({"BasicInfo": {}, "MetaData": "x"}, "FileUploadEvent.MetaData"),
        ({"BasicInfo": {"Vendor": {"Note": "\udc00"}}}, "body"),  # where the parser does not look
    ],
    ids=["basic-info", "source-info", "source-context", "surrogate", "name", "metadata", "surrogate-elsewhere"],
)
def test_an_upload_vod_answers_for_in_an_unexpected_shape_is_a_503(
    vod_function: Callable[..., Any],
    scripted_vod: Callable[[dict[str, Any]], str],
    output: Output,
    tmp_path: Path,
    media_info: dict[str, Any],
    field: str,
) -> None:
    # Before: a crash (500, a traceback in the log) or a 400 saying the delivery was malformed.
    vod_answer = {"MediaInfoSet": [{"FileId": FILE_ID, **media_info}], "NotExistFileIdSet": []}
    event = vod_event("NewFileUpload", FileId=FILE_ID, ProcedureTaskId="")
    database = _refused_while_vod_answers(vod_function, scripted_vod(vod_answer), tmp_path, event)
    assert output.lines()[-1]["vod_error"] == f"DescribeMediaInfos answered an unexpected shape: {field}"
    assert open_store(database).upload(FILE_ID) is None


@pytest.mark.parametrize(
    ("media_info", "said"),
    [
        ({"BasicInfo": None}, "no BasicInfo"),
        ({}, "no BasicInfo"),
        ({"BasicInfo": []}, "no BasicInfo"),
        ({"BasicInfo": {"Name": "genuine", "SourceInfo": None}}, "no sourceContext"),
        ({"BasicInfo": {"Name": "genuine"}}, "no sourceContext"),
        ({"BasicInfo": {"Name": "genuine", "SourceInfo": {"SourceContext": ""}}}, "no sourceContext"),
    ],
    ids=["basic-info-null", "no-basic-info", "basic-info-empty-list", "source-info-null", "no-source-info", "empty"],
)
def test_an_upload_vod_answers_for_without_whom_it_is_is_a_503(
    vod_function: Callable[..., Any],
    scripted_vod: Callable[[dict[str, Any]], str],
    output: Output,
    tmp_path: Path,
    media_info: dict[str, Any],
    said: str,
) -> None:
    # VOD's API may answer these null: recorded (200) with no user, the upload would never be its user's, every
    # delivery after a duplicate, whatever VOD answered by then
    vod_answer = {"MediaInfoSet": [{"FileId": FILE_ID, **media_info}], "NotExistFileIdSet": []}
    sealed = seal("alice", "r1", CONTEXT_KEY)
    event = vod_event("NewFileUpload", FileId=FILE_ID, ProcedureTaskId="", SourceContext=sealed)
    database = _refused_while_vod_answers(vod_function, scripted_vod(vod_answer), tmp_path, event)
    assert output.lines()[-1]["vod_error"].startswith(f"DescribeMediaInfos gave {said} of file {FILE_ID}")
    assert open_store(database).upload(FILE_ID) is None


def test_an_upload_vod_answers_without_metadata_keeps_none_of_the_bodys(
    vod_function: Callable[..., Any], scripted_vod: Callable[[dict[str, Any]], str], tmp_path: Path
) -> None:
    # VOD's word replaces the body's whole: its MetaData null is no licence for a forged body's size and duration
    info = {"FileId": FILE_ID, "BasicInfo": {"Name": "genuine"}, "MetaData": None}
    endpoint = scripted_vod({"MediaInfoSet": [info], "NotExistFileIdSet": []})
    database = f"sqlite:///{tmp_path}/vod.sqlite3"
    env = {**_FETCH_ENV, "VOD_API_ENDPOINT": endpoint, "DATABASE_URL": database}
    forged = vod_event("NewFileUpload", FileId=FILE_ID, ProcedureTaskId="", Name="forged", Size=666, Duration=99999)
    answer = vod_function("callback", env=env)(http_event("POST", "/vod-events", body=signed(forged, "Key123")), {})
    assert answer["statusCode"] == 200, answer
    upload = open_store(database).upload(FILE_ID)
    assert upload is not None and (upload.name, upload.metadata) == ("genuine", None)


def test_an_upload_vod_answers_neither_found_nor_missing_is_a_503(
    vod_function: Callable[..., Any], scripted_vod: Callable[[dict[str, Any]], str], output: Output, tmp_path: Path
) -> None:
    # Recorded with no user, a 200 would make VOD's every retry a duplicate: the upload never its user's
    vod_answer: dict[str, Any] = {"MediaInfoSet": [], "NotExistFileIdSet": []}
    event = vod_event("NewFileUpload", FileId=FILE_ID, ProcedureTaskId="")
    database = _refused_while_vod_answers(vod_function, scripted_vod(vod_answer), tmp_path, event)
    assert output.lines()[-1]["vod_error"] == f"DescribeMediaInfos named file {FILE_ID} neither found nor missing"
    assert open_store(database).upload(FILE_ID) is None


def test_a_delivery_recorded_before_is_a_duplicate_whatever_vod_says_now(
    vod_function: Callable[..., Any], scripted_vod: Callable[[dict[str, Any]], str], tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path}/vod.sqlite3"
    finished = {**_PROCESSING, "Status": "FINISH"}
    event = http_event(
        "POST", "/vod-events", body=signed(vod_event("ProcedureStateChanged", TaskId=TASK_ID, FileId=FILE_ID), "Key123")
    )
    answers = []
    # VOD vouches for the task, then (our 200 lost, VOD delivering again) no longer answers for it, or throttles
    for vod_answer in (
        {"TaskType": "Procedure", "Status": "FINISH", "ProcedureTask": finished},
        {"Error": {"Code": "InvalidParameterValue.TaskId", "Message": "gone"}},
        {"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}},
    ):
        env = {**_FETCH_ENV, "VOD_API_ENDPOINT": scripted_vod(vod_answer), "DATABASE_URL": database}
        answers.append(vod_function("callback", env=env)(event, {}))
    assert [(a["statusCode"], json.loads(a["body"])["duplicate"]) for a in answers] == [
        (200, False),
        (200, True),
        (200, True),
    ]
    assert [t.outcome for t in open_store(database).tasks(FILE_ID)] == ["finished"]
