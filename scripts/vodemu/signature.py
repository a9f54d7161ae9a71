"""Upload signatures, checked the way VOD documents it (客户端上传签名,
https://cloud.tencent.com/document/product/266/9221): Base64 of HMAC-SHA1(SecretKey, original) followed
by `original`, a URL query string with secretId, currentTimeStamp, expireTime, random and the optional
parameters.

Written for the emulator alone and never shared with the code that makes signatures (shared.signing):
the emulator is a test oracle, and a mistake made once in both places would pass every test.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

MAC_BYTES = 20  # SHA-1
MAX_VALIDITY = 90 * 24 * 3600  # expireTime may be at most 90 days after currentTimeStamp
MAX_SOURCE_CONTEXT = 250
MAX_SESSION_CONTEXT = 1000
NOTIFY_MODES = frozenset({"Finish", "Change", "None"})
_REQUIRED = ("secretId", "currentTimeStamp", "expireTime", "random")
_INTEGERS = frozenset({"currentTimeStamp", "expireTime", "random", "classId", "taskPriority", "vodSubAppId"})
_TEXTS = frozenset({"procedure", "taskNotifyMode", "sourceContext", "sessionContext", "storageRegion"})


def context_size(text: str) -> int:
    """A context's length as the emulator counts it: UTF-8 bytes. VOD's pages say "characters" without saying
    which; the oracle holds clients to the strictest reading, so what passes here passes however VOD counts."""
    return len(text.encode("utf-8", "surrogatepass"))


class Refused(enum.Enum):
    MALFORMED = "malformed"  # not Base64, too short, or `original` is not a parameter string
    BAD_PARAMETER = "bad_parameter"  # a signed parameter outside VOD's documented domain
    VALIDITY = "validity"  # expireTime - currentTimeStamp not in 1 s .. 90 days
    UNKNOWN_SECRET_ID = "unknown_secret_id"
    MISMATCH = "mismatch"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"


class SignatureRefused(Exception):
    def __init__(self, kind: Refused, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class UploadSignature:
    """What a verified signature grants: its parameters by their wire names, and a digest of its bytes
    (for oneTimeValid: several Base64 spellings decode to the same signature)."""

    values: Mapping[str, str | int]
    digest: str

    def text(self, name: str) -> str | None:
        if name not in _TEXTS:  # a misspelt name would read as "not sent"
            raise KeyError(f"{name} is not a text parameter of a signature")
        value = self.values.get(name)
        return value if isinstance(value, str) else None

    def number(self, name: str) -> int | None:
        if name not in _INTEGERS:
            raise KeyError(f"{name} is not an integer parameter of a signature")
        value = self.values.get(name)
        return value if isinstance(value, int) else None

    @property
    def expire_time(self) -> int:
        return int(self.values["expireTime"])

    @property
    def one_time(self) -> bool:
        return self.values.get("oneTimeValid") == 1

    def __repr__(self) -> str:  # a signature is a bearer credential
        return f"UploadSignature(secretId={self.values.get('secretId')!r}, expireTime={self.values.get('expireTime')})"


def _refuse(kind: Refused, message: str) -> SignatureRefused:
    return SignatureRefused(kind, message)


def split(signature: str) -> tuple[bytes, bytes]:
    """(mac, original) of a signature, without checking anything else."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII text
        raise _refuse(Refused.MALFORMED, "not standard Base64") from exc
    if len(raw) <= MAC_BYTES:
        raise _refuse(Refused.MALFORMED, "too short to hold an HMAC-SHA1 and parameters")
    return raw[:MAC_BYTES], raw[MAC_BYTES:]


def _integer(name: str, text: str) -> int:
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise _refuse(Refused.MALFORMED, f"{name}: {text[:20]!r} is not an integer")
    return int(text)


