"""The signature function with realistic SCF events of both trigger shapes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from shared import source_context
from shared.auth import check_key
from shared.config import ConfigError, load_sign_settings
from shared.http.serve import serve
from shared.sign_handler import make_sign_handler
from shared.sign_service import make_sign_endpoint
from shared.vod_limits import MAX_SESSION_CONTEXT
from tests.conftest import (
    GATEWAY_SECRET,
    JWT_SECRET,
    KEYS,
    SECRET_ID,
    SECRET_KEY,
    SIGN_ENV,
    UNREADABLE_PUBLIC_KEY,
    LeakGuard,
    Output,
)
from tests.scf import SHAPES, header, response_json
from vodemu import signature as vod_signature
from vodtesting import http_event

NOW = 1_800_000_000

_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC_PEM = (
    _RSA.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
)
SM2_PUBLIC_PEM = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAEJVkvfBBhRziG3wRAtmoniRIZMvcJ
QJ6Z0A6Pmt61/Kln+NZwAqkjOdoC79gLydqW4ygaGKjIfKHf2eDnaQQUxA==
-----END PUBLIC KEY-----
"""  # openssl ecparam -name SM2 -genkey | openssl ec -pubout
RSA_PRIVATE_PEM = _RSA.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()


def token(
    sub: Any = "alice",
    *,
    key: str = JWT_SECRET,
    alg: str = "HS256",
    exp: Any = NOW + 300,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    payload = {"sub": sub, "exp": exp, **claims}
    return jwt.encode({k: v for k, v in payload.items() if k not in drop}, key, algorithm=alg)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _part(obj: dict[str, Any]) -> str:
    return _b64url(json.dumps(obj).encode())


def unsigned_token() -> str:
    return f"{_part({'alg': 'none', 'typ': 'JWT'})}.{_part({'sub': 'mallory', 'exp': NOW + 300})}."


def confused_token() -> str:
    """HS256 signed with the server's RSA *public* key as the HMAC secret (PyJWT won't make one)."""
    signing_input = f"{_part({'alg': 'HS256', 'typ': 'JWT'})}.{_part({'sub': 'mallory', 'exp': NOW + 300})}"
    mac = hmac.new(RSA_PUBLIC_PEM.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(mac)}"


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


Call = Callable[..., dict[str, Any]]


@pytest.fixture
def call(leak_guard: LeakGuard) -> Callable[..., Call]:
    """Build the sign endpoint from an environment with an exact clock and random source."""

    def factory(**env: str) -> Call:
        settings = load_sign_settings({**SIGN_ENV, **env})
        handler = make_sign_handler(settings, now=lambda: NOW, random_u32=lambda: 7)

        def invoke(shape: str = "apigw", **kwargs: Any) -> dict[str, Any]:
            kwargs = {"path": "/signature", "body": {}, **kwargs}  # a JSON body, as browsers send it
            if isinstance(kwargs["body"], str):  # raw text from a table row: still labelled as JSON
                kwargs["headers"] = {"Content-Type": "application/json", **kwargs.get("headers", {})}
            result = handler(http_event(shape=shape, **kwargs), {"request_id": "req-1"})
            body = response_json(result)
            if "signature" in body:
                leak_guard.add(body["signature"])
            return result

        return invoke

    return factory


@pytest.mark.parametrize("shape", SHAPES)
def test_success_puts_the_authenticated_user_into_source_context(call: Callable[..., Call], shape: str) -> None:
    invoke = call(VOD_SUB_APP_ID="1500000001", VOD_PROCEDURE="LongVideoPreset", VOD_STORAGE_REGION="ap-chongqing")
    result = invoke(
        shape,
        headers={**bearer(token("user:42/é", exp=NOW + 3600)), "Content-Type": "application/json"},
        body=json.dumps({"sessionContext": "upload #3"}),
    )
    assert result["statusCode"] == 200, result
    assert header(result, "X-Content-Type-Options") == "nosniff"
    body = response_json(result)
    signed = vod_signature.verify(body["signature"], {SECRET_ID: SECRET_KEY}, now=NOW).values
    identity = source_context.attribute(str(signed["sourceContext"]), KEYS)
    assert identity.why == "sealed" and identity.user_id == "user:42/é"
    assert (signed["currentTimeStamp"], signed["expireTime"], signed["random"]) == (NOW, NOW + 600, 7)
    assert (signed["procedure"], signed["storageRegion"], signed["vodSubAppId"]) == (
        "LongVideoPreset",
        "ap-chongqing",
        1500000001,
    )
    assert signed["oneTimeValid"] == 1 and signed["sessionContext"] == "upload #3"
    assert body["expireTime"] == NOW + 600 and body["oneTimeValid"] is True
    assert header(result, "Cache-Control") == "no-store"


LONGEST_ESCAPED = json.dumps({"sessionContext": "\N{GRINNING FACE}" * (MAX_SESSION_CONTEXT // 4)})  # 4 UTF-8 bytes each


LONGEST = json.loads(LONGEST_ESCAPED)
NOTHING_ASKED = {"classId": None, "sessionContext": None}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("body", "extra", "asked"),
    [
        (None, {}, NOTHING_ASKED),
        ("", {}, NOTHING_ASKED),
        ("{}", {}, NOTHING_ASKED),
        (base64.b64encode(b'{"classId": 0}').decode(), {"base64": True}, {"classId": 0}),
        # The longest sessionContext, as JSON clients write it by default (12 ASCII bytes an emoji), plain and base64
        (LONGEST_ESCAPED, {}, LONGEST),
        (base64.b64encode(LONGEST_ESCAPED.encode()).decode(), {"base64": True}, LONGEST),
    ],
)
def test_an_empty_or_encoded_body_is_fine(
    call: Callable[..., Call], shape: str, body: str | None, extra: dict[str, Any], asked: dict[str, Any]
) -> None:
    result = call(VOD_ALLOWED_CLASS_IDS="0")(shape, headers=bearer(token()), body=body, **extra)
    assert result["statusCode"] == 200, result
    signed = vod_signature.verify(response_json(result)["signature"], {SECRET_ID: SECRET_KEY}, now=NOW).values
    assert {name: signed.get(name) for name in asked} == asked  # what the body asked for, signed


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("content_type", "body", "class_id"),
    [
        ("application/json; charset=utf-8", '{"classId": 0}', 0),  # with its parameter, as many clients send it
        ("Application/JSON", '{"classId": 0}', 0),  # a media type is case-insensitive (RFC 9110 8.3.1)
        (" application/json ;charset=UTF-8", '{"classId": 0}', 0),
        ("application/json", " \r\n\t", None),  # whitespace alone: no body, as an empty one
    ],
)
def test_a_json_body_is_read_however_its_type_is_written(
    call: Callable[..., Call], shape: str, content_type: str, body: str, class_id: int | None
) -> None:
    # GIVEN a body the express lane leaves to the general path (not "{}")
    # WHEN it is sent with a JSON Content-Type as clients write it
    result = call(VOD_ALLOWED_CLASS_IDS="0")(
        shape, headers={**bearer(token()), "Content-Type": content_type}, body=body
    )
    # THEN it is read, not refused, and what it asked for signed
    assert result["statusCode"] == 200, result
    signed = vod_signature.verify(response_json(result)["signature"], {SECRET_ID: SECRET_KEY}, now=NOW).values
    assert signed.get("classId") == class_id


HS_ENV: dict[str, str] = {}
RS_ENV = {"AUTH_JWT_SECRET": "", "AUTH_JWT_PUBLIC_KEY": RSA_PUBLIC_PEM}
RSA_PKCS1_PEM = _RSA.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()
AUD_ENV = {"AUTH_JWT_AUDIENCE": "vod-upload", "AUTH_JWT_ISSUER": "https://id.example.com"}
# An app's web and mobile clients (two audiences), an issuer's two forms (Entra's v1 and v2 tokens): any one of each
AUDS_ENV = {
    "AUTH_JWT_AUDIENCE": "web-client, ios-client",
    "AUTH_JWT_ISSUER": "https://id.example.com/,https://id.example.com/v2",
}
GW_ENV = {"AUTH_MODE": "gateway", "AUTH_GATEWAY_SECRET": GATEWAY_SECRET}
OID_ENV = {"AUTH_JWT_USER_CLAIM": "oid"}  # Entra ID's object id: one user across the tenant's apps (sub is per app)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("env", "headers", "code"),
    [
        (HS_ENV, {}, "missing_credentials"),
        (HS_ENV, {"Authorization": "Basic YWxpY2U6cHc="}, "invalid_request"),
        (HS_ENV, {"Authorization": "Bearer"}, "invalid_request"),
        (HS_ENV, bearer("not.a.jwt"), "invalid_token"),
        (HS_ENV, bearer(token(exp=NOW - 31)), "invalid_token"),  # past the 30 s leeway
        (HS_ENV, bearer(token(exp=NOW - 30)), "invalid_token"),  # at its end: expired, as PyJWT has it
        (HS_ENV, bearer(token(exp=10**400)), "invalid_token"),  # too large for a float: no expiry at all
        (HS_ENV, bearer(token(key="x" * 40)), "invalid_token"),  # wrong key
        (HS_ENV, bearer(token(drop=("exp",))), "invalid_token"),
        (HS_ENV, bearer(token(drop=("sub",))), "invalid_token"),
        (HS_ENV, bearer(token(sub=123)), "invalid_token"),
        *(
            (HS_ENV, bearer(token(sub=f"ann{c}lee")), "invalid_token")
            for c in (
                *("\x00", "\n", "\x7f", "\x85", "\u2028", "\u202e", "\u2066", "\ud800", "\u200b", "\ufeff"),
                *("\u2061", "\u2062", "\u2064", "\xad"),  # invisible operators, a soft hyphen
            )
        ),
        # Ids that show as nothing
        *(
            (HS_ENV, bearer(token(sub=sub)), "invalid_token")
            for sub in (
                "\u200d",
                "\xad",
                "\u2060\u200d",
                "\u3000\u200c",
                "\U000e0041",
                "\U000e0100",
                "\U0001d173",
                "\U0001bca0",
                "\ufff9",
                "\u2800",
            )
        ),
        (HS_ENV, bearer(token(nbf=NOW + 600)), "invalid_token"),
        (HS_ENV, bearer(token(key=JWT_SECRET * 2, alg="HS512")), "invalid_token"),  # algorithm not in config
        (HS_ENV, bearer(unsigned_token()), "invalid_token"),  # alg: none
        (RS_ENV, bearer(confused_token()), "invalid_token"),  # algorithm confusion
        (AUD_ENV, bearer(token(aud="other", iss="https://id.example.com")), "invalid_token"),
        (AUD_ENV, bearer(token(aud="vod-upload", iss="https://evil.example.com")), "invalid_token"),
        (AUD_ENV, bearer(token(iss="https://id.example.com")), "invalid_token"),  # audience required when set
        (OID_ENV, bearer(token()), "invalid_token"),  # no oid: its sub is not the user
        (OID_ENV, bearer(token(oid=42)), "invalid_token"),
        (AUDS_ENV, bearer(token(aud="android-client", iss="https://id.example.com/")), "invalid_token"),
        (AUDS_ENV, bearer(token(aud="web-client, ios-client", iss="https://id.example.com/")), "invalid_token"),
        (AUDS_ENV, bearer(token(aud="ios-client", iss="https://id.example.com")), "invalid_token"),  # no slash: another
        (AUDS_ENV, bearer(token(aud="ios-client", iss="https://id.example.com/v")), "invalid_token"),  # not a part
        (
            {**RS_ENV, **AUDS_ENV},
            bearer(token(key=RSA_PRIVATE_PEM, alg="RS256", aud=["android-client"], iss="https://id.example.com/")),
            "invalid_token",
        ),
        (HS_ENV, bearer(token(aud="another-service")), "invalid_token"),  # not for us: no audience configured
        (HS_ENV, bearer(token(iat=NOW + 600)), "invalid_token"),  # issued in the future
        (HS_ENV, bearer(token(iat=NOW + 31)), "invalid_token"),  # past the leeway
        (HS_ENV, bearer(token(nbf=NOW + 31)), "invalid_token"),
        (HS_ENV, bearer(token(iat="yesterday")), "invalid_token"),
        (HS_ENV, bearer(token(nbf=None)), "invalid_token"),  # present but null: PyJWT refuses it too
        (HS_ENV, bearer(token(iat=None)), "invalid_token"),
        (HS_ENV, {"Authorization": [f"Bearer {token()}", "Bearer x"]}, "invalid_request"),  # sent twice
        (GW_ENV, {"X-User-Id": ["mallory", "alice"], "X-Gateway-Secret": GATEWAY_SECRET}, "untrusted_gateway"),
        (GW_ENV, {"X-User-Id": "alice", "X-Gateway-Secret": [GATEWAY_SECRET, "x"]}, "untrusted_gateway"),
        (GW_ENV, {"X-User-Id": "alice"}, "untrusted_gateway"),
        (GW_ENV, {"X-User-Id": "alice", "X-Gateway-Secret": "wrong-secret-0123456789"}, "untrusted_gateway"),
        (GW_ENV, {"X-Gateway-Secret": GATEWAY_SECRET}, "missing_credentials"),
        (GW_ENV, {"X-User-Id": [], "X-Gateway-Secret": GATEWAY_SECRET}, "missing_credentials"),  # not user "[]"
        (GW_ENV, {"X-User-Id": [None], "X-Gateway-Secret": GATEWAY_SECRET}, "missing_credentials"),
        (GW_ENV, {"X-Gateway-Secret": "\ud800"}, "untrusted_gateway"),
        (GW_ENV, {"X-User-Id": " ", "X-Gateway-Secret": GATEWAY_SECRET}, "missing_credentials"),
        # What the gateway passed on cannot be a user: no token was involved, so not invalid_token.
        (GW_ENV, {"X-User-Id": "a\tb", "X-Gateway-Secret": GATEWAY_SECRET}, "invalid_identity"),
        (GW_ENV, {"X-User-Id": "a\tb" * 100, "X-Gateway-Secret": GATEWAY_SECRET}, "invalid_identity"),  # long too
        (HS_ENV, {"Authorization": "Bearer \ud800.é.x"}, "invalid_token"),
    ],
)
def test_each_auth_failure_is_401_with_a_challenge(
    call: Callable[..., Call], output: Output, shape: str, env: dict[str, str], headers: dict[str, str], code: str
) -> None:
    result = call(**env)(shape, headers=headers)
    assert result["statusCode"] == 401, result
    assert response_json(result)["error"]["code"] == code
    assert header(result, "X-Content-Type-Options") == "nosniff"  # JSON, never read as a page or a script
    assert (header(result, "WWW-Authenticate") or "").startswith('Bearer realm="vod-upload"')
    # The operator's log says why, as the caller was told (every user refused after a secret's rotation, say)
    [line] = [line for line in output.lines() if line["event"] == "request"]
    assert line["error_detail"] == response_json(result)["error"]["message"]


@pytest.mark.parametrize("env", [HS_ENV, RS_ENV], ids=["hs256", "rs256"])
@pytest.mark.parametrize(
    ("claims", "said"), [({"sub": 123}, "sub must be a string"), ({"jti": 7}, "jti must be a string")]
)
def test_a_claim_of_the_wrong_type_is_named(
    call: Callable[..., Call], env: dict[str, str], claims: dict[str, Any], said: str
) -> None:
    # A number for the user id: the app's token issuer to fix, said as such (not "malformed token")
    signing: dict[str, Any] = {"key": RSA_PRIVATE_PEM, "alg": "RS256"} if env is RS_ENV else {}
    result = call(**env)("apigw", headers=bearer(token(**signing, **claims)))
    assert (result["statusCode"], response_json(result)["error"]["message"]) == (401, f"invalid token: {said}")


def test_a_gateway_header_sent_twice_in_different_case_is_refused(call: Callable[..., Call]) -> None:
    # A client's own X-User-Id passed through next to the gateway's: refuse rather than pick one.
    # (API gateway events keep header names as sent; function URL events lower-case them.)
    headers = {"X-User-Id": "admin", "x-user-id": "bob", "X-Gateway-Secret": GATEWAY_SECRET}
    result = call(**GW_ENV)("apigw", headers=headers)
    assert result["statusCode"] == 401
    assert response_json(result)["error"]["code"] == "untrusted_gateway"


@pytest.mark.parametrize(
    ("env", "headers", "user"),
    [
        (RS_ENV, bearer(token(key=RSA_PRIVATE_PEM, alg="RS256")), "alice"),
        ({**RS_ENV, "AUTH_JWT_PUBLIC_KEY": RSA_PKCS1_PEM}, bearer(token(key=RSA_PRIVATE_PEM, alg="RS256")), "alice"),
        (AUD_ENV, bearer(token(aud="vod-upload", iss="https://id.example.com")), "alice"),
        (OID_ENV, bearer(token(oid="6e0a2b1c-oid")), "6e0a2b1c-oid"),
        ({**RS_ENV, **OID_ENV}, bearer(token(key=RSA_PRIVATE_PEM, alg="RS256", oid="6e0a2b1c-oid")), "6e0a2b1c-oid"),
        (AUDS_ENV, bearer(token(aud="ios-client", iss="https://id.example.com/v2")), "alice"),
        (AUDS_ENV, bearer(token(aud=["other-api", "web-client"], iss="https://id.example.com/")), "alice"),
        (
            {**RS_ENV, **AUDS_ENV},
            bearer(token(key=RSA_PRIVATE_PEM, alg="RS256", aud="web-client", iss="https://id.example.com/v2")),
            "alice",
        ),
        (HS_ENV, bearer(token(exp=NOW - 29)), "alice"),  # within the leeway
        (HS_ENV, bearer(token(iat=NOW + 29, aud="")), "alice"),  # within the leeway; an empty aud names no one
        (HS_ENV, bearer(token(iat=NOW + 30, nbf=NOW + 30)), "alice"),  # at the leeway's end, as PyJWT has it
        (HS_ENV, {"Authorization": f"bearer {token()}"}, "alice"),  # the scheme in any case (RFC 9110 §11.1)
        (GW_ENV, {"x-user-id": "gw-user", "x-gateway-secret": GATEWAY_SECRET}, "gw-user"),
        # Text a person's name or handle holds: joiners (an emoji family, Persian), other spaces, a bidi mark, a
        # character newer than the interpreter's Unicode tables
        *(
            (HS_ENV, bearer(token(sub=sub)), sub)
            for sub in (
                "fam👨\u200d👩\u200d👧",
                "می\u200cخواهم",
                "ann\u00a0lee",
                "张\u3000三",
                "\u200fuser",
                "\U0001fae8",
            )
        ),
        (GW_ENV, {"X-User-Id": "张\u3000三", "X-Gateway-Secret": GATEWAY_SECRET}, "张\u3000三"),
        ({"AUTH_MODE": "none"}, {}, "anonymous"),
    ],
)
def test_each_auth_mode_accepts_its_credentials(
    call: Callable[..., Call], env: dict[str, str], headers: dict[str, str], user: str
) -> None:
    result = call(**env)("function_url", headers=headers)
    assert result["statusCode"] == 200, result
    signed = vod_signature.verify(response_json(result)["signature"], {SECRET_ID: SECRET_KEY}, now=NOW)
    identity = source_context.attribute(signed.text("sourceContext"), KEYS)
    assert identity.why == "sealed" and identity.user_id == user


@pytest.mark.parametrize(("exp", "status"), [(NOW + 300, 403), (NOW - 31, 401)], ids=["valid", "expired"])
def test_a_user_id_too_long_is_a_403_only_for_a_token_that_is_valid_now(
    call: Callable[..., Call], exp: int, status: int
) -> None:
    # A client renews its token on a 401: an expired one must be that, whatever the user id it names
    result = call(**HS_ENV)("apigw", headers=bearer(token(sub="u" * 201, exp=exp)))
    assert result["statusCode"] == status, result


@pytest.mark.parametrize(
    ("user_id", "request_id", "status"),
    [
        ("u" * source_context.MAX_USER_ID, "r" * 60, 200),  # the longest request id kept (40) still fits
        ("u" * (source_context.MAX_USER_ID + 1), "r", 403),  # a short request id makes no room for a longer id
        ("u" * (source_context.MAX_USER_ID + 1), "r" * 60, 403),
        # Counted in UTF-8 bytes (VOD's "characters" may be those): never a sourceContext over 250 of them.
        ("\u7528" * (source_context.MAX_USER_ID // 3), "r" * 60, 200),
        ("\u7528" * (source_context.MAX_USER_ID // 3 + 1), "r", 403),
        ("\N{GRINNING FACE}" * (source_context.MAX_USER_ID // 4 + 1), "r", 403),
        ("u" * 201, "r", 403),  # past the first bound on any id (200 characters): the same answer, not a 401
        ("\u7528" * 201, "r", 403),
        # as the README says: 173 bytes, leaving VOD's sourceContext room to spare
        ("u" * 173, "r" * 60, 200),
        ("u" * 174, "r" * 60, 403),
    ],
    ids=[
        "longest",
        "longer-short-request-id",
        "longer",
        "longest-cjk",
        "longer-cjk",
        "longer-emoji",
        "past-the-first-bound",
        "past-the-first-bound-cjk",
        "documented-173",
        "documented-174",
    ],
)
def test_the_longest_user_id_that_fits_sourcecontext_does_not_depend_on_the_request(
    call: Callable[..., Call], user_id: str, request_id: str, status: int
) -> None:
    result = call(**HS_ENV)("apigw", headers=bearer(token(sub=user_id)), request_id=request_id)
    assert result["statusCode"] == status, result
    if status == 403:
        assert response_json(result)["error"]["code"] == "user_id_too_long"
        return
    signed = vod_signature.verify(response_json(result)["signature"], {SECRET_ID: SECRET_KEY}, now=NOW)
    sealed = signed.text("sourceContext")
    assert sealed is not None and len(sealed.encode()) <= source_context.MAX_CONTEXT
    assert source_context.attribute(sealed, KEYS).user_id == user_id


POLICY_ENV = {
    "VOD_PROCEDURE": "Default",
    "VOD_ALLOWED_PROCEDURES": "HD",
    "VOD_STORAGE_REGION": "ap-guangzhou",
    "VOD_CLASS_ID": "1",
}


@pytest.mark.parametrize(
    ("body", "status", "code", "named"),
    [
        ({"procedure": "Evil"}, 403, "policy_violation", "procedure"),
        ({"storageRegion": "ap-singapore"}, 403, "policy_violation", "storageRegion"),
        ({"classId": 9}, 403, "policy_violation", "classId"),
        ({"oneTimeValid": False}, 403, "policy_violation", "oneTimeValid"),
        ({"sourceContext": "u1:x:admin"}, 400, "field_not_allowed", "sourceContext"),
        ({"vodSubAppId": 1}, 400, "field_not_allowed", "vodSubAppId"),
        ({"expireTime": 1}, 400, "field_not_allowed", "expireTime"),
        ({"currentTimeStamp": 1}, 400, "field_not_allowed", "currentTimeStamp"),
        ({"random": 1}, 400, "field_not_allowed", "random"),
        ({"secretId": "AKIDmine"}, 400, "field_not_allowed", "secretId"),
        ({"taskPriority": 10}, 400, "field_not_allowed", "taskPriority"),  # the queue is the server's to order
        ({"taskNotifyMode": "Finish"}, 400, "field_not_allowed", "taskNotifyMode"),
        ({"colour": "red"}, 400, "unknown_field", "colour"),
        ({"classId": "1"}, 400, "invalid_field", "classId"),
        ({"classId": True}, 400, "invalid_field", "classId"),
        ({"oneTimeValid": 1}, 400, "invalid_field", "oneTimeValid"),
        ({"procedure": ["HD"]}, 400, "invalid_field", "procedure"),
        ({"sessionContext": "x" * 1001}, 400, "invalid_field", "sessionContext"),
        ({"sessionContext": "\u7528" * 334}, 400, "invalid_field", "sessionContext"),  # 1002 bytes in UTF-8
    ],
)
def test_policy_and_field_refusals_name_the_field(
    call: Callable[..., Call], body: dict[str, Any], status: int, code: str, named: str
) -> None:
    result = call(**POLICY_ENV)(headers={**bearer(token()), "Content-Type": "application/json"}, body=json.dumps(body))
    assert result["statusCode"] == status, result
    error = response_json(result)["error"]
    assert error["code"] == code and named in error["message"]


@pytest.mark.parametrize(
    ("env", "body", "signed_fields", "answered"),
    [
        # A policy that lets signatures be reused: the client may keep that, or ask for a stricter one.
        ({"VOD_ONE_TIME": "false"}, {"oneTimeValid": False}, {"oneTimeValid": 0}, {"oneTimeValid": False}),
        ({"VOD_ONE_TIME": "false"}, {"oneTimeValid": True}, {"oneTimeValid": 1}, {"oneTimeValid": True}),
        ({"VOD_ONE_TIME": "false"}, {}, {"oneTimeValid": 0}, {"oneTimeValid": False}),
        # The server's task settings are signed, though no client may choose them
        (
            {"VOD_TASK_PRIORITY": "5", "VOD_TASK_NOTIFY_MODE": "Change"},
            {},
            {"taskPriority": 5, "taskNotifyMode": "Change"},
            {},
        ),
        ({"VOD_TASK_PRIORITY": "-10"}, {}, {"taskPriority": -10, "taskNotifyMode": None}, {}),
        # Class 0 (VOD's "other") is a class: signed and answered, not dropped as falsy
        ({"VOD_CLASS_ID": "0"}, {}, {"classId": 0}, {"classId": 0}),
        ({}, {}, {"classId": None, "taskPriority": None}, {"classId": None}),
    ],
)
def test_the_servers_policy_is_what_gets_signed_and_answered(
    call: Callable[..., Call],
    env: dict[str, str],
    body: dict[str, Any],
    signed_fields: dict[str, Any],
    answered: dict[str, Any],
) -> None:
    result = call(**env)(headers={**bearer(token()), "Content-Type": "application/json"}, body=json.dumps(body))
    assert result["statusCode"] == 200, result
    answer = response_json(result)
    signed = vod_signature.verify(answer["signature"], {SECRET_ID: SECRET_KEY}, now=NOW).values
    assert {name: signed.get(name) for name in signed_fields} == signed_fields
    assert {name: answer.get(name) for name in answered} == answered


@pytest.mark.parametrize(
    ("body", "chosen"),
    [
        ({"procedure": "HD"}, ("HD", "ap-guangzhou", 1, True)),
        ({"procedure": "Default", "classId": 1, "oneTimeValid": True}, ("Default", "ap-guangzhou", 1, True)),
        ({"procedure": None}, ("Default", "ap-guangzhou", 1, True)),
    ],
)
def test_choices_within_the_allow_lists_are_honoured(
    call: Callable[..., Call], body: dict[str, Any], chosen: tuple[Any, ...]
) -> None:
    result = call(**POLICY_ENV)(headers=bearer(token()), body=json.dumps(body))
    signed = vod_signature.verify(response_json(result)["signature"], {SECRET_ID: SECRET_KEY}, now=NOW).values
    assert (
        signed.get("procedure"),
        signed.get("storageRegion"),
        signed.get("classId"),
        signed.get("oneTimeValid") == 1,
    ) == chosen


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"body": "{bad json"}, 400, "invalid_json"),
        ({"body": "\x0c"}, 400, "invalid_json"),  # whitespace to bytes.strip, not to JSON: not "no body"
        ({"body": "[1, 2]"}, 400, "invalid_json"),
        ({"body": '{"procedure": "a", "procedure": "b"}'}, 400, "invalid_json"),
        ({"body": '{"classId": NaN}'}, 400, "invalid_json"),
        ({"body": "[" * 100_000 + "]" * 100_000, "env": {"HTTP_MAX_BODY_BYTES": "1000000"}}, 400, "invalid_json"),
        ({"body": "\udcff"}, 400, "invalid_json"),
        ({"body": "!!!", "base64": True}, 400, "bad_event"),
        ({"body": "{}", "content_type": "text/plain"}, 415, "unsupported_content_type"),
        ({"body": "é", "base64": True}, 400, "bad_event"),
        ({"body": '{"classId": 1e999}'}, 400, "invalid_json"),
        ({"body": '{"classId": -1e999}'}, 400, "invalid_json"),
        ({"body": "{}", "content_type": "application/jsonx"}, 415, "unsupported_content_type"),
        ({"body": "{}", "content_type": "application/json-seq"}, 415, "unsupported_content_type"),
        ({"body": '{"sessionContext": "a\\u0000b"}'}, 400, "invalid_field"),
        ({"body": '{"sessionContext": "\\ud800"}'}, 400, "invalid_json"),  # an unpaired surrogate: not text
        ({"body": '{"sessionContext": "\\uD800"}'}, 400, "invalid_json"),  # its escape in capitals too
        ({"body": '{"a": [{"\\udfff": 1}]}'}, 400, "invalid_json"),  # as a key, at any depth
        ({"body": '{"a": "' + "x" * 17_000 + '"}'}, 413, "payload_too_large"),
        ({"method": "GET"}, 405, "method_not_allowed"),
        ({"method": "PUT"}, 405, "method_not_allowed"),
    ],
)
def test_malformed_requests_get_precise_errors(
    call: Callable[..., Call], shape: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    kwargs = dict(kwargs)  # the table is shared between the two shapes
    env = kwargs.pop("env", {})
    content_type = kwargs.pop("content_type", "application/json")
    result = call(**env)(shape, headers={**bearer(token()), "Content-Type": content_type}, **kwargs)
    assert result["statusCode"] == status, result
    assert response_json(result)["error"]["code"] == code


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            "{bad json",
            "body is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        ('{"a": ' + "9" * 5000 + "}", "body is not valid JSON: a number in it has too many digits"),  # not a 500
        ("[" * 100_000 + "]" * 100_000, "body nests too deeply"),
        ("\ufeff{}", "body is not valid JSON: it starts with a byte order mark"),
        ("\udcff", "body is not valid JSON: it is not UTF-8"),
        ('{"procedure": "a", "procedure": "b"}', "body is not valid JSON: duplicate key 'procedure'"),
    ],
)
def test_a_body_that_is_not_json_says_why_in_the_callers_terms(call: Callable[..., Call], body: str, says: str) -> None:
    # what the caller can change, never the interpreter's limits or advice for the server (sys.set_int_max_str_digits)
    result = call(HTTP_MAX_BODY_BYTES="1000000")(headers=bearer(token()), body=body)
    assert (result["statusCode"], response_json(result)["error"]) == (400, {"code": "invalid_json", "message": says})


@pytest.mark.parametrize(("size", "status"), [(1000, 200), (1001, 413)])
def test_the_body_limit_is_exact(call: Callable[..., Call], size: int, status: int) -> None:
    result = call(HTTP_MAX_BODY_BYTES="1000")(headers=bearer(token()), body="{}".ljust(size))  # JSON of `size` bytes
    assert result["statusCode"] == status, result


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ("not a dict", 400),
        ({}, 400),
        ({"requestContext": {}, "headers": {}}, 400),
        ({"httpMethod": "POST", "requestContext": None, "headers": {}}, 400),  # neither trigger's shape
        ({"httpMethod": "POST", "headers": ["x"]}, 400),
        ({"httpMethod": "POST", "body": 42}, 400),
        ({"httpMethod": "POST", "body": "e30=", "isBase64Encoded": 1}, 400),  # neither a flag nor its text
        ({"httpMethod": "POST", "body": "e30=", "isBase64Encoded": "yes"}, 400),
    ],
)
def test_events_that_are_not_http_events_are_400(call: Callable[..., Call], event: Any, status: int) -> None:
    settings = load_sign_settings(SIGN_ENV)
    result = make_sign_handler(settings)(event, None)
    assert result["statusCode"] == status and "error" in response_json(result)


