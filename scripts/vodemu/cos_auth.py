"""Verification of COS `q-sign-algorithm=sha1` request signatures (请求签名,
https://cloud.tencent.com/document/api/436/7778), as cos-python-sdk-v5 makes them (qcloud_cos/cos_auth.py).

The server side of what `qcloud_cos.cos_auth.CosS3Auth` computes: rebuild HttpString from the request as
received, derive SignKey from the credential's SecretKey, and compare. Every failure is its own exception
class so the HTTP layer can map each to the COS error code a real bucket would answer.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from .credentials import CredentialRegistry, TempCredential
from .wsgi import is_decimal

ALGORITHM = "sha1"
SECURITY_TOKEN_HEADER = "x-cos-security-token"
# Tolerated clock difference between signer and emulator, on top of the 60 s the SDK already backdates.
DEFAULT_MAX_SKEW_SECONDS = 60
_AUTH_FIELDS = (
    "q-sign-algorithm",
    "q-ak",
    "q-sign-time",
    "q-key-time",
    "q-header-list",
    "q-url-param-list",
    "q-signature",
)


class CosAuthError(Exception):
    """A request is not authenticated; the subclass says why."""


class MalformedAuthorizationError(CosAuthError):
    """The Authorization header is missing or cannot be parsed."""


class UnknownAccessKeyError(CosAuthError):
    """`q-ak` names no credential the registry issued."""


class SecurityTokenMissingError(CosAuthError):
    """A temporary credential was used without its `x-cos-security-token`."""


class SecurityTokenMismatchError(CosAuthError):
    """The `x-cos-security-token` is not the one issued with `q-ak`."""


class SignatureMismatchError(CosAuthError):
    """The signature does not match the request as received."""


class SignatureExpiredError(CosAuthError):
    """The signature's validity window (`q-sign-time` / `q-key-time`) ended."""


class SignatureNotYetValidError(CosAuthError):
    """The signature's validity window starts in the future: the signer's clock is ahead."""


class CredentialExpiredError(CosAuthError):
    """The temporary credential itself has expired."""


class CredentialRevokedError(CosAuthError):
    """The temporary credential was revoked (its upload was committed)."""


@dataclass(frozen=True)
class TimeWindow:
    start: int
    end: int


@dataclass(frozen=True)
class CosAuthorization:
    """A parsed Authorization header; `*_raw` fields are kept verbatim because they are signed as text."""

    access_key: str
    sign_time_raw: str
    sign_time: TimeWindow
    key_time_raw: str
    key_time: TimeWindow
    header_list: tuple[str, ...]
    param_list: tuple[str, ...]
    signature: str


@dataclass(frozen=True)
class SignedRequest:
    """A request as received, in the terms the signature is defined over.

    `path` is the percent-decoded URL path; `params` the decoded query (blank values kept); `headers`
    the received headers with their raw value bytes (decoding a WSGI header: `value.encode("latin-1")`).
    """

    method: str
    path: str
    params: Sequence[tuple[str, str]]
    headers: Sequence[tuple[str, bytes]]


def cos_encode(value: str | bytes) -> str:
    """E(x): percent-encode the UTF-8 bytes, leaving only `A-Z a-z 0-9 - _ . ~`, uppercase hex."""
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    # quote() never encodes `_.-~` and letters/digits; safe="" makes it encode "/" too.
    return quote(raw, safe="")


def _parse_window(raw: str, name: str) -> TimeWindow:
    start, sep, end = raw.partition(";")
    if not sep or not (is_decimal(start) and is_decimal(end)):
        raise MalformedAuthorizationError(f"{name} must be '<start>;<end>' in Unix seconds")
    window = TimeWindow(int(start), int(end))
    if window.start > window.end:
        raise MalformedAuthorizationError(f"{name} ends before it starts")
    return window


def _split_list(raw: str) -> tuple[str, ...]:
    return tuple(name for name in raw.split(";") if name)


def parse_authorization(value: str | None) -> CosAuthorization:
    if not value:
        raise MalformedAuthorizationError("the Authorization header is missing")
    fields: dict[str, str] = {}
    for item in value.split("&"):
        name, _, item_value = item.partition("=")
        fields.setdefault(name.strip(), item_value.strip())
    missing = [name for name in _AUTH_FIELDS if name not in fields]
    if missing:
        raise MalformedAuthorizationError(f"the Authorization header lacks {', '.join(missing)}")
    if fields["q-sign-algorithm"] != ALGORITHM:
        raise MalformedAuthorizationError(f"unsupported q-sign-algorithm {fields['q-sign-algorithm']!r}")
    if not fields["q-ak"] or not fields["q-signature"]:
        raise MalformedAuthorizationError("q-ak and q-signature must not be empty")
    return CosAuthorization(
        access_key=fields["q-ak"],
        sign_time_raw=fields["q-sign-time"],
        sign_time=_parse_window(fields["q-sign-time"], "q-sign-time"),
        key_time_raw=fields["q-key-time"],
        key_time=_parse_window(fields["q-key-time"], "q-key-time"),
        header_list=_split_list(fields["q-header-list"].lower()),
        param_list=_split_list(fields["q-url-param-list"].lower()),
        signature=fields["q-signature"],
    )


