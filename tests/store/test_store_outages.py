"""A store that is down: 503 (StoreUnavailable), nothing lost, and a later delivery succeeds."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from shared.callback_service import make_callback_endpoint
from shared.config import load_callback_settings
from shared.events import stored_form
from shared.http.serve import serve
from shared.ingest import ingest_event
from shared.store import EventStore, StoreUnavailable, open_store, postgres
from shared.store.base import SCHEMA_VERSION
from shared.store.postgres import advisory_key
from tests.callback import hook_target
from tests.conftest import CALLBACK_ENV, CALLBACK_SIGN_KEY, KEYS
from tests.scf import load_event, response_json
from tests.store.conftest import sql_on
from vodtesting import http_event, signed, vod_event
from vodtesting.pgserver import PostgresServer, database_name, run_sql

NOW = 1_800_000_000
FILE_ID = "5285890784273533167"


def deliver(store: EventStore, name: str = "vod_new_file_upload") -> dict[str, Any]:
    """One signed PUSH delivery through the real endpoint; returns status and JSON body."""
    settings = load_callback_settings(CALLBACK_ENV)
    endpoint = make_callback_endpoint(settings, lambda: store, now=lambda: NOW)
    payload = signed(load_event(name), CALLBACK_SIGN_KEY, now=NOW)
    result = serve(
        http_event(path="/vod-events", body=json.dumps(payload)), {"request_id": "r"}, endpoint, settings.http
    )
    return {"status": result["statusCode"], **response_json(result)}


def test_sqlite_unreachable_then_back(tmp_path: Path) -> None:
    path = tmp_path / "db" / "vod.sqlite3"
    path.mkdir(parents=True)  # the database file is a directory: SQLite cannot open it
    store = open_store(f"sqlite:///{path}")  # opening never touches the database
    try:
        down = deliver(store)
        assert down["status"] == 503 and down["error"]["code"] == "store_unavailable"
        shutil.rmtree(path)
        up = deliver(store)
        assert up["status"] == 200 and up["duplicate"] is False
        assert store.upload(FILE_ID) is not None
    finally:
        store.close()


def test_sqlite_directory_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    store = open_store(f"sqlite:///{blocker}/sub/vod.sqlite3")
    with pytest.raises(StoreUnavailable):
        ingest_event(store, load_event("vod_new_file_upload"), received_at=1.0, keys=KEYS)
    blocker.unlink()
    assert ingest_event(store, load_event("vod_new_file_upload"), received_at=2.0, keys=KEYS).duplicate is False
    store.close()


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_sqlite_file_deleted_or_replaced_under_a_warm_store_is_written_where_it_is_now(
    how: str, tmp_path: Path
) -> None:
    path = tmp_path / "vod.sqlite3"
    store = open_store(f"sqlite:///{path}")
    reader = open_store(f"sqlite:///{path}", read_only=True)  # a warm uploads function's
    try:
        assert deliver(store)["status"] == 200
        assert reader.upload(FILE_ID) is not None
        for name in ("vod.sqlite3", "vod.sqlite3-wal", "vod.sqlite3-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        if how == "replaced":  # by another database (a backup put back, say) with another file's event
            other = open_store(f"sqlite:///{tmp_path / 'other' / 'vod.sqlite3'}")
            assert deliver(other, "vod_file_deleted")["status"] == 200
            other.close()
            os.replace(tmp_path / "other" / "vod.sqlite3", path)
        # WHEN the warm store takes the next delivery THEN it lands in the file now at the path, not in the one the
        # store had open (a 200 for an event no one would ever read)
        assert deliver(store, "vod_procedure_finish")["status"] == 200
        # AND the warm reader reads the file now at the path, as the writer wrote it
        assert reader.event_count() == (2 if how == "replaced" else 1)
        upload = reader.upload(FILE_ID)
        # What the file now at the path says of it: its task event alone, or that and the other file's delete
        assert upload is not None and (upload.status, upload.user_id) == (
            "deleted" if how == "replaced" else "finished",
            None,
        )
    finally:
        store.close()
        reader.close()


def test_a_sqlite_files_directory_made_a_file_under_a_warm_store_is_a_503(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'db' / 'vod.sqlite3'}")
    try:
        assert deliver(store)["status"] == 200
        (tmp_path / "db").rename(tmp_path / "moved")
        (tmp_path / "db").write_text("")  # the path's directory is no directory now: os.stat fails otherwise
        down = deliver(store, "vod_procedure_finish")
        assert (down["status"], down["error"]["code"]) == (503, "store_unavailable")
    finally:
        store.close()


def _tables(url: str) -> list[str]:
    if url.startswith("sqlite:///"):
        return [row[0] for row in sql_on(url, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    return [row[0] for row in sql_on(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


def test_a_warm_store_whose_database_was_emptied_makes_its_schema_again(new_url: Callable[[], str]) -> None:
    # GIVEN a warm store, whose database is then emptied (dropped and made again, or restored from an old backup)
    url = new_url()
    store = open_store(url)
    try:
        ingest_event(store, load_event("vod_new_file_upload"), received_at=1.0, keys=KEYS)
        for table in _tables(url):
            sql_on(url, f"DROP TABLE {table}" + ("" if url.startswith("sqlite") else " CASCADE"))
        # WHEN events come THEN the first is refused (VOD retries) and the store checks its schema again: no
        # warm container answers 503 until a cold start
        with pytest.raises(StoreUnavailable):
            ingest_event(store, load_event("vod_procedure_finish"), received_at=2.0, keys=KEYS)
        ingest_event(store, load_event("vod_procedure_finish"), received_at=2.0, keys=KEYS)
        assert store.schema_version() == SCHEMA_VERSION and store.event_count() == 1
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_stopped_then_started(own_postgres_server: PostgresServer) -> None:
    server = own_postgres_server
    store = open_store(server.create_database(), timeout_seconds=2)
    try:
        assert deliver(store, "vod_procedure_processing")["status"] == 200  # a pooled connection now exists
        server.stop()
        down = deliver(store)
        assert down["status"] == 503 and down["error"]["code"] == "store_unavailable"
        server.start()
        up = deliver(store)
        assert up["status"] == 200 and up["duplicate"] is False
        upload = store.upload(FILE_ID)
        assert upload is not None and upload.user_id == "alice" and store.event_count() == 2
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "operation",
    [
        lambda store, key: deliver(store)["status"] == 200,
        lambda store, key: store.record_hook_result(key, None) and store.event(key).hook_status == "done",
        lambda store, key: store.upload(FILE_ID) is not None,
    ],
    ids=["ingest", "record_hook_result", "read"],
)
@pytest.mark.parametrize("pooled", [1, EventStore.max_idle_connections])
def test_postgres_restart_between_calls_is_invisible(
    own_postgres_server: PostgresServer, operation: Any, pooled: int
) -> None:
    server = own_postgres_server
    store = open_store(server.create_database())
    try:
        first = load_event("vod_procedure_processing")
        with contextlib.suppress(hook_target.Killed):  # its hook cut short: the event stays owed one ("pending")
            ingest_event(store, first, received_at=1.0, keys=KEYS, after_commit=hook_target.killed)
        held = [store._acquire()[0] for _ in range(pooled)]  # as concurrent requests leave them: all pooled
        for conn in held:
            store._release(conn)
        server.stop()
        server.start()  # the pooled connection is now dead; the store replaces it before anything was sent
        assert operation(store, stored_form(first).key)
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("pooled", [1, EventStore.max_idle_connections])
def test_pooled_connections_idle_too_long_are_closed_not_used(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch, pooled: int
) -> None:
    # A NAT or firewall on the way may forget an idle connection without a word: its next statement would wait
    # DATABASE_TIMEOUT for nothing, then fail (SCF keeps a container, and its pool, for minutes between requests)
    store = open_store(postgres_server.create_database())
    try:
        assert store.event_count() == 0
        held = [store._acquire()[0] for _ in range(pooled)]  # as concurrent requests leave them: all pooled
        for conn in held:
            store._release(conn)
        assert store.event_count() == 0 and store._idle == held  # used again while fresh
        monkeypatch.setattr(postgres, "MAX_IDLE_SECONDS", 0.05)
        time.sleep(0.1)
        assert store.event_count() == 0
        [new] = store._idle
        assert new not in held and all(conn.closed for conn in held)
    finally:
        store.close()


@pytest.mark.postgres
def test_a_connection_lost_once_its_commit_was_sent_is_not_tried_again(own_postgres_server: PostgresServer) -> None:
    # GIVEN a pooled connection (the kind replaced once when found dead), and commits that wait for a standby
    server = own_postgres_server
    url = server.create_database()
    store = open_store(url, timeout_seconds=30)
    payload = load_event("vod_new_file_upload")
    try:
        assert store.schema_version() == SCHEMA_VERSION
        for setting in ("synchronous_commit = on", "synchronous_standby_names = 'absent_standby'"):
            server.execute(f"ALTER SYSTEM SET {setting}")
        server.execute("SELECT pg_reload_conf()")
        # The reload is signalled: once a new session has the setting, the server has sent it to every session,
        # the pooled one too, which then takes it up before its next command (else its COMMIT may not wait)
        for _ in range(200):
            if run_sql(url, "SHOW synchronous_standby_names") == [("absent_standby",)]:
                break
            time.sleep(0.05)
        failures: list[BaseException] = []

        def deliver_once() -> None:
            try:
                ingest_event(store, payload, received_at=1.0, keys=KEYS)
            except StoreUnavailable as exc:
                failures.append(exc)

        delivery = threading.Thread(target=deliver_once)
        delivery.start()
        # WHEN the connection is lost as its COMMIT waits: committed on the server, never acknowledged
        waiting: list[tuple[Any, ...]] = []
        for _ in range(200):
            if waiting := run_sql(url, "SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'"):
                break
            time.sleep(0.05)
        assert waiting, "the commit never waited"
        run_sql(url, "SELECT pg_terminate_backend(%s)", (waiting[0][0],))
        server.execute("ALTER SYSTEM RESET ALL")
        server.execute("SELECT pg_reload_conf()")
        delivery.join(30)
        # THEN the store answers unavailable (VOD delivers again) rather than run the work a second time: whether
        # the commit was made is unknown (here it was), and work run twice is not always harmless (a rerun claiming
        # a hook would find its own claim, and give the hook up)
        assert [type(exc) for exc in failures] == [StoreUnavailable]
        assert ingest_event(store, payload, received_at=2.0, keys=KEYS).duplicate is True  # VOD's second delivery
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_down_at_first_use(own_postgres_server: PostgresServer) -> None:
    server = own_postgres_server
    url = server.create_database()
    server.stop()
    store = open_store(url, timeout_seconds=2)  # a cold start while the database is down
    try:
        assert deliver(store)["status"] == 503
        server.start()
        assert deliver(store)["status"] == 200
        assert store.upload(FILE_ID) is not None
    finally:
        store.close()


def _schema_3(url: str, event_files: int = 0) -> None:
    """A database an older build made: schema 3, with `event_files` rows of one event."""
    open_store(url).schema_version()  # the current schema, then back to 3 (migrations 8 to 4 undone):
    for sql in (
        "DROP INDEX events_unfinished_hooks",
        "ALTER TABLE uploads DROP COLUMN revision",
        "ALTER TABLE tasks DROP COLUMN results_at",
        "ALTER TABLE uploads DROP COLUMN deleted_parts_at",
        "DROP INDEX uploads_by_user_page",
        "CREATE INDEX uploads_by_user ON uploads (user_id, first_seen_at)",
        "ALTER TABLE events DROP COLUMN hook_claimed_at",
        "DROP INDEX event_files_unprojected",
        "ALTER TABLE event_files DROP COLUMN projected",
        "DELETE FROM schema_version WHERE version > 3",
        "INSERT INTO events (dedupe_key, event_type, file_ids, received_at, payload) VALUES ('k', 'T', '[]', 0, '{}')",
        "INSERT INTO event_files (file_id, dedupe_key) "
        f"SELECT 'f' || n, 'k' FROM generate_series(1, {event_files}) AS n",
        # Vacuumed now, as an old database would be: else autovacuum may pick the fresh rows up mid-test, and its
        # table lock outlasts a 20 ms lock wait (a production limit of seconds outlasts deadlock_timeout instead,
        # which cancels an autovacuum that blocks a migration)
        "VACUUM ANALYZE event_files",
    ):
        run_sql(url, sql)


def test_a_migration_outlasting_the_statement_time_limit_still_completes(postgres_server: PostgresServer) -> None:
    # GIVEN a schema-3 database whose schema 4 indexes 300,000 stored file links: far more than 20 ms of work
    url = postgres_server.create_database()
    _schema_3(url, event_files=300_000)
    # WHEN a store whose statements may take 20 ms migrates THEN the index build is not cut off at the limit
    # (it would roll back, and every cold start would try again)
    assert open_store(url, timeout_seconds=0.02).schema_version() == SCHEMA_VERSION


def test_a_migration_waits_for_another_sessions_table_lock_only_as_long_as_any_wait(
    postgres_server: PostgresServer,
) -> None:
    # GIVEN a schema-3 database, and a long read (a dump, say) holding its event_files table
    url = postgres_server.create_database()
    _schema_3(url)
    holder = psycopg2.connect(url)
    holder.cursor().execute("LOCK TABLE event_files IN ACCESS SHARE MODE")
    release = threading.Timer(30.0, holder.commit)  # far past the limit: only then would a waiting migration go on
    release.start()
    try:
        # WHEN a cold start migrates THEN it gives up at the 1 s limit (a 503), instead of queueing ahead of
        # every writer, the schema lock held, until the read ends, long after the function was stopped
        with pytest.raises(StoreUnavailable, match="lock timeout"):
            open_store(url, timeout_seconds=1).schema_version()
        waiting = run_sql(url, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        assert waiting == [(0,)]
    finally:
        release.cancel()
        holder.commit()
        holder.close()
    # AND once the read is over, the next cold start migrates
    assert open_store(url, timeout_seconds=1).schema_version() == SCHEMA_VERSION


class SilencingProxy:
    """TCP to the database's Unix socket, that can go silent: every connection stays open and what either
    side sends is read and dropped (a frozen host, or a network path that drops packets without a reset). Or
    slow: what either side sends arrives `delay` seconds later (a far region's link, a busy server)."""

    def __init__(self, server: PostgresServer) -> None:
        self.upstream = os.path.join(str(server.base), ".s.PGSQL.5432")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.silent = threading.Event()
        self.delay = 0.0
        self.accepted = 0
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.listener.getsockname()[1]}/{dbname}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.accepted += 1
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.upstream)
            self.sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                time.sleep(self.delay)
                if not self.silent.is_set():
                    target.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def test_a_database_that_stops_answering_is_a_503_not_a_hang(postgres_server: PostgresServer) -> None:
    proxy = SilencingProxy(postgres_server)
    store = open_store(proxy.url(database_name(postgres_server.create_database())), timeout_seconds=1)
    try:
        assert deliver(store)["status"] == 200  # a warm connection in the pool
        proxy.silent.set()
        answers: list[dict[str, Any]] = []
        delivery = threading.Thread(target=lambda: answers.append(deliver(store, "vod_procedure_processing")))
        delivery.start()
        delivery.join(30)  # a hang detector, 30 times the limit: libpq alone would wait until SCF's timeout
        assert not delivery.is_alive(), "still waiting for a database that does not answer"
        assert answers[0]["status"] == 503
        assert proxy.accepted == 1  # an unanswered connection is not tried again (that would wait as long again)
        with pytest.raises(StoreUnavailable, match="did not answer within 1 s"):  # a new connection: the same
            store.event_count()
    finally:
        store.close()
        proxy.close()


