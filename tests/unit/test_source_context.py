"""attribute(): a verdict for any text a sourceContext may hold, never an exception."""

from __future__ import annotations

import pytest

from shared.source_context import attribute, seal
from tests.conftest import CONTEXT_KEY

SEALED = seal("alice", "r-1", CONTEXT_KEY)
MAC = SEALED.split(":")[2]


@pytest.mark.parametrize(
    ("context", "why"),
    [
        (SEALED, "sealed"),
        (None, "no_context"),
        (f"u2:r-1:{MAC}:alice\ud800", "not_sealed"),  # a lone surrogate: no UTF-8 form, so none the signer sealed
        (f"u2:r-1:{MAC}:\udcff", "not_sealed"),
        (f"u2:r-1:{MAC}:bob", "bad_seal"),
    ],
    ids=["sealed", "none", "surrogate-after", "surrogate-alone", "another-user"],
)
def test_any_text_gets_a_verdict(context: str | None, why: str) -> None:
    assert attribute(context, [CONTEXT_KEY]).why == why
