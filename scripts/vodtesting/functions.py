"""The real handlers, loaded as SCF loads them: a fresh import of functions/<name>/index.py, whose settings
are read at import, under exactly the environment given."""

from __future__ import annotations

import os
from collections.abc import Mapping

from vodlocal.harness import Handler, function_file, load_handler


def load_function(name: str, env: Mapping[str, str]) -> Handler:
    """`main_handler` of a fresh copy of the function, imported with `env` as the whole environment
    (then the environment is put back: the handler keeps what it read)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return load_handler(name, function_file(name))
    finally:
        os.environ.clear()
        os.environ.update(saved)
