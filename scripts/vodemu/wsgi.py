"""Small WSGI helpers shared by the emulator's APIs: JSON answers, bounded bodies, crash guards."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
else:  # only needed for annotations
    StartResponse = WSGIApplication = WSGIEnvironment = object

__all__ = ["StartResponse", "WSGIApplication", "WSGIEnvironment", "guarded", "json_response", "read_body"]

log = logging.getLogger("vodemu")

MAX_API_BODY = 1024 * 1024  # API bodies are small JSON documents; media goes to COS


class BodyTooLarge(Exception):
    pass


def is_decimal(text: str) -> bool:
    """A non-negative integer as a request writes one: ASCII digits only (int() refuses "²", which isdigit()
    takes), and few enough for int() (it refuses more than 4300) and for any size or time (at most 19)."""
    return text.isascii() and text.isdigit() and len(text) <= 19


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(payload, ensure_ascii=False), status=status, headers=headers)
    # Exactly this value: the tencentcloud SDK ignores error bodies whose Content-Type has parameters.
    response.headers["Content-Type"] = "application/json"
    return response


def read_body(request: Request, limit: int = MAX_API_BODY) -> bytes:
    """The raw request body, refusing bodies over `limit` before reading them."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"request body over {limit} bytes")
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise BodyTooLarge(f"request body over {limit} bytes")
    return data


def parse_json(data: bytes) -> Any:
    """A request's JSON, as a service would read it: ValueError for what is not JSON, nested past the decoder's depth
    too, or holds text with a lone surrogate (an emoji cut in half: valid JSON, but no Unicode text to store)."""
    try:
        value = json.loads(data)
        json.dumps(value, ensure_ascii=False).encode()
    except RecursionError:
        raise ValueError("nested too deep") from None
    except UnicodeEncodeError:
        raise ValueError("text holds a lone UTF-16 surrogate") from None
    return value


Handler = Callable[[Request], Response]
ErrorAnswer = Callable[[], Response]


def guarded(handler: Handler, on_error: ErrorAnswer, name: str) -> WSGIApplication:
    """A WSGI app running `handler`; a crash is logged with its traceback and answered by `on_error` only."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = handler(request)
        except Exception:
            log.exception("%s: unexpected error on %s %s", name, request.method, request.path)
            response = on_error()
        return response(environ, start_response)

    return app
