"""Request bodies as JSON objects, strictly: no duplicate keys, no NaN/Infinity, UTF-8 only."""

from __future__ import annotations

import json

from shared.errors import BadRequest, UnsupportedMediaType
from shared.http.model import Request

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


# Not math.isinf/isfinite: `math` is an extension module the sign path would load for these two checks alone.
_INFINITY = float("inf")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _finite(value: float, text: str) -> float:
    if value in (_INFINITY, -_INFINITY):
        raise ValueError(f"{text[:20]} is out of range")  # 1e999 would be stored as non-standard Infinity
    return value


def finite_number(value: object) -> float | None:
    """A JSON number as a float, or None: not a number (bools are not), NaN/Infinity, or too large for a float
    (an integer of 400 digits is valid JSON)."""
    if type(value) not in (int, float):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:
        return None
    return number if -_INFINITY < number < _INFINITY else None  # False for NaN too


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


# Built once: json.loads/dumps with options construct a new codec on every call.
_STRICT_JSON = json.JSONDecoder(
    object_pairs_hook=_no_duplicates,
    parse_constant=_reject_constant,
    parse_float=lambda text: _finite(float(text), text),
)


def _unicode(value: Any) -> bool:
    """Whether every key and string, at any depth, has a UTF-8 form (walked without recursion: the decoder
    already accepted this depth)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return False
        elif isinstance(item, dict):
            pending += item
            pending += item.values()
        elif isinstance(item, list):
            pending += item
    return True


def json_object(request: Request, *, require_content_type: bool = True) -> dict[str, Any] | None:
    """The body as a JSON object, or None when there is no body. Strict: JSON content type (unless
    `require_content_type=False`, for senders that don't document theirs), UTF-8, no duplicate
    keys, no NaN/Infinity."""
    if not request.body.strip(b" \t\n\r"):  # JSON's whitespace (RFC 8259 §2), not bytes.strip's (\v, \f too)
        return None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if require_content_type and content_type != "application/json":
        raise UnsupportedMediaType("send the body as application/json", code="unsupported_content_type")
    try:
        text = request.body.decode("utf-8")
        if text.startswith("\ufeff"):  # RFC 8259 §8.1: no byte order mark (json's own error would say "line 1")
            raise ValueError("it starts with a byte order mark")
        value = _STRICT_JSON.decode(text)
    except UnicodeDecodeError as exc:
        raise BadRequest("body is not valid JSON: it is not UTF-8", code="invalid_json") from exc
    except RecursionError as exc:
        raise BadRequest("body nests too deeply", code="invalid_json") from exc
    except ValueError as exc:  # the parser's words, or ours (a duplicate key, NaN); not the interpreter's advice
        why = "a number in it has too many digits" if "integer string conversion" in str(exc) else str(exc)[:120]
        raise BadRequest(f"body is not valid JSON: {why}", code="invalid_json") from exc
    if ("\\ud" in text or "\\uD" in text) and not _unicode(value):
        # An escaped half of a surrogate pair, alone: no UTF-8 form, so not text (RFC 7493 §2.1), and a string
        # kept from it would break every answer that later shows it.
        raise BadRequest("body is not valid JSON: a string holds an unpaired surrogate", code="invalid_json")
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object", code="invalid_json")
    return value
