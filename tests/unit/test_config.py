"""Settings: defaults, one error naming every bad variable, secrets masked."""

from __future__ import annotations

import inspect
import itertools
import json
import pickle
import random
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from shared import config
from shared.config import (
    ConfigError,
    Secret,
    database_url_problem,
    load_callback_settings,
    load_pull_settings,
    load_sign_settings,
    load_store_settings,
    load_upload_page_settings,
    load_uploads_settings,
    load_vod_api_settings,
    log_level,
)
from tests.conftest import (
    CALLBACK_ENV,
    CALLBACK_SIGN_KEY,
    CONTEXT_KEY,
    JWT_SECRET,
    SECRET_KEY,
    SIGN_ENV,
    UNREADABLE_PRIVATE_KEY,
    UNREADABLE_PUBLIC_KEY,
    Output,
)
from vodtesting import load_function


def test_sign_defaults_are_secure() -> None:
    settings = load_sign_settings(SIGN_ENV)
    assert settings.policy.ttl_seconds == 600
    assert settings.policy.one_time is True
    assert settings.auth.mode == "jwt"
    assert settings.auth.jwt_algorithms == ("HS256",)
    assert settings.http.cors_allow_origins == ()
    assert settings.policy.allowed_procedures == frozenset()
    assert settings.http.max_body_bytes == 16 * 1024  # the README's: the longest sessionContext, escaped, fits


@pytest.mark.parametrize(
    ("audience", "issuer", "expected"),
    [
        (None, None, (None, None)),
        ("vod-upload", "https://id.example.com", (("vod-upload",), ("https://id.example.com",))),
        (" web , ios,web ", "https://a/, https://b/v2", (("web", "ios"), ("https://a/", "https://b/v2"))),
        (",", " ", (None, None)),
    ],
)
def test_audiences_and_issuers_are_lists(
    audience: str | None, issuer: str | None, expected: tuple[object, object]
) -> None:
    env = {**SIGN_ENV, **{k: v for k, v in (("AUTH_JWT_AUDIENCE", audience), ("AUTH_JWT_ISSUER", issuer)) if v}}
    auth = load_sign_settings(env).auth
    assert (auth.jwt_audiences, auth.jwt_issuers) == expected


def test_defaults_are_always_in_their_allow_lists() -> None:
    env = {
        **SIGN_ENV,
        "VOD_PROCEDURE": "LongVideoPreset",
        "VOD_ALLOWED_PROCEDURES": "A, B,A",
        "VOD_STORAGE_REGION": "ap-chongqing",
        "VOD_CLASS_ID": "3",
        "VOD_ALLOWED_CLASS_IDS": "4,5",
    }
    policy = load_sign_settings(env).policy
    assert policy.allowed_procedures == {"LongVideoPreset", "A", "B"}
    assert policy.allowed_storage_regions == {"ap-chongqing"}
    assert policy.allowed_class_ids == {3, 4, 5}


def test_one_error_names_every_bad_variable() -> None:
    env = {
        "VOD_SIGNATURE_TTL": "7776001",
        "VOD_ONE_TIME": "maybe",
        "VOD_SUB_APP_ID": "abc",
        "VOD_STORAGE_REGION": "Guangzhou",
        "VOD_ALLOWED_CLASS_IDS": "1,x",
        "VOD_TASK_PRIORITY": "11",
        "VOD_TASK_NOTIFY_MODE": "Always",
        "AUTH_MODE": "jwt",
        "AUTH_JWT_SECRET": "short",
        "AUTH_JWT_ALGORITHMS": "RS256",
        "CORS_ALLOW_ORIGINS": "*",
        "CORS_ALLOW_CREDENTIALS": "true",
    }
    with pytest.raises(ConfigError) as caught:
        load_sign_settings(env)
    named = {name for name, _ in caught.value.problems}
    # AUTH_MODE is fine; "*" is a fine origin: it is the pairing with credentials that is wrong.
    assert named == {"TENCENTCLOUD_SECRET_ID", "VOD_CONTEXT_KEY", *env} - {"AUTH_MODE", "CORS_ALLOW_ORIGINS"}
    for name in named:
        assert name in str(caught.value)
    assert "short" not in str(caught.value)  # a bad secret is named, never shown


def _sign(env: dict[str, str]) -> object:
    return load_sign_settings(env)


def _callback(env: dict[str, str]) -> object:
    return load_callback_settings({**CALLBACK_ENV, **env})


def _fetch(env: dict[str, str]) -> object:
    keys = {"VOD_SECRET_ID": "AKIDv", "VOD_SECRET_KEY": "kv", "VOD_CALLBACK_CONFIRM": "fetch"}
    return load_callback_settings({**CALLBACK_ENV, **keys, **env})


def _pull(env: dict[str, str]) -> object:
    return load_pull_settings({"VOD_SECRET_ID": "AKIDv", "VOD_SECRET_KEY": "kv", "VOD_CONTEXT_KEY": CONTEXT_KEY, **env})


