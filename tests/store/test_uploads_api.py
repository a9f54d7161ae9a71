"""The uploads function (GET /uploads, GET /uploads/{fileId}) on every store: an uploader sees its own uploads
as VOD's events arrive, nobody else's; pages are complete and stable; polling is cheap (ETag, ?wait)."""

from __future__ import annotations

import base64
import inspect
import itertools
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from shared import status_service
from shared.auth import authenticate
from shared.config import UploadsSettings, load_uploads_settings
from shared.http.model import Endpoint
from shared.http.serve import serve
from shared.ingest import ingest_event
from shared.source_context import seal
from shared.status_service import (
    ANSWER_BYTES,
    MAX_OUTPUT_URLS,
    MAX_OUTPUTS,
    MAX_TEXT,
    POLL_SECONDS,
    carried_size,
    make_uploads_endpoint,
)
from shared.store import EventStore, StoreUnavailable, open_store
from shared.store import base as store_base
from tests.conftest import CONTEXT_KEY, JWT_SECRET, KEYS, Output
from tests.scf import load_event, outputs_event, snapshots_event
from vodtesting import dev_token, http_event, vod_event
from vodtesting.pgserver import database_name, run_sql

TASK = "task-1"


def token(user: str) -> str:
    return dev_token(user, JWT_SECRET)


def upload_of(user: str, file_id: str, **fields: Any) -> dict[str, Any]:
    return vod_event(
        "NewFileUpload", FileId=file_id, SourceContext=seal(user, "r", CONTEXT_KEY), ProcedureTaskId=TASK, **fields
    )


def task(file_id: str, status: str, err: int = 0) -> dict[str, Any]:
    return vod_event("ProcedureStateChanged", FileId=file_id, TaskId=TASK, Status=status, ErrCode=err)


Get = Callable[..., dict[str, Any]]


@pytest.fixture
def writer(new_url: Callable[[], str]) -> Any:
    url = new_url()
    store = open_store(url)
    store.schema_version()
    yield url, store
    store.close()


@pytest.fixture
def get(writer: tuple[str, EventStore], vod_function: Callable[..., Any]) -> Get:
    """GET (or `method`) through the deployed uploads handler (read-only store), as `user`."""
    url, _ = writer
    handler = vod_function("uploads", env={"AUTH_JWT_SECRET": JWT_SECRET, "DATABASE_URL": url})

    def call(
        path: str,
        user: str = "ann",
        headers: dict[str, str] | None = None,
        method: str = "GET",
        shape: str = "apigw",
        **query: str | list[str],
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token(user)}", **(headers or {})}
        event = http_event(method, path, headers=headers, query=query, shape=shape)
        result: dict[str, Any] = handler(event, {"request_id": "r"})
        body = json.loads(result["body"]) if result["body"] else None
        return {"status": result["statusCode"], "body": body, "headers": result["headers"]}

    return call


def record(store: EventStore, payload: dict[str, Any], at: float = 1.0) -> None:
    ingest_event(store, payload, received_at=at, keys=KEYS)


def test_an_uploader_follows_its_upload_through_the_task_flow(writer: tuple[str, EventStore], get: Get) -> None:
    _, store = writer
    seen = []
    for payload, at in [
        (upload_of("ann", "f1", Name="clip"), 1.0),
        (task("f1", "PROCESSING"), 2.0),
        (task("f1", "FINISH"), 3.0),
        (vod_event("FileDeleted", FileId="f1"), 4.0),
    ]:
        record(store, payload, at)
        answer = get("/uploads/f1")
        assert answer["status"] == 200
        seen.append((answer["body"]["status"], [t["status"] for t in answer["body"]["tasks"]]))
    assert seen == [
        ("processing", []),
        ("processing", ["processing"]),
        ("finished", ["finished"]),
        ("deleted", ["finished"]),
    ]
    # ("processing" at first: the upload names a task flow whose first event is still to come)
    one = get("/uploads/f1")["body"]
    assert (one["fileId"], one["name"], one["tasks"][0]["taskId"]) == ("f1", "clip", TASK)


def test_another_task_of_the_file_does_not_end_the_wait_for_its_task_flow(
    writer: tuple[str, EventStore], get: Get
) -> None:
    # The app's own ProcessMedia, done before the upload's task flow reports (VOD's default: FINISH only)
    _, store = writer
    seen = []
    for payload, at in [
        (upload_of("ann", "f4"), 1.0),
        (vod_event("ProcedureStateChanged", FileId="f4", TaskId="pm-2", Status="FINISH", ErrCode=0), 2.0),
        (task("f4", "FINISH", err=70000), 3.0),
    ]:
        record(store, payload, at)
        seen.append(get("/uploads/f4")["body"]["status"])
    assert seen == ["processing", "processing", "failed"]


def test_a_failed_task_flow_says_so(writer: tuple[str, EventStore], get: Get) -> None:
    _, store = writer
    record(store, upload_of("ann", "f2"))
    record(store, task("f2", "FINISH", err=70000), 2.0)
    body = get("/uploads/f2")["body"]
    assert (body["status"], body["tasks"][0]["errCode"]) == ("failed", 70000)


ALL_OUTPUTS = ["Transcode", "SnapshotByTimeOffset", "CoverBySnapshot", "AdaptiveDynamicStreaming"]


