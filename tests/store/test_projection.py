"""The incremental projection: random sets of events, delivered in random orders, give identical records, and
the records a plain reading of the events predicts; records an older build wrote are rebuilt exactly."""

from __future__ import annotations

import copy
import itertools
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.events import stored_form
from shared.ingest import Vouched, ingest_event
from shared.source_context import Attribution, attribute, seal
from shared.status_service import _DELETED_WITH
from shared.store import EventStore, UploadRecord, open_store
from shared.store.projection import _SHOWN_PART_TYPES, DISPROOF_MARGIN, MAX_DELETED_PARTS, MAX_FACT_VALUES
from tests.conftest import CONTEXT_KEY, KEYS
from tests.scf import load_event
from tests.store.conftest import sql_on
from vodtesting import vod_event

FILE, OTHER = "5285890784273533167", "5285890784273533168"
RESULTS = load_event("vod_procedure_finish")["ProcedureStateChangeEvent"]["MediaProcessResultSet"]
Delivery = tuple[dict[str, Any], float]
# Uploads named so are delivered as VOD_CALLBACK_CONFIRM=fetch records them: one VOD did not list (only the body's
# word), one VOD listed (which disproves a whole-file delete that came DISPROOF_MARGIN or more before it).
UNLISTED, LISTED = "not listed by VOD", "listed by VOD"


def _upload(rng: random.Random) -> dict[str, Any]:
    user = rng.choice(["alice", "alice", "alice", "mallory"])
    fields: dict[str, Any] = {"FileId": FILE, "SourceContext": seal(user, f"req-{user}", CONTEXT_KEY)}
    if rng.random() < 0.3:
        fields["SourceContext"] = rng.choice(["", "console upload"])
    fields["Name"] = rng.choice(["", "holiday", "holiday (2)", UNLISTED, LISTED])
    if rng.random() < 0.2:
        fields["MediaUrl"] = "http://1400329073.vod2.myqcloud.com/other/f0.mp4"
    return vod_event("NewFileUpload", **fields)


def _task(rng: random.Random) -> dict[str, Any]:
    task_id = f"task-{rng.randint(1, 3)}"
    if rng.random() < 0.2:  # an event that says nothing about the task's state (no status, no results)
        fields: dict[str, Any] = {"Status": None, "ErrCode": None, "Message": None, "MediaProcessResultSet": []}
        return vod_event("ProcedureStateChanged", FileId=FILE, TaskId=task_id, FileName=rng.choice(["", "x"]), **fields)
    results = copy.deepcopy(rng.sample(RESULTS, rng.randint(0, len(RESULTS))))
    if results and rng.random() < 0.3:
        next(v for k, v in results[0].items() if k.endswith("Task"))["Status"] = "FAIL"
    return vod_event(
        "ProcedureStateChanged",
        FileId=FILE,
        TaskId=task_id,
        Status=rng.choice(["PROCESSING", "FINISH"]),
        ErrCode=rng.choice([0, 0, 0, 10008]),
        FileName=rng.choice(["", "from the task"]),
        MediaProcessResultSet=results,
    )


def _delete(rng: random.Random) -> dict[str, Any]:
    parts = rng.choice([[], [{"Type": "TranscodeFiles", "Definition": rng.choice([100010, 100020])}]])
    results = [{"FileId": FILE, "DeleteParts": parts}, {"FileId": OTHER, "DeleteParts": []}]
    # Two deletes of one part are two events: the results listed in either order tell them apart.
    return vod_event("FileDeleted", FileIdSet=[FILE, OTHER], FileDeleteResultInfo=rng.sample(results, 2))


def _other(rng: random.Random) -> dict[str, Any]:
    return vod_event("TranscodeComplete", TranscodeCompleteEvent={"FileId": FILE, "ErrCode": 0, "Message": "x"})


MAKERS = (_upload, _upload, _task, _task, _task, _task, _delete, _other)


def _scenario(seed: int) -> list[Delivery]:
    rng = random.Random(seed)
    events: dict[str, Delivery] = {}
    for _ in range(rng.randint(2, 12)):
        payload = rng.choice(MAKERS)(rng)
        # One receive time per distinct event: a duplicate's own time is never stored (its first copy's is).
        # Spread over more than the margin, so that some listings disprove some deletes and others do not.
        events.setdefault(json.dumps(payload, sort_keys=True), (payload, 1000.0 + 15 * rng.randint(0, 50)))
    return list(events.values())


