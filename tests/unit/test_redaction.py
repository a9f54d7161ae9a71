"""What may be secret in text the bundle does not write (an app hook's error) is masked; the rest is kept."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

import pytest

from shared.redaction import redact


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://app:pw-1@db:5432/vod", "postgresql://app:********@db:5432/vod"),
        ("https://user@example.com/a", "https://user@example.com/a"),  # no password
        ("GET /x?sig=abc&n=1&file_id=52858 HTTP/1.1", "GET /x?sig=********&n=1&file_id=52858 HTTP/1.1"),
        ("see https://example.com/docs#intro", "see https://example.com/docs#intro"),  # no parameter
        ("dbname=vod password='pw 1' host=db", "dbname=vod password='********' host=db"),
        ('{"client_secret": "s-1", "n": 2}', '{"client_secret": "********", "n": 2}'),
        ("X-Api-Key=k1, ok", "X-Api-Key=********, ok"),
        ("{'user': 'app', 'password': \"pa'ss-w0rd\"}", "{'user': 'app', 'password': \"********\"}"),
        ('{"client_secret": "ab\\"cd-efgh", "n": 2}', '{"client_secret": "********", "n": 2}'),
        ("{'Accept': 'x', 'Authorization': 'Bearer eyJ.a.b'}", "{'Accept': 'x', 'Authorization': '********'}"),
        ("Authorization: Bearer eyJ.a.b\nCookie: sid=s-1", "Authorization: Bearer ********\nCookie: ********"),
        ('X-Api-Key: k-1, api_key: "k-2"', 'X-Api-Key: ********, api_key: "********"'),
        (
            "redis://:ab%2Fcd+ef@cache:6379/0 and postgresql://app:p@ss@db/x",
            "redis://:********@cache:6379/0 and postgresql://app:********@db/x",
        ),
        (
            "http://u:pa/ss@h.example/x and http://u:pa?ss#1@h.example",
            "http://u:********@h.example/x and http://u:********@h.example",
        ),
        ("got 'http://u:pw-1@h', (https://u:pw-2@h)", "got 'http://u:********@h', (https://u:********@h)"),
        ("http://u:1234secret@h/x and http://u:1234@h", "http://u:********@h/x and http://u:********@h"),  # no port
        (
            "postgresql://app:pa'ss@db/x and postgresql://app:pa\"ss@db/x",
            "postgresql://app:********@db/x and postgresql://app:********@db/x",
        ),
        (f"https://u:{'p' * 200}@h/x", "https://u:********@h/x"),  # a long password, whole
        ("header value: 'Bearer eyJ.a.b\\n'", "header value: 'Bearer ********'"),  # requests' InvalidHeader
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ********"),  # a user and password, base64
        ("header value: 'Basic dXNlcjpwYXNz'", "header value: 'Basic ********'"),
        ("authorization: bearer eyJ.a.b", "authorization: bearer ********"),
        (
            "[('Authorization', 'Basic YXBw'), (b'cookie', b'sid=1')]",
            "[('Authorization', '********'), (b'cookie', b'********')]",
        ),
        ("{'password': b'rp-1'} password = \"pw-2\"", "{'password': b'********'} password = \"********\""),
        ("Cookie: lang=en; sid=s-1; csrftoken=c1\nHost: x", "Cookie: ********\nHost: x"),
        # a quoted value under a harmless name is searched in turn: a DSN in a repr, pydantic's input_value
        ("Sink(dsn='host=db user=a password=pw/1')", "Sink(dsn='host=db user=a password=********')"),
        ("input_value='x password=pw-2 y', input_type=str", "input_value='x password=******** y', input_type=str"),
        ("{'url': \"postgresql://a:pw-3@db/x\"}", "{'url': \"postgresql://a:********@db/x\"}"),
        ("dsn='host=db password=pw-cut", "dsn='host=db password=********"),  # cut off before its closing quote
        ("KeyError: 'api_key: ak-4'", "KeyError: 'api_key: ********'"),  # after an exception's name too
        ("RuntimeError: x-api-key: k-5 and password: pw-6", "RuntimeError: x-api-key: ******** and password: ********"),
        ("RuntimeError: notify: api_key: k-7", "RuntimeError: notify: api_key: ********"),  # two pairs, not one
        ("HTTPError: secret: s-8", "HTTPError: secret: ********"),
        ("clientSecret: s-9, ProxyAuthorization: p-10", "clientSecret: ********, ProxyAuthorization: ********"),
        ("token: https://x.example/y", "token: ********"),
        # connection strings: ODBC's, Azure Storage's
        ("Server=db;Uid=app;Pwd=pw-11;Database=x", "Server=db;Uid=app;Pwd=********;Database=x"),
        (
            "Driver={ODBC Driver 18};Pwd={p;w }}d 12};Database=x",  # braced: a ';', a space, a doubled '}'
            "Driver={ODBC Driver 18};Pwd=********;Database=x",
        ),
        (
            "AccountName=acct;AccountKey=ak/12+=;EndpointSuffix=core",
            "AccountName=acct;AccountKey=********;EndpointSuffix=core",
        ),
        ('{"access_token": "at-cut-off', '{"access_token": "********"'),  # a value cut short is still masked
        # what is not a secret stays as written
        ("GET /x?type=video&user=bob&tab=2", "GET /x?type=video&user=bob&tab=2"),  # ids an operator needs
        (
            "for url 'http://api.internal:8080/v1/users/bob@example.com'",
            "for url 'http://api.internal:8080/v1/users/bob@example.com'",
        ),
        (
            "Access denied for user 'app'@'10.0.0.1' (using password: NO)",
            "Access denied for user 'app'@'10.0.0.1' (using password: NO)",
        ),
        ("SignatureExpired: Signature age 3700 > 3600 seconds", "SignatureExpired: Signature age 3700 > 3600 seconds"),
        ("text/html;charset=utf-8", "text/html;charset=utf-8"),
        ("InvalidTokenError: signature has expired", "InvalidTokenError: signature has expired"),
        ("KeyError: 'token'", "KeyError: 'token'"),
        ("ValueError: a = b, c: d", "ValueError: a = b, c: d"),
    ],
)
def test_redact(text: str, masked: str) -> None:
    assert redact(text) == masked


def test_given_secrets_are_masked_longest_first() -> None:
    assert redact("k=1 abcdef abcdefgh", ("abcdef", "abcdefgh")) == "k=1 ******** ********"


_SECRET = 'Vk3y/9+Q"w\\eR=t&Y_u1i2o3p4\u00e9'
_BASE64 = base64.b64encode(_SECRET.encode()).decode()


@pytest.mark.parametrize(
    "form",
    [
        quote(_SECRET, safe=""),
        quote(_SECRET),  # its own default: "/" as it is
        re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), quote(_SECRET, safe="")),  # its hex in lowercase
        quote_plus(_SECRET),
        json.dumps(_SECRET)[1:-1],
        json.dumps(_SECRET, ensure_ascii=False)[1:-1],
        repr(_SECRET)[1:-1],
        _BASE64,
        _BASE64.rstrip("="),
        base64.urlsafe_b64encode(_SECRET.encode()).decode(),
    ],
    ids=[
        "url",
        "url-path",
        "url-lowercase",
        "url-plus",
        "json",
        "json-utf8",
        "repr",
        "base64",
        "base64-unpadded",
        "base64url",
    ],
)
def test_a_secret_is_masked_as_text_quotes_it(form: str) -> None:
    # A hook's error quoting a bundle's secret as it sent it: in a URL, a JSON body, a repr, a Basic header
    masked = redact(f"the webhook refused {form} (sent)", (_SECRET,))
    assert form not in masked and masked == "the webhook refused ******** (sent)"


# Every word that names a secret, in a name of its own (a dict's repr, as a client library prints its settings)
@pytest.mark.parametrize(
    "name",
    [
        "db_password",
        "passwd",
        "client_secret",
        "refreshToken",
        "url_signature",
        "credentials",
        "proxy_authorization",
        "cookies",
        "vodSessionKey",
        "sessionid",
        "api_key",
        "privateKey",
        "access-key",
        "Pwd",
        "AccountKey",
        "SharedAccessKey",
    ],
)
def test_each_secret_name_is_masked(name: str) -> None:
    assert redact(f"{{'{name}': 'v-1'}} {name}=v-2") == f"{{'{name}': '********'}} {name}=********"


# Every query parameter that signs a URL (VOD's, COS's, S3's): as good as a key while it is valid
@pytest.mark.parametrize(
    "name",
    [
        "sign",
        "sig",
        "key",
        "code",
        "auth",
        "t",
        "us",
        "exper",
        "q-ak",
        "q-signature",
        "X-Amz-Expires",
        "X-Amz-Signature",
        "x-cos-security-token",
    ],
)
def test_each_signing_parameter_is_masked(name: str) -> None:
    assert (
        redact(f"GET https://x.example/a.mp4?n=1&{name}=ab12cd") == f"GET https://x.example/a.mp4?n=1&{name}=********"
    )