@pytest.mark.parametrize(
    ("load", "env", "bad"),
    [
        (_sign, {"AUTH_MODE": "jwt", "AUTH_JWT_SECRET": None}, "AUTH_JWT_SECRET"),
        (_sign, {"AUTH_JWT_PUBLIC_KEY": UNREADABLE_PUBLIC_KEY}, "AUTH_JWT_SECRET"),
        (_sign, {"AUTH_JWT_SECRET": None, "AUTH_JWT_PUBLIC_KEY": "not a pem"}, "AUTH_JWT_PUBLIC_KEY"),
        (_sign, {"AUTH_JWT_ALGORITHMS": "none"}, "AUTH_JWT_ALGORITHMS"),
        (_sign, {"AUTH_JWT_JWKS_URL": "https://id.example.com/jwks"}, "AUTH_JWT_SECRET"),  # and a secret: which?
        (
            _sign,
            {
                "AUTH_JWT_SECRET": None,
                "AUTH_JWT_ISSUER": "https://id.example.com/",
                "AUTH_JWT_JWKS_URL": "http://id.example.com/jwks",
            },
            "AUTH_JWT_JWKS_URL",
        ),  # keys in clear
        (
            _sign,
            {
                "AUTH_JWT_SECRET": None,
                "AUTH_JWT_ISSUER": "https://id.example.com/",
                "AUTH_JWT_JWKS_URL": "https://app:hunter2@id.example.com/jwks",
            },
            "AUTH_JWT_JWKS_URL",
        ),
        (
            _sign,
            {
                "AUTH_JWT_SECRET": None,
                "AUTH_JWT_ISSUER": "https://id.example.com/",
                "AUTH_JWT_JWKS_URL": "id.example.com/jwks",
            },
            "AUTH_JWT_JWKS_URL",
        ),
        (_sign, {"AUTH_JWT_SECRET": None, "AUTH_JWT_JWKS_URL": "https://id.example.com/jwks"}, "AUTH_JWT_ISSUER"),
        (_sign, {"AUTH_JWT_USER_CLAIM": "jti"}, "AUTH_JWT_USER_CLAIM"),  # each token would be a new user
        (_sign, {"AUTH_JWT_USER_CLAIM": "user id"}, "AUTH_JWT_USER_CLAIM"),
        (  # a list of none: no issuer checked
            _sign,
            {"AUTH_JWT_SECRET": None, "AUTH_JWT_JWKS_URL": "https://id.example.com/jwks", "AUTH_JWT_ISSUER": " , "},
            "AUTH_JWT_ISSUER",
        ),
        (
            _sign,
            {
                "AUTH_JWT_SECRET": None,
                "AUTH_JWT_ISSUER": "https://id.example.com/",
                "AUTH_JWT_JWKS_URL": "https://id.example.com/j",
                "AUTH_JWT_ALGORITHMS": "HS256",
            },
            "AUTH_JWT_ALGORITHMS",
        ),
        (
            _sign,
            {
                "AUTH_JWT_SECRET": None,
                "AUTH_JWT_ISSUER": "https://id.example.com/",
                "AUTH_JWT_JWKS_URL": "https://id.example.com/j",
                "AUTH_JWT_PUBLIC_KEY_PREVIOUS": "x",
            },
            "AUTH_JWT_PUBLIC_KEY_PREVIOUS",
        ),
        (_sign, {"AUTH_MODE": "gateway"}, "AUTH_GATEWAY_SECRET"),
        (_sign, {"AUTH_MODE": "gateway", "AUTH_GATEWAY_SECRET": "0123456789abcde"}, "AUTH_GATEWAY_SECRET"),  # < 16
        (_sign, {"VOD_CONTEXT_KEY_PREVIOUS": "p" * 31}, "VOD_CONTEXT_KEY_PREVIOUS"),  # < 32, as the current key
        (
            _sign,
            {
                "AUTH_MODE": "gateway",
                "AUTH_GATEWAY_SECRET": "0123456789abcdef",
                "AUTH_GATEWAY_USER_HEADER": "bad header",
            },
            "AUTH_GATEWAY_USER_HEADER",
        ),
        (
            _sign,
            {
                "AUTH_MODE": "gateway",
                "AUTH_GATEWAY_SECRET": "0123456789abcdef",
                "AUTH_GATEWAY_USER_HEADER": "x-gateway-secret",  # the secret would be taken for the user
            },
            "AUTH_GATEWAY_USER_HEADER",
        ),
        (_sign, {"AUTH_JWT_SECRET": "s" * 63, "AUTH_JWT_ALGORITHMS": "HS256,HS512"}, "AUTH_JWT_SECRET"),  # < 64 bytes
        (_sign, {"AUTH_JWT_SECRET": "s" * 47, "AUTH_JWT_ALGORITHMS": "HS384"}, "AUTH_JWT_SECRET"),
        # Trimmed, it would not be the issuer's key: every token refused, with no word of why
        (_sign, {"AUTH_JWT_SECRET": "s" * 40 + " "}, "AUTH_JWT_SECRET"),
        (_sign, {"AUTH_JWT_SECRET": "\u00a0" + "s" * 40}, "AUTH_JWT_SECRET"),
        # A public key as the shared secret: named with the other settings, not after them
        (
            _sign,
            {"AUTH_JWT_SECRET": f"-----BEGIN PUBLIC KEY-----\n{'A' * 64}\n-----END PUBLIC KEY-----"},
            "AUTH_JWT_SECRET",
        ),
        (_sign, {"AUTH_MODE": "basic"}, "AUTH_MODE"),
        (_sign, {"AUTH_MODE": "off"}, "AUTH_MODE"),  # "none" alone turns authentication off, and says so
        (_sign, {"CORS_ALLOW_ORIGINS": "example.com"}, "CORS_ALLOW_ORIGINS"),  # an origin, not more nor less:
        (_sign, {"CORS_ALLOW_ORIGINS": "https://a.example.com/path"}, "CORS_ALLOW_ORIGINS"),
        (_sign, {"CORS_ALLOW_ORIGINS": "https://a.example.com;x"}, "CORS_ALLOW_ORIGINS"),
        (_sign, {"CORS_ALLOW_ORIGINS": "https://a.example.com:65536"}, "CORS_ALLOW_ORIGINS"),  # no such port
        # A browser writes no default port, nor a leading zero: the origin would never match
        (_sign, {"CORS_ALLOW_ORIGINS": "https://a.example.com:00443"}, "CORS_ALLOW_ORIGINS"),
        (_sign, {"HTTP_MAX_BODY_BYTES": "10"}, "HTTP_MAX_BODY_BYTES"),
        # Bytes that are not UTF-8 (os.environ's lone surrogates): named, not a traceback or a 500 per request.
        (_sign, {"AUTH_JWT_SECRET": "s" * 40 + "\udce9"}, "AUTH_JWT_SECRET"),
        (_sign, {"TENCENTCLOUD_SECRET_KEY": "key\udce9"}, "TENCENTCLOUD_SECRET_KEY"),
        (_sign, {"VOD_CONTEXT_KEY": "c" * 32 + "\udce9"}, "VOD_CONTEXT_KEY"),
        (_sign, {"VOD_PROCEDURE": "flow\udce9"}, "VOD_PROCEDURE"),
        # A SecretId pasted with an invisible character: at the cold start, not a 400 on every request
        (_sign, {"TENCENTCLOUD_SECRET_ID": "AKIDabc\u00a0def"}, "TENCENTCLOUD_SECRET_ID"),
        (_sign, {"TENCENTCLOUD_SECRET_ID": "AKID\u200babc"}, "TENCENTCLOUD_SECRET_ID"),
        (_sign, {"TENCENTCLOUD_SECRET_ID": "AKID\tabc"}, "TENCENTCLOUD_SECRET_ID"),
        # So is a SecretKey (every signature made with it would be refused), the role's too
        (_sign, {"TENCENTCLOUD_SECRET_KEY": "k" * 16 + " " + "k" * 15}, "TENCENTCLOUD_SECRET_KEY"),
        (_sign, {"TENCENTCLOUD_SECRET_KEY": "k" * 31 + "\u200b"}, "TENCENTCLOUD_SECRET_KEY"),
        (_pull, {"VOD_SECRET_KEY": "k" * 31 + "\u00e9"}, "VOD_SECRET_KEY"),
        (
            _pull,
            {
                "VOD_SECRET_ID": "",
                "VOD_SECRET_KEY": "",
                "TENCENTCLOUD_SECRETID": "AKIDr",
                "TENCENTCLOUD_SECRETKEY": "k\u00a0k",
            },
            "TENCENTCLOUD_SECRETKEY",
        ),
        # The two swapped: the SecretKey would be in every signature its callers decode
        (
            _sign,
            {"TENCENTCLOUD_SECRET_ID": "k" * 32, "TENCENTCLOUD_SECRET_KEY": "AKIDk" + "0" * 31},
            "TENCENTCLOUD_SECRET_ID",
        ),
        # A private key before the public one: PyJWT would take it, then fail every token with a 500
        (
            _sign,
            {"AUTH_JWT_SECRET": None, "AUTH_JWT_PUBLIC_KEY": f"{UNREADABLE_PRIVATE_KEY}\n{UNREADABLE_PUBLIC_KEY}"},
            "AUTH_JWT_PUBLIC_KEY",
        ),
        # Rotations: a previous key under the rules of the current one, of its kind, and another key than it
        (_sign, {"AUTH_JWT_SECRET_PREVIOUS": "s" * 31}, "AUTH_JWT_SECRET_PREVIOUS"),
        (_sign, {"AUTH_JWT_SECRET_PREVIOUS": "s" * 40 + " "}, "AUTH_JWT_SECRET_PREVIOUS"),
        (_sign, {"AUTH_JWT_SECRET_PREVIOUS": JWT_SECRET}, "AUTH_JWT_SECRET_PREVIOUS"),
        (_sign, {"AUTH_JWT_PUBLIC_KEY_PREVIOUS": UNREADABLE_PUBLIC_KEY}, "AUTH_JWT_PUBLIC_KEY_PREVIOUS"),
        (
            _sign,
            {
                "AUTH_JWT_SECRET": None,
                "AUTH_JWT_PUBLIC_KEY": UNREADABLE_PUBLIC_KEY,
                "AUTH_JWT_SECRET_PREVIOUS": "s" * 40,
            },
            "AUTH_JWT_SECRET_PREVIOUS",
        ),
        (
            _sign,
            {
                "AUTH_JWT_SECRET": None,
                "AUTH_JWT_PUBLIC_KEY": UNREADABLE_PUBLIC_KEY,
                "AUTH_JWT_PUBLIC_KEY_PREVIOUS": "x",
            },
            "AUTH_JWT_PUBLIC_KEY_PREVIOUS",
        ),
        # Two keys in one setting (the old and the new, say): only the first would ever verify a token
        (
            _sign,
            {"AUTH_JWT_SECRET": None, "AUTH_JWT_PUBLIC_KEY": f"{UNREADABLE_PUBLIC_KEY}\n{UNREADABLE_PUBLIC_KEY}"},
            "AUTH_JWT_PUBLIC_KEY",
        ),
        (_sign, {"AUTH_GATEWAY_SECRET_PREVIOUS": "0123456789abcdef"}, "AUTH_GATEWAY_SECRET_PREVIOUS"),
        (
            _sign,
            {"AUTH_GATEWAY_SECRET": "0123456789abcdef", "AUTH_GATEWAY_SECRET_PREVIOUS": "0123456789abcdef"},
            "AUTH_GATEWAY_SECRET_PREVIOUS",
        ),
        (
            _sign,
            {"AUTH_GATEWAY_SECRET": "0123456789abcdef", "AUTH_GATEWAY_SECRET_PREVIOUS": "short"},
            "AUTH_GATEWAY_SECRET_PREVIOUS",
        ),
        (_sign, {"VOD_CONTEXT_KEY_PREVIOUS": CONTEXT_KEY}, "VOD_CONTEXT_KEY_PREVIOUS"),
        (
            _sign,
            {"TENCENTCLOUD_SECRET_KEY": "k" * 32, "VOD_CONTEXT_KEY_PREVIOUS": "k" * 32},
            "VOD_CONTEXT_KEY_PREVIOUS",
        ),
        (_callback, {"VOD_CALLBACK_SIGN_KEY_PREVIOUS": CALLBACK_SIGN_KEY}, "VOD_CALLBACK_SIGN_KEY_PREVIOUS"),
        # A signature without a region lets the client name any in ApplyUploadUGC: the list would not hold.
        (_sign, {"VOD_ALLOWED_STORAGE_REGIONS": "ap-beijing"}, "VOD_ALLOWED_STORAGE_REGIONS"),
        (
            _sign,
            {"TENCENTCLOUD_SECRET_ID": None, "TENCENTCLOUD_SECRET_KEY": None, "VOD_SECRET_KEY": "k"},
            "VOD_SECRET_ID",
        ),
        # Numbers as written in ASCII digits only (int() takes all of these).
        (_sign, {"VOD_SIGNATURE_TTL": "\uff11\uff12"}, "VOD_SIGNATURE_TTL"),
        (_sign, {"VOD_SIGNATURE_TTL": "1_000"}, "VOD_SIGNATURE_TTL"),
        (_sign, {"VOD_SIGNATURE_TTL": "+5"}, "VOD_SIGNATURE_TTL"),
        (_sign, {"VOD_ALLOWED_CLASS_IDS": "1,\u0663"}, "VOD_ALLOWED_CLASS_IDS"),
        (_sign, {"VOD_STORAGE_REGION": "ap-guangzhou-\u0663"}, "VOD_STORAGE_REGION"),
        # A host and port the SDK could not call would fail every event, not the cold start.
        (_fetch, {"VOD_API_ENDPOINT": "127.0.0.1:abc"}, "VOD_API_ENDPOINT"),
        (_fetch, {"VOD_API_ENDPOINT": "ho st"}, "VOD_API_ENDPOINT"),
        (_fetch, {"VOD_API_ENDPOINT": "http://127.0.0.1:1?x"}, "VOD_API_ENDPOINT"),
        (_fetch, {"VOD_API_ENDPOINT": "127.0.0.1:65536"}, "VOD_API_ENDPOINT"),
        (_fetch, {"VOD_API_ENDPOINT": "https://"}, "VOD_API_ENDPOINT"),
        (_fetch, {"VOD_API_ENDPOINT": "vod.tencentcloudapi.com."}, "VOD_API_ENDPOINT"),  # a name's root dot
        (_fetch, {"VOD_API_ENDPOINT": "https://vod.tencentcloudapi.com.:443"}, "VOD_API_ENDPOINT"),
        (_pull, {"VOD_PULL_BUDGET_SECONDS": "15"}, "VOD_PULL_BUDGET_SECONDS"),  # not more than the reserve
        (_fetch, {"VOD_API_ENDPOINT": "[::1"}, "VOD_API_ENDPOINT"),
        # Plain http only to a local emulator: elsewhere the SignKey and a role's token would travel in clear
        (_fetch, {"VOD_API_ENDPOINT": "http://vod.tencentcloudapi.com"}, "VOD_API_ENDPOINT"),
        (_fetch, {"VOD_API_ENDPOINT": "http://127.0.0.1.example.com:80"}, "VOD_API_ENDPOINT"),
        (_fetch, {"VOD_API_ENDPOINT": "http://10.0.0.1:9000"}, "VOD_API_ENDPOINT"),
        (_fetch, {"VOD_API_ENDPOINT": "http://[::ffff:127.0.0.1]:9000"}, "VOD_API_ENDPOINT"),  # as the emulator's
        (_callback, {"AFTER_COMMIT_HOOK": "just_a_module"}, "AFTER_COMMIT_HOOK"),
        (_callback, {"AFTER_COMMIT_HOOK": "pkg.mod:fn()"}, "AFTER_COMMIT_HOOK"),
        (_callback, {"DATABASE_URL": "mysql://root:hunter2@db/vod"}, "DATABASE_URL"),
        (_callback, {"DATABASE_TIMEOUT": "0"}, "DATABASE_TIMEOUT"),
        (_callback, {"DATABASE_TIMEOUT": "soon"}, "DATABASE_TIMEOUT"),
        # The upload page: its URLs go into the page and its Content-Security-Policy, so nothing may widen it.
        (load_upload_page_settings, {"UPLOAD_PAGE_SIGNATURE_URL": "javascript:alert(1)"}, "UPLOAD_PAGE_SIGNATURE_URL"),
        (
            load_upload_page_settings,
            {"UPLOAD_PAGE_SIGNATURE_URL": "https://a.example.com/x; script-src *"},
            "UPLOAD_PAGE_SIGNATURE_URL",
        ),
        (load_upload_page_settings, {"UPLOAD_PAGE_SIGNATURE_URL": "none"}, "UPLOAD_PAGE_SIGNATURE_URL"),
        (load_upload_page_settings, {"UPLOAD_PAGE_STATUS_URL": "ftp://x/uploads"}, "UPLOAD_PAGE_STATUS_URL"),
        (
            load_upload_page_settings,
            {"UPLOAD_PAGE_STATUS_URL": "//bucket-1.cos.ap-guangzhou.myqcloud.com/x"},
            "UPLOAD_PAGE_STATUS_URL",
        ),
        (load_upload_page_settings, {"UPLOAD_PAGE_FRAME_ANCESTORS": "*"}, "UPLOAD_PAGE_FRAME_ANCESTORS"),
        (load_upload_page_settings, {"UPLOAD_PAGE_LANGUAGE": "zh-TW"}, "UPLOAD_PAGE_LANGUAGE"),  # one it lacks
        (
            load_upload_page_settings,
            {"UPLOAD_PAGE_SIGNATURE_URL": "https://api.example.com:99999/signature"},
            "UPLOAD_PAGE_SIGNATURE_URL",
        ),
        (
            load_upload_page_settings,
            {"UPLOAD_PAGE_FRAME_ANCESTORS": "https://a.example.com:99999"},
            "UPLOAD_PAGE_FRAME_ANCESTORS",
        ),
        (
            load_upload_page_settings,
            {"UPLOAD_PAGE_FRAME_ANCESTORS": "https://app.example.com/path"},
            "UPLOAD_PAGE_FRAME_ANCESTORS",
        ),
    ],
)
def test_a_bad_setting_is_named(load: Any, env: dict[str, str | None], bad: str) -> None:
    base = SIGN_ENV if load is _sign else {}
    merged = {k: v for k, v in {**base, **env}.items() if v is not None}
    with pytest.raises(ConfigError) as caught:
        load(merged)
    assert [name for name, _ in caught.value.problems] == [bad]
    assert "hunter2" not in str(caught.value)  # a bad URL is named, its password never shown


