"""Everything the emulated VOD remembers, in one SQLite file (WAL) under the state directory.

Upload sessions, media files, used one-time signatures, the event configuration and the event queue
survive restarts, so a client can resume an upload and a puller can confirm events across them.
One connection behind one lock: every operation is a few small statements, and the lock makes the
multi-statement ones (commit, pull, confirm) atomic with respect to the server's request threads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import filelock

DB_FILENAME = "vodemu.sqlite3"
PUSH, PULL = "PUSH", "PULL"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_key TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    record TEXT NOT NULL,
    file_id TEXT
);
CREATE TABLE IF NOT EXISTS media (
    file_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    media_key TEXT NOT NULL,
    cover_key TEXT,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS media_by_key ON media (bucket, media_key);
CREATE INDEX IF NOT EXISTS media_by_cover ON media (bucket, cover_key);
CREATE TABLE IF NOT EXISTS used_signatures (
    digest TEXT PRIMARY KEY,
    expire_time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS event_config (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    delivery TEXT NOT NULL,
    body TEXT NOT NULL,
    pulled_at REAL,
    confirmed INTEGER NOT NULL DEFAULT 0,
    push_status TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS event_handles (
    handle TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    issued_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class FileSpec:
    """One object of an upload: what the client announced and where it must put it."""

    name: str
    type: str
    key: str  # COS object key, no leading "/"
    size: int | None  # None = not announced (server-side ApplyUpload has no sizes)


@dataclass(frozen=True)
class UploadOptions:
    """What the signature (or ApplyUpload) asks VOD to do with the uploaded file."""

    storage_region: str
    class_id: int = 0
    procedure: str | None = None
    task_priority: int | None = None
    task_notify_mode: str | None = None
    source_context: str | None = None
    session_context: str | None = None
    expire_time: str | None = None  # ISO 8601, ApplyUpload only


@dataclass(frozen=True)
class UploadSession:
    session_key: str
    created_at: float
    bucket: str
    options: UploadOptions
    video: FileSpec | None
    cover: FileSpec | None
    target_file_id: str | None = None  # set for a cover-only change of an existing file
    file_id: str | None = None  # set once committed


@dataclass(frozen=True)
class MediaFile:
    file_id: str
    name: str
    type: str
    bucket: str
    media_key: str
    size: int
    options: UploadOptions
    created_at: float
    updated_at: float
    cover_key: str | None = None
    procedure_task_id: str | None = None
    # DeleteMedia: of the whole file (no longer listed), or of its original (and the cover uploaded with it)
    deleted_at: float | None = None
    original_deleted_at: float | None = None


@dataclass(frozen=True)
class EventConfig:
    # VOD's documented defaults: PUSH with no URL and both switches OFF, i.e. no notifications.
    mode: str = PUSH
    notification_url: str = ""
    upload_switch: str = "OFF"
    delete_switch: str = "OFF"
    persistence_switch: str = "OFF"
    sign_key: str = field(default="", repr=False)


@dataclass(frozen=True)
class QueuedEvent:
    seq: int
    body: dict[str, Any]
    attempts: int = 0


@dataclass(frozen=True)
class PulledEvent:
    handle: str
    body: dict[str, Any]


def _session_from(record: dict[str, Any], file_id: str | None) -> UploadSession:
    video, cover = record["video"], record["cover"]
    return UploadSession(
        session_key=record["session_key"],
        created_at=record["created_at"],
        bucket=record["bucket"],
        options=UploadOptions(**record["options"]),
        video=FileSpec(**video) if video else None,
        cover=FileSpec(**cover) if cover else None,
        target_file_id=record["target_file_id"],
        file_id=file_id,
    )


def _media_from(record: dict[str, Any]) -> MediaFile:
    return MediaFile(**{**record, "options": UploadOptions(**record["options"])})


class StateInUse(OSError):
    """Another emulator keeps its state in this directory: both would deliver its queued events, and either
    could change the other's event settings."""


