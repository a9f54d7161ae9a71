"""SCF's HTTP trigger events (API gateway, function URL) turned into a Request: one adapter per shape,
chosen by inference, like Mangum's. The shapes: API gateway's integrated request
(https://cloud.tencent.com/document/product/583/31927) and function URLs
(https://cloud.tencent.com/document/product/583/96099)."""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping

from shared import b64
from shared.errors import BadRequest
from shared.http.model import Headers, Request

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

    class EventAdapter(Protocol):
        def infer(self, event: Mapping[str, Any]) -> bool: ...

        def request(self, event: Mapping[str, Any], request_id: str, body: bytes) -> Request: ...


_SCALARS = (str, int, float)  # and bool, an int


def _text_map(value: object, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):  # SCF events are parsed JSON: objects are dicts
        raise BadRequest(f"event field {name} must be an object", code="bad_event")
    if all(type(v) is str for v in value.values()):
        return value  # the common case, without copying
    # API gateway sends repeated query keys as lists; keep the first, as most frameworks do (none: absent). A key
    # without a value (?flag) it sends as true: the empty text a URL gives it, not "True". An object or a list
    # within is no value a URL or a header can carry (and str() of a deep one overflows the stack): absent too.
    firsts = ((k, (v[0] if v else None) if isinstance(v, list) else v) for k, v in value.items())
    return {str(k): "" if v is True else str(v) for k, v in firsts if isinstance(v, _SCALARS)}


def _repeated(value: object) -> frozenset[str]:
    """The names of a query map sent with several values (a list of more than one)."""
    if not isinstance(value, dict):
        return frozenset()
    return frozenset(str(k) for k, v in value.items() if isinstance(v, list) and len(v) > 1)


def _path(value: object) -> str:
    if not value:
        return "/"
    if not isinstance(value, _SCALARS):  # (str() of a deep one would overflow the stack)
        raise BadRequest("event field path must be text", code="bad_event")
    return str(value)


# Headers read whose value is a list (RFC 9110 §5.3): lines of one sent several times are that list, comma-joined.
_LIST_HEADERS = frozenset({"if-none-match"})


def _headers(event: Mapping[str, Any]) -> Headers:
    raw = event.get("headers")
    text = _text_map(raw, "headers")
    if text is raw or not isinstance(raw, dict):  # all plain strings (the common case): nothing sent twice
        return Headers(text)
    several = []
    for name, value in raw.items():
        if isinstance(value, list) and len(value) > 1:
            if str(name).lower() not in _LIST_HEADERS:
                several.append(str(name))  # one value only: which one counts is in doubt
            elif all(type(line) is str for line in value):
                text[str(name)] = ", ".join(value)
    return Headers(text, several)


class UnreadableBody(BadRequest):
    """A body that is not one (not text, or marked base64 but not): raised with the rest of the request
    read, so that its answer still carries the gateway's request id and its CORS headers."""

    def __init__(self, message: str, request: Request) -> None:
        super().__init__(message, code="bad_event")
        self.request = request


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if body is None or body == "":
        return b""
    if not isinstance(body, str):
        raise BadRequest("event body must be a string", code="bad_event")
    marked = event.get("isBase64Encoded")
    if isinstance(marked, str):
        marked = {"true": True, "false": False}.get(marked.lower(), marked)
    if marked is not None and not isinstance(marked, bool):  # not a number either (1 == True)
        raise BadRequest("event field isBase64Encoded must be true or false", code="bad_event")
    if marked:
        try:
            return b64.decode_strict(body)
        except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII text
            raise BadRequest("body is marked base64 but is not valid base64", code="bad_event") from exc
    return body.encode("utf-8", "surrogatepass")


def _method(event: Mapping[str, Any]) -> str:
    # Not requestContext's httpMethod: the method the API was configured with ("ANY"), not the request's
    method = event.get("httpMethod")
    if isinstance(method, str) and method:
        return method.upper()
    raise BadRequest("event has no httpMethod", code="bad_event")


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def gateway_request_id(value: object) -> str | None:
    """The gateway's request id, when it is one: it goes into a response header and every log line, so
    nothing else (CR/LF, …) may pass."""
    return value if isinstance(value, str) and _REQUEST_ID.fullmatch(value) else None


class ApiGatewayEvent:
    """API gateway trigger: has `requestContext` (serviceId, requestId, sourceIp)."""

    def infer(self, event: Mapping[str, Any]) -> bool:
        return isinstance(event.get("requestContext"), dict)

    def request(self, event: Mapping[str, Any], request_id: str, body: bytes) -> Request:
        ctx = event["requestContext"]
        query = event.get("queryString") if event.get("queryString") is not None else event.get("queryStringParameters")
        return Request(
            method=_method(event),
            path=_path(event.get("path") or ctx.get("path")),
            headers=_headers(event),
            query=_text_map(query, "queryString"),
            body=body,
            request_id=gateway_request_id(ctx.get("requestId")) or request_id,
            raw=event,
            notes={},
            repeated=_repeated(query),
        )


class FunctionUrlEvent:
    """Function URL: only body, headers (lowercase), httpMethod, path, queryString."""

    def infer(self, event: Mapping[str, Any]) -> bool:
        return "httpMethod" in event and "requestContext" not in event

    def request(self, event: Mapping[str, Any], request_id: str, body: bytes) -> Request:
        headers = _headers(event)
        return Request(
            method=_method(event),
            path=_path(event.get("path")),
            headers=headers,
            query=_text_map(event.get("queryString"), "queryString"),
            body=body,
            request_id=request_id,
            raw=event,
            notes={},
            repeated=_repeated(event.get("queryString")),
        )


ADAPTERS: tuple[EventAdapter, ...] = (ApiGatewayEvent(), FunctionUrlEvent())


def request_from_event(event: object, request_id: str) -> Request:
    """The request an HTTP trigger event carries; `request_id` (the invocation's) unless the gateway gives one."""
    if not isinstance(event, dict):
        raise BadRequest("event is not an HTTP trigger event", code="bad_event")
    for adapter in ADAPTERS:
        if adapter.infer(event):
            try:
                body = _body(event)
            except BadRequest as exc:
                raise UnreadableBody(exc.message, adapter.request(event, request_id, b"")) from None
            return adapter.request(event, request_id, body)
    raise BadRequest("event is not an HTTP trigger event", code="bad_event")
