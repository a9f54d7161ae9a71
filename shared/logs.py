"""Structured logging: every line the functions write is one JSON object on stdout (SCF ships stdout to CLS).

One path for all of them: `log_event(INFO, "event.name", field=value, ...)` writes
`{"level": ..., "event": ..., "request_id": ..., **fields}`, with the id of the request (or PULL run)
being served, set once by its entry point in `REQUEST_ID`, and an exception, if given, as a field: a
traceback never spills over several lines.

Not the `logging` module: for one JSON line per request it costs every cold start ~4 ms of imports
(threading, traceback, string, weakref…) and every request a LogRecord (`make bench ARGS=sign`).
Application hooks may still use `logging`; their lines go wherever they configure.
"""

from __future__ import annotations

import json
import os
import sys
from contextvars import ContextVar

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40
LEVELS = {"DEBUG": DEBUG, "INFO": INFO, "WARNING": WARNING, "ERROR": ERROR}
_NAMES = {number: name for name, number in LEVELS.items()}
_threshold = INFO

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
# A call's own threshold, over the container's: for functions that share a process (the testing kit's).
CALL_THRESHOLD: ContextVar[int | None] = ContextVar("call_threshold", default=None)
# Built once: json.dumps with options constructs a new encoder on every call. ASCII only: a lone
# surrogate (from a hostile path, say) could not be written to a UTF-8 stream, and the line would be lost.
_ENCODER = json.JSONEncoder(ensure_ascii=True, default=str)


def context_value(context: object, name: str) -> Any:
    """A field of SCF's invocation context (a dict in SCF, an object in some runtimes), or None."""
    return context.get(name) if isinstance(context, dict) else getattr(context, name, None)


def invocation_id(context: object) -> str:
    """The request id SCF gives this invocation (`context.request_id`, a UUID), else a fresh random one: also when
    it is not an id (it goes into a response header and every log line, where a line break must not)."""
    rid = context_value(context, "request_id")
    if isinstance(rid, str) and len(rid) <= 128 and rid.isascii() and rid.replace("-", "").replace(".", "").isalnum():
        return rid
    # What secrets.token_hex(16) returns; not uuid (it imports `platform`) nor secrets (`random`): cold start weight.
    return os.urandom(16).hex()


def set_level(name: str) -> str:
    """Once per container (LOG_LEVEL): lines below it are not written. Returns the level it replaced."""
    global _threshold  # set once per container, read by every line
    previous, _threshold = _NAMES[_threshold], LEVELS[name]
    return previous


def enabled(level: int) -> bool:
    """Whether a line at `level` is written (the call's threshold, else the container's)."""
    return level >= (CALL_THRESHOLD.get() or _threshold)


def as_json(value: Any) -> str:
    """`value` as log_event writes it in a line."""
    return _ENCODER.encode(value)


def log_event(level: int, event: str, /, *, error: BaseException | None = None, **fields: Any) -> None:
    if not enabled(level):
        return
    line: dict[str, Any] = {"level": _NAMES[level], "event": event, "request_id": REQUEST_ID.get(), **fields}
    if error is not None:
        import traceback  # rare, and it imports linecache and tokenize: not on every cold start

        line["exception"] = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    write_line(_ENCODER.encode(line))


def write_line(line: str) -> None:
    """One line (JSON, no line break in it) to stdout, as every log line is written."""
    # sys.stdout looked up each time (a test's capture replaces it); one write call per line, so lines
    # from threads do not interleave; flushed, so a frozen or killed container has lost no line it wrote.
    try:
        stream = sys.stdout
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):  # stdout closed or a broken pipe: lose the line, never the request
        pass
