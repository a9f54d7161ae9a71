"""Erasing a user's data (`EventStore.erase`, `vod-uploads erase`): nothing of theirs left in any table, and no
event, redelivered or new, brings it back; other files' records stay as they were."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

from shared.hooks import CommittedEvent, HookTaken, rerun_hook
from shared.ingest import ingest_event
from shared.source_context import seal
from shared.store import (
    EraseTooLarge,
    EventStore,
    EventSummary,
    Idle,
    Retention,
    StoreUnavailable,
    open_store,
    postgres,
)
from shared.store.base import _ERROR_HIDDEN
from tests.conftest import CONTEXT_KEY, KEYS
from vodtesting import vod_event
from vodtesting.pgserver import PostgresServer, run_sql

ANN, BOB = "5285890784273533001", "5285890784273533002"
# What is Ann's: her id, her file's name, her session's context, her hook's error
ANNS = ("ann.li@example.com", "Ann Li at the clinic", "patient-ann-li", "ann.li's CRM refused")
HIDDEN = "(hidden: the event names an erased file; the hook.failed log line has the error)"  # a hook's error


def _upload(user: str, file_id: str) -> dict[str, Any]:
    name = ANNS[1] if file_id == ANN else "Bob's holiday"
    return vod_event("NewFileUpload", FileId=file_id, SourceContext=seal(user, "r", CONTEXT_KEY), Name=name)


def _task(file_id: str, status: str, task_id: str = "task-1") -> dict[str, Any]:
    session = ANNS[2] if file_id == ANN else "bob"
    return vod_event("ProcedureStateChanged", FileId=file_id, TaskId=task_id, Status=status, SessionContext=session)


def _failing_hook(committed: CommittedEvent) -> None:
    if any(upload.user_id == ANNS[0] for upload in committed.uploads):
        raise RuntimeError(ANNS[3])


def _tables(store: EventStore) -> str:
    """Every row of every table, as text."""

    def read(cursor: Any) -> str:
        rows = []
        for table in ("events", "event_files", "uploads", "tasks"):
            cursor.execute(f"SELECT * FROM {table}")
            rows += cursor.fetchall()
        return repr(rows)

    return store._run(read, write=False)


@pytest.fixture
def recorded(store: EventStore) -> EventStore:
    """Ann's and Bob's uploads, each with a task flow, a hook that failed on Ann's, and a delete naming both."""
    deleted = vod_event("FileDeleted", FileIdSet=[ANN, BOB])
    for at, payload in enumerate(
        [_upload(ANNS[0], ANN), _upload("bob", BOB), _task(ANN, "PROCESSING"), _task(BOB, "FINISH"), deleted]
    ):
        ingest_event(store, payload, received_at=float(at), keys=KEYS, after_commit=_failing_hook)
    assert ANNS[3] in _tables(store)  # the hook's error was kept
    return store


def test_erasing_a_users_files_leaves_nothing_of_theirs_and_the_rest_as_it_was(recorded: EventStore) -> None:
    bobs = (recorded.upload(BOB), recorded.tasks(BOB))
    assert [u.file_id for u in recorded.user_uploads(ANNS[0])] == [ANN]
    assert recorded.erase([ANN, "5285890784273533999"], erased_at=100.0) == [ANN]  # an unknown file: nothing
    stored = _tables(recorded)
    assert [text for text in ANNS if text in stored] == []
    erased = recorded.upload(ANN)
    assert erased is not None and (erased.status, erased.user_id, erased.name) == ("erased", None, None)
    assert (erased.deleted, erased.deleted_at) == (True, 4.0)  # VOD deleted it: still said, as before the erase
    assert (recorded.user_uploads(ANNS[0]), recorded.tasks(ANN)) == ([], [])
    assert [e.event_type for e in recorded.events_for(ANN)] == ["NewFileUpload", "ProcedureStateChanged", "FileDeleted"]
    # Owed still: the delete's hook, for Bob's file; run again, it hears of his record only
    [owed] = recorded.unfinished_hooks(received_before=1000.0)
    heard: list[CommittedEvent] = []
    assert owed.event_type == "FileDeleted" and rerun_hook(heard.append, recorded, owed) is None
    assert [upload.file_id for upload in heard[0].uploads] == [BOB]
    assert (recorded.upload(BOB), recorded.tasks(BOB)) == bobs