@pytest.mark.parametrize(
    ("marked", "body"),
    [
        ("True", base64.b64encode(b'{"classId": 0}').decode()),
        ("TRUE", base64.b64encode(b'{"classId": 0}').decode()),
        ("False", '{"classId": 0}'),
        ("false", '{"classId": 0}'),
    ],
)
def test_the_base64_flag_written_as_text_is_read_in_any_case(marked: str, body: str) -> None:
    # (SCF's own events carry a bool; a proxy or a test tool re-serializing them may write it as text)
    event = http_event(path="/signature", headers={"Content-Type": "application/json", **bearer(token())})
    event |= {"body": body, "isBase64Encoded": marked}
    handler = make_sign_handler(load_sign_settings({**SIGN_ENV, "VOD_ALLOWED_CLASS_IDS": "0"}), now=lambda: NOW)
    result = handler(event, None)
    assert result["statusCode"] == 200, result
    signed = vod_signature.verify(response_json(result)["signature"], {SECRET_ID: SECRET_KEY}, now=NOW).values
    assert signed["classId"] == 0


ORIGIN = "https://app.example.com"


@pytest.mark.parametrize(
    ("body", "marked"),
    [("e30", True), ("{}", "yes"), (42, False)],
    ids=["marked-base64-but-not", "a-flag-that-is-not-one", "not-text"],
)
def test_an_unreadable_body_is_answered_as_its_request(call: Callable[..., Call], body: Any, marked: Any) -> None:
    # The rest of the event was read: the answer names the gateway's request id and lets the page read it (CORS).
    event = http_event(path="/signature", headers={"Origin": ORIGIN, **bearer(token())}, request_id="gw-req-9")
    event |= {"body": body, "isBase64Encoded": marked}
    settings = load_sign_settings({**SIGN_ENV, "CORS_ALLOW_ORIGINS": ORIGIN})
    result = make_sign_handler(settings)(event, {"request_id": "invocation-1"})
    assert (result["statusCode"], response_json(result)["error"]["code"]) == (400, "bad_event")
    assert (header(result, "X-Request-Id"), header(result, "Access-Control-Allow-Origin")) == ("gw-req-9", ORIGIN)


