"""The PULL drain: what it stores, what it confirms, and how it stops (VOD's queue as a test double;
the real SDK against the emulator is in tests/e2e/test_upload_flow.py)."""

from __future__ import annotations

import copy
import inspect
import io
import itertools
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from shared.config import load_pull_settings, load_vod_api_settings
from shared.errors import StoreUnavailable
from shared.ingest import ingest_event
from shared.pull_service import EventQueue, drain, run_invocation, time_limit_seconds
from shared.store import open_store
from shared.vod_api import SdkEventQueue, make_client
from tests.clocks import FrozenClock
from tests.conftest import CONTEXT_KEY, KEYS, AnswerOf, Output, Serve
from tests.scf import load_event, nested
from vodtesting import vod_event
from vodtesting.pgserver import PostgresServer

PULL_ENV = {"VOD_SECRET_ID": "AKIDpull", "VOD_SECRET_KEY": "pull-key", "VOD_CONTEXT_KEY": CONTEXT_KEY}


class Queue:
    """VOD's reliable-callback queue: batches to hand out, and a record of confirmations."""

    def __init__(self, batches: list[list[dict[str, Any]]], fail: str | None = None) -> None:
        self.batches, self.fail = batches, fail
        self.confirmed: list[str] = []
        self.calls: list[int] = []  # handles per ConfirmEvents call

    def pull(self) -> list[dict[str, Any]]:
        if self.fail == "pull":
            raise ConnectionError("VOD unreachable")
        return self.batches.pop(0) if self.batches else []

    def confirm(self, handles: Sequence[str]) -> None:
        if self.fail == "confirm":
            raise ConnectionError("VOD unreachable")
        if len(handles) > 16:  # ConfirmEvents' EventHandles: "array length limit: 16"
            raise ValueError("InvalidParameterValue.EventHandles")
        self.calls.append(len(handles))
        self.confirmed.extend(handles)


def _pulled(name: str, handle: str) -> dict[str, Any]:
    # As PullEvents returns it: every absent field as null.
    return {**load_event(name), "EventHandle": handle, "EditMediaCompleteEvent": None}


def _drain(queue: EventQueue, tmp_path: Path, **options: Any) -> Any:
    store = open_store(f"sqlite:///{tmp_path / 'vod.sqlite3'}")
    return drain(
        queue, store, deadline=100.0, clock=lambda: 0.0, reserve_seconds=10, stop_when_empty=True, keys=KEYS, **options
    ), store


def test_commits_then_confirms_and_a_redelivery_is_a_duplicate(tmp_path: Path) -> None:
    queue = Queue(
        [
            [_pulled("vod_new_file_upload", "h1"), _pulled("vod_procedure_finish", "h2")],
            [_pulled("vod_new_file_upload", "h3")],
        ]
    )  # h1 again, with a new receipt
    report, store = _drain(queue, tmp_path)
    assert (report.pulled, report.recorded, report.duplicates, report.confirmed) == (3, 2, 1, 3)
    assert queue.confirmed == ["h1", "h2", "h3"] and report.stopped == "empty"
    assert store.event_count() == 2


def _with_nulls(value: Any) -> Any:
    """As PullEvents writes an event: a field it lacks is null, at every depth (in a list's objects too)."""
    if isinstance(value, dict):
        return {**{k: _with_nulls(v) for k, v in value.items()}, "AbsentField": None}
    return [_with_nulls(v) for v in value] if isinstance(value, list) else value


def test_an_event_pushed_then_pulled_is_recorded_once(tmp_path: Path) -> None:
    pushed = load_event("vod_procedure_finish")
    store = open_store(f"sqlite:///{tmp_path / 'vod.sqlite3'}")
    ingest_event(store, pushed, received_at=1.0, keys=KEYS)
    store.close()
    report, store = _drain(Queue([[{**_with_nulls(pushed), "EventHandle": "h1"}]]), tmp_path)
    assert (report.recorded, report.duplicates, report.confirmed) == (0, 1, 1)
    assert store.event_count() == 1