@pytest.mark.parametrize(
    ("deleted_parts", "outputs", "media_url"),
    [
        ([], ALL_OUTPUTS, True),
        # transcodes of that definition (0: all), and the covers media processing made
        (
            [{"Type": "TranscodeFiles", "Definition": 100030}],
            ["SnapshotByTimeOffset", "AdaptiveDynamicStreaming"],
            True,
        ),
        ([{"Type": "TranscodeFiles", "Definition": 0}], ["SnapshotByTimeOffset", "AdaptiveDynamicStreaming"], True),
        (
            [{"Type": "TranscodeFiles", "Definition": 100040}],
            ["Transcode", "SnapshotByTimeOffset", "AdaptiveDynamicStreaming"],
            True,
        ),
        ([{"Type": "AdaptiveDynamicStreamingFiles", "Definition": 10}], ALL_OUTPUTS[:3], True),
        ([{"Type": "AdaptiveDynamicStreamingFiles", "Definition": 20}], ALL_OUTPUTS, True),
        ([{"Type": "OriginalFiles", "Definition": 0}], ALL_OUTPUTS, False),
        (None, [], False),  # the whole file (no DeleteParts): every file of it
    ],
)
def test_files_vod_deleted_are_not_offered(
    writer: tuple[str, EventStore],
    get: Get,
    deleted_parts: list[dict[str, Any]] | None,
    outputs: list[str],
    media_url: bool,
) -> None:
    # GIVEN a finished task flow (a transcode at definition 100030, snapshots, a cover, an adaptive stream at
    # definition 10), then DeleteMedia of some of the file's parts (VOD's FileDeleted with DeleteParts)
    _, store = writer
    record(store, upload_of("ann", "f8", MediaUrl="http://vod.example/f8.mp4", CoverUrl="http://vod.example/f8.jpg"))
    finish = load_event("vod_procedure_finish")
    finish["ProcedureStateChangeEvent"].update(FileId="f8", TaskId=TASK)
    played = [{"Definition": 10, "Url": "http://vod.example/f8/adp.10.m3u8"}]
    output = {"Definition": 10, "PlayInfoSet": played}
    stream = {"Status": "SUCCESS", "ErrCode": 0, "Input": {"Definition": 10}, "Output": output}
    adaptive = {"Type": "AdaptiveDynamicStreaming", "AdaptiveDynamicStreamingTask": stream}
    finish["ProcedureStateChangeEvent"]["MediaProcessResultSet"].append(adaptive)
    record(store, finish, 2.0)
    if deleted_parts != []:
        info = [{"FileId": "f8", "DeleteParts": deleted_parts or []}]
        record(store, vod_event("FileDeleted", FileId="f8", FileDeleteResultInfo=info), 3.0)
    # THEN the status API offers no URL of a deleted file, in the upload and in the list; the rest stays
    body, listed = get("/uploads/f8")["body"], get("/uploads")["body"]["uploads"]
    assert listed == [body]
    assert [o["type"] for o in body["tasks"][0]["outputs"]] == outputs
    assert (body["status"], body["mediaUrl"] is not None, body["coverUrl"] is not None) == (
        "deleted" if deleted_parts is None else "finished",
        media_url,
        media_url,
    )


def _transcode_finished(file_id: str, task_id: str) -> dict[str, Any]:
    finish = load_event("vod_procedure_finish")  # a transcode at definition 100030, among other outputs
    finish["ProcedureStateChangeEvent"].update(FileId=file_id, TaskId=task_id)
    return finish


@pytest.mark.parametrize(
    ("arrivals", "transcodes_shown"),
    [
        # a transcode redone after DeleteMedia removed it: the new task's files are there, the old task's are not
        ([("task-1", 2.0), ("delete", 3.0), ("task-2", 4.0)], ["task-2"]),
        # its files deleted again after that: neither
        ([("task-1", 2.0), ("delete", 3.0), ("task-2", 4.0), ("delete", 5.0)], []),
        ([("task-1", 2.0), ("task-2", 3.0), ("delete", 4.0)], []),
        # the same task reported again after the delete (VOD's own word, in fetch mode): it made nothing again
        ([("task-1", 2.0), ("delete", 3.0), ("task-1 again", 4.0)], []),
        # the same deliveries, stored in another order: the arrival times decide, not the order of storing
        ([("task-2", 4.0), ("delete", 3.0), ("task-1", 2.0)], ["task-2"]),
        # a delete in the same second as the task: deleted (a URL that may answer 404 is not offered)
        ([("task-1", 2.0), ("delete", 2.0)], []),
    ],
)
def test_files_made_again_after_a_delete_are_offered(
    writer: tuple[str, EventStore], get: Get, arrivals: list[tuple[str, float]], transcodes_shown: list[str]
) -> None:
    _, store = writer
    record(store, upload_of("ann", "f10"))
    part = [{"FileId": "f10", "DeleteParts": [{"Type": "TranscodeFiles", "Definition": 100030}]}]
    for what, at in arrivals:
        deleted = vod_event("FileDeleted", FileId="f10", FileDeleteResultInfo=part)
        deleted["FileDeleteEvent"]["DeleteTime"] = at  # two deletes of the same part are two deliveries
        task_id, _, again = what.partition(" ")
        finished = _transcode_finished("f10", task_id)
        finished["ProcedureStateChangeEvent"]["SessionId"] = again  # another body: not a duplicate
        record(store, deleted if what == "delete" else finished, at)
    tasks = get("/uploads/f10")["body"]["tasks"]
    shown = [t["taskId"] for t in tasks if any(o["type"] == "Transcode" for o in t["outputs"])]
    assert shown == transcodes_shown


@pytest.mark.parametrize(("mode", "status"), [("", "processing"), ("Change", "processing"), ("None", "uploaded")])
def test_no_task_events_asked_for_means_none_awaited(
    writer: tuple[str, EventStore], vod_function: Callable[..., Any], mode: str, status: str
) -> None:
    # GIVEN an upload that started a task flow, no task event yet, and the deployment's VOD_TASK_NOTIFY_MODE
    url, store = writer
    record(store, upload_of("ann", "f9"))
    env = {"AUTH_JWT_SECRET": JWT_SECRET, "DATABASE_URL": url, "VOD_TASK_NOTIFY_MODE": mode}
    event = http_event("GET", "/uploads/f9", headers={"Authorization": f"Bearer {token('ann')}"})
    result = vod_function("uploads", env=env)(event, {"request_id": "r"})
    # THEN it is processing while events will come; with None (VOD sends none) it stays what is known: uploaded
    assert json.loads(result["body"])["status"] == status


@pytest.mark.parametrize("file_id", ["f3", "nobodys", "unknown", "x" * 300])
def test_anything_not_yours_is_the_same_404(writer: tuple[str, EventStore], get: Get, file_id: str) -> None:
    _, store = writer
    record(store, upload_of("ann", "f3"))
    record(store, vod_event("NewFileUpload", FileId="nobodys", SourceContext="u1:r:bob"))  # not sealed: nobody's
    answer = get(f"/uploads/{file_id}", user="bob")
    assert (answer["status"], answer["body"]["error"]) == (404, {"code": "not_found", "message": "no such upload"})
    assert get("/uploads", user="bob")["body"] == {"uploads": [], "nextCursor": None}


def test_a_page_seeks_its_cursor_in_an_index_instead_of_sorting_all_the_users_uploads(tmp_path: Path) -> None:
    # GIVEN a SQLite store (its query plans are readable), the statements of one page after a cursor, as run
    url = f"sqlite:///{tmp_path / 'vod.sqlite3'}"
    store = open_store(url)
    store.user_uploads("ann", 20)  # the schema made, a connection kept
    run: list[str] = []
    store._idle[0].set_trace_callback(run.append)
    store.user_uploads("ann", 20, before=(1.0, "f1"))
    store.close()
    [page] = [sql for sql in run if "FROM uploads WHERE user_id" in sql]
    # THEN the page reads the user's rows from the index, in order, from the cursor on: no sort of them all
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        plan = " ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {page}"))  # its values written in
    assert "USING INDEX uploads_by_user_page (user_id=? AND (first_seen_at,file_id)<(?,?))" in plan
    assert "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize(
    ("room", "shown", "more"),
    [(10, ["f2", "f1"], False), (9, ["f2"], True), (1, ["f2"], True)],  # the first always shown, though alone too big
    ids=["exactly-full", "one-over", "first-too-big"],
)
def test_a_page_takes_uploads_while_their_views_fit_its_room(
    writer: tuple[str, EventStore], room: int, shown: list[str], more: bool
) -> None:
    _, store = writer
    for at, file_id in enumerate(["f1", "f2"], start=1):
        record(store, upload_of("ann", file_id), at=float(at))
    page, next_page = store.user_page("ann", 10, None, lambda upload, tasks: (upload.file_id, 5), room)
    assert ([view for _, view in page], next_page) == (shown, more)


