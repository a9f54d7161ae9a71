"""Masking what must not be kept or logged in text the bundle does not write itself: an app hook's error.

A hook's exception is stored on the event row (shown by `vod-uploads`) and logged with its traceback; its
message may quote a URL with a password or a signed query (`requests` quotes the URL it could not reach),
a connection string, or one of this bundle's own secrets. Imported only when a hook fails.
"""

import re

MASK = "********"
_CONFIDENTIAL_NAME = (
    r"[\w.-]*(?:password|passwd|secret|token|signature|credential|(?:api|private|access)[_-]?key)[\w.-]*"
)

_PATTERNS = (
    # scheme://user:password@host
    (re.compile(r"(?P<keep>[A-Za-z][\w+.-]*://[^\s/:@]*:)[^\s/@]+(?=@)"), rf"\g<keep>{MASK}"),
    # any query or fragment parameter's value (a URL's, or a request line's: "url: /notify?token=…")
    (re.compile(r"(?P<keep>[?&#;][^\s=&#;?'\"]+=)[^\s&#;'\"<>)\]]+"), rf"\g<keep>{MASK}"),
    # key=value and 'key': 'value' pairs whose key names a secret (libpq's "password=…", a dict's repr), a quoted
    # value up to its quote; not "TokenError: …", an exception's name and message
    (
        re.compile(
            rf"(?P<keep>\b{_CONFIDENTIAL_NAME}=|['\"]{_CONFIDENTIAL_NAME}['\"]\s*:\s*)"
            r"(?:(?P<quote>['\"])[^'\"\n]*(?P=quote)|[^\s,;&'\"}\])]+)",
            re.IGNORECASE,
        ),
        lambda match: f"{match['keep']}{match['quote'] or ''}{MASK}{match['quote'] or ''}",
    ),
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with URL passwords, query values, secret-named values and each of `secrets` masked."""
    for secret in sorted(secrets, key=len, reverse=True):  # longest first: none is left half-masked
        if secret:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