@pytest.mark.parametrize("bounded", [True, False], ids=["the uploads function's", "vod-uploads'"])
def test_a_bounded_reads_statements_share_one_time_limit(postgres_server: PostgresServer, bounded: bool) -> None:
    # GIVEN a stored upload, read (for its user, as the uploads function reads it) over a warm connection
    proxy = SilencingProxy(postgres_server)
    url = proxy.url(database_name(postgres_server.create_database()))
    deliver(open_store(url, timeout_seconds=1))
    reader = open_store(url, timeout_seconds=1, read_only=True, bounded_reads=bounded)
    try:
        assert reader.user_upload("alice", "5285890784273533167", lambda upload, tasks: upload.file_id)
        # WHEN the database is slow: each statement within the limit, but not a read of several (its record, its
        # tasks' sizes, COMMIT)
        proxy.delay = 0.4  # each way: 0.8 s a statement, within its limit (2 s); the read's three, not
        read = lambda: reader.user_upload("alice", "5285890784273533167", lambda upload, tasks: list(tasks))  # noqa: E731
        if not bounded:  # THEN an operator's read takes as long as it takes, each statement within the limit
            assert read() == []
            return
        # THEN the uploads function's gives up at its limit (DATABASE_TIMEOUT + 1 s), not after all its statements:
        # its answer after a ?wait comes within what serverless.yml's timeout allows for
        with pytest.raises(StoreUnavailable, match="what was left of a read's DATABASE_TIMEOUT"):
            read()
    finally:
        reader.close()
        proxy.close()


