"""Durable record of VOD events and the upload/task records derived from them.

    store = open_store("sqlite:///.local/vod.sqlite3")        # or "postgresql://user:pw@host/db"
    store.ingest(stored, event, received_at=now)               # usually via shared.ingest.ingest_event
    store.file_report(file_id)                                  # upload + tasks + events

Opening never connects: the first operation does (and a failed one is retried by the next call),
so a store that is down at cold start cannot crash the module import.
"""

from __future__ import annotations

import os

from shared.config import DEFAULT_DATABASE_TIMEOUT, database_url_problem
from shared.errors import StoreUnavailable
from shared.store.base import EraseTooLarge, EventStore, EventSummary, FileReport, Idle, Ingested, Retention
from shared.store.projection import DeletedPart, Status, TaskRecord, TaskResult, UploadRecord

__all__ = [
    "DeletedPart",
    "EraseTooLarge",
    "EventStore",
    "EventSummary",
    "FileReport",
    "Idle",
    "Ingested",
    "Retention",
    "Status",
    "StoreUnavailable",
    "TaskRecord",
    "TaskResult",
    "UploadRecord",
    "open_store",
]

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://")


def open_store(
    database_url: str,
    *,
    timeout_seconds: float = DEFAULT_DATABASE_TIMEOUT,
    read_only: bool = False,
    bounded_reads: bool = False,
) -> EventStore:
    """`sqlite:///relative/path` (to the current directory; `sqlite:////abs/path` for absolute; parent
    directories are created) or `postgresql://...` / `postgres://...` (libpq URI). ValueError otherwise.
    `read_only`: never write, the schema included (PostgreSQL transactions are READ ONLY, SQLite query_only).
    `bounded_reads`: a PostgreSQL read's statements, all together, within `timeout_seconds` + 1 (the uploads
    function's answer after a ?wait); else each statement has that."""
    problem = database_url_problem(database_url)
    if problem:
        raise ValueError(f"DATABASE_URL {problem}")
    if database_url.startswith(_SQLITE):
        path = database_url[len(_SQLITE) :]
        from shared.store.sqlite import SqliteStore

        return SqliteStore(os.path.abspath(path), timeout_seconds=timeout_seconds, read_only=read_only)
    if database_url.startswith(_POSTGRES):
        from shared.store.postgres import PostgresStore  # imports psycopg2: only PostgreSQL users pay for it

        return PostgresStore(
            database_url, timeout_seconds=timeout_seconds, read_only=read_only, bounded_reads=bounded_reads
        )
    raise AssertionError("unreachable: database_url_problem accepted it")
