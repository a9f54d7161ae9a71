"""pytest plugin (entry point `pytest11`): the `vod_function` and `vod_stack` fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from vodtesting import require_bundle_core

if TYPE_CHECKING:  # imported when a fixture is used: the plugin loads with every pytest run
    from vodlocal.harness import Handler
    from vodtesting.stack import VodStack


# The functions that keep a store: without a DATABASE_URL of the test's, theirs is the test's own (the functions'
# default, .local/vod.sqlite3 in the current directory, would carry events from one test, and run, to the next).
_STORE_FUNCTIONS = ("callback", "events_pull", "uploads")


@pytest.fixture
def vod_function(tmp_path: Path) -> Iterator[Callable[..., Handler]]:
    """`vod_function("sign", env={...})` → the function's `main_handler`, loaded fresh with exactly that
    environment (and, for a function with a store and no DATABASE_URL in it, a database of the test's own, which
    its other functions share); the test's environment is put back at once (load_function does it), and the
    functions' stores are closed after the test."""
    require_bundle_core()
    from vodlocal.harness import close_stores
    from vodtesting.functions import load_function

    loaded: list[Handler] = []
    own = {"DATABASE_URL": f"sqlite:///{tmp_path / 'vod-function.sqlite3'}"}

    def load(name: str, env: Mapping[str, str] | None = None) -> Handler:
        given = dict(env or {})
        # (not as if inside SCF, where the functions refuse any but PostgreSQL: the test checks that, say; nor
        # when env names one: a blank one, as a shell's exported default, is unset to the functions, as here)
        named = given.get("DATABASE_URL", "").strip()
        if name in _STORE_FUNCTIONS and "TENCENTCLOUD_RUNENV" not in given and not named:
            given.update(own)
        loaded.append(load_function(name, given))
        return loaded[-1]

    yield load
    close_stores(loaded)


@pytest.fixture
def vod_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VodStack]:
    """The local gateway (the functions) and the VOD emulator on free loopback ports, for this test; the
    settings it puts into os.environ are undone with the test's own monkeypatch changes."""
    require_bundle_core()
    from vodtesting.stack import start_stack_with

    stack = start_stack_with(monkeypatch, tmp_path / "vod-stack")
    try:
        yield stack
    finally:
        stack.stop()