def test_a_batch_larger_than_confirm_events_takes_is_confirmed_in_parts(tmp_path: Path) -> None:
    # PullEvents hands out at most 16; should it hand out more, one ConfirmEvents would be refused every time.
    batch = [{**_pulled("vod_new_file_upload", f"h{i}"), "FileUploadEvent": {"FileId": f"f{i}"}} for i in range(20)]
    queue = Queue([batch])
    report, _ = _drain(queue, tmp_path)
    assert (report.recorded, report.confirmed, queue.calls) == (20, 20, [16, 4])


@pytest.mark.parametrize("event_set", [5, True, "abc", {"EventHandle": "h1"}])
def test_an_event_set_that_is_not_a_list_is_a_queue_error(
    scripted_vod: Callable[[dict[str, Any]], str], tmp_path: Path, event_set: Any
) -> None:
    # Not a crash of the run, nor a string's characters or an object's keys taken for events.
    env = {
        "VOD_SECRET_ID": "AKIDx",
        "VOD_SECRET_KEY": "s" * 32,
        "VOD_API_ENDPOINT": scripted_vod({"EventSet": event_set}),
    }
    queue = SdkEventQueue(make_client(load_vod_api_settings(env)), None)
    store = open_store(f"sqlite:///{tmp_path / 'vod.sqlite3'}")
    ticks = itertools.count(0.0, 5.0)  # the time moves: a queue answering so for ever still ends at the deadline
    report = drain(queue, store, deadline=100.0, clock=lambda: next(ticks), reserve_seconds=10, keys=KEYS)
    assert (report.stopped, report.pulled, report.unreadable, store.event_count()) == ("queue_error", 0, 0, 0)


def _sdk_queue(endpoint: str, sub_app_id: int | None = None) -> SdkEventQueue:
    env = {"VOD_SECRET_ID": "AKIDx", "VOD_SECRET_KEY": "s" * 32, "VOD_API_ENDPOINT": endpoint}
    return SdkEventQueue(make_client(load_vod_api_settings(env)), sub_app_id)


@pytest.mark.parametrize("error", [{}, "", "no permission", {"Code": "AuthFailure"}])
def test_an_error_in_vods_answer_is_a_queue_error_however_little_it_says(
    scripted_vod: Callable[[dict[str, Any]], str], tmp_path: Path, error: Any
) -> None:
    # An Error, even an empty one, is not an empty queue
    report, store = _drain(_sdk_queue(scripted_vod({"Error": error})), tmp_path)
    assert (report.stopped, report.pulled, store.event_count()) == ("queue_error", 0, 0)


@pytest.mark.parametrize("body", [b'{"Response": []}', b'{"Response": "ok"}', b"[]", b'{"EventSet": []}'])
def test_an_answer_without_a_response_object_is_a_queue_error(
    answering_vod: Callable[[AnswerOf], str], tmp_path: Path, body: bytes
) -> None:
    report, _ = _drain(_sdk_queue(answering_vod(lambda action, params: body)), tmp_path)
    assert (report.stopped, report.pulled) == ("queue_error", 0)


