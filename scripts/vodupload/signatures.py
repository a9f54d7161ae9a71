"""Fresh upload signatures from the application's signature endpoint (`POST /signature`).

The VOD client SDKs ask the app for a new signature before every upload API call, which is what
one-time signatures need; `SignatureClient` is that `getSignature` for Python: call it, get a string.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import requests

from vodupload.errors import AuthenticationFailed, MalformedToken, SignatureRefused, SignatureUnavailable, shown
from vodupload.halting import wait_to_retry

# The codes of the signature function's 401s (shared/auth.py): the credentials were refused.
_CREDENTIAL_CODES = frozenset(
    ["invalid_token", "invalid_request", "missing_credentials", "untrusted_gateway", "invalid_identity"]
)

log = logging.getLogger("vodupload")

TokenSource = str | Callable[[], str]


@dataclass(frozen=True)
class Signature:
    value: str = field(repr=False)  # a bearer credential for VOD: never printed
    expire_time: int
    one_time: bool


@dataclass(frozen=True)
class SignatureRequest:
    """What the client may ask the endpoint for (the server's policy decides the rest)."""

    procedure: str | None = None
    storage_region: str | None = None
    class_id: int | None = None
    session_context: str | None = None

    def body(self) -> dict[str, Any]:
        wire = {
            "procedure": self.procedure,
            "storageRegion": self.storage_region,
            "classId": self.class_id,
            "sessionContext": self.session_context,
        }
        return {name: value for name, value in wire.items() if value is not None}


def error_envelope(response: requests.Response) -> tuple[str, str]:
    """(code, message) of the gateway's `{"error": {"code", "message"}}`, or what can be said without it."""
    try:
        error = response.json().get("error") or {}
        return str(error.get("code") or f"http_{response.status_code}"), str(error.get("message") or response.reason)
    except (ValueError, AttributeError, RecursionError):  # RecursionError: JSON nested past the decoder's depth
        return f"http_{response.status_code}", response.reason or "no error details"


def request_id(response: requests.Response) -> str | None:
    """The answer's X-Request-Id (the functions' id of the request, in its log line), if it is one: printed."""
    rid = response.headers.get("X-Request-Id") or ""
    plain = rid.replace("-", "").replace(".", "")
    return rid if len(rid) <= 128 and plain.isascii() and plain.isalnum() else None


def token_of(source: TokenSource) -> str:
    """The bearer token now: the string, or what the callable returns (a refreshing app's current token)."""
    token = source() if callable(source) else source
    # RFC 6750's b64token is visible ASCII: anything else (a pasted "…", a line break) no header can carry.
    if not (token.isascii() and token.isprintable()) or " " in token:
        raise MalformedToken
    return token


# Busy, not refused (a throttling gateway, a timed-out request): asked again, after Retry-After if it says.
BUSY = frozenset({408, 429})
_MAX_RETRY_AFTER = 30.0


def retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return min(float(value), _MAX_RETRY_AFTER) if value.isascii() and value.isdigit() else None


def token_subject(token: str, user_claim: str = "sub") -> str:
    """Whom a bearer token speaks for: the JWT claim that names the user (`sub`, or the functions'
    AUTH_JWT_USER_CLAIM; read, not verified: the endpoint verifies it), else a digest of the token itself (then a
    new token reads as someone else)."""
    try:
        subject = jwt.decode(token, options={"verify_signature": False}).get(user_claim)
    except jwt.PyJWTError:
        subject = None
    if isinstance(subject, str) and subject and _has_utf8_form(subject):  # (the endpoint refuses one without)
        return f"{user_claim}:{subject}"
    return "token:" + hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _has_utf8_form(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # half a surrogate pair, escaped in the token's JSON
        return False
    return True


class SignatureClient:
    """Fetches one fresh signature per call. Thread-safe (one `requests.Session`, no other state). `close()` (or a
    `with` block) closes its connections, unless the session was given: then they are the giver's.

    token: a bearer token, or a callable returning one (called before every request, so it can
    refresh a short-lived JWT). user_claim: the claim that names the user, as the functions' AUTH_JWT_USER_CLAIM
    (whose saved uploads a resume may take). 401 -> AuthenticationFailed, other 4xx -> SignatureRefused (both carry
    the gateway's error code and message, and are not retried); 5xx and network errors are retried
    `retries` times with exponential backoff, then SignatureUnavailable.
    """

    def __init__(
        self,
        url: str,
        token: TokenSource,
        request: SignatureRequest | None = None,
        *,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = wait_to_retry,
        user_claim: str = "sub",
    ) -> None:
        self.url = url
        self._token = token
        self._user_claim = user_claim
        self._body = (request or SignatureRequest()).body()
        self._session = session or requests.Session()
        self._owns_session = session is None
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep

    def __call__(self) -> str:
        return self.fetch().value

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> SignatureClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request_body(self) -> dict[str, Any]:
        """What each signature is asked for (the server's policy decides the rest)."""
        return dict(self._body)

    def owner(self) -> str:
        """Whose uploads these signatures start (the endpoint and the token's subject): VOD gives a resumed
        session the sourceContext it was opened with, so a saved upload must resume only for its owner."""
        return f"{self.url} {token_subject(token_of(self._token), self._user_claim)}"

    def fetch(self) -> Signature:
        problem, asked_to_wait = "no attempt made", None
        for attempt in range(self._retries + 1):
            if attempt:
                self._sleep(asked_to_wait or self._backoff * 2 ** (attempt - 1))
            try:
                response = self._post()
            except requests.RequestException as exc:
                problem, asked_to_wait = f"network error: {type(exc).__name__}", None
                log.info("signature endpoint unreachable (attempt %d): %s", attempt + 1, problem)
                continue
            if response.status_code < 400:
                return self._parse(response)
            code, message = error_envelope(response)
            if response.status_code == 401:
                if code not in _CREDENTIAL_CODES:  # e.g. the callback's URL given for the signature endpoint's
                    message += f" (not an answer the signature function gives: is {shown(self.url)} its URL?)"
                raise AuthenticationFailed(response.status_code, code, message, request_id=request_id(response))
            if response.status_code < 500 and response.status_code not in BUSY:
                raise SignatureRefused(response.status_code, code, message, request_id=request_id(response))
            problem, asked_to_wait = f"HTTP {response.status_code} {code}: {message}", retry_after(response)
            log.info("signature endpoint failed (attempt %d): %s", attempt + 1, problem)
        raise SignatureUnavailable(
            f"no signature from {shown(self.url)} after {self._retries + 1} attempts ({problem})"
        )

    def _post(self) -> requests.Response:
        return self._session.post(
            self.url,
            json=self._body,
            timeout=self._timeout,
            headers={"Authorization": f"Bearer {token_of(self._token)}"},
        )

    def _parse(self, response: requests.Response) -> Signature:
        try:
            body = response.json()
            value = body["signature"]
            if not isinstance(value, str) or not value:  # a null would reach VOD as "None", which ends the session
                raise TypeError("not a signature")
            return Signature(
                value=value,
                expire_time=int(body.get("expireTime") or 0),
                one_time=bool(body.get("oneTimeValid")),
            )
        # Overflow: expireTime 1e999; RecursionError: JSON nested past the decoder's depth
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
            raise SignatureUnavailable(
                f"the signature endpoint's answer has no signature ({type(exc).__name__})"
            ) from None