@pytest.mark.parametrize(
    ("function", "env", "named"),
    [
        (
            "sign",
            {**SIGN_ENV, "VOD_SIGNATURE_TTL": "x", "AUTH_JWT_SECRET": "tiny-jwt-key"},
            ["VOD_SIGNATURE_TTL", "AUTH_JWT_SECRET"],
        ),
        ("callback", {**CALLBACK_ENV, "AFTER_COMMIT_HOOK": "tests.callback.no_such_module:fn"}, ["AFTER_COMMIT_HOOK"]),
        (
            "sign",
            {
                **SIGN_ENV,
                "AUTH_JWT_SECRET": "",
                "AUTH_JWT_PUBLIC_KEY": UNREADABLE_PUBLIC_KEY,
            },
            ["AUTH_JWT_PUBLIC_KEY"],
        ),
    ],
    ids=["settings", "hook", "key"],
)
def test_a_function_that_cannot_start_says_so_in_its_log(
    output: Output, function: str, env: dict[str, str], named: list[str]
) -> None:
    # Where operators search (level ERROR), not only in the cold start's traceback on stderr
    with pytest.raises(ConfigError):
        load_function(function, env)
    [line] = [line for line in output.lines() if line["event"] == "config.invalid"]
    assert line["level"] == "ERROR" and [problem.split(":")[0] for problem in line["problems"]] == named
    assert "tiny-jwt-key" not in json.dumps(line)


