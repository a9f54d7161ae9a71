"""Store behaviour, on SQLite and on PostgreSQL (the `store` fixture runs every test on both)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import resource
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import store as store_package
from shared.events import DELIVERY_FIELDS, parse_event, stored_form
from shared.hooks import INTERRUPTED, CommittedEvent, HookTaken, RerunInterrupted, no_hook, rerun_hook
from shared.ingest import ingest_event
from shared.store import EventStore, StoreUnavailable, TaskRecord, UploadRecord, base, open_store, postgres
from shared.store.base import MIGRATIONS, SCHEMA_VERSION
from tests.callback import hook_target
from tests.conftest import KEYS
from tests.scf import load_event
from tests.store.conftest import sql_on
from vodtesting import vod_event
from vodtesting.pgserver import PostgresServer, database_name, run_sql

FILE_ID = "5285890784273533167"
TASK_ID = "1400329073-procedurev2-6a8d1e5f8c3b4a2e9d7f0c1b2a3e4d5ft0"
BASE_URL = "http://1400329073.vod2.myqcloud.com/d9d5f4ffvodcq1400329073/b1e3a1f25285890784273533167"


class Hook:
    def __init__(self, fail: bool = False, message: object = "downstream is down") -> None:
        self.calls: list[CommittedEvent] = []
        self.fail, self.message = fail, message
        self._lock = threading.Lock()

    def __call__(self, committed: CommittedEvent) -> None:
        with self._lock:
            self.calls.append(committed)
        if self.fail:
            raise RuntimeError(self.message)


class _Unprintable:
    def __init__(self, raises: BaseException) -> None:
        self.raises = raises

    def __str__(self) -> str:
        raise self.raises


def ingest(store: EventStore, name: str, received_at: float = 100.0, hook: Callable[..., None] | None = None) -> Any:
    return ingest_event(store, load_event(name), received_at=received_at, after_commit=hook or Hook(), keys=KEYS)


# --- each type is stored ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "event_type", "file_ids", "status"),
    [
        ("vod_new_file_upload", "NewFileUpload", (FILE_ID,), "uploaded"),
        ("vod_procedure_processing", "ProcedureStateChanged", (FILE_ID,), "processing"),
        ("vod_procedure_finish", "ProcedureStateChanged", (FILE_ID,), "finished"),
        ("vod_file_deleted", "FileDeleted", (FILE_ID,), "deleted"),
        ("vod_transcode_complete", "TranscodeComplete", (FILE_ID,), "pending"),
        ("vod_pull_new_file_upload", "NewFileUpload", ("5285890784273533999",), "uploaded"),
    ],
)
def test_every_event_type_is_stored(
    store: EventStore, fixture: str, event_type: str, file_ids: tuple[str, ...], status: str
) -> None:
    result = ingest(store, fixture)
    stored = store.event(result.dedupe_key)
    assert stored is not None
    assert (stored.event_type, stored.file_ids, stored.received_at) == (event_type, file_ids, 100.0)
    assert result.duplicate is False
    upload = store.upload(file_ids[0])
    assert upload is not None and upload.status == status
    # As received, less what belongs to one delivery (a PULL item's EventHandle, a PUSH body's Sign and T).
    assert store.payload(result.dedupe_key) == {
        k: v for k, v in load_event(fixture).items() if k not in DELIVERY_FIELDS
    }


def test_unknown_type_without_file_is_kept(store: EventStore) -> None:
    payload = {"EventType": "WechatPublishComplete", "Extra": [1, 2]}
    result = ingest_event(store, payload, received_at=5.0, keys=KEYS)
    assert store.event(result.dedupe_key) == store_package.EventSummary(
        result.dedupe_key, "WechatPublishComplete", (), 5.0
    )
    assert store.payload(result.dedupe_key) == payload


def test_upload_record_has_everything_the_event_said(store: EventStore) -> None:
    ingest(store, "vod_new_file_upload")
    upload = store.upload(FILE_ID)
    assert upload is not None
    assert (upload.user_id, upload.sign_request_id) == ("alice", "c6af9ac6-7b61-11e6-9a41-93e8deadbeef")
    assert upload.media_url == f"{BASE_URL}/holiday.mp4"
    assert upload.cover_url is None  # VOD's "" means none
    assert (upload.name, upload.media_type, upload.storage_region, upload.class_id) == (
        "holiday",
        "mp4",
        "ap-chongqing",
        0,
    )
    assert (upload.source_type, upload.create_time) == ("Upload", "2019-01-09T16:36:22Z")
    assert (upload.procedure_task_id, upload.review_task_id) == (TASK_ID, None)
    assert upload.metadata is not None and upload.metadata["Duration"] == 16.0
    assert store.user_uploads("alice") == [upload]
    assert store.user_uploads("bob") == []


@pytest.mark.parametrize(("user", "found"), [("alice", True), ("bob", False)])
def test_a_users_upload_is_read_only_for_that_user(store: EventStore, user: str, found: bool) -> None:
    ingest(store, "vod_new_file_upload")
    ingest(store, "vod_procedure_finish")
    # Someone else's file reads as an unknown one: no record and none of its tasks.
    assert store.user_upload(user, FILE_ID, _with_task_ids) == ((store.upload(FILE_ID), [TASK_ID]) if found else None)
    assert store.user_upload(user, "no-such-file", _with_task_ids) is None


def _with_task_ids(upload: UploadRecord, tasks: Iterator[TaskRecord]) -> tuple[UploadRecord, list[str]]:
    return upload, [t.task_id for t in tasks]


def test_each_commit_that_writes_a_record_counts_in_its_revision(store: EventStore) -> None:
    # The hook of each commit gets the record one revision on: of two copies of it, the higher is the newer
    hook = Hook()
    for fixture in ("vod_procedure_processing", "vod_new_file_upload", "vod_procedure_finish", "vod_new_file_upload"):
        ingest(store, fixture, hook=hook)  # the last a duplicate: nothing written, no hook
    assert [c.upload.revision for c in hook.calls if c.upload is not None] == [1, 2, 3]
    upload = store.upload(FILE_ID)
    assert upload is not None and upload.revision == 3


def test_task_results_keep_every_output_url(store: EventStore) -> None:
    ingest(store, "vod_procedure_finish")
    [task] = store.tasks(FILE_ID)
    assert (task.task_id, task.status, task.outcome, task.session_context) == (
        TASK_ID,
        "FINISH",
        "finished",
        "order-42",
    )
    assert [(r.type, r.status, r.urls) for r in task.results] == [
        ("Transcode", "SUCCESS", (f"{BASE_URL}/v.f100030.mp4",)),
        (
            "SnapshotByTimeOffset",
            "SUCCESS",
            (f"{BASE_URL}/snapshotByTimeOffset/10_1000.jpg", f"{BASE_URL}/snapshotByTimeOffset/10_5000.jpg"),
        ),
        ("CoverBySnapshot", "SUCCESS", (f"{BASE_URL}/coverBySnapshot/1_0.jpg",)),
    ]


def test_tasks_come_in_code_point_order_whatever_the_collation(store: EventStore) -> None:
    # The test server's collation is en-US, as on most managed servers: it would put "procedurev2" first.
    ingest(store, "vod_new_file_upload")
    ids = ["1400329073-procedurev2-6a8dt0", "1400329073-WorkflowTask-9c1et0"]
    for task_id in ids:
        event = load_event("vod_procedure_finish")
        event["ProcedureStateChangeEvent"]["TaskId"] = task_id
        ingest_event(store, event, received_at=101.0, keys=KEYS)
    expected = sorted(ids)  # code points, as SQLite compares: "W" before "p"
    assert [t.task_id for t in store.tasks(FILE_ID)] == expected
    assert store.user_upload("alice", FILE_ID, _with_task_ids) == (store.upload(FILE_ID), expected)
    page, more = store.user_page("alice", 10, None, lambda *view: (_with_task_ids(*view)[1], 0), 0)
    assert ([ids for _, ids in page], more) == ([expected], False)


@pytest.mark.parametrize(
    ("change", "outcome"),
    [
        ({"ErrCode": 0}, "finished"),
        ({"ErrCode": 10008, "Message": "source file error"}, "failed"),
        (
            {"MediaProcessResultSet": [{"Type": "Transcode", "TranscodeTask": {"Status": "FAIL", "ErrCode": 30010}}]},
            "failed",
        ),
        # A step that says FAIL, with no error code (or 0): failed all the same
        *(
            ({"MediaProcessResultSet": [{"Type": "Transcode", "TranscodeTask": {"Status": "FAIL", **code}}]}, "failed")
            for code in ({"ErrCode": 0}, {})
        ),
    ],
)
def test_failed_tasks_fail_the_upload(store: EventStore, change: dict[str, Any], outcome: str) -> None:
    ingest(store, "vod_new_file_upload")
    finish = load_event("vod_procedure_finish")
    finish["ProcedureStateChangeEvent"].update(change)
    ingest_event(store, finish, received_at=101.0, keys=KEYS)
    upload = store.upload(FILE_ID)
    assert upload is not None and upload.status == outcome
    assert store.tasks(FILE_ID)[0].outcome == outcome


def test_partial_delete_keeps_the_media(store: EventStore) -> None:
    ingest(store, "vod_new_file_upload")
    delete = load_event("vod_file_deleted")
    delete["FileDeleteEvent"]["FileDeleteResultInfo"] = [
        {"FileId": FILE_ID, "DeleteParts": [{"Type": "TranscodeFiles", "Definition": 100030}]}
    ]
    ingest_event(store, delete, received_at=101.0, keys=KEYS)
    upload = store.upload(FILE_ID)
    assert upload is not None
    assert (upload.deleted, upload.status) == (False, "uploaded")
    assert [(p.type, p.definition) for p in upload.deleted_parts] == [("TranscodeFiles", 100030)]


@pytest.mark.parametrize("in_list_max", [500, 2], ids=["", "more files than one statement binds"])
def test_one_delete_event_for_several_files(
    store: EventStore, monkeypatch: pytest.MonkeyPatch, in_list_max: int
) -> None:
    # (an old SQLite binds 999 values a statement, and a FileDeleted names up to 1,000 files: read in parts)
    monkeypatch.setattr(base, "IN_LIST_MAX", in_list_max)
    files = ["a", "b", "c", "d", "e"]
    ingest_event(store, vod_event("NewFileUpload", FileId="c"), received_at=6.0, keys=KEYS)
    hook = Hook()
    ingest_event(
        store,
        {"EventType": "FileDeleted", "FileDeleteEvent": {"FileIdSet": files}},
        received_at=7.0,
        after_commit=hook,
        keys=KEYS,
    )
    for file_id in files:
        upload = store.upload(file_id)
        assert upload is not None and (upload.status, upload.deleted_at) == ("deleted", 7.0)
    [call] = hook.calls
    assert [u.file_id for u in call.uploads] == files and call.upload is None
    assert store.upload("c").first_seen_at == 6.0  # type: ignore[union-attr]
    # and an erase reads which of the other files are erased in parts too: the delete is owed no hook once all are
    assert store.erase(["a", "b", "c"], erased_at=8.0) == ["a", "b", "c"] and store.erase(["d"], erased_at=8.0) == ["d"]
    assert [e.hook_status for e in store.events_for("e")] == ["done"]  # "e" is not erased yet
    assert store.erase(["e"], erased_at=8.0) == ["e"]
    assert [e.hook_status for e in store.events_for("e")] == ["erased"]


# --- duplicates -----------------------------------------------------------------------------------


def test_sequential_duplicates_have_one_effect(store: EventStore) -> None:
    hook = Hook()
    first = ingest(store, "vod_new_file_upload", 100.0, hook)
    again = [ingest(store, "vod_new_file_upload", 100.0 + i, hook) for i in range(1, 4)]
    assert first.duplicate is False and all(r.duplicate for r in again)
    assert {r.dedupe_key for r in again} == {first.dedupe_key}
    assert store.event_count() == 1 and len(hook.calls) == 1
    event = store.event(first.dedupe_key)
    assert event is not None and event.received_at == 100.0  # the first delivery's time stands


def test_a_pull_redelivery_with_a_new_handle_is_a_duplicate(store: EventStore) -> None:
    payload = load_event("vod_pull_new_file_upload")
    first = ingest_event(store, payload, received_at=1.0, keys=KEYS)
    # PullEvents hands an unconfirmed event out again after 30 s, with a new handle.
    again = ingest_event(store, {**payload, "EventHandle": "a-new-receipt"}, received_at=31.0, keys=KEYS)
    assert first.dedupe_key == again.dedupe_key
    assert (first.duplicate, again.duplicate, store.event_count()) == (False, True, 1)


def _at_once(calls: list[Callable[[], Any]]) -> tuple[list[Any], list[BaseException]]:
    """Run `calls` each in a thread of its own, released together: (their results, what they raised)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results.append(call())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