class EmulatorState:
    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        # Held while the state is open (an flock: let go by the system if the process dies).
        self._owner = filelock.FileLock(state_dir / "emulator.lock", mode=0o600, thread_local=False)
        try:
            self._owner.acquire(timeout=0)
        except filelock.Timeout:
            raise StateInUse(
                f"another emulator keeps its state in {state_dir} (a vod-emulator, or the one `make serve` runs on "
                "its --state-dir): stop it, or give this one a --state-dir of its own"
            ) from None
        try:
            self.path = state_dir / DB_FILENAME
            # Only its owner reads it (it keeps the callback SignKey); SQLite gives its -wal and -shm the same mode.
            self.path.touch(mode=0o600)
            self.path.chmod(0o600)
            self._lock = threading.Lock()
            # Autocommit mode; multi-statement operations open their own IMMEDIATE transaction.
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except BaseException:
            self._owner.release()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._owner.release()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- upload sessions ---------------------------------------------------------------------

    def add_session(self, session: UploadSession) -> None:
        record = asdict(replace(session, file_id=None))
        with self._transaction() as db:
            db.execute(
                "INSERT INTO sessions (session_key, created_at, record) VALUES (?, ?, ?)",
                (session.session_key, session.created_at, json.dumps(record)),
            )

    def get_session(self, session_key: str) -> UploadSession | None:
        with self._lock:
            row = self._db.execute(
                "SELECT record, file_id FROM sessions WHERE session_key = ?", (session_key,)
            ).fetchone()
        return None if row is None else _session_from(json.loads(row[0]), row[1])

    def commit_session(
        self, session_key: str, media: MediaFile, events: Sequence[tuple[str, dict[str, Any]]], now: float
    ) -> str:
        """Record a new file (or a cover change) and queue its events, once: the winning FileId is returned.

        If the session was committed already (a retried commit), nothing changes and its FileId is returned.
        """
        with self._transaction() as db:
            row = db.execute("SELECT file_id FROM sessions WHERE session_key = ?", (session_key,)).fetchone()
            if row is None:
                raise KeyError(session_key)
            if row[0] is not None:
                return str(row[0])
            db.execute(
                "INSERT OR REPLACE INTO media (file_id, bucket, media_key, cover_key, record) VALUES (?, ?, ?, ?, ?)",
                (media.file_id, media.bucket, media.media_key, media.cover_key, json.dumps(asdict(media))),
            )
            db.execute("UPDATE sessions SET file_id = ? WHERE session_key = ?", (media.file_id, session_key))
            _queue(db, events, now)
            return media.file_id

    def delete_media(
        self, file_id: str, events: Sequence[tuple[str, dict[str, Any]]], now: float, *, whole: bool, original: bool
    ) -> bool:
        """DeleteMedia of the `whole` file, or of some parts (the `original` among them, or others the emulator
        does not hold), its events queued at once; False if VOD lists no such file. A deleted file's task is
        still described (DescribeTaskDetail answers for 3 days, whatever became of the file)."""
        with self._transaction() as db:
            row = db.execute("SELECT record FROM media WHERE file_id = ?", (file_id,)).fetchone()
            media = None if row is None else _media_from(json.loads(row[0]))
            if media is None or media.deleted_at is not None:
                return False
            if whole or original:
                gone = replace(media, deleted_at=now) if whole else replace(media, original_deleted_at=now)
                db.execute("UPDATE media SET record = ? WHERE file_id = ?", (json.dumps(asdict(gone)), file_id))
            _queue(db, events, now)
            return True

    def queue_events(self, events: Sequence[tuple[str, dict[str, Any]]], now: float) -> None:
        """Queue events of the app's own making (a task's, say: the emulator runs none), each (delivery, body)."""
        with self._transaction() as db:
            _queue(db, events, now)

    # -- media ---------------------------------------------------------------------------------

    def get_media(self, file_id: str) -> MediaFile | None:
        """A file VOD lists (not one deleted whole)."""
        with self._lock:
            row = self._db.execute("SELECT record FROM media WHERE file_id = ?", (file_id,)).fetchone()
        media = None if row is None else _media_from(json.loads(row[0]))
        return media if media is not None and media.deleted_at is None else None

    def media_of_task(self, task_id: str) -> MediaFile | None:
        """The file whose procedure task this is (a scan: the emulator holds few files)."""
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM media WHERE json_extract(record, '$.procedure_task_id') = ?", (task_id,)
            ).fetchone()
        return None if row is None else _media_from(json.loads(row[0]))

    def file_id_exists(self, file_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM media WHERE file_id = ?", (file_id,)).fetchone() is not None

    def is_published(self, bucket: str, key: str) -> bool:
        """Whether an object is a committed file's media or current cover (what the media route may serve)."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM media WHERE bucket = ? AND (media_key = ? OR cover_key = ?)"
                " AND json_extract(record, '$.deleted_at') IS NULL"
                " AND json_extract(record, '$.original_deleted_at') IS NULL LIMIT 1",
                (bucket, key, key),
            ).fetchone()
        return row is not None

    # -- one-time signatures -----------------------------------------------------------------

    def consume_signature(self, digest: str, expire_time: int, now: float) -> bool:
        """True the first time a one-time signature is used; kept until it expires (then it is refused anyway)."""
        with self._transaction() as db:
            db.execute("DELETE FROM used_signatures WHERE expire_time < ?", (now,))
            cursor = db.execute(
                "INSERT OR IGNORE INTO used_signatures (digest, expire_time) VALUES (?, ?)", (digest, expire_time)
            )
            return cursor.rowcount == 1

    # -- event configuration -----------------------------------------------------------------

    def get_event_config(self) -> EventConfig:
        with self._lock:
            row = self._db.execute("SELECT record FROM event_config WHERE id = 1").fetchone()
        return EventConfig() if row is None else EventConfig(**json.loads(row[0]))

    def put_event_config(self, config: EventConfig) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO event_config (id, record) VALUES (1, ?)", (json.dumps(asdict(config)),))

    # -- PULL queue ----------------------------------------------------------------------------

    def pull_events(
        self, now: float, *, limit: int, window: float, retention: float, new_handle: Callable[[], str]
    ) -> list[PulledEvent]:
        """Hand out up to `limit` unconfirmed events not handed out in the last `window` seconds."""
        with self._transaction() as db:
            db.execute("DELETE FROM events WHERE delivery = ? AND created_at < ?", (PULL, now - retention))
            db.execute("DELETE FROM event_handles WHERE issued_at < ?", (now - retention,))
            rows = db.execute(
                "SELECT seq, body FROM events WHERE delivery = ? AND confirmed = 0"
                " AND (pulled_at IS NULL OR pulled_at <= ?) ORDER BY seq LIMIT ?",
                (PULL, now - window, limit),
            ).fetchall()
            pulled = []
            for seq, body in rows:
                handle = new_handle()
                db.execute("UPDATE events SET pulled_at = ? WHERE seq = ?", (now, seq))
                db.execute("INSERT INTO event_handles (handle, seq, issued_at) VALUES (?, ?, ?)", (handle, seq, now))
                pulled.append(PulledEvent(handle, json.loads(body)))
            return pulled

    def confirm_events(self, handles: Sequence[str], now: float, *, window: float) -> dict[str, str]:
        """Confirm all handles, or none: returns {handle: why} for the refused ones (empty = done)."""
        with self._transaction() as db:
            refused: dict[str, str] = {}
            seqs = []
            for handle in handles:
                row = db.execute("SELECT seq, issued_at FROM event_handles WHERE handle = ?", (handle,)).fetchone()
                if row is None:
                    refused[handle] = "unknown"
                elif now - row[1] >= window:
                    refused[handle] = "expired"
                else:
                    seqs.append(row[0])
            if not refused:
                db.executemany("UPDATE events SET confirmed = 1 WHERE seq = ?", [(s,) for s in seqs])
            return refused

    # -- PUSH queue ----------------------------------------------------------------------------

    def pending_push_events(self) -> list[QueuedEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body, attempts FROM events WHERE delivery = ? AND push_status = 'pending' ORDER BY seq",
                (PUSH,),
            ).fetchall()
        return [QueuedEvent(seq, json.loads(body), attempts) for seq, body, attempts in rows]

    def record_push_attempt(self, seq: int, *, status: str, error: str | None) -> None:
        """status: 'pending' (will retry), 'delivered' or 'failed' (gave up)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE events SET attempts = attempts + 1, push_status = ?, last_error = ? WHERE seq = ?",
                (status, error, seq),
            )

    def push_status(self) -> list[tuple[int, str, int, str | None]]:
        """(seq, status, attempts, last error) of every PUSH event, oldest first: for tests and operators."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, push_status, attempts, last_error FROM events WHERE delivery = ? ORDER BY seq", (PUSH,)
            ).fetchall()
        return [(int(r[0]), str(r[1]), int(r[2]), r[3]) for r in rows]


def _queue(db: sqlite3.Connection, events: Sequence[tuple[str, dict[str, Any]]], now: float) -> None:
    for delivery, body in events:
        db.execute(
            "INSERT INTO events (created_at, delivery, body, push_status) VALUES (?, ?, ?, ?)",
            (now, delivery, json.dumps(body), "pending" if delivery == PUSH else None),
        )