def test_auth_none_must_be_explicit_and_warns(output: Output) -> None:
    settings = load_sign_settings({**SIGN_ENV, "AUTH_MODE": "none"})
    assert settings.auth.mode == "none"
    assert [(line["level"], line["event"]) for line in output.lines()] == [("WARNING", "config.auth_disabled")]


@pytest.mark.parametrize(
    ("env", "warned"),
    [
        ({"CORS_ALLOW_ORIGINS": "https://app.example.com,http://localhost:3000,http://127.0.0.1:8080"}, []),
        ({"CORS_ALLOW_ORIGINS": "https://app.example.com,http://app.example.com"}, ["CORS_ALLOW_ORIGINS"]),
        ({"CORS_ALLOW_ORIGINS": "http://192.168.1.20:3000"}, ["CORS_ALLOW_ORIGINS"]),  # a LAN: allowed, said
        ({"UPLOAD_PAGE_SIGNATURE_URL": "http://api.example.com/signature"}, ["UPLOAD_PAGE_SIGNATURE_URL"]),
        ({"UPLOAD_PAGE_STATUS_URL": "http://LOCALHOST.:9000/uploads"}, []),
        ({"CORS_ALLOW_ORIGINS": "http://127.app.example.com"}, ["CORS_ALLOW_ORIGINS"]),  # a name, not 127.0.0.0/8
        ({"UPLOAD_PAGE_FRAME_ANCESTORS": "http://app.example.com"}, ["UPLOAD_PAGE_FRAME_ANCESTORS"]),
    ],
)
def test_cleartext_urls_to_other_machines_are_allowed_with_a_warning(
    output: Output, env: dict[str, str], warned: list[str]
) -> None:
    # Whoever is on such a way reads the users' tokens (or rewrites the page that holds them).
    load = load_upload_page_settings if any(name.startswith("UPLOAD_PAGE_") for name in env) else load_sign_settings
    load({**SIGN_ENV, **env})
    lines = [line for line in output.lines() if line["event"] == "config.cleartext_url"]
    assert [(line["level"], line["detail"].split(":")[0]) for line in lines] == [("WARNING", name) for name in warned]
    assert all(line["detail"].endswith("is not https://") for line in lines)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("UPLOAD_PAGE_STATUS_URL", "http://admin:hunter2@status.internal/uploads"),
        ("CORS_ALLOW_ORIGINS", "https://app.example.com,http://admin:hunter2@app.example.com"),
    ],
)
def test_a_refused_url_is_quoted_masked_and_warned_of_by_no_line(output: Output, name: str, value: str) -> None:
    load = load_upload_page_settings if name.startswith("UPLOAD_PAGE_") else load_sign_settings
    with pytest.raises(ConfigError) as caught:
        load({**SIGN_ENV, name: value})
    assert name in str(caught.value) and "hunter2" not in str(caught.value)
    assert [line["event"] for line in output.lines()] == []  # no config.cleartext_url line quoting it


def test_secrets_never_show_in_repr_or_str() -> None:
    settings = load_sign_settings(SIGN_ENV)
    for text in (repr(settings), str(settings), repr(settings.policy), f"{settings.auth}"):
        assert SECRET_KEY not in text
        assert JWT_SECRET not in text
    assert settings.policy.secret_key.reveal() == SECRET_KEY


@pytest.mark.parametrize(
    "url", ["postgresql://app:pw%2Fof-db@db/vod", "postgresql://db/vod?user=app&password=pw%2Fof-db"]
)
def test_the_database_password_alone_is_a_known_secret(url: str) -> None:
    # An app's hook may quote it in a DSN of its own (not the URL): masked wherever it is found
    load_callback_settings({**CALLBACK_ENV, "DATABASE_URL": url})
    assert {"pw/of-db", "pw%2Fof-db"} <= set(config.known_secrets())


def test_secret_compares_and_pickles_without_showing_itself() -> None:
    secret = Secret("abc")
    assert secret == Secret("abc")
    assert secret != Secret("abd")
    assert pickle.loads(pickle.dumps(secret)).reveal() == "abc"


