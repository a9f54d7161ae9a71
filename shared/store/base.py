"""EventStore: every piece of storage logic, once. Backends supply only the primitive hooks.

One delivery = one transaction: insert the event (ON CONFLICT DO NOTHING is the dedupe), and only
if it was new, update the records of the files it names, under a per-file lock: each record row keeps
the projection's state beside it (shared.store.projection), so an event costs the same whether its file
has one stored event or thousands. Nothing is half-written: any storage failure rolls back and becomes
StoreUnavailable.

Connections live in a small pool: reused by warm invocations whatever thread runs them, dropped
after any failure, created lazily, so a store that is down at cold start costs a 503, not a crash.
"""

import collections
import functools
import itertools
import json
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol, TypeVar

from shared.errors import MalformedEvent, StoreUnavailable
from shared.events import FileDeleted, StoredEvent, VodEvent, canonical_json, parse_event, plain
from shared.logs import DEBUG, WARNING, log_event
from shared.records import Record
from shared.source_context import PREFIX as SEALED
from shared.source_context import Attribution
from shared.store.projection import (
    Conflict,
    DeletedPart,
    FileState,
    FoldInput,
    TaskRecord,
    TaskState,
    UploadRecord,
    add,
    fold,
    new_file_state,
    results_from_plain,
    settle,
    state_current,
    task_id_for,
    task_record,
    upload_record,
)

R = TypeVar("R")
V = TypeVar("V")
# What one statement reads of tasks for a reader (the uploads function): so many bytes of results at most (or one
# task's, however large), so many tasks.
READ_BYTES = 1 << 20
READ_TASKS = 100
OWE_HOOK_PAGE = 1000  # events owe_hook reads a transaction
# erased: owed no more (`erase`); given_up: an operator's `hooks --give-up` (an event the hook can never take)
HookStatus = Literal["pending", "done", "failed", "rerunning", "erased", "given_up"]

_HOOK_UNFINISHED = "hook_status IN ('pending', 'failed', 'rerunning')"
# Hook updates test the status through COALESCE, not `hook_status = …`: from a plain equality PostgreSQL infers that
# the row is in the partial index of unfinished hooks and, where its statistics count that index empty (after a
# vacuum), finds the row through it, scanning all of it (it is not keyed by dedupe_key). The index grows with every
# hook done until the next vacuum, and so would each event's time.
_HOOK_STATUS_IS = "COALESCE(hook_status, '') = "

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE events (
            dedupe_key TEXT PRIMARY KEY,
            event_type TEXT NOT NULL,
            file_ids TEXT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
            payload TEXT NOT NULL,
            hook_status TEXT,
            hook_failures INTEGER NOT NULL DEFAULT 0,
            hook_last_error TEXT
        )""",
            """CREATE TABLE event_files (
            file_id TEXT NOT NULL,
            dedupe_key TEXT NOT NULL REFERENCES events (dedupe_key),
            PRIMARY KEY (file_id, dedupe_key)
        )""",
            """CREATE TABLE uploads (
            file_id TEXT PRIMARY KEY, status TEXT NOT NULL, user_id TEXT, sign_request_id TEXT, name TEXT,
            media_url TEXT, cover_url TEXT, media_type TEXT, storage_region TEXT, class_id BIGINT,
            source_type TEXT, source_context TEXT, create_time TEXT, procedure_task_id TEXT, review_task_id TEXT,
            metadata TEXT, uploaded BOOLEAN NOT NULL, deleted BOOLEAN NOT NULL, deleted_at DOUBLE PRECISION,
            deleted_parts TEXT NOT NULL, first_seen_at DOUBLE PRECISION NOT NULL,
            last_event_at DOUBLE PRECISION NOT NULL
        )""",
            "CREATE INDEX uploads_by_user ON uploads (user_id, first_seen_at)",
            """CREATE TABLE tasks (
            file_id TEXT NOT NULL, task_id TEXT NOT NULL, status TEXT, outcome TEXT NOT NULL, err_code BIGINT,
            message TEXT, session_context TEXT, session_id TEXT, results TEXT NOT NULL,
            PRIMARY KEY (file_id, task_id)
        )""",
        ),
    ),
    (
        2,
        (
            # Whom a NewFileUpload's sourceContext proved at receipt (shared.source_context.Attribution, JSON).
            "ALTER TABLE events ADD COLUMN attribution TEXT",
            "ALTER TABLE uploads ADD COLUMN attribution TEXT",
            "ALTER TABLE uploads ADD COLUMN confirmed BOOLEAN NOT NULL DEFAULT FALSE",
            "ALTER TABLE uploads ADD COLUMN conflicts TEXT NOT NULL DEFAULT '[]'",
        ),
    ),
    (
        3,
        (
            # The projection's state behind each record (JSON; NULL in rows an older build wrote).
            "ALTER TABLE uploads ADD COLUMN projection TEXT",
            "ALTER TABLE tasks ADD COLUMN projection TEXT",
        ),
    ),
    (
        4,
        (
            # Whether the file's state includes the event. A build that keeps no states (or an older form of
            # them) leaves this FALSE in the rows it inserts, and stored events start FALSE: the next event of
            # such a file rebuilds its records from all its events. The index holds only those rows.
            "ALTER TABLE event_files ADD COLUMN projected BOOLEAN NOT NULL DEFAULT FALSE",
            "CREATE INDEX event_files_unprojected ON event_files (file_id) WHERE NOT projected",
        ),
    ),
    (
        5,
        (
            # When `vod-uploads hooks --rerun` took the event's hook (hook_status 'rerunning'): two operators
            # never run one hook at once, and a claim left by a run that died is taken again once it is old.
            "ALTER TABLE events ADD COLUMN hook_claimed_at DOUBLE PRECISION",
        ),
    ),
    (
        6,
        (
            # When a task's results were first heard of, and each deleted part last deleted (JSON, in the order of
            # deleted_parts, which keeps its shape for the build before, stamped with the row's last_event_at): a
            # part deleted before then was made again.
            "ALTER TABLE tasks ADD COLUMN results_at DOUBLE PRECISION",
            "ALTER TABLE uploads ADD COLUMN deleted_parts_at TEXT",
            # A page of a user's uploads seeks its cursor and reads its rows in order (not all the user's, sorted).
            "CREATE INDEX uploads_by_user_page ON uploads (user_id, first_seen_at, file_id)",
            "DROP INDEX uploads_by_user",
        ),
    ),
    (
        7,
        (
            # UploadRecord.revision: one more at each commit that writes the record (under the file's lock).
            "ALTER TABLE uploads ADD COLUMN revision BIGINT NOT NULL DEFAULT 0",
        ),
    ),
    (
        8,
        (
            # `vod-uploads hooks` pages through the few events whose hook is not done, oldest first, instead of
            # reading every stored event on each page. The queries repeat this condition: SQLite uses a partial
            # index only for queries that state its condition.
            f"CREATE INDEX events_unfinished_hooks ON events (received_at, dedupe_key) WHERE {_HOOK_UNFINISHED}",
        ),
    ),
    (
        9,
        (
            # Builds of schema 1 took an upload's user (and its request) from its sourceContext unsealed
            # (`u1:<request>:<user>`), which anyone could have written. A record of theirs that no event has rebuilt
            # since (its attribution is unset) still named that user, to the status API too: it names none, as the
            # record's rebuild does. (substr, not LIKE: the shared SQL holds no literal %)
            "UPDATE uploads SET user_id = NULL, sign_request_id = NULL, attribution = 'not_sealed', "
            "revision = revision + 1 "
            "WHERE user_id IS NOT NULL AND attribution IS NULL AND substr(source_context, 1, 3) = 'u1:'",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1][0]
USER_UPLOADS_PAGE = 1000  # uploads a statement reads when all of a user's are asked for
_MAX_ERROR_TEXT = 500


class Cursor(Protocol):
    """The slice of a DB-API cursor the shared logic uses, plus `defer`: run a statement whose result
    nothing reads, at the latest before the next `execute` or the commit (a backend may send them together)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def defer(self, sql: str, params: Sequence[Any] = ..., /) -> None: ...


