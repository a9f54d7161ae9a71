"""VOD client-upload signatures (REFERENCE §1): build, decode and verify.

signature = Base64(HMAC-SHA1(SecretKey, original) || original), where `original` is a
URL query string. Stdlib only: this module is on the signature function's hot path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote_plus

MAX_VALIDITY_SECONDS = 90 * 24 * 3600
MAX_SOURCE_CONTEXT = 250
MAX_SESSION_CONTEXT = 1000
TASK_NOTIFY_MODES = ("Finish", "Change", "None")
_MAC_SIZE = 20
_UINT32_MAX = 2**32 - 1
_INT_LIMIT = 2**63 - 1


class SignatureError(ValueError):
    """A signature (or a parameter for one) is not acceptable; `reason` is a stable code."""

    reason = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class SignatureParamError(SignatureError):
    reason = "bad_parameter"


class SignatureMalformed(SignatureError):
    reason = "malformed"


class SignatureMismatch(SignatureError):
    reason = "mismatch"


class SignatureExpired(SignatureError):
    reason = "expired"


class SignatureNotYetValid(SignatureError):
    reason = "not_yet_valid"


class UnknownSecretId(SignatureError):
    reason = "unknown_secret_id"


@dataclass(frozen=True)
class SignatureParams:
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

    def __post_init__(self) -> None:
        validate(self)


# Python field name -> wire name, in the order Tencent's demo writes them.
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
_FIELD_BY_WIRE = {wire: name for name, wire in WIRE_NAMES.items()}
_INT_FIELDS = {"current_time_stamp", "expire_time", "random", "class_id", "task_priority", "vod_sub_app_id"}


def _fail(name: str, why: str) -> SignatureParamError:
    return SignatureParamError(f"{WIRE_NAMES[name]}: {why}", field=WIRE_NAMES[name])


def _check_text(name: str, value: str | None, limit: int | None) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise _fail(name, "must be a string")
    if limit is not None and len(value) > limit:
        raise _fail(name, f"at most {limit} characters (got {len(value)})")
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


def new_params(
    secret_id: str,
    validity_seconds: int,
    *,
    now: Callable[[], float],
    random_u32: Callable[[], int] = lambda: secrets.randbits(32),
    **options: object,
) -> SignatureParams:
    """Parameters for a signature valid from now() for validity_seconds; `options` are the optional fields."""
    current = int(now())
    return SignatureParams(
        secret_id=secret_id,
        current_time_stamp=current,
        expire_time=current + validity_seconds,
        random=random_u32(),
        **options,  # type: ignore[arg-type]
    )


# Needs no URL encoding (the common case: ids, numbers, regions, our sourceContext). ':' is a legal
# query character (RFC 3986 pchar) that every query-string parser reads back as itself.
_PLAIN = re.compile(r"[A-Za-z0-9_.\-~:]*")


def _encode(value: str) -> str:
    return value if _PLAIN.fullmatch(value) else quote_plus(value, safe="")


def to_query(params: SignatureParams) -> str:
    """The signed `original` string: present parameters only, URL-encoded UTF-8."""
    parts = []
    for name, wire in WIRE_NAMES.items():
        value = getattr(params, name)
        if value is None:
            continue
        text = str(int(value)) if type(value) is bool else value if type(value) is str else str(value)
        parts.append(f"{wire}={_encode(text)}")
    return "&".join(parts)


def _mac(secret_key: str, original: bytes) -> bytes:
    return hmac.new(secret_key.encode("utf-8"), original, hashlib.sha1).digest()


def build_signature(params: SignatureParams, secret_key: str) -> str:
    original = to_query(params).encode("utf-8")
    return base64.b64encode(_mac(secret_key, original) + original).decode("ascii")


def _parse_int(name: str, text: str) -> int:
    # Only plain decimal integers: VOD's own parser would not take "1e3" or " 7".
    body = text[1:] if text[:1] == "-" else text
    if not body.isdigit() or not body.isascii() or len(body) > 19:
        raise SignatureMalformed(f"{WIRE_NAMES[name]}: not an integer", field=WIRE_NAMES[name])
    return int(text)


def _params_from_query(original: str) -> SignatureParams:
    try:
        pairs = parse_qsl(original, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignatureMalformed("signed text is not a query string") from exc
    values: dict[str, object] = {}
    for wire, text in pairs:
        name = _FIELD_BY_WIRE.get(wire)
        if name is None:
            continue  # VOD ignores parameters it does not know
        if name in values:
            raise SignatureMalformed(f"{wire}: given twice", field=wire)
        if name in _INT_FIELDS:
            values[name] = _parse_int(name, text)
        elif name == "one_time_valid":
            if text not in ("0", "1"):
                raise SignatureMalformed("oneTimeValid: must be 0 or 1", field=wire)
            values[name] = text == "1"
        else:
            values[name] = text
    for required in ("secret_id", "current_time_stamp", "expire_time", "random"):
        if required not in values:
            raise SignatureMalformed(f"{WIRE_NAMES[required]}: missing", field=WIRE_NAMES[required])
    return SignatureParams(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DecodedSignature:
    params: SignatureParams
    mac: bytes
    original: bytes

    def __repr__(self) -> str:  # a signature is a bearer credential: keep it out of logs
        return f"DecodedSignature(secret_id={self.params.secret_id!r}, expire_time={self.params.expire_time})"


def decode_signature(signature: str) -> DecodedSignature:
    """Split a signature into MAC and parameters without checking the MAC."""
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, AttributeError) as exc:
        raise SignatureMalformed("not standard Base64") from exc
    if len(raw) <= _MAC_SIZE:
        raise SignatureMalformed("too short")
    mac, original = raw[:_MAC_SIZE], raw[_MAC_SIZE:]
    try:
        text = original.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SignatureMalformed("signed text is not UTF-8") from exc
    return DecodedSignature(_params_from_query(text), mac, original)


def verify_signature(
    signature: str,
    secret_keys: Mapping[str, str],
    *,
    now: float,
    max_clock_skew: int = 0,
) -> SignatureParams:
    """Check a signature as VOD does: known secretId, HMAC (constant time), time window, domains."""
    decoded = decode_signature(signature)
    params = decoded.params
    secret_key = secret_keys.get(params.secret_id)
    if secret_key is None:
        raise UnknownSecretId("secretId is not known")
    if not hmac.compare_digest(decoded.mac, _mac(secret_key, decoded.original)):
        raise SignatureMismatch("HMAC does not match")
    if params.current_time_stamp > now + max_clock_skew:
        raise SignatureNotYetValid("currentTimeStamp is in the future")
    if params.expire_time <= now:
        raise SignatureExpired("signature has expired")
    return params
