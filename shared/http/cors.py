"""CORS for browser callers of the sign and uploads functions: allowed origins from the settings, preflights
answered."""

from __future__ import annotations

from shared.config import HttpSettings
from shared.errors import Forbidden
from shared.http.model import Request, Response


def _allowed_origin(origin: str | None, settings: HttpSettings) -> str | None:
    if not origin:
        return None
    if origin in settings.cors_allow_origins:
        return origin
    if "*" in settings.cors_allow_origins:
        return "*"  # config forbids '*' together with credentials
    return None


def cors_headers(origin: str | None, settings: HttpSettings) -> dict[str, str]:
    """The CORS headers of an answer to a request from `origin` (its Origin header, if any)."""
    origin = _allowed_origin(origin, settings)
    if origin is None:
        # Vary all the same: a cache must not hand an allowed origin the answer it kept for another (or for none)
        return {"Vary": "Origin"} if settings.cors_allow_origins else {}
    # A page on another origin reads the status API's ETag (for If-None-Match), a request id to report, and how
    # long a gateway in front asks it to wait.
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": "ETag, X-Request-Id, Retry-After",
        "Vary": "Origin",
    }
    if settings.cors_allow_credentials:
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers


def preflight(request: Request, settings: HttpSettings, methods: tuple[str, ...], allow_headers: str) -> Response:
    if _allowed_origin(request.headers.get("origin"), settings) is None:
        raise Forbidden("this origin is not allowed (CORS_ALLOW_ORIGINS)", code="cors_origin_not_allowed")
    return Response(
        204,
        None,
        {
            "Access-Control-Allow-Methods": ", ".join((*methods, "OPTIONS")),
            "Access-Control-Allow-Headers": allow_headers,
            "Access-Control-Max-Age": "600",
        },
    )