def _encoded_map(pairs: Iterable[tuple[str | bytes, str | bytes]]) -> dict[str, str]:
    """{lower(E(name)): E(value)}; with repeated names the first one wins."""
    result: dict[str, str] = {}
    for name, value in pairs:
        result.setdefault(cos_encode(name).lower(), cos_encode(value))
    return result


def _signed_pairs(listed: Iterable[str], available: Mapping[str, str]) -> str | None:
    """`k=v&...` over the listed names, sorted bytewise; None if a listed name was not received."""
    parts = []
    for name in sorted(set(listed)):
        if name not in available:
            return None
        parts.append(f"{name}={available[name]}")
    return "&".join(parts)


def http_string(
    request: SignedRequest, authorization: CosAuthorization, header_values: Mapping[str, str]
) -> str | None:
    """HttpString as the signer built it, or None if the request lacks a signed header or parameter."""
    params = _signed_pairs(authorization.param_list, _encoded_map(request.params))
    headers = _signed_pairs(authorization.header_list, header_values)
    if params is None or headers is None:
        return None
    return f"{request.method.lower()}\n{request.path}\n{params}\n{headers}\n"


def string_to_sign(sign_time_raw: str, http_str: str) -> str:
    digest = hashlib.sha1(http_str.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{ALGORITHM}\n{sign_time_raw}\n{digest}\n"


def compute_signature(secret_key: str, key_time_raw: str, to_sign: str) -> str:
    sign_key = hmac.new(secret_key.encode("utf-8"), key_time_raw.encode("utf-8"), hashlib.sha1).hexdigest()
    return hmac.new(sign_key.encode("ascii"), to_sign.encode("utf-8"), hashlib.sha1).hexdigest()


def _header_variants(request: SignedRequest) -> list[dict[str, str]]:
    """The received headers, plus a copy with the Host port dropped.

    When the SDK takes the host from the URL it signs `urlparse(url).hostname` (no port, lowercased)
    while the wire Host carries the port; a real COS endpoint never sees a port, so both must verify.
    """
    received = _encoded_map(request.headers)
    variants = [received]
    host = next((value for name, value in request.headers if name.lower() == "host"), None)
    if host is not None:
        hostname, sep, port = host.rpartition(b":")
        if sep and port.isdigit():
            variants.append({**received, "host": cos_encode(hostname.lower())})
    return variants


def signature_matches(request: SignedRequest, authorization: CosAuthorization, secret_key: str) -> bool:
    provided = authorization.signature.encode("ascii", "replace")
    matched = False
    for header_values in _header_variants(request):
        http_str = http_string(request, authorization, header_values)
        if http_str is None:
            continue
        expected = compute_signature(
            secret_key, authorization.key_time_raw, string_to_sign(authorization.sign_time_raw, http_str)
        )
        # Evaluate every variant (no short-circuit) so timing does not say which one matched.
        matched = hmac.compare_digest(expected.encode("ascii"), provided) or matched
    return matched


def _security_token(request: SignedRequest) -> str | None:
    for name, value in request.headers:
        if name.lower() == SECURITY_TOKEN_HEADER:
            return value.decode("latin-1")
    return None


class CosRequestVerifier:
    """Authenticates requests signed with temporary credentials from a `CredentialRegistry`."""

    def __init__(
        self,
        credentials: CredentialRegistry,
        clock: Callable[[], float],
        *,
        max_skew_seconds: int = DEFAULT_MAX_SKEW_SECONDS,
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._max_skew = max_skew_seconds

    def verify(self, request: SignedRequest, authorization_header: str | None) -> TempCredential:
        """The credential that signed `request`; raises a `CosAuthError` subclass otherwise.

        Order matters for what a caller can learn: nothing about time windows or expiry is revealed
        before the signature proves the caller holds the secret key.
        """
        authorization = parse_authorization(authorization_header)
        credential = self._credential_for(authorization.access_key, _security_token(request))
        if not signature_matches(request, authorization, credential.secret_key):
            raise SignatureMismatchError("the request signature does not match")
        now = self._clock()
        self._check_window(authorization.sign_time, now)
        self._check_window(authorization.key_time, now)
        if credential.is_expired(now):
            raise CredentialExpiredError("the temporary credential has expired")
        if self._credentials.is_revoked(credential.secret_id):
            raise CredentialRevokedError("the temporary credential was revoked: its upload has been committed")
        return credential

    def _credential_for(self, access_key: str, token: str | None) -> TempCredential:
        if not self._credentials.knows(access_key):
            raise UnknownAccessKeyError("the access key id does not exist")
        if not token:
            raise SecurityTokenMissingError("a temporary credential needs x-cos-security-token")
        credential = self._credentials.lookup(access_key, token)
        if credential is None:
            raise SecurityTokenMismatchError("the security token is not valid for this access key")
        return credential

    def _check_window(self, window: TimeWindow, now: float) -> None:
        # The skew is allowed a signer whose clock is ahead (a window starting later): one that has ended has ended.
        if now > window.end:
            raise SignatureExpiredError("request has expired")
        if now < window.start - self._max_skew:
            raise SignatureNotYetValidError("the signature is not valid yet: request time too skewed")