@pytest.mark.parametrize(
    ("env", "bad"),
    [
        ({}, "VOD_CALLBACK_SIGN_KEY"),
        ({"VOD_CALLBACK_SIGN_KEY": "has-dash"}, "VOD_CALLBACK_SIGN_KEY"),
        ({"VOD_CALLBACK_SIGN_KEY": "a" * 33}, "VOD_CALLBACK_SIGN_KEY"),
        ({"VOD_CALLBACK_SIGN_KEY": CALLBACK_SIGN_KEY, "VOD_CALLBACK_MAX_AHEAD": "0"}, "VOD_CALLBACK_MAX_AHEAD"),
        # VOD's T is 600 s ahead: a tighter bound would refuse every genuine event (660 allows a minute's skew).
        ({"VOD_CALLBACK_SIGN_KEY": CALLBACK_SIGN_KEY, "VOD_CALLBACK_MAX_AHEAD": "659"}, "VOD_CALLBACK_MAX_AHEAD"),
        # a rotation's previous key is a SignKey too, and only beside a current one
        ({"VOD_CALLBACK_SIGN_KEY": CALLBACK_SIGN_KEY, "VOD_CALLBACK_SIGN_KEY_PREVIOUS": "x-y"}, "_PREVIOUS: must be 1"),
        (
            {"VOD_CALLBACK_INSECURE": "true", "VOD_CALLBACK_SIGN_KEY_PREVIOUS": CALLBACK_SIGN_KEY},
            "VOD_CALLBACK_SIGN_KEY_PREVIOUS: is for a SignKey rotation: set VOD_CALLBACK_SIGN_KEY too",
        ),
    ],
)
def test_callback_refuses_to_start_unverified(env: dict[str, str], bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_callback_settings(env)
    assert bad in str(caught.value)


@pytest.mark.parametrize(
    ("load", "env", "said"),
    [
        (
            _sign,
            {"AUTH_JWT_SECRET_PREVIOUS": JWT_SECRET},
            "AUTH_JWT_SECRET_PREVIOUS: is the same key as AUTH_JWT_SECRET (a rotation's previous key is the one it "
            "replaced)",
        ),
        (
            _sign,
            {"AUTH_JWT_PUBLIC_KEY_PREVIOUS": UNREADABLE_PUBLIC_KEY},
            "AUTH_JWT_PUBLIC_KEY_PREVIOUS: tokens are verified with AUTH_JWT_SECRET, whose previous key goes in "
            "AUTH_JWT_SECRET_PREVIOUS",
        ),
        (
            _sign,
            {"AUTH_GATEWAY_SECRET_PREVIOUS": "0123456789abcdef"},
            "AUTH_GATEWAY_SECRET_PREVIOUS: is for a rotation of AUTH_GATEWAY_SECRET, which is not set",
        ),
        (
            _sign,
            {"VOD_CONTEXT_KEY_PREVIOUS": CONTEXT_KEY},
            "VOD_CONTEXT_KEY_PREVIOUS: is the same key as VOD_CONTEXT_KEY (a rotation holds two: the new one here, "
            "then the old one)",
        ),
        (
            _callback,
            {"VOD_CALLBACK_SIGN_KEY_PREVIOUS": CALLBACK_SIGN_KEY},
            "VOD_CALLBACK_SIGN_KEY_PREVIOUS: is the same key as VOD_CALLBACK_SIGN_KEY (a rotation's previous key is "
            "the one it replaced)",
        ),
    ],
)
def test_a_rotation_set_up_wrong_is_said_whole(
    load: Callable[[dict[str, str]], object], env: dict[str, str], said: str
) -> None:
    # Whole: a secret setting's name before a colon reads as a line that quotes it, and the word after is masked
    with pytest.raises(ConfigError) as caught:
        load({**SIGN_ENV, **env} if load is _sign else env)
    assert str(caught.value).splitlines()[1:] == [f"  {said}"]


def test_callback_insecure_mode_is_explicit_and_logged(output: Output) -> None:
    settings = load_callback_settings({"VOD_CALLBACK_INSECURE": "true", "VOD_CONTEXT_KEY": CONTEXT_KEY})
    assert settings.sign_key is None
    assert [(line["level"], line["event"]) for line in output.lines()] == [("WARNING", "config.callback_unverified")]
    assert settings.store.database_url.reveal().startswith("sqlite:///")


@pytest.mark.parametrize(("limit", "warned"), [(None, False), ("6291456", False), ("1048576", True)])
def test_a_callback_body_limit_below_scfs_is_logged_at_each_cold_start(
    output: Output, limit: str | None, warned: bool
) -> None:
    # VOD's larger events would be refused with a 413 that, its Sign unchecked, is logged at INFO
    settings = load_callback_settings({**CALLBACK_ENV, **({"HTTP_MAX_BODY_BYTES": limit} if limit else {})})
    warnings = [line for line in output.lines() if line["level"] == "WARNING"]
    assert [line["event"] for line in warnings] == (["config.callback_body_limit"] if warned else [])
    assert all(f"HTTP_MAX_BODY_BYTES={settings.http.max_body_bytes}: a larger" in w["detail"] for w in warnings)


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("mysql://u:pw@h/db", "must start with"),
        ("sqlite:///", "needs a file path"),
        ("sqlite:///:memory:", "needs a file path"),
        ("sqlite:///x.db?mode=ro", "needs a file path"),
        ("postgresql://u:hunter2@host:notaport/db", "not a valid postgresql:// URL"),
        ("postgresql://u:hunter2%E9@host/db", "not UTF-8"),  # Latin-1 é
        ("postgresql://u:hunter2%zz@host/db", "starts no escape"),
        ("postgresql://u:hunter2%00@host/db", "%00"),
        ("postgresql://u:hunter2@host/db?sslmode=require%", "starts no escape"),
        ("postgresql://u:hunter2@host/db?application_name=%E9", "not UTF-8"),
        # what libpq refuses at every connection, or reads otherwise than urllib (so the password is not hidden)
        ("postgresql://u@/db?host=/run&password=hunter2&3xK", "not one key=value"),
        ("postgresql://u@h/db?password=hunter2=b", "not one key=value"),
        ("postgresql://u@h/db?sslmode=require&&password=hunter2", "not one key=value"),
        ("postgresql://u:2024#hunter2@h:5432/db", "'#'"),
        ("postgresql://u:7?hunter2@h/db", "'?'"),
        ("postgresql://u:7/hunter2@/db?host=/run", "'/'"),
        ("postgresql://u:hunter2@h/db?sslmod=require", "does not know"),
        ("postgresql://u:hunter2@h/db?sslmode=required", "sslmode must be one of"),
        ("postgresql://u:hunter2@h/db?target_session_attrs=rw", "target_session_attrs must be one of"),
        ("postgresql://u:hunter2@h/db?channel_binding=yes", "channel_binding must be one of"),
        ("postgresql://u:hunter2@h/db?connect_timeout=ten", "connect_timeout must be a whole number"),
        ("postgresql://u:hunter2@h/db?port=abc", "port must be a whole number"),
        ("postgresql://u:hunter2@h/db?port=0", "port must be a whole number from 1 to 65535"),
        ("postgresql://u:hunter2@h/db?connect_timeout=99999999999", "connect_timeout must be a whole number"),
        ("postgresql://u:hunter2@h1:0,h2/db", "not a valid postgresql:// URL"),
        # what libpq's strtol refuses: two signs, a non-breaking space, a separator control, a blank port
        ("postgresql://u:hunter2@h/db?connect_timeout=-%2B5", "connect_timeout must be a whole number"),
        ("postgresql://u:hunter2@h/db?connect_timeout=%C2%A05", "connect_timeout must be a whole number"),
        ("postgresql://u:hunter2@h/db?keepalives=%1C1", "keepalives must be a whole number"),
        ("postgresql://u:hunter2@h/db?port=%20", "port must be a whole number"),
        ("postgresql://u:hunter2@h/db?connect_timeout=" + "9" * 4301, "connect_timeout must be a whole number"),
    ],
)
def test_a_bad_database_url_is_named_never_shown(url: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_callback_settings({"VOD_CALLBACK_SIGN_KEY": "abc", "DATABASE_URL": url})
    assert named in str(caught.value)
    assert "hunter2" not in str(caught.value) and "pw@" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgres", "must start with sqlite:/// or postgresql:// (or postgres://)"),  # the database's name
        ("sqlite:", "must start with sqlite:/// or postgresql:// (or postgres://)"),
        ("sqlite:///", "sqlite:/// needs a file path"),
    ],
)
def test_a_refused_database_url_leaves_its_hint_as_written(
    monkeypatch: pytest.MonkeyPatch, url: str, said: str
) -> None:
    # (a refused URL is quoted nowhere: masked as a secret, it made the hint's words into ********)
    monkeypatch.setattr(Secret, "_known", set())
    with pytest.raises(ConfigError) as caught:
        load_callback_settings({"VOD_CALLBACK_SIGN_KEY": "abc", "DATABASE_URL": url})
    assert f"DATABASE_URL: {said}" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p%2F%3F%23%26%3D%40w@h:5432/db?sslmode=verify-full&target_session_attrs=read-write",
        "postgresql:///db?host=/run/postgresql&password=p%26w",
        "postgres://u@h/db?ssl=true",  # libpq's alias of sslmode=require
        "postgresql://u@h/db?",
        "postgresql://u@h/db?sslmode=disable&",  # one '&' at the end, which libpq takes
        "postgresql://h?host=/run/postgresql&user=u&application_name=vod@prod",  # a '/' and an '@' in the query
        "postgresql://db.example.com?sslrootcert=/etc/ca.pem&user=admin@myserver",
        "postgresql://h/my@db",  # a database named my@db
        "postgresql://u@h:5432/db?connect_timeout=10&keepalives=1&channel_binding=require",
        # as libpq reads them: hosts tried in turn, numbers with a sign or spaces, an empty port the default
        "postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write",
        "postgresql://u@[::1]:5432,[::2]:5433/db",
        "postgresql://u@h/db?port=&connect_timeout=-1&keepalives_idle=%2010",
        "postgresql://u@h/db?port=%2B5432",
        "postgresql://u@h/db?port=" + "0" * 5000 + "5432",  # strtol's leading zeros, more than Python reads
        "postgresql://u@/db?port=5432,5433",  # as many hosts in PGHOST, say
        "postgresql://u@/db?service=vod&port=5432,5433",  # or in the service file
    ],
)
def test_a_database_url_libpq_reads_as_written_is_taken(url: str) -> None:
    env = {"VOD_CALLBACK_SIGN_KEY": "abc", "VOD_CONTEXT_KEY": CONTEXT_KEY, "DATABASE_URL": url}
    assert load_callback_settings(env).store.database_url.reveal() == url