@pytest.mark.parametrize(
    ("env", "origin", "status", "allow_origin"),
    [
        ({"CORS_ALLOW_ORIGINS": ORIGIN}, ORIGIN, 204, ORIGIN),
        ({"CORS_ALLOW_ORIGINS": "*"}, ORIGIN, 204, "*"),
        ({"CORS_ALLOW_ORIGINS": ORIGIN}, "https://evil.example.com", 403, None),
        ({"CORS_ALLOW_ORIGINS": ORIGIN}, ORIGIN + ".evil.com", 403, None),  # the whole origin, not its start
        ({"CORS_ALLOW_ORIGINS": ORIGIN}, ORIGIN + ":8443", 403, None),
        ({"CORS_ALLOW_ORIGINS": ORIGIN}, "http://app.example.com", 403, None),
        ({}, ORIGIN, 403, None),
    ],
)
def test_preflight(
    call: Callable[..., Call], env: dict[str, str], origin: str, status: int, allow_origin: str | None
) -> None:
    result = call(**env)(
        method="OPTIONS", body=None, headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    assert result["statusCode"] == status
    assert header(result, "Access-Control-Allow-Origin") == allow_origin
    if status == 204:  # and the browser may keep the answer 10 minutes, not ask before each request
        assert "Authorization" in (header(result, "Access-Control-Allow-Headers") or "")
        assert (header(result, "Access-Control-Allow-Methods"), header(result, "Access-Control-Max-Age")) == (
            "POST, OPTIONS",
            "600",
        )


@pytest.mark.parametrize("env", [{"CORS_ALLOW_ORIGINS": ORIGIN}, {}])
def test_options_without_an_origin_is_not_a_preflight(call: Callable[..., Call], env: dict[str, str]) -> None:
    # A monitor's or a tool's OPTIONS: what the endpoint takes, not a CORS refusal
    result = call(**env)(method="OPTIONS", body=None, headers={})
    assert (result["statusCode"], header(result, "Allow")) == (204, "POST, OPTIONS")
    assert header(result, "Access-Control-Allow-Origin") is None


@pytest.mark.parametrize(("credentials", "allowed"), [("true", "true"), ("false", None), (None, None)])
def test_cors_credentials_only_when_set_and_then_the_origin_never_a_wildcard(
    call: Callable[..., Call], credentials: str | None, allowed: str | None
) -> None:
    # (a gateway that authenticates by cookie would otherwise let every allowed origin read answers as the user)
    env = {"CORS_ALLOW_ORIGINS": ORIGIN} | ({"CORS_ALLOW_CREDENTIALS": credentials} if credentials else {})
    result = call(**env)(headers={**bearer(token()), "Origin": ORIGIN})
    assert header(result, "Access-Control-Allow-Origin") == ORIGIN
    assert header(result, "Access-Control-Allow-Credentials") == allowed
    assert header(result, "Vary") == "Origin"


def test_a_crash_is_a_generic_500_that_leaks_nothing(output: Output) -> None:
    settings = load_sign_settings(SIGN_ENV)

    def boom(_: object) -> Any:
        raise RuntimeError("internal detail")

    result = serve(http_event(path="/signature", body={}), None, boom, settings.http)
    assert result["statusCode"] == 500
    assert response_json(result) == {"error": {"code": "internal_error", "message": "internal error"}}
    [crash, request] = output.lines()  # ...but the log has it, with the request id
    assert crash["event"] == "request.crash" and "RuntimeError: internal detail" in crash["exception"]
    assert crash["request_id"] == request["request_id"] == result["headers"]["X-Request-Id"]


def test_the_deployed_index_logs_one_json_line_per_request_without_secrets(
    vod_function: Callable[..., Any], output: Output, leak_guard: LeakGuard
) -> None:
    handler = vod_function("sign", env=SIGN_ENV)
    fresh = jwt.encode({"sub": "bob", "exp": 2**40}, JWT_SECRET, algorithm="HS256")
    output.skip()
    event = http_event(path="/signature", body={}, headers=bearer(fresh), request_id="gw-req-7")
    result = handler(event, {"request_id": "scf-req-9"})
    assert result["statusCode"] == 200
    leak_guard.add(response_json(result)["signature"])
    leak_guard.add(fresh)
    [line] = output.lines()
    assert line["user"] == "bob" and line["status"] == 200 and line["outcome"] == "ok"
    assert line["request_id"] == "gw-req-7" and line["latency_ms"] >= 0  # the gateway's id wins over SCF's


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": NOW - 31}, "token has expired"),
        ({"exp": str(NOW + 60)}, "exp must be a finite number"),
        ({"nbf": NOW + 600}, "token is not valid yet (nbf)"),
        ({"iat": NOW + 600}, "token is not valid yet (iat)"),
        ({"iat": str(NOW)}, "iat must be a finite number"),  # a number as text: not a clock problem
        ({"nbf": True}, "nbf must be a finite number"),
        ({"iat": None}, "iat must be a finite number"),
    ],
)
def test_a_refused_time_claim_says_whether_it_is_the_time_or_the_claim(
    call: Callable[..., Call], claims: dict[str, Any], message: str
) -> None:
    result = call(**HS_ENV)("apigw", headers=bearer(token(**claims)))
    assert result["statusCode"] == 401
    assert response_json(result)["error"]["message"] == f"invalid token: {message}"