@pytest.mark.parametrize(
    ("payload", "duplicate"),
    [
        (_upload(ANNS[0], ANN), True),  # VOD delivers it again, or PULL hands it out again
        (_task(ANN, "FINISH"), False),  # the task flow goes on after the erasure
        (_task(ANN, "FINISH", task_id="task-2"), False),
        (vod_event("FileDeleted", FileIdSet=[ANN]), False),
    ],
    ids=["redelivered", "task-goes-on", "new-task", "deleted"],
)
def test_no_event_brings_an_erased_file_back(recorded: EventStore, payload: dict[str, Any], duplicate: bool) -> None:
    recorded.erase([ANN], erased_at=100.0)
    hooked: list[CommittedEvent] = []
    result = ingest_event(recorded, payload, received_at=200.0, keys=KEYS, after_commit=hooked.append)
    assert result.duplicate is duplicate and result.uploads == () and hooked == []  # the app hears nothing of it
    stored = _tables(recorded)
    assert [text for text in ANNS if text in stored] == []
    erased = recorded.upload(ANN)
    assert erased is not None and erased.status == "erased" and recorded.tasks(ANN) == []
    assert [e.event_type for e in recorded.unfinished_hooks(received_before=1000.0)] == ["FileDeleted"]  # Bob's


WHOLE = {"FileIdSet": [ANN, BOB]}
PARTS = {"FileIdSet": [ANN], "FileDeleteResultInfo": [{"FileId": ANN, "DeleteParts": [{"Type": "CoverFiles"}]}]}


@pytest.mark.parametrize(
    ("deletes", "deleted_at"),
    [
        ([], None),
        ([(WHOLE, 200.0)], 200.0),  # with a file not erased: each record its own
        ([(PARTS, 200.0)], None),  # some of its parts only: the file is still there
        ([(WHOLE, 300.0), ({"FileIdSet": [ANN]}, 200.0)], 200.0),  # the first delete, whatever the order of arrival
        ([({"FileIdSet": [ANN]}, 50.0)], 50.0),  # deleted before it was erased
    ],
    ids=["never", "after", "parts-only", "twice", "before"],
)
def test_an_erased_record_says_whether_vod_deleted_the_file(
    store: EventStore, deletes: list[tuple[dict[str, Any], float]], deleted_at: float | None
) -> None:
    # GIVEN Ann's file erased (and Bob's not), WHEN VOD's deletes of it arrive, before the erase or after
    ingest_event(store, _upload(ANNS[0], ANN), received_at=1.0, keys=KEYS)
    ingest_event(store, _upload("bob", BOB), received_at=2.0, keys=KEYS)

    def deliver(after_erase: bool) -> None:
        for body, received_at in deletes:
            if (received_at > 100.0) is after_erase:
                ingest_event(store, vod_event("FileDeleted", **body), received_at=received_at, keys=KEYS)

    deliver(after_erase=False)
    store.erase([ANN], erased_at=100.0)
    deliver(after_erase=True)
    # THEN its record says so, as of the first (what `vod-uploads show` tells the operator who deleted it there)
    erased = store.upload(ANN)
    assert erased is not None and erased.status == "erased" and erased.user_id is None
    assert (erased.deleted, erased.deleted_at) == (deleted_at is not None, deleted_at)
    bobs = store.upload(BOB)
    assert bobs is not None and bobs.user_id == "bob" and bobs.deleted is (WHOLE in [d[0] for d in deletes])


def test_erasing_again_changes_nothing(recorded: EventStore) -> None:
    assert recorded.erase([ANN], erased_at=100.0) == [ANN]
    first = recorded.upload(ANN)
    assert recorded.erase([ANN, BOB], erased_at=200.0) == [BOB]  # run again (after it was cut short, say), with more
    assert first is not None and first.status == "erased" and recorded.upload(ANN) == first  # erased at 100, still