def test_of_a_list_of_hosts_a_slow_last_one_has_what_is_left_of_the_time_limit(postgres_server: PostgresServer) -> None:
    # A first host that refuses (an old primary, after a failover), then a slow one: two round trips of 0.9 s to
    # connect (TLS asked for, then the startup), more than an even share of the 3 s limit, but within the limit.
    proxy = SilencingProxy(postgres_server)
    proxy.delay = 0.45
    port = proxy.listener.getsockname()[1]
    store = open_store(
        f"postgresql://postgres@127.0.0.1:1,127.0.0.1:{port}/{database_name(postgres_server.create_database())}",
        timeout_seconds=3,
    )
    try:
        assert store.event_count() == 0
    finally:
        store.close()
        proxy.close()


def test_of_a_list_of_hosts_for_a_standby_first_a_silent_last_one_is_not_waited_for_whole(
    postgres_server: PostgresServer,
) -> None:
    # prefer-standby: libpq's first round looks for a standby (the primary, answering, is passed over), and would
    # wait all of the limit for a frozen one listed last; its second round, for any server, takes the primary.
    proxy = SilencingProxy(postgres_server)
    name = database_name(postgres_server.create_database())
    with socket.create_server(("127.0.0.1", 0)) as frozen:
        hosts = f"127.0.0.1:{proxy.listener.getsockname()[1]},127.0.0.1:{frozen.getsockname()[1]}"
        store = open_store(
            f"postgresql://postgres@{hosts}/{name}?target_session_attrs=prefer-standby", timeout_seconds=2
        )
        try:
            assert store.event_count() == 0
        finally:
            store.close()
            proxy.close()


