"""SQLite backend (stdlib): WAL, a busy timeout, and BEGIN IMMEDIATE so writers queue up front."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from shared.store.base import Cursor, EventStore


class _Cursor(sqlite3.Cursor):
    def defer(self, sql: str, params: Sequence[Any] = (), /) -> None:
        self.execute(sql, params)  # in-process: nothing to gain by waiting


class _Connection(sqlite3.Connection):
    file: tuple[int, int] | None = None  # the database file it opened (device, inode)


def _file(path: str) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:  # gone, or its directory no longer one: not the file a connection opened
        return None
    return found.st_dev, found.st_ino


class SqliteStore(EventStore):
    errors = (sqlite3.Error, OSError)  # OSError: the database's directory cannot be created

    def __init__(self, path: str, *, timeout_seconds: float, read_only: bool = False) -> None:
        super().__init__(read_only=read_only)
        self.path = path
        self._timeout = timeout_seconds

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            return self._connect_reader()
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False is safe
        # because the pool hands a connection to one thread at a time.
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False, factory=_Connection
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            self._use_wal(conn)  # readers never block the writer
            conn.execute("PRAGMA synchronous = FULL")  # we answer 200 only for what survives a power cut
        except BaseException:
            conn.close()
            raise
        conn.file = _file(self.path)
        return conn

    def _connect_reader(self) -> sqlite3.Connection:
        if not os.path.exists(self.path):  # connecting would create it: nothing recorded yet
            raise sqlite3.OperationalError("the database does not exist yet")
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False, factory=_Connection
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
        conn.execute("PRAGMA query_only = ON")
        conn.file = _file(self.path)
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        # Switching a new database to WAL needs an exclusive lock, and SQLite answers "database is
        # locked" at once, without its busy handler, while another connection does the same switch
        # (many first deliveries at once). The mode is stored in the file: only the first switch races.
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                # Python 3.10's sqlite3 has no error codes; the message is SQLITE_BUSY's.
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection, *, write: bool) -> Iterator[Cursor]:
        # IMMEDIATE takes the write lock at BEGIN: a deferred writer that upgrades later can fail
        # with SQLITE_BUSY without the busy handler being able to help.
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            if self._moved(conn):
                # Its file was deleted or replaced since it was opened: what it commits no one would read, and what
                # it reads is no longer there
                raise sqlite3.OperationalError("the database file was deleted or replaced while open")
            yield conn.cursor(_Cursor)
        except BaseException:
            if conn.in_transaction:
                # The original error matters more; the connection is discarded anyway.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _moved(self, conn: sqlite3.Connection) -> bool:
        """Its file is no longer the one at the path (deleted, or replaced)."""
        return getattr(conn, "file", None) != _file(self.path)

    def _broken(self, conn: sqlite3.Connection) -> bool:
        return self._moved(conn)  # the other pooled connections have the old file too: the path's is opened afresh

    def _lock(self, cursor: Cursor, names: Sequence[str]) -> None:
        """No-op: BEGIN IMMEDIATE already holds the database's single write lock."""
