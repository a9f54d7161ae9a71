"""HMAC (RFC 2104) over CPython's own hash modules, so that the sign path never loads OpenSSL.

Why: `import hmac` or `import hashlib` loads _hashlib and with it libcrypto, ~4 ms of the sign function's
cold start (`make bench`), as much as the rest of the stdlib it imports. CPython ships its own SHA-1 and
SHA-2 modules (what hashlib itself falls back to without OpenSSL), and HMAC over a hash is the few lines
below; tests/unit/test_digests.py checks them against the stdlib's `hmac` on 12,000 generated keys and
messages. A Python built without those modules (some distributions' FIPS builds) gets hashlib's
constructors and the same answers. They are loaded at the first HMAC: functions that only compare secrets
(compare_digest) never load them.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from hmac import compare_digest
    from typing import Any

    def constructor(name: str) -> Callable[..., Any]: ...
else:
    try:
        from _operator import _compare_digest as compare_digest  # what hmac.compare_digest is without OpenSSL
    except ImportError:
        from hmac import compare_digest

    import functools  # already loaded by re and json

    @functools.cache
    def constructor(name):
        """The hash constructor for `name` (one of NAMES), its module loaded at its first use: each module is
        an extension of its own (~0.2-0.4 ms to load), and the sign path needs two of the three."""
        # CPython 3.10 and 3.11 (the bundles' 3.10 first: a failed import costs a search), then 3.12+
        modules = {"sha1": ("_sha1",), "sha256": ("_sha256", "_sha2")}.get(name, ("_sha512", "_sha2"))
        for module in modules:
            try:
                return getattr(__import__(module), name)
            except ImportError:
                pass
        import hashlib

        return getattr(hashlib, name)


NAMES = ("sha1", "sha256", "sha384", "sha512")
__all__ = ["NAMES", "compare_digest", "constructor", "hmac_digest", "keyed"]

_INNER = bytes(x ^ 0x36 for x in range(256))
_OUTER = bytes(x ^ 0x5C for x in range(256))


def hmac_digest(key: bytes, message: bytes, algorithm: str) -> bytes:
    """HMAC-`algorithm` (one of NAMES) of bytes `message` under bytes `key`: hmac.digest(...)."""
    return keyed(key, algorithm)(message)


def keyed(key: bytes, algorithm: str, prefix: bytes = b"") -> Callable[[bytes], bytes]:
    """hmac_digest(key, prefix + ·, algorithm), the key's two padded blocks and the prefix hashed once: for a key
    (and the start of a message) used on every request."""
    new = constructor(algorithm)
    inner = new()
    if len(key) > inner.block_size:
        key = new(key).digest()
    key = key.ljust(inner.block_size, b"\0")
    inner.update(key.translate(_INNER))
    inner.update(prefix)
    outer = new(key.translate(_OUTER))

    def digest(message: bytes) -> bytes:
        hashed = inner.copy()
        hashed.update(message)
        result = outer.copy()
        result.update(hashed.digest())
        return result.digest()  # type: ignore[no-any-return]

    return digest