class EventSummary(Record):
    dedupe_key: str
    event_type: str
    file_ids: tuple[str, ...]
    received_at: float
    hook_status: HookStatus | None = None  # None: no hook was configured when it arrived
    hook_failures: int = 0
    hook_last_error: str | None = None
    hook_claimed_at: float | None = None  # when a rerun took the hook (hook_status rerunning, or since)


class Ingested(Record):
    dedupe_key: str
    duplicate: bool
    uploads: tuple[UploadRecord, ...] = ()  # the records after this event (empty for a duplicate)
    erased: bool = False  # every file it names was erased: kept as a tombstone (its key, no content), no hook owed
    # Some, not all: kept whole for the others, its hook told of them only, and its error text never kept (as
    # `erase` leaves an event of an erased file and others)
    partly_erased: bool = False


class FileReport(Record):
    """Everything known about one file, read in one transaction."""

    upload: UploadRecord
    tasks: tuple[TaskRecord, ...]
    events: tuple[EventSummary, ...]


# --- row <-> record -------------------------------------------------------------------------------------

_UPLOAD_COLUMNS = (*UploadRecord._fields, "deleted_parts_at")
_TASK_COLUMNS = TaskRecord._fields
_EVENT_COLUMNS = (
    "dedupe_key, event_type, file_ids, received_at, hook_status, hook_failures, hook_last_error, hook_claimed_at"
)


# Stored JSON is canonical_json: pure ASCII (no payload can trip a store's text encoding), one text per value.
_to_json = canonical_json


def _upload_row(upload: UploadRecord) -> tuple[Any, ...]:
    values = {f: getattr(upload, f) for f in UploadRecord._fields}
    values["metadata"] = None if upload.metadata is None else _to_json(upload.metadata)
    values["deleted_parts"] = _to_json([{"type": p.type, "definition": p.definition} for p in upload.deleted_parts])
    # Stamped with the row's last event: a row the build before rewrote (it keeps no times) has another.
    times = [p.deleted_at for p in upload.deleted_parts]
    values["deleted_parts_at"] = _to_json({"last_event_at": upload.last_event_at, "times": times})
    values["conflicts"] = _to_json(plain(upload.conflicts))
    return tuple(values.values())


def _upload_from_row(row: Sequence[Any]) -> UploadRecord:
    values = dict(zip(_UPLOAD_COLUMNS, row, strict=True))
    values["metadata"] = None if values["metadata"] is None else json.loads(values["metadata"])
    parts, stamped = json.loads(values["deleted_parts"]), json.loads(values.pop("deleted_parts_at") or "{}")
    stamped = stamped if isinstance(stamped, dict) else {}  # a form no release wrote: the times are unknown
    times = stamped.get("times") or []
    if stamped.get("last_event_at") != values["last_event_at"] or len(times) != len(parts):
        times = [None] * len(parts)  # the build before wrote the row last: when its parts were deleted is unknown
    values["deleted_parts"] = tuple(
        DeletedPart(p["type"], p["definition"], t) for p, t in zip(parts, times, strict=True)
    )
    values["conflicts"] = tuple(Conflict(c["field"], tuple(c["values"])) for c in json.loads(values["conflicts"]))
    for flag in ("uploaded", "deleted", "confirmed"):
        values[flag] = bool(values[flag])  # SQLite: 0/1
    return UploadRecord(**values)


def _attribution(text: str) -> Attribution:
    return Attribution(**json.loads(text))


def _task_row(task: TaskRecord) -> tuple[Any, ...]:
    values = {f: getattr(task, f) for f in _TASK_COLUMNS}
    values["results"] = _to_json(plain(task.results))
    return tuple(values.values())


def _task_from_row(row: Sequence[Any]) -> TaskRecord:
    values = dict(zip(_TASK_COLUMNS, row, strict=True))
    values["results"] = results_from_plain(json.loads(values["results"]))
    return TaskRecord(**values)


def _by_task_id(rows: Sequence[Sequence[Any]]) -> list[TaskRecord]:
    # Sorted here, not by ORDER BY: PostgreSQL would sort by the database's collation (en-US on managed servers,
    # say), SQLite by code point; this is the same order on both.
    return sorted(map(_task_from_row, rows), key=lambda task: task.task_id)


def _event_from_row(row: Sequence[Any]) -> EventSummary:
    key, event_type, file_ids, received_at, hook_status, failures, last_error, claimed_at = row
    return EventSummary(
        key,
        event_type,
        tuple(json.loads(file_ids)),
        float(received_at),
        hook_status,
        int(failures),
        last_error,
        None if claimed_at is None else float(claimed_at),
    )


def _upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    # Same text for SQLite (>= 3.24) and PostgreSQL; `excluded` is the row that was proposed.
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "  # noqa: S608
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


# An event of erased files only: no hook owed, no error text kept; `_TOMBSTONE`: its content gone too (its key
# and type kept). Both are the row's own columns, which a hook's result recorded meanwhile is checked against.
_NO_HOOK = "hook_status = 'erased', hook_failures = 0, hook_last_error = NULL, hook_claimed_at = NULL"
_TOMBSTONE = f"UPDATE events SET payload = ?, attribution = NULL, {_NO_HOOK} WHERE dedupe_key = ?"  # noqa: S608
_HOOKLESS = f"UPDATE events SET {_NO_HOOK} WHERE dedupe_key = ?"  # noqa: S608
# An event that names an erased file and another: its hook's error text, now and from then on (it may quote the
# erased file's data; the function's hook.failed log line has it, for CLS's retention). Older builds wrote the
# second, which stays as written.
_ERASED_ERROR = "(hidden: the event names an erased file; the hook.failed log line has the error)"
_ERASED_ERRORS = (_ERASED_ERROR, "(erased: it named a file erased since)")
_ERROR_HIDDEN = "UPDATE events SET hook_last_error = ? WHERE dedupe_key = ?"
# An erased file deleted whole in VOD (the README asks for it): its record says so, as of its first delete. No
# one's data, and what an operator checks an erasure by (`vod-uploads show`).
_ERASED_DELETED = (
    "UPDATE uploads SET deleted = TRUE, deleted_at = CASE WHEN deleted_at IS NULL OR deleted_at > ? THEN ? "
    "ELSE deleted_at END, revision = revision + 1 WHERE file_id = ? AND status = 'erased'"
)