@pytest.mark.parametrize("leeway", [0, 30])
def test_time_claims_are_judged_as_pyjwt_judges_them(call: Callable[..., Call], leeway: int) -> None:
    # In whole seconds, as PyJWT reads them (int()): a fraction on either side of the leeway's edges
    handler, referee = call(AUTH_JWT_LEEWAY=str(leeway)), jwt.api_jwt.PyJWT()
    verdicts = set()
    for claim in ("exp", "nbf", "iat"):
        for edge in (-leeway - 1, -leeway, -leeway + 1, 0, leeway - 1, leeway, leeway + 1):
            for fraction in (0, 0.1, 0.5, 0.9, -0.1, -0.5, -0.9):
                claims: dict[str, Any] = {claim: NOW + edge + fraction}
                ours = handler("apigw", headers=bearer(token(**claims)))["statusCode"]
                try:
                    getattr(referee, f"_validate_{claim}")({"exp": NOW + 300, **claims}, NOW, leeway)
                    theirs = 200
                except jwt.PyJWTError:
                    theirs = 401
                assert ours == theirs, claims
                verdicts.add(ours)
    assert verdicts == {200, 401}


def test_a_verified_token_is_remembered_but_its_expiry_still_counts() -> None:
    settings = load_sign_settings(SIGN_ENV)
    clock = [float(NOW)]
    handler = make_sign_handler(settings, now=lambda: clock[0])
    event = http_event(path="/signature", body={}, headers=bearer(token(exp=NOW + 60)))
    assert handler(event, None)["statusCode"] == 200
    assert handler(event, None)["statusCode"] == 200  # served from the cache
    clock[0] = NOW + 60 + 30  # at exp and the 30 s leeway: expired
    result = handler(event, None)
    assert result["statusCode"] == 401
    assert response_json(result)["error"]["message"] == "invalid token: token has expired"