@pytest.mark.parametrize(
    ("read_bytes", "read_tasks", "batches"),
    [
        (1 << 20, 100, [["f1/a", "f1/b", "f2/a", "f3/a"]]),  # a page's typical tasks: one statement
        (10_000, 100, [["f1/a", "f1/b"], ["f2/a"], ["f3/a"]]),  # a large one alone, the small ones around it
        (10_000, 1, [["f1/a"], ["f1/b"], ["f2/a"], ["f3/a"]]),
    ],
)
def test_a_page_reads_its_tasks_a_batch_of_bytes_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_bytes: int, read_tasks: int, batches: list[list[str]]
) -> None:
    # GIVEN uploads whose tasks are small but one, of a snapshot every second (SQLite: its statements are seen)
    url = f"sqlite:///{tmp_path / 'vod.sqlite3'}"
    store = open_store(url)
    for at, file_id in enumerate(["f3", "f2", "f1"], start=1):
        record(store, upload_of("ann", file_id), at=float(at))
    for file_id, task_id, count in [("f1", "b", 3), ("f1", "a", 3), ("f2", "a", 300), ("f3", "a", 3)]:
        record(store, snapshots_event(file_id, task_id, count), at=5.0)
    monkeypatch.setattr(store_base, "READ_BYTES", read_bytes)
    monkeypatch.setattr(store_base, "READ_TASKS", read_tasks)
    run: list[str] = []
    store._idle[0].set_trace_callback(run.append)
    # WHEN a page is read
    page, more = store.user_page("ann", 10, None, lambda upload, tasks: ([t.task_id for t in tasks], 0), 0)
    store.close()
    # THEN each upload has its own tasks, and a statement reads as many as make up READ_BYTES (a large one alone)
    assert ([(u.file_id, ids) for u, ids in page], more) == ([("f1", ["a", "b"]), ("f2", ["a"]), ("f3", ["a"])], False)
    read = [sql for sql in run if "AND task_id = " in sql]
    assert [re.findall(r"file_id = '(\w+)' AND task_id = '(\w+)'", sql) for sql in read] == [
        [tuple(key.split("/")) for key in batch] for batch in batches
    ]


def test_pages_are_complete_and_stable_while_uploads_arrive(writer: tuple[str, EventStore], get: Get) -> None:
    _, store = writer
    for i in range(130):
        record(store, upload_of("ann", f"p{i:03d}"), at=float(i))
    collected: list[str] = []
    cursor: str | None = None
    while True:
        answer = get("/uploads", limit="50", **({"cursor": cursor} if cursor else {}))
        collected += [u["fileId"] for u in answer["body"]["uploads"]]
        record(store, upload_of("ann", f"new{len(collected)}"), at=1000.0 + len(collected))  # newer: page 1
        cursor = answer["body"]["nextCursor"]
        if cursor is None:
            break
    assert collected == [f"p{i:03d}" for i in reversed(range(130))]  # newest first, each once, none lost
    # Unpaged: every upload, in the same order (newest first), the ones added while paging included.
    everything = [u.file_id for u in store.user_uploads("ann")]
    assert everything == [f"new{n}" for n in (130, 100, 50)] + collected


def test_all_of_a_users_uploads_are_read_a_page_at_a_time_and_come_out_as_one_list(
    writer: tuple[str, EventStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    # (vod-uploads list: one statement over a user's tens of thousands would sort them all, past the time limit)
    _, store = writer
    for i in range(20):
        record(store, upload_of("ann", f"p{i:02d}"), at=float(i % 7))  # uploads received at the same time
    record(store, upload_of("bob", "b0"))
    newest_first = sorted((f"p{i:02d}" for i in range(20)), key=lambda f: (int(f[1:]) % 7, f), reverse=True)
    reads: list[object] = []
    run = store._run

    def counted(work: Any, **kwargs: Any) -> Any:
        reads.append(work)
        return run(work, **kwargs)

    monkeypatch.setattr(store, "_run", counted)
    for page, statements in [(1000, 1), (3, 7), (4, 6)]:  # 3: pages that end between uploads of the same time;
        monkeypatch.setattr(store_base, "USER_UPLOADS_PAGE", page)  # 4: the last one full, then an empty one
        reads.clear()
        assert [u.file_id for u in store.user_uploads("ann")] == newest_first
        assert len(reads) == statements


def test_an_upload_a_late_event_moves_down_is_never_missed(writer: tuple[str, EventStore], get: Get) -> None:
    # An upload is placed by its earliest received upload event; one received earlier and committed later (a cold
    # connection, a PULL batch) moves it down the list: after a cursor it may show again, but never be missed.
    _, store = writer
    for i in range(9):
        record(store, upload_of("ann", f"p{i}"), at=10.0 + i)
    first = get("/uploads", limit="3")["body"]  # p8, p7, p6
    record(store, upload_of("ann", "p8", Name="p8 again"), at=1.0)  # shown already: now placed last
    record(store, upload_of("ann", "p4", Name="p4 again"), at=2.0)  # still to come: now placed before p8
    record(store, task("p6", "PROCESSING"), at=0.5)  # a task event: no move
    collected, cursor = [u["fileId"] for u in first["uploads"]], first["nextCursor"]
    while cursor is not None:
        answer = get("/uploads", limit="3", cursor=cursor)["body"]
        collected += [u["fileId"] for u in answer["uploads"]]
        cursor = answer["nextCursor"]
    assert collected == ["p8", "p7", "p6", "p5", "p3", "p2", "p1", "p0", "p4", "p8"]


def test_an_upload_whose_task_event_came_first_is_listed_by_its_upload_event(
    writer: tuple[str, EventStore], get: Get
) -> None:
    # GIVEN ann's uploads, and a task event of a new file received before them (a retried delivery, a PULL batch)
    _, store = writer
    record(store, task("new", "PROCESSING"), at=1.0)
    for i in range(5):
        record(store, upload_of("ann", f"p{i}"), at=10.0 + i)
    # WHEN the new file's upload event comes THEN it is ann's newest upload: on page 1, where a client looks
    record(store, upload_of("ann", "new"), at=20.0)
    assert [u["fileId"] for u in get("/uploads", limit="3")["body"]["uploads"]] == ["new", "p4", "p3"]


def test_every_upload_an_event_may_name_can_be_fetched_and_paged_past(writer: tuple[str, EventStore], get: Get) -> None:
    # FileIds no VOD upload has, but that an event may carry (a PUSH body is not VOD's word without
    # VOD_CALLBACK_CONFIRM=fetch): the owner can still fetch each one, and a page may end on it.
    _, store = writer
    odd = ["f\u00a0x", "f\tx", "f\u2028x", "f\u200bx", "f/x", " ", "uploads"]
    for i, file_id in enumerate(["first", *odd, "last"]):
        record(store, upload_of("ann", file_id), at=float(i))
    collected, cursor = [], None
    while True:
        answer = get("/uploads", limit="1", **({"cursor": cursor} if cursor else {}))
        assert answer["status"] == 200, answer
        collected += [u["fileId"] for u in answer["body"]["uploads"]]
        if (cursor := answer["body"]["nextCursor"]) is None:
            break
    assert collected == ["last", *reversed(odd), "first"]
    for file_id in odd:
        assert get(f"/uploads/{quote(file_id, safe='')}")["body"]["fileId"] == file_id


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/uploads", "list"),
        ("/", "list"),
        ("/uploads/f1", "f1"),
        ("/release/uploads/f1", "f1"),  # behind a gateway's stage
        ("/f1", "f1"),  # a function URL's path
        ("/uploads/uploads", "uploads"),  # a FileId by its place, whatever it says
        ("/uploads/f1/uploads", 404),
        ("/uploads/f1/more", 404),
    ],
)
def test_the_path_names_the_list_or_one_upload_by_position(
    writer: tuple[str, EventStore], get: Get, path: str, answer: str | int
) -> None:
    _, store = writer
    for file_id in ("f1", "uploads"):
        record(store, upload_of("ann", file_id), at=1.0)
    got = get(path)
    if answer == 404:
        assert (got["status"], got["body"]["error"]["code"]) == (404, "not_found")
    elif answer == "list":
        assert got["status"] == 200 and len(got["body"]["uploads"]) == 2
    else:
        assert got["status"] == 200 and got["body"]["fileId"] == answer


