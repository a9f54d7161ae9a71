"""Every error the functions raise, and the one place where they become HTTP answers.

Domain errors say what went wrong in the domain's own terms and know nothing of HTTP, so the PULL
function, which has no HTTP at all, handles them as they are. HttpError and its subclasses belong to
the HTTP edge (a body that is not JSON, credentials, policy, methods). `as_http_error` turns either
kind into the status and code an HTTP caller gets; `shared.http.serve` is its only caller.
"""

from __future__ import annotations

from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# --- domain -----------------------------------------------------------------------------------------


class DomainError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedEvent(DomainError):
    """A body that is not a VOD event; `field` names the offending field (dotted path)."""

    def __init__(self, field: str, why: str) -> None:
        field = field if len(field) <= 200 else f"{field[:200]}…"  # a path may hold the body's own text (a Type)
        super().__init__(f"{field} {why}")
        self.field = field


class CallbackSignRejected(DomainError):
    """A PUSH notification whose Sign/T does not prove it comes from VOD; `reason` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class StoreUnavailable(DomainError):
    """The store could not be reached or did not commit; nothing was written. Retry later."""

    dedupe_key: str | None = None  # the event's, when one was being stored: what tells its later retry


class VodUnavailable(DomainError):
    """VOD's API could not be asked (network, credentials, throttling); nothing was recorded. Retry later."""


class IssuerKeysUnavailable(DomainError):
    """The token issuer's key set (AUTH_JWT_JWKS_URL) could not be read: no token is refused for it. Retry later."""


class SignatureParamError(DomainError, ValueError):
    """An upload-signature parameter outside VOD's documented domain; `field` is its wire name."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class UserIdTooLong(DomainError, ValueError):
    """The user id does not fit in VOD's sourceContext."""


# --- HTTP -------------------------------------------------------------------------------------------


class HttpError(Exception):
    """An answer other than success, with a stable machine-readable `code`."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers = headers or {}


class BadRequest(HttpError):
    status = 400
    code = "bad_request"


class Unauthorized(HttpError):
    status = 401
    code = "unauthorized"


class Forbidden(HttpError):
    status = 403
    code = "forbidden"


class NotFound(HttpError):
    status = 404
    code = "not_found"


class MethodNotAllowed(HttpError):
    status = 405
    code = "method_not_allowed"


class PayloadTooLarge(HttpError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(HttpError):
    status = 415
    code = "unsupported_media_type"


class ServiceUnavailable(HttpError):
    """A dependency (the store, VOD, the token issuer's keys) failed: the caller should retry later."""

    status = 503
    code = "service_unavailable"


_DOMAIN_ANSWERS: dict[type[DomainError], Callable[[Any], HttpError]] = {
    MalformedEvent: lambda e: BadRequest(e.message, code="malformed_event"),
    CallbackSignRejected: lambda e: Unauthorized(e.message, code=e.reason),
    # VOD retries anything but a 200; the cause stays in the log (it may name the database host).
    StoreUnavailable: lambda e: ServiceUnavailable(
        "the event store is unavailable; retry later", code="store_unavailable"
    ),
    VodUnavailable: lambda e: ServiceUnavailable(
        "VOD could not confirm the event; retry later", code="vod_unavailable"
    ),
    IssuerKeysUnavailable: lambda e: ServiceUnavailable(
        "the sign-in service's keys cannot be read; retry later", code="issuer_keys_unavailable"
    ),
    SignatureParamError: lambda e: BadRequest(e.message, code="invalid_field"),
    UserIdTooLong: lambda e: Forbidden(e.message, code="user_id_too_long"),
}


def as_http_error(error: Exception) -> HttpError | None:
    """The HTTP answer for an error, or None for an unexpected one (a 500 that says nothing)."""
    if isinstance(error, HttpError):
        return error
    if not isinstance(error, DomainError):
        return None
    # The nearest mapped class: a subclass of a mapped error gets its parent's answer, not a 500.
    answer = next((_DOMAIN_ANSWERS[c] for c in type(error).__mro__ if c in _DOMAIN_ANSWERS), None)
    return answer(error) if answer is not None else None
