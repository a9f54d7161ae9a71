"""COS with VOD's temporary credentials: SDK clients, fresh credentials before they expire, retries.

Requests go through `qcloud_cos.CosS3Client` (cos-python-sdk-v5) with its own retries off: the retry
loop here knows about pausing, cancelling and re-applying for credentials, the SDK's does not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosClientError, CosServiceError

from vodupload.errors import StorageError
from vodupload.vod_api import Applied

log = logging.getLogger("vodupload")

T = TypeVar("T")

# COS answers that mean "these credentials no longer work": re-apply for fresh ones, then retry.
_DENIED_CODES = {"AccessDenied", "InvalidAccessKeyId", "ExpiredToken", "InvalidToken", "TokenExpired",
                 "SignatureDoesNotMatch", "RequestTimeTooSkewed"}
_TRANSIENT_STATUSES = {408, 409, 429}
_SDK_LOGGERS = ("qcloud_cos.cos_auth", "qcloud_cos.cos_client")


class _NoSdkDebug(logging.Filter):
    """The SDK logs request headers (Authorization, x-cos-security-token) and signing keys at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_FILTER = _NoSdkDebug()
for _name in _SDK_LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)


class Halted(Exception):
    """A pause or cancel arrived while waiting to retry."""


@dataclass(frozen=True)
class CosEndpoint:
    """Where COS requests go instead of `<bucket>.cos.<region>.myqcloud.com` (the local emulator)."""

    scheme: str
    host: str
    port: int


def cos_endpoint(url: str | None) -> CosEndpoint | None:
    if not url:
        return None
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"endpoint {url!r} has no host")
    scheme = parts.scheme or "http"
    return CosEndpoint(scheme, parts.hostname, parts.port or (443 if scheme == "https" else 80))


def make_client(applied: Applied, endpoint: CosEndpoint | None, session: requests.Session, timeout: float) -> Any:
    cert = applied.credentials
    options: dict[str, Any] = {"Region": applied.region, "SecretId": cert.secret_id, "SecretKey": cert.secret_key,
                               "Token": cert.token, "Timeout": timeout, "Scheme": "https"}
    if endpoint is not None:
        # IP/Port mode: the URL is the endpoint, the bucket travels (signed) in the Host header.
        options.update(Scheme=endpoint.scheme, IP=endpoint.host, Port=endpoint.port)
    return CosS3Client(CosConfig(**options), retry=0, session=session)


class CredentialKeeper:
    """The current COS client, re-applying (same session) for fresh credentials before they expire.

    Expiry is judged on VOD's clock (the answer's `timestamp`), so a skewed local clock does not matter;
    `margin` seconds ahead of expiredTime, capped at half the credential lifetime so that short-lived
    credentials do not make every part re-apply.
    """

    def __init__(
        self,
        applied: Applied,
        reapply: Callable[[], Applied],
        make: Callable[[Applied], Any],
        *,
        clock: Callable[[], float],
        margin: float,
        on_refresh: Callable[[str], None],
    ) -> None:
        self._reapply = reapply
        self._make = make
        self._clock = clock
        self._margin = margin
        self._on_refresh = on_refresh
        self._lock = threading.Lock()
        self._generation = 0
        self._install(applied)

    @property
    def applied(self) -> Applied:
        with self._lock:
            return self._applied

    def client(self) -> tuple[Any, int]:
        """(client, generation); the generation identifies the credentials the client signs with."""
        with self._lock:
            if self._expiring():
                self._refresh("the temporary credentials are about to expire")
            return self._client, self._generation

    def refresh_after_denial(self, generation: int) -> None:
        """COS refused credentials of `generation`; fetch new ones unless another thread already did."""
        with self._lock:
            if generation == self._generation:
                self._refresh("COS refused the temporary credentials")

    def _install(self, applied: Applied) -> None:
        self._applied = applied
        self._client = self._make(applied)
        self._skew = applied.server_time - self._clock() if applied.server_time else 0.0
        self._generation += 1

    def _expiring(self) -> bool:
        applied = self._applied
        lifetime = applied.credential_lifetime if applied.server_time else self._margin * 2
        margin = min(self._margin, max(lifetime, 0) / 2)
        return self._clock() + self._skew >= applied.credentials.expired_time - margin

    def _refresh(self, reason: str) -> None:
        fresh = self._reapply()
        old = self._applied
        if (fresh.bucket, fresh.video_key, fresh.cover_key) != (old.bucket, old.video_key, old.cover_key):
            raise StorageError("VOD moved the upload to other storage when renewing its credentials")
        self._install(fresh)
        self._on_refresh(reason)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # the first try and 5 retries, like the SDK's sliced upload
    backoff: float = 0.5  # seconds before the first retry, doubling
    max_backoff: float = 8.0

    def delay(self, retry: int) -> float:
        return float(min(self.max_backoff, self.backoff * 2 ** (retry - 1)))


def describe(exc: CosServiceError | CosClientError) -> str:
    if isinstance(exc, CosServiceError):
        return f"COS {exc.get_status_code()} {exc.get_error_code()}: {exc.get_error_msg()}"
    return f"network error: {exc}"


def _is_denied(exc: CosServiceError) -> bool:
    return exc.get_status_code() == 403 or exc.get_error_code() in _DENIED_CODES


def _is_transient(exc: CosServiceError) -> bool:
    return exc.get_status_code() >= 500 or exc.get_status_code() in _TRANSIENT_STATUSES


def call_cos(keeper: CredentialKeeper, operation: Callable[[Any], T], what: str, policy: RetryPolicy,
             halt: threading.Event) -> T:
    """Run `operation(client)` with retries: fresh credentials after a denial (once: denied again, it is a
    real refusal), backoff after a transient failure (5xx, 408/409/429, network). Raises StorageError
    when it gives up, Halted when a pause or cancel arrives during a backoff."""
    failure = "no attempt made"
    backoffs = 0
    renewed = False
    for attempt in range(policy.attempts):
        if backoffs and halt.wait(policy.delay(backoffs)):
            raise Halted
        client, generation = keeper.client()
        try:
            return operation(client)
        except CosServiceError as exc:
            failure = describe(exc)
            if _is_denied(exc) and not renewed:
                log.info("%s: %s; renewing the credentials", what, failure)
                keeper.refresh_after_denial(generation)
                renewed, backoffs = True, 0
                continue
            if not _is_transient(exc):
                raise StorageError(f"{what}: {failure}", status=exc.get_status_code(),
                                   code=exc.get_error_code()) from None
        except CosClientError as exc:
            failure = describe(exc)
        backoffs += 1
        log.info("%s failed (attempt %d of %d): %s", what, attempt + 1, policy.attempts, failure)
    raise StorageError(f"{what} failed after {policy.attempts} attempts: {failure}")
