"""Base64 as the stdlib's `base64` module does it, from `binascii` alone, for the functions' hot paths.

Why: `import base64` also loads `struct` and its `_struct` extension, ~0.7 ms of the sign function's cold start
(`make bench`), for four calls that are `binascii`'s with a step around them. tests/unit/test_b64.py checks each
against `base64` on generated and hostile input.
"""

from __future__ import annotations

from binascii import Error, a2b_base64, b2a_base64

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_TO_URL_SAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URL_SAFE = bytes.maketrans(b"-_", b"+/")


def encode(data: bytes) -> str:
    """base64.b64encode(data).decode("ascii")"""
    return b2a_base64(data, newline=False).decode("ascii")


def decode_strict(text: str | bytes) -> bytes:
    """base64.b64decode(text, validate=True) as Python 3.10 (SCF's runtime) has it, on every version: binascii.Error
    for a character outside the alphabet or bad padding, ValueError for text outside ASCII. (From 3.11 the stdlib
    also refuses padding out of place, such as one `=` too many after 7 characters.)"""
    try:
        data = text.encode("ascii") if isinstance(text, str) else bytes(text)
    except UnicodeEncodeError:
        raise ValueError("string argument should contain only ASCII characters") from None
    # What b64decode(validate=True) lets through to binascii: [A-Za-z0-9+/]*={0,2} (not compiled: ~0.3 ms)
    body = data[:-2] if data.endswith(b"==") else data[:-1] if data.endswith(b"=") else data
    if body.translate(None, _ALPHABET):
        raise Error("Non-base64 digit found")
    return a2b_base64(data)


def url_safe_encode(data: bytes) -> bytes:
    """base64.urlsafe_b64encode(data)"""
    return b2a_base64(data, newline=False).translate(_TO_URL_SAFE)


def url_safe_decode(data: bytes) -> bytes:
    """base64.urlsafe_b64decode(data)"""
    return a2b_base64(data.translate(_FROM_URL_SAFE))