def _deliver(store: EventStore, deliveries: list[Delivery]) -> None:
    for payload, received_at in deliveries:
        info = _upload_info(payload)
        vouched = {
            UNLISTED: Vouched(payload, Attribution("unconfirmed")),
            LISTED: Vouched(payload, attribute(info.get("SourceInfo", {}).get("SourceContext"), KEYS, confirmed=True)),
        }.get(info.get("Name", ""))
        ingest_event(store, payload, received_at=received_at, keys=KEYS, vouched=vouched)


def _upload_info(payload: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = payload.get("FileUploadEvent", {}).get("MediaBasicInfo", {})
    return info


def _count_rebuilds(store: EventStore) -> list[str]:
    """The files whose records `store` rebuilds from all their events from now on (the rest it updates)."""
    rebuilt: list[str] = []
    rebuild = store._rebuild

    def counted(cursor: Any, file_id: str, listed_at: float | None, revision: int) -> Any:
        rebuilt.append(file_id)
        return rebuild(cursor, file_id, listed_at, revision)

    store._rebuild = counted  # type: ignore[method-assign]
    return rebuilt


def _unprojected(url: str) -> int:
    return int(sql_on(url, "SELECT count(*) FROM event_files WHERE NOT projected")[0][0])


def _reports(store: EventStore) -> tuple[Any, ...]:
    return store.file_report(FILE), store.file_report(OTHER)


def _predicted(deliveries: list[Delivery]) -> dict[str, Any]:
    """What the events say, read straight from the payloads (not through shared/): who uploaded, whether the
    upload events disagree, whether the file was deleted whole, which tasks it has."""
    bodies = [
        (payload["EventType"], next(v for k, v in payload.items() if k.endswith("Event")), at)
        for payload, at in deliveries
    ]
    every_upload = [body["MediaBasicInfo"] for kind, body, _ in bodies if kind == "NewFileUpload"]
    uploads = [info for info in every_upload if info["Name"] != UNLISTED]  # the rest say nothing of whose it is
    contexts = {info["SourceInfo"]["SourceContext"] or None for info in uploads}
    users = {c.split(":", 3)[3] if c and c.startswith("u2:") else None for c in contexts}
    conflict = len(users) > 1 or len(contexts) > 1 or len({info["MediaUrl"] for info in uploads}) > 1
    deletes = [
        (next(r["DeleteParts"] for r in body["FileDeleteResultInfo"] if r["FileId"] == FILE), at)
        for kind, body, at in bodies
        if kind == "FileDeleted"
    ]
    listed = [at for kind, body, at in bodies if kind == "NewFileUpload" and body["MediaBasicInfo"]["Name"] == LISTED]
    return {
        "deleted": any(parts == [] and at >= max(listed, default=at) - DISPROOF_MARGIN for parts, at in deletes),
        "conflict": conflict,
        "user": None if conflict or len(users) != 1 else next(iter(users)),
        "uploaded": bool(every_upload),
        "named_by_listed": any(info["Name"] for info in uploads),
        "tasks": sorted({body["TaskId"] for kind, body, _ in bodies if kind == "ProcedureStateChanged"}),
        "other_deleted": bool(deletes),
    }


@pytest.mark.parametrize("seed", range(60))
def test_any_delivery_order_of_a_random_event_set_gives_identical_records(tmp_path: Path, seed: int) -> None:
    deliveries = _scenario(seed)
    reports = []
    for n in range(4):
        order = random.Random(seed * 10 + n).sample(deliveries, len(deliveries))
        url = f"sqlite:///{tmp_path}/{n}.sqlite3"
        store = open_store(url)
        rebuilt = _count_rebuilds(store)
        _deliver(store, order)
        reports.append(_reports(store))
        store.close()
        # Incremental: each event updated its file's state; none needed the file's other events again.
        assert (rebuilt, _unprojected(url)) == ([], 0)
    assert all(report == reports[0] for report in reports), f"scenario {seed}: {[p for p, _ in deliveries]}"
    report, other = reports[0]
    expected = _predicted(deliveries)
    upload = report.upload
    assert (upload.deleted, upload.conflicts != (), upload.user_id, upload.uploaded) == (
        expected["deleted"],
        expected["conflict"],
        expected["user"],
        expected["uploaded"],
    )
    assert not expected["named_by_listed"] or upload.name != UNLISTED
    assert upload.status == "deleted" if expected["deleted"] else upload.status != "deleted"
    assert expected["deleted"] or (upload.status == "conflict") == expected["conflict"]
    assert [t.task_id for t in report.tasks] == expected["tasks"]
    assert (other is not None and other.upload.status == "deleted") == expected["other_deleted"]


def _clear_states(url: str) -> None:
    """What a database written by the build before the incremental projection holds: records, no states."""
    sql_on(url, "UPDATE uploads SET projection = NULL")
    sql_on(url, "UPDATE tasks SET projection = NULL")
    sql_on(url, "UPDATE event_files SET projected = FALSE")  # as the migration leaves the events stored before it


def _deliver_as_an_older_build(store: EventStore, url: str, deliveries: list[Delivery]) -> None:
    """What a build that keeps no states, still running beside this one, leaves after `deliveries`: the events
    stored and the records rewritten, the states as they were, the events' file links not marked projected."""
    known = {key for (key,) in sql_on(url, "SELECT dedupe_key FROM events")}
    states = sql_on(url, "SELECT file_id, projection FROM uploads")
    task_states = sql_on(url, "SELECT file_id, task_id, projection FROM tasks")
    _deliver(store, deliveries)
    for file_id, text in states:
        sql_on(url, "UPDATE uploads SET projection = ? WHERE file_id = ?", (text, file_id))
    for file_id, task_id, text in task_states:
        sql_on(url, "UPDATE tasks SET projection = ? WHERE file_id = ? AND task_id = ?", (text, file_id, task_id))
    for (key,) in sql_on(url, "SELECT dedupe_key FROM events"):
        if key not in known:
            sql_on(url, "UPDATE event_files SET projected = FALSE WHERE dedupe_key = ?", (key,))


def test_a_task_event_without_a_status_counts_its_task_once(store: EventStore) -> None:
    # GIVEN two events of a task that carry no status at all (only its file's name), then its FINISH
    bare = [
        vod_event("ProcedureStateChanged", FileId=FILE, TaskId="t", Status=None, ErrCode=None, Message=None, FileName=n)
        for n in ("a", "b")
    ]
    _deliver(
        store, [(bare[0], 1.0), (bare[1], 2.0), (vod_event("ProcedureStateChanged", FileId=FILE, TaskId="t"), 3.0)]
    )
    # THEN the file has one task, finished, and so is the file
    report = store.file_report(FILE)
    assert report is not None and [t.outcome for t in report.tasks] == ["finished"]
    assert report.upload.status == "finished"


def _task_event(task_id: str, status: str) -> dict[str, Any]:
    return vod_event("ProcedureStateChanged", FileId=FILE, TaskId=task_id, Status=status, MediaProcessResultSet=[])


def _processing(*steps: tuple[str, str, int]) -> dict[str, Any]:
    """A PROCESSING event of task-1 (TasksNotifyMode Change: one per step) whose steps are (Type, Status, Progress)."""
    results = [
        {"Type": kind, f"{kind}Task": {"Status": status, "ErrCode": 0, "Message": "", "Progress": progress}}
        for kind, status, progress in steps
    ]
    return vod_event(
        "ProcedureStateChanged", FileId=FILE, TaskId="task-1", Status="PROCESSING", MediaProcessResultSet=results
    )


STARTED = _processing(("Transcode", "PROCESSING", 40))
NEXT_STEP = _processing(("Transcode", "SUCCESS", 100), ("SnapshotByTimeOffset", "PROCESSING", 0))
FAILED_STEP = _processing(("Transcode", "FAIL", 0), ("SnapshotByTimeOffset", "PROCESSING", 0))
BOTH_ENDED = _processing(("Transcode", "SUCCESS", 100), ("SnapshotByTimeOffset", "SUCCESS", 100))


def _finished(task_id: str, err_code: int) -> dict[str, Any]:
    return vod_event("ProcedureStateChanged", FileId=FILE, TaskId=task_id, Status="FINISH", ErrCode=err_code)


@pytest.mark.parametrize(
    ("timeline", "status"),
    [
        ([("t1", 70000, 2.0), ("t2", 0, 3.0)], "finished"),  # a failed task flow run again (ProcessMedia): done
        ([("t1", 0, 2.0), ("t2", 70000, 3.0)], "failed"),  # a later run that failed: what the file has now
        # the task of the last FINISH, as it ended: two reports of it disagree (the higher-ranked one says)
        ([("t1", 70000, 2.0), ("t1", 0, 1.5), ("t2", 70000, 1.0)], "as t1 ended"),
        ([("t1", 0, 2.0), ("t1", 70000, 1.5), ("t2", 0, 1.0)], "as t1 ended"),
    ],
    ids=["failed-then-redone", "finished-then-failed", "latest-reported-twice", "latest-reported-twice-other-way"],
)
def test_a_file_stands_as_its_task_that_finished_last_in_any_order(
    new_store: Callable[[], EventStore], timeline: list[tuple[str, int, float]], status: str
) -> None:
    # GIVEN the FINISH of each task (and one task's second report of it, ranked by its key), received at these times
    deliveries = [(_finished(task_id, err_code), at) for task_id, err_code, at in timeline]
    for order in itertools.permutations(deliveries):
        store = new_store()
        _deliver(store, list(order))
        # THEN the file stands as the task whose FINISH was received last, in every arrival order
        report = store.file_report(FILE)
        assert report is not None
        expected = next(t.outcome for t in report.tasks if t.task_id == "t1") if status == "as t1 ended" else status
        assert report.upload.status == expected, order
    # AND while a task is still running, the file is processing
    _deliver(store, [(_task_event("t3", "PROCESSING"), 4.0)])
    report = store.file_report(FILE)
    assert report is not None and report.upload.status == "processing"


def test_a_later_report_of_a_task_that_finished_before_does_not_make_it_the_last(
    new_store: Callable[[], EventStore],
) -> None:
    # GIVEN a failed task flow run again and finished, then the failed one's FINISH once more with another body
    # (a body replayed with a Sign seen in a delivery: in fetch mode its content is VOD's, its dedupe key new)
    again = vod_event("ProcedureStateChanged", FileId=FILE, TaskId="t1", Status="FINISH", ErrCode=70000, Message="x")
    deliveries = [(_finished("t1", 70000), 1.0), (_finished("t2", 0), 2.0), (again, 3.0)]
    for order in itertools.permutations(deliveries):
        store = new_store()
        rebuilt = _count_rebuilds(store)
        _deliver(store, list(order))
        # THEN the file stands as the task run again, in every arrival order, without reading its events again
        report = store.file_report(FILE)
        assert report is not None and (report.upload.status, rebuilt) == ("finished", []), order


@pytest.mark.parametrize(
    ("events", "furthest_given"),
    [
        ([STARTED, NEXT_STEP], NEXT_STEP),
        ([STARTED, FAILED_STEP], FAILED_STEP),  # a failed step has ended too
        ([STARTED, NEXT_STEP, BOTH_ENDED], BOTH_ENDED),
    ],
    ids=["step-ended", "step-failed", "two-steps"],
)
def test_a_running_task_shows_its_furthest_progress_in_any_order(
    new_store: Callable[[], EventStore], events: list[dict[str, Any]], furthest_given: dict[str, Any]
) -> None:
    # GIVEN a task's PROCESSING events (each a snapshot of all its steps), in every arrival order; the furthest
    # one with the lowest dedupe key (the key only breaks ties)
    furthest = _lowest_key(furthest_given, events)
    events = [furthest if event is furthest_given else event for event in events]
    steps = [
        (r["Type"], r[f"{r['Type']}Task"]["Status"])
        for r in furthest["ProcedureStateChangeEvent"]["MediaProcessResultSet"]
    ]
    for order in itertools.permutations(events):
        store = new_store()
        _deliver(store, [(event, 1000.0 + i) for i, event in enumerate(order)])
        # THEN the task shows the furthest snapshot, never an older one that its dedupe key ranks higher
        report = store.file_report(FILE)
        assert report is not None and [(r.type, r.status) for r in report.tasks[0].results] == steps


def _lowest_key(event: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, Any]:
    """`event` with a Message that gives it a dedupe key lower than every one of `others`."""
    lowest = min(stored_form(e).key for e in others if e is not event)
    for n in itertools.count():
        changed = copy.deepcopy(event)
        changed["ProcedureStateChangeEvent"]["Message"] = f"step {n}"
        if stored_form(changed).key < lowest:
            return changed
    raise AssertionError("unreachable")


def _older_ranks(state: Any) -> Any:
    """`state` with the task ranks of the build before the steps-ended rank: [FINISH?, dedupe key]."""
    if isinstance(state, dict):
        return {k: _older_ranks(v) for k, v in state.items()}
    if isinstance(state, list) and len(state) == 2 and isinstance(state[0], list) and len(state[0]) == 3:
        return [[state[0][0], state[0][2]], state[1]]  # a task winner
    return state


def _rebuilt_after(
    new_url: Callable[[], str], before: list[Delivery], make_older: Callable[[str], None], last: list[Delivery]
) -> UploadRecord | None:
    """Deliver `before`, let `make_older(url)` turn the states into what an older build kept, deliver `last`: the
    file's records are rebuilt from its events (once), the same as a store that got every event from this build.
    Returns the record."""
    expected_url, url = new_url(), new_url()
    expected, store = open_store(expected_url), open_store(url)
    try:
        _deliver(expected, [*before, *last])
        _deliver(store, before)
        make_older(url)
        rebuilt = _count_rebuilds(store)
        _deliver(store, last)
        assert (rebuilt, _reports(store)) == ([FILE], _reports(expected))
        return store.upload(FILE)
    finally:
        store.close()
        expected.close()


@pytest.mark.parametrize(
    "tables",
    [("uploads", "tasks"), ("tasks",), ("uploads",)],
    ids=["all-older", "task-older", "file-older"],  # the last two: states an older build added one event to
)
def test_states_with_ranks_of_an_older_build_are_rebuilt(new_url: Callable[[], str], tables: tuple[str, ...]) -> None:
    # GIVEN records whose states the build before the steps-ended rank wrote, or updated (during a rolling deploy)
    def older_ranks(url: str) -> None:
        for table in tables:
            for (text,) in sql_on(url, f"SELECT projection FROM {table}"):
                sql_on(url, f"UPDATE {table} SET projection = ?", (json.dumps(_older_ranks(json.loads(text))),))

    # WHEN the file's next event arrives THEN its records are rebuilt from its events, never compared across forms
    before = [(vod_event("NewFileUpload", FileId=FILE), 1.0), (STARTED, 2.0)]
    _rebuilt_after(new_url, before, older_ranks, [(NEXT_STEP, 3.0)])


def test_states_that_counted_an_upload_vod_did_not_list_are_rebuilt(new_url: Callable[[], str]) -> None:
    # GIVEN a file's state as the build before the form marker wrote it: a forged upload VOD did not list, counted
    # among the file's identity facts like any other
    forged = (vod_event("NewFileUpload", FileId=FILE, Name=UNLISTED, SourceContext="mallory"), 1.0)
    genuine = (vod_event("NewFileUpload", FileId=FILE, SourceContext=seal("alice", "r", CONTEXT_KEY)), 2.0)

    def older_form(url: str) -> None:
        older = json.loads(sql_on(url, "SELECT projection FROM uploads")[0][0])
        for renamed in ("form", "listed", "facts"):
            del older[renamed]
        older["upload"] = older.pop("unlisted")
        info = _upload_info(forged[0])
        older["identity"] = {"user_id": [None], "source_context": ["mallory"], "media_url": [info["MediaUrl"]]}
        sql_on(url, "UPDATE uploads SET projection = ?", (json.dumps(older),))

    # WHEN VOD's own upload event arrives THEN the record is rebuilt: Alice's, as if both came to this build
    record = _rebuilt_after(new_url, [forged], older_form, [genuine])
    assert record is not None and (record.user_id, record.conflicts) == ("alice", ())


def test_states_without_delete_and_result_times_are_rebuilt(new_url: Callable[[], str]) -> None:
    # GIVEN a file whose transcodes DeleteMedia removed, its states as the build before form 3 kept them (no time
    # on a deleted part, none on a task's results)
    finished = vod_event("ProcedureStateChanged", FileId=FILE, TaskId="task-1", Status="FINISH")
    finished["ProcedureStateChangeEvent"]["MediaProcessResultSet"] = RESULTS
    parts = [{"FileId": FILE, "DeleteParts": [{"Type": "TranscodeFiles", "Definition": 0}]}]
    before = [(finished, 1.0), (vod_event("FileDeleted", FileId=FILE, FileDeleteResultInfo=parts), 2.0)]

    def older_form(url: str) -> None:
        older = json.loads(sql_on(url, "SELECT projection FROM uploads")[0][0])
        older["form"] = 2
        older["deleted_parts"] = [{"type": "TranscodeFiles", "definition": 0}]
        sql_on(url, "UPDATE uploads SET projection = ?", (json.dumps(older),))
        task = json.loads(sql_on(url, "SELECT projection FROM tasks")[0][0])
        del task["results_at"]
        sql_on(url, "UPDATE tasks SET projection = ?, results_at = NULL", (json.dumps(task),))

    # WHEN the transcode is made again THEN the records are rebuilt, as a store that got every event from this build
    redone = copy.deepcopy(finished)
    redone["ProcedureStateChangeEvent"]["TaskId"] = "task-2"
    record = _rebuilt_after(new_url, before, older_form, [(redone, 3.0)])
    assert record is not None and [(p.type, p.deleted_at) for p in record.deleted_parts] == [("TranscodeFiles", 2.0)]


def test_an_upload_an_older_build_listed_earlier_is_never_listed_later(new_url: Callable[[], str]) -> None:
    # GIVEN alice's upload whose task event was received before its upload event, as the build before form 4 listed
    # it: by that task event (1.0), not by its upload event (10.0)
    url = new_url()
    store = open_store(url)
    upload = vod_event("NewFileUpload", FileId=FILE, SourceContext=seal("alice", "r", CONTEXT_KEY))
    _deliver(store, [(_task_event("t1", "PROCESSING"), 1.0), (upload, 10.0)])
    older = json.loads(sql_on(url, "SELECT projection FROM uploads")[0][0])
    older["form"] = 3
    sql_on(url, "UPDATE uploads SET projection = ?, first_seen_at = 1.0", (json.dumps(older),))
    # WHEN this build stores its next event (and so rebuilds its records)
    _deliver(store, [(_finished("t1", 0), 20.0)])
    # THEN it stays where alice's pages listed it: moved later, a client paging on from a cursor would miss it
    [record] = store.user_uploads("alice")
    assert (record.first_seen_at, record.status) == (1.0, "finished")
    store.close()


def test_states_without_the_task_that_finished_last_are_rebuilt(new_url: Callable[[], str]) -> None:
    # GIVEN a file whose task flow failed, its state as the build before form 4 kept it (no task that finished last)
    before = [(_finished("t1", 70000), 1.0)]

    def older_form(url: str) -> None:
        older = json.loads(sql_on(url, "SELECT projection FROM uploads")[0][0])
        older["form"] = 3
        del older["settled"], older["uploaded_at"]
        sql_on(url, "UPDATE uploads SET projection = ?", (json.dumps(older),))

    # WHEN the task flow is run again and finishes THEN the record is rebuilt: the file is finished
    record = _rebuilt_after(new_url, before, older_form, [(_finished("t2", 0), 2.0)])
    assert record is not None and record.status == "finished"


def test_states_without_when_vod_listed_the_file_are_rebuilt(new_url: Callable[[], str]) -> None:
    # GIVEN a file deleted whole, its state as the build before form 6 kept it (the first delete only)
    before = [(vod_event("FileDeleted", FileIdSet=[FILE]), 1000.0)]

    def older_form(url: str) -> None:
        older = json.loads(sql_on(url, "SELECT projection FROM uploads")[0][0])
        older["form"] = 5
        older["deleted_at"] = older.pop("deleted")[0]
        del older["listed_at"]
        sql_on(url, "UPDATE uploads SET projection = ?", (json.dumps(older),))

    # WHEN VOD lists the file well after that delete THEN the record is rebuilt: the delete did not happen
    record = _rebuilt_after(new_url, before, older_form, [(_upload_named(LISTED, 0), 1000.0 + DISPROOF_MARGIN + 1)])
    assert record is not None and (record.deleted, record.user_id) == (False, "alice")


def test_states_of_the_form_6_builds_that_kept_a_list_of_deletes_are_rebuilt(new_url: Callable[[], str]) -> None:
    # GIVEN a file deleted whole, its state as the first builds of form 6 wrote it: every whole-file delete in a list
    before = [(vod_event("FileDeleted", FileIdSet=[FILE]), 1000.0)]

    def older_keys(url: str) -> None:
        older = json.loads(sql_on(url, "SELECT projection FROM uploads")[0][0])
        older["deletes"] = [older.pop("deleted")[0]]
        sql_on(url, "UPDATE uploads SET projection = ?", (json.dumps(older),))

    # WHEN VOD lists the file well after that delete THEN the record is rebuilt (it was a KeyError: a 500 for good)
    record = _rebuilt_after(new_url, before, older_keys, [(_upload_named(LISTED, 0), 1000.0 + DISPROOF_MARGIN + 1)])
    assert record is not None and (record.deleted, record.user_id) == (False, "alice")


@pytest.mark.parametrize("listed", [False, True], ids=["unlisted", "listed"])
@pytest.mark.parametrize("task_first", [False, True], ids=["upload-first", "task-first"])
def test_a_task_events_file_facts_win_only_over_an_upload_vod_did_not_list(
    store: EventStore, listed: bool, task_first: bool
) -> None:
    # GIVEN an upload event (VOD listed it when asked, or did not: its body's word only) and a task event of the file
    upload = (_upload_named(LISTED if listed else UNLISTED, 0), 1.0)
    task = vod_event("ProcedureStateChanged", FileId=FILE, TaskId="t1", FileName="from the task", FileUrl="https://t/")
    _deliver(store, [(task, 2.0), upload] if task_first else [upload, (task, 2.0)])
    # THEN the file's name and URL are the listed upload's, else the task flow's, in either order
    record = store.upload(FILE)
    expected = (LISTED, _upload_info(upload[0])["MediaUrl"]) if listed else ("from the task", "https://t/")
    assert record is not None and (record.name, record.media_url) == expected


@pytest.mark.parametrize("first", [100.0, 300.0])
def test_a_part_deleted_twice_counts_its_last_delete_in_either_order(store: EventStore, first: float) -> None:
    def deleted(other: str) -> dict[str, Any]:
        parts = [{"FileId": FILE, "DeleteParts": [{"Type": "TranscodeFiles", "Definition": 100030}]}]
        return vod_event("FileDeleted", FileIdSet=[FILE, other], FileDeleteResultInfo=parts)

    _deliver(store, [(deleted(OTHER), first), (deleted("another"), 400.0 - first)])
    upload = store.upload(FILE)
    assert upload is not None and [p.deleted_at for p in upload.deleted_parts] == [300.0]


@pytest.mark.parametrize(
    ("listed", "deleted_at"),
    [
        ([], 1000.0),  # no listing by VOD: the first delete
        ([1000.0 + DISPROOF_MARGIN], 1000.0),  # within the margin of the first: it stands
        ([1000.0 + DISPROOF_MARGIN + 1], 2000.0),  # the first disproved, the last stands
        ([1000.0, 2000.0 + DISPROOF_MARGIN + 1], None),  # the last listing disproves both: not deleted
    ],
    ids=["not-listed", "within-the-margin", "first-disproved", "both-disproved"],
)
def test_a_whole_file_delete_vod_listed_the_file_well_after_does_not_count(
    tmp_path: Path, listed: list[float], deleted_at: float | None
) -> None:
    deletes = [
        (vod_event("FileDeleted", FileIdSet=files), at) for files, at in (([FILE], 1000.0), ([FILE, OTHER], 2000.0))
    ]
    listings = [(_upload_named(LISTED, n), at) for n, at in enumerate(listed)]
    for n, order in enumerate(itertools.permutations([*deletes, *listings])):
        store = open_store(f"sqlite:///{tmp_path}/{n}.sqlite3")
        _deliver(store, list(order))
        upload = store.upload(FILE)
        assert upload is not None and (upload.deleted, upload.deleted_at) == (deleted_at is not None, deleted_at)
        store.close()


def _upload_named(name: str, n: int) -> dict[str, Any]:
    return vod_event("NewFileUpload", FileId=FILE, Name=name, SourceContext=seal("alice", f"req-{n}", CONTEXT_KEY))


def test_deleted_parts_keep_the_shape_the_build_before_reads(new_url: Callable[[], str]) -> None:
    # GIVEN a partial delete stored by this build
    url = new_url()
    store = open_store(url)
    parts = [{"FileId": FILE, "DeleteParts": [{"Type": "TranscodeFiles", "Definition": 100030}]}]
    _deliver(store, [(vod_event("FileDeleted", FileId=FILE, FileDeleteResultInfo=parts), 5.0)])
    # THEN the column the build before reads holds what it reads (its uploads function would fail on more)
    [(column, times)] = sql_on(url, "SELECT deleted_parts, deleted_parts_at FROM uploads")
    assert json.loads(column) == [{"type": "TranscodeFiles", "definition": 100030}]
    assert json.loads(times) == {"last_event_at": 5.0, "times": [5.0]}
    # AND when the build before rewrites the row (a rolling deploy), its parts' times are unknown: deleted whenever
    # made, whether it added parts or deleted the same ones again
    both = [{"type": "TranscodeFiles", "definition": 0}, {"type": "TranscodeFiles", "definition": 100030}]
    for rewritten in (both, json.loads(column)):
        sql_on(url, "UPDATE uploads SET deleted_parts = ?, last_event_at = 6.0", (json.dumps(rewritten),))
        upload = store.upload(FILE)
        assert upload is not None and {p.deleted_at for p in upload.deleted_parts} == {None}
    store.close()


def _older_build_case(seed: int) -> tuple[list[Delivery], list[Delivery], list[Delivery]]:
    """A random scenario, then a task event an older build delivers, then an upload event for this one."""
    return _scenario(seed), [(_task(random.Random(seed)), 1002.0)], [(_upload(random.Random(seed)), 1003.0)]


@pytest.mark.parametrize(
    ("before", "older", "last"),
    [
        _older_build_case(4),
        _older_build_case(9),
        # The older build finishes one task of two and leaves the file's record as it was (still processing,
        # its event older than the last): only the task's row changes, and it is not the one read next.
        (
            [
                (vod_event("NewFileUpload", FileId=FILE), 1.0),
                (_task_event("t1", "PROCESSING"), 10.0),
                (_task_event("t2", "PROCESSING"), 20.0),
            ],
            [(_task_event("t2", "FINISH"), 15.0)],
            [(_task_event("t1", "FINISH"), 30.0)],
        ),
    ],
    ids=["seed4", "seed9", "other-task-finished"],
)
def test_records_an_older_build_rewrote_are_rebuilt(
    new_url: Callable[[], str], before: list[Delivery], older: list[Delivery], last: list[Delivery]
) -> None:
    # GIVEN a build from before the states, still running beside this one (one function deployed, not the other)
    expected_url, url = new_url(), new_url()
    expected, store = open_store(expected_url), open_store(url)
    try:
        _deliver(expected, [*before, *older, *last])
        _deliver(store, before)
        _deliver_as_an_older_build(store, url, older)
        # WHEN this build gets the file's next event THEN its records are what every event implies
        rebuilt = _count_rebuilds(store)
        _deliver(store, last)
        assert _reports(store) == _reports(expected)
        # AND it rebuilt them once, marking every event folded: the events after it are incremental again
        assert (rebuilt, _unprojected(url)) == ([FILE], 0)
        _deliver(store, [(_task_event("t9", "PROCESSING"), 2000.0)])
        assert rebuilt == [FILE]
    finally:
        store.close()
        expected.close()


@pytest.mark.parametrize("seed", [3, 7, 11])
def test_records_from_an_older_build_are_rebuilt_from_their_events(new_url: Callable[[], str], seed: int) -> None:
    *before, last = [*_scenario(seed), (vod_event("ProcedureStateChanged", FileId=FILE, TaskId="task-1"), 999.0)]
    expected_url, old_url = new_url(), new_url()
    expected = open_store(expected_url)
    _deliver(expected, [*before, last])
    old = open_store(old_url)
    _deliver(old, before)
    _clear_states(old_url)
    _deliver(old, [last])  # the next event of the file rebuilds its records, tasks included
    try:
        assert _reports(old) == _reports(expected)
        _deliver(old, [(_task(random.Random(seed)), 1001.5)])  # ...and later events update the rebuilt state
        _deliver(expected, [(_task(random.Random(seed)), 1001.5)])
        assert _reports(old) == _reports(expected)
    finally:
        old.close()
        expected.close()


def _deletes_of(parts: list[tuple[str, int]]) -> dict[str, Any]:
    deleted = [{"Type": kind, "Definition": definition} for kind, definition in parts]
    return vod_event("FileDeleted", FileIdSet=[FILE], FileDeleteResultInfo=[{"FileId": FILE, "DeleteParts": deleted}])


def _in_orders(tmp_path: Path, deliveries: list[Delivery]) -> UploadRecord:
    """The file's upload record after `deliveries` in four orders, which must all give the same reports."""
    reports = []
    for n in range(4):
        store = open_store(f"sqlite:///{tmp_path}/{n}.sqlite3")
        _deliver(store, random.Random(n).sample(deliveries, len(deliveries)))
        reports.append(_reports(store))
        store.close()
    assert all(report == reports[0] for report in reports)
    upload: UploadRecord = reports[0][0].upload
    return upload


def test_parts_deleted_by_the_thousand_keep_a_files_state_bounded_and_the_parts_it_shows(tmp_path: Path) -> None:
    # Bodies only someone who saw a Sign could send: hundreds of made-up parts each, then every event of the file
    # would carry them all. The state keeps MAX_DELETED_PARTS, those of the part types records show first (the
    # types the status API leaves outputs out for).
    assert set(_SHOWN_PART_TYPES) == {"OriginalFiles", *(kind for kind, _ in _DELETED_WITH.values())}
    genuine = _deletes_of([("TranscodeFiles", 100010)])
    floods = [
        _deletes_of([(kind, base + i) for i in range(150)])
        for kind, base in (("NotAPart", 0), ("TranscodeFiles", 300000), ("AdaptiveDynamicStreamingFiles", 400000))
    ]
    upload = _in_orders(tmp_path, [(genuine, 1000.0)] + [(flood, 1001.0 + i) for i, flood in enumerate(floods)])
    kept = [(p.type, p.definition) for p in upload.deleted_parts]
    assert len(kept) == MAX_DELETED_PARTS and kept == sorted(kept, key=repr)
    assert ("TranscodeFiles", 100010) in kept and not [p for p in kept if p[0] == "NotAPart"]
    assert next(p for p in upload.deleted_parts if p.definition == 100010).deleted_at == 1000.0


def test_upload_events_that_disagree_by_the_hundred_keep_the_first_values_of_a_conflict(tmp_path: Path) -> None:
    urls = [f"http://1400329073.vod2.myqcloud.com/d9d5/{i:03}/f0.mp4" for i in range(100)]
    uploads = [vod_event("NewFileUpload", FileId=FILE, MediaUrl=url) for url in urls]
    upload = _in_orders(tmp_path, [(event, 1000.0 + i) for i, event in enumerate(uploads)])
    assert upload.status == "conflict" and upload.user_id is None
    [conflict] = [c for c in upload.conflicts if c.field == "media_url"]
    assert list(conflict.values) == sorted(urls)[:MAX_FACT_VALUES]
