"""Through a transaction-mode pooler (PgBouncer), as many SCF instances share one database: nothing the
store relies on may outlive a transaction on a server connection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.errors
import pytest

from shared.ingest import ingest_event
from shared.store import StoreUnavailable, open_store
from shared.store.postgres import advisory_key
from tests.conftest import KEYS
from tests.scf import load_event
from tests.store.test_store import FILE_ID, ingest
from vodtesting.pgserver import PgBouncer, PostgresServer, database_name

pytestmark = pytest.mark.postgres


@pytest.fixture
def bounced_database(postgres_server: PostgresServer, pgbouncer: PgBouncer) -> Iterator[tuple[str, str]]:
    """A fresh database: (its URL through the pooler, its direct URL)."""
    direct = postgres_server.create_database()
    yield pgbouncer.url(database_name(direct)), direct
    postgres_server.drop_database(direct)


def test_the_pooler_really_pools_by_transaction(pgbouncer: PgBouncer, bounced_database: tuple[str, str]) -> None:
    # GIVEN two clients of a transaction-mode pooler, and session state (a prepared statement) left by one
    assert {row["key"]: row["value"] for row in pgbouncer.show("CONFIG")}["pool_mode"] == "transaction"
    url, _ = bounced_database
    first, second = psycopg2.connect(url), psycopg2.connect(url)
    try:
        first.autocommit = second.autocommit = True
        first.cursor().execute("PREPARE vod_probe AS SELECT 1")
        # WHEN the second client's statement lands on the server connection the first one prepared on
        # THEN the names collide: session state leaks between clients, which is what the store must never leave
        with pytest.raises(psycopg2.errors.DuplicatePreparedStatement):
            second.cursor().execute("PREPARE vod_probe AS SELECT 2")
    finally:
        first.close()
        second.close()


def test_many_stores_share_a_small_pool(bounced_database: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN more stores (warm instances) than server connections, each counting the connections it opens
    url, _ = bounced_database
    stores = [open_store(url) for _ in range(4)]
    connects: list[int] = []
    for number, store in enumerate(stores):

        def counted(opened: Any = store._connect, number: int = number) -> Any:
            connects.append(number)
            return opened()

        monkeypatch.setattr(store, "_connect", counted)
    try:
        # WHEN each runs every statement several times, on whichever server connection is free
        for round_ in range(8):
            for number, store in enumerate(stores):
                payload = {**load_event("vod_new_file_upload"), "Round": [round_, number]}
                assert not ingest_event(store, payload, received_at=1.0, keys=KEYS).duplicate
        # THEN all is stored, and no statement ever failed: one connection per store, never replaced
        # (a failed statement on a pooled connection costs a reconnect and a retry)
        assert stores[0].event_count() == 8 * 4
        assert sorted(connects) == [0, 1, 2, 3]
    finally:
        for store in stores:
            store.close()


@pytest.mark.parametrize("through_pooler", [False, True], ids=["direct", "pgbouncer"])
def test_a_held_file_lock_costs_the_timeout_not_the_invocation(
    bounced_database: tuple[str, str], through_pooler: bool
) -> None:
    # GIVEN another instance holding the lock of a file (mid-delivery), directly on the server
    bounced, direct = bounced_database
    store = open_store(bounced if through_pooler else direct, timeout_seconds=1)
    try:
        ingest(store, "vod_procedure_processing")  # schema created, connection pooled
        holder = psycopg2.connect(direct)  # a transaction, left open while this store tries
        try:
            holder.cursor().execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(f"file:{FILE_ID}"),))
            # WHEN this store delivers an event of that file
            with pytest.raises(StoreUnavailable, match="statement timeout"):
                ingest(store, "vod_new_file_upload")
        finally:
            holder.close()  # the lock goes with its transaction
        # THEN it gave up at its own statement timeout (a 503, so VOD retries), and works once the lock is free
        assert not ingest(store, "vod_new_file_upload").duplicate
    finally:
        store.close()