def snapshots(file_id: str, task_id: str, count: int) -> dict[str, Any]:
    """A finished task that took a sample snapshot every second: `count` image URLs (VOD's shape)."""
    images = [
        f"https://1500000000.vod2.myqcloud.com/6c9a5b21vodcq1500000000/{file_id}/{i:05d}.jpg" for i in range(count)
    ]
    output = {"Definition": 10, "SampleType": "Time", "Interval": 1, "ImageUrlSet": images, "WaterMarkDefinition": []}
    result = {"Type": "SampleSnapshot", "SampleSnapshotTask": {"Status": "SUCCESS", "ErrCode": 0, "Output": output}}
    return vod_event(
        "ProcedureStateChanged", FileId=file_id, TaskId=task_id, Status="FINISH", MediaProcessResultSet=[result]
    )


def test_a_task_shows_its_first_outputs_and_counts_them_all(writer: tuple[str, EventStore], get: Get) -> None:
    _, store = writer
    record(store, upload_of("ann", "f11"))
    record(store, outputs_event("f11", "t-many", MAX_OUTPUTS + 5), 2.0)  # a forged body's shape
    [shown] = get("/uploads/f11")["body"]["tasks"]
    assert (len(shown["outputs"]), shown["outputCount"]) == (MAX_OUTPUTS, MAX_OUTPUTS + 5)


def test_pages_hold_what_scf_can_answer(writer: tuple[str, EventStore], get: Get) -> None:
    # SCF answers at most 6 MB: a page stops short of `limit` where the next upload would not fit, and goes on
    # from there; an output lists its first URLs, and how many it has.
    _, store = writer
    for i in range(50):  # ~5 MB as shown: 50 uploads of 12 tasks of 150 images (the first 100 shown)
        record(store, upload_of("ann", f"s{i:02d}"), at=float(i))
        for t in range(12):
            record(store, snapshots(f"s{i:02d}", f"snap-{t:02d}", 150), at=float(i))
    collected, sizes, cursor = [], [], None
    while True:
        answer = get("/uploads", limit="100", **({"cursor": cursor} if cursor else {}))
        sizes.append(carried_size(answer["body"]))
        collected += [u["fileId"] for u in answer["body"]["uploads"]]
        if (cursor := answer["body"]["nextCursor"]) is None:
            break
    assert collected == [f"s{i:02d}" for i in reversed(range(50))]  # each once, in order
    assert len(sizes) > 1 and max(sizes) <= ANSWER_BYTES
    outputs = get("/uploads/s00")["body"]["tasks"][0]["outputs"]
    assert [(o["urlCount"], len(o["urls"])) for o in outputs] == [(150, MAX_OUTPUT_URLS)]
    assert outputs[0]["urls"][-1].endswith(f"/s00/{MAX_OUTPUT_URLS - 1:05d}.jpg")  # the first ones, in VOD's order


def test_an_upload_too_large_for_one_answer_shows_the_tasks_that_fit(writer: tuple[str, EventStore], get: Get) -> None:
    _, store = writer
    record(store, upload_of("ann", "big"))
    for t in range(500):  # ~11 kB each as shown: more than one answer holds
        record(store, snapshots("big", f"snap-{t:03d}", MAX_OUTPUT_URLS), at=2.0)
    one, page = get("/uploads/big")["body"], get("/uploads")["body"]
    # (sizes and ids compared, not the bodies: a failure would print megabytes)
    shown = [t["taskId"] for t in one["tasks"]]
    assert (one.get("truncated"), shown) == (True, [f"snap-{t:03d}" for t in range(len(shown))]) and len(shown) < 500
    assert carried_size(one) <= ANSWER_BYTES and [carried_size(u) for u in page["uploads"]] == [carried_size(one)]


