"""Store errors are safe to log: libpq quotes the bad part of a URL, which may be the password."""

from __future__ import annotations

import socket
import traceback
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from psycopg2.extensions import parse_dsn

from shared.config import hide_database_password
from shared.store import StoreUnavailable, open_store
from shared.store.postgres import _without_server
from tests.conftest import closed_loopback_port
from vodlocal import localstack
from vodtesting.pgserver import PostgresServer, database_name


@pytest.mark.parametrize(
    ("url", "password", "raised"),
    [
        ("postgresql://vod:Super Secret'Pw@/vod", "Super Secret'Pw", StoreUnavailable),
        ("postgresql://vod:s%20cret@127.0.0.1:1/vod", "s cret", StoreUnavailable),
        # A bad escape is refused before libpq sees it (and would quote it), as a settings error.
        ("postgresql://vod:pa%zzss@127.0.0.1:1/vod", "pa%zzss", ValueError),
        ("postgresql://vod@127.0.0.1:1/vod?password=S3cr%t!", "S3cr%t!", ValueError),  # libpq's other place for it
        ("postgresql://vod@127.0.0.1:1/vod?sslmode=disable&sslpassword=k%zzey", "k%zzey", ValueError),
    ],
)
def test_postgres_errors_never_carry_the_password(url: str, password: str, raised: type[Exception]) -> None:
    with pytest.raises(raised) as caught:
        open_store(url, timeout_seconds=1).event_count()
    message = str(caught.value)
    assert message and password not in message
    # Uncaught (a tool's start, a one-line migration), its traceback shows no driver error quoting the URL.
    assert password not in "".join(traceback.format_exception(caught.value))


@pytest.mark.parametrize("password", ["p", "on", "p%40"])
def test_a_short_password_is_hidden_without_garbling_the_message(password: str) -> None:
    # Masked wherever it stood, "p" made "O********erationalError … ********ort 1"
    with pytest.raises(StoreUnavailable) as caught:
        open_store(
            f"postgresql://vod:{password}@127.0.0.1:{closed_loopback_port()}/vod", timeout_seconds=1
        ).event_count()
    assert caught.value.message.startswith("OperationalError: connecting to the server at 127.0.0.1, port ")
    assert "Is the server running on that host and accepting TCP/IP connections?" in caught.value.message


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:********@h/db"),
        ("dsn: password=pw, host=h", "dsn: password=********, host=h"),
        ("(password=pw)", "(password=********)"),
        ("password='pw'; host", "password='********'; host"),
        ("u:pw_x@h and pw in a word: pwd", "u:pw_x@h and pw in a word: pwd"),  # not the password where it stands
    ],
)
def test_a_short_password_is_masked_where_a_url_or_connection_string_holds_it(text: str, shown: str) -> None:
    assert hide_database_password(text, "postgresql://u:pw@h/db") == shown


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never answers (a frozen host)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


@pytest.mark.parametrize("silent", [False, True], ids=["refused", "never-answers"])
def test_a_connection_that_fails_names_the_server_it_was_to(silent_port: int, silent: bool) -> None:
    # What an operator checks first (a wrong host or port in DATABASE_URL); the password still hidden
    port = silent_port if silent else 1
    with pytest.raises(StoreUnavailable) as caught:
        open_store(f"postgresql://vod:pw-{port}@127.0.0.1:{port}/vod", timeout_seconds=1).event_count()
    assert f"the server at 127.0.0.1, port {port}" in caught.value.message
    assert f"pw-{port}" not in caught.value.message


@pytest.mark.parametrize("silent_first", [False, True], ids=["refused-then-silent", "silent-then-refused"])
def test_of_a_list_of_hosts_each_that_failed_is_named(silent_port: int, silent_first: bool) -> None:
    # (a primary refusing at once, then a standby that never answers: the operator is sent to the standby)
    hosts = [f"127.0.0.1:{silent_port}", "127.0.0.1:1"][:: 1 if silent_first else -1]
    with pytest.raises(StoreUnavailable) as caught:
        open_store(f"postgresql://vod:pw@{','.join(hosts)}/vod", timeout_seconds=1).event_count()
    said = caught.value.message  # (the last of the list may take all that is left of the time limit)
    assert f"the server at 127.0.0.1, port {silent_port}) did not answer within {0.5 if silent_first else 1} s" in said
    assert ("connecting to the server at 127.0.0.1, port 1: Connection refused" in said) is silent_first


