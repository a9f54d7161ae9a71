"""Structured logging: every line the functions write is one JSON object (SCF ships stdout to CLS).

One path for all of them: `log_event(logger, level, "event.name", field=value, ...)` writes
`{"event": ..., "request_id": ..., **fields}`, with the id of the request (or PULL run) being served,
set once by its entry point in `REQUEST_ID`, and an exception, if given, as a field: a traceback never
spills over several lines.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
from contextvars import ContextVar
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
# Built once: json.dumps with options constructs a new encoder on every call. ASCII only: a lone
# surrogate (from a hostile path, say) could not be written to a UTF-8 stream, and the line would be lost.
_ENCODER = json.JSONEncoder(ensure_ascii=True, default=str)


def context_value(context: object, name: str) -> Any:
    """A field of SCF's invocation context (a dict in SCF, an object in some runtimes), or None."""
    return context.get(name) if isinstance(context, dict) else getattr(context, name, None)


def invocation_id(context: object) -> str:
    """The request id SCF gives this invocation (`context.request_id`), else a fresh random one."""
    rid = context_value(context, "request_id")
    return str(rid) if rid else secrets.token_hex(16)  # not uuid: it imports `platform`, slow at cold start


def log_event(
    logger: logging.Logger, level: int, event: str, /, *, error: BaseException | None = None, **fields: Any
) -> None:
    if not logger.isEnabledFor(level):
        return
    line: dict[str, Any] = {"event": event, "request_id": REQUEST_ID.get(), **fields}
    if error is not None:
        import traceback  # rare, and it imports linecache and tokenize: not on every cold start

        line["exception"] = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    # makeRecord + handle skips logging's walk up the stack for the caller: a large share of a request's
    # cost on the hot path, and the event name says where a line comes from anyway.
    logger.handle(logger.makeRecord(logger.name, level, "(log_event)", 0, _ENCODER.encode(line), (), None))


def setup_logging(level: str = "INFO") -> None:
    """Once per container. Reuses the runtime's root handler when there is one (SCF, pytest),
    otherwise writes bare JSON lines to stdout."""
    logger = logging.getLogger("vod")
    logger.setLevel(level.upper())
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
