"""One HTTP invocation end to end: event → Request → endpoint → SCF response, never raising.

The single place where errors become the JSON error envelope (through shared.errors.as_http_error),
CORS is applied, the body limit is enforced, the request id is set for every log line, and the
request's own log line is written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping

from shared import b64
from shared.config import HttpSettings
from shared.errors import (
    CallbackSignRejected,
    IssuerKeysUnavailable,
    MalformedEvent,
    MethodNotAllowed,
    PayloadTooLarge,
    StoreUnavailable,
    VodUnavailable,
    as_http_error,
)
from shared.http.cors import cors_headers, preflight
from shared.http.model import Endpoint, Request, Response
from shared.http.triggers import UnreadableBody, request_from_event
from shared.logs import ERROR, INFO, REQUEST_ID, WARNING, invocation_id, log_event

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

BODY_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # built once


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def to_scf_response(response: Response, request_id: str, extra_headers: Mapping[str, str]) -> dict[str, Any]:
    headers = {"Cache-Control": "no-store", "X-Request-Id": request_id, **extra_headers, **response.headers}
    if response.content is not None:  # a page or an asset: bytes, possibly gzip-encoded
        body = b64.encode(response.content)
        return {"isBase64Encoded": True, "statusCode": response.status, "headers": headers, "body": body}
    body = ""
    if response.body is not None:
        headers["Content-Type"] = "application/json; charset=utf-8"
        headers["X-Content-Type-Options"] = "nosniff"  # JSON, never read as a page or a script
        body = BODY_JSON.encode(response.body)
    return {"isBase64Encoded": False, "statusCode": response.status, "headers": headers, "body": body}


def _allow(methods: tuple[str, ...], settings: HttpSettings) -> dict[str, str]:
    """The Allow header: what the endpoint takes (HEAD with GET; OPTIONS where browsers call it)."""
    head = ("HEAD",) if "GET" in methods else ()
    return {"Allow": ", ".join((*methods, *head, *(("OPTIONS",) if settings.cors else ())))}


def _dispatch(
    request: Request, endpoint: Endpoint, settings: HttpSettings, methods: tuple[str, ...], allow_headers: str
) -> Response:
    if request.method == "OPTIONS" and settings.cors:
        if not request.headers.get("origin"):  # not a browser's preflight: what the endpoint takes (RFC 9110 §9.3.7)
            return Response(204, None, _allow(methods, settings))
        return preflight(request, settings, methods, allow_headers)
    # HEAD: GET's whole answer. The HTTP server in front drops the body and keeps its Content-Length (RFC 9110
    # §9.3.2, §8.6); an empty body here would be announced as Content-Length: 0.
    if request.method == "HEAD" and "GET" in methods:
        request = request._replace(method="GET")
    elif request.method not in methods:
        raise MethodNotAllowed(f"use {' or '.join(methods)}", headers=_allow(methods, settings))
    if len(request.body) > settings.max_body_bytes:
        raise PayloadTooLarge(f"body is larger than {settings.max_body_bytes} bytes")
    return endpoint(request)


def _answer(error: Exception, notes: dict[str, Any]) -> tuple[Response, str]:
    """The answer for an error, as shared.errors maps it; anything unexpected is a 500 that leaks nothing
    (the log has the details and the request id)."""
    http = as_http_error(error)
    if http is None:
        log_event(ERROR, "request.crash", error=error)
        return Response(500, error_body("internal_error", "internal error")), "internal_error"
    # Why, for the operator; the caller only hears "retry later".
    if isinstance(error, StoreUnavailable):
        notes["store_error"] = error.message  # redacted by the store
    elif isinstance(error, VodUnavailable):
        notes["vod_error"] = error.message  # the call that failed, or what VOD does not vouch for
    elif isinstance(error, IssuerKeysUnavailable):
        notes["issuer_keys_error"] = error.message  # what the key set's URL answered, or did not
    elif isinstance(error, CallbackSignRejected):
        notes["sign_error"] = error.message  # which check refused it (never the Sign or T it came with)
    elif http.status < 500:  # why, as the caller was told (a token's missing claim, a field): nothing secret
        notes["error_detail"] = http.message[:300]
    return Response(http.status, error_body(http.code, http.message), http.headers), http.code


def _level(response: Response, error: Exception | None) -> int:
    # What an operator logging at WARNING must still see: an outage, or VOD's events refused (a wrong
    # SignKey, say; or one it signed that this build cannot read). Each loses events once VOD stops retrying.
    refused_event = isinstance(error, (CallbackSignRejected, MalformedEvent))
    return WARNING if response.status >= 500 or refused_event else INFO


def serve(
    event: object,
    context: object,
    endpoint: Endpoint,
    settings: HttpSettings,
    *,
    methods: tuple[str, ...] = ("POST",),
    allow_headers: str = "Authorization, Content-Type",
    timer: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Run one HTTP invocation end to end and return the SCF response dict. Never raises."""
    started = timer()
    request: Request | None = None
    invocation = invocation_id(context)  # once: without one from SCF it is random
    token = REQUEST_ID.set(invocation)
    notes: dict[str, Any] = {}
    failure: Exception | None = None
    try:
        request = request_from_event(event, invocation)
        REQUEST_ID.set(request.request_id)
        notes = request.notes
        response, code = _dispatch(request, endpoint, settings, methods, allow_headers), "ok"
    except Exception as error:
        if isinstance(error, UnreadableBody):  # all but the body was read: answered as that request
            request = error.request
            REQUEST_ID.set(request.request_id)
        failure = error
        response, code = _answer(error, notes)
    try:
        log_event(
            _level(response, failure),
            "request",
            method=request.method[:20] if request else None,  # the caller's: bounded
            path=request.path[:1000] if request else None,
            status=response.status,
            outcome=code,
            latency_ms=round((timer() - started) * 1000, 3),
            **notes,
        )
        return to_scf_response(
            response, REQUEST_ID.get() or "", cors_headers(request.headers.get("origin") if request else None, settings)
        )
    finally:
        REQUEST_ID.reset(token)