def test_waits_for_several_files_locks_are_bounded_together_by_the_server(postgres_server: PostgresServer) -> None:
    # GIVEN three files of one event locked by other deliveries, each released within the 2 s limit but all
    # three only after 4.5 s
    url = postgres_server.create_database()
    store = open_store(url, timeout_seconds=2)
    store.schema_version()
    names = ["file:a", "file:b", "file:c"]
    holders = [psycopg2.connect(url) for _ in names]
    for holder, name in zip(holders, names, strict=True):
        holder.cursor().execute("SELECT pg_advisory_lock(%s)", (advisory_key(name),))
    releases = [threading.Timer(1.5 * (i + 1), holder.close) for i, holder in enumerate(holders)]
    for release in releases:
        release.start()
    try:
        # WHEN the event's transaction takes their locks THEN the server ends the wait at the limit (a 503 that
        # says so), not the client's deadline for a database that stopped answering (which waits a second more)
        with pytest.raises(StoreUnavailable, match="QueryCanceled: canceling statement due to statement timeout"):
            store._run(lambda cursor: cursor.execute("SELECT 1"), write=True, locks=names)
    finally:
        for release in releases:
            release.join()
        store.close()


def test_a_client_that_stops_inside_its_transaction_lets_go_of_its_files(postgres_server: PostgresServer) -> None:
    # GIVEN a delivery whose function stopped (a container frozen mid-call) while it held its file's lock
    url = postgres_server.create_database()
    store = open_store(url, timeout_seconds=1)
    store.schema_version()
    holding, resumed, outcome = threading.Event(), threading.Event(), []

    def frozen(cursor: Any) -> None:
        cursor.execute("SELECT 1")  # sent, with the lock
        holding.set()
        time.sleep(8)
        resumed.set()

    def deliver_frozen() -> None:
        try:
            store._run(frozen, write=True, locks=["file:a"])
            outcome.append("committed")
        except StoreUnavailable as exc:
            outcome.append(exc.message)

    delivery = threading.Thread(target=deliver_frozen)
    delivery.start()
    assert holding.wait(30)
    # WHEN the file's next delivery asks for the lock THEN it gets it while the first is still stopped (the server
    # ended that transaction: its limit is 3 times DATABASE_TIMEOUT), and the first, resumed, is a 503
    other = psycopg2.connect(url)
    try:
        other.cursor().execute("SELECT pg_advisory_lock(%s)", (advisory_key("file:a"),))
        assert not resumed.is_set()
    finally:
        other.close()
        delivery.join(30)
        store.close()
    assert len(outcome) == 1 and "idle-in-transaction" in outcome[0], outcome


