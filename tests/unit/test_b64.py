"""shared.b64 against the stdlib's base64, its referee: the same bytes, the same refusals."""

from __future__ import annotations

import base64
import binascii
import functools
import random
import re
import sys
from collections.abc import Callable
from typing import Any

import pytest

from shared import b64

CASES = 20_000
STRICT: Callable[[str | bytes], bytes] = functools.partial(base64.b64decode, validate=True)
if sys.version_info >= (3, 11):
    # b64decode(validate=True) as Python 3.10 has it (SCF's runtime), which shared.b64 is on every version. Later
    # ones use binascii's strict mode, which also refuses padding out of place (`+3WW2qg==`): here, 3.10's steps.
    def STRICT(text: str | bytes) -> bytes:
        data = base64._bytes_from_decode_data(text)  # type: ignore[attr-defined]  # ValueError outside ASCII
        if not re.fullmatch(b"[A-Za-z0-9+/]*={0,2}", data):
            raise binascii.Error("Non-base64 digit found")
        return binascii.a2b_base64(data)


def _outcome(call: Callable[..., Any], *args: Any) -> Any:
    try:
        return call(*args)
    except (binascii.Error, ValueError) as exc:  # which of the two, not its words
        return type(exc)


def _generated(rng: random.Random) -> bytes | str:
    """Valid Base64 of random bytes (either alphabet), then sometimes broken: a character out of the alphabet,
    padding added or taken away, a line break, text outside ASCII."""
    data = rng.randbytes(rng.randrange(40))
    text = rng.choice([base64.b64encode, base64.urlsafe_b64encode])(data)
    for _ in range(rng.choice([0, 0, 1, 2])):
        spot = rng.randrange(len(text) + 1)
        text = text[:spot] + rng.choice([b"=", b"==", b"\n", b" ", b"*", b"-", b"_", b"+", b"/", b"A"]) + text[spot:]
    if rng.random() < 0.2:
        text = text.rstrip(b"=")
    if rng.random() < 0.1:
        return text.decode("ascii") + "é"
    return text.decode("ascii") if rng.random() < 0.5 else text


def test_each_is_the_stdlibs_on_generated_input() -> None:
    rng = random.Random(20261205)
    for _ in range(CASES):
        data = rng.randbytes(rng.randrange(100))
        assert b64.encode(data) == base64.b64encode(data).decode("ascii")
        assert b64.url_safe_encode(data) == base64.urlsafe_b64encode(data)
        text = _generated(rng)
        assert _outcome(b64.decode_strict, text) == _outcome(STRICT, text)
        raw = text.encode("ascii", "replace") if isinstance(text, str) else text
        assert _outcome(b64.url_safe_decode, raw) == _outcome(base64.urlsafe_b64decode, raw)


@pytest.mark.parametrize(
    "text", ["", "e30=", "e30", "e3 0=", "e30=\n", "e30===", "e30=e30=", "+3WW2qg==", "é", b"e30=", "-_-_"]
)
def test_edge_cases_are_the_stdlibs(text: str | bytes) -> None:
    assert _outcome(b64.decode_strict, text) == _outcome(STRICT, text)
