"""shared.digests against the stdlib's hmac, its referee: same MACs, same comparisons, with or without the
built-in hash modules."""

from __future__ import annotations

import hmac
import json
import random
import subprocess
import sys

import pytest

from shared import digests
from tests.checkout import ROOT

CASES = 12_000


def _generated(rng: random.Random) -> tuple[bytes, bytes, str]:
    algorithm = rng.choice(digests.NAMES)
    # Keys around each block size (64 and 128 bytes: padded, exact, hashed first), and any length up to 300.
    size = rng.choice([0, 1, 63, 64, 65, 127, 128, 129, rng.randrange(300)])
    return rng.randbytes(size), rng.randbytes(rng.choice([0, 1, 55, 56, 64, rng.randrange(2000)])), algorithm


def test_hmac_digest_is_the_stdlibs_on_generated_keys_and_messages() -> None:
    rng = random.Random(20261202)
    for _ in range(CASES):
        key, message, algorithm = _generated(rng)
        assert digests.hmac_digest(key, message, algorithm) == hmac.digest(key, message, algorithm), (
            len(key),
            len(message),
            algorithm,
        )


def test_a_keyed_hmac_answers_each_message_alone_after_its_prefix() -> None:
    # Its key's states are copied for each message, never updated: a MAC is never of the messages before it too.
    rng = random.Random(20261205)
    for algorithm in digests.NAMES:
        key = rng.randbytes(rng.choice([0, 64, 129, rng.randrange(200)]))
        prefix = rng.randbytes(rng.choice([0, 63, 64, 65, rng.randrange(200)]))
        mac = digests.keyed(key, algorithm, prefix)
        for _ in range(300):
            message = rng.randbytes(rng.randrange(300))
            assert mac(message) == hmac.digest(key, prefix + message, algorithm), (len(key), len(message), algorithm)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (b"same", b"same"),
        (b"same", b"sane"),
        (b"short", b"longer"),
        (b"", b""),
        ("ascii", "ascii"),
        ("ascii", "ASCII"),
        ("é", "é"),  # non-ASCII text: both refuse (TypeError)
        (b"bytes", "bytes"),  # mixed types: both refuse
        (bytearray(b"x"), b"x"),
    ],
)
def test_compare_digest_decides_as_the_stdlibs(a: object, b: object) -> None:
    def outcome(compare: object) -> object:
        try:
            return compare(a, b)  # type: ignore[operator]
        except TypeError:
            return TypeError

    assert outcome(digests.compare_digest) == outcome(hmac.compare_digest)


def test_the_built_in_hash_modules_serve_where_python_has_them() -> None:
    # What keeps OpenSSL out of the sign function's cold start (tests/deploy checks the bundle never loads it).
    assert not {make.__module__ for make in map(digests.constructor, digests.NAMES)} & {"_hashlib", "hashlib"}
    assert digests.compare_digest.__module__ == "_operator"


def test_without_the_built_in_modules_hashlibs_give_the_same_answers() -> None:
    # A Python built without them (some FIPS builds): run in a fresh interpreter where importing them fails.
    code = """
import json, sys
for name in ("_sha1", "_sha2", "_sha256", "_sha512", "_operator"):
    sys.modules[name] = None  # import fails, as on a build without the module
from shared import digests
print(json.dumps({"modules": sorted({f.__module__ for f in map(digests.constructor, digests.NAMES)}),
                  "macs": {a: digests.hmac_digest(b"k" * 200, b"message", a).hex() for a in digests.NAMES},
                  "equal": digests.compare_digest(b"abc", b"abc"), "unequal": digests.compare_digest(b"abc", b"abd")}))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    report = json.loads(run.stdout)
    assert report["modules"] == ["_hashlib"]
    assert report["macs"] == {a: hmac.digest(b"k" * 200, b"message", a).hex() for a in digests.NAMES}
    assert (report["equal"], report["unequal"]) == (True, False)