def test_a_cold_starts_schema_check_has_the_deadline_too(postgres_server: PostgresServer) -> None:
    # Only a migration's own work is unbounded: the check that finds the schema current is not.
    proxy = SilencingProxy(postgres_server)
    url = proxy.url(database_name(postgres_server.create_database()))
    open_store(url).schema_version()  # the schema is current
    unbounded: list[Any] = []
    current = open_store(url, timeout_seconds=1)
    current._unbounded = unbounded.append  # type: ignore[method-assign, assignment]
    assert current.event_count() == 0 and unbounded == []  # nothing to migrate: nothing without a limit
    current.close()
    store = open_store(url, timeout_seconds=1)
    connect = store._connect

    def connect_then_go_silent() -> Any:
        conn = connect()
        proxy.silent.set()
        return conn

    store._connect = connect_then_go_silent  # type: ignore[method-assign]
    answers: list[BaseException] = []

    def count() -> None:
        try:
            store.event_count()
        except StoreUnavailable as exc:
            answers.append(exc)

    try:
        check = threading.Thread(target=count)
        check.start()
        check.join(30)  # a hang detector, 30 times the limit
        assert not check.is_alive(), "the schema check still waits for a database that does not answer"
        assert "did not answer within 2 s" in str(answers[0])
    finally:
        store.close()
        proxy.close()