def test_sixteen_concurrent_threads_have_one_effect(store: EventStore) -> None:
    hook = Hook()
    results, errors = _at_once([lambda: ingest(store, "vod_new_file_upload", 100.0, hook).duplicate] * 16)
    assert errors == []
    assert sorted(results) == [False] + [True] * 15
    assert store.event_count() == 1 and len(hook.calls) == 1


def test_concurrent_different_events_for_one_file_lose_nothing(store: EventStore) -> None:
    names = ["vod_new_file_upload", "vod_procedure_processing", "vod_procedure_finish", "vod_transcode_complete"]
    _, errors = _at_once([functools.partial(ingest, store, name) for name in names])
    assert errors == []
    upload = store.upload(FILE_ID)
    assert upload is not None and (upload.user_id, upload.status) == ("alice", "finished")
    assert len(store.events_for(FILE_ID)) == 4


@pytest.mark.postgres
@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
def test_writers_wait_their_turn_whatever_isolation_the_database_defaults_to(
    postgres_server: PostgresServer, isolation: str
) -> None:
    # GIVEN a database whose default isolation a DBA set above READ COMMITTED
    url = postgres_server.create_database()
    run_sql(
        postgres_server.url(),
        f"ALTER DATABASE \"{database_name(url)}\" SET default_transaction_isolation = '{isolation}'",
    )
    stores = [open_store(url) for _ in range(4)]
    try:
        # WHEN four cold starts meet an empty database, then deliver one event and the file's others, all at once
        versions, errors = _at_once([s.schema_version for s in stores])
        assert (errors, versions) == ([], [SCHEMA_VERSION] * 4)  # not 503s from rerunning the migrations
        names = ["vod_procedure_processing", "vod_procedure_finish", "vod_transcode_complete"]

        def deliver(store: EventStore, name: str) -> tuple[str, bool]:
            return name, ingest(store, name).duplicate

        copies = [functools.partial(deliver, s, "vod_new_file_upload") for s in stores]
        others = [functools.partial(deliver, s, name) for s, name in zip(stores, names, strict=False)]
        results, errors = _at_once([*copies, *others])
        # THEN each waited for the one before it: no serialization failures, one effect each
        assert errors == []
        once = [("vod_new_file_upload", False), *(("vod_new_file_upload", True),) * 3, *((n, False) for n in names)]
        assert sorted(results) == sorted(once)
        upload = stores[0].upload(FILE_ID)
        assert upload is not None and (upload.user_id, upload.status) == ("alice", "finished")
    finally:
        for s in stores:
            s.close()
        postgres_server.drop_database(url)