def test_an_upload_whose_own_fields_are_huge_still_fits_in_an_answer(writer: tuple[str, EventStore], get: Get) -> None:
    # A body forged with a Sign seen once: a 1.4 MB name and cover URL, each quote escaped twice as SCF carries it
    _, store = writer
    huge = '"' * 1_400_000
    record(store, upload_of("ann", "big", Name=huge, CoverUrl=huge, MediaUrl=huge))
    one, page = get("/uploads/big"), get("/uploads")
    assert (one["status"], page["status"]) == (200, 200)
    assert carried_size(one["body"]) <= ANSWER_BYTES and carried_size(page["body"]) <= ANSWER_BYTES
    assert len(one["body"]["name"]) == len(one["body"]["coverUrl"]) == MAX_TEXT


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"limit": "0"}, "invalid_parameter"),
        ({"limit": "101"}, "invalid_parameter"),
        ({"limit": "1" * 5000}, "invalid_parameter"),  # past int()'s 4300 digits
        ({"limit": "1" * 4301}, "invalid_parameter"),  # just past them: refused by its length, before int() is asked
        ({"limit": "\uff15"}, "invalid_parameter"),  # a fullwidth 5: a digit to Python's int(), not to the API
        ({"limit": "\u00b2"}, "invalid_parameter"),  # a superscript 2: isdigit(), yet int() refuses it
        ({"cursor": "not-ours"}, "invalid_cursor"),
        ({"cursor": _b64(b"[" * 5000)}, "invalid_cursor"),  # deeper than the JSON decoder goes
        ({"cursor": _b64(b'[NaN,"f1"]')}, "invalid_cursor"),
        ({"cursor": _b64(b'[true,"f1"]')}, "invalid_cursor"),
        ({"cursor": _b64(b"[1" + b"0" * 400 + b',"f1"]')}, "invalid_cursor"),  # too large for a float
        ({"cursor": _b64(b'[1,"\\ud800"]')}, "invalid_cursor"),  # no UTF-8 form: the driver would fail
        ({"cursor": _b64(b'[1,"a\\u0000b"]')}, "invalid_cursor"),  # PostgreSQL refuses a NUL in text
        ({"cursor": _b64(b'[1,"' + b"f" * 1000 + b'"]')}, "invalid_cursor"),
        ({"page": "2"}, "invalid_parameter"),
    ],
)
def test_bad_parameters_are_400(writer: tuple[str, EventStore], get: Get, query: dict[str, str], code: str) -> None:
    answer = get("/uploads", **query)
    assert (answer["status"], answer["body"]["error"]["code"]) == (400, code)


@pytest.mark.parametrize("shape", ["apigw", "function_url"])
@pytest.mark.parametrize(
    ("query", "twice"),
    [
        ({"limit": ["2", "100"]}, "limit"),
        ({"limit": "2", "cursor": [_b64(b'[1,"f1"]'), _b64(b'[2,"f2"]')]}, "cursor"),
    ],
)
def test_a_parameter_sent_twice_is_400_whichever_trigger_brings_it(
    writer: tuple[str, EventStore], get: Get, shape: str, query: dict[str, str | list[str]], twice: str
) -> None:
    # As a trigger gives a name sent twice (a list): which value the client meant is in doubt
    answer = get("/uploads", shape=shape, **query)
    error = {"code": "invalid_parameter", "message": f"parameter '{twice}' given more than once"}
    assert (answer["status"], answer["body"]["error"]) == (400, error)


@pytest.mark.parametrize(
    ("query", "listed", "more"),
    [
        ({}, 20, True),  # the default page
        ({"limit": "1"}, 1, True),
        ({"limit": "100"}, 25, False),  # the largest page: all of them
    ],
)
def test_a_page_holds_the_default_or_the_limit_asked(
    writer: tuple[str, EventStore], get: Get, query: dict[str, str], listed: int, more: bool
) -> None:
    # GIVEN 25 uploads of ann
    _, store = writer
    for i in range(25):
        record(store, upload_of("ann", f"p{i:02d}"), at=float(i))
    # WHEN she lists them, with a limit at its bounds or none
    answer = get("/uploads", **query)
    # THEN the page holds that many, newest first, and a cursor only when more are left
    assert answer["status"] == 200
    assert [u["fileId"] for u in answer["body"]["uploads"]] == [f"p{i:02d}" for i in reversed(range(25))][:listed]
    assert (answer["body"]["nextCursor"] is not None) == more


@pytest.mark.parametrize(
    ("wait", "status"),
    [
        ("0", 200),  # its lower bound, the default written out: answered at once, as without it
        ("-1", 400),
        ("9" * 5000, 400),  # past int()'s 4300 digits
        ("\u00b2", 400),  # a superscript 2: isdigit(), yet int() refuses it
        (["20", "0"], 400),  # sent twice: a wait of 20 s, or none?
    ],
    ids=["zero", "negative", "too-long", "not-ascii", "twice"],
)
def test_an_uploads_wait_is_a_whole_number_of_seconds(
    writer: tuple[str, EventStore], get: Get, wait: str | list[str], status: int
) -> None:
    _, store = writer
    record(store, upload_of("ann", "f1"))
    answer = get("/uploads/f1", wait=wait)
    assert answer["status"] == status
    said = answer["body"]["fileId"] if status == 200 else answer["body"]["error"]["code"]
    assert said == ("f1" if status == 200 else "invalid_parameter")


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"wiat": "30"}, "'wiat'"),
        ({"limit": "5"}, "'limit'"),
        ({"cursor": "x"}, "'cursor'"),
        ({"y" * 40: ""}, repr("y" * 40)),  # a line's worth: whole
        ({"y" * 41: ""}, repr("y" * 40 + "…")),
        ({"x" * 5000: ""}, None),
    ],
    ids=["wiat", "limit", "cursor", "40-characters", "41-characters", "a-long-name"],
)
def test_an_upload_takes_only_wait(
    writer: tuple[str, EventStore], get: Get, query: dict[str, str], named: str | None
) -> None:
    # A mistyped wait would end the long poll at once, unsaid
    _, store = writer
    record(store, upload_of("ann", "f1"))
    answer = get("/uploads/f1", **query)
    assert (answer["status"], answer["body"]["error"]["code"]) == (400, "invalid_parameter")
    # the name as sent, but never more than a line's worth of it
    said = answer["body"]["error"]["message"]
    assert said.startswith(f"unknown parameter {named or repr('x' * 40 + '…')}; allowed: wait")


# If-None-Match as clients and proxies write it (RFC 9110 13.1.2): the tag, weakened, in a list, or `*`.
IF_NONE_MATCH = {
    "the tag": "{tag}",
    "weakened": "W/{tag}",
    "in a list": '"other", {tag} , W/"more"',
    "any": "*",
    "any, spaced": " * ",
}


@pytest.mark.parametrize("written", IF_NONE_MATCH.values(), ids=IF_NONE_MATCH)
def test_an_unchanged_upload_is_a_304(writer: tuple[str, EventStore], get: Get, written: str) -> None:
    _, store = writer
    record(store, upload_of("ann", "f4"))
    first = get("/uploads/f4")
    tag = first["headers"]["ETag"]
    again = get("/uploads/f4", headers={"If-None-Match": written.format(tag=tag)})
    assert (again["status"], again["body"], again["headers"]["ETag"]) == (304, None, tag)
    others = get("/uploads/f4", headers={"If-None-Match": '"other", W/"more"'})
    assert (others["status"], others["body"]) == (200, first["body"])
    record(store, task("f4", "PROCESSING"), 2.0)
    changed = get("/uploads/f4", headers={"If-None-Match": tag})
    assert changed["status"] == 200 and changed["headers"]["ETag"] != tag


