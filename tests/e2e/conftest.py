"""End-to-end fixtures: the local stack puts its dev settings into os.environ (as `make serve` does)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture
def restore_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
