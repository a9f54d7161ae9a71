"""One request/response model over the SCF HTTP event shapes (REFERENCE §4).

An adapter per trigger shape (API gateway, function URL) is chosen by inference, like Mangum's;
`serve()` is the single place where errors become the JSON envelope, CORS is applied, the body
limit is enforced and the per-request log line is written.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, overload

from shared.config import HttpSettings
from shared.errors import (
    BadRequest,
    Forbidden,
    HttpError,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
)

log = logging.getLogger("vod.http")


def _repeated(raw: Mapping[str, str]) -> list[str]:
    seen: set[str] = set()
    repeated = []
    for name in raw:
        lowered = name.lower()
        if lowered in seen:
            repeated.append(lowered)
        seen.add(lowered)
    return repeated


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only header mapping (SCF sends both `Content-Type` and `content-type`)."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self._items = {k.lower(): v for k, v in raw.items()}
        # Names sent more than once in different case (the event is a JSON object, so exact repeats
        # are impossible): a trusted header must not be silently replaced by a client's copy.
        self._ambiguous = frozenset(_repeated(raw)) if len(self._items) != len(raw) else frozenset()

    def is_ambiguous(self, name: str) -> bool:
        return name.lower() in self._ambiguous

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    @overload  # type: ignore[override]
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        # Mapping.get would go through __getitem__ and a KeyError: on the hot path, avoid the raise.
        return self._items.get(name.lower(), default)

    def __repr__(self) -> str:  # never print header values: they carry credentials
        return f"Headers({sorted(self._items)})"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Headers
    query: Mapping[str, str]
    body: bytes
    source_ip: str | None
    request_id: str
    raw: Mapping[str, Any] = field(repr=False)
    # Facts the endpoint learns (e.g. the user id) for the request's log line.
    notes: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Response:
    status: int
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


Endpoint = Callable[[Request], Response]


class EventAdapter(Protocol):
    def infer(self, event: Mapping[str, Any]) -> bool: ...

    def request(self, event: Mapping[str, Any], request_id: str) -> Request: ...


def _text_map(value: object, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):  # SCF events are parsed JSON: objects are dicts
        raise BadRequest(f"event field {name} must be an object", code="bad_event")
    if all(type(v) is str for v in value.values()):
        return value  # the common case, without copying
    # API gateway sends repeated query keys as lists; keep the first, as most frameworks do.
    return {str(k): str(v[0] if isinstance(v, list) and v else v) for k, v in value.items() if v is not None}


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if body is None or body == "":
        return b""
    if not isinstance(body, str):
        raise BadRequest("event body must be a string", code="bad_event")
    if event.get("isBase64Encoded") in (True, "true", "True"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII text
            raise BadRequest("body is marked base64 but is not valid base64", code="bad_event") from exc
    return body.encode("utf-8", "surrogatepass")


def _method(event: Mapping[str, Any], *fallbacks: object) -> str:
    for candidate in (event.get("httpMethod"), *fallbacks):
        if isinstance(candidate, str) and candidate:
            return candidate.upper()
    raise BadRequest("event has no httpMethod", code="bad_event")


class ApiGatewayEvent:
    """API gateway trigger: has `requestContext` (serviceId, requestId, sourceIp)."""

    def infer(self, event: Mapping[str, Any]) -> bool:
        return isinstance(event.get("requestContext"), dict)

    def request(self, event: Mapping[str, Any], request_id: str) -> Request:
        ctx = event["requestContext"]
        query = event.get("queryString") if event.get("queryString") is not None else event.get("queryStringParameters")
        return Request(
            method=_method(event, ctx.get("httpMethod")),
            path=str(event.get("path") or ctx.get("path") or "/"),
            headers=Headers(_text_map(event.get("headers"), "headers")),
            query=_text_map(query, "queryString"),
            body=_body(event),
            source_ip=ctx.get("sourceIp"),
            request_id=str(ctx.get("requestId") or request_id),
            raw=event,
        )


class FunctionUrlEvent:
    """Function URL: only body, headers (lowercase), httpMethod, path, queryString."""

    def infer(self, event: Mapping[str, Any]) -> bool:
        return "httpMethod" in event and "requestContext" not in event

    def request(self, event: Mapping[str, Any], request_id: str) -> Request:
        headers = Headers(_text_map(event.get("headers"), "headers"))
        return Request(
            method=_method(event),
            path=str(event.get("path") or "/"),
            headers=headers,
            query=_text_map(event.get("queryString"), "queryString"),
            body=_body(event),
            source_ip=headers.get("x-scf-remote-addr"),
            request_id=request_id,
            raw=event,
        )


ADAPTERS: tuple[EventAdapter, ...] = (ApiGatewayEvent(), FunctionUrlEvent())


def _context_request_id(context: object) -> str:
    rid = context.get("request_id") if isinstance(context, dict) else getattr(context, "request_id", None)
    return str(rid) if rid else secrets.token_hex(16)  # not uuid: it imports `platform`, slow at cold start


def parse_event(event: object, context: object = None) -> Request:
    if not isinstance(event, dict):
        raise BadRequest("event is not an HTTP trigger event", code="bad_event")
    request_id = _context_request_id(context)
    for adapter in ADAPTERS:
        if adapter.infer(event):
            return adapter.request(event, request_id)
    raise BadRequest("event is not an HTTP trigger event", code="bad_event")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _finite(value: float, text: str) -> float:
    if math.isinf(value):
        raise ValueError(f"{text[:20]} is out of range")  # 1e999 would be stored as non-standard Infinity
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


# Built once: json.loads/dumps with options construct a new codec on every call.
_STRICT_JSON = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_reject_constant,
                                parse_float=lambda text: _finite(float(text), text))
_BODY_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_LOG_JSON = json.JSONEncoder(ensure_ascii=False, default=str)


def json_object(request: Request, *, require_content_type: bool = True) -> dict[str, Any] | None:
    """The body as a JSON object, or None when there is no body. Strict: JSON content type (unless
    `require_content_type=False`, for senders that don't document theirs), UTF-8, no duplicate
    keys, no NaN/Infinity."""
    if not request.body.strip():
        return None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if require_content_type and content_type != "application/json":
        raise UnsupportedMediaType("send the body as application/json", code="unsupported_content_type")
    try:
        text = request.body.decode("utf-8")
        value = _STRICT_JSON.decode(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"body is not valid JSON: {str(exc)[:120]}", code="invalid_json") from exc
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object", code="invalid_json")
    return value


def _allowed_origin(origin: str | None, settings: HttpSettings) -> str | None:
    if not origin:
        return None
    if origin in settings.cors_allow_origins:
        return origin
    if "*" in settings.cors_allow_origins:
        return "*"  # config forbids '*' together with credentials
    return None


def _cors_headers(request: Request | None, settings: HttpSettings) -> dict[str, str]:
    origin = _allowed_origin(request.headers.get("origin") if request else None, settings)
    if origin is None:
        return {}
    headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    if settings.cors_allow_credentials:
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers


def _preflight(request: Request, settings: HttpSettings, methods: tuple[str, ...], allow_headers: str) -> Response:
    if _allowed_origin(request.headers.get("origin"), settings) is None:
        raise Forbidden("this origin is not allowed (CORS_ALLOW_ORIGINS)", code="cors_origin_not_allowed")
    return Response(204, None, {
        "Access-Control-Allow-Methods": ", ".join((*methods, "OPTIONS")),
        "Access-Control-Allow-Headers": allow_headers,
        "Access-Control-Max-Age": "600",
    })


def _log_line(fields: dict[str, Any]) -> None:
    if log.isEnabledFor(logging.INFO):
        # makeRecord + handle skips logging's stack walk for the caller: a large share of a
        # request's cost on this hot path, and the line says where it comes from anyway.
        line = _LOG_JSON.encode(fields)
        log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, line, (), None))


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def to_scf_response(response: Response, request_id: str, extra_headers: Mapping[str, str]) -> dict[str, Any]:
    headers = {"Cache-Control": "no-store", "X-Request-Id": request_id, **extra_headers, **response.headers}
    body = ""
    if response.body is not None:
        headers["Content-Type"] = "application/json; charset=utf-8"
        body = _BODY_JSON.encode(response.body)
    return {"isBase64Encoded": False, "statusCode": response.status, "headers": headers, "body": body}


def _dispatch(request: Request, endpoint: Endpoint, settings: HttpSettings, methods: tuple[str, ...],
              allow_headers: str) -> Response:
    if request.method == "OPTIONS":
        return _preflight(request, settings, methods, allow_headers)
    if request.method not in methods:
        raise MethodNotAllowed(f"use {' or '.join(methods)}", headers={"Allow": ", ".join((*methods, "OPTIONS"))})
    if len(request.body) > settings.max_body_bytes:
        raise PayloadTooLarge(f"body is larger than {settings.max_body_bytes} bytes")
    return endpoint(request)


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
    try:
        request = parse_event(event, context)
        response = _dispatch(request, endpoint, settings, methods, allow_headers)
        code = "ok"
    except HttpError as exc:
        response = Response(exc.status, error_body(exc.code, exc.message), exc.headers)
        code = exc.code
    except Exception:
        # Unknown failures leak nothing to the caller; the log has the details and the request id.
        log.exception(json.dumps({"event": "request.crash", "request_id": request.request_id if request else None}))
        response = Response(500, error_body("internal_error", "internal error"))
        code = "internal_error"
    request_id = request.request_id if request else _context_request_id(context)
    _log_line({
        "event": "request",
        "request_id": request_id,
        "method": request.method if request else None,
        "path": request.path if request else None,
        "status": response.status,
        "outcome": code,
        "latency_ms": round((timer() - started) * 1000, 3),
        **(request.notes if request else {}),
    })
    return to_scf_response(response, request_id, _cors_headers(request, settings))