def _sealed_user(source_context: str | None) -> str | None:
    """The user a sourceContext of ours names, proven or not (`u2:<request-id>:<mac>:<user-id>`, or as builds of
    schema 1 wrote it, `u1:<request-id>:<user-id>`)."""
    parts = (source_context or "").split(":", 3)
    if parts[0] == "u1" and len(parts) >= 3:
        return ":".join(parts[2:])
    return parts[3] if len(parts) == 4 and parts[0] == SEALED else None


def _like(text: str) -> str:
    """`text` as a LIKE pattern that matches only itself (ESCAPE '!')."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _tombstone(event_type: str, erased_at: float) -> str:
    return canonical_json({"EventType": event_type, "Erased": erased_at})


_UPSERT_UPLOAD = _upsert("uploads", (*_UPLOAD_COLUMNS, "projection"), ("file_id",))
_UPSERT_TASK = _upsert("tasks", (*_TASK_COLUMNS, "projection"), ("file_id", "task_id"))


# The file locks one erase of several files may take: about one FileDeleted's (up to 1,000 files) and a batch.
# PostgreSQL keeps them in its lock table, shared by every session (64 × 100 by default): more, and the erase of a
# user whose files were deleted in a few bulk deletes would fail again each time, "out of shared memory".
ERASE_MAX_LOCKS = 1100


# Values one statement binds at most in an IN (...) list: SQLite before 3.32 binds 999 (a FileDeleted names up to 1,000
# files), as the SQLite of Ubuntu 20.04's Pythons does.
IN_LIST_MAX = 500


def _chunks(values: Sequence[str]) -> Iterator[tuple[str, ...]]:
    for start in range(0, len(values), IN_LIST_MAX):
        yield tuple(values[start : start + IN_LIST_MAX])


class EraseTooLarge(Exception):
    """The events of the files to erase name more files than one erase locks (ERASE_MAX_LOCKS): erase fewer at a
    time (one file is always erased at once)."""


class Retention(Record):
    """Which files a retention period has ended for: no event of theirs received since `before` (a time), and, with
    `deleted_only`, deleted whole in VOD. Erased files are past it already."""

    before: float
    deleted_only: bool = False

    def ended(self, status: str, deleted: object, last_event_at: float) -> bool:
        return status != "erased" and last_event_at < self.before and (bool(deleted) or not self.deleted_only)


class Idle(Record):
    """A file a retention period has ended for, as `files_past` lists it."""

    file_id: str
    status: str
    name: str | None
    last_event_at: float


# Records files_past reads a statement, in file id order (the primary key's): each statement's time is bounded
# whatever the store's size (DATABASE_TIMEOUT bounds each), where one scan of every record would not be.
RETENTION_PAGE = 1000
NAMING_PAGE = 50_000  # records a statement of files_naming searches by text (~10 ms of a PostgreSQL's scan)


class EventStore(ABC):
    """All storage logic. SQL is written once with `?` placeholders; `_sql` adapts it per backend."""

    #: Exceptions that mean "the store failed" (mapped to StoreUnavailable).
    errors: tuple[type[BaseException], ...] = ()
    max_idle_connections = 4
    # The size of a stored text in bytes (its JSON: ASCII), read without reading the text where the backend can
    _bytes_of = "length"

    def __init__(self, *, read_only: bool = False) -> None:
        # read_only: a reader (the uploads function) never writes, not even the schema: a read-only
        # database role is enough for it.
        self.read_only = read_only
        self._idle: list[Any] = []
        self._pool_lock = threading.Lock()
        self._pid = os.getpid()
        self._schema_ready = False

    # --- backend hooks ------------------------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> Any:
        """A new connection, ready for `_transaction`."""

    @abstractmethod
    def _transaction(self, conn: Any, *, write: bool) -> AbstractContextManager[Cursor]:
        """Begin (a writer transaction when `write`), yield a cursor, commit on exit, roll back on error."""

    @abstractmethod
    def _lock(self, cursor: Cursor, names: Sequence[str]) -> None:
        """Hold a lock per name until the transaction ends (backends where writers already serialize: no-op)."""

    def _unbounded(self, cursor: Cursor) -> None:
        """For the rest of the transaction, no time limit on statements, but still one on lock waits
        (backends that set them: PostgreSQL)."""
        return  # SQLite sets none

    def _sql(self, text: str) -> str:
        return text

    def _close(self, conn: Any) -> None:
        conn.close()

    def _redact(self, text: str) -> str:
        """An error text safe to log (backends whose errors may quote credentials override this)."""
        return text

    def _broken(self, conn: Any) -> bool:
        """After a failure: the connection itself is gone (a server restart), not just the statement."""
        return False

    def _pooled(self, conn: Any) -> None:
        """As `conn` goes back to the pool (backends that note when: see `_fresh`)."""
        return  # SQLite's is a file: no idle limit

    def _fresh(self, conn: Any) -> bool:
        """Whether a pooled connection may be used again (a backend over a network: not after a long idle)."""
        return True

    # --- connections --------------------------------------------------------------------------------

    def _acquire(self) -> tuple[Any, bool]:
        with self._pool_lock:
            if os.getpid() != self._pid:
                # A forked child must not touch the parent's sockets (closing would end the parent's session).
                self._idle, self._pid = [], os.getpid()
            stale = []
            while self._idle and not self._fresh(self._idle[-1]):
                stale.append(self._idle.pop())
            pooled = self._idle.pop() if self._idle else None
        for conn in stale:
            self._discard(conn)
        return (pooled, True) if pooled is not None else (self._connect(), False)

    def _release(self, conn: Any) -> None:
        with self._pool_lock:
            if len(self._idle) < self.max_idle_connections:
                self._pooled(conn)
                self._idle.append(conn)
                return
        self._discard(conn)

    def _discard(self, conn: Any) -> None:
        try:
            self._close(conn)
        except Exception:
            log_event(DEBUG, "store.close_failed")

    def close(self) -> None:
        """Close the idle connections (the store stays usable: it connects again when asked)."""
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            self._discard(conn)

    def _run(self, work: Callable[[Cursor], R], *, write: bool, locks: Sequence[str] = ()) -> R:
        """Run `work` in one transaction. A pooled connection that turns out dead (the server restarted)
        is replaced once, but only if the failure came before the commit was sent; any other failure
        (a lock wait past its timeout, say) is not tried again here: the caller answers 503."""
        for attempt in (1, 2):
            conn, reused, committing = None, False, False
            try:
                conn, reused = self._acquire()
                self._ensure_schema(conn)
                with self._transaction(conn, write=write) as cursor:
                    if locks:
                        self._lock(cursor, sorted(set(locks)))  # sorted: no lock-order deadlocks
                    result = work(cursor)
                    committing = True
            except self.errors as exc:
                # Checked again by the next transaction: the database may have been dropped and made again, or
                # restored from an older backup, while this container stays warm.
                self._schema_ready = False
                dead = conn is not None and self._broken(conn)
                if conn is not None:
                    self._discard(conn)
                if attempt == 1 and reused and dead and not committing:
                    self.close()  # the other idle connections are as dead (the server restarted): connect afresh
                    continue
                # Not chained: the driver's own error may quote the password (a traceback would print it). Cut
                # after it is hidden, so that no part of a long one escapes; long enough for each of a few hosts.
                raise StoreUnavailable(self._redact(f"{type(exc).__name__}: {str(exc).strip()}")[:1000]) from None
            except BaseException:
                if conn is not None:
                    self._discard(conn)  # rolled back, but its state is unknown: don't pool it
                raise
            self._release(conn)
            return result
        raise AssertionError("unreachable")

    # --- schema -------------------------------------------------------------------------------------

    def _ensure_schema(self, conn: Any) -> None:
        if self._schema_ready or self.read_only:  # a reader finds the schema the writers made
            return
        with self._transaction(conn, write=True) as cursor:
            self._lock(cursor, ["schema"])  # waited for within the time limit: a 503 while another instance migrates
            cursor.execute(
                self._sql(
                    "CREATE TABLE IF NOT EXISTS schema_version "
                    "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
                )
            )
            current = self._stored_version(cursor)
            pending = [(version, statements) for version, statements in MIGRATIONS if version > current]
            if pending:
                # A migration takes as long as the tables are large (an index over every stored event, say): cut
                # off by the time limit it would roll back, and every cold start would try it again.
                self._unbounded(cursor)
            for version, statements in pending:
                for statement in statements:
                    cursor.execute(self._sql(statement))
                cursor.execute(
                    self._sql("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)"),
                    (version, time.time()),
                )
        self._schema_ready = True

    def schema_version(self) -> int:
        return self._run(self._stored_version, write=False)

    def _stored_version(self, cursor: Cursor) -> int:
        # applied_at read too: another tool's schema_version table (in a database shared with it) is not ours
        cursor.execute(self._sql("SELECT max(version), max(applied_at) FROM schema_version"))
        version = cursor.fetchone()[0] or 0
        if type(version) is not int:
            raise StoreUnavailable(
                "its schema_version table is another program's: give the store a database of its own"
            )
        return version

    # --- writes -------------------------------------------------------------------------------------

    def ingest(
        self,
        stored: StoredEvent,
        event: VodEvent,
        *,
        received_at: float,
        hook_pending: bool = False,
        attribution: Attribution | None = None,
    ) -> Ingested:
        """Record one event exactly once and bring the records of its files up to date, atomically.
        `hook_pending` marks the event as owed a hook run until `record_hook_result` says how it went,
        so a hook cut short (the function timed out, the container died) stays visible."""
        file_ids = tuple(sorted(set(event.file_ids)))
        dedupe_key = stored.key

        def work(cursor: Cursor) -> Ingested:
            cursor.execute(
                self._sql(
                    "INSERT INTO events (dedupe_key, event_type, file_ids, received_at, payload, hook_status, "
                    "attribution) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING"
                ),
                (
                    dedupe_key,
                    event.event_type,
                    _to_json(list(file_ids)),
                    received_at,
                    stored.text,
                    "pending" if hook_pending else None,
                    None if attribution is None else _to_json(plain(attribution)),
                ),
            )
            if cursor.rowcount != 1:
                return Ingested(dedupe_key, duplicate=True)
            for file_id in file_ids:
                cursor.defer(
                    self._sql("INSERT INTO event_files (file_id, dedupe_key, projected) VALUES (?, ?, TRUE)"),
                    (file_id, dedupe_key),
                )
            uploads = self._project(cursor, file_ids, FoldInput(dedupe_key, received_at, event, attribution))
            if file_ids and not uploads:  # of erased files only: told to no hook, and kept without content
                if event.event_type != "FileDeleted":  # (which holds file ids and parts only)
                    cursor.defer(self._sql(_TOMBSTONE), (_tombstone(event.event_type, received_at), dedupe_key))
                else:
                    cursor.defer(self._sql(_HOOKLESS), (dedupe_key,))
                return Ingested(dedupe_key, False, erased=True)
            if len(uploads) < len(file_ids):
                cursor.defer(self._sql(_ERROR_HIDDEN), (_ERASED_ERROR, dedupe_key))
                return Ingested(dedupe_key, False, uploads, partly_erased=True)
            return Ingested(dedupe_key, False, uploads)

        # Per-file locks: two events of one file can't both update its state without seeing each other.
        return self._run(work, write=True, locks=[f"file:{f}" for f in file_ids])

    def _project(self, cursor: Cursor, file_ids: Sequence[str], item: FoldInput) -> tuple[UploadRecord, ...]:
        """Update the records of `file_ids` with the new event `item`: their rows and states are read in one
        query (and the task's, for a task event), whatever number of events the files already have."""
        if not file_ids:
            return ()
        task_id = task_id_for(file_ids[0], item.event) if len(file_ids) == 1 else None
        found: dict[str, Sequence[Any]] = {}
        for chunk in _chunks(file_ids):
            marks = ", ".join("?" for _ in chunk)
            cursor.execute(
                self._sql(
                    # Only what an update reads, not the whole rows: PostgreSQL's time to parse and plan a statement
                    # grows with its columns, and it does so for each event (no prepared statements: see postgres.py).
                    "SELECT u.file_id, u.status, u.user_id, u.first_seen_at, u.revision, u.projection, t.task_id, "  # noqa: S608
                    "t.projection, "
                    "EXISTS (SELECT 1 FROM event_files f WHERE f.file_id = u.file_id AND NOT f.projected) "
                    "FROM uploads u "
                    f"LEFT JOIN tasks t ON t.file_id = u.file_id AND t.task_id = ? WHERE u.file_id IN ({marks})"
                ),
                (task_id or "", *chunk),
            )
            found.update((row[0], row) for row in cursor.fetchall())
        updated = (self._update(cursor, file_id, item, task_id, found.get(file_id)) for file_id in file_ids)
        return tuple(upload for upload in updated if upload is not None)

    def _update(
        self, cursor: Cursor, file_id: str, item: FoldInput, task_id: str | None, row: Sequence[Any] | None
    ) -> UploadRecord | None:
        """The file's record with `item` added; None for a file erased (`erase`), which no event brings back."""
        state, tasks = new_file_state(), dict[str, TaskState]()
        if task_id is not None:
            tasks[task_id] = {}
        listed_at, revision = None, 1
        if row is not None:  # else: a new file
            _, status, user_id, first_seen_at, stored_revision, saved, task_found, saved_task, stale = row
            if status == "erased":
                event, at = item.event, item.received_at
                if isinstance(event, FileDeleted) and not event.parts_for(file_id):
                    cursor.defer(self._sql(_ERASED_DELETED), (at, at, file_id))
                return None
            listed_at = first_seen_at if user_id is not None else None
            revision = stored_revision + 1
            # A row without its state always has an unprojected event too (migration 4 left them all so): `stale`
            # covers it; the state checks keep a hand-edited row from being a crash.
            if stale or saved is None or (task_found is not None and saved_task is None):
                return self._rebuild(cursor, file_id, listed_at, revision)
            state = json.loads(saved)
            if task_id is not None and saved_task is not None:
                tasks[task_id] = json.loads(saved_task)
            if not state_current(state, *tasks.values()):
                return self._rebuild(cursor, file_id, listed_at, revision)
        if add(file_id, state, item, None if task_id is None else tasks[task_id]):
            others = self._task_states(cursor, file_id)
            if others is None or not state_current(state, *others.values()):
                return self._rebuild(cursor, file_id, listed_at, revision)
            settle(state, {**others, **tasks})  # this event's task as it is now, not as stored
        return self._write(cursor, file_id, state, tasks, listed_at, revision)

    def _task_states(self, cursor: Cursor, file_id: str) -> dict[str, TaskState] | None:
        """The states of all the file's tasks as stored; None if one is missing (an older build's row)."""
        cursor.execute(self._sql("SELECT task_id, projection FROM tasks WHERE file_id = ?"), (file_id,))
        rows = cursor.fetchall()
        return None if any(saved is None for _, saved in rows) else {t: json.loads(saved) for t, saved in rows}

    def _rebuild(self, cursor: Cursor, file_id: str, listed_at: float | None, revision: int) -> UploadRecord:
        """Records whose state is missing or stale (an older build stored some of the file's events): fold all
        the file's stored events (the new one included) once; later events update what this writes."""
        # Marked before they are read: an event another build commits in between is folded but stays unmarked
        # (the next event rebuilds again), never marked without being folded.
        cursor.execute(
            self._sql("UPDATE event_files SET projected = TRUE WHERE file_id = ? AND NOT projected"), (file_id,)
        )
        cursor.execute(
            self._sql(
                "SELECT e.dedupe_key, e.received_at, e.payload, e.attribution FROM events e "
                "JOIN event_files f ON f.dedupe_key = e.dedupe_key WHERE f.file_id = ?"
            ),
            (file_id,),
        )
        state, tasks = fold(file_id, self._fold_inputs(cursor.fetchall()))
        return self._write(cursor, file_id, state, tasks, listed_at, revision)

    def _write(
        self,
        cursor: Cursor,
        file_id: str,
        state: FileState,
        tasks: dict[str, TaskState],
        listed_at: float | None,
        revision: int,
    ) -> UploadRecord:
        """`listed_at`: where the row was listed, if its user's list shows it: never later now (a client paging on
        from a cursor would miss it). Of this build's states it is already so; an older build placed some earlier.
        `revision`: the record's, one more than the stored row's."""
        upload = upload_record(file_id, state)._replace(revision=revision)
        if listed_at is not None and listed_at < upload.first_seen_at:
            upload = upload._replace(first_seen_at=listed_at)
        row = _upload_row(upload)
        cursor.defer(self._sql(_UPSERT_UPLOAD), (*row, _to_json(state)))
        for task_id, task in tasks.items():
            cursor.defer(self._sql(_UPSERT_TASK), (*_task_row(task_record(file_id, task_id, task)), _to_json(task)))
        return upload

    def _fold_inputs(self, rows: Sequence[Sequence[Any]]) -> Iterator[FoldInput]:
        for key, received_at, payload, attribution in rows:
            try:
                event = parse_event(json.loads(payload))
            except MalformedEvent as exc:  # stored by an older, laxer version: kept, but cannot be folded
                log_event(WARNING, "store.unfoldable_event", dedupe_key=key, error_detail=exc.message)
                continue
            yield FoldInput(key, float(received_at), event, None if attribution is None else _attribution(attribution))

    def claim_hook(self, event: EventSummary, claimed_at: float) -> bool:
        """Take the hook of `event` (as `unfinished_hooks` listed it) for a rerun: False when another rerun took
        it, or recorded its result, since it was listed."""

        def work(cursor: Cursor) -> bool:
            cursor.execute(
                self._sql(
                    "UPDATE events SET hook_status = 'rerunning', hook_claimed_at = ? WHERE dedupe_key = ? "  # noqa: S608
                    f"AND {_HOOK_STATUS_IS}? AND hook_failures = ? AND COALESCE(hook_claimed_at, -1) = ?"
                ),
                (claimed_at, event.dedupe_key, event.hook_status, event.hook_failures, event.hook_claimed_at or -1),
            )
            return bool(cursor.rowcount == 1)

        return self._run(work, write=True)

    def record_hook_result(self, dedupe_key: str, error: str | None, *, claimed_at: float | None = None) -> bool:
        """After the hook ran: done (error None), or failed, counted, with the error kept. The function's result
        (no `claimed_at`) is recorded only over the "pending" its ingest left; a rerun's (`claimed_at`: its claim)
        only while its claim stands. False when not recorded."""

        done = "hook_status = 'done'"
        # A hook that ran while a file of its event was erased: its error may quote what was erased
        failed = (
            "hook_status = 'failed', hook_failures = hook_failures + 1, "
            "hook_last_error = CASE WHEN hook_last_error IN (?, ?) THEN hook_last_error ELSE ? END"
        )
        update, values = (done, ()) if error is None else (failed, (*_ERASED_ERRORS, error[:_MAX_ERROR_TEXT]))
        # The function's own result only over its own "pending": not over a rerun's claim (an operator's --older-than
        # shorter than the hook), which would list the event again for a second rerun while the first still runs it.
        claim, held = (
            (f" AND {_HOOK_STATUS_IS}'pending'", ())
            if claimed_at is None
            else (f" AND {_HOOK_STATUS_IS}'rerunning' AND hook_claimed_at = ?", (claimed_at,))
        )

        def work(cursor: Cursor) -> bool:
            # execute, not defer: a dead pooled connection shows before the COMMIT is sent, so it is retried.
            cursor.execute(
                # Not over an event of erased files only (erased meanwhile: its status is `erased`), which owes no
                # hook any more. The row's own columns: PostgreSQL checks them again once an erase that held the row
                # has committed.
                self._sql(f"UPDATE events SET {update} WHERE dedupe_key = ?{claim}"),  # noqa: S608
                (*values, dedupe_key, *held),
            )
            return bool(cursor.rowcount == 1)

        return self._run(work, write=True)

    def erase(self, file_ids: Sequence[str], *, erased_at: float, retention: Retention | None = None) -> list[str]:
        """Erase what is kept of each file that came from its uploader (PIPL, GDPR): its record (user id, name,
        URLs, sourceContext, metadata), its tasks, and its events' content (hook errors too). What stays: a
        record marked `erased`, so that no event brings the file back (a redelivery is still a duplicate; a new
        event is kept as a tombstone, with no hook); each event's key; and the FileDeleted events, which hold
        file ids and parts only, and which other files' records are made of. Returns the files erased: those
        the store knew. Atomic, and under each file's lock, as an event's own update is; and under the locks of
        the other files its events name, so that of two erases at once the second sees the first's (else each could
        find the other's file not erased yet, and a delete of both would stay owed a hook). A file erased already is
        left as it is, and not returned. With `retention`, only the files it has ended for, checked under their locks:
        one whose event came since `files_past` listed it stays."""
        named = tuple(sorted(set(file_ids)))
        locked = set(named)

        def work(cursor: Cursor) -> list[str] | None:
            ids, kept = self._erasable(cursor, named, retention)
            if not ids:
                return []
            marks = ", ".join("?" for _ in ids)
            cursor.execute(
                self._sql(
                    "SELECT DISTINCT f.file_id, e.dedupe_key, e.event_type, e.file_ids FROM event_files f "  # noqa: S608
                    f"JOIN events e ON e.dedupe_key = f.dedupe_key WHERE f.file_id IN ({marks})"
                ),
                ids,
            )
            rows = cursor.fetchall()
            events = {key: (event_type, set(json.loads(names))) for _, key, event_type, names in rows}
            others = set().union(*(names for _, names in events.values())) - set(ids)
            if not others <= locked:  # taken again with theirs: nothing written yet
                locked.update(others)
                return None
            gone = set(ids) | self._erased(cursor, others)
            for key, (event_type, names) in events.items():
                if names <= gone:  # of erased files only: its content gone, but a FileDeleted's (file ids, parts)
                    if event_type != "FileDeleted":
                        cursor.defer(self._sql(_TOMBSTONE), (_tombstone(event_type, erased_at), key))
                    else:
                        cursor.defer(self._sql(_HOOKLESS), (key,))
                else:  # another file's event too: kept, but its hook's error may quote this file's data
                    cursor.defer(self._sql(_ERROR_HIDDEN), (_ERASED_ERROR, key))
            cursor.defer(self._sql(f"DELETE FROM tasks WHERE file_id IN ({marks})"), ids)  # noqa: S608
            known = sorted({row[0] for row in rows} | set(kept))
            for file_id in known:
                revision, deleted, deleted_at = kept.get(file_id, (0, False, None))
                erased = UploadRecord(
                    file_id,
                    "erased",
                    deleted=deleted,
                    deleted_at=deleted_at,
                    first_seen_at=erased_at,
                    last_event_at=erased_at,
                    revision=revision + 1,
                )
                cursor.defer(self._sql(_UPSERT_UPLOAD), (*_upload_row(erased), None))
            return known

        while (erased := self._run(work, write=True, locks=[f"file:{f}" for f in locked])) is None:
            if len(named) > 1 and len(locked) > ERASE_MAX_LOCKS:
                raise EraseTooLarge(f"the events of {len(named)} files name {len(locked)}: erase fewer at a time")
        return erased

    def _erasable(
        self, cursor: Cursor, named: tuple[str, ...], retention: Retention | None
    ) -> tuple[tuple[str, ...], dict[str, tuple[int, bool, float | None]]]:
        """The files of `named` erase takes (with `retention`, read under their locks: none has had an event since
        `files_past` listed it), and what their records keep: revision, and whether (and when) VOD deleted the file."""
        if not named:
            return (), {}
        marks = ", ".join("?" for _ in named)
        cursor.execute(
            self._sql(
                "SELECT file_id, revision, deleted, deleted_at, status, last_event_at FROM uploads "  # noqa: S608
                f"WHERE file_id IN ({marks})"
            ),
            named,
        )
        rows = cursor.fetchall()
        # Whether VOD deleted the file stays (not the user's data): the operator's check that it is gone there too
        kept = {
            file_id: (revision, bool(deleted), deleted_at)
            for file_id, revision, deleted, deleted_at, status, last_event_at in rows
            if status != "erased" and (retention is None or retention.ended(status, deleted, last_event_at))
        }
        if retention is not None:
            return tuple(sorted(kept)), kept
        # Not those erased already: an erase run again (after it was cut short, say) keeps when each was erased
        erased = {row[0] for row in rows if row[4] == "erased"}
        return tuple(f for f in named if f not in erased), kept

    def files_past(
        self, retention: Retention, *, after: str = "", page: int = RETENTION_PAGE
    ) -> tuple[list[Idle], str | None]:
        """Of the next `page` files by file id after `after`, those `retention` has ended for; and the file id the
        next page starts after (None: this was the last). What `erase` with it takes, unless an event comes first."""

        def read(cursor: Cursor) -> tuple[list[Idle], str | None]:
            cursor.execute(
                self._sql(
                    "SELECT file_id, status, name, last_event_at, deleted FROM uploads WHERE file_id > ? "
                    "ORDER BY file_id LIMIT ?"
                ),
                (after, page),
            )
            rows = cursor.fetchall()
            past = [Idle(*row[:4]) for row in rows if retention.ended(row[1], row[4], row[3])]
            return past, (rows[-1][0] if len(rows) == page else None)

        return self._run(read, write=False)

    def _erased(self, cursor: Cursor, file_ids: set[str]) -> set[str]:
        erased: set[str] = set()
        for chunk in _chunks(sorted(file_ids)):
            marks = ", ".join("?" for _ in chunk)
            cursor.execute(
                self._sql(f"SELECT file_id FROM uploads WHERE status = 'erased' AND file_id IN ({marks})"),  # noqa: S608
                chunk,
            )
            erased.update(row[0] for row in cursor.fetchall())
        return erased

    def files_naming(self, user_id: str, *, page: int = NAMING_PAGE) -> list[str]:
        """The files whose record names `user_id`: as its user; or, where none was proven, as the user in its
        sourceContext (a seal that did not verify, or an unsealed `u1:` one) or among the values of a conflict. Oldest
        first. Those by text are searched `page` records (by file id) a statement: one search of a large store would
        outlast DATABASE_TIMEOUT."""

        def proven(cursor: Cursor) -> list[str]:
            cursor.execute(
                self._sql("SELECT file_id FROM uploads WHERE user_id = ? ORDER BY first_seen_at, file_id"), (user_id,)
            )
            return [row[0] for row in cursor.fetchall()]

        # Candidates by text (LIKE: no index reads JSON), each then read exactly. In a conflict's JSON the user ends a
        # string: a user_id value ("ann"), or a source_context value ("u2:…:ann").
        patterns = (f"%:{_like(user_id)}", f"%{_like(canonical_json(user_id)[1:])}%")

        def unproven(cursor: Cursor, after: str) -> tuple[list[tuple[float, str]], str | None]:
            # Where the page ends, through the primary key's index: the search reads that range only
            cursor.execute(
                self._sql("SELECT file_id FROM uploads WHERE file_id > ? ORDER BY file_id LIMIT 1 OFFSET ?"),
                (after, page - 1),
            )
            end = cursor.fetchone()
            cursor.execute(
                self._sql(
                    "SELECT file_id, first_seen_at, source_context, conflicts FROM uploads WHERE file_id > ? "  # noqa: S608
                    + ("AND file_id <= ? " if end else "")
                    + "AND user_id IS NULL AND (source_context LIKE ? ESCAPE '!' OR conflicts LIKE ? ESCAPE '!')"
                ),
                (after, *(end or ()), *patterns),
            )
            found = []
            for file_id, first_seen_at, context, conflicts in cursor.fetchall():
                disputed = [(c["field"], v) for c in json.loads(conflicts) for v in c["values"]]
                contexts = [context, *(v for field, v in disputed if field == "source_context")]
                users = [v for field, v in disputed if field == "user_id"]
                if user_id in users or user_id in map(_sealed_user, contexts):
                    found.append((first_seen_at, file_id))
            return found, (end[0] if end else None)

        named = self._run(proven, write=False)
        candidates: list[tuple[float, str]] = []
        after: str | None = ""
        while after is not None:
            found, after = self._run(functools.partial(unproven, after=after), write=False)
            candidates += found
        return named + [file_id for _, file_id in sorted(candidates)]

    # --- reads --------------------------------------------------------------------------------------

    def upload(self, file_id: str) -> UploadRecord | None:
        return self._run(lambda cursor: self._upload(cursor, file_id), write=False)

    def _upload(self, cursor: Cursor, file_id: str, user_id: str | None = None) -> UploadRecord | None:
        mine = "" if user_id is None else " AND user_id = ?"
        cursor.execute(
            self._sql(f"SELECT {', '.join(_UPLOAD_COLUMNS)} FROM uploads WHERE file_id = ?{mine}"),  # noqa: S608
            (file_id,) if user_id is None else (file_id, user_id),
        )
        row = cursor.fetchone()
        return None if row is None else _upload_from_row(row)

    def user_upload(
        self, user_id: str, file_id: str, view: Callable[[UploadRecord, Iterator[TaskRecord]], V]
    ) -> V | None:
        """`view(upload, tasks)` of a user's upload as of one moment (one snapshot: never a record older than its
        tasks), its tasks read as `view` reaches them (see _tasks_of). Someone else's, nobody's and
        an unknown file are alike (None) after the same one lookup: neither the answer nor its time tells them
        apart, and no one else's tasks are read."""

        def read(cursor: Cursor) -> V | None:
            upload = self._upload(cursor, file_id, user_id)
            return None if upload is None else view(upload, self._tasks_of(cursor, [file_id])[1])

        return self._run(read, write=False)

    def upload_version(self, user_id: str, file_id: str) -> tuple[int, float] | None:
        """What every commit that writes a user's upload or its tasks changes (its revision, and its last event's
        time, which a build before revisions moved too); None as user_upload's. A waiting reader's cheap check:
        one short row, not the tasks."""

        def read(cursor: Cursor) -> tuple[int, float] | None:
            cursor.execute(
                self._sql("SELECT revision, last_event_at FROM uploads WHERE file_id = ? AND user_id = ?"),
                (file_id, user_id),
            )
            row = cursor.fetchone()
            return None if row is None else (row[0], row[1])

        return self._run(read, write=False)

    def user_uploads(
        self, user_id: str, limit: int | None = None, before: tuple[float, str] | None = None
    ) -> list[UploadRecord]:
        """A user's uploads, newest first: all of them, or `limit` of them after the cursor `before`
        (first_seen_at, file_id). An upload's first_seen_at only ever moves back (an event received earlier,
        committed later), so a page after the cursor misses no upload stored when the cursor's page was read;
        one already shown may show again. (A new one, received before its page's uploads, can land above it.)
        All of them are read a page at a time, each from the index: one statement for a user of tens of
        thousands would sort them all, and could outlast the store's time limit."""
        if limit is not None:
            return self._run(lambda cursor: self._user_uploads(cursor, user_id, limit, before), write=False)
        found: dict[str, UploadRecord] = {}
        while True:
            page = self.user_uploads(user_id, USER_UPLOADS_PAGE, before)
            for upload in page:
                found.setdefault(upload.file_id, upload)  # shown again (moved back): as first read
            if len(page) < USER_UPLOADS_PAGE:
                return list(found.values())
            before = (page[-1].first_seen_at, page[-1].file_id)

    def user_page(
        self,
        user_id: str,
        limit: int,
        before: tuple[float, str] | None,
        view: Callable[[UploadRecord, Iterator[TaskRecord]], tuple[V, int]],
        room: int,
    ) -> tuple[list[tuple[UploadRecord, V]], bool]:
        """Up to `limit` of `user_uploads`, each with `view(upload, tasks)`, as of one moment (one snapshot), and
        whether more follow. `view` also answers what its view takes of `room`: once the views would take more, the
        rest are left for the next page (the first is always shown). Tasks are read as in user_upload."""

        def read(cursor: Cursor) -> tuple[list[tuple[UploadRecord, V]], bool]:
            uploads = self._user_uploads(cursor, user_id, limit + 1, before)  # one more: is there a next page?
            counts, tasks = self._tasks_of(cursor, [u.file_id for u in uploads[:limit]])
            shown: list[tuple[UploadRecord, V]] = []
            left = room
            for upload in uploads[:limit]:
                its_tasks = itertools.islice(tasks, counts.get(upload.file_id, 0))
                made, size = view(upload, its_tasks)
                collections.deque(its_tasks, maxlen=0)  # any `view` left: the next upload's come next
                left -= size
                if left < 0 and shown:
                    break
                shown.append((upload, made))
            return shown, len(shown) < len(uploads)

        return self._run(read, write=False)

    def _user_uploads(
        self, cursor: Cursor, user_id: str, limit: int, before: tuple[float, str] | None
    ) -> list[UploadRecord]:
        after = "" if before is None else " AND (first_seen_at, file_id) < (?, ?)"
        params = (user_id,) if before is None else (user_id, *before)
        cursor.execute(
            self._sql(
                f"SELECT {', '.join(_UPLOAD_COLUMNS)} FROM uploads WHERE user_id = ?{after} "  # noqa: S608
                "ORDER BY first_seen_at DESC, file_id DESC LIMIT ?"
            ),
            (*params, limit),
        )
        return [_upload_from_row(row) for row in cursor.fetchall()]

    def _tasks_of(self, cursor: Cursor, file_ids: Sequence[str]) -> tuple[dict[str, int], Iterator[TaskRecord]]:
        """How many tasks each of `file_ids` has, and those tasks, file by file (each file's by task id), each
        read when reached. One task's results can be megabytes (a snapshot every second, each its own URL): a
        statement reads the next tasks that make up READ_BYTES of results (a large one alone), and a reader
        holds those, however many the files have. Typical tasks, a few KB each: a page's in one statement."""
        if not file_ids:
            return {}, iter(())
        marks = ", ".join("?" for _ in file_ids)
        cursor.execute(
            self._sql(
                f"SELECT file_id, task_id, {self._bytes_of}(results) FROM tasks WHERE file_id IN ({marks})"  # noqa: S608
            ),
            tuple(file_ids),
        )
        place = {file_id: n for n, file_id in enumerate(file_ids)}
        # Task ids sorted here: see _by_task_id
        found = sorted(cursor.fetchall(), key=lambda row: (place[row[0]], row[1]))
        counts: dict[str, int] = {}
        for file_id, _, _ in found:
            counts[file_id] = counts.get(file_id, 0) + 1
        return counts, self._read_tasks(cursor, found)

    def _read_tasks(self, cursor: Cursor, keys: Sequence[tuple[str, str, int]]) -> Iterator[TaskRecord]:
        """The tasks of `keys` (file_id, task_id, results' size), in that order, a batch per statement."""
        columns = ", ".join(_TASK_COLUMNS)
        start = 0
        while start < len(keys):
            end, size = start + 1, keys[start][2]
            while end < len(keys) and end - start < READ_TASKS and size + keys[end][2] <= READ_BYTES:
                size += keys[end][2]
                end += 1
            batch = keys[start:end]
            which = " OR ".join("(file_id = ? AND task_id = ?)" for _ in batch)
            cursor.execute(
                self._sql(f"SELECT {columns} FROM tasks WHERE {which}"),  # noqa: S608
                tuple(value for file_id, task_id, _ in batch for value in (file_id, task_id)),
            )
            rows = {(row[0], row[1]): row for row in cursor.fetchall()}  # file_id, task_id: _TASK_COLUMNS' first
            for file_id, task_id, _ in batch:
                yield _task_from_row(rows.pop((file_id, task_id)))  # the same snapshot: still there
            start = end

    def tasks(self, file_id: str) -> list[TaskRecord]:
        return self._run(lambda cursor: self._tasks(cursor, file_id), write=False)

    def _tasks(self, cursor: Cursor, file_id: str) -> list[TaskRecord]:
        cursor.execute(
            self._sql(f"SELECT {', '.join(_TASK_COLUMNS)} FROM tasks WHERE file_id = ?"),  # noqa: S608
            (file_id,),
        )
        return _by_task_id(cursor.fetchall())

    def events_for(self, file_id: str) -> list[EventSummary]:
        return self._run(lambda cursor: self._events_for(cursor, file_id), write=False)

    def _events_for(self, cursor: Cursor, file_id: str) -> list[EventSummary]:
        columns = ", ".join(f"e.{c.strip()}" for c in _EVENT_COLUMNS.split(","))
        cursor.execute(
            self._sql(
                f"SELECT {columns} FROM events e JOIN event_files f "  # noqa: S608
                "ON f.dedupe_key = e.dedupe_key WHERE f.file_id = ? "
                "ORDER BY e.received_at, e.dedupe_key"
            ),
            (file_id,),
        )
        return [_event_from_row(row) for row in cursor.fetchall()]

    def event(self, dedupe_key: str) -> EventSummary | None:
        def read(cursor: Cursor) -> EventSummary | None:
            cursor.execute(
                self._sql(f"SELECT {_EVENT_COLUMNS} FROM events WHERE dedupe_key = ?"),  # noqa: S608
                (dedupe_key,),
            )
            row = cursor.fetchone()
            return None if row is None else _event_from_row(row)

        return self._run(read, write=False)

    def unfinished_hooks(
        self,
        received_before: float,
        after: EventSummary | None = None,
        limit: int = 500,
        *,
        claimed_before: float | None = None,
    ) -> list[EventSummary]:
        """Events whose hook failed, or is still pending though they arrived before `received_before` (cut short,
        or its commit's answer lost: VOD's retry is a duplicate), or was taken by a rerun before `claimed_before`
        (default: `received_before`; a rerun that died), oldest first; a page of them, from `after`."""

        def read(cursor: Cursor) -> list[EventSummary]:
            at, key = (-1.0, "") if after is None else (after.received_at, after.dedupe_key)
            cursor.execute(
                self._sql(
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE {_HOOK_UNFINISHED} "  # noqa: S608
                    "AND (hook_status = 'failed' "
                    "OR (hook_status = 'pending' AND COALESCE(hook_claimed_at, received_at) < ?) "
                    "OR (hook_status = 'rerunning' AND COALESCE(hook_claimed_at, received_at) < ?)) "
                    # a row value, which the index is sought by (an OR of its columns would be read from its start)
                    "AND (received_at, dedupe_key) > (?, ?) "
                    "ORDER BY received_at, dedupe_key LIMIT ?"
                ),
                (received_before, received_before if claimed_before is None else claimed_before, at, key, limit),
            )
            return [_event_from_row(row) for row in cursor.fetchall()]

        return self._run(read, write=False)

    def owe_hook(self, received_since: float, *, dry_run: bool = False) -> int:
        """Events received at `received_since` or later while no hook was set (a hook turned on since: the events
        its rollout's older instances stored, or the history) are owed it from now: "pending", so that
        `unfinished_hooks` lists them. How many (`dry_run`: how many would be, nothing changed). Erased files'
        events are not: their status is "erased". A page of events a transaction, by key: no index reads them by
        time, and one statement over a large store would outlast DATABASE_TIMEOUT, or hold SQLite's lock as long."""
        owed, last = 0, ""
        change = "SELECT count(*) FROM events" if dry_run else "UPDATE events SET hook_status = 'pending'"

        def page(cursor: Cursor) -> tuple[str | None, int]:
            cursor.execute(
                self._sql("SELECT dedupe_key FROM events WHERE dedupe_key > ? ORDER BY dedupe_key LIMIT ?"),
                (last, OWE_HOOK_PAGE),
            )
            keys = [row[0] for row in cursor.fetchall()]
            if not keys:
                return None, 0
            cursor.execute(
                self._sql(
                    f"{change} WHERE dedupe_key > ? AND dedupe_key <= ? AND hook_status IS NULL AND received_at >= ?"
                ),
                (last, keys[-1], received_since),
            )
            return keys[-1], int(cursor.fetchone()[0]) if dry_run else int(cursor.rowcount)

        while True:
            end, count = self._run(page, write=not dry_run)
            if end is None:
                return owed
            owed, last = owed + count, end

    def give_up_hook(self, dedupe_key: str, claims_dead_before: float) -> bool:
        """The hook of this event, failed or pending, owed no more ("given_up", listed no more): one it can never
        take, which the app has dealt with otherwise. So too one whose rerun took it before `claims_dead_before` and
        died (a hook that kills the process running it: each rerun would take it again, and die on it, before the
        hooks after it). False when it is none of those (done, being run again, erased, no hook, no such event)."""

        def work(cursor: Cursor) -> bool:
            cursor.execute(
                self._sql(
                    "UPDATE events SET hook_status = 'given_up' WHERE dedupe_key = ? AND (hook_status IN "
                    "('failed', 'pending') OR (hook_status = 'rerunning' AND hook_claimed_at < ?))"
                ),
                (dedupe_key, claims_dead_before),
            )
            return bool(cursor.rowcount == 1)

        return self._run(work, write=True)

    def hooks_being_rerun(self, claimed_since: float, limit: int = 100) -> list[EventSummary]:
        """Events whose hook a rerun took at `claimed_since` or later (running now, or not yet taken for dead)."""

        def read(cursor: Cursor) -> list[EventSummary]:
            cursor.execute(
                self._sql(
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE {_HOOK_UNFINISHED} "  # noqa: S608
                    "AND hook_status = 'rerunning' AND hook_claimed_at >= ? ORDER BY received_at, dedupe_key LIMIT ?"
                ),
                (claimed_since, limit),
            )
            return [_event_from_row(row) for row in cursor.fetchall()]

        return self._run(read, write=False)

    def payload(self, dedupe_key: str) -> dict[str, Any] | None:
        """The event as received (without Sign/T), e.g. to replay it into a new hook."""

        def read(cursor: Cursor) -> dict[str, Any] | None:
            cursor.execute(self._sql("SELECT payload FROM events WHERE dedupe_key = ?"), (dedupe_key,))
            row = cursor.fetchone()
            return None if row is None else dict(json.loads(row[0]))

        return self._run(read, write=False)

    def event_count(self) -> int:
        def read(cursor: Cursor) -> int:
            cursor.execute(self._sql("SELECT count(*) FROM events"))
            return int(cursor.fetchone()[0])

        return self._run(read, write=False)

    def file_report(self, file_id: str) -> FileReport | None:
        def read(cursor: Cursor) -> FileReport | None:
            upload = self._upload(cursor, file_id)
            if upload is None:
                return None
            return FileReport(upload, tuple(self._tasks(cursor, file_id)), tuple(self._events_for(cursor, file_id)))

        return self._run(read, write=False)
