"""VOD client-upload signatures, built as VOD documents them (客户端上传签名,
https://cloud.tencent.com/document/product/266/9221).

signature = Base64(HMAC-SHA1(SecretKey, original) || original), where `original` is a URL query
string. Only building lives here: what checks signatures (VOD, or the emulator standing in for it in
tests) is written separately, so that a mistake cannot hide by being made on both sides. Stdlib only:
this module is on the signature function's hot path.
"""

from __future__ import annotations

import re
from binascii import b2a_base64

from shared.digests import keyed
from shared.errors import SignatureParamError
from shared.records import Record
from shared.vod_limits import (
    MAX_SESSION_CONTEXT,
    MAX_SOURCE_CONTEXT,
    MAX_VALIDITY_SECONDS,
    TASK_NOTIFY_MODES,
    text_size,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_UINT32_MAX = 2**32 - 1
_INT_LIMIT = 2**63 - 1


class _Params(Record):
    """Every parameter VOD reads from an upload signature; None = not sent."""

    secret_id: str
    current_time_stamp: int
    expire_time: int
    random: int
    class_id: int | None = None
    procedure: str | None = None
    task_priority: int | None = None
    task_notify_mode: str | None = None
    source_context: str | None = None
    session_context: str | None = None
    one_time_valid: bool | None = None
    vod_sub_app_id: int | None = None
    storage_region: str | None = None


class SignatureParams(_Params):
    """Validated when made: parameters outside VOD's documented domain raise SignatureParamError."""

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> SignatureParams:
        params = super().__new__(cls, *args, **kwargs)
        validate(params)
        return params

    # NamedTuple's own _make and _replace would build the tuple without __new__: validated here too.
    @classmethod
    def _make(cls, iterable: Any) -> SignatureParams:  # type: ignore[override]
        return cls(*iterable)

    def _replace(self, **changes: Any) -> SignatureParams:
        return SignatureParams(**{**self._asdict(), **changes})


# Python field name -> wire name, in the order Tencent's demo writes them: the four required ones first, in the
# order of the format VOD's page gives.
WIRE_NAMES: dict[str, str] = {
    "secret_id": "secretId",
    "current_time_stamp": "currentTimeStamp",
    "expire_time": "expireTime",
    "random": "random",
    "class_id": "classId",
    "procedure": "procedure",
    "task_priority": "taskPriority",
    "task_notify_mode": "taskNotifyMode",
    "source_context": "sourceContext",
    "session_context": "sessionContext",
    "one_time_valid": "oneTimeValid",
    "vod_sub_app_id": "vodSubAppId",
    "storage_region": "storageRegion",
}


def _fail(name: str, why: str) -> SignatureParamError:
    return SignatureParamError(f"{WIRE_NAMES[name]}: {why}", field=WIRE_NAMES[name])


def _check_text(name: str, value: str | None, limit: int | None) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise _fail(name, "must be a string")
    if limit is not None and text_size(value) > limit:
        raise _fail(name, f"at most {limit} bytes in UTF-8 (got {text_size(value)})")
    if "\x00" in value:
        raise _fail(name, "must not contain NUL")
    if not _encodable(value):
        raise _fail(name, "must be valid Unicode text (no unpaired surrogates)")


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Integer domains (inclusive); the validity window is checked separately.
_RANGES: dict[str, tuple[int, int]] = {
    "current_time_stamp": (0, _INT_LIMIT),
    "expire_time": (0, _INT_LIMIT),
    "random": (0, _UINT32_MAX),
    "class_id": (0, _INT_LIMIT),
    "task_priority": (-10, 10),
    "vod_sub_app_id": (1, _INT_LIMIT),
}


def _check_ints(p: SignatureParams) -> None:
    for name, (low, high) in _RANGES.items():
        value = getattr(p, name)
        if value is None:
            continue
        if type(value) is not int:
            raise _fail(name, "must be an integer")
        if not low <= value <= high:
            raise _fail(name, f"must be in {low}..{high} (got {value})")


def validate(p: SignatureParams) -> None:
    """Raise SignatureParamError naming the first parameter outside VOD's documented domain."""
    if not p.secret_id or not isinstance(p.secret_id, str) or not p.secret_id.isprintable():
        raise _fail("secret_id", "must be a non-empty printable string")
    _check_ints(p)
    validity = p.expire_time - p.current_time_stamp
    if not 1 <= validity <= MAX_VALIDITY_SECONDS:
        raise _fail("expire_time", f"must be 1..{MAX_VALIDITY_SECONDS} s after currentTimeStamp (got {validity})")
    if p.task_notify_mode is not None and p.task_notify_mode not in TASK_NOTIFY_MODES:
        raise _fail("task_notify_mode", f"must be one of {', '.join(TASK_NOTIFY_MODES)}")
    if p.one_time_valid is not None and type(p.one_time_valid) is not bool:
        raise _fail("one_time_valid", "must be a boolean")
    _check_text("procedure", p.procedure, None)
    _check_text("storage_region", p.storage_region, None)
    _check_text("source_context", p.source_context, MAX_SOURCE_CONTEXT)
    _check_text("session_context", p.session_context, MAX_SESSION_CONTEXT)


# Needs no URL encoding but for its ':' (the common case: ids, numbers, regions, our sourceContext). Written
# %3A as quote_plus writes it, and as Tencent's samples do (Python urlencode, Java URLEncoder, PHP
# http_build_query): VOD's page asks for every value URL-encoded, and reads the query with a parser of its own.
_PLAIN = re.compile(r"[A-Za-z0-9_.\-~:]*")


def encode_value(value: str) -> str:
    """A value as the signed query writes it: quote_plus(value, safe="")."""
    if _PLAIN.fullmatch(value):
        return value.replace(":", "%3A")
    from urllib.parse import quote_plus  # here: urllib.parse is ~1.5 ms of a cold start, and rarely needed

    return quote_plus(value, safe="")


def _pair(wire: str, value: object) -> str:
    text = str(int(value)) if type(value) is bool else value if type(value) is str else str(value)
    return f"{wire}={encode_value(text)}"


def to_query(params: SignatureParams) -> str:
    """The signed `original` string: present parameters only, URL-encoded UTF-8."""
    return "&".join(_pair(wire, value) for wire, value in _present(params))


def _present(params: SignatureParams) -> list[tuple[str, object]]:
    return [(wire, value) for name, wire in WIRE_NAMES.items() if (value := getattr(params, name)) is not None]


# The values that differ between requests made under one policy (in WIRE_NAMES' order), and their slots.
_PER_REQUEST = {"currentTimeStamp": "%d", "expireTime": "%d", "random": "%d", "sourceContext": "%s"}


def query_template(params: SignatureParams) -> tuple[str, str]:
    """to_query(params) for every request under one policy: what they all start with (the parameters before the
    first that changes), and a %-template of the rest, whose slots are currentTimeStamp, expireTime, random and
    sourceContext (URL-encoded), in that order. `params` must have a sourceContext."""
    present = _present(params)
    cut = next(i for i, (wire, _) in enumerate(present) if wire in _PER_REQUEST)
    start = "&".join(_pair(wire, value) for wire, value in present[:cut])
    # An encoded value holds a % of its own (%2F): written %% in the template.
    slots = (
        f"{wire}={_PER_REQUEST[wire]}" if wire in _PER_REQUEST else _pair(wire, value).replace("%", "%%")
        for wire, value in present[cut:]
    )
    return start, "".join(f"&{slot}" for slot in slots)


def signer(secret_key: str, prefix: str = "") -> Callable[[bytes], str]:
    """The signature of `prefix` + an original's rest (UTF-8 bytes) under `secret_key`: the HMAC key, and the
    prefix, hashed once."""
    start = prefix.encode("utf-8")
    mac = keyed(secret_key.encode("utf-8"), "sha1", start)

    def sign(rest: bytes) -> str:
        return b2a_base64(mac(rest) + start + rest, newline=False).decode("ascii")  # base64.b64encode's steps

    return sign


def build_signature(params: SignatureParams, secret_key: str) -> str:
    return signer(secret_key)(to_query(params).encode("utf-8"))