def test_a_hook_that_ends_after_its_files_were_erased_brings_nothing_back(store: EventStore) -> None:
    # GIVEN hooks still running (a slow CRM, say) when an operator erases Ann's file, then failing with her data
    def erased_meanwhile(committed: CommittedEvent) -> None:
        store.erase([ANN], erased_at=50.0)
        raise RuntimeError(f"CRM refused {ANNS[1]} of {ANNS[0]}")

    ingest_event(store, _upload("bob", BOB), received_at=1.0, keys=KEYS)
    for at, payload in enumerate([_upload(ANNS[0], ANN), vod_event("FileDeleted", FileIdSet=[ANN, BOB])], 2):
        ingest_event(store, payload, received_at=float(at), keys=KEYS, after_commit=erased_meanwhile)
    # THEN nothing of hers is kept: her upload's event owes no hook; the delete's still does (Bob's), its error hidden
    assert [text for text in ANNS[:2] if text in _tables(store)] == []
    [owed] = store.unfinished_hooks(received_before=1000.0)
    assert (owed.event_type, owed.hook_last_error) == ("FileDeleted", HIDDEN)
    assert [e.hook_failures for e in store.events_for(ANN) if e.event_type == "NewFileUpload"] == [0]


def _shared_edit_owed_then_erased(store: EventStore) -> EventSummary:
    """An edit of Ann's clip into Bob's compilation (it names both files: it is Bob's event too), its hook failed,
    then Ann's file erased: the edit, as listed before the erasure."""
    edit = vod_event(
        "EditMediaComplete", EditMediaCompleteEvent={"FileId": BOB, "Input": {"FileInfoSet": [{"FileId": ANN}]}}
    )
    for at, payload in enumerate([_upload(ANNS[0], ANN), _upload("bob", BOB)]):
        ingest_event(store, payload, received_at=float(at), keys=KEYS)
    ingest_event(store, edit, received_at=3.0, keys=KEYS, after_commit=_fails)
    [owed] = store.unfinished_hooks(received_before=1000.0)
    store.erase([ANN], erased_at=100.0)
    return owed


def test_an_event_shared_with_a_file_not_erased_keeps_its_content_and_its_hook(store: EventStore) -> None:
    owed = _shared_edit_owed_then_erased(store)
    assert [e.dedupe_key for e in store.unfinished_hooks(received_before=1000.0)] == [owed.dedupe_key]
    stored = store.payload(owed.dedupe_key)
    assert stored is not None and stored["EventType"] == "EditMediaComplete" and "Erased" not in stored
    # Rerun, its hook hears of Bob's record, and not the event's content: it still names Ann's clip
    heard: list[CommittedEvent] = []
    assert rerun_hook(heard.append, store, owed) is None
    [committed] = heard
    assert [u.file_id for u in committed.uploads] == [BOB] and committed.event.payload is None  # type: ignore[union-attr]


def test_a_new_event_naming_an_erased_file_and_another_tells_its_hook_of_the_other_only(store: EventStore) -> None:
    # Ann's clip edited into Bob's compilation, the edit ending after her file was erased: its content (which names
    # her clip) is kept, for Bob's file, but its hook hears of neither it nor her record, and keeps no error text
    for at, payload in enumerate([_upload(ANNS[0], ANN), _upload("bob", BOB)]):
        ingest_event(store, payload, received_at=float(at), keys=KEYS)
    store.erase([ANN], erased_at=3.0)
    edit = vod_event(
        "EditMediaComplete",
        EditMediaCompleteEvent={"FileId": BOB, "Input": {"FileInfoSet": [{"FileId": ANN, "Name": ANNS[1]}]}},
    )
    heard: list[CommittedEvent] = []

    def quoting_hook(committed: CommittedEvent) -> None:
        heard.append(committed)
        raise RuntimeError(f"CRM refused {ANNS[1]}")  # as a hook with its own copy of her data might

    ingest_event(store, edit, received_at=4.0, keys=KEYS, after_commit=quoting_hook)
    [committed] = heard
    assert [u.file_id for u in committed.uploads] == [BOB] and committed.event.payload is None  # type: ignore[union-attr]
    [owed] = store.unfinished_hooks(received_before=1000.0)
    assert (owed.event_type, owed.hook_last_error) == ("EditMediaComplete", HIDDEN)
    assert store.payload(owed.dedupe_key) == {k: v for k, v in edit.items() if k != "EventHandle"}


