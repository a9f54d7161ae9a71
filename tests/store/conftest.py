"""The `store` fixture: every store test runs on SQLite, on a real PostgreSQL server, and on that server
through a real PgBouncer in transaction mode."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.store import EventStore, open_store
from vodtesting.pgserver import database_name, run_sql

BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("pgbouncer", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """Make the URL of a new, empty database of this test's backend."""
    made: list[str] = []

    def make() -> str:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path}/db{len(made)}/vod.sqlite3"
        else:
            url = request.getfixturevalue("postgres_server").create_database()
            if backend == "pgbouncer":
                url = request.getfixturevalue("pgbouncer").url(database_name(url))
        made.append(url)
        return url

    yield make
    if backend != "sqlite":
        server = request.getfixturevalue("postgres_server")
        for url in made:
            server.drop_database(url)


@pytest.fixture
def new_store(new_url: Callable[[], str]) -> Iterator[Callable[[], EventStore]]:
    """Open a store on a new, empty database (closed after the test)."""
    opened: list[EventStore] = []

    def make() -> EventStore:
        opened.append(open_store(new_url()))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(new_store: Callable[[], EventStore]) -> EventStore:
    return new_store()


def sql_on(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """One statement on the database behind `url`, as another program would run it."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute(sql, params).fetchall()
    return run_sql(url, sql.replace("?", "%s"), params)
