"""PostgreSQL backend (psycopg 3): autocommit connections with explicit transactions, and
transaction-scoped advisory locks for the per-file serialization.

Nothing outlives a transaction on the server side, so the store works through a pooler in
transaction mode (PgBouncer, TencentDB's database proxy), which hands each transaction to any server
connection: no server-side prepared statements, no session settings, only transaction-scoped locks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg

from shared.store.base import Cursor, EventStore


@cache
def _pg_sql(text: str) -> str:
    # The shared SQL uses `?` placeholders and no literal `?` or `%`.
    return text.replace("?", "%s")


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key per lock name (Python's hash() differs between processes)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


class PostgresStore(EventStore):
    errors = (psycopg.Error,)

    def __init__(self, url: str, *, timeout_seconds: int, read_only: bool = False) -> None:
        super().__init__(read_only=read_only)
        self._url = url
        self._timeout = timeout_seconds
        # libpq quotes the bad part of a URL it cannot parse, which may be the password.
        raw_password = urlsplit(url).netloc.rpartition("@")[0].partition(":")[2]
        self._hidden = sorted({url, raw_password, unquote(raw_password)} - {""}, key=len, reverse=True)

    def _redact(self, text: str) -> str:
        for secret in self._hidden:
            text = text.replace(secret, "********")
        return text

    def _connect(self) -> psycopg.Connection[Any]:
        # prepare_threshold=None: psycopg would otherwise prepare a statement run 5 times on the
        # session, and behind a transaction-mode pooler the next transaction may run on a server
        # connection that has no such statement (or another client's of the same name).
        return psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=max(2, self._timeout),
            application_name="vod-events",
            prepare_threshold=None,
        )

    @contextmanager
    def _transaction(self, conn: psycopg.Connection[Any], *, write: bool) -> Iterator[Cursor]:
        # READ COMMITTED (the default) matters: after waiting for a file's lock, the fold's SELECT
        # takes a fresh snapshot and sees the event the previous lock holder committed.
        with conn.transaction(), conn.cursor() as cursor:
            if self.read_only:
                cursor.execute("SET TRANSACTION READ ONLY")
            # Bounded waits (lock queues included): a stuck store answers 503 before SCF times out.
            # SET LOCAL, per transaction: a session-wide SET would stay behind on a pooled server connection.
            cursor.execute(f"SET LOCAL statement_timeout = {int(self._timeout * 1000)}")
            yield cursor

    def _lock(self, cursor: Cursor, names: Sequence[str]) -> None:
        for name in names:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(name),))

    def _sql(self, text: str) -> str:
        return _pg_sql(text)