def test_a_hook_error_an_older_build_hid_stays_hidden(store: EventStore) -> None:
    owed = _shared_edit_owed_then_erased(store)
    older = "(erased: it named a file erased since)"  # as builds before this one hid it
    store._run(lambda cursor: cursor.execute(store._sql(_ERROR_HIDDEN), (older, owed.dedupe_key)), write=True)
    [owed] = store.unfinished_hooks(received_before=1000.0)
    assert rerun_hook(_failing_hook_quoting_ann, store, owed) is not None
    [after] = store.unfinished_hooks(received_before=1000.0)
    assert (after.hook_failures, after.hook_last_error) == (owed.hook_failures + 1, older)


def _failing_hook_quoting_ann(committed: CommittedEvent) -> None:
    raise RuntimeError(ANNS[3])  # from the app's own copy of what it was told of her


def test_a_rerun_tells_no_hook_of_an_upload_erased_as_it_was_claimed(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_event(store, _upload(ANNS[0], ANN), received_at=1.0, keys=KEYS, after_commit=_failing_hook)
    [listed] = store.unfinished_hooks(received_before=50.0)
    claim = store.claim_hook

    def claimed_then_erased(event: Any, claimed_at: float) -> bool:
        taken = claim(event, claimed_at)
        store.erase([ANN], erased_at=2.0)
        return taken

    monkeypatch.setattr(store, "claim_hook", claimed_then_erased)
    heard: list[CommittedEvent] = []
    with pytest.raises(HookTaken, match="erased"):
        rerun_hook(heard.append, store, listed)
    assert heard == [] and [text for text in ANNS if text in _tables(store)] == []
    assert store.unfinished_hooks(received_before=50.0) == []


def test_a_delete_naming_an_erased_file_and_another_is_no_single_files_to_its_hook(store: EventStore) -> None:
    for at, payload in enumerate([_upload(ANNS[0], ANN), _upload("bob", BOB)]):
        ingest_event(store, payload, received_at=float(at), keys=KEYS)
    store.erase([ANN], erased_at=3.0)
    heard: list[CommittedEvent] = []
    deleted = vod_event("FileDeleted", FileIdSet=[ANN, BOB])
    ingest_event(store, deleted, received_at=4.0, keys=KEYS, after_commit=heard.append)
    [committed] = heard
    assert ([upload.file_id for upload in committed.uploads], committed.upload) == ([BOB], None)


def _fails(committed: CommittedEvent) -> None:
    raise RuntimeError("compilation not indexed")


@pytest.mark.parametrize(
    ("how", "named"),
    [
        ("sealed", True),
        ("bad-seal", True),  # sealed with a key since removed: no user proven, but hers
        ("conflict", True),  # two upload events of one file, by Ann and by Bob
        ("another-user-ending-so", False),  # "x:ann.li@example.com" is someone else
        ("another-case", False),  # LIKE is case-blind in SQLite: the id is not
    ],
)
def test_the_files_naming_a_user(store: EventStore, how: str, named: bool) -> None:
    ann = ANNS[0]
    context = {
        "sealed": seal(ann, "r", CONTEXT_KEY),
        "bad-seal": seal(ann, "r", "k" * 32),
        "conflict": seal(ann, "r", CONTEXT_KEY),
        "another-user-ending-so": seal(f"x:{ann}", "r", "k" * 32),
        "another-case": seal(ann.upper(), "r", "k" * 32),
    }[how]
    ingest_event(store, vod_event("NewFileUpload", FileId=ANN, SourceContext=context), received_at=1.0, keys=KEYS)
    if how == "conflict":
        bobs = vod_event("NewFileUpload", FileId=ANN, SourceContext=seal("bob", "r2", CONTEXT_KEY))
        ingest_event(store, bobs, received_at=2.0, keys=KEYS)
        upload = store.upload(ANN)
        assert upload is not None and upload.user_id is None and upload.conflicts
    assert store.files_naming(ann) == ([ANN] if named else [])


@pytest.mark.parametrize("user", ["ann!x", "a!!b", "ann_li%"])  # "!": the LIKE pattern's escape; _ and %: wildcards
def test_a_user_whose_id_holds_a_like_patterns_characters_is_found_unproven_too(store: EventStore, user: str) -> None:
    unproven = seal(user, "r", "k" * 32)  # sealed with a key since removed
    ingest_event(store, vod_event("NewFileUpload", FileId=ANN, SourceContext=unproven), received_at=1.0, keys=KEYS)
    assert store.files_naming(user) == [ANN]


@pytest.mark.parametrize("page", [1, 2, 3, 1000])  # records a statement searches by text: all are found, in order
def test_the_files_naming_a_user_come_oldest_first(store: EventStore, page: int) -> None:
    # Proven ones first, then those by text (a seal whose key was removed, say), each oldest first
    for at, file_id in [(2.0, "a-second"), (1.0, "b-first"), (3.0, "c-third")]:
        ingest_event(store, _upload(ANNS[0], file_id), received_at=at, keys=KEYS)
    for at, file_id in [(5.0, "d-unproven-second"), (4.0, "e-unproven-first"), (6.0, "f-not-hers")]:
        context = seal(ANNS[0] if file_id != "f-not-hers" else "bob", "r", "k" * 32)
        ingest_event(
            store, vod_event("NewFileUpload", FileId=file_id, SourceContext=context), received_at=at, keys=KEYS
        )
    ordered = ["b-first", "a-second", "c-third", "e-unproven-first", "d-unproven-second"]
    assert store.files_naming(ANNS[0], page=page) == ordered


def test_a_delete_of_erased_files_only_keeps_what_it_holds(store: EventStore) -> None:
    # (file ids and parts: no one's data, and other records may be made of it)
    ingest_event(store, _upload(ANNS[0], ANN), received_at=1.0, keys=KEYS)
    deleted = vod_event("FileDeleted", FileIdSet=[ANN])
    key = ingest_event(store, deleted, received_at=2.0, keys=KEYS).dedupe_key
    store.erase([ANN], erased_at=100.0)
    kept = store.payload(key)
    assert kept is not None and kept["EventType"] == "FileDeleted"
    assert kept["FileDeleteEvent"]["FileIdSet"] == [ANN]


@pytest.mark.parametrize("other", ["not-sealed", "bob"])
def test_a_user_named_in_a_disputed_context_the_record_does_not_keep_is_found(store: EventStore, other: str) -> None:
    # GIVEN files whose upload events disagree: Ann's seal that does not verify (a key since removed), and another
    # sourceContext; which of the two a record keeps as its own depends on the events' keys
    ann = ANNS[0]
    context = seal(ann, "r", "k" * 32)
    files = [f"{ANN}{i}" for i in range(8)]
    for i, file_id in enumerate(files):
        second = f"other-context-{i}" if other == "not-sealed" else seal("bob", f"r{i}", CONTEXT_KEY)
        for at, named in ((1.0, context), (2.0, second)):
            event = vod_event("NewFileUpload", FileId=file_id, SourceContext=named)
            ingest_event(store, event, received_at=at, keys=KEYS)
    records = [store.upload(file_id) for file_id in files]
    assert all(r is not None and r.user_id is None and r.conflicts for r in records)
    assert any(r is not None and r.source_context != context for r in records)  # Ann's only among the conflict's
    # THEN every one of them is Ann's to erase
    assert sorted(store.files_naming(ann)) == sorted(files)


@contextlib.contextmanager
def _erasing_ann_slowly(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Within: an erase of Ann's file whose statements are on the server and whose commit is not, for a moment (a
    synchronous standby, say)."""
    send = postgres._BatchingCursor.execute
    erasing = threading.Event()

    def slow_commit(cursor: Any, query: Any, params: Any = None) -> None:
        if query == "COMMIT" and threading.current_thread().name == "erase":
            cursor.defer("SELECT pg_sleep(1)")
            erasing.set()
        send(cursor, query, params)

    monkeypatch.setattr(postgres._BatchingCursor, "execute", slow_commit)
    eraser = threading.Thread(target=lambda: store.erase([ANN], erased_at=100.0), name="erase")
    eraser.start()
    assert erasing.wait(10)
    time.sleep(0.2)  # its statements reach the server
    yield
    eraser.join()


@pytest.mark.postgres
def test_a_hook_result_that_waited_for_an_erase_to_commit_brings_nothing_back(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a hook still running for Ann's upload, and an erase whose commit takes a moment on the server (a
    # synchronous standby, say): the hook's result, recorded meanwhile, waits for the erase's lock on the event
    url = postgres_server.create_database()
    store, hooks_store = open_store(url), open_store(url)
    key = ingest_event(store, _upload(ANNS[0], ANN), received_at=1.0, keys=KEYS, after_commit=lambda c: None).dedupe_key
    store._run(
        lambda cursor: cursor.execute("UPDATE events SET hook_status = 'pending' WHERE dedupe_key = %s", (key,)),
        write=True,
    )
    # WHEN the hook's failure, quoting her, is recorded
    with _erasing_ann_slowly(store, monkeypatch):
        hooks_store.record_hook_result(key, f"CRM refused {ANNS[1]} ({ANNS[0]})")
    # THEN it was checked against the erased row: nothing of hers, no hook owed
    event = store.event(key)
    assert event is not None and (event.hook_status, event.hook_last_error) == ("erased", None)
    assert [text for text in ANNS if text in _tables(store)] == []
    store.close()
    hooks_store.close()


@pytest.mark.postgres
def test_two_erases_at_once_of_the_files_a_failed_delete_names_leave_it_owed_no_hook(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a delete of Ann's and Bob's files whose hook failed, and an erase of Ann's slow to commit
    url = postgres_server.create_database()
    store, other = open_store(url), open_store(url)
    ingest_event(store, _upload(ANNS[0], ANN), received_at=1.0, keys=KEYS)
    ingest_event(store, _upload("bob", BOB), received_at=2.0, keys=KEYS)
    deleted = vod_event("FileDeleted", FileIdSet=[ANN, BOB])
    key = ingest_event(store, deleted, received_at=3.0, keys=KEYS, after_commit=_fails).dedupe_key
    # WHEN Bob's is erased meanwhile (another operator, another instance)
    with _erasing_ann_slowly(store, monkeypatch):
        other.erase([BOB], erased_at=101.0)
    # THEN the delete, now of erased files only, is owed no hook, as after two erases one after the other
    event = store.event(key)
    assert event is not None and (event.hook_status, event.hook_last_error) == ("erased", None)
    assert store.unfinished_hooks(received_before=1000.0) == []
    store.close()
    other.close()


def test_a_failed_hook_of_a_delete_of_erased_files_only_is_owed_no_more(store: EventStore) -> None:
    ingest_event(store, _upload(ANNS[0], ANN), received_at=1.0, keys=KEYS)
    deleted = vod_event("FileDeleted", FileIdSet=[ANN])
    ingest_event(store, deleted, received_at=2.0, keys=KEYS, after_commit=_fails)
    [owed] = store.unfinished_hooks(received_before=1000.0)
    store.erase([ANN], erased_at=100.0)
    assert store.unfinished_hooks(received_before=1000.0) == []  # not run again, for a file no one has
    assert store.record_hook_result(owed.dedupe_key, "failed again") is False


def _files_locked_in_opposite_orders() -> tuple[str, str]:
    """Two file ids, A < B, that two erases would lock in opposite orders were the locks not sorted: erasing both
    iterates its files as [A, B]; erasing B, then finding A in B's events, iterates them as [B, A]."""
    for n in range(10_000):
        a, b = f"52858907842735{n:05d}", f"52858907842736{n:05d}"
        later = {b}
        later.update({a})
        if list({a, b}) == [a, b] and list(later) == [b, a]:
            return a, b
    raise AssertionError("no such pair in this process's string hashes")


@pytest.mark.postgres
def test_two_erases_at_once_whose_files_come_in_opposite_orders_both_finish(postgres_server: PostgresServer) -> None:
    # GIVEN a delete naming files A and B, and A's lock held a moment by a delivery of another instance
    a, b = _files_locked_in_opposite_orders()
    url = postgres_server.create_database()
    store = open_store(url, timeout_seconds=5)
    ingest_event(store, vod_event("FileDeleted", FileIdSet=[a, b]), received_at=1.0, keys=KEYS)
    holder = psycopg2.connect(url)
    holder.cursor().execute("SELECT pg_advisory_lock(%s)", (postgres.advisory_key(f"file:{a}"),))
    # WHEN one operator erases both files and another erases B (whose delete names A) meanwhile, both waiting
    # for A (were the locks taken in the order found, the second would wait holding B)
    results: dict[str, Any] = {}
    stores = [open_store(url, timeout_seconds=5) for _ in range(2)]

    def erase(name: str, eraser: EventStore, file_ids: list[str]) -> None:
        try:
            results[name] = eraser.erase(file_ids, erased_at=100.0)
        except StoreUnavailable as exc:
            results[name] = exc

    erases = [
        threading.Thread(target=erase, args=("both", stores[0], [a, b])),
        threading.Thread(target=erase, args=("b", stores[1], [b])),
    ]
    for waiting, thread in enumerate(erases, start=1):
        thread.start()
        deadline = time.monotonic() + 4  # within the erases' own 5 s
        while run_sql(url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") != [(waiting,)]:
            assert time.monotonic() < deadline, f"not {waiting} waiting for A's lock: {results}"
            time.sleep(0.01)
    holder.close()
    for thread in erases:
        thread.join()
    # THEN each finishes, one after the other: neither is cut off as a deadlock (detected after the server's 1 s); the
    # second erases what the first left (a file erased already is left as it is)
    assert all(isinstance(erased, list) for erased in results.values()), results
    assert sorted(results["both"] + results["b"]) == sorted([a, b]) and results["both"] != []
    for opened in (store, *stores):
        opened.close()


def deleted_in_bulk(store: EventStore, user: str, count: int) -> list[str]:
    """`count` uploads of `user`, each deleted later in a FileDeleted of its own with 999 other files."""
    files = [f"52858907842736{n:05d}" for n in range(count)]
    for n, file_id in enumerate(files):
        upload = vod_event("NewFileUpload", FileId=file_id, SourceContext=seal(user, "r", CONTEXT_KEY))
        others = [f"52858907843{n:03d}{i:05d}" for i in range(999)]
        for at, payload in enumerate([upload, vod_event("FileDeleted", FileIdSet=[file_id, *others])]):
            ingest_event(store, payload, received_at=float(at), keys=KEYS)
    return files


def test_an_erase_whose_events_name_too_many_files_to_lock_at_once_is_refused_before_it_writes(
    store: EventStore,
) -> None:
    # GIVEN Ann's two files, each deleted in a bulk delete of 1,000 files (its lock table is PostgreSQL's to share)
    files = deleted_in_bulk(store, ANNS[0], 2)
    # WHEN both are erased at once THEN it is refused, nothing erased; one at a time, each is
    with pytest.raises(EraseTooLarge, match="the events of 2 files name 2000: erase fewer at a time"):
        store.erase(files, erased_at=100.0)
    assert {store.upload(f).status for f in files} == {"deleted"}  # type: ignore[union-attr]
    assert [store.erase([f], erased_at=100.0) for f in files] == [[f] for f in files]
    assert {store.upload(f).status for f in files} == {"erased"}  # type: ignore[union-attr]


def test_one_file_is_erased_however_many_files_its_events_name(store: EventStore) -> None:
    # GIVEN Ann's file named in two bulk deletes of 1,000 files (VOD's answer to two DeleteMedia batches)
    [file_id] = deleted_in_bulk(store, ANNS[0], 1)
    others = [f"52858907844{i:06d}" for i in range(999)]
    ingest_event(store, vod_event("FileDeleted", FileIdSet=[file_id, *others]), received_at=5.0, keys=KEYS)
    # WHEN it alone is erased THEN it is (one file is never too many: `erase --user` erases one at a time)
    assert store.erase([file_id], erased_at=100.0) == [file_id]
    assert store.upload(file_id).status == "erased"  # type: ignore[union-attr]


@pytest.fixture
def aging(store: EventStore) -> EventStore:
    """Files by when their last event came: "a" a task at 30 after its upload at 10, "b" deleted at 25, "c" uploaded
    at 40, "d" erased (its upload at 5), "e" a task's event only, at 15 (no upload event yet)."""
    for at, payload in [
        (5.0, _upload(ANNS[0], "d")),
        (10.0, _upload(ANNS[0], "a")),
        (15.0, _task("e", "FINISH")),
        (20.0, _upload("bob", "b")),
        (25.0, vod_event("FileDeleted", FileIdSet=["b"])),
        (30.0, _task("a", "FINISH")),
        (40.0, _upload("bob", "c")),
    ]:
        ingest_event(store, payload, received_at=at, keys=KEYS)
    store.erase(["d"], erased_at=6.0)
    return store


def _past(store: EventStore, retention: Retention, page: int = 1000) -> list[str]:
    """Every file files_past lists, page by page."""
    found: list[str] = []
    after: str | None = ""
    while after is not None:
        idle, after = store.files_past(retention, after=after, page=page)
        assert len(idle) <= page
        found += [i.file_id for i in idle]
    return found


@pytest.mark.parametrize(
    ("before", "deleted_only", "past"),
    [
        (5.0, False, []),
        (15.0, False, []),  # "e"'s event came at 15: not before it
        (25.0, False, ["e"]),
        (25.0001, False, ["b", "e"]),
        (31.0, False, ["a", "b", "e"]),
        (41.0, False, ["a", "b", "c", "e"]),  # never "d": erased already
        (24.0, True, []),
        (41.0, True, ["b"]),  # the one VOD deleted
    ],
)
@pytest.mark.parametrize("page", [1, 2, 5, 1000])  # pages of the records, past its end or not
def test_a_retention_period_takes_the_files_no_event_has_come_for_since_its_time(
    aging: EventStore, before: float, deleted_only: bool, past: list[str], page: int
) -> None:
    retention = Retention(before, deleted_only)
    assert _past(aging, retention, page) == past
    # erase with it takes those of any files named, and only those
    assert aging.erase(["a", "b", "c", "d", "e"], erased_at=100.0, retention=retention) == past
    assert [f for f in "abcde" if aging.upload(f).status == "erased"] == sorted({"d", *past})  # type: ignore[union-attr]
    assert _past(aging, retention) == []


def test_files_past_a_retention_period_are_listed_with_what_says_which_they_are(aging: EventStore) -> None:
    # (records "b", "c", "d" after "a", then "e": the last)
    assert aging.files_past(Retention(31.0), after="a", page=3) == ([Idle("b", "deleted", "Bob's holiday", 25.0)], "d")
    assert aging.files_past(Retention(31.0), after="d", page=3) == ([Idle("e", "finished", "sample", 15.0)], None)


def test_a_file_listed_past_its_retention_whose_event_comes_before_the_erase_stays(aging: EventStore) -> None:
    # GIVEN the files a retention period has ended for, listed
    retention = Retention(31.0)
    assert _past(aging, retention) == ["a", "b", "e"]
    # WHEN an event of "a" comes (its task flow run again) before they are erased
    ingest_event(aging, _task("a", "FINISH", task_id="task-2"), received_at=50.0, keys=KEYS)
    # THEN the erase, which reads each record again under its lock, keeps "a" as it is, and erases the others
    assert aging.erase(["e", "b", "a"], erased_at=100.0, retention=retention) == ["b", "e"]
    kept = aging.upload("a")
    assert kept is not None and (kept.status, kept.user_id, kept.last_event_at) == ("finished", ANNS[0], 50.0)
    assert len(aging.tasks("a")) == 2


def test_an_event_committing_while_the_erase_waits_for_its_files_lock_keeps_the_file(
    aging: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN "a" past its retention, and an event of it being stored: its transaction holds "a"'s lock, held open
    retention = Retention(31.0)
    inside, release = threading.Event(), threading.Event()
    write = EventStore._write

    def held_open(self: EventStore, *args: Any, **kwargs: Any) -> Any:
        done = write(self, *args, **kwargs)
        if threading.current_thread().name == "ingest":
            inside.set()
            assert release.wait(10)
        return done

    monkeypatch.setattr(EventStore, "_write", held_open)
    event = _task("a", "FINISH", task_id="task-2")
    ingest = threading.Thread(target=lambda: ingest_event(aging, event, received_at=50.0, keys=KEYS), name="ingest")
    ingest.start()
    assert inside.wait(10)
    # WHEN it is erased meanwhile
    erased: list[list[str]] = []
    eraser = threading.Thread(target=lambda: erased.append(aging.erase(["a"], erased_at=100.0, retention=retention)))
    eraser.start()
    time.sleep(0.5)
    assert eraser.is_alive()  # it waits for "a"'s lock (SQLite: for the database's write lock)
    release.set()
    ingest.join()
    eraser.join()
    # THEN the erase, which read "a" once it had its lock, saw the event and kept it
    kept = aging.upload("a")
    assert erased == [[]] and kept is not None and (kept.status, kept.last_event_at) == ("finished", 50.0)
