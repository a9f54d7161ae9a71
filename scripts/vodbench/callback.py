"""Callback function: cold import over a bare interpreter; events/s into SQLite and PostgreSQL, each
next to the bare cost of one upsert round trip on the same database, measured in the same run."""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from vodbench.common import (
    CONTEXT_KEY,
    ROOT,
    Bundle,
    Figure,
    Section,
    bundle_cold_start,
    bundle_cold_starts,
    bundle_figure,
    cold_start_rows,
    goal,
    on_memory,
    quiet_servers,
)

FILES = 100  # each file gets upload + PROCESSING + FINISH
EVENTS = FILES * 3
REPEAT = 3  # best of: the run least disturbed by the rest of the machine
FLAT_EVENTS = 2000  # events of one file, to show the cost of an event doesn't grow with those stored before
FLAT_WINDOW = 100  # its last this many events, each against the first event of a new file (medians)
DELETE_SIZES = (100, 1000)  # FileIds in one FileDeleted: the cost per FileId should not grow


@functools.cache
def _fixture(name: str) -> dict[str, Any]:
    """A realistic event (the FINISH carries three media-processing results), read once."""
    return dict(json.loads((ROOT / "tests" / "events" / f"{name}.json").read_text()))


def _with_ids(name: str, file_id: str, task_id: str | None = None, **fields: Any) -> dict[str, Any]:
    event = copy.deepcopy(_fixture(name))
    body = next(v for k, v in event.items() if k.endswith("Event"))
    body.update(FileId=file_id, **({"TaskId": task_id} if task_id else {}), **fields)
    if "SourceInfo" in body.get("MediaBasicInfo", {}):  # sealed with the bench's key: an upload's usual path
        from shared.source_context import seal

        body["MediaBasicInfo"]["SourceInfo"]["SourceContext"] = seal("alice", file_id, CONTEXT_KEY)
    return event


def _events(run: int) -> list[dict[str, Any]]:
    """Upload, PROCESSING, FINISH for FILES new files: each run stores new files, as the baseline new keys."""
    return [
        _with_ids(name, f"bench{run}-{i:06d}", None if name == "vod_new_file_upload" else f"task{run}-{i:06d}")
        for i in range(FILES)
        for name in ("vod_new_file_upload", "vod_procedure_processing", "vod_procedure_finish")
    ]


Runner = Callable[[int], float]  # run number -> seconds per operation of that run


def _in_turns(runners: Sequence[Runner]) -> list[float]:
    """Each runner's best of REPEAT runs (the run least disturbed by the rest of the machine), the runners
    taking turns (one run of each, REPEAT times), so that a busier moment weighs on all of them alike."""
    times: list[list[float]] = [[] for _ in runners]
    for run_number in range(REPEAT):
        for runner, seconds in zip(runners, times, strict=True):
            seconds.append(runner(run_number))
    return [min(seconds) for seconds in times]


def _callback_runner(url: str) -> Runner:
    """The deployed callback handler (functions/callback/index.py: the trigger's event read, VOD's Sign
    checked, the event stored, the answer and its log line) taking signed PUSH deliveries via a function URL,
    one after another, as VOD sends them; its store warm (connected, schema made), as in a warm container."""
    from vodtesting import http_event, load_function, signed, vod_event

    handler = load_function("callback", {**ENV, "DATABASE_URL": url, "LOG_LEVEL": "INFO"})  # each one's line

    def delivery(event: dict[str, Any]) -> dict[str, Any]:
        return http_event("POST", "/vod-events", body=signed(event, SIGN_KEY), shape="function_url")

    with open(os.devnull, "w") as log, contextlib.redirect_stdout(log):  # its line is not the bench's output
        warm = handler(delivery(vod_event("NewFileUpload", FileId="warm-up")), {})
    assert warm["statusCode"] == 200, warm
    batches = [[delivery(event) for event in _events(run)] for run in range(REPEAT)]  # made before the clock

    def run(run_number: int) -> float:
        answers = []
        with open(os.devnull, "w") as log, contextlib.redirect_stdout(log):  # written, as SCF collects them
            started = time.perf_counter()
            for event in batches[run_number]:
                answers.append(handler(event, {})["statusCode"])
            seconds = time.perf_counter() - started
        assert set(answers) == {200}, answers
        return seconds / len(answers)

    return run