@pytest.mark.parametrize(
    ("env", "headers", "expires"),
    [
        (HS_ENV, bearer(token(exp=NOW + 3600)), NOW + 600),  # the policy's validity comes first
        (HS_ENV, bearer(token(exp=NOW + 60)), NOW + 90),  # the token's end: its exp and the 30 s leeway
        (HS_ENV, bearer(token(exp=NOW + 60.9)), NOW + 90),  # whole seconds, as the token is judged
        (HS_ENV, bearer(token(exp=NOW - 29)), NOW + 1),  # within the leeway: one second left
        ({**HS_ENV, "AUTH_JWT_LEEWAY": "0"}, bearer(token(exp=NOW + 570)), NOW + 570),
        ({**HS_ENV, "VOD_SIGNATURE_TTL": "60"}, bearer(token(exp=NOW + 30)), NOW + 60),  # the same moment
        (GW_ENV, {"x-user-id": "gw-user", "x-gateway-secret": GATEWAY_SECRET}, NOW + 600),  # no end said
    ],
)
def test_a_signature_never_outlives_the_token_it_was_issued_for(
    call: Callable[..., Call], env: dict[str, str], headers: dict[str, str], expires: int
) -> None:
    invoke = call(**env)
    for _ in range(2):  # a token not seen yet, then one the express lane knows
        body = response_json(invoke(headers=headers))
        signed = vod_signature.verify(body["signature"], {SECRET_ID: SECRET_KEY}, now=NOW).values
        assert (signed["currentTimeStamp"], signed["expireTime"], body["expireTime"]) == (NOW, expires, expires)


