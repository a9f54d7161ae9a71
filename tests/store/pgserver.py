"""A throwaway PostgreSQL server: initdb into a private temp dir, Unix socket only (no TCP), fsync off.

Used by the store tests (fixtures below; import them into a conftest) and by the benchmark. initdb
refuses to run as root, so as root the server runs as the `postgres` system user.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER_SETTINGS = {
    "listen_addresses": "''",  # Unix socket only
    "fsync": "off",  # test data: speed over crash safety
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",  # 16 processes + 16 threads + pools, with room
    "shared_buffers": "32MB",
}


def find_bin_dir() -> Path | None:
    """Where initdb/pg_ctl live: PATH first, then the newest /usr/lib/postgresql/*/bin (Debian)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    candidates.sort(key=lambda p: [int(n) for n in re.findall(r"\d+", p)], reverse=True)
    return Path(candidates[0]).parent if candidates else None


class PostgresServer:
    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
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

    def init(self) -> PostgresServer:
        self._pg("initdb", "-D", str(self.data), "-U", self.superuser, "--auth=trust", "-E", "UTF8",
                 "--locale=C", "--no-sync")
        settings = {**SERVER_SETTINGS, "unix_socket_directories": f"'{self.base}'"}
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        return self

    def start(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.superuser}@/{dbname}?host={self.base}&port=5432"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", maxsplit=1)[-1].split("?", maxsplit=1)[0]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.SubprocessError):  # already stopped, or never started
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def start_server() -> PostgresServer:
    """Start a fresh server, or skip the test when PostgreSQL is not installed, but fail under CI
    (CI=true), where a skip would hide that half of the store was never tested."""
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
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI needs PostgreSQL for the store tests: {reason}", pytrace=False)
        pytest.skip(reason)
    assert bin_dir is not None
    server = PostgresServer(bin_dir).init()
    try:
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


@pytest.fixture
def own_postgres_server() -> Iterator[PostgresServer]:
    """A server of this test's own, for tests that stop and start it."""
    server = start_server()
    yield server
    server.destroy()
