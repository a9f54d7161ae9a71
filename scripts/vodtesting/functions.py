"""The real handlers, loaded as SCF loads them: a fresh import of functions/<name>/index.py, whose settings
are read at import, under exactly the environment given."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from shared.config import log_level
from shared.logs import CALL_THRESHOLD, LEVELS, set_level
from vodlocal.harness import Handler, function_file, load_handler


def load_function(name: str, env: Mapping[str, str]) -> Handler:
    """`main_handler` of a fresh copy of the function, imported with `env` as the whole environment
    (then the environment is put back: the handler keeps what it read)."""
    path = function_file(name)
    if not path.is_file():
        known = sorted(p.parent.name for p in path.parent.parent.glob("*/index.py"))
        raise ValueError(f"no function {name!r}: one of {', '.join(known)}")
    given = dict(env)  # before os.environ is cleared: `env` may be os.environ itself
    wrong = sorted(name for name, value in given.items() if type(name) is not str or type(value) is not str)
    if wrong:  # os.environ would refuse it with a TypeError that names nothing
        raise TypeError(f"{wrong[0]!r}: an environment holds text only (write 5 as '5')")
    saved, outer = dict(os.environ), set_level("INFO")  # its import sets its own level: put back after
    os.environ.clear()
    os.environ.update(given)
    try:
        main = load_handler(name, path)
        level = log_level()  # as the function read it
    finally:
        os.environ.clear()
        os.environ.update(saved)
        set_level(outer)

    # In SCF each function has a process (and LOG_LEVEL) of its own; here they share one: each call (in its
    # thread) logs at its function's.
    def handler(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        token = CALL_THRESHOLD.set(LEVELS[level])
        try:
            return main(event, context)
        finally:
            CALL_THRESHOLD.reset(token)

    handler.__wrapped__ = main  # type: ignore[attr-defined]  # its module's store, for close_stores
    return handler
