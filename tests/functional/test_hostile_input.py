"""Hostile input at the edges: tokens whose times never expire, doubled credentials, a gateway request id
that would split a header, paths that cannot be encoded, and settings that would leak or switch checks off."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from shared.config import ConfigError, load_callback_settings, load_sign_settings
from shared.sign_handler import make_sign_handler
from tests.conftest import CALLBACK_ENV, CONTEXT_KEY, JWT_SECRET, SECRET_KEY, SIGN_ENV, Output
from tests.scf import SHAPES, nested
from vodtesting import http_event

NOW = 1_800_000_000


def raw_token(claims: str) -> str:
    """An HS256 token over claims JSON as written (PyJWT would not write NaN)."""

    def part(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = part(b'{"alg":"HS256","typ":"JWT"}') + b"." + part(claims.encode())
    mac = hmac.new(JWT_SECRET.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + part(mac)).decode()


def sign(event: dict[str, Any], context: dict[str, Any] | None = None) -> dict[str, Any]:
    settings = load_sign_settings(SIGN_ENV)
    return make_sign_handler(settings, now=lambda: NOW, random_u32=lambda: 7)(event, context or {"request_id": "ctx-1"})


@pytest.mark.parametrize(
    "claims",
    [
        '{"sub":"a","exp":NaN}',
        '{"sub":"a","exp":Infinity}',
        '{"sub":"a","exp":1e999}',
        '{"sub":"a","exp":1800000300,"nbf":NaN}',
        '{"sub":"a","exp":1800000300,"nbf":-Infinity}',
    ],
)
def test_a_token_whose_time_is_not_a_finite_number_is_refused(claims: str) -> None:
    result = sign(http_event(body={}, headers={"Authorization": f"Bearer {raw_token(claims)}"}))
    assert result["statusCode"] == 401 and json.loads(result["body"])["error"]["code"] == "invalid_token"


def test_two_authorization_headers_are_refused_not_picked_from() -> None:
    good = raw_token('{"sub":"a","exp":1800000300}')
    result = sign(http_event(body={}, headers={"Authorization": f"Bearer {good}", "authorization": "Bearer x"}))
    assert result["statusCode"] == 401 and json.loads(result["body"])["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("request_id", ["abc\r\nSet-Cookie: x=1", "a" * 500, "é"])
def test_a_gateway_request_id_that_is_not_one_is_not_echoed(request_id: str) -> None:
    result = sign(http_event(body={}, request_id=request_id), {"request_id": "ctx-7"})
    assert result["headers"]["X-Request-Id"] == "ctx-7"


@pytest.mark.parametrize("request_id", ["abc\r\nSet-Cookie: x=1", "a" * 500, "é", 12345, ["x"]])
def test_an_invocation_request_id_that_is_not_one_is_replaced(request_id: object) -> None:
    # Only SCF writes the context, but what it holds goes into a header and every log line: an id or nothing.
    result = sign(http_event(body={}, shape="function_url"), {"request_id": request_id})
    assert len(result["headers"]["X-Request-Id"]) == 32 and result["headers"]["X-Request-Id"].isalnum()


def test_an_unencodable_path_still_gets_its_log_line(output: Output) -> None:
    output.skip()
    result = sign(http_event(path="/sign\ud800ature", body={}))
    assert result["statusCode"] == 401
    [line] = output.lines()
    assert line["path"] == "/sign\ud800ature" and line["status"] == 401


DEEP = nested(100_000)  # deeper than any stack: str() of it overflows


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("field", "value", "status"),
    [
        # No header's or query parameter's value is an object: absent, as a value of none is
        ("headers", {"X-Deep": DEEP}, 200),
        ("queryString", {"q": DEEP}, 200),
        ("queryString", {"q": [DEEP, "x"]}, 200),  # a repeated parameter: its first value
        ("path", DEEP, 400),
        ("path", ["/signature"], 400),
    ],
)
def test_an_object_where_an_event_holds_text_is_a_4xx_or_absent_never_a_500(
    shape: str, field: str, value: Any, status: int
) -> None:
    token = raw_token('{"sub":"a","exp":1800000300}')
    bearer = {"Authorization": f"Bearer {token}"}
    event = http_event(body={}, headers=bearer, shape=shape)
    hostile = {**event, field: {**event[field], **value} if field == "headers" else value}
    settings = load_sign_settings(SIGN_ENV)
    answers = []
    for known in (False, True):  # a token seen before: the express lane's answer, which must be the general path's
        handler = make_sign_handler(settings, now=lambda: NOW, random_u32=lambda: 7)
        if known:
            assert handler(event, {"request_id": "ctx-0"})["statusCode"] == 200
        answers.append(handler(hostile, {"request_id": "ctx-1"}))
    assert answers[0] == answers[1]
    assert answers[0]["statusCode"] == status, answers[0]
    if status == 400:
        error = json.loads(answers[0]["body"])["error"]
        assert error == {"code": "bad_event", "message": "event field path must be text"}


@pytest.mark.parametrize(
    ("env", "named", "why"),
    [
        ({"DATABASE_URL": "postgresql://vod:p@ss@db.internal/vod"}, "DATABASE_URL", "unencoded '@'"),
        ({"DATABASE_URL": "postgresql://vod:Xy7[p@ss@db.internal/vod"}, "DATABASE_URL", "not a valid"),  # "IPv6"
        ({"VOD_CALLBACK_INSECURE": "true"}, "VOD_CALLBACK_INSECURE", "cannot be true while"),
        ({"VOD_CONTEXT_KEY": ""}, "VOD_CONTEXT_KEY", "is required"),
        ({"VOD_CONTEXT_KEY": "short"}, "VOD_CONTEXT_KEY", "at least 32"),
        ({"VOD_CALLBACK_CONFIRM": "fetch"}, "TENCENTCLOUD_SECRET_ID", "is required"),
        ({"VOD_CALLBACK_CONFIRM": "sometimes"}, "VOD_CALLBACK_CONFIRM", "must be one of"),
    ],
)
def test_callback_settings_that_would_leak_or_switch_checks_off_stop_the_cold_start(
    env: dict[str, str], named: str, why: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_callback_settings({**CALLBACK_ENV, **env})
    assert [w for n, w in caught.value.problems if n == named and why in w]
    assert "p@ss" not in str(caught.value) and "ss@db" not in str(caught.value)


def test_the_context_key_is_not_the_vod_secret_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_sign_settings({**SIGN_ENV, "VOD_CONTEXT_KEY": SECRET_KEY})
    assert [n for n, _ in caught.value.problems] == ["VOD_CONTEXT_KEY"]
    assert load_sign_settings(SIGN_ENV).context_key.reveal() == CONTEXT_KEY