def ticking(start: float, step: float = 0.6) -> Callable[[], float]:
    """A clock that moves on at each reading."""
    moments = iter(start + step * n for n in range(1_000))
    return lambda: next(moments)


def test_a_token_is_judged_and_signed_for_at_one_moment() -> None:
    # Its last second: read twice, the second reading could pass its end, and sign what has already expired
    settings = load_sign_settings(SIGN_ENV)
    endpoint = make_sign_endpoint(settings, now=ticking(NOW + 89.9), random_u32=lambda: 7)
    event = http_event(path="/signature", body={}, headers=bearer(token(exp=NOW + 60)))
    body = response_json(serve(event, {"request_id": "r"}, endpoint, settings.http))
    assert (body["currentTimeStamp"], body["expireTime"]) == (NOW + 89, NOW + 90)


@pytest.mark.parametrize(
    ("headers", "user"),
    [
        (bearer(token(exp=NOW - 30)), "alice"),  # expired: its signature holds, so its sub is the issuer's word
        (bearer(token(nbf=NOW + 31)), "alice"),  # not valid yet
        (bearer(token(key="another-secret-0123456789-abcdefghijklmnop")), None),  # anyone's claim: not logged
    ],
)
def test_a_refused_token_whose_signature_holds_names_its_user_on_the_line(
    call: Callable[..., Call], output: Output, headers: dict[str, str], user: str | None
) -> None:
    output.skip()
    assert call()(headers=headers)["statusCode"] == 401
    [line] = [line for line in output.lines() if line["event"] == "request"]
    assert line.get("user") == user


