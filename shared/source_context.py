"""The uploader's identity inside VOD's `sourceContext` passthrough, sealed so that only the signature
function can have written it.

Format `u2:<request-id>:<mac>:<user-id>`, where mac = the first 22 characters of base64url(HMAC-SHA256(
VOD_CONTEXT_KEY, "u2:<request-id>:<user-id>")) (132 bits). The sign function writes it inside the signed
text (a client can neither choose nor alter it); VOD hands it back in `SourceInfo.SourceContext`; the
callback trusts a user id only when the MAC verifies under the current or the previous key. Any other
sourceContext (an upload made another way, an old `u1:` one, a broken seal) names no user, and the record
says why (`Attribution.why`).
"""

from __future__ import annotations

import re
from binascii import b2a_base64
from collections.abc import Callable, Sequence

from shared.digests import compare_digest, keyed
from shared.errors import UserIdTooLong
from shared.records import Record
from shared.vod_limits import MAX_SOURCE_CONTEXT, text_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    Why = Literal["sealed", "no_context", "not_sealed", "bad_seal", "no_key", "unconfirmed"]

PREFIX = "u2"
MAX_REQUEST_ID = 40
_MAC_CHARS = 22
# 10 under VOD's limit, in UTF-8 bytes (text_size): within it however VOD counts.
MAX_CONTEXT = MAX_SOURCE_CONTEXT - 10
MAX_USER_ID = MAX_CONTEXT - len(PREFIX) - MAX_REQUEST_ID - _MAC_CHARS - 3  # 173 bytes: the longest request id fits
_REQUEST_ID_UNSAFE = re.compile(r"[^A-Za-z0-9-]")
_URL_SAFE = bytes.maketrans(b"+/", b"-_")
# base64url's alphabet: a MAC is _MAC_CHARS of it (checked with str.strip, not a pattern compiled at every cold start)
_MAC_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class Attribution(Record):
    """Whom an upload belongs to, as far as its sourceContext proves it."""

    why: Why
    user_id: str | None = None
    request_id: str | None = None
    confirmed: bool = False  # the sourceContext was VOD's answer (DescribeMediaInfos), not an event body's


def _mac(key: str, request_id: str, user_id: str) -> str:
    return _mac_text(keyed(key.encode(), "sha256")(f"{PREFIX}:{request_id}:{user_id}".encode()))


def _mac_text(digest: bytes) -> str:
    return b2a_base64(digest)[:_MAC_CHARS].translate(_URL_SAFE).decode("ascii")  # base64.urlsafe_b64encode's steps


def seal(user_id: str, request_id: str, key: str) -> str:
    """The sourceContext for an upload by `user_id`, sealed with the context key."""
    return sealer(key)(user_id)(request_id)


def check_sealable(user_id: str) -> None:
    """UserIdTooLong for a user id no sourceContext holds: the sign function cannot seal it, so no upload is that
    user's (the uploads function answers the same). The limit is the user id's, not the text's: the same user must
    not sign or fail by the request id's length."""
    if text_size(user_id) > MAX_USER_ID:
        raise UserIdTooLong(
            f"user id is too long for sourceContext (at most {MAX_USER_ID} bytes in UTF-8: fewer characters "
            "outside ASCII)"
        )


def sealer(key: str) -> Callable[..., Callable[[str], str]]:
    """seal(·, ·, key) a user at a time: the key's HMAC prepared once, a user checked once, then sealed into each
    request's sourceContext (the sign function's express lane keeps one per token)."""
    digest = keyed(key.encode(), "sha256")

    def for_user(user_id: str, written: str = ":") -> Callable[[str], str]:
        """`written`: how the text's own separators are written (the express lane's "%3A": URL-encoded at once)."""
        check_sealable(user_id)

        def seal_request(request_id: str) -> str:
            safe_request_id = _REQUEST_ID_UNSAFE.sub("", request_id)[:MAX_REQUEST_ID] or "-"
            mac = _mac_text(digest(f"{PREFIX}:{safe_request_id}:{user_id}".encode()))
            return f"{PREFIX}{written}{safe_request_id}{written}{mac}{written}{user_id}"

        return seal_request

    return for_user


def attribute(source_context: str | None, keys: Sequence[str], *, confirmed: bool = False) -> Attribution:
    """Who uploaded, if the sourceContext was sealed with one of `keys` (current first, then previous)."""
    found = _attribute(source_context, keys)
    return found._replace(confirmed=True) if confirmed else found


def _attribute(source_context: str | None, keys: Sequence[str]) -> Attribution:
    if not source_context:
        return Attribution("no_context")
    prefix, _, rest = source_context.partition(":")
    request_id, _, rest = rest.partition(":")
    mac, _, user_id = rest.partition(":")
    if (
        prefix != PREFIX
        or not user_id
        or len(mac) != _MAC_CHARS
        or mac.strip(_MAC_ALPHABET)
        or _REQUEST_ID_UNSAFE.search(request_id)
    ):
        return Attribution("not_sealed")
    if not keys:
        return Attribution("no_key")
    try:
        sealed = any(compare_digest(mac, _mac(key, request_id, user_id)) for key in keys)
    except UnicodeEncodeError:  # a lone surrogate: no text the sign function sealed (no UTF-8 form to MAC)
        return Attribution("not_sealed")
    return Attribution("sealed", user_id, request_id) if sealed else Attribution("bad_seal")
