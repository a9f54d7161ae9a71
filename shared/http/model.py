"""The one request/response model every HTTP function works with, whatever SCF trigger delivered it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType

from shared.records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, overload


def _repeated(raw: Mapping[str, str]) -> list[str]:
    seen: set[str] = set()
    repeated = []
    for name in raw:
        lowered = name.lower()
        if lowered in seen:
            repeated.append(lowered)
        seen.add(lowered)
    return repeated


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only header mapping (SCF sends both `Content-Type` and `content-type`)."""

    def __init__(self, raw: Mapping[str, str], several: Iterable[str] = ()) -> None:
        """`several`: names the event gave more than one value (a list) for; `raw` holds the first."""
        self._items = {k.lower(): v for k, v in raw.items()}
        # Names sent more than once, in different case (the event is a JSON object, so exact repeats are
        # impossible) or as a list: a trusted header must not be silently replaced by a client's copy.
        repeated = _repeated(raw) if len(self._items) != len(raw) else []
        self._ambiguous = frozenset([*repeated, *(name.lower() for name in several)])

    def is_ambiguous(self, name: str) -> bool:
        return name.lower() in self._ambiguous

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    if TYPE_CHECKING:  # typing.overload only for mypy: importing typing costs every cold start

        @overload  # type: ignore[override]
        def get(self, name: str) -> str | None: ...

        @overload
        def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        # Mapping.get would go through __getitem__ and a KeyError: on the hot path, avoid the raise.
        return self._items.get(name.lower(), default)

    def __repr__(self) -> str:  # never print header values: they carry credentials
        return f"Headers({sorted(self._items)})"


# Records are shared.records.Record (NamedTuples), not dataclasses, here and in every function: importing
# dataclasses (it imports inspect) costs ~8 ms of a cold start, and building each frozen dataclass ~0.3 ms more.


class Request(Record):
    method: str
    path: str
    headers: Headers
    query: Mapping[str, str]
    body: bytes
    request_id: str
    raw: Mapping[str, Any]
    # Facts the endpoint learns (e.g. the user id) for the request's log line.
    notes: dict[str, Any]
    # Query names sent more than once (API gateway gives their values as a list; `query` has the first): an endpoint
    # whose parameters choose what it answers refuses them, as which one the client meant is in doubt.
    repeated: frozenset[str] = frozenset()

    def __repr__(self) -> str:  # not the raw event nor the body: they carry credentials
        return f"Request({self.method} {self.path!r}, request_id={self.request_id!r}, headers={self.headers!r})"


NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class Response(Record):
    status: int
    body: Mapping[str, Any] | None = None  # sent as JSON
    headers: Mapping[str, str] = NO_HEADERS
    content: bytes | None = None  # sent as is (base64 in the SCF response), typed by headers' Content-Type


Endpoint = Callable[[Request], Response]


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether If-None-Match names `tag` (RFC 9110 13.1.2): `*`, or a list of entity tags compared weakly, as
    a proxy that compresses answers may have made ours W/ (ours hold no comma: splitting on commas finds it)."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(t.strip().removeprefix("W/") == tag for t in if_none_match.split(","))
