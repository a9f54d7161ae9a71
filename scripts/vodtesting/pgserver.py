"""A throwaway PostgreSQL server: initdb into a private temp dir, Unix socket only (no TCP), fsync off;
and a PgBouncer in transaction mode in front of it, as deployments put one between many SCF instances
and one database.

Part of the testing kit: the store tests use it (fixtures below; import them into a conftest), and so
does the benchmark. It talks to the server through psycopg2 (the `postgres` extra, beside `testing`).
initdb and pgbouncer refuse to run as root, so as root they run as the `postgres` system user.
PostgreSQL 13 or newer (`DROP DATABASE … WITH (FORCE)`); from 15 the server sorts text with ICU's en-US.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from vodtesting.ci import missing

SERVER_SETTINGS = {
    "listen_addresses": "''",  # Unix socket only
    "fsync": "off",  # test data: speed over crash safety
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",  # 16 processes + 16 threads + pools, with room
    "shared_buffers": "32MB",
}


# Transaction mode with a pool far smaller than the clients (16 processes in the concurrency test):
# every transaction may land on another server connection, as behind a busy production pooler.
BOUNCER_SETTINGS = {
    "pool_mode": "transaction",
    "default_pool_size": "2",
    "max_client_conn": "200",
    "listen_port": "6432",  # the socket's name (.s.PGSQL.6432) in a private directory; no TCP listener
    "auth_type": "trust",
    "admin_users": "postgres",
}
PGBOUNCER_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def find_bin_dir() -> Path | None:
    """Where initdb/pg_ctl live: PATH first, then the newest /usr/lib/postgresql/*/bin (Debian)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    candidates.sort(key=lambda p: [int(n) for n in re.findall(r"\d+", p)], reverse=True)
    return Path(candidates[0]).parent if candidates else None


# A server as durable as a production one: each commit waits for its WAL on disk (the benchmarks' baseline).
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


class PostgresServer:
    def __init__(self, bin_dir: Path, settings: Mapping[str, str] | None = None) -> None:
        """`settings`: postgresql.conf values over SERVER_SETTINGS (DURABLE, say)."""
        self.bin_dir = bin_dir
        self.settings = {**SERVER_SETTINGS, **(settings or {})}
        self.base = Path(tempfile.mkdtemp(prefix="vod-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.superuser = "postgres"
        self._names = itertools.count(1)
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")  # KeyError: no such user; the caller reports it
            os.chown(self.base, account.pw_uid, account.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]

    def _pg(self, tool: str, *args: str, timeout: float = 60) -> None:
        command = [*self._run_as, str(self.bin_dir / tool), *args]
        result = subprocess.run(command, cwd=self.base, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{result.stdout}{result.stderr}\n{log}")

    def init(self) -> None:
        # Text sorts as on most managed servers (an en-US collation), not by code point: nothing may rely on it.
        # ICU as a database's default came in PostgreSQL 15; an older server sorts by code point (C).
        icu = ("--locale-provider=icu", "--icu-locale=en-US") if self.major_version() >= 15 else ()
        self._pg(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.superuser,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            *icu,
            "--no-sync",
        )
        settings = {**self.settings, "unix_socket_directories": f"'{self.base}'"}
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def major_version(self) -> int:
        answer = subprocess.run(
            [str(self.bin_dir / "initdb"), "--version"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
        found = re.search(r"\) (\d+)", answer)  # "initdb (PostgreSQL) 15.5 (Debian …)"
        if found is None:
            raise RuntimeError(f"initdb --version answered {answer.strip()!r}, not a PostgreSQL version")
        return int(found.group(1))

    def start(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.superuser}@/{dbname}?host={self.base}&port=5432"

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        """Run one statement as the superuser, outside any transaction (CREATE DATABASE needs that)."""
        run_sql(self.url(dbname), sql)

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.SubprocessError):  # already stopped, or never started
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def run_sql(url: str, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
    """One statement in autocommit mode on a new connection; its rows, if it returns any."""
    return _query(url, sql, params)[1]


def _query(url: str, sql: str, params: tuple[Any, ...] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The same, with its column names."""
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=2)
    try:
        conn.autocommit = True  # one statement; pgbouncer's admin console has no transactions at all
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.description is None:
                return [], []
            return [column.name for column in cursor.description], cursor.fetchall()
    finally:
        conn.close()


class PgBouncer:
    """pgbouncer in the foreground, Unix socket only, forwarding every database name to `server`."""

    def __init__(self, server: PostgresServer, binary: str) -> None:
        self.server = server
        self.dir = server.base / "bouncer"
        self.dir.mkdir()
        (self.dir / "users.txt").write_text(f'"{server.superuser}" ""\n')
        settings = {
            **BOUNCER_SETTINGS,
            "unix_socket_dir": str(self.dir),
            "auth_file": str(self.dir / "users.txt"),
            "logfile": str(self.dir / "pgbouncer.log"),
        }
        (self.dir / "pgbouncer.ini").write_text(
            f"[databases]\n* = host={server.base} port=5432\n[pgbouncer]\n"
            + "".join(f"{name} = {value}\n" for name, value in settings.items())
        )
        if server._run_as:
            shutil.chown(self.dir, "postgres", "postgres")
        # Nothing reads its stdout/stderr while the tests run: a pipe would fill up and stall pgbouncer. It
        # logs to its logfile as well.
        self.process = subprocess.Popen(
            [*server._run_as, binary, str(self.dir / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.server.superuser}@/{dbname}?host={self.dir}&port={BOUNCER_SETTINGS['listen_port']}"

    def wait_ready(self, timeout: float = 20) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                log = self.dir / "pgbouncer.log"
                raise RuntimeError(f"pgbouncer exited: {log.read_text()[-2000:] if log.exists() else ''}")
            try:
                run_sql(self.url(), "SELECT 1")
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def show(self, what: str) -> list[dict[str, Any]]:
        """The admin console's SHOW <what> (SHOW CONFIG, SHOW POOLS, …)."""
        names, rows = _query(self.url("pgbouncer"), f"SHOW {what}")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def bouncer_binary() -> str:
    """The pgbouncer binary; the test skips (fails in CI) without one."""
    binary = shutil.which("pgbouncer") or next((p for p in PGBOUNCER_PATHS if os.path.exists(p)), None)
    if binary is None:
        missing("PgBouncer", "pgbouncer not found on PATH or in /usr/sbin (apt-get install pgbouncer)")
    return binary


def start_bouncer(server: PostgresServer) -> PgBouncer:
    binary = bouncer_binary()
    bouncer = PgBouncer(server, binary)
    try:
        bouncer.wait_ready()
    except BaseException:
        bouncer.stop()
        raise
    return bouncer


def start_server() -> PostgresServer:
    """Start a fresh server, or skip the test when PostgreSQL is not installed (fail under CI)."""
    bin_dir = find_bin_dir()
    reason = None
    if bin_dir is None:
        reason = "PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin"
    elif os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            reason = "running as root and there is no 'postgres' user to run the server as"
    if reason is not None:
        missing("PostgreSQL", reason)
    assert bin_dir is not None
    return launch(bin_dir)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def launch(bin_dir: Path, settings: Mapping[str, str] | None = None) -> PostgresServer:
    """A new server, made and started; when either fails, nothing is left of it (its temp dir included).

    From then on SIGTERM (a CI job cancelled, `timeout`, a killed xdist worker) ends the process as Ctrl-C does,
    so that the fixtures' teardown runs: pg_ctl detaches the server, and by default SIGTERM would leave it, the
    PgBouncer and their temp dir behind. Only where SIGTERM is Python's default still, on the main thread."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)
    server = PostgresServer(bin_dir, settings)
    try:
        server.init()
        server.start()
    except BaseException:
        server.destroy()
        raise
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One server for the whole session (each test gets its own database on it)."""
    server = start_server()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def pgbouncer(postgres_server: PostgresServer) -> Iterator[PgBouncer]:
    """One transaction-mode PgBouncer in front of the session's server."""
    bouncer = start_bouncer(postgres_server)
    yield bouncer
    bouncer.stop()


@pytest.fixture
def own_postgres_server() -> Iterator[PostgresServer]:
    """A server of this test's own, for tests that stop and start it."""
    server = start_server()
    yield server
    server.destroy()