def parameters(original: bytes) -> dict[str, str | int]:
    """The signed parameters VOD reads (unknown ones are ignored, as VOD does)."""
    try:
        pairs = parse_qsl(original.decode("utf-8"), keep_blank_values=True, strict_parsing=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise _refuse(Refused.MALFORMED, "the signed text is not a UTF-8 query string") from exc
    values: dict[str, str | int] = {}
    for name, text in pairs:
        if name not in _INTEGERS and name not in _TEXTS and name not in ("secretId", "oneTimeValid"):
            continue
        if name in values:
            raise _refuse(Refused.MALFORMED, f"{name}: given twice")
        if name == "oneTimeValid" and text not in ("0", "1"):
            raise _refuse(Refused.MALFORMED, "oneTimeValid: must be 0 or 1")
        values[name] = _integer(name, text) if name in _INTEGERS or name == "oneTimeValid" else text
    missing = [name for name in _REQUIRED if name not in values]
    if missing:
        raise _refuse(Refused.MALFORMED, f"{', '.join(missing)}: missing")
    return values


_RANGES = {
    "random": (0, 2**32 - 1),
    "classId": (0, 2**63 - 1),
    "taskPriority": (-10, 10),
    "vodSubAppId": (0, 2**63 - 1),
    "currentTimeStamp": (0, 2**63 - 1),
    "expireTime": (0, 2**63 - 1),
}
_LENGTHS = {"sourceContext": MAX_SOURCE_CONTEXT, "sessionContext": MAX_SESSION_CONTEXT}


def _check_domains(values: Mapping[str, str | int]) -> None:
    for name, (low, high) in _RANGES.items():
        value = values.get(name)
        if isinstance(value, int) and not low <= value <= high:
            raise _refuse(Refused.BAD_PARAMETER, f"{name}: {value} is not in {low}..{high}")
    for name, limit in _LENGTHS.items():
        value = values.get(name)
        if isinstance(value, str) and context_size(value) > limit:
            raise _refuse(Refused.BAD_PARAMETER, f"{name}: longer than {limit} bytes in UTF-8")
    for name in _TEXTS:
        if "\x00" in str(values.get(name, "")):
            raise _refuse(Refused.BAD_PARAMETER, f"{name}: contains NUL")
    mode = values.get("taskNotifyMode")
    if mode is not None and mode not in NOTIFY_MODES:
        raise _refuse(Refused.BAD_PARAMETER, f"taskNotifyMode: {mode!r} is not one of {sorted(NOTIFY_MODES)}")
    validity = int(values["expireTime"]) - int(values["currentTimeStamp"])
    if not 1 <= validity <= MAX_VALIDITY:
        raise _refuse(Refused.VALIDITY, f"expireTime: {validity} s after currentTimeStamp, not 1..{MAX_VALIDITY}")


def verify(signature: str, secret_keys: Mapping[str, str], *, now: float, clock_skew: int = 0) -> UploadSignature:
    """Accept a signature as VOD would, or raise SignatureRefused saying why."""
    mac, original = split(signature)
    values = parameters(original)
    secret_key = secret_keys.get(str(values["secretId"]))
    if secret_key is None:
        raise _refuse(Refused.UNKNOWN_SECRET_ID, "secretId: not a key of this account")
    expected = hmac.new(secret_key.encode("utf-8"), original, hashlib.sha1).digest()
    if not hmac.compare_digest(mac, expected):
        raise _refuse(Refused.MISMATCH, "the HMAC-SHA1 does not match")
    _check_domains(values)
    if int(values["currentTimeStamp"]) > now + clock_skew:
        raise _refuse(Refused.NOT_YET_VALID, "currentTimeStamp is in the future")
    if int(values["expireTime"]) <= now:
        raise _refuse(Refused.EXPIRED, "expireTime has passed")
    return UploadSignature(values, hashlib.sha256(mac + original).hexdigest())


def signed_parameters(signature: str) -> dict[str, str | int]:
    """The parameters a signature carries, unverified (what a test reads back from an issued one)."""
    return parameters(split(signature)[1])
