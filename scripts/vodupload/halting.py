"""Waits before a retry that an upload task's pause or cancel cuts short.

A task's run sets its halt event here (`halting`), in its own thread; the signature client's and the VOD
client's waits (`wait_to_retry`) then end at a pause or cancel with Halted, as the COS retries do, instead of
sleeping out a backoff or a Retry-After of up to a minute while Ctrl-C or SIGTERM waits. Outside a task's run
(a cancel's clean-up, a caller of the clients alone) they sleep.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar

_HALT: ContextVar[threading.Event | None] = ContextVar("vodupload_halt", default=None)


class Halted(Exception):
    """A pause or cancel arrived while waiting to retry."""


@contextlib.contextmanager
def halting(halt: threading.Event) -> Iterator[None]:
    """Within: the retry waits of this thread end with Halted once `halt` is set."""
    token = _HALT.set(halt)
    try:
        yield
    finally:
        _HALT.reset(token)


def wait_to_retry(seconds: float) -> None:
    halt = _HALT.get()
    if halt is None:
        time.sleep(seconds)
    elif halt.wait(seconds):
        raise Halted
