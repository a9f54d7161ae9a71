"""COS through `qcloud_cos.CosS3Client` (cos-python-sdk-v5) with a session's renewing credentials.

The SDK's own retries are off (`retry=0`): they sleep without regard for a pause or cancel. `call_cos`
retries instead, with backoff a pause or cancel interrupts.
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

from vodupload.credentials import SessionCredentials
from vodupload.errors import StorageError
from vodupload.halting import Halted

log = logging.getLogger("vodupload")

T = TypeVar("T")

# 200: CompleteMultipartUpload's answer when COS fails after it began answering (the SDK raises CosServiceError for
# a 200 without an ETag); S3, whose API COS follows, says to retry it.
_TRANSIENT_STATUSES = {200, 408, 409, 429}
# 400s for a request body that did not arrive whole, which a retry sends again: too slow, or shorter or longer
# than its Content-Length (COS's error codes, https://cloud.tencent.com/document/product/436/7730; S3's name too);
# and COS's own for a failure of its, whatever the status they come with.
_TRANSIENT_CODES = {
    "RequestTimeout",
    "RequestTimeOut",
    "IncompleteBody",
    "EntitySizeNotMatch",
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
}
_SDK_LOGGERS = ("qcloud_cos.cos_auth", "qcloud_cos.cos_client")


class _NoSdkDebug(logging.Filter):
    """The SDK logs request headers (Authorization, x-cos-security-token) and signing keys at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_FILTER = _NoSdkDebug()
for _name in _SDK_LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)


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
    # The SDK writes IP into its URLs as it is: an IPv6 address needs its brackets back (urlsplit drops them).
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return CosEndpoint(scheme, host, parts.port or (443 if scheme == "https" else 80))


class _SessionConfig(CosConfig):  # type: ignore[misc]  # the SDK has no type hints
    """CosConfig that takes the security token from the CredentialInstance as well.

    The SDK reads `secret_id`/`secret_key` from CredentialInstance per request, but sends
    x-cos-security-token from `CosConfig._token` (cos_client.py, `CosS3Client.send_request`), which it only
    ever sets from `Token=`: it never reads the instance's `token`. Temporary credentials need the token
    that belongs to the secret, so `_token` reads it from the instance too.
    """

    @property
    def _token(self) -> str:
        token: str = self._credential_inst.token
        return token

    @_token.setter
    def _token(self, value: object) -> None:
        """CosConfig.__init__ stores `Token=` (None here): the instance is the only source."""


def make_client(
    credentials: SessionCredentials, endpoint: CosEndpoint | None, session: requests.Session, timeout: float
) -> Any:
    options: dict[str, Any] = {
        "Region": credentials.applied.region,
        "CredentialInstance": credentials,
        "Timeout": timeout,
        "Scheme": "https",
    }
    if endpoint is not None:
        # IP/Port mode: the URL is the endpoint, the bucket travels (signed) in the Host header.
        options.update(Scheme=endpoint.scheme, IP=endpoint.host, Port=endpoint.port)
    return CosS3Client(_SessionConfig(**options), retry=0, session=session)


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


def _is_transient(exc: CosServiceError) -> bool:
    status = exc.get_status_code()
    return status >= 500 or status in _TRANSIENT_STATUSES or exc.get_error_code() in _TRANSIENT_CODES


def _clock_hint(exc: CosServiceError) -> str:
    # The SDK signs each request with this computer's time (a window from a minute before it): COS refuses it
    # when that time is far off its own, and renewed credentials cannot help.
    message = str(exc.get_error_msg()).lower()
    too_far = exc.get_error_code() == "RequestTimeTooSkewed" or "request has expired" in message
    return " (this computer's clock is off: set it right, then run again)" if too_far else ""


def call_cos(
    credentials: SessionCredentials,
    operation: Callable[[], T],
    what: str,
    policy: RetryPolicy,
    halt: threading.Event,
    *,
    renew: bool = True,
) -> T:
    """Run `operation()` with retries: once with renewed credentials after a 403 (credentials that expired
    unnoticed, e.g. after the local clock was set back; refused again, it is a real refusal), unless not `renew` (a
    request such credentials may not make at all), with backoff after a transient failure (5xx, 408/409/429, a body
    cut short, network). Raises StorageError when it gives up, Halted when a pause or cancel arrives during a
    backoff."""
    failure = "no attempt made"
    backoffs = 0
    renewed = False
    for attempt in range(policy.attempts):
        if backoffs and halt.wait(policy.delay(backoffs)):
            raise Halted
        try:
            return operation()
        except CosServiceError as exc:
            failure = describe(exc)
            if exc.get_status_code() == 403 and renew and not renewed:
                log.info("%s: %s; renewing the credentials", what, failure)
                credentials.renew_after_denial()
                renewed, backoffs = True, 0
                continue
            if not _is_transient(exc):
                raise StorageError(
                    f"{what}: {failure}{_clock_hint(exc)}", status=exc.get_status_code(), code=exc.get_error_code()
                ) from None
        except CosClientError as exc:
            failure = describe(exc)
        backoffs += 1
        log.info("%s failed (attempt %d of %d): %s", what, attempt + 1, policy.attempts, failure)
    raise StorageError(f"{what} failed after {policy.attempts} attempts: {failure}")