@pytest.mark.parametrize(
    ("lines", "status"),
    [
        (['"other"', "{tag}"], 304),
        (["{tag}", '"other"'], 304),
        (['"other"', 'W/"more"'], 200),
        (["{tag}", 5], 304),  # a line that is not text: no list is made, the first line counts
    ],
    ids=["the-tag-second", "the-tag-first", "neither", "not-text"],
)
def test_if_none_match_sent_twice_is_one_list(
    writer: tuple[str, EventStore], get: Get, lines: list[str], status: int
) -> None:
    # GIVEN the header on two lines, which a gateway passes on as a list (RFC 9110 §5.3: one list, comma-joined)
    _, store = writer
    record(store, upload_of("ann", "f4"))
    tag = get("/uploads/f4")["headers"]["ETag"]
    # WHEN asked with it, THEN every tag in it counts, not only the first line's
    sent: Any = {"If-None-Match": [line.format(tag=tag) if isinstance(line, str) else line for line in lines]}
    assert get("/uploads/f4", headers=sent)["status"] == status


def test_a_head_is_answered_as_a_get(writer: tuple[str, EventStore], get: Get) -> None:
    _, store = writer
    record(store, upload_of("ann", "f8"))
    for path in ("/uploads", "/uploads/f8"):
        full, head = get(path), get(path, method="HEAD")  # the HTTP server in front drops HEAD's body
        assert full["body"] is not None
        assert (head["status"], head["body"], head["headers"]["ETag"]) == (200, full["body"], full["headers"]["ETag"])


class Clock:
    """Fake time, from now (the token was issued now): sleeping advances it, and may deliver an event
    `change_at` seconds in."""

    def __init__(self, store: EventStore, change_at: float | None, *, step_at_first_sleep: float = 0.0) -> None:
        self.start = float(int(time.time()))
        self.now, self.store, self.change_at, self.sleeps = self.start, store, change_at, 0
        self.step, self.day_offset = step_at_first_sleep, 0.0  # the time of day's: an NTP correction, say

    def endpoint(self, settings: UploadsSettings, provider: Callable[[], EventStore]) -> Endpoint:
        return make_uploads_endpoint(
            settings, provider, now=lambda: self.now + self.day_offset, sleep=self.sleep, elapsed=lambda: self.now
        )

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        self.day_offset, self.step = self.day_offset + self.step, 0.0
        if self.change_at is not None and self.now - self.start >= self.change_at:
            record(self.store, task("f5", "PROCESSING"), 2.0)
            self.change_at = None


