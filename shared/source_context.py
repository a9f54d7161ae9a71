"""The uploader's identity inside VOD's `sourceContext` passthrough.

Format `u1:<request-id>:<user-id>`: written by the signature function only (the client cannot
choose it, it is inside the HMAC), read back by the callback from `SourceInfo.SourceContext`.
The request id has no ':' so the user id is everything after the second ':', unescaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import UserIdTooLong
from shared.vod_limits import MAX_SOURCE_CONTEXT

PREFIX = "u1"
_REQUEST_ID_UNSAFE = re.compile(r"[^A-Za-z0-9-]")
MAX_REQUEST_ID = 40


@dataclass(frozen=True)
class UploaderIdentity:
    user_id: str
    request_id: str


def encode(user_id: str, request_id: str) -> str:
    safe_request_id = _REQUEST_ID_UNSAFE.sub("", request_id)[:MAX_REQUEST_ID] or "-"
    text = f"{PREFIX}:{safe_request_id}:{user_id}"
    if len(text) > MAX_SOURCE_CONTEXT:
        raise UserIdTooLong(f"user id is too long for sourceContext ({MAX_SOURCE_CONTEXT} characters)")
    return text


def decode(source_context: str | None) -> UploaderIdentity | None:
    """The identity the signature function wrote, or None for any other sourceContext."""
    if not source_context:
        return None
    prefix, sep1, rest = source_context.partition(":")
    request_id, sep2, user_id = rest.partition(":")
    if prefix != PREFIX or not sep1 or not sep2 or not user_id or _REQUEST_ID_UNSAFE.search(request_id):
        return None
    return UploaderIdentity(user_id=user_id, request_id=request_id)