@pytest.mark.parametrize(("encoding", "stored"), [("SQL_ASCII", True), ("LATIN1", False)])
def test_a_database_of_another_encoding_stores_text_as_utf8_or_is_refused_by_name(
    postgres_server: PostgresServer, encoding: str, stored: bool
) -> None:
    # GIVEN a database made with another encoding than UTF8 (a bare server's default may be SQL_ASCII)
    name = f"enc_{encoding.lower()}_{os.getpid()}"
    provider = " LOCALE_PROVIDER libc" if postgres_server.major_version() >= 15 else ""
    postgres_server.execute(
        f"CREATE DATABASE {name} ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C'{provider} TEMPLATE template0"
    )
    store = open_store(postgres_server.url(name), timeout_seconds=2)
    event = vod_event("NewFileUpload", Name="视频😀")
    try:
        if stored:  # THEN text goes in and comes back as it was
            ingest_event(store, event, received_at=1.0, keys=KEYS)
            upload = store.upload(event["FileUploadEvent"]["FileId"])
            assert upload is not None and upload.name == "视频😀"
        else:  # or the store says what is wrong with the database: never a crash per event
            with pytest.raises(StoreUnavailable, match=f"encoding is {encoding}: the store needs UTF8"):
                ingest_event(store, event, received_at=1.0, keys=KEYS)
    finally:
        store.close()