def _host_lists(hosts: int, addresses: int, ports: int, *, in_authority: bool) -> str:
    # Nothing here answers: sockets in a directory that does not exist, a closed loopback port.
    host = ",".join(f"/nonexistent/vod{i}" for i in range(hosts))
    params = {"hostaddr": ",".join(["127.0.0.1"] * addresses), "port": ",".join(["1"] * ports)}
    if in_authority:  # libpq's other way to write a list: in the URL's authority (sockets cannot be written there)
        host = ",".join(f"127.0.0.{i + 1}" for i in range(hosts))
    elif host:
        params["host"] = host
    query = "&".join(f"{key}={value.replace('/', '%2F')}" for key, value in params.items() if value)
    return f"postgresql://u:hunter2@{host if in_authority else ''}/db?connect_timeout=2&{query}"


@pytest.mark.parametrize("in_authority", [False, True])
def test_host_port_and_hostaddr_lists_are_matched_as_libpq_matches_them(in_authority: bool) -> None:
    for hosts, addresses, ports in itertools.product(range(4), repeat=3):
        url = _host_lists(hosts, addresses, ports, in_authority=in_authority)
        if hosts == addresses == 0:  # PGHOST, PGHOSTADDR may name them: not judged here, whatever the ports
            assert database_url_problem(url) is None, url
            continue
        try:
            psycopg2.connect(url).close()
            refused = False  # never: nothing answers
        except psycopg2.OperationalError as error:
            refused = "could not match" in str(error)
        assert (database_url_problem(url) is not None) == refused, url
        if refused:
            assert "hunter2" not in str(database_url_problem(url))


@pytest.mark.parametrize("value", ["-1", "2147483648", "1,x"])
def test_allowed_class_ids_are_checked_like_the_default(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_sign_settings({**SIGN_ENV, "VOD_ALLOWED_CLASS_IDS": value})
    assert "VOD_ALLOWED_CLASS_IDS" in str(caught.value)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TENCENTCLOUD_SECRET_ID": "AKIDa", "TENCENTCLOUD_SECRET_KEY": "ka"}, "AKIDa"),
        # SCF reserves TENCENTCLOUD_* names for itself: deployed functions are configured with VOD_SECRET_*.
        ({"VOD_SECRET_ID": "AKIDv", "VOD_SECRET_KEY": "kv"}, "AKIDv"),
    ],
)
def test_the_account_keys_have_an_scf_safe_name(env: dict[str, str], expected: str) -> None:
    settings = load_sign_settings({"AUTH_JWT_SECRET": JWT_SECRET, "VOD_CONTEXT_KEY": CONTEXT_KEY, **env})
    assert settings.policy.secret_id == expected


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"VOD_SECRET_ID": "AKIDv"}, "VOD_SECRET_KEY"),
        ({"TENCENTCLOUD_SECRET_KEY": "k"}, "TENCENTCLOUD_SECRET_ID"),
    ],
)
def test_half_a_key_pair_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_sign_settings({"AUTH_JWT_SECRET": JWT_SECRET, **env})
    assert named in {name for name, _ in caught.value.problems}


@pytest.mark.parametrize(
    ("env", "token"),
    [
        ({"VOD_SECRET_ID": "AKIDv", "VOD_SECRET_KEY": "kv", "TENCENTCLOUD_SESSIONTOKEN": "role-token"}, None),
        ({"TENCENTCLOUD_SECRETID": "AKIDrole", "TENCENTCLOUD_SECRETKEY": "kr", "TENCENTCLOUD_SESSIONTOKEN": "t"}, "t"),
    ],
)
def test_an_execution_roles_token_goes_only_with_the_roles_keys(env: dict[str, str], token: str | None) -> None:
    from shared.config import load_vod_api_settings

    api = load_vod_api_settings(env)
    assert (api.session_token.reveal() if api.session_token else None) == token


SCF = {"TENCENTCLOUD_RUNENV": "SCF", "SCF_RUNTIME": "Python3.10", "SCF_FUNCTIONNAME": "vod-upload-dev-callback"}
PULL_KEYS = {"VOD_SECRET_ID": "AKIDv", "VOD_SECRET_KEY": "kv", "VOD_CONTEXT_KEY": CONTEXT_KEY}


@pytest.mark.parametrize(
    "load",
    [
        lambda env: load_callback_settings({**CALLBACK_ENV, **env}),
        lambda env: load_pull_settings({**PULL_KEYS, **env}),
    ],
    ids=["callback", "events_pull"],
)
@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, "got nothing"),
        ({"DATABASE_URL": " "}, "got nothing"),
        ({"DATABASE_URL": "sqlite:///tmp/vod.sqlite3"}, "got a sqlite: URL"),
        ({"DATABASE_URL": "postgresql://vod@db/vod"}, None),
    ],
)
def test_inside_scf_the_store_is_postgresql(load: Any, env: dict[str, str], problem: str | None) -> None:
    assert load(env).store.database_url.reveal()  # outside SCF, SQLite (the default) is fine
    for marker in SCF.items():  # any one of SCF's own variables says where we are
        scf_env = {**env, marker[0]: marker[1]}
        if problem is None:
            assert load(scf_env).store.database_url.reveal() == env["DATABASE_URL"]
            continue
        with pytest.raises(ConfigError) as caught:
            load(scf_env)
        assert caught.value.problems == [
            ("DATABASE_URL", f"must be a postgresql:// URL inside SCF (instance disks are not durable; {problem})")
        ]