def test_each_host_of_a_long_list_is_named_whole(silent_port: int) -> None:
    # Names as TencentDB gives them (hostaddr: no name is looked up), each frozen: none cut off the error
    names = [f"pg-{i}-a1b2c3d4.sql.tencentcdb.com" for i in range(3)]
    url = f"postgresql://vod@{','.join(names)}/vod?hostaddr={','.join(['127.0.0.1'] * 3)}&port={silent_port}"
    with pytest.raises(StoreUnavailable) as caught:
        open_store(url, timeout_seconds=1).event_count()
    assert [f"the server at {name}, port {silent_port})" in caught.value.message for name in names] == [True] * 3


def test_a_next_host_that_fails_at_once_keeps_the_one_passed_over_named(silent_port: int) -> None:
    # libpq refuses a missing socket directory before any wait: the frozen host before it is still named
    url = f"postgresql://vod:pw@127.0.0.1:{silent_port},%2Fno-such-directory:5432/vod"
    with pytest.raises(StoreUnavailable) as caught:
        open_store(url, timeout_seconds=1).event_count()
    said = caught.value.message
    assert f"port {silent_port}) did not answer within 0.5 s; then " in said and "/no-such-directory/" in said


@pytest.mark.postgres
@pytest.mark.parametrize("listed", ["host-and-port", "host-list-port-list"])
def test_of_a_list_of_hosts_one_that_never_answers_is_passed_over(
    silent_port: int, postgres_server: PostgresServer, listed: str
) -> None:
    # libpq moves on from a host that refuses, not from one that never answers (a frozen primary): the store
    # gives it a share of DATABASE_TIMEOUT, then tries the next within the rest.
    name, socket_dir = database_name(postgres_server.create_database()), postgres_server.base
    user = postgres_server.superuser
    url = {
        "host-and-port": f"postgresql://{user}@127.0.0.1:{silent_port},{quote(str(socket_dir), safe='')}:5432/{name}",
        "host-list-port-list": f"postgresql://{user}@/{name}?host=127.0.0.1,{socket_dir}&port={silent_port},5432",
    }[listed]
    store = open_store(url, timeout_seconds=2)
    try:
        assert store.event_count() == 0
    finally:
        store.close()
        postgres_server.drop_database(postgres_server.url(name))


@pytest.mark.parametrize(
    ("url", "server", "rest"),  # rest: the URL left, without dbname and password
    [
        ("host=a,b,c port=1,2,3", ("b", 2), "host=c port=3"),  # those before it failed already
        ("host=a,b,c port=1,2,3 load_balance_hosts=random", ("b", 2), "host=a,c port=1,3 load_balance_hosts=random"),
        # a first round for a standby, then one for any server: libpq comes back to those before it
        (
            "host=a,b,c port=1,2,3 target_session_attrs=prefer-standby",
            ("b", 2),
            "host=a,c port=1,3 target_session_attrs=prefer-standby",
        ),
        ("host=a,b port=5432", ("a", 5432), "host=b port=5432"),  # one port serves every host
        ("host=a,b,a port=1,2,1", ("a", 1), "host=b port=2"),  # listed twice: the same server
        ("host=a,a port=1,2", ("a", 1), "host=a port=2"),  # one host, two servers
        ("host=a,b port=,2", ("a", 5432), "host=b port=2"),  # an empty port: the default
        ("host=a,b hostaddr=10.0.0.1,10.0.0.2 port=1,1", ("a", 1), "host=b hostaddr=10.0.0.2 port=1"),
        ("hostaddr=10.0.0.1,10.0.0.2", ("10.0.0.1", 5432), "hostaddr=10.0.0.2"),
        ("host=a port=1", ("a", 1), None),  # no other host
        ("host=a,b port=1,2", ("b", 2), None),  # the last
        ("host=a,b port=1,2", ("c", 1), None),  # not one of the list: nothing known to leave out
        ("host=a,a port=1", ("a", 1), None),  # every one is that server
    ],
)
def test_the_hosts_left_after_one_never_answers(url: str, server: tuple[str, int], rest: str | None) -> None:
    left = _without_server(f"dbname=vod password=pw {url}", *server)
    assert (left and parse_dsn(left)) == (rest and parse_dsn(f"dbname=vod password=pw {rest}"))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://vod:pw@db:5432/vod", "postgresql://vod:********@db:5432/vod"),
        ("postgresql://pw:pw@db:5432/vod?sslmode=require", "postgresql://pw:********@db:5432/vod?sslmode=require"),
        (
            "postgresql://vod@db/vod?password=p%40ss&sslmode=require",
            "postgresql://vod@db/vod?password=********&sslmode=require",
        ),
        ("postgresql://vod@db/vod?sslmode=require", "postgresql://vod@db/vod?sslmode=require"),
        ("sqlite:///.local/vod.sqlite3", "sqlite:///.local/vod.sqlite3"),
    ],
)
def test_the_local_stack_prints_database_urls_without_their_password(url: str, shown: str) -> None:
    assert localstack.shown_url(url) == shown
