"""PostgreSQL backend (psycopg2): asynchronous (so autocommit) connections with explicit transactions and a
deadline on every wait, transaction-scoped advisory locks for the per-file serialization, and as few round
trips as the logic allows.

psycopg2 rather than psycopg 3: its import is about a quarter of psycopg 3's, which is most of a
callback's cold start (`make bench ARGS=callback`). It binds parameters on the client, so statements
whose results nothing reads (BEGIN, SET LOCAL, the locks, writes) wait and travel with the next one that
is read, or with the COMMIT: an event costs three round trips, not ten.

Nothing outlives a transaction on the server side, so the store works through a pooler in transaction
mode (PgBouncer, TencentDB's database proxy), which hands each transaction to any server connection: no
prepared statements (psycopg2 never prepares), no session settings, only transaction-scoped locks."""

from __future__ import annotations

import contextlib
import hashlib
import select
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any, cast

import psycopg2
import psycopg2.extensions

from shared.config import hide_database_password
from shared.errors import StoreUnavailable
from shared.store.base import Cursor, EventStore


@cache
def _pg_sql(text: str) -> str:
    # The shared SQL uses `?` placeholders and no literal `?` or `%`.
    return text.replace("?", "%s")


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key per lock name (Python's hash() differs between processes)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


class _Connection(psycopg2.extensions.connection):
    # (host, port) of the server that stopped answering, when it did: closed, a second try would wait as long again
    silent_server: tuple[str, int] | None = None
    pooled_at = 0.0  # when it went back to the pool (time.monotonic)


# A pooled connection idle longer is closed, not used again: a NAT or firewall on the way may have forgotten it
# without a word (its next statement would wait DATABASE_TIMEOUT for nothing, then fail), as shared.vod_cloud_api's.
MAX_IDLE_SECONDS = 50


Server = tuple[str, str, str]  # one of a connection string's list of hosts: (host, hostaddr, port), as written


def _wait(
    conn: _Connection, seconds: float | None, *, silence: float | None = None, last: Server | None = None
) -> None:
    """Drive an asynchronous connection's operation to its end. libpq itself would wait for a server that
    has gone silent (a frozen host, a path that drops packets without a reset) until SCF ends the
    invocation; here, after `seconds`, the connection is given up and the caller answers 503. `silence`: while
    connecting to one of a list of hosts, how long a server may send nothing before it is given up (so the next
    can be tried), but for the last one (`last`), which may take what is left of `seconds`."""
    deadline = None if seconds is None else time.monotonic() + seconds
    heard = time.monotonic()
    while (state := conn.poll()) != psycopg2.extensions.POLL_OK:
        now = time.monotonic()
        limit, left = seconds, None if deadline is None else max(0.0, deadline - now)
        if silence is not None and not (last and _is(last, conn.info.host, conn.info.port)):
            quiet = max(0.0, heard + silence - now)
            if left is None or quiet < left:
                limit, left = silence, quiet
        # poll, not select: select refuses a descriptor numbered 1024 or more (a process with many files open)
        waiting = select.poll()
        waiting.register(conn.fileno(), select.POLLIN if state == psycopg2.extensions.POLL_READ else select.POLLOUT)
        if not waiting.poll(None if left is None else left * 1000):
            where, conn.silent_server = _server(conn), (conn.info.host, conn.info.port)
            conn.close()
            raise psycopg2.OperationalError(f"the database ({where}) did not answer within {limit:.2g} s")
        heard = time.monotonic()


def _servers(url: str) -> tuple[dict[str, str], list[Server]]:
    """`url`'s parameters, and its list of hosts (one port written: each host's)."""
    params: dict[str, str] = psycopg2.extensions.parse_dsn(url)
    lists = [params.get(name, "").split(",") for name in ("host", "hostaddr", "port")]
    count = max(map(len, lists))
    names, addresses, ports = (values * count if len(values) == 1 else values for values in lists)
    return params, list(zip(names, addresses, ports, strict=True))


def _is(server: Server, host: str, port: int) -> bool:
    """Whether libpq's current host and port (PQhost, PQport) are those of `server` ("" port: the default)."""
    return host in server[:2] and server[2] in ("", str(port))


def _out_of_order(params: dict[str, str]) -> bool:
    """Whether libpq may try the hosts out of their order (at random), or come back to some (a first round for a
    standby, then one for any server)."""
    return params.get("load_balance_hosts") == "random" or params.get("target_session_attrs") == "prefer-standby"


def _last(params: dict[str, str], servers: list[Server]) -> Server | None:
    """The server libpq tries last, when that is known and no other of the list reads as it (PQhost gives a host's
    name, not the address it was given for it)."""

    def shown(server: Server) -> tuple[str, str]:
        return server[0] or server[1], server[2]

    last = servers[-1]
    return None if _out_of_order(params) or any(shown(s) == shown(last) for s in servers[:-1]) else last


def _without_server(url: str, host: str, port: int) -> str | None:
    """`url` with only the hosts libpq has yet to try after the server at `host`:`port` never answered (it moves on
    from one that refuses, not from that); None when there is none."""
    params, servers = _servers(url)
    other = [not _is(server, host, port) for server in servers]
    if all(other):
        return None  # not one of the list: nothing known to leave out
    # Those before it failed already, unless libpq may try them again.
    again = _out_of_order(params)
    kept = [server for i, server in enumerate(servers) if other[i] and (again or i > other.index(False))]
    if not kept:
        return None
    written = {name: params.get(name) for name in ("host", "hostaddr", "port")}
    rest = {name: ",".join(server[i] for server in kept) for i, name in enumerate(written) if written[name] is not None}
    return str(psycopg2.extensions.make_dsn(**{**params, **rest}))


def _server(conn: _Connection) -> str:
    """The server the connection is to, or was trying (of a list of hosts): asynchronous libpq's errors leave it out."""
    return f"the server at {conn.info.host}, port {conn.info.port}"


class _BatchingCursor(psycopg2.extensions.cursor):
    """`defer`red statements are sent with the next `execute` (one round trip, one implicit order);
    `rowcount` and the rows are the last statement's, the one the caller executed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[str] = []
        self._pending_params: list[Any] = []
        self.sent = False  # something reached the server: a failure needs a ROLLBACK
        self.wait_seconds: float | None = None  # how long an answer may take (None: as long as it takes)
        self.deadline: float | None = None  # when a reader's answers, all together, must have come (time.monotonic)

    def defer(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._pending.append(sql)
        self._pending_params.extend(params)

    def execute(self, query: Any, vars: Any = None) -> None:
        # Parameters always go with the text (an empty list too), so a literal % is never special in one
        # batch and plain in another: the shared SQL has none.
        params = [*self._pending_params, *(vars or ())]
        if self._pending:
            query = ";\n".join([*self._pending, query])
            self._pending, self._pending_params = [], []
        self.sent = True
        super().execute(query, params)
        if self.deadline is None:
            _wait(cast(_Connection, self.connection), self.wait_seconds)
            return
        try:
            _wait(cast(_Connection, self.connection), max(0.0, self.deadline - time.monotonic()))
        except psycopg2.OperationalError as exc:
            raise psycopg2.OperationalError(f"{exc}: what was left of a read's DATABASE_TIMEOUT + 1 s") from None


# UTF8, or SQL_ASCII (which keeps the bytes it is given: UTF-8 in, UTF-8 out).
_TEXT_ENCODINGS = frozenset({"UTF8", "SQL_ASCII"})


class PostgresStore(EventStore):
    errors = (psycopg2.Error,)
    _bytes_of = "octet_length"  # from the value's header: a large (TOASTed) one is not decompressed for it

    def __init__(
        self, url: str, *, timeout_seconds: float, read_only: bool = False, bounded_reads: bool = False
    ) -> None:
        super().__init__(read_only=read_only)
        self._url = url
        self._timeout = timeout_seconds
        self._bounded_reads = bounded_reads

    def _redact(self, text: str) -> str:
        # libpq quotes the bad part of a URL, which may be the password (or the whole URL)
        return hide_database_password(text.replace(self._url, "********"), self._url)

    def _connect(self) -> _Connection:
        # Asynchronous, so that every wait is bounded (_wait); and so autocommit: BEGIN and COMMIT are ours,
        # which lets them share round trips.
        # Text goes both ways as UTF-8, whatever the server's default for its clients (a name in Chinese would
        # otherwise not encode for a database of another encoding: a crash that VOD retries forever).
        # Of a list of hosts, each that sends nothing for its even share of what is left of the time limit is given
        # up, and the next tried within it: the whole connection stays within the limit.
        dsn, deadline, passed_over = self._url, time.monotonic() + self._timeout, list[str]()
        while True:
            params, servers = _servers(dsn)
            left, conn = max(0.0, deadline - time.monotonic()), None
            if passed_over and not left:
                raise psycopg2.OperationalError("; then ".join([*passed_over, "no time was left for the next host"]))
            try:
                conn = psycopg2.connect(
                    dsn,
                    async_=True,
                    connection_factory=_Connection,
                    application_name="vod-events",
                    client_encoding="UTF8",
                )
                _wait(
                    conn, left, silence=left / len(servers) if len(servers) > 1 else None, last=_last(params, servers)
                )
                break
            except psycopg2.OperationalError as exc:
                why = str(exc).strip()
                others = conn is not None and conn.silent_server and _without_server(dsn, *conn.silent_server)
                if others:
                    passed_over.append(why)
                    dsn = others
                    continue
                if conn is not None and not conn.closed:  # else given up by _wait, which named the server
                    why = f"connecting to {_server(conn)}: {why}"
                    conn.close()
                raise psycopg2.OperationalError("; then ".join([*passed_over, why])) from None
        encoding = conn.info.parameter_status("server_encoding")
        if encoding not in _TEXT_ENCODINGS:  # it cannot store what events name: said at once, not per event
            conn.close()
            raise StoreUnavailable(
                f"the database's encoding is {encoding}: the store needs UTF8 "
                "(CREATE DATABASE vod ENCODING 'UTF8' TEMPLATE template0)"
            )
        return conn

    @contextmanager
    def _transaction(self, conn: _Connection, *, write: bool) -> Iterator[Cursor]:
        cursor = conn.cursor(cursor_factory=_BatchingCursor)
        # The server's limits below answer first; this one is for a server that cannot answer at all (but for a
        # bounded read's, below).
        cursor.wait_seconds = self._timeout + 1
        # A writer is READ COMMITTED, named (a database or role may default to another level): after waiting for
        # a file's lock, the next SELECT takes a fresh snapshot and sees the event the previous lock holder
        # committed (a first snapshot taken while waiting would not, nor the schema another cold start made). A
        # reader takes one snapshot for all its statements, so a record is never read older than its tasks
        # (read-only: it never conflicts; and a read-only store never writes).
        writer = write and not self.read_only
        if self._bounded_reads and not writer:
            # A read bounded as a whole, not each of its statements: the uploads function's answer after a ?wait
            # comes within a connection's and a read's limits (serverless.yml's timeout counts on that).
            cursor.deadline = time.monotonic() + self._timeout + 1
        cursor.defer(
            "BEGIN ISOLATION LEVEL READ COMMITTED" if writer else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        )
        # Bounded waits (lock queues included): a stuck store answers 503 before SCF times out. And a client that
        # stops inside its transaction (a container frozen or cut off mid-call) lets go of its files' locks soon,
        # not when TCP notices: nothing of ours idles there longer than Python between two statements.
        # And floats read back as written (a hook's claim time is compared with what was read; PostgreSQL 11 and
        # older, or a role set so, print 15 digits). SET LOCAL, per transaction: a session-wide SET would stay
        # behind on a pooled server connection.
        limit = int(self._timeout * 1000)
        cursor.defer(
            f"SET LOCAL statement_timeout = {limit}; SET LOCAL idle_in_transaction_session_timeout = {3 * limit}; "
            "SET LOCAL extra_float_digits = 3"
        )
        if writer:
            # A writer's COMMIT answers once the WAL is on disk, as the 200 or ConfirmEvents after it promises, even
            # where a database, role or server defaults to synchronous_commit = off (a crash would lose what VOD
            # was told was stored); a stronger setting (remote_apply, say) is kept.
            cursor.defer(
                "SELECT set_config('synchronous_commit', 'on', true) "
                "WHERE current_setting('synchronous_commit') = 'off'"
            )
        try:
            yield cursor
            cursor.execute("COMMIT")  # with every write still deferred
        except BaseException:
            if cursor.sent and not conn.closed:
                with contextlib.suppress(psycopg2.Error):  # the original error matters more
                    conn.cursor().execute("ROLLBACK")
                    _wait(conn, self._timeout)
            raise
        finally:
            cursor.close()

    def _lock(self, cursor: Cursor, names: Sequence[str]) -> None:
        # One statement, in the names' order: statement_timeout bounds the wait for all of them together, so a
        # round trip stays within the client's deadline however many files an event names.
        keys = [advisory_key(name) for name in names]
        cursor.defer("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k", (keys,))

    def _unbounded(self, cursor: Cursor) -> None:
        # Only the work is unbounded: waiting for another session's table lock (a long read, a dump) keeps the
        # limit, or the migration would queue, holding the schema lock, ahead of every writer, past the function.
        cursor.defer(f"SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = {int(self._timeout * 1000)}")
        assert isinstance(cursor, _BatchingCursor)
        cursor.wait_seconds = None

    def _sql(self, text: str) -> str:
        return _pg_sql(text)

    def _broken(self, conn: _Connection) -> bool:
        return bool(conn.closed) and conn.silent_server is None  # dead (worth one more try), not unanswered

    def _pooled(self, conn: _Connection) -> None:
        conn.pooled_at = time.monotonic()

    def _fresh(self, conn: _Connection) -> bool:
        return time.monotonic() - conn.pooled_at <= MAX_IDLE_SECONDS