_NEW_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NEW_RSA_PRIVATE_PEM = _NEW_RSA.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
NEW_RSA_PUBLIC_PEM = (
    _NEW_RSA.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
NEW_JWT_SECRET = "new-jwt-secret-0123456789-abcdefghijklmnop"
NEW_GATEWAY_SECRET = "new-gateway-secret-0123456789"
# Mid-rotation: the new key verifies, and so does the one it replaces (each setting's _PREVIOUS)
HS_ROTATING = {"AUTH_JWT_SECRET": NEW_JWT_SECRET, "AUTH_JWT_SECRET_PREVIOUS": JWT_SECRET}
RS_ROTATING = {**RS_ENV, "AUTH_JWT_PUBLIC_KEY": NEW_RSA_PUBLIC_PEM, "AUTH_JWT_PUBLIC_KEY_PREVIOUS": RSA_PUBLIC_PEM}
GW_ROTATING = {**GW_ENV, "AUTH_GATEWAY_SECRET": NEW_GATEWAY_SECRET, "AUTH_GATEWAY_SECRET_PREVIOUS": GATEWAY_SECRET}


def _gateway(secret: str) -> dict[str, str]:
    return {"x-user-id": "alice", "x-gateway-secret": secret}


@pytest.mark.parametrize(
    ("env", "headers", "refused"),
    [
        (HS_ROTATING, bearer(token(key=NEW_JWT_SECRET)), None),
        (HS_ROTATING, bearer(token()), None),  # the previous key's
        (HS_ROTATING, bearer(token(key="another-secret-0123456789-abcdefghijklmnop")), "bad signature"),
        # The key that signed it says why: a signature both keys refuse is no one's
        ({**HS_ROTATING, **AUD_ENV}, bearer(token(aud="elsewhere", iss="https://id.example.com")), "wrong audience"),
        (
            {**HS_ROTATING, **AUD_ENV},
            bearer(token(key=NEW_JWT_SECRET, aud="elsewhere", iss="https://id.example.com")),
            "wrong audience",
        ),
        (HS_ENV, bearer(token(key=NEW_JWT_SECRET)), "bad signature"),  # the new key, before the verifier knows it
        (RS_ROTATING, bearer(token(key=NEW_RSA_PRIVATE_PEM, alg="RS256")), None),
        (RS_ROTATING, bearer(token(key=RSA_PRIVATE_PEM, alg="RS256")), None),
        (RS_ROTATING, bearer(token(alg="HS256")), "algorithm not allowed"),
        (GW_ROTATING, _gateway(NEW_GATEWAY_SECRET), None),
        (GW_ROTATING, _gateway(GATEWAY_SECRET), None),
        (
            GW_ROTATING,
            _gateway("yet-another-gateway-secret"),
            "request did not come through the authenticating gateway",
        ),
    ],
)
def test_during_a_rotation_the_previous_key_verifies_too(
    call: Callable[..., Call], env: dict[str, str], headers: dict[str, str], refused: str | None
) -> None:
    invoke = call(**env)
    for _ in range(2):  # a token not seen yet, then one the express lane knows
        result = invoke(headers=headers)
        if refused is None:
            assert result["statusCode"] == 200, result
            signed = vod_signature.verify(response_json(result)["signature"], {SECRET_ID: SECRET_KEY}, now=NOW)
            assert source_context.attribute(signed.text("sourceContext"), KEYS).user_id == "alice"
        else:
            assert result["statusCode"] == 401
            assert refused in response_json(result)["error"]["message"]


_ED25519 = ed25519.Ed25519PrivateKey.generate()


def _public_pem(private: Any) -> str:
    return str(
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.mark.parametrize(
    "private",
    [*(ec.generate_private_key(curve) for curve in (ec.SECP256R1(), ec.SECP384R1(), ec.SECP256K1())), _ED25519],
    ids=["p256", "p384", "secp256k1", "ed25519"],
)
def test_the_algorithm_a_key_is_said_to_need_is_taken_and_verifies_its_tokens(private: Any) -> None:
    env = {**SIGN_ENV, "AUTH_JWT_SECRET": "", "AUTH_JWT_PUBLIC_KEY": _public_pem(private)}
    with pytest.raises(ConfigError) as caught:  # under the default, RS256
        check_key(load_sign_settings(env).auth)
    advised = str(caught.value).rpartition("set AUTH_JWT_ALGORITHMS to ")[2]
    settings = load_sign_settings({**env, "AUTH_JWT_ALGORITHMS": advised})
    check_key(settings.auth)
    event = http_event(path="/signature", body={}, headers=bearer(token(key=private, alg=advised)))
    assert make_sign_handler(settings, now=lambda: NOW)(event, None)["statusCode"] == 200


@pytest.mark.parametrize(
    ("key", "algorithms", "said"),
    [
        # An EC key under the default RS256: the setting to change, not the key
        (
            _public_pem(ec.generate_private_key(ec.SECP256R1())),
            None,
            "is an EC key on secp256r1, which RS256 cannot use: set AUTH_JWT_ALGORITHMS to ES256",
        ),
        (
            _public_pem(ec.generate_private_key(ec.SECP384R1())),
            "ES256",
            "is an EC key on secp384r1, which ES256 cannot use: set AUTH_JWT_ALGORITHMS to ES384",
        ),
        (RSA_PUBLIC_PEM, "ES256", "is an RSA key, which ES256 cannot use: set AUTH_JWT_ALGORITHMS to RS256 or RS384"),
        # Too small to trust (RFC 7518 §3.3: 2048 bits at least), which PyJWT would only warn of at each token
        (
            _public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
            "RS256,PS256",
            "is too short for RS256: The RSA key is 1024 bits long, which is below the minimum",
        ),
        (
            _public_pem(ed25519.Ed25519PrivateKey.generate()),
            "RS256",
            "is an EdDSA key, which RS256 cannot use: set AUTH_JWT_ALGORITHMS to EdDSA",
        ),
        # A PEM kept on one line, as a CI secret often holds it
        (RSA_PUBLIC_PEM.replace("\n", "\\n"), None, "is not a readable PEM public key (its line breaks written as \\n"),
        (UNREADABLE_PUBLIC_KEY, None, "is not a readable PEM public key"),
        # A key on China's SM2 curve (issued by many Chinese CAs), which cryptography does not support
        *(
            (SM2_PUBLIC_PEM, algorithms, "is a kind of key no JWT algorithm verifies with")
            for algorithms in (None, "ES256", "EdDSA")
        ),
    ],
    ids=[
        "ec-under-rs256",
        "p384-under-es256",
        "rsa-under-es256",
        "rsa-1024",
        "ed25519-under-rs256",
        "one-line",
        "no-key",
        *(f"sm2-under-{name}" for name in ("rs256", "es256", "eddsa")),
    ],
)
def test_a_public_key_that_cannot_verify_says_what_to_change(key: str, algorithms: str | None, said: str) -> None:
    env = {**SIGN_ENV, "AUTH_JWT_SECRET": "", "AUTH_JWT_PUBLIC_KEY": key}
    with pytest.raises(ConfigError) as caught:
        check_key(load_sign_settings({**env, **({"AUTH_JWT_ALGORITHMS": algorithms} if algorithms else {})}).auth)
    assert str(caught.value).count("AUTH_JWT_PUBLIC_KEY") == 1 and said in str(caught.value)


@pytest.mark.parametrize(
    ("previous", "said"),
    [
        (_public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "is too short for RS256"),
        (_public_pem(ec.generate_private_key(ec.SECP256R1())), "is an EC key on secp256r1, which RS256 cannot use"),
    ],
)
def test_a_rotations_previous_public_key_is_checked_as_the_current_one(previous: str, said: str) -> None:
    env = {**SIGN_ENV, **RS_ENV, "AUTH_JWT_PUBLIC_KEY_PREVIOUS": previous}
    with pytest.raises(ConfigError) as caught:
        check_key(load_sign_settings(env).auth)
    assert f"AUTH_JWT_PUBLIC_KEY_PREVIOUS: {said}" in str(caught.value), str(caught.value)
