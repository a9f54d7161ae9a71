"""Store errors are safe to log: libpq quotes the bad part of a URL, which may be the password."""

from __future__ import annotations

import pytest

from shared.store import StoreUnavailable, open_store


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("postgresql://vod:Super Secret'Pw@/vod", "Super Secret'Pw"),
        ("postgresql://vod:pa%zzss@127.0.0.1:1/vod", "pa%zzss"),
        ("postgresql://vod:s%20cret@127.0.0.1:1/vod", "s cret"),
    ],
)
def test_postgres_errors_never_carry_the_password(url: str, password: str) -> None:
    store = open_store(url, timeout_seconds=1)
    with pytest.raises(StoreUnavailable) as caught:
        store.event_count()
    message = str(caught.value)
    assert message and password not in message