@pytest.mark.parametrize(
    ("load", "env", "problem"),
    [
        (
            lambda env: load_sign_settings({**SIGN_ENV, **env}),
            {"AUTH_MODE": "none"},
            ("AUTH_MODE", "none is for local development only: inside SCF every caller must be authenticated"),
        ),
        (
            lambda env: load_callback_settings({**CALLBACK_ENV, "DATABASE_URL": "postgresql://vod@db/vod", **env}),
            {"VOD_CALLBACK_SIGN_KEY": "Key123abc012345"},
            ("VOD_CALLBACK_SIGN_KEY", "must be at least 16 characters inside SCF"),
        ),
        (
            lambda env: load_callback_settings({**CALLBACK_ENV, "DATABASE_URL": "postgresql://vod@db/vod", **env}),
            {"VOD_CALLBACK_SIGN_KEY_PREVIOUS": "Key123abc012345"},
            ("VOD_CALLBACK_SIGN_KEY_PREVIOUS", "must be at least 16 characters inside SCF"),
        ),
    ],
    ids=["auth off", "a SignKey found by trying", "a previous one too"],
)
def test_what_is_unsafe_once_deployed_is_refused_inside_scf(load: Any, env: dict[str, str], problem: Any) -> None:
    load(env)  # a local run may
    with pytest.raises(ConfigError) as caught:
        load({**env, **SCF})
    assert caught.value.problems == [problem]


def test_a_sign_key_of_the_least_length_is_taken_inside_scf() -> None:
    env = {**CALLBACK_ENV, "DATABASE_URL": "postgresql://vod@db/vod", **SCF}
    env["VOD_CALLBACK_SIGN_KEY"] = "Key123abc0123456"  # 16: the least
    assert config.callback_sign_key(env) is not None
    sign_key = load_callback_settings(env).sign_key
    assert sign_key is not None and sign_key.reveal() == "Key123abc0123456"


def test_a_secret_of_six_characters_or_more_is_masked_wherever_it_shows() -> None:
    # (shorter ones would mask common words: no secret of these settings is that short in use)
    for text in ("x1y2z3", "x1y2z"):
        config.Secret(text)
    assert "x1y2z3" in config.known_secrets() and "x1y2z" not in config.known_secrets()


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("VOD_SUB_APP_ID", SECRET_KEY),
        ("LOG_LEVEL", "Tr0ub4dor\\&3-correct-horse-battery-staple"),  # quoted with its \\ escaped
        ("CORS_ALLOW_ORIGINS", "Jwt-Secret-With-Capitals-0123456789abcdef"),  # quoted lowercased, as origins are read
    ],
)
def test_a_secret_read_under_another_name_is_not_quoted(name: str, secret: str) -> None:
    # A secret store's mapping off by one: the SecretKey given as the sub-application's id, say
    with pytest.raises(ConfigError) as caught:
        load_sign_settings(
            {**SIGN_ENV, "AUTH_JWT_SECRET": JWT_SECRET if secret == SECRET_KEY else secret, name: secret}
        )
    assert [problem for problem, _ in caught.value.problems] == [name] and "********" in str(caught.value)
    assert [form for form in (secret, secret.lower(), repr(secret)[1:-1]) if form in str(caught.value)] == []


@pytest.mark.parametrize(
    ("name", "secret", "quoted"),
    [
        # a list setting's items are quoted: of a secret holding a comma, its first piece
        ("VOD_ALLOWED_CLASS_IDS", "q7Rt9wXz2LmN4pB8vK1c,Hs5dF0gJ3kL6zX9cV2bN", "q7Rt9wXz2LmN4pB8vK1c"),
        ("VOD_ALLOWED_STORAGE_REGIONS", "Ab-Cd_Ef,Gh1Ij2Kl3Mn4Op5Qr6St7Uv8Wx9Yz0ab", "Ab-Cd_Ef"),
        ("LOG_LEVEL", "k3Y9z", "k3Y9z"),  # a secret too short to be masked elsewhere (outside SCF, allowed)
        ("AUTH_JWT_ALGORITHMS", "Gw7xyzab,Rk2p9qqq,Qs8mZzzz", "Rk2p9qqq"),
    ],
)
def test_no_piece_of_a_secret_read_under_another_name_is_quoted(name: str, secret: str, quoted: str) -> None:
    gateway = {} if name.startswith("AUTH_JWT_") else {"AUTH_MODE": "gateway", "AUTH_GATEWAY_SECRET": ""}
    env = {**SIGN_ENV, **gateway, name: secret}
    with pytest.raises(ConfigError) as caught:
        load_sign_settings({**env, "VOD_CALLBACK_SIGN_KEY": secret})  # (read as a secret wherever it is set)
    assert name in [problem for problem, _ in caught.value.problems] and "********" in str(caught.value)
    assert quoted not in str(caught.value) and quoted.lower() not in str(caught.value)


@pytest.mark.parametrize("token", ["SessTok0123456789abcdef\nXYZ-tail-0123456789", "SessTok\u00e9-0123456789"])
def test_a_role_token_no_header_can_carry_is_refused_unquoted(token: str) -> None:
    # A wrapped paste of keys copied from a function: each call would fail quoting the token
    env = {
        "TENCENTCLOUD_SECRETID": "AKIDrole0123456789",
        "TENCENTCLOUD_SECRETKEY": "role-secret-key-0123",
        "TENCENTCLOUD_SESSIONTOKEN": token,
    }
    with pytest.raises(ConfigError) as caught:
        load_pull_settings({"VOD_CONTEXT_KEY": CONTEXT_KEY, **env})
    assert "TENCENTCLOUD_SESSIONTOKEN: must be one line of printable ASCII" in str(caught.value)
    assert "XYZ-tail" not in str(caught.value) and "SessTok" not in str(caught.value)


def test_unverified_callbacks_are_refused_inside_scf() -> None:
    with pytest.raises(ConfigError) as caught:
        load_callback_settings(
            {
                "VOD_CALLBACK_INSECURE": "true",
                "VOD_CONTEXT_KEY": CONTEXT_KEY,
                "DATABASE_URL": "postgresql://vod@db/vod",
                **SCF,
            }
        )
    assert [name for name, _ in caught.value.problems] == ["VOD_CALLBACK_INSECURE"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "INFO"),
        ("", "INFO"),
        ("debug", "DEBUG"),
        (" Warning ", "WARNING"),
        ("warn", "WARNING"),
        ("ERROR", "ERROR"),
        ("verbose", None),
        ("CRITICAL", None),
        ("10", None),
    ],
)
def test_log_level_is_strict(value: str | None, expected: str | None) -> None:
    env = {} if value is None else {"LOG_LEVEL": value}
    assert log_level(env) == (expected or "INFO")  # set first; the function's load that follows refuses a bad one
    problem = ("LOG_LEVEL", f"must be one of DEBUG, INFO, WARNING, ERROR (got {value!r})")
    if expected is not None:
        load_upload_page_settings(env)
        return
    with pytest.raises(ConfigError) as caught:
        load_upload_page_settings({**env, "UPLOAD_PAGE_SIGNATURE_URL": "javascript:x"})
    assert [name for name, _ in caught.value.problems] == ["UPLOAD_PAGE_SIGNATURE_URL", "LOG_LEVEL"]
    assert caught.value.problems[1] == problem
    load_store_settings(env)  # the operator tools' settings: LOG_LEVEL is the functions', not theirs


