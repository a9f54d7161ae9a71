"""Store errors are safe to log: libpq quotes the bad part of a URL, which may be the password."""

from __future__ import annotations

import socket
import traceback
from collections.abc import Iterator

import pytest

from shared.store import StoreUnavailable, open_store
from vodlocal import localstack


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


def test_of_a_list_of_hosts_the_one_that_failed_is_named(silent_port: int) -> None:
    # (a primary refusing at once, then a standby that never answers: the operator is sent to the standby)
    url = f"postgresql://vod:pw@127.0.0.1:1,127.0.0.1:{silent_port}/vod"
    with pytest.raises(StoreUnavailable, match=f"the server at 127.0.0.1, port {silent_port}"):
        open_store(url, timeout_seconds=1).event_count()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://vod:pw@db:5432/vod", "postgresql://vod:********@db:5432/vod"),
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