class _Recorder:
    """A store cursor that notes every statement and its parameters (`defer`red ones too, and the locks)."""

    def __init__(self, cursor: Any, calls: list[tuple[str, str, Any]]) -> None:
        self._cursor, self._calls = cursor, calls

    def execute(self, sql: str, params: Any = ()) -> Any:
        self._calls.append(("execute", sql, params))
        return self._cursor.execute(sql, params)

    def defer(self, sql: str, params: Any = ()) -> None:
        self._calls.append(("defer", sql, params))
        self._cursor.defer(sql, params)

    def __getattr__(self, name: str) -> Any:  # rowcount, fetchone, fetchall
        return getattr(self._cursor, name)


def _statements_runner(url: str, replay_url: str, stack: contextlib.ExitStack) -> Runner:
    """The write set alone: the statements the store ran for each run's events (recorded), replayed through the
    store's own transactions (BEGIN, locks, round trips, COMMIT) with no Python between them: no parsing, hashing,
    projection or JSON. What any event costs before our code runs. Replayed as the handler and the bare upsert run:
    into one database that stays open across the runs, each run's new files after the last's (a database made
    new for each run would time its growth from empty, which makes every SQLite commit dearer)."""
    from shared.ingest import ingest_event
    from shared.store import open_store

    runs: list[list[list[tuple[str, str, Any]]]] = []
    store = open_store(url)
    try:
        store.schema_version()  # the schema exists before recording starts
        plain = store._transaction

        @contextlib.contextmanager
        def recording(conn: Any, *, write: bool) -> Iterator[Any]:
            with plain(conn, write=write) as cursor:
                runs[-1].append([])
                yield _Recorder(cursor, runs[-1][-1])

        store._transaction = recording  # type: ignore[method-assign]
        for run_number in range(REPEAT):  # the events of the handler's runs, in its order
            runs.append([])
            events = _events(run_number)
            for i, event in enumerate(events):
                ingest_event(store, event, received_at=float(i), keys=_KEYS)
            assert len(runs[-1]) == len(events), "one transaction per event, as the figure assumes"
    finally:
        store.close()

    def replayed(calls: list[tuple[str, str, Any]]) -> Callable[[Any], None]:
        def work(cursor: Any) -> None:
            for method, sql, params in calls:
                getattr(cursor, method)(sql, params)

        return work

    works = [[replayed(calls) for calls in transactions] for transactions in runs]
    replay = open_store(replay_url)
    stack.callback(replay.close)
    replay.schema_version()  # connected, schema made: warm, as the handler's store

    def run(run_number: int) -> float:
        started = time.perf_counter()
        for work in works[run_number]:
            replay._run(work, write=True)
        return (time.perf_counter() - started) / len(works[run_number])

    return run


