"""Masking what must not be kept or logged in text the bundle does not write itself: an app hook's error.

A hook's exception is stored on the event row (shown by `vod-uploads`) and logged with its traceback; its
message may quote a URL with a password or a signed query (`requests` quotes the URL it could not reach),
a connection string, a request's headers, or one of this bundle's own secrets. Imported only when a hook fails.

The patterns start only where a run of name characters starts (the look-behinds), so their time grows with
the text's length, not its square; callers bound the length too (a hook may quote a whole response body).
"""

import re
from collections.abc import Callable

MASK = "********"
# Names whose values are secret: in name=value pairs, dicts' reprs, JSON and header lines.
_CONFIDENTIAL = re.compile(
    r"password|passwd|secret|token|signature|credential|authorization|cookie|session|(?:api|private|access)[_-]?key",
    re.IGNORECASE,
)
_QUOTED = r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'"
_WORD = r"[^\s,;&'\"}\])]+"


def _value(match: re.Match[str]) -> str:
    """The match with its `value` group masked when its `name` group names a secret."""
    if not _CONFIDENTIAL.search(match["name"]):
        return match[0]
    value = match["value"]
    quote = value[0] if value[0] in "'\"" else ""
    return f"{match[0][: match.start('value') - match.start()]}{quote}{MASK}{quote}"


def _header(match: re.Match[str]) -> str:
    # "InvalidTokenError: …" is an exception's name and its message, not a header named for a token.
    return match[0] if match["name"].endswith(("Error", "Exception", "Warning", "Exit")) else _value(match)


def _keep_masked(match: re.Match[str]) -> str:
    return f"{match['keep']}{MASK}"


_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    # scheme://user:password@host (a password may hold "/" or "@": up to the "@" before the host; of a
    # sane length, so that each start is bounded)
    (
        re.compile(r"(?<![\w+.-])(?P<keep>[A-Za-z][\w+.-]*://[^\s/:@]*:)\S{1,256}?(?=@[^\s@/?#]*(?:[/?#:\s]|$))"),
        _keep_masked,
    ),
    # a query or fragment parameter's value (a URL's, or a request line's: "url: /notify?token=…"), whatever its name
    (re.compile(r"(?P<keep>[?&#][^\s=&#?'\"]+=)[^\s&#'\"<>)\]]+"), _keep_masked),
    # name=value (libpq's "password=…"), a quoted value up to its closing quote
    (re.compile(rf"(?<![\w.-])(?P<name>[\w.-]+)=(?P<value>{_QUOTED}|{_WORD})"), _value),
    # 'name': value (a dict's repr, JSON)
    (re.compile(rf"(?P<q>['\"])(?P<name>[\w.-]+)(?P=q)\s*:\s*(?P<value>{_QUOTED}|{_WORD})"), _value),
    # Name: value, a header line ("Authorization: Bearer …": its scheme is kept, its credentials masked)
    (
        re.compile(rf"(?<![\w.-])(?P<name>[\w-]+):[ \t]*(?:(?:Bearer|Basic|Token)[ \t]+)?(?P<value>{_QUOTED}|{_WORD})"),
        _header,
    ),
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with URL passwords, parameter values, secret-named values and each of `secrets` masked."""
    for secret in sorted(secrets, key=len, reverse=True):  # longest first: none is left half-masked
        if secret:
            text = text.replace(secret, MASK)
    for pattern, replace in _PATTERNS:
        text = pattern.sub(replace, text)
    return text