def test_a_sub_applications_queue_is_pulled_and_confirmed_in_it(
    answering_vod: Callable[[AnswerOf], str], tmp_path: Path
) -> None:
    # GIVEN a sub-application's queue holding one event
    batches = [[_pulled("vod_new_file_upload", "h1")]]
    calls: list[tuple[str, Any]] = []

    def answer(action: str, params: dict[str, Any]) -> bytes:
        calls.append((action, params.get("SubAppId")))
        events = batches.pop() if batches and action == "PullEvents" else []
        return json.dumps({"Response": {"EventSet": events, "RequestId": "r"}}).encode()

    # WHEN it is drained
    report, _ = _drain(_sdk_queue(answering_vod(answer), 1500000001), tmp_path)
    # THEN every call names it: a ConfirmEvents without it would confirm in the main application's queue
    assert (report.recorded, report.confirmed) == (1, 1)
    assert calls == [("PullEvents", 1500000001), ("ConfirmEvents", 1500000001), ("PullEvents", 1500000001)]


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "text/html"])
@pytest.mark.parametrize(("refused", "recorded"), [("PullEvents", 0), ("ConfirmEvents", 1)])
def test_vods_error_is_a_queue_error_whatever_its_answer_is_labelled(
    loopback_http: Serve, tmp_path: Path, output: Output, content_type: str, refused: str, recorded: int
) -> None:
    # The SDK raises VOD's Error only from an answer labelled exactly application/json (or text/plain): relabelled
    # by a proxy, a refusal (a wrong key, a missing permission) would pass as an empty queue, or events confirmed.
    batches = [[_pulled("vod_new_file_upload", "h1")]]  # then none: a run that misses the error ends all the same
    error = {"Code": "AuthFailure.UnauthorizedOperation", "Message": "no permission"}

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers["Content-Length"]))
        action = handler.headers["X-TC-Action"]
        events = batches.pop() if batches and action == "PullEvents" else []
        response = {"Error": error} if action == refused else {"EventSet": events}
        body = json.dumps({"Response": {**response, "RequestId": "r"}}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json" if action != refused else content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    env = {"VOD_SECRET_ID": "AKIDx", "VOD_SECRET_KEY": "s" * 32, "VOD_API_ENDPOINT": loopback_http(answer)}
    report, store = _drain(SdkEventQueue(make_client(load_vod_api_settings(env)), None), tmp_path)
    assert (report.stopped, report.confirmed, report.recorded, store.event_count()) == (
        "queue_error",
        0,
        recorded,
        recorded,
    )
    [failed] = [line for line in output.lines() if line["event"].endswith("_failed")]
    assert "AuthFailure.UnauthorizedOperation" in failed["error_detail"]


def test_a_batch_whose_confirm_fails_is_stored_whole_and_counted(tmp_path: Path) -> None:
    # ConfirmEvents refused after the events its window took: the batch's tail is stored all the same (a later
    # pull would take it after newer events), every event counted once, and the run stops there.
    clock = FrozenClock(0)
    queue = Queue([_uploads(16)], fail="confirm")
    store = open_store(f"sqlite:///{tmp_path / 'vod.sqlite3'}")
    report = drain(
        queue,
        store,
        deadline=1000,
        clock=clock,
        reserve_seconds=20,
        keys=KEYS,
        after_commit=lambda committed: clock.advance(4),
    )
    assert (report.stopped, report.recorded, report.confirmed, report.late, report.left) == (
        "queue_error",
        16,
        0,
        12,
        0,
    )
    assert store.event_count() == 16


@pytest.mark.parametrize(("fail", "confirmed", "recorded"), [("pull", 0, 0), ("confirm", 0, 1)])
def test_a_queue_failure_stops_the_run_without_losing_anything(
    tmp_path: Path, output: Output, fail: str, confirmed: int, recorded: int
) -> None:
    queue = Queue([[_pulled("vod_new_file_upload", "h1")]], fail=fail)
    report, store = _drain(queue, tmp_path)
    assert (report.stopped, report.confirmed, report.recorded) == ("queue_error", confirmed, recorded)
    assert store.event_count() == recorded  # committed events stay; VOD redelivers the unconfirmed
    # the run's summary too where an operator logging at WARNING looks
    assert [line["level"] for line in output.lines() if line["event"] == "pull.drained"] == ["WARNING"]


@pytest.mark.parametrize(
    "unreadable",
    [
        {"EventHandle": "bad", "EventType": 7},
        None,
        ["NewFileUpload"],
        {**load_event("vod_new_file_upload"), "EventHandle": "bad", "MetaData": nested(100_000)},
        # in a field the parser does not read: no UTF-8 form, so every answer showing the task would fail
        {**load_event("vod_procedure_finish"), "EventHandle": "bad", "Extra": {"Url": "https://x/\ud800.mp4"}},
        {**load_event("vod_procedure_finish"), "EventHandle": "bad", "Extra": {"\udc00": 1}},
        # what the SDK's json reads and JSON has not: stored, it would be written out as no strict reader reads it
        {**load_event("vod_new_file_upload"), "EventHandle": "bad", "Extra": {"Duration": float("nan")}},
        {**load_event("vod_procedure_finish"), "EventHandle": "bad", "Extra": [float("-inf")]},
    ],
    ids=["bad-field", "null", "list", "deep", "surrogate-in-a-value", "surrogate-in-a-key", "nan", "infinity"],
)
def test_an_unreadable_event_is_left_in_vods_queue(tmp_path: Path, unreadable: Any) -> None:
    queue = Queue([[unreadable, _pulled("vod_new_file_upload", "h1")]])
    report, _ = _drain(queue, tmp_path)
    assert (report.unreadable, report.recorded, queue.confirmed) == (1, 1, ["h1"])


@pytest.mark.parametrize(
    ("event", "named"),
    [
        (vod_event("NewFileUpload", FileId="5285890784273500001", ClassId="0"), ["5285890784273500001"]),
        ({"EventType": "FileDeleted", "FileDeleteEvent": {"FileIdSet": ["f1", "f2", 3]}}, ["f1", "f2"]),
    ],
    ids=["a field of another type", "a file id that is not text"],
)
def test_an_unreadable_events_log_line_says_which_it_is(
    tmp_path: Path, output: Output, event: dict[str, Any], named: list[str]
) -> None:
    # Its handle is new at each redelivery: its type and file ids are what an operator can find it again by
    _drain(Queue([[{**event, "EventHandle": "h1"}]]), tmp_path)
    [line] = [line for line in output.lines() if line["event"] == "pull.unreadable_event"]
    assert (line["event_type"], line["file_ids"]) == (event["EventType"], named)


class SlowQueue(Queue):
    """A queue whose PullEvents long-polls `poll` seconds on `clock`, noting when each confirm came."""

    def __init__(self, batches: list[list[dict[str, Any]]], clock: FrozenClock, poll: float) -> None:
        super().__init__(batches)
        self.clock, self.poll = clock, poll
        self.confirmed_at: list[float] = []

    def pull(self) -> list[dict[str, Any]]:
        self.clock.advance(self.poll)
        return super().pull()

    def confirm(self, handles: Sequence[str]) -> None:
        self.confirmed_at.append(self.clock())
        super().confirm(handles)


def _uploads(count: int) -> list[dict[str, Any]]:
    return [{**vod_event("NewFileUpload", FileId=str(10**18 + i)), "EventHandle": f"h{i}"} for i in range(count)]


def test_a_store_outage_mid_batch_confirms_what_was_stored_and_counts_the_rest(
    own_postgres_server: PostgresServer,
) -> None:
    # GIVEN a batch of 5, and a database that goes down once the second event is committed
    store = open_store(own_postgres_server.create_database(), timeout_seconds=1)
    committed: list[Any] = []

    def down_after_two(event: Any) -> None:
        committed.append(event)
        if len(committed) == 2:
            own_postgres_server.stop()

    queue = Queue([_uploads(5)])
    report = drain(
        queue,
        store,
        deadline=100.0,
        clock=lambda: 0.0,
        reserve_seconds=10,
        after_commit=down_after_two,
        stop_when_empty=True,
        keys=KEYS,
    )
    # THEN the two are confirmed, and the three VOD hands out again are counted as left
    assert (report.stopped, report.recorded, report.confirmed, report.left) == ("store_unavailable", 2, 2, 3)
    assert queue.confirmed == ["h0", "h1"]


@pytest.mark.parametrize(
    ("fail", "stopped", "confirmed"),
    [(None, "store_unavailable", ["h0"]), ("confirm", "queue_error", [])],
    ids=["confirmed", "confirm-refused-too"],
)
def test_a_store_that_fails_mid_batch_is_not_asked_again_in_that_run(
    tmp_path: Path,
    output: Output,
    monkeypatch: pytest.MonkeyPatch,
    fail: str | None,
    stopped: str,
    confirmed: list[str],
) -> None:
    # GIVEN a batch of 3, and a store whose second write fails
    store = open_store(f"sqlite:///{tmp_path / 'vod.sqlite3'}")
    ingest, writes = store.ingest, list[str]()

    def failing_second(stored: Any, *args: Any, **kwargs: Any) -> Any:
        writes.append(stored.key)
        if len(writes) == 2:
            raise StoreUnavailable("connection refused")
        return ingest(stored, *args, **kwargs)

    monkeypatch.setattr(store, "ingest", failing_second)
    queue = Queue([_uploads(3)], fail=fail)
    report = drain(queue, store, deadline=100.0, clock=lambda: 0.0, reserve_seconds=10, stop_when_empty=True, keys=KEYS)
    # THEN the run stops there (a store down is not tried again for the batch's tail: each try costs a timeout),
    # what was stored is confirmed, and a refused confirm is what the run's end says, and logs
    assert (report.stopped, report.recorded, report.left, len(writes)) == (stopped, 1, 2, 2)
    assert queue.confirmed == confirmed
    lines = output.lines()
    assert ("pull.confirm_failed" in [line["event"] for line in lines]) == (fail == "confirm")
    # Each event recorded, and the one the store failed (which VOD hands out again), named as the callback names them
    named = [
        (line["event"], line["event_handle"], line["file_ids"], line["dedupe_key"])
        for line in lines
        if line["event"] in ("pull.event", "store.unavailable")
    ]
    assert named == [
        ("pull.event", "h0", [str(10**18)], writes[0]),
        ("store.unavailable", "h1", [str(10**18 + 1)], writes[1]),
    ]


def test_an_unexpected_failure_is_one_error_line_and_the_run_ends_as_any_other(
    tmp_path: Path, output: Output, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store of the app's own, say, that fails otherwise than the store does: one JSON line with the traceback, and
    # no failed invocation, which SCF would run again twice beside the next runs of the timer
    store = open_store(f"sqlite:///{tmp_path / 'vod.sqlite3'}")

    def ingest(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("no such key")

    monkeypatch.setattr(store, "ingest", ingest)
    queue = Queue([_uploads(2)])
    report = drain(queue, store, deadline=100.0, clock=lambda: 0.0, reserve_seconds=10, keys=KEYS)
    assert (report.stopped, report.rounds, report.pulled, report.recorded, queue.confirmed) == ("crash", 1, 2, 0, [])
    [line] = output.lines()
    assert (line["level"], line["event"]) == ("ERROR", "pull.crash") and "KeyError" in line["exception"]


def _set_back_at_third_reading() -> Callable[[], float]:
    readings = itertools.count()
    return lambda: 1_700_000_010.0 - 2 * (next(readings) >= 2)  # NTP sets the clock back 2 s


@pytest.mark.parametrize("split", [3, 2, 1], ids=["one-batch", "task-in-next-batch", "one-a-batch"])
@pytest.mark.parametrize(
    "wall",
    [lambda: time.time, lambda: lambda: 1_700_000_000.0, _set_back_at_third_reading],
    ids=["ticking", "coarse-or-stopped", "set-back"],
)
def test_a_delete_and_a_task_made_after_it_keep_their_order(
    tmp_path: Path, wall: Callable[[], Callable[[], float]], split: int
) -> None:
    # GIVEN a transcode, DeleteMedia of it, and the transcode made again, in one batch or over several, received
    # on a time of day that moves on, one too coarse to (a container's clock may read the same for a while), or
    # one set back between them
    finished = load_event("vod_procedure_finish")
    file_id = finished["ProcedureStateChangeEvent"]["FileId"]
    again = copy.deepcopy(finished)
    again["ProcedureStateChangeEvent"]["TaskId"] = "task-again"
    parts = [{"FileId": file_id, "DeleteParts": [{"Type": "TranscodeFiles", "Definition": 0}]}]
    deleted = vod_event("FileDeleted", FileId=file_id, FileDeleteResultInfo=parts)
    pulled = [{**event, "EventHandle": f"h{i}"} for i, event in enumerate([finished, deleted, again])]
    batches = [pulled[start : start + split] for start in range(0, 3, split)]
    report, store = _drain(Queue(batches), tmp_path, wall=wall())
    # THEN each was received after the one before it: the task after the delete has the later time
    times = {task.task_id: task.results_at or 0.0 for task in store.tasks(file_id)}
    upload = store.upload(file_id)
    assert upload is not None and report.recorded == 3
    [part] = upload.deleted_parts
    assert times[finished["ProcedureStateChangeEvent"]["TaskId"]] < (part.deleted_at or 0.0) < times["task-again"]


def test_the_deadline_leaves_the_reserve(tmp_path: Path) -> None:
    clock = FrozenClock(0)
    store = open_store(f"sqlite:///{tmp_path / 'vod.sqlite3'}")
    queue = SlowQueue([], clock, poll=40)  # the queue is empty: each PullEvents waits 40 s
    report = drain(queue, store, deadline=100.0, clock=clock, reserve_seconds=10, keys=KEYS)
    assert (report.rounds, report.stopped, clock()) == (3, "deadline", 120.0)  # the last began at 80


def test_a_pull_answered_empty_at_once_is_not_asked_again_at_once(tmp_path: Path) -> None:
    # VOD holds an empty PullEvents up to 5 s; answered empty at once (a proxy, say), a run would call VOD in a loop
    clock = FrozenClock(0)
    queue = TickingQueue([], sleep=0)
    store = open_store(f"sqlite:///{tmp_path / 'vod.sqlite3'}")
    report = drain(queue, store, deadline=100.0, clock=clock, sleep=clock.advance, reserve_seconds=10, keys=KEYS)
    assert (report.rounds, report.stopped, clock()) == (91, "deadline", 90.0)  # one a second; the last at 90


class TickingQueue(Queue):
    """An empty queue whose PullEvents long-polls a little real time; it ends a run that would not end."""

    def __init__(self, batches: list[list[dict[str, Any]]], sleep: float = 0.02) -> None:
        super().__init__(batches)
        self.sleep = sleep

    def pull(self) -> list[dict[str, Any]]:
        self.calls.append(0)
        if len(self.calls) > 100:
            raise AssertionError("the run did not end")
        time.sleep(self.sleep)
        return []


@pytest.mark.parametrize("step", [-3600, 3600])
def test_the_time_of_day_set_back_or_on_neither_lengthens_nor_cuts_a_run(tmp_path: Path, step: float) -> None:
    # An invocation of 16.5 s with a 16 s reserve pulls for half a second whatever the time of day does (an NTP
    # correction): set back, SCF would end the run mid-batch; set on, it would stop before its first pull.
    settings = load_pull_settings({**PULL_ENV, "VOD_PULL_RESERVE_SECONDS": "16"})
    wall = itertools.count(time.time(), step)
    store = open_store(f"sqlite:///{tmp_path / 'vod.sqlite3'}")
    queue = TickingQueue([])
    report = run_invocation({"time_limit_in_ms": 16_500}, settings, queue, store, wall=lambda: next(wall))
    assert report.stopped == "deadline" and report.rounds >= 1


@pytest.mark.parametrize(
    ("until_empty", "stopped", "pulls"),
    [("true", "empty", range(1, 2)), ("false", "deadline", range(2, 4))],  # a busy machine's sleeps run late
)
def test_a_run_ends_at_an_empty_queue_only_when_set_to(
    tmp_path: Path, until_empty: str, stopped: str, pulls: range
) -> None:
    # An invocation of 18.5 s with a 16 s reserve: by default it long-polls (a second apart, here, for an empty
    # answer that comes at once) until the reserve; told to, it ends at the first empty answer (billed only while
    # there is work; an event queued then waits for the next run)
    settings = load_pull_settings({**PULL_ENV, "VOD_PULL_RESERVE_SECONDS": "16", "VOD_PULL_UNTIL_EMPTY": until_empty})
    store = open_store(f"sqlite:///{tmp_path / 'vod.sqlite3'}")
    report = run_invocation({"time_limit_in_ms": 18_500}, settings, TickingQueue([]), store)
    assert report.stopped == stopped and report.rounds in pulls


def test_a_time_limit_within_the_reserve_is_warned_of(tmp_path: Path, output: Output) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'vod.sqlite3'}")
    report = drain(Queue([_uploads(1)]), store, deadline=50.0, clock=FrozenClock(0), reserve_seconds=60, keys=KEYS)
    assert (report.rounds, report.stopped) == (0, "deadline")
    assert [line["event"] for line in output.lines() if line["level"] == "WARNING"] == ["pull.no_time"]


@pytest.mark.parametrize(
    ("start", "deadline", "reserve", "hook_seconds", "confirmed", "left", "stopped"),
    [
        # Slow hooks: the fifth event would begin 16 s after the pull, too late for its ConfirmEvents (up to 10 s)
        # to beat VOD's 30 s once it is done (5 s allowed). The four before it are confirmed then; the rest are
        # stored all the same, unconfirmed (VOD hands them out again: duplicates), and the run goes on.
        (0, 1000, 20, 4, 4, 0, "empty"),
        # The run's end: a batch pulled at 40 s of a 60 s invocation confirms what it begins until 45 s (the last
        # one's 5 s and its ConfirmEvents' 10 s before the end), and stores the rest until 55 s
        (40, 60, 20, 1, 5, 1, "batch_cut"),
        # A run's last pull, as late as the least reserve allows: it still takes what it can begin, never none
        (0, 16, 16, 1, 1, 5, "batch_cut"),
        # Hooks slower than the 5 s allowed: once one took 8 s, an event begins only 8 s before the run's end at
        # the latest (here the third, at 54 s, would end at 62 s: SCF would cut its hook off half run)
        (38, 60, 20, 8, 1, 14, "batch_cut"),
    ],
    ids=["slow-hooks", "run-end", "last-pull", "hooks-slower-than-allowed"],
)
def test_a_batch_is_stored_in_vods_order_confirming_what_can_be_in_time(
    tmp_path: Path,
    start: float,
    deadline: float,
    reserve: float,
    hook_seconds: float,
    confirmed: int,
    left: int,
    stopped: str,
) -> None:
    clock = FrozenClock(start)
    newer = [{**vod_event("NewFileUpload", FileId="2" * 19), "EventHandle": "newer"}]
    queue = SlowQueue([_uploads(16), newer], clock, poll=0)
    store = open_store(f"sqlite:///{tmp_path / 'vod.sqlite3'}")
    stored: list[str] = []
    ended: list[float] = []

    def slow_hook(committed: Any) -> None:
        stored.extend(committed.event.file_ids)
        clock.advance(hook_seconds)
        ended.append(clock())

    report = drain(
        queue,
        store,
        deadline=deadline,
        clock=clock,
        reserve_seconds=reserve,
        keys=KEYS,
        after_commit=slow_hook,
        stop_when_empty=True,
    )
    taken = 16 - left
    assert (report.recorded, report.late, report.left, report.stopped) == (
        taken + (stopped == "empty"),
        taken - confirmed,
        left,
        stopped,
    )
    # Only those are confirmed (a handle past VOD's 30 s is no longer the event's), in one call in time for VOD's
    # 30 s and for the invocation's end (ConfirmEvents may take 10 s); the newer batch's, pulled later, too
    assert queue.confirmed == [f"h{i}" for i in range(confirmed)] + (["newer"] if stopped == "empty" else [])
    assert report.confirmed == len(queue.confirmed) and queue.confirmed_at[0] + 10 <= min(start + 30, deadline)
    assert report.pulled == report.recorded + report.left  # each event counted once (late ones are recorded)
    # Stored in VOD's order, newer events after the whole batch: what is handed out again is then a duplicate.
    # (Left to a later pull, the tail would come after them, and a task's FINISH stored after the delete that
    # followed it would list its outputs again.) A run cut short ends there: the next takes what is left.
    assert stored == [str(10**18 + i) for i in range(taken)] + (["2" * 19] if stopped == "empty" else [])
    assert queue.batches == ([] if stopped == "empty" else [newer])
    assert max(ended) <= deadline  # no hook was begun that the run's end would cut off


@pytest.mark.parametrize(
    ("context", "seconds"),
    [
        ({"time_limit_in_ms": 60_000}, 60.0),
        ({}, 50.0),
        (None, 50.0),
        ({"time_limit_in_ms": "x"}, 50.0),
    ],
)
def test_time_limit_comes_from_scfs_context(context: Any, seconds: float) -> None:
    assert time_limit_seconds(context, 50.0) == seconds


def test_a_run_times_its_deadline_on_a_clock_that_never_steps_back() -> None:
    # What the deployed function gets: the tests above pass their clocks in
    assert inspect.signature(run_invocation).parameters["clock"].default is time.monotonic


def test_an_answer_quoting_the_request_is_logged_without_the_roles_keys(
    loopback_http: Serve, tmp_path: Path, output: Output, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy's error page that quotes the request's headers: the SDK makes it the error's message, which the
    # run logs. Inside SCF the role's keys are read again at each call (renewed), and are masked as well.
    def echo(handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers["Content-Length"]))
        quoted = "\n".join(f"{name}: {handler.headers[name]}" for name in ("X-TC-Token", "Authorization"))
        body = f"<pre>session {handler.headers['X-TC-Token']} unknown\n{quoted}</pre>".encode()
        handler.send_response(502)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    loaded = {"TENCENTCLOUD_SECRETID": "AKIDloaded", "TENCENTCLOUD_SECRETKEY": "loaded-key-0123456789"}
    renewed = {**loaded, "TENCENTCLOUD_SECRETKEY": "renewed-key-0123456789"}
    env = {"TENCENTCLOUD_RUNENV": "SCF", "VOD_API_ENDPOINT": loopback_http(echo), **loaded}
    env["TENCENTCLOUD_SESSIONTOKEN"] = "loaded-token-0123456789"
    monkeypatch.setattr(os, "environ", {**os.environ, **renewed, "TENCENTCLOUD_SESSIONTOKEN": "renewed-token-012345"})
    queue = SdkEventQueue(make_client(load_vod_api_settings(env)), None)
    report, _ = _drain(queue, tmp_path)
    [failed] = [line for line in output.lines() if line["event"] == "pull.pull_failed"]
    assert report.stopped == "queue_error" and "unknown" in failed["error_detail"]
    assert "renewed-token-012345" not in output.seen and "renewed-key" not in output.seen
    assert "X-TC-Token: ********" in failed["error_detail"] and "Signature=********" in failed["error_detail"]


def test_the_sdks_debug_lines_stay_out_of_a_log_set_to_debug(loopback_http: Serve, tmp_path: Path) -> None:
    # A hook may set logging as it likes (README): DEBUG on the root logger would take the SDK's lines, each
    # request's headers whole (the signature, the role's session token). (Not caplog: it listens to every logger.)
    def empty_queue(handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers["Content-Length"]))
        body = json.dumps({"Response": {"EventSet": [], "RequestId": "r"}}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    env = {"VOD_API_ENDPOINT": loopback_http(empty_queue), "TENCENTCLOUD_SECRETID": "AKIDrole"}
    env |= {"TENCENTCLOUD_SECRETKEY": "role-key-0123456789", "TENCENTCLOUD_SESSIONTOKEN": "role-token-0123456789"}
    root, written = logging.getLogger(), io.StringIO()
    handler, level = logging.StreamHandler(written), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # what logging.basicConfig(level=logging.DEBUG) in a hook does
    try:
        report, _ = _drain(SdkEventQueue(make_client(load_vod_api_settings(env)), None), tmp_path)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert report.stopped == "empty" and "HTTP connection" in written.getvalue()  # the log did take DEBUG lines
    assert "role-token-0123456789" not in written.getvalue() and "Signature=" not in written.getvalue()
