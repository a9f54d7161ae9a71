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
# (ODBC's "Pwd", Azure's "AccountKey" and "SharedAccessKey" in connection strings too)
_CONFIDENTIAL = re.compile(
    r"password|passwd|pwd|secret|token|signature|credential|authorization|cookie|session"
    r"|(?:api|private|access|account)[_-]?key",
    re.IGNORECASE,
)
# Query parameters that sign a URL (COS's q-*, S3's X-Amz-*, VOD's t/us/sign…) or carry a credential (Firebase's
# auth): their values are as good as keys.
_SIGNING_PARAMETER = re.compile(
    r"(?:sign|sig|key|code|auth|t|us|exper|q-[\w-]+|x-amz-[\w-]+|x-cos-[\w-]+)", re.IGNORECASE
)
# A quoted value (bytes or text), up to its closing quote, or to the line's end when it was cut off.
_QUOTED = r"[bu]?\"(?:[^\"\\\n]|\\.)*(?:\"|$)|[bu]?'(?:[^'\\\n]|\\.)*(?:'|$)"
_WORD = r"[^\s,;&'\"}\])]+"
# ODBC's braced value ("Pwd={p;w d}", a "}" in it doubled), which holds what ends a word
_BRACED = r"\{(?:[^}\n]|\}\})*(?:\}|$)"
# How exception names end (KeyError, SignatureExpired, SystemExit, ReadTimeout…): "Name: message" is no header
_EXCEPTION_NAME_ENDS = "(?:Error|Exception|Warning|Expired|Exit|Interrupt|Timeout)"
# Values that say something about a secret, not the secret: MySQL's "(using password: NO)", an auth scheme
_PLAIN_WORDS = {"yes", "no", "true", "false", "none", "null", "bearer", "basic", MASK}


def _value(match: re.Match[str]) -> str:
    """The match with its `value` group masked when its `name` group names a secret; a quoted value under any
    other name is searched in turn (a connection string quoted in a repr: `dsn='… password=…'`)."""
    value = match["value"]
    prefix = value[0] if value[0] in "bu" and value[1:2] in ("'", '"') else ""
    quote = value[len(prefix)] if value[len(prefix) : len(prefix) + 1] in ("'", '"') else ""
    kept = match[0][: match.start("value") - match.start()]
    if _CONFIDENTIAL.search(match["name"]) and value.lower() not in _PLAIN_WORDS:
        return f"{kept}{prefix}{quote}{MASK}{quote}"
    if not quote:
        return match[0]
    start = len(prefix) + 1
    end = len(value) - 1 if len(value) > start and value[-1] == quote else len(value)  # cut off: no closing quote
    return f"{kept}{value[:start]}{_masked_patterns(value[start:end])}{value[end:]}"


def _parameter(match: re.Match[str]) -> str:
    name = match["name"]
    if _CONFIDENTIAL.search(name) or _SIGNING_PARAMETER.fullmatch(name):
        return f"{match['keep']}{MASK}"
    return match[0]  # an id or an option: what an operator needs to tell requests apart


def _masked(match: re.Match[str]) -> str:
    return f"{match['keep']}{MASK}"


_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    # scheme://user:password@host, up to the "@" before the host: a password may hold "@", quotes, and "/", "?" or
    # "#" unencoded (then no parser reads it, but it is still a password); not a port and a path ("host:8080/a@b").
    (
        re.compile(
            r"(?<![\w+.-])(?P<keep>[A-Za-z][\w+.-]*://[^\s/:@]*:)(?!\d{1,5}(?:[/?#]|$))"
            r"\S{1,256}?(?=@[^\s@/?#'\"]*(?:[/?#:\s'\",;)\]>]|$))"
        ),
        _masked,
    ),
    # a credential after its scheme, wherever it is quoted ("… in header value: 'Bearer eyJ…'")
    (re.compile(r"(?<![\w-])(?P<keep>(?i:bearer|basic)[ \t]+)[^\s'\",)\]}]+"), _masked),
    # a cookie header line: every cookie in it
    (re.compile(r"(?im)(?<![\w-])(?P<keep>(?:set-)?cookie:[ \t]*)[^'\"\n]+"), _masked),
    # a query or fragment parameter's value (a URL's, or a request line's: "url: /notify?token=…")
    (re.compile(r"(?P<keep>[?&#](?P<name>[^\s=&#?'\"]+)=)[^\s&#'\"<>)\]]+"), _parameter),
    # name=value (libpq's "password=…", ODBC's "Pwd={…}"), a quoted or braced value up to its closing quote
    (re.compile(rf"(?<![\w.-])(?P<name>[\w.-]+)[ \t]*=[ \t]*(?P<value>{_QUOTED}|{_BRACED}|{_WORD})"), _value),
    # 'name': value (a dict's repr, JSON) and ('name', value) (a list of header pairs)
    (re.compile(rf"[bu]?(?P<q>['\"])(?P<name>[\w.-]+)(?P=q)\s*[:,]\s*(?P<value>{_QUOTED}|{_WORD})"), _value),
    # Name: value, a header line ("Authorization: Bearer …": its scheme is kept, its credentials masked above).
    # Not an exception's name ("KeyError: 'token'", "SignatureExpired: …"), so its message is searched from its
    # first word; and a value is not the next "name:" ("notify: api_key: …" is two pairs).
    (
        re.compile(
            rf"(?<![\w.-])(?![\w-]*{_EXCEPTION_NAME_ENDS}(?![\w-]))(?P<name>[\w-]+):[ \t]*"
            rf"(?![\w-]+:(?:[ \t]|$))(?P<value>{_QUOTED}|{_WORD})"
        ),
        _value,
    ),
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with URL passwords, signing parameters, secret-named values and each of `secrets` masked, as written
    and as text quotes it (escaped, URL-encoded, base64)."""
    forms = {form for secret in secrets for form in _forms(secret)}
    for form in sorted(forms, key=len, reverse=True):  # longest first: none is left half-masked
        text = text.replace(form, MASK)
    return _masked_patterns(text)


def _forms(secret: str) -> set[str]:
    """How a hook's error (or a library's) may quote `secret`: as it is, as repr and JSON escape it, URL-encoded (in
    either case of hex), and base64 (standard or URL-safe, with or without its padding). Each 6 characters at least:
    shorter ones would mask common words."""
    import base64
    import json
    from urllib.parse import quote, quote_plus

    try:  # an environment's undecodable byte (a lone surrogate) as the byte it was
        raw = secret.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # another lone surrogate: no library writes it but this way
        raw = secret.encode("utf-8", "surrogatepass")
    encoded = [base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]
    urls = [quote(raw, safe=""), quote(raw), quote_plus(raw, safe="")]  # quote's own default keeps "/"
    forms = {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        *urls,
        *(re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), url) for url in urls),
        *encoded,
        *(text.rstrip("=") for text in encoded),
    }
    return {form for form in forms if len(form) >= 6}


def _masked_patterns(text: str) -> str:
    for pattern, replace in _PATTERNS:
        text = pattern.sub(replace, text)
    return text