@pytest.mark.parametrize(
    "load",
    [load_sign_settings, load_uploads_settings, load_upload_page_settings, load_callback_settings, load_pull_settings],
)
def test_every_function_names_a_bad_log_level_with_the_rest(load: Callable[[Mapping[str, str]], object]) -> None:
    with pytest.raises(ConfigError) as caught:
        load({"LOG_LEVEL": "verbose", "DATABASE_TIMEOUT": "soon", "UPLOAD_PAGE_SIGNATURE_URL": "javascript:x"})
    names = [name for name, _ in caught.value.problems]
    assert "LOG_LEVEL" in names and len(names) > 1, names


def test_one_database_timeout_default_everywhere() -> None:
    from shared.config import DEFAULT_DATABASE_TIMEOUT, StoreSettings
    from shared.store import open_store

    assert load_store_settings({}).timeout_seconds == DEFAULT_DATABASE_TIMEOUT
    assert StoreSettings(Secret("sqlite:///x")).timeout_seconds == DEFAULT_DATABASE_TIMEOUT
    assert inspect.signature(open_store).parameters["timeout_seconds"].default == DEFAULT_DATABASE_TIMEOUT


def test_the_callback_has_no_cors_settings() -> None:
    """No browser calls VOD's callback: CORS variables (shared with the sign function) don't apply to it."""
    settings = load_callback_settings(
        {
            "VOD_CALLBACK_SIGN_KEY": "abc",
            "VOD_CONTEXT_KEY": CONTEXT_KEY,
            "CORS_ALLOW_ORIGINS": "not an origin",
            "CORS_ALLOW_CREDENTIALS": "maybe",
        }
    )
    assert (settings.http.cors_allow_origins, settings.http.cors_allow_credentials) == ((), False)


@pytest.mark.parametrize(
    ("raw", "origins"),
    [
        ("https://App.Example.com:443", ("https://app.example.com",)),  # as a browser sends Origin
        ("http://a.test:80, http://a.test:8080", ("http://a.test", "http://a.test:8080")),
        ("*", ("*",)),
        ("https://a.example.com:65535", ("https://a.example.com:65535",)),  # the highest port a URL can have
    ],
)
def test_cors_origins_are_written_as_browsers_write_them(raw: str, origins: tuple[str, ...]) -> None:
    settings = load_sign_settings({**SIGN_ENV, "CORS_ALLOW_ORIGINS": raw})
    assert settings.http.cors_allow_origins == origins


def test_the_callback_may_bound_t_at_eleven_minutes() -> None:
    assert load_callback_settings({**CALLBACK_ENV, "VOD_CALLBACK_MAX_AHEAD": "660"}).max_ahead_seconds == 660


def test_a_jwt_secret_is_measured_in_bytes() -> None:
    # 16 characters, but 32 bytes: HMAC keys are bytes, and this one is as long as HS256 asks; 15 are 2 bytes short.
    loaded = load_sign_settings({**SIGN_ENV, "AUTH_JWT_SECRET": "é" * 16}).auth.jwt_key
    assert loaded is not None and loaded.reveal() == "é" * 16
    with pytest.raises(ConfigError, match="AUTH_JWT_SECRET: must be at least 32 bytes for HS256"):
        load_sign_settings({**SIGN_ENV, "AUTH_JWT_SECRET": "é" * 15})


@pytest.mark.parametrize(
    "endpoint",
    [
        "vod.tencentcloudapi.com",
        "https://vod.ap-guangzhou.tencentcloudapi.com",
        "127.0.0.1:9000",
        "http://127.0.0.1:9000",
        "http://127.8.0.1",
        "http://localhost:9000",
        "http://LOCALHOST:9000",
        "http://[0:0:0:0:0:0:0:1]:9000",
        "[::1]:9000",
        "http://[::1]",
    ],
)
def test_the_vod_api_endpoint_is_a_host_and_port(endpoint: str) -> None:
    keys = {"VOD_SECRET_ID": "AKIDv", "VOD_SECRET_KEY": "kv"}
    api = load_vod_api_settings({**keys, "VOD_API_ENDPOINT": endpoint})
    assert f"{api.protocol}://{api.endpoint}".endswith(endpoint.lower())  # as VOD's signature rule signs it


@pytest.mark.parametrize(("value", "reserve"), [("", 20), ("16", 16), ("15", None), ("11", None)])
def test_the_reserve_leaves_the_last_pull_time_to_take_events(value: str, reserve: int | None) -> None:
    # Events are begun until 15 s before the limit: a reserve of 15 or less would end each run on a pull whose
    # events it hands out, then leaves (VOD hands them out again 30 s later).
    environ = {**PULL_KEYS, "VOD_PULL_RESERVE_SECONDS": value}
    if reserve is None:
        with pytest.raises(ConfigError, match="VOD_PULL_RESERVE_SECONDS"):
            load_pull_settings(environ)
    else:
        assert load_pull_settings(environ).reserve_seconds == reserve


def test_a_reserve_beyond_the_default_budget_is_not_refused() -> None:
    # The budget counts only where no time limit is given (never in SCF): left unset, it is not a problem.
    settings = load_pull_settings({**PULL_KEYS, "VOD_PULL_RESERVE_SECONDS": "60"})
    assert (settings.reserve_seconds, settings.budget_seconds) == (60, 50)


def test_half_a_key_pair_is_named_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_pull_settings({"TENCENTCLOUD_SECRET_KEY": "k", "VOD_CONTEXT_KEY": CONTEXT_KEY})
    assert [name for name, _ in caught.value.problems] == ["TENCENTCLOUD_SECRET_ID"]


def test_header_names_are_told_as_the_pattern_tells_them() -> None:
    pattern = re.compile(r"[A-Za-z0-9-]{1,64}")
    rng = random.Random(20261202)
    alphabet = "aZ09-_ .:é٣\u00a0\n"  # letters and digits outside ASCII (é, ٣) are not a header's
    texts = ["", "-", "---", "X-User-Id", "x" * 64, "x" * 65, "٣", "ａ"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(70))) for _ in range(5000)]
    for text in texts:
        assert config.is_header_name(text) == bool(pattern.fullmatch(text)), repr(text)


def test_every_secret_setting_is_one_note_secrets_knows() -> None:
    read = re.findall(r'r\.secret\("([A-Z_]+)"', (Path(config.__file__)).read_text())  # and the pairs' keys:
    assert sorted({*read, *(key for _, key in config._KEY_PAIRS)}) == sorted(config.SECRET_SETTINGS)
    config.note_secrets({"VOD_CALLBACK_SIGN_KEY": " noted-sign-key-0123 ", "DATABASE_URL": "not one"})
    assert "noted-sign-key-0123" in config.known_secrets() and "not one" not in config.known_secrets()


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("0", None), ("1500000001", 1500000001)])
def test_sub_app_id_0_is_the_primary_application_as_unset(value: str | None, expected: int | None) -> None:
    env = {} if value is None else {"VOD_SUB_APP_ID": value}
    assert load_sign_settings({**SIGN_ENV, **env}).policy.sub_app_id == expected
    assert load_vod_api_settings({**SIGN_ENV, **env}).sub_app_id == expected
