"""Fixtures for the emulator tests: the COS object API alone (here), the whole emulator (emulator_fixtures)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.clocks import OffsetClock
from vodemu.cos_api import make_cos_app
from vodemu.credentials import CredentialRegistry
from vodemu.objects import ObjectStore

from .cos_helpers import CosEmulator, serving


@pytest.fixture
def start_cos_emulator(tmp_path: Path) -> Iterator[Callable[..., CosEmulator]]:
    """Factory: start a COS emulator with `make_cos_app` options (e.g. a small max_object_size)."""
    with ExitStack() as stack:

        def start(**options: Any) -> CosEmulator:
            clock = OffsetClock()
            store = ObjectStore(tmp_path / f"cos-{secrets.token_hex(4)}", clock=clock)
            credentials = CredentialRegistry(clock)
            port = stack.enter_context(serving(make_cos_app(store, credentials, clock=clock, **options)))
            return CosEmulator(port, store, credentials, clock)

        yield start


@pytest.fixture
def cos_emulator(start_cos_emulator: Callable[..., CosEmulator]) -> CosEmulator:
    return start_cos_emulator()


# ---- VOD emulator fixtures (upload API, cloud API, events tests) -------------------------------------
# The fixtures live in emulator_fixtures.py. Importing them here shares them with test_upload_api.py,
# test_cloud_api.py and test_events.py without per-module imports.
from .emulator_fixtures import (  # noqa: E402, F401
    clock,
    emulator,
    emulator_factory,
    receiver,
    start_receiver,
)

# ---- end of VOD emulator fixtures -----------------------------------------------------------------------