# --- order independence -------------------------------------------------------------------------------

SEQUENCE = ["vod_new_file_upload", "vod_procedure_processing", "vod_procedure_finish", "vod_file_deleted"]


def _deliver_in(order: tuple[str, ...], store: EventStore) -> Any:
    for name in order:
        # Each event keeps its own receive time whatever the order: the records depend on the set.
        ingest(store, name, received_at=1000.0 + SEQUENCE.index(name))
    return store.file_report(FILE_ID)


def test_any_arrival_order_gives_identical_records(new_store: Callable[[], EventStore]) -> None:
    reports = {order: _deliver_in(order, new_store()) for order in itertools.permutations(SEQUENCE)}
    expected = reports[tuple(SEQUENCE)]
    assert expected.upload.status == "deleted" and expected.upload.user_id == "alice"
    assert expected.upload.deleted_at == 1003.0
    assert [t.outcome for t in expected.tasks] == ["finished"]
    assert len(expected.tasks[0].results) == 3
    different = [order for order, report in reports.items() if report != expected]
    assert different == [], f"{len(different)} of 24 orders differ, e.g. {different[:1]}"


@pytest.mark.parametrize(
    ("order", "status", "user"),
    [
        (("vod_file_deleted", "vod_new_file_upload"), "deleted", "alice"),  # a delete before its upload stays deleted
        (("vod_procedure_finish",), "finished", None),  # a task before its upload is kept...
        (("vod_procedure_finish", "vod_new_file_upload"), "finished", "alice"),  # ...and joined by it
        (("vod_procedure_finish", "vod_procedure_processing"), "finished", None),  # a late PROCESSING can't undo FINISH
    ],
)
def test_early_events_are_kept(store: EventStore, order: tuple[str, ...], status: str, user: str | None) -> None:
    for i, name in enumerate(order):
        ingest(store, name, received_at=float(i))
    upload = store.upload(FILE_ID)
    assert upload is not None and (upload.status, upload.user_id) == (status, user)


