"""TC3-HMAC-SHA256 verification for the emulated cloud API, exactly as the SDKs sign (签名方法 v3,
https://www.tencentcloud.com/document/api/266/34114; tencentcloud-sdk-python-common's abstract_client.py).

The signature covers the raw body bytes, so nothing here re-serialises them: the caller passes what came
off the wire. Signed headers enter it as the page above has them (CanonicalHeaders: key and value lowercased and
trimmed), so a client that signs `Host` in mixed case, as typed, is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

ALGORITHM = "TC3-HMAC-SHA256"
DEFAULT_TOLERANCE_SECONDS = 300  # Tencent documents a 5-minute timestamp window
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_REQUIRED_SIGNED = ("content-type", "host")


class Tc3Error(Exception):
    """A refused request; `code` is the Tencent cloud API error code to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Tc3Authorization:
    secret_id: str
    date: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


@dataclass(frozen=True)
class Tc3Request:
    """What a TC3 signature covers, taken from the wire unchanged."""

    method: str
    raw_query: str
    headers: Mapping[str, str]  # lowercase names, values exactly as received
    body: bytes


def parse_authorization(value: str) -> Tc3Authorization:
    """`TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=HEX`."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise Tc3Error("AuthFailure.InvalidAuthorization", f"Authorization must use {ALGORITHM}")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, text = item.strip().partition("=")
        if not sep:
            raise Tc3Error("AuthFailure.InvalidAuthorization", "Authorization is not name=value pairs")
        parts[name] = text
    try:
        scope = parts["Credential"].split("/")
        signed = tuple(parts["SignedHeaders"].lower().split(";"))
        signature = parts["Signature"]
    except KeyError as exc:
        raise Tc3Error("AuthFailure.InvalidAuthorization", f"Authorization lacks {exc.args[0]}") from exc
    if len(scope) != 4 or scope[3] != "tc3_request" or not all(scope):
        raise Tc3Error("AuthFailure.InvalidAuthorization", "Credential must be SecretId/date/service/tc3_request")
    if any(h not in signed for h in _REQUIRED_SIGNED):
        raise Tc3Error("AuthFailure.InvalidAuthorization", "SignedHeaders must include content-type and host")
    return Tc3Authorization(scope[0], scope[1], scope[2], signed, signature.lower())


def canonical_request(request: Tc3Request, signed_headers: tuple[str, ...]) -> str:
    canonical_headers = "".join(f"{name}:{request.headers.get(name, '').strip().lower()}\n" for name in signed_headers)
    if request.headers.get("x-tc-content-sha256") == UNSIGNED_PAYLOAD:
        payload = UNSIGNED_PAYLOAD.encode()  # the SDK hashes the marker itself
    elif request.method == "GET":
        payload = b""
    else:
        payload = request.body
    query = request.raw_query if request.method == "GET" else ""
    return "\n".join(
        [
            request.method,
            "/",
            query,
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(payload).hexdigest(),
        ]
    )


def _hmac256(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def compute_signature(secret_key: str, auth: Tc3Authorization, timestamp: str, request: Tc3Request) -> str:
    scope = f"{auth.date}/{auth.service}/tc3_request"
    digest = hashlib.sha256(canonical_request(request, auth.signed_headers).encode("utf-8")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"
    key = _hmac256(("TC3" + secret_key).encode("utf-8"), auth.date)
    key = _hmac256(key, auth.service)
    key = _hmac256(key, "tc3_request")
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _timestamp(request: Tc3Request) -> tuple[str, int]:
    text = request.headers.get("x-tc-timestamp")
    if not text:
        raise Tc3Error("MissingParameter", "The request is missing the X-TC-Timestamp header")
    if not text.isdigit() or not text.isascii() or len(text) > 12:
        raise Tc3Error("InvalidParameter", "X-TC-Timestamp must be a Unix time in seconds")
    return text, int(text)


def verify(
    request: Tc3Request,
    secret_keys: Mapping[str, str],
    *,
    service: str,
    now: Callable[[], float],
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    session_token: str = "",
) -> str:
    """Return the verified SecretId or raise Tc3Error with the code Tencent would answer. `session_token`: the
    keys are temporary, and valid only with this X-TC-Token."""
    header = request.headers.get("authorization")
    if not header:
        raise Tc3Error("AuthFailure.InvalidAuthorization", "The request has no Authorization header")
    auth = parse_authorization(header)
    timestamp_text, timestamp = _timestamp(request)
    secret_key = secret_keys.get(auth.secret_id)
    if secret_key is None:
        raise Tc3Error("AuthFailure.SecretIdNotFound", "The SecretId is not found, please ensure it exists")
    if abs(now() - timestamp) > tolerance_seconds:
        raise Tc3Error(
            "AuthFailure.SignatureExpire",
            f"Signature expired: X-TC-Timestamp must be within {tolerance_seconds} s of the server time",
        )
    expected_date = datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d")
    if auth.date != expected_date:
        raise Tc3Error("AuthFailure.SignatureFailure", "The Credential date is not the UTC date of X-TC-Timestamp")
    if auth.service != service:
        raise Tc3Error("AuthFailure.SignatureFailure", f"The Credential service must be {service!r}")
    expected = compute_signature(secret_key, auth, timestamp_text, request)
    if not hmac.compare_digest(expected.encode(), auth.signature.encode("utf-8")):
        raise Tc3Error("AuthFailure.SignatureFailure", "The provided credentials could not be validated")
    sent = request.headers.get("x-tc-token", "").encode("utf-8", "surrogateescape")
    if session_token and not hmac.compare_digest(sent, session_token.encode("utf-8")):
        raise Tc3Error("AuthFailure.TokenFailure", "The X-TC-Token is missing, or not the one issued with the keys")
    return auth.secret_id