def _sqlite_upsert_runner(path: str, count: int, stack: contextlib.ExitStack) -> Runner:
    conn = stack.enter_context(contextlib.closing(sqlite3.connect(path, isolation_level=None)))
    # The same settings and one writer transaction per operation, exactly as the store uses.
    for pragma in ("busy_timeout = 5000", "journal_mode = WAL", "synchronous = FULL"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("CREATE TABLE IF NOT EXISTS bare (k TEXT PRIMARY KEY, v INTEGER)")

    def run(run_number: int) -> float:
        started = time.perf_counter()
        for i in range(count):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO bare (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                (f"{run_number}-{i}", i),
            )
            conn.execute("COMMIT")
        return (time.perf_counter() - started) / count

    return run


def _postgres_upsert_runner(url: str, count: int, stack: contextlib.ExitStack) -> Runner:
    import psycopg2

    conn = stack.enter_context(contextlib.closing(psycopg2.connect(url)))
    conn.autocommit = True  # one statement, one round trip, committed
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE IF NOT EXISTS bare (k TEXT PRIMARY KEY, v INTEGER)")

    def run(run_number: int) -> float:
        started = time.perf_counter()
        for i in range(count):
            cursor.execute(
                "INSERT INTO bare (k, v) VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                (f"{run_number}-{i}", i),
            )
        return (time.perf_counter() - started) / count

    return run


def _rates(
    db: str,
    events_url: str,
    recorded_url: str,
    replay_url: str,
    upsert: Callable[..., Runner],
    bare: str,
    note: str,
    out: Section,
) -> None:
    """The callback's events/s, its statements replayed, and the bare upsert: taking turns, in one run."""
    with contextlib.ExitStack() as stack:
        runners = [
            _callback_runner(events_url),
            _statements_runner(recorded_url, replay_url, stack),
            upsert(bare, EVENTS, stack),
        ]
        callback, statements, upserting = _in_turns(runners)
    _ratio_rows(db, callback, statements, upserting, note, out)


@contextlib.contextmanager
def _postgres() -> Iterator[tuple[Callable[[], str] | None, str]]:
    """(a maker of new databases on a throwaway server, returning their URLs; note) or (None, why not)."""
    from vodtesting.pgserver import DURABLE, find_bin_dir, launch

    bin_dir = find_bin_dir()
    if bin_dir is None:
        yield None, "not measured: PostgreSQL binaries (initdb) not found"
        return
    # The tests' server trades durability for speed; a baseline must not. (In the system's temp dir, whatever
    # BENCH_TMPDIR says: its socket's path must stay short, and the postgres user must reach it.)
    server = launch(bin_dir, DURABLE)
    note = "Unix socket; a durable server: fsync, synchronous_commit, full_page_writes on"
    if on_memory(str(server.base)):  # (the note is the baseline's column of every PostgreSQL row)
        note = "Unix socket; NOT DURABLE: the server's files are in memory (tmpfs), where fsync does nothing"
    try:
        yield server.create_database, note
    finally:
        server.destroy()


def _flat_rows(url: str, db: str, out: Section) -> None:
    """Median cost of the last FLAT_WINDOW events of one file with FLAT_EVENTS events (a new task each, so
    the file's record really grows) against the first events of new files, timed alternately so that a
    busier moment of the machine weighs on both alike; and the cost per FileId of a FileDeleted, small vs large."""
    from shared.ingest import ingest_event
    from shared.store import open_store

    def task_event(file_id: str, i: int) -> dict[str, Any]:
        status = "FINISH" if i % 2 else "PROCESSING"
        return _with_ids("vod_procedure_finish", file_id, f"{file_id}-task-{i:05d}", Status=status)

    def timed(event: dict[str, Any], at: float) -> float:
        started = time.perf_counter()
        ingest_event(store, event, received_at=at, keys=_KEYS)
        return time.perf_counter() - started

    store = open_store(url)
    try:
        grown = FLAT_EVENTS - FLAT_WINDOW
        for i in range(grown):
            ingest_event(store, task_event("flat", i), received_at=float(i), keys=_KEYS)
        firsts, lasts = [], []
        for i in range(grown, FLAT_EVENTS):
            firsts.append(timed(task_event(f"fresh-{i:05d}", i), float(i)))
            lasts.append(timed(task_event("flat", i), float(i)))
        first, last = statistics.median(firsts), statistics.median(lasts)
        per_file = {}
        for size in DELETE_SIZES:
            runs = []
            for run_number in range(REPEAT):
                ids = [f"del{size}-{run_number}-{n:05d}" for n in range(size)]
                for file_id in ids:  # stored files, as VOD deletes: each delete loads and rewrites a record
                    ingest_event(store, _with_ids("vod_new_file_upload", file_id), received_at=0.5, keys=_KEYS)
                event = {"EventType": "FileDeleted", "FileDeleteEvent": {"FileIdSet": ids}}
                started = time.perf_counter()
                ingest_event(store, event, received_at=1.0, keys=_KEYS)
                runs.append((time.perf_counter() - started) / size)
            per_file[size] = min(runs)
    finally:
        store.close()
    small, large = DELETE_SIZES
    grows, per_small, per_large = last / first, per_file[small] * 1e6, per_file[large] * 1e6
    out.figures += [
        Figure(
            f"events {grown + 1:,}–{FLAT_EVENTS:,} of one file (a task each) over the first event of new files, {db}",
            f"×{grows:.2f} ({last * 1e6:.0f} vs {first * 1e6:.0f} µs)",
            f"medians of {FLAT_WINDOW}, timed alternately (so the machine's load weighs on both alike)",
            goal(grows, 1.5),
        ),
        Figure(
            f"FileDeleted of {large} stored files over {small}, per FileId, {db}",
            f"×{per_large / per_small:.2f} ({per_large:.0f} vs {per_small:.0f} µs per FileId)",
            "—",
            "linear: " + goal(per_large / per_small, 1.5),
        ),
    ]


def _ratio_rows(db: str, ingest: float, statements: float, upsert: float, note: str, out: Section) -> None:
    out.figures += [
        Figure(
            f"callback events/s, {db}: the handler, signed deliveries (new files each run)",
            f"{1 / ingest:,.0f}/s",
            f"×{ingest / upsert:.1f} a bare upsert round trip ({note}; {1 / upsert:,.0f}/s)",
            goal(ingest / upsert, 2, places=1),
        ),
        Figure(
            "— of which the store's statements alone, replayed without Python",
            f"{statements * 1e6:.0f} µs an event (the rest of this run's: {(ingest - statements) * 1e6:.0f} µs)",
            f"×{statements / upsert:.1f} the same upsert",
        ),
    ]


_KEYS = (CONTEXT_KEY,)
SIGN_KEY = "BenchSignKey0123"
ENV = {"VOD_CALLBACK_SIGN_KEY": SIGN_KEY, "VOD_CONTEXT_KEY": _KEYS[0], "LOG_LEVEL": "WARNING"}

# What Tencent's demo callback does: import the VOD SDK (to ask VOD about the file), read the event, answer.
# The baseline the callback's cold start with PostgreSQL is set against (the callback imports no SDK at all).
DEMO_CALLBACK = """
import json
from tencentcloud.common import credential
from tencentcloud.vod.v20180717 import models, vod_client

def main_handler(event, context):
    body = json.loads(event["body"])
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"received": body.get("EventType")})}
"""


def _first_event_code(run_first: str) -> str:
    """Code for a fresh interpreter: `run_first` (defines main_handler), then one signed NewFileUpload
    delivery through a function URL, new each run (a nonce field), which must be answered 200."""
    from vodtesting import http_event, signed, vod_event

    body = signed(vod_event("NewFileUpload", FileId="5285890784273599999"), SIGN_KEY, ttl=600)
    event = http_event("POST", "/", body=body, shape="function_url")
    return (
        f"import json, time; {run_first}; event = json.loads({json.dumps(event)!r}); "
        "body = json.loads(event['body']); body['Nonce'] = time.time_ns(); event['body'] = json.dumps(body); "
        "answer = main_handler(event, None); assert answer['statusCode'] == 200, answer"
    )


@contextlib.contextmanager
def _emulated_vod() -> Iterator[dict[str, str]]:
    """VOD's API (the emulator, in this process) and the settings that make the callback ask it (fetch)."""
    from vodemu.app import build_emulator

    secret_id, secret_key = "AKIDbench0000", "bench-secret-key-0123456789"
    with tempfile.TemporaryDirectory() as tmp, quiet_servers():
        emulator = build_emulator(Path(tmp), secret_id=secret_id, secret_key=secret_key)
        emulator.start()
        try:
            yield {
                "VOD_CALLBACK_CONFIRM": "fetch",
                "VOD_SECRET_ID": secret_id,
                "VOD_SECRET_KEY": secret_key,
                "VOD_API_ENDPOINT": emulator.url,
            }
        finally:
            emulator.close()


def _postgres_cold_rows(url: str, out: Section) -> None:
    # The demo runs from the events_pull bundle: the one that ships the VOD SDK (its own `index` is not imported
    # by the demo, but is timed too, so it gets settings). The bundles' launches take turns. Each logs its
    # request's line, as deployed (LOG_LEVEL=INFO).
    env = {**ENV, "DATABASE_URL": url, "LOG_LEVEL": "INFO"}
    pull_env = {**env, "TENCENTCLOUD_SECRET_ID": "AKIDbench0000", "TENCENTCLOUD_SECRET_KEY": "bench"}
    ours = _first_event_code("from index import main_handler")
    # VOD_CALLBACK_CONFIRM=fetch: VOD asked about the file (the emulator, over http); and the TLS context that
    # VOD's https endpoint needs made too, as the first call to VOD would make it
    with_tls = _first_event_code(
        "from index import main_handler; from shared.vod_cloud_api import tls_context; tls_context()"
    )
    with _emulated_vod() as fetch:
        plain, confirming, demo = bundle_cold_starts(
            [
                Bundle("callback", env, {"first": ours}),
                Bundle("callback", {**env, **fetch}, {"first": with_tls, "no TLS": ours}),
                Bundle("events_pull", pull_env, {"first": _first_event_code(f"exec({DEMO_CALLBACK!r})")}),
            ]
        )
    demo_cold = demo.layers["first"] - demo.bare
    baseline = f"a demo-equivalent callback that imports the VOD SDK ({demo_cold * 1e3:.0f} ms)"
    no_tls = confirming.layers["no TLS"] - confirming.bare
    out.lines.append(
        (
            "callback cold start, PostgreSQL, =fetch without making the TLS context",
            f"{no_tls * 1e3:8.1f} ms over bare (×{no_tls / demo_cold:.2f} the demo-equivalent)",
        )
    )
    fetch_mode = "=fetch (VOD asked, here the emulator; the TLS context https needs made too)"
    for start, mode in ((plain, "VOD_CALLBACK_CONFIRM=none"), (confirming, fetch_mode)):
        cold = start.layers["first"] - start.bare
        out.figures.append(
            Figure(
                f"callback cold start with PostgreSQL, {mode}: import + first event stored",
                f"{cold * 1e3:.0f} ms over bare",
                f"×{cold / demo_cold:.2f} {baseline}",
                goal(cold / demo_cold, 0.5),
            )
        )


def run() -> Section:
    out = Section([], [])
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMPDIR")) as tmp:  # durable SQLite: on a disk
        note = "durable: WAL, synchronous=FULL"
        if on_memory(tmp):  # (the note is the baseline's column of every SQLite row)
            note = f"NOT DURABLE: {tmp} is in memory (tmpfs), where SQLite's fsyncs do nothing"
        env = {**ENV, "DATABASE_URL": f"sqlite:///{tmp}/cold/vod.sqlite3"}
        start = bundle_cold_start("callback", env)
        out.lines += cold_start_rows("callback", start, "SQLite store, so psycopg2 is not imported")
        _rates(
            "SQLite",
            f"sqlite:///{tmp}/bench/vod.sqlite3",
            f"sqlite:///{tmp}/recorded/vod.sqlite3",
            f"sqlite:///{tmp}/replay/vod.sqlite3",
            _sqlite_upsert_runner,
            str(Path(tmp) / "bare.sqlite3"),
            note,
            out,
        )
        _flat_rows(f"sqlite:///{tmp}/flat/vod.sqlite3", "SQLite", out)
    with _postgres() as (new_database, note):
        if new_database is None:  # each PostgreSQL row says so, none is left out silently
            for name in ("callback events/s", "flat cost of an event", "FileDeleted per FileId", "callback cold start"):
                out.figures.append(Figure(f"{name}, PostgreSQL", note))
        else:
            url = new_database()
            _rates("PostgreSQL", url, new_database(), new_database(), _postgres_upsert_runner, url, note, out)
            _flat_rows(url, "PostgreSQL", out)
            _postgres_cold_rows(url, out)
    out.figures.append(bundle_figure("callback", start, " (SQLite)"))
    return out