@pytest.fixture
def many_files_open() -> Iterator[None]:
    """This process with descriptors 0..1099 taken, so that the next it opens is numbered above select's 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:  # a hard limit below it can be raised by root (CI runs as root)
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (max(soft, 1200), hard if hard == resource.RLIM_INFINITY else max(hard, 1200))
        )
    except (ValueError, OSError) as exc:
        pytest.fail(f"this test needs a limit of at least 1200 open files (RLIMIT_NOFILE is {soft}, {hard}): {exc}")
    taken = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        yield
    finally:
        for descriptor in taken:
            os.close(descriptor)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_process_with_many_files_open_still_stores(
    new_store: Callable[[], EventStore], many_files_open: None
) -> None:
    store = new_store()  # its connection made now, on a descriptor above 1024
    assert ingest(store, "vod_new_file_upload").duplicate is False
    assert store.upload(FILE_ID) is not None


# --- failures -----------------------------------------------------------------------------------------


def test_a_failed_transaction_writes_nothing(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import shared.store.base as base

    def broken_projection(*args: Any, **kwargs: Any) -> Any:
        raise store.errors[0]("the disk is full")

    monkeypatch.setattr(base, "add", broken_projection)
    payload = load_event("vod_new_file_upload")
    with pytest.raises(StoreUnavailable):
        ingest_event(store, payload, received_at=1.0, keys=KEYS)
    monkeypatch.undo()
    assert store.event(stored_form(payload).key) is None and store.upload(FILE_ID) is None
    assert ingest_event(store, payload, received_at=2.0, keys=KEYS).duplicate is False  # the retry is not a duplicate
    assert store.upload(FILE_ID) is not None


@pytest.mark.parametrize(
    ("message", "recorded"),
    [
        ("downstream is down", "RuntimeError: downstream is down"),
        # A hook quoting an event field (MetaData, say) that no store takes as text: kept escaped.
        ("no title 'a\x00b\ud800'", "RuntimeError: no title 'a\\x00b\\ud800'"),
        # An app's message whose __str__ fails: recorded all the same (it was a 500, and the hook stayed pending)
        (_Unprintable(ValueError("a format the app got wrong")), "RuntimeError: <its message could not be read>"),
        (_Unprintable(SystemExit("in __str__")), "RuntimeError: <its message could not be read>"),
    ],
)
def test_hook_failure_is_recorded_and_never_loses_the_event(store: EventStore, message: Any, recorded: str) -> None:
    hook = Hook(fail=True, message=message)
    result = ingest(store, "vod_new_file_upload", hook=hook)
    assert result.duplicate is False and result.hook_error == recorded
    event = store.event(result.dedupe_key)
    assert event is not None
    assert (event.hook_status, event.hook_failures, event.hook_last_error) == ("failed", 1, result.hook_error)
    assert store.upload(FILE_ID) is not None
    assert ingest(store, "vod_new_file_upload", hook=hook).duplicate is True
    assert len(hook.calls) == 1  # not re-run for the duplicate


@pytest.mark.parametrize(
    ("hook", "status"),
    [
        (None, None),  # no hook configured: nothing is owed
        (Hook(), "done"),
        (Hook(fail=True), "failed"),
        (hook_target.killed, "pending"),  # cut short: stays visible as owed
    ],
)
def test_hook_status_is_recorded(store: EventStore, hook: Any, status: str | None) -> None:
    payload = load_event("vod_new_file_upload")
    with contextlib.suppress(hook_target.Killed):
        ingest_event(store, payload, received_at=1.0, **({"after_commit": hook} if hook else {}), keys=KEYS)
    event = store.event(stored_form(payload).key)
    assert event is not None and event.hook_status == status


def test_unfinished_hooks_received_at_one_time_are_paged_through_in_key_order(store: EventStore) -> None:
    # (PULL stores a batch read on one clock tick, say: the page's end is a time and a key, both)
    names = ("vod_new_file_upload", "vod_procedure_finish", "vod_transcode_complete")
    for name in names:
        ingest(store, name, received_at=5.0, hook=Hook(fail=True))
    pages = [store.unfinished_hooks(received_before=50.0, limit=1)]
    while pages[-1]:
        pages.append(store.unfinished_hooks(received_before=50.0, after=pages[-1][-1], limit=1))
    assert [page[0].dedupe_key for page in pages[:-1]] == sorted(stored_form(load_event(n)).key for n in names)


def test_events_stored_while_no_hook_was_set_are_owed_one_from_a_time_on(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "OWE_HOOK_PAGE", 2)  # a page of events a transaction: several here
    # GIVEN events stored with no hook set, before a time and since (one of those erased since), and one a hook ran for
    keys = {}
    for file_id, at, hook in [("f-1", 1.0, None), ("f-2", 5.0, None), ("f-3", 6.0, None), ("f-4", 7.0, Hook())]:
        event = vod_event("NewFileUpload", FileId=file_id)
        after_commit = no_hook if hook is None else hook  # no_hook: no hook was set
        keys[file_id] = ingest_event(store, event, received_at=at, keys=KEYS, after_commit=after_commit).dedupe_key
    store.erase(["f-3"], erased_at=10.0)
    assert store.unfinished_hooks(received_before=50.0) == []
    # WHEN those since 5.0 are owed the hook THEN only the one with no hook that is not erased is, and it is listed
    assert store.owe_hook(received_since=5.0, dry_run=True) == 1
    assert store.unfinished_hooks(received_before=50.0) == []  # asked how many: nothing changed
    assert store.owe_hook(received_since=5.0) == 1
    assert [e.dedupe_key for e in store.unfinished_hooks(received_before=50.0)] == [keys["f-2"]]
    assert store.owe_hook(received_since=0.0) == 1  # and the one before, once asked for
    assert [e.dedupe_key for e in store.unfinished_hooks(received_before=50.0)] == [keys["f-1"], keys["f-2"]]


def test_only_a_failed_or_pending_hook_or_one_whose_rerun_died_is_given_up(store: EventStore) -> None:
    keys = {}
    hooks: list[tuple[str, Callable[..., None]]] = [
        ("f-1", Hook(fail=True)),
        ("f-2", hook_target.killed),
        ("f-3", Hook()),
        ("f-4", no_hook),
        ("f-5", hook_target.killed),  # then taken by a rerun that died (its hook killed the process, say)
        ("f-6", hook_target.killed),  # then taken by a rerun still running it
    ]
    for file_id, hook in hooks:
        with contextlib.suppress(hook_target.Killed):
            ingest_event(
                store, vod_event("NewFileUpload", FileId=file_id), received_at=1.0, keys=KEYS, after_commit=hook
            )
        keys[file_id] = store.events_for(file_id)[0].dedupe_key
    for file_id, claimed_at in (("f-5", 100.0), ("f-6", 900.0)):
        assert store.claim_hook(store.events_for(file_id)[0], claimed_at)
    given = [store.give_up_hook(keys[f], claims_dead_before=500.0) for f in sorted(keys)]
    assert given == [True, True, False, False, True, False]
    assert store.give_up_hook(keys["f-1"], claims_dead_before=500.0) is False  # once
    assert store.unfinished_hooks(received_before=50.0) == []
    assert [e.dedupe_key for e in store.hooks_being_rerun(claimed_since=500.0)] == [keys["f-6"]]
    assert {f: store.event(keys[f]).hook_status for f in ("f-1", "f-2", "f-5")} == dict.fromkeys(  # type: ignore[union-attr]
        ("f-1", "f-2", "f-5"), "given_up"
    )


def test_a_hook_that_did_not_finish_can_be_run_again(store: EventStore) -> None:
    # GIVEN a hook done, one failed, one cut short long ago and one cut short just now (maybe still running)
    keys = {}
    deliveries: list[tuple[str, Callable[..., None], float]] = [
        ("vod_transcode_complete", Hook(), 1.0),
        ("vod_new_file_upload", Hook(fail=True), 2.0),
        ("vod_procedure_finish", hook_target.killed, 3.0),
        ("vod_file_deleted", hook_target.killed, 100.0),
    ]
    for name, hook, at in deliveries:
        with contextlib.suppress(hook_target.Killed):
            ingest(store, name, received_at=at, hook=hook)
        keys[name] = stored_form(load_event(name)).key
    # WHEN the unfinished ones of before 50.0 are listed and run again
    unfinished = store.unfinished_hooks(received_before=50.0)
    assert [(e.dedupe_key, e.hook_status) for e in unfinished] == [
        (keys["vod_new_file_upload"], "failed"),
        (keys["vod_procedure_finish"], "pending"),
    ]
    pages = [store.unfinished_hooks(received_before=101.0, limit=1)]  # a page at a time, from the last one's end
    while pages[-1]:
        pages.append(store.unfinished_hooks(received_before=101.0, after=pages[-1][-1], limit=1))
    assert [page[0].dedupe_key for page in pages[:-1]] == [
        *(e.dedupe_key for e in unfinished),
        keys["vod_file_deleted"],
    ]
    again = Hook()
    assert [rerun_hook(again, store, event) for event in unfinished] == [None, None]
    # THEN the hook saw each with its file's record as it is now, and each is done
    assert [(c.dedupe_key, c.event.event_type, c.upload == store.upload(FILE_ID)) for c in again.calls] == [
        (keys["vod_new_file_upload"], "NewFileUpload", True),
        (keys["vod_procedure_finish"], "ProcedureStateChanged", True),
    ]
    assert store.unfinished_hooks(received_before=50.0) == []
    done = store.event(keys["vod_new_file_upload"])
    assert done is not None and (done.hook_status, done.hook_failures) == ("done", 1)  # the failure stays counted
    assert [e.dedupe_key for e in store.unfinished_hooks(received_before=101.0)] == [keys["vod_file_deleted"]]
    with pytest.raises(HookTaken):  # as another operator listed it before: not run twice
        rerun_hook(again, store, unfinished[0])
    assert len(again.calls) == 2


def test_a_rerun_claims_a_hook_once_and_a_dead_runs_claim_is_taken_again(store: EventStore) -> None:
    key = ingest(store, "vod_new_file_upload", 2.0, Hook(fail=True)).dedupe_key
    [listed] = store.unfinished_hooks(received_before=50.0)
    assert store.claim_hook(listed, claimed_at=10.0) and not store.claim_hook(listed, claimed_at=11.0)
    assert store.unfinished_hooks(received_before=10.0) == []  # claimed at 10.0: not listed before then
    # a claim is taken for a dead run's by its own age (claimed_before), whatever age the events are listed by
    assert store.unfinished_hooks(received_before=50.0, claimed_before=10.0) == []
    assert [e.dedupe_key for e in store.hooks_being_rerun(claimed_since=10.0)] == [key]
    assert store.hooks_being_rerun(claimed_since=10.5) == []
    [stale] = store.unfinished_hooks(received_before=10.5)  # older than the cut: that run is taken for dead
    assert (stale.hook_status, stale.hook_claimed_at) == ("rerunning", 10.0) and store.claim_hook(
        stale, claimed_at=12.0
    )
    assert not store.record_hook_result(key, None, claimed_at=10.0)  # the first run's result: its claim is gone
    assert store.record_hook_result(key, None, claimed_at=12.0)
    done = store.event(key)
    assert done is not None and (done.hook_status, done.hook_failures) == ("done", 1)


def test_a_rerun_that_another_took_over_while_it_ran_says_so(store: EventStore) -> None:
    # GIVEN a failed hook, listed, and a rerun of it that outlasts --older-than: another operator takes it over
    key = ingest(store, "vod_new_file_upload", 2.0, Hook(fail=True)).dedupe_key
    [listed] = store.unfinished_hooks(received_before=50.0)

    def slow_hook(committed: CommittedEvent) -> None:
        [stale] = store.unfinished_hooks(received_before=50.0, claimed_before=30.0)
        assert store.claim_hook(stale, claimed_at=40.0)

    # WHEN the first run ends THEN it is told its result is not the one recorded (the other run's stands)
    with pytest.raises(HookTaken, match="took it over"):
        rerun_hook(slow_hook, store, listed, now=lambda: 20.0)
    taken = store.event(key)
    assert taken is not None and (taken.hook_status, taken.hook_claimed_at) == ("rerunning", 40.0)


def test_the_functions_result_leaves_a_reruns_claim_alone(store: EventStore) -> None:
    # GIVEN a hook the function still runs (pending), taken by an operator's rerun with a short --older-than
    payload = load_event("vod_new_file_upload")
    key = stored_form(payload).key
    store.ingest(stored_form(payload), parse_event(payload), received_at=1.0, hook_pending=True)
    [listed] = store.unfinished_hooks(received_before=10.0)
    assert store.claim_hook(listed, claimed_at=50.0)
    # WHEN the function's run ends, failed THEN that is not recorded over the claim: no second rerun lists it
    assert not store.record_hook_result(key, "RuntimeError: CRM down")
    assert store.unfinished_hooks(received_before=10.0) == []
    assert store.record_hook_result(key, None, claimed_at=50.0)


def test_a_rerun_of_a_hook_whose_files_were_erased_since_it_was_listed_is_not_a_failure(store: EventStore) -> None:
    ingest(store, "vod_new_file_upload", 2.0, Hook(fail=True))
    [listed] = store.unfinished_hooks(received_before=50.0)
    store.erase([FILE_ID], erased_at=10.0)  # another operator's erase, as this rerun goes through its list
    again = Hook()
    with pytest.raises(HookTaken, match="its files were erased since it was listed"):
        rerun_hook(again, store, listed, now=lambda: 20.0)
    assert again.calls == [] and store.unfinished_hooks(received_before=50.0) == []


@pytest.mark.parametrize("when", ["as the claim's COMMIT is answered", "as the records are read, after the claim"])
def test_a_rerun_interrupted_before_its_hook_began_lets_its_claim_go(
    store: EventStore, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    key = ingest(store, "vod_new_file_upload", 2.0, Hook(fail=True)).dedupe_key
    [listed] = store.unfinished_hooks(received_before=50.0)
    name = "claim_hook" if "claim's" in when else "upload"
    real = getattr(store, name)

    def interrupted(*args: Any) -> None:  # Ctrl-C once the claim has committed
        if name == "claim_hook":
            real(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(store, name, interrupted)
    again = Hook()
    with pytest.raises(KeyboardInterrupt):
        rerun_hook(again, store, listed, now=lambda: 20.0)
    event = store.event(key)
    assert again.calls == [] and event is not None
    assert (event.hook_status, event.hook_last_error) == ("failed", INTERRUPTED)  # the next rerun takes it


@pytest.mark.parametrize(
    ("fails", "hook_error", "status"), [(False, None, "done"), (True, "RuntimeError: boom", "failed")]
)
def test_a_rerun_interrupted_as_it_records_the_hooks_result_records_that_result(
    store: EventStore, monkeypatch: pytest.MonkeyPatch, fails: bool, hook_error: str | None, status: str
) -> None:
    key = ingest(store, "vod_new_file_upload", 2.0, Hook(fail=True)).dedupe_key
    [listed] = store.unfinished_hooks(received_before=50.0)
    real = store.record_hook_result
    interrupts = [KeyboardInterrupt()]

    def interrupted(*args: Any, **kwargs: Any) -> bool:  # Ctrl-C as the hook's result is sent, once
        if interrupts:
            raise interrupts.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "record_hook_result", interrupted)
    again = Hook(fail=fails, message="boom")
    with pytest.raises(RerunInterrupted) as stopped:
        rerun_hook(again, store, listed, now=lambda: 20.0)
    event = store.event(key)
    assert len(again.calls) == 1 and stopped.value.hook_error == hook_error and event is not None
    # THEN what the hook did is recorded, not an interruption, and the claim is let go at once
    assert (event.hook_status, event.hook_failures) == (status, 2 if fails else 1)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("default", "in_a_writer"), [("off", "on"), ("local", "local"), ("remote_apply", "remote_apply")]
)
def test_a_writer_commits_durably_whatever_the_database_defaults_to(
    postgres_server: PostgresServer, default: str, in_a_writer: str
) -> None:
    # synchronous_commit = off (a DBA's throughput tuning) answers COMMIT before the WAL is on disk: the 200 would
    # promise what a crash loses. What flushes locally, or waits for more, is kept.
    url = postgres_server.create_database()
    run_sql(postgres_server.url(), f'ALTER DATABASE "{database_name(url)}" SET synchronous_commit = {default}')
    store = open_store(url)

    def setting(cursor: Any) -> str:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])

    try:
        assert (store._run(setting, write=True), store._run(setting, write=False)) == (in_a_writer, default)
    finally:
        store.close()
        postgres_server.drop_database(url)


@pytest.mark.postgres
def test_a_failed_rerun_is_taken_again_whatever_digits_the_server_prints_floats_with(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database()
    # PostgreSQL 11's default (or a role's setting): floats printed with 15 digits, a claim's time read back rounded
    run_sql(postgres_server.url(), f'ALTER DATABASE "{database_name(url)}" SET extra_float_digits = 0')
    store = open_store(url)
    try:
        ingest(store, "vod_new_file_upload", 1.0, Hook(fail=True))
        [listed] = store.unfinished_hooks(received_before=10.0)
        assert rerun_hook(Hook(fail=True), store, listed, now=lambda: 1_700_000_000.1234567) is not None
        [listed] = store.unfinished_hooks(received_before=10.0)
        again = Hook()
        assert rerun_hook(again, store, listed) is None and len(again.calls) == 1
    finally:
        store.close()
        postgres_server.drop_database(url)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("run", "statement"),
    [
        (lambda store: ingest(store, "vod_procedure_finish", 2.0), "UPDATE events SET hook_status = 'done'"),
        (
            lambda store: rerun_hook(Hook(), store, store.unfinished_hooks(received_before=50.0)[0], now=lambda: 9.0),
            "UPDATE events SET hook_status = 'rerunning'",
        ),
    ],
    ids=["result", "claim"],
)
def test_a_hooks_state_is_updated_through_the_events_key_not_the_index_of_unfinished_hooks(
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
    run: Callable[[EventStore], object],
    statement: str,
) -> None:
    # GIVEN a vacuumed store whose hooks are all done (the index of unfinished ones empty, as the planner counts it):
    # an update that named a status of that index's would be planned through it, a read of all of it by key (it
    # grows with every hook done until the next vacuum: each event slower than the one before)
    url = postgres_server.create_database()
    store = open_store(url)
    ingest(store, "vod_new_file_upload", 1.0, Hook(fail=True))
    rows = "SELECT md5(i::text), 'X', '[]', i, '{}', 'done' FROM generate_series(1, 20000) AS i"
    run_sql(url, f"INSERT INTO events (dedupe_key, event_type, file_ids, received_at, payload, hook_status) {rows}")
    run_sql(url, "VACUUM ANALYZE events")
    sent: list[str] = []
    execute = postgres._BatchingCursor.execute

    def recording(cursor: Any, query: Any, vars: Any = None) -> None:
        execute(cursor, query, vars)
        sent.extend(cursor.query.decode().split(";\n"))

    monkeypatch.setattr(postgres._BatchingCursor, "execute", recording)
    try:
        run(store)
        store.close()
        # WHEN the statement that records the hook's result (or takes it for a rerun) is planned
        [update] = [sql for sql in sent if sql.startswith(statement)]
        plan = " ".join(row[0] for row in run_sql(url, f"EXPLAIN {update}"))
    finally:
        store.close()
        postgres_server.drop_database(url)
    # THEN it finds the event by its key
    assert "events_pkey" in plan and "events_unfinished_hooks" not in plan, plan


@pytest.mark.parametrize(
    ("listing", "read"),
    [
        (
            lambda store, after: store.unfinished_hooks(received_before=50.0, after=after),
            # from the page's start on (a test of each column would read the index from its start, each page)
            "SEARCH events USING INDEX events_unfinished_hooks ((received_at,dedupe_key)>(?,?))",
        ),
        (lambda store, after: store.hooks_being_rerun(claimed_since=10.0), "USING INDEX events_unfinished_hooks"),
    ],
    ids=["unfinished_hooks", "hooks_being_rerun"],
)
def test_unfinished_hooks_are_read_from_an_index_of_their_own_not_from_every_event(
    tmp_path: Path, listing: Callable[[EventStore, Any], object], read: str
) -> None:
    # GIVEN a SQLite store (its query plans are readable) and the statement of a page of unfinished hooks, as run
    url = f"sqlite:///{tmp_path / 'vod.sqlite3'}"
    store = open_store(url)
    after = store.event(ingest(store, "vod_new_file_upload", 2.0, Hook(fail=True)).dedupe_key)
    run: list[str] = []
    store._idle[0].set_trace_callback(run.append)
    listing(store, after)
    store.close()
    [page] = [sql for sql in run if "FROM events WHERE" in sql]
    # THEN it reads them in order from their partial index: not every stored event, sorted (`vod-uploads hooks`
    # would read the whole table for each page, and time out on a store of millions)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        plan = " ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {page}"))  # its values written in
    assert read in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_hook_sees_the_committed_record(store: EventStore) -> None:
    seen: list[Any] = []
    ingest(
        store, "vod_new_file_upload", hook=lambda c: seen.append((c.event.event_type, c.upload, store.upload(FILE_ID)))
    )
    [(event_type, upload, in_store)] = seen
    assert event_type == "NewFileUpload" and upload == in_store and upload.user_id == "alice"


@pytest.mark.parametrize(
    "table",
    [
        "schema_version (version VARCHAR(50) NOT NULL, description TEXT)",  # Flyway's first layout, say
        "schema_version (version INTEGER NOT NULL, script TEXT)",
        "schema_version (version VARCHAR(50) NOT NULL, applied_at DOUBLE PRECISION)",  # our columns, not our types
    ],
)
def test_a_database_with_another_programs_schema_version_is_unavailable_not_a_crash(
    new_url: Callable[[], str], table: str
) -> None:
    # GIVEN a database another program keeps its own schema_version table in
    url = new_url()
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    sql = sqlite3.connect(url.removeprefix("sqlite:///")).execute if url.startswith("sqlite") else None
    for statement in (f"CREATE TABLE {table}", "INSERT INTO schema_version (version) VALUES ('1')"):
        if sql is None:
            run_sql(url, statement)
        else:
            sql(statement).connection.commit()
    # THEN the store says so, as unavailable (a 503 for the functions), and writes nothing there
    store = open_store(url)
    with pytest.raises(StoreUnavailable):
        store.schema_version()
    with pytest.raises(StoreUnavailable):
        ingest_event(store, load_event("vod_new_file_upload"), received_at=1.0, keys=KEYS)
    store.close()


def test_schema_migration_is_idempotent(new_url: Callable[[], str]) -> None:
    url = new_url()
    first, second = open_store(url), open_store(url)
    try:
        assert first.schema_version() == SCHEMA_VERSION
        ingest(first, "vod_new_file_upload")
        assert second.schema_version() == SCHEMA_VERSION  # a second container migrates nothing, loses nothing
        assert second.event_count() == 1
    finally:
        first.close()
        second.close()
    third = open_store(url)
    try:
        assert third.upload(FILE_ID) is not None and third.schema_version() == SCHEMA_VERSION
    finally:
        third.close()


def test_a_user_a_schema_1_build_took_from_an_unsealed_context_is_no_ones_after_the_upgrade(
    new_url: Callable[[], str],
) -> None:
    # GIVEN alice's upload as a build of schema 1 recorded it: her user id and request read from an unsealed `u1:`
    # sourceContext, which anyone could have written (no attribution, no state), in a store migrated up to 8 since
    url = new_url()
    store = open_store(url)
    event = vod_event("NewFileUpload", FileId=FILE_ID, SourceContext="u1:r:al:ice")
    ingest_event(store, event, received_at=1.0, keys=KEYS)
    store.close()
    for statement in (
        "UPDATE uploads SET user_id = 'al:ice', sign_request_id = 'r', attribution = NULL, projection = NULL",
        "UPDATE events SET attribution = NULL",
        f"DELETE FROM schema_version WHERE version > {SCHEMA_VERSION - 1}",
    ):
        sql_on(url, statement)
    # WHEN this build opens it THEN the record names no one, and erasing her data still finds the file
    upgraded = open_store(url)
    try:
        upload = upgraded.upload(FILE_ID)
        assert upload is not None and (upload.user_id, upload.sign_request_id, upload.attribution) == (
            None,
            None,
            "not_sealed",
        )
        assert (upgraded.user_uploads("al:ice"), upgraded.files_naming("al:ice")) == ([], [FILE_ID])
        # AND the record rebuilt from its events at the file's next event says the same
        finished = vod_event("ProcedureStateChanged", FileId=FILE_ID, TaskId="t1", Status="FINISH")
        ingest_event(upgraded, finished, received_at=2.0, keys=KEYS)
        rebuilt = upgraded.upload(FILE_ID)
        assert rebuilt is not None and (rebuilt.user_id, rebuilt.sign_request_id, rebuilt.attribution) == (
            None,
            None,
            "not_sealed",
        )
    finally:
        upgraded.close()


# Each schema version's statements, as released: a store at that version never runs them again, so a change
# to one reaches no deployed store (it would lack what was added). Change the schema with a new version.
RELEASED_MIGRATIONS = {
    1: "d0d54d3cdc84608c",
    2: "d9b781f2cf59b3aa",
    3: "64195e2dcacec541",
    4: "64319f55f6fd67d8",
    5: "4852c3961e6f472e",
    6: "4dbf47b6a5651bcd",
    7: "05f5f1f5db14199c",
    8: "88adda9b3d6f31c9",
    9: "2a10670954eccd69",
}


@pytest.mark.parametrize(("version", "digest"), RELEASED_MIGRATIONS.items())
def test_a_released_migration_is_never_edited(version: int, digest: str) -> None:
    statements = dict(MIGRATIONS)[version]
    assert hashlib.sha256("\n".join(statements).encode()).hexdigest()[:16] == digest, (
        f"schema {version} was released: add a migration {SCHEMA_VERSION + 1} instead"
    )


def test_every_migration_is_pinned_once_released() -> None:
    assert [version for version, _ in MIGRATIONS] == list(RELEASED_MIGRATIONS)  # a new one: pin it when it ships


@pytest.mark.parametrize("url", ["mysql://x", "sqlite://relative", "sqlite:///:memory:", "sqlite:///"])
def test_open_store_rejects_other_urls(url: str) -> None:
    with pytest.raises(ValueError, match="DATABASE_URL"):
        open_store(url)


def test_sqlite_path_is_relative_to_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///.local/nested/vod.sqlite3")  # parent directories are created on first use
    monkeypatch.chdir("/")  # resolved when opened, not when first used
    try:
        ingest(store, "vod_new_file_upload")
    finally:
        store.close()
    assert (tmp_path / ".local" / "nested" / "vod.sqlite3").is_file()


def test_a_file_known_only_by_task_events_was_first_seen_at_the_earliest_of_them(store: EventStore) -> None:
    # Received out of order (two instances, or PULL after PUSH): first seen when the earliest was received
    for task_id, at in (("t-late", 105.0), ("t-early", 103.0), ("t-last", 108.0)):
        event = load_event("vod_procedure_processing")
        event["ProcedureStateChangeEvent"]["TaskId"] = task_id
        ingest_event(store, event, received_at=at, keys=KEYS)
    upload = store.upload(FILE_ID)
    assert upload is not None and not upload.uploaded
    assert (upload.first_seen_at, upload.last_event_at) == (103.0, 108.0)