@pytest.mark.parametrize(
    ("change_at", "returned_at", "status", "if_none_match", "max_wait", "day_step"),
    [
        (3.0, 3.0, "processing", None, None, 0),
        (None, 8.0, "uploaded", None, None, 0),
        (3.0, 3.0, "processing", "W/{tag}", None, 0),  # a proxy weakened the tag: still the same upload
        (None, 8.0, 304, "W/{tag}", None, 0),  # unchanged all along: the client's version is current
        (None, 0.0, "uploaded", '"older"', None, 0),  # the client has another version: this one at once
        (3.0, 0.0, 304, "*", None, 0),  # "any version": no change can end such a wait, so none is held
        (None, 2.0, 304, "W/{tag}", "2", 0),  # the operator's bound (a proxy's timeout), not the caller's 8
        (None, 0.0, 304, "W/{tag}", "0", 0),
        # The time of day set back (or on) an hour during the wait: it ends at its bound, not the function's timeout
        (None, 8.0, 304, "W/{tag}", None, -3600),
        (None, 8.0, 304, "W/{tag}", None, 3600),
    ],
)
def test_wait_returns_on_a_change_or_at_its_bound(
    writer: tuple[str, EventStore],
    change_at: float | None,
    returned_at: float,
    status: str | int,
    if_none_match: str | None,
    max_wait: str | None,
    day_step: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, store = writer
    record(store, vod_event("NewFileUpload", FileId="f5", SourceContext=seal("ann", "r", CONTEXT_KEY)))
    clock = Clock(store, change_at, step_at_first_sleep=day_step)
    bound = {"UPLOADS_MAX_WAIT_SECONDS": max_wait} if max_wait else {}
    settings = load_uploads_settings({"AUTH_JWT_SECRET": JWT_SECRET, "DATABASE_URL": url, **bound})
    reader = open_store(url, read_only=True)
    endpoint = clock.endpoint(settings, lambda: reader)
    headers = {"Authorization": f"Bearer {token('ann')}"}
    first = serve(http_event("GET", "/uploads/f5", headers=headers), {}, endpoint, settings.http, methods=("GET",))
    tag = first["headers"]["ETag"]
    if if_none_match is not None:
        headers["If-None-Match"] = if_none_match.format(tag=tag)
    event = http_event("GET", "/uploads/f5", headers=headers, query={"wait": "8"})
    whole_reads: list[object] = []
    read_whole = reader.user_upload

    def noted(*args: Any) -> Any:
        whole_reads.append(args)
        return read_whole(*args)

    monkeypatch.setattr(reader, "user_upload", noted)
    result = serve(event, {}, endpoint, settings.http, methods=("GET",))
    reader.close()
    assert (json.loads(result["body"])["status"] if result["statusCode"] == 200 else result["statusCode"]) == status
    assert clock.now - clock.start == returned_at  # woke at the change, or slept the whole wait
    assert clock.sleeps == returned_at / POLL_SECONDS  # in polls of POLL_SECONDS
    # Each poll reads one short row: the upload and its tasks only at first and when they changed
    assert len(whole_reads) == 1 + (change_at == returned_at)


@pytest.mark.parametrize("slow", ["first read", "token check"])
def test_a_slow_token_check_or_first_read_counts_toward_the_wait(
    writer: tuple[str, EventStore], monkeypatch: pytest.MonkeyPatch, slow: str
) -> None:
    # The function's timeout allows the longest wait plus one read, not two: the wait counts from the start (a token
    # checked against the issuer's key set, read then, included).
    url, store = writer
    record(store, vod_event("NewFileUpload", FileId="f5", SourceContext=seal("ann", "r", CONTEXT_KEY)))
    clock = Clock(store, None)
    settings = load_uploads_settings({"AUTH_JWT_SECRET": JWT_SECRET, "DATABASE_URL": url})
    reader = open_store(url, read_only=True)
    reads: list[float] = []

    def provider() -> EventStore:
        reads.append(clock.now - clock.start)
        if len(reads) == 1 and slow == "first read":
            clock.now += 3.0  # connecting, say
        return reader

    def slowly_checked(*args: Any) -> Any:
        if slow == "token check":
            clock.now += 3.0
        return authenticate(*args)

    monkeypatch.setattr(status_service, "authenticate", slowly_checked)

    endpoint = clock.endpoint(settings, provider)
    headers = {"Authorization": f"Bearer {token('ann')}"}
    event = http_event("GET", "/uploads/f5", headers=headers, query={"wait": "8"})
    assert serve(event, {}, endpoint, settings.http, methods=("GET",))["statusCode"] == 200
    reader.close()
    assert clock.now - clock.start == 8.0 and max(reads) <= 8.0


def test_a_change_seen_at_the_bound_is_not_read_after_it(
    writer: tuple[str, EventStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a slow store (each read takes a second) and a change that the wait's last poll, begun before its bound
    # and ended after it, sees
    url, store = writer
    record(store, vod_event("NewFileUpload", FileId="f5", SourceContext=seal("ann", "r", CONTEXT_KEY)))
    clock = Clock(store, 7.0)
    settings = load_uploads_settings({"AUTH_JWT_SECRET": JWT_SECRET, "DATABASE_URL": url})
    reader = open_store(url, read_only=True)
    reads: list[tuple[str, float]] = []

    def slowly(name: str) -> Callable[..., Any]:
        read = getattr(reader, name)

        def slow(*args: Any) -> Any:
            reads.append((name, clock.now - clock.start))
            clock.now += 1.0
            return read(*args)

        return slow

    for name in ("upload_version", "user_upload"):
        monkeypatch.setattr(reader, name, slowly(name))
    endpoint = clock.endpoint(settings, lambda: reader)
    event = http_event("GET", "/uploads/f5", headers={"Authorization": f"Bearer {token('ann')}"}, query={"wait": "8"})
    result = serve(event, {}, endpoint, settings.http, methods=("GET",))
    reader.close()
    # THEN no read begins after the bound (the function's timeout allows for one read after it, not two): the
    # answer is the upload as last read whole, and the client's next request reads the change
    assert reads[-1] == ("upload_version", 7.5) and clock.now - clock.start == 8.5
    assert (result["statusCode"], json.loads(result["body"])["status"]) == (200, "uploaded")


@pytest.mark.parametrize("path", ["/uploads/f7", "/uploads"])
def test_a_record_is_never_read_older_than_its_tasks(
    writer: tuple[str, EventStore], monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    # GIVEN an upload whose task flow has not reported yet, and its first task event committed (by another
    # connection) just as the uploads function has read the record and is about to read its tasks
    url, store = writer
    record(store, upload_of("ann", "f7"))
    settings = load_uploads_settings({"AUTH_JWT_SECRET": JWT_SECRET, "DATABASE_URL": url})
    reader = open_store(url, read_only=True)
    read_tasks = reader._tasks_of

    def event_arrives_first(cursor: Any, file_ids: Any) -> Any:
        record(store, task("f7", "PROCESSING"), at=2.0)
        return read_tasks(cursor, file_ids)

    monkeypatch.setattr(reader, "_tasks_of", event_arrives_first)
    event = http_event("GET", path, headers={"Authorization": f"Bearer {token('ann')}"})
    result = serve(event, {}, make_uploads_endpoint(settings, lambda: reader), settings.http, methods=("GET",))
    reader.close()
    # THEN it answers as of one moment: before the event (processing, as the task flow is requested), never
    # the record from before the event with the task from after it, which read as "uploaded"
    body = json.loads(result["body"])
    upload = body if path != "/uploads" else body["uploads"][0]
    assert (upload["status"], upload["tasks"], upload["updatedAt"]) == ("processing", [], "1970-01-01T00:00:01Z")
    assert store.tasks("f7")[0].outcome == "processing"  # the event was committed meanwhile


def test_the_function_only_reads(writer: tuple[str, EventStore], get: Get) -> None:
    # GIVEN the store the uploads function opens: read-only (PostgreSQL: READ ONLY transactions; SQLite:
    # query_only), so even a bug in it could not write
    url, store = writer
    record(store, upload_of("ann", "f6"))
    reader = open_store(url, read_only=True)
    try:
        with pytest.raises(StoreUnavailable, match=r"(?i)read.only|readonly|attempt to write"):
            ingest_event(reader, upload_of("ann", "written"), received_at=1.0, keys=KEYS)
    finally:
        reader.close()
    assert store.upload("written") is None
    assert get("/uploads")["body"]["uploads"][0]["fileId"] == "f6"


def test_the_deployed_function_makes_no_database_not_even_its_schema(
    vod_function: Callable[..., Any], tmp_path: Path, output: Output
) -> None:
    # GIVEN a database the callback has not made yet (its role alone may: the uploads function's only reads)
    database = tmp_path / "vod.sqlite3"
    handler = vod_function("uploads", env={"AUTH_JWT_SECRET": JWT_SECRET, "DATABASE_URL": f"sqlite:///{database}"})
    output.skip()
    # WHEN an uploader asks for its uploads
    result = handler(http_event("GET", "/uploads", headers={"Authorization": f"Bearer {token('ann')}"}), {})
    # THEN the store is unavailable, and nothing was written: no database, no schema
    assert (result["statusCode"], json.loads(result["body"])["error"]["code"]) == (503, "store_unavailable")
    assert not database.exists()


def test_concurrent_reads_while_events_arrive(writer: tuple[str, EventStore], get: Get) -> None:
    _, store = writer
    step = threading.Barrier(2, timeout=30)

    def events() -> None:
        for i in range(20):
            record(store, upload_of("ann", f"c{i}"), at=float(i))
            step.wait()  # event i is committed: the reader's next read runs while event i + 1 is written

    thread = threading.Thread(target=events)
    thread.start()
    seen: list[set[str]] = []
    for _ in range(20):
        step.wait()
        answer = get("/uploads", limit="100")
        assert answer["status"] == 200, answer
        seen.append({u["fileId"] for u in answer["body"]["uploads"]})
    thread.join()
    # Every read has every event committed before it, and nothing ever disappears.
    assert all({f"c{j}" for j in range(i + 1)} <= listed for i, listed in enumerate(seen))
    assert all(before <= after for before, after in itertools.pairwise(seen))
    assert len(get("/uploads", limit="100")["body"]["uploads"]) == 20


@pytest.mark.postgres
def test_the_readmes_database_roles_are_enough(postgres_server: Any, vod_function: Callable[..., Any]) -> None:
    # README "PostgreSQL": the events' role owns the tables, and grants the uploads function's role reading
    # them (no superuser involved: TencentDB has none), before the tables exist.
    url: str = postgres_server.create_database()
    dbname = database_name(url)

    def as_role(role: str) -> str:
        return url.replace("postgresql://postgres@", f"postgresql://{role}@")

    for sql in ("CREATE ROLE vod_events_test LOGIN", "CREATE ROLE vod_reader_test LOGIN"):
        postgres_server.execute(sql)
    try:
        postgres_server.execute("GRANT ALL ON SCHEMA public TO vod_events_test", dbname)
        postgres_server.execute("GRANT USAGE ON SCHEMA public TO vod_reader_test", dbname)
        for sql in (
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO vod_reader_test",
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO vod_reader_test",
        ):
            run_sql(as_role("vod_events_test"), sql)
        store = open_store(as_role("vod_events_test"))  # the tables, made by their owner
        record(store, upload_of("ann", "f7"))
        store.close()
        handler = vod_function(
            "uploads", env={"AUTH_JWT_SECRET": JWT_SECRET, "DATABASE_URL": as_role("vod_reader_test")}
        )
        result = handler(http_event("GET", "/uploads/f7", headers={"Authorization": f"Bearer {token('ann')}"}), {})
    finally:
        postgres_server.drop_database(url)
        postgres_server.execute("DROP ROLE vod_events_test")
        postgres_server.execute("DROP ROLE vod_reader_test")
    assert result["statusCode"] == 200, result
    assert json.loads(result["body"])["fileId"] == "f7"


ORIGIN = "https://app.example.com"


@pytest.mark.parametrize(
    ("method", "headers", "store_down", "status", "code"),
    [
        ("GET", {}, False, 401, "missing_credentials"),
        ("GET", {"Authorization": "Bearer not-a-jwt"}, False, 401, "invalid_token"),
        # a user id longer than the sign function seals: the same answer as there (no upload can be theirs)
        ("GET", {"Authorization": "Bearer {long_user}"}, False, 403, "user_id_too_long"),
        # within the first bound (200 characters), but past what a sourceContext holds: 173 bytes of UTF-8
        ("GET", {"Authorization": "Bearer {unsealable}"}, False, 403, "user_id_too_long"),
        ("GET", {"Authorization": "Bearer {unsealable_cjk}"}, False, 403, "user_id_too_long"),
        ("POST", {"Authorization": "Bearer {token}"}, False, 405, "method_not_allowed"),
        ("GET", {"Authorization": "Bearer {token}"}, True, 503, "store_unavailable"),
        ("OPTIONS", {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}, False, 204, None),
    ],
    ids=["no-token", "bad-token", "long-user-id", "unsealable", "unsealable-cjk", "post", "store-down", "preflight"],
)
def test_the_uploads_function_at_its_edge(
    vod_function: Callable[..., Any],
    tmp_path: Any,
    output: Output,
    method: str,
    headers: dict[str, str],
    store_down: bool,
    status: int,
    code: str | None,
) -> None:
    database = tmp_path / "db" / "vod.sqlite3"
    if store_down:
        database.mkdir(parents=True)  # a directory where the database should be: SQLite cannot open it
    env = {"AUTH_JWT_SECRET": JWT_SECRET, "DATABASE_URL": f"sqlite:///{database}", "CORS_ALLOW_ORIGINS": ORIGIN}
    handler = vod_function("uploads", env=env)
    bearer = token("ann")
    users = {"long_user": "u" * 201, "unsealable": "u" * 174, "unsealable_cjk": "影" * 58}  # 174 bytes
    sent = {
        name: value.format(token=bearer, **{k: token(u) for k, u in users.items()}) for name, value in headers.items()
    }
    output.skip()
    result = handler(http_event(method, "/uploads", headers={"Origin": ORIGIN, **sent}), {"request_id": "r"})
    assert result["statusCode"] == status
    if code is not None:
        assert json.loads(result["body"])["error"]["code"] == code
    assert result["headers"]["Access-Control-Allow-Origin"] == ORIGIN  # errors too: a browser can read them
    if status == 405:
        assert result["headers"]["Allow"] == "GET, HEAD, OPTIONS"
    if method == "OPTIONS":  # a browser's poll sends its token and the tag it has: both may be sent, by GET alone
        allowed = (result["headers"]["Access-Control-Allow-Headers"], result["headers"]["Access-Control-Allow-Methods"])
        assert allowed == ("Authorization, If-None-Match", "GET, OPTIONS")
    text = output.text()
    lines = [line for line in Output.parse(text) if line["event"] == "request"]
    # One line per request, under the id the answer carries.
    assert [(line["status"], line["request_id"]) for line in lines] == [(status, result["headers"]["X-Request-Id"])]
    assert bearer not in text and "not-a-jwt" not in text


def test_a_wait_times_its_deadline_on_a_clock_that_never_steps_back() -> None:
    # What the deployed function gets (functions/uploads/index.py): the tests above pass their clocks in
    assert inspect.signature(make_uploads_endpoint).parameters["elapsed"].default is time.monotonic


def test_an_upload_deleted_before_its_task_flow_reported_is_deleted_not_processing(
    writer: tuple[str, EventStore], get: Get
) -> None:
    _, store = writer
    record(store, upload_of("ann", "f2"))  # uploaded with a task flow, none of whose events has come
    assert get("/uploads/f2")["body"]["status"] == "processing"
    record(store, vod_event("FileDeleted", FileIdSet=["f2"]), 2.0)
    assert get("/uploads/f2")["body"]["status"] == "deleted"  # no task event will come now


@pytest.mark.parametrize(
    ("cors", "origin", "allowed", "vary"),
    [
        (ORIGIN, ORIGIN, ORIGIN, "Origin"),
        # Answers without CORS headers vary by Origin all the same: a cache must not hand the allowed origin the
        # answer it kept for a request with none (or another)
        (ORIGIN, None, None, "Origin"),
        (ORIGIN, "https://elsewhere.example", None, "Origin"),
        (None, ORIGIN, None, None),  # no CORS: nothing depends on Origin
    ],
)
def test_answers_vary_by_origin_wherever_cors_is_on(
    vod_function: Callable[..., Any],
    tmp_path: Path,
    cors: str | None,
    origin: str | None,
    allowed: str | None,
    vary: str | None,
) -> None:
    env = {"AUTH_JWT_SECRET": JWT_SECRET, "DATABASE_URL": f"sqlite:///{tmp_path}/vod.sqlite3"}
    open_store(env["DATABASE_URL"]).schema_version()  # made by a writer (the callback): this function only reads
    handler = vod_function("uploads", env=env | ({"CORS_ALLOW_ORIGINS": cors} if cors else {}))
    headers = {"Authorization": f"Bearer {token('ann')}"} | ({"Origin": origin} if origin else {})
    result = handler(http_event("GET", "/uploads", headers=headers), {"request_id": "r"})
    assert result["statusCode"] == 200
    assert (result["headers"].get("Access-Control-Allow-Origin"), result["headers"].get("Vary")) == (allowed, vary)
