"""Callback function: cold import over a bare interpreter; events/s into SQLite and PostgreSQL, each
next to the bare cost of one upsert round trip on the same database, measured in the same run."""

from __future__ import annotations

import contextlib
import copy
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vodbench.common import ROOT, bundle_cold_start, cold_start_rows

FILES = 100  # each file gets upload + PROCESSING + FINISH: 300 events, folds over 1..3 events
REPEAT = 3  # best of: the run least disturbed by the rest of the machine


def _events() -> list[dict[str, Any]]:
    fixtures = [
        json.loads((ROOT / "tests" / "events" / f"{name}.json").read_text())
        for name in ("vod_new_file_upload", "vod_procedure_processing", "vod_procedure_finish")
    ]
    events = []
    for i in range(FILES):
        for fixture in fixtures:
            event = copy.deepcopy(fixture)
            body = next(v for k, v in event.items() if k.endswith("Event"))
            body["FileId"] = f"bench{i:06d}"
            if "TaskId" in body:
                body["TaskId"] = f"task{i:06d}"
            events.append(event)
    return events


def _best(work: Callable[[int], None], count: int) -> float:
    """Seconds per operation, best of REPEAT runs of `count` operations (`work(run)` does them all)."""
    times = []
    for run_number in range(REPEAT):
        started = time.perf_counter()
        work(run_number)
        times.append(time.perf_counter() - started)
    return min(times) / count


def _ingest_seconds(url: str, events: list[dict[str, Any]]) -> float:
    from shared.ingest import ingest_event
    from shared.store import open_store

    def work(run_number: int) -> None:
        store = open_store(url)
        try:
            for i, event in enumerate(events):
                # A new database per run would time schema creation; new file ids per run keep it honest.
                ingest_event(store, {**event, "Run": run_number}, received_at=float(i), keys=_KEYS)
        finally:
            store.close()

    return _best(work, len(events))


def _sqlite_upsert_seconds(path: str, count: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    # The same settings and one writer transaction per operation, exactly as the store uses.
    for pragma in ("busy_timeout = 5000", "journal_mode = WAL", "synchronous = FULL"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("CREATE TABLE IF NOT EXISTS bare (k TEXT PRIMARY KEY, v INTEGER)")

    def work(run_number: int) -> None:
        for i in range(count):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO bare (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                (f"{run_number}-{i}", i),
            )
            conn.execute("COMMIT")

    try:
        return _best(work, count)
    finally:
        conn.close()


def _postgres_upsert_seconds(url: str, count: int) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bare (k TEXT PRIMARY KEY, v INTEGER)")

        def work(run_number: int) -> None:
            for i in range(count):
                conn.execute(
                    "INSERT INTO bare (k, v) VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                    (f"{run_number}-{i}", i),
                )

        return _best(work, count)


@contextlib.contextmanager
def _postgres() -> Iterator[tuple[str | None, str]]:
    """(URL of a database on a throwaway server, note) or (None, why not)."""
    try:
        from tests.store.pgserver import PostgresServer, find_bin_dir
    except ImportError as exc:
        yield None, f"not measured: {exc}"
        return
    bin_dir = find_bin_dir()
    if bin_dir is None:
        yield None, "not measured: PostgreSQL binaries (initdb) not found"
        return
    server = PostgresServer(bin_dir).init()
    try:
        server.start()
        yield server.create_database(), "Unix socket, fsync off"
    finally:
        server.destroy()


def _ratio_row(name: str, ingest: float, upsert: float, note: str) -> tuple[str, str]:
    return (
        f"{name}: events/s (vs bare upsert/s)",
        f"{1 / ingest:8.0f} /s  (bare {1 / upsert:.0f}/s; one event costs ×{ingest / upsert:.1f} "
        f"of one upsert round trip; {note})",
    )


_KEYS = ("bench-context-key-0123456789-abcdefgh",)


def run() -> list[tuple[str, str]]:
    events = _events()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "VOD_CALLBACK_SIGN_KEY": "BenchSignKey0123",
            "VOD_CONTEXT_KEY": "bench-context-key-0123456789-abcdefgh",
            "DATABASE_URL": f"sqlite:///{tmp}/cold/vod.sqlite3",
            "LOG_LEVEL": "WARNING",
        }
        rows += cold_start_rows(
            "callback", bundle_cold_start("callback", env), "≤ 30 ms; SQLite store, so psycopg is not imported"
        )
        sqlite_path = Path(tmp) / "bench" / "vod.sqlite3"
        ingest = _ingest_seconds(f"sqlite:///{sqlite_path}", events)
        upsert = _sqlite_upsert_seconds(str(Path(tmp) / "bare.sqlite3"), len(events))
        rows.append(_ratio_row("SQLite", ingest, upsert, "WAL, synchronous=FULL, in " + tmp))
    with _postgres() as (url, note):
        if url is None:
            rows.append(("PostgreSQL: events/s", note))
        else:
            ingest = _ingest_seconds(url, events)
            upsert = _postgres_upsert_seconds(url, len(events))
            rows.append(_ratio_row("PostgreSQL", ingest, upsert, note))
    return rows
