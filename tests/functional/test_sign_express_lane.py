"""The sign function's express lane (shared.sign_handler) against the general path it stands in for: on requests
generated around the one it is for, the same answer and the same log line (but its time), and it takes that one."""

from __future__ import annotations

import json
import os
import random
import tracemalloc
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from shared import sign_handler
from shared.auth import token_window
from shared.config import load_sign_settings
from shared.http.serve import serve
from shared.logs import CALL_THRESHOLD, WARNING
from shared.sign_handler import MAX_KNOWN, _with_express_lane
from shared.sign_service import make_sign_endpoint, urandom_u32
from tests.conftest import JWT_SECRET, SIGN_ENV, LeakGuard, Output
from tests.scf import response_json
from vodtesting import http_event

NOW = 1_800_000_000
ORIGIN = "https://app.example.com"
POLICIES = {
    "defaults": {},
    "every policy setting": {
        "VOD_SUB_APP_ID": "1500000001",
        "VOD_PROCEDURE": "transcode hd/é",
        "VOD_STORAGE_REGION": "ap-chongqing",
        "VOD_CLASS_ID": "3",
        "VOD_TASK_PRIORITY": "-2",
        "VOD_TASK_NOTIFY_MODE": "Change",
        "VOD_ONE_TIME": "false",
        "VOD_SIGNATURE_TTL": "60",
        "AUTH_JWT_LEEWAY": "0",
        "CORS_ALLOW_ORIGINS": ORIGIN,
        "CORS_ALLOW_CREDENTIALS": "true",
    },
    "any origin": {"CORS_ALLOW_ORIGINS": "*", "VOD_CLASS_ID": "0"},
    "the user named by oid": {"AUTH_JWT_USER_CLAIM": "oid"},
}


def token(sub: Any = "alice", **claims: Any) -> str:
    claims = {"oid": "0a1b2c3d-e5f6", **claims}  # the user where AUTH_JWT_USER_CLAIM=oid (Entra ID's object id)
    return jwt.encode({"sub": sub, "exp": NOW + 300, **claims}, JWT_SECRET, algorithm="HS256")


# Each dimension of a request: the first choice is the one the lane is for, the others what it must leave alone or
# answer exactly as the general path does.
TOKENS = [
    token(),
    token("user@example.com"),
    token("auth0|5f7c8ec7c33c6c004bbafe82"),
    token("us-east-1:9f2c4b1e"),  # a ':' of its own (Cognito's identity ids): sealed and encoded whole
    token("张伟"),
    token("a b+c"),
    token("x" * 173),  # the longest id sourceContext holds
    token("x" * 174),
    token(""),
    token(123),
    token("\u202eevil"),
    token("tab\there"),
    token(exp=NOW - 30),  # expired with the default leeway (30 s)
    token(exp=NOW - 29),
    token(exp=NOW + 0.5),
    token(exp=NOW),  # at exp: expired without leeway
    token(nbf=NOW + 30),
    token(nbf=NOW + 31),
    token(iat=NOW + 1),
    token(nbf="1800000000"),
    token(aud="app"),  # no audience is configured: a token for one is not for this function
    token(oid=7),
    token(oid=None),
    jwt.encode({"sub": "alice"}, JWT_SECRET, algorithm="HS256"),
    jwt.encode({"sub": "alice", "exp": NOW + 300}, "another secret of thirty-two bytes!", algorithm="HS256"),
]
AUTHORIZATIONS: list[Callable[[str], Any]] = [
    lambda t: f"Bearer {t}",
    lambda t: f"bearer {t}",
    lambda t: f"Bearer  {t}",
    lambda t: f"Bearer {t} ",
    lambda t: "Bearer",
    lambda t: "",
    lambda t: [f"Bearer {t}"],
    lambda t: None,
]
AUTHORIZATION_NAMES = [["Authorization"], ["authorization"], ["AUTHORIZATION"], ["Authorization", "authorization"], []]
ORIGINS = [None, ORIGIN, "https://evil.example", "", ["x"]]
ORIGIN_NAMES = ["Origin", "origin", "ORIGIN"]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", " Application/JSON ", "text/plain", "", None, 7]
BODIES: list[tuple[Any, Any]] = [  # body, isBase64Encoded ("absent": not in the event)
    ("{}", "absent"),
    ("absent", "absent"),
    ("", False),
    (None, True),
    ("{}", False),
    ("{}", "false"),
    ("{}", 0),
    ("e30=", True),
    (" {}", "absent"),
    ("{ }", "absent"),
    ('{"procedure": null}', "absent"),
    ('{"oneTimeValid": true}', "absent"),
    ("[]", "absent"),
    (b"{}", "absent"),
]
METHODS = ["POST", "post", "GET", "OPTIONS", "HEAD", None, 5]
SHAPES = ["apigw", "function_url"]
REQUEST_CONTEXTS: list[Callable[[dict[str, Any]], Any]] = [  # from the gateway's own
    lambda c: c,
    lambda c: {**c, "requestId": "gw.req:7_x"},
    lambda c: {**c, "requestId": "bad\r\nid"},
    lambda c: {**c, "requestId": "r" * 129},
    lambda c: {**c, "requestId": 12345},
    lambda c: {k: v for k, v in c.items() if k != "requestId"},
    lambda c: None,
    lambda c: ["x"],
    lambda c: "absent",
]
PATHS = ["/signature", "absent", "", None, 5, "/é", "/sign\ud800ature", "/" + "a" * 2000, '/"q"\\']
QUERIES = ["absent", {}, {"a": "b"}, {"a": ["x", "y"]}, None, "a=b"]
CONTEXTS = [{"request_id": "ctx-1"}, None, {"request_id": "bad\nid"}, {"request_id": "inv.7-x"}]


def _pick(rng: random.Random, choices: list[Any]) -> Any:
    return choices[0] if rng.random() < 0.75 else rng.choice(choices)


def _set(event: dict[str, Any], key: str, value: Any) -> None:
    if value == "absent":
        event.pop(key, None)
    else:
        event[key] = value


def generated_event(rng: random.Random) -> tuple[dict[str, Any], Any]:
    shape = _pick(rng, SHAPES)
    event = http_event(path="/signature", shape=shape)
    headers = dict(event["headers"])
    if shape == "apigw":
        _set(event, "requestContext", _pick(rng, REQUEST_CONTEXTS)(event["requestContext"]))
    authorization = _pick(rng, AUTHORIZATIONS)(_pick(rng, TOKENS))
    for name in _pick(rng, AUTHORIZATION_NAMES):
        headers[name] = authorization
    if (origin := _pick(rng, ORIGINS)) is not None:
        headers[rng.choice(ORIGIN_NAMES)] = origin
    body, marked = _pick(rng, BODIES)
    if (content_type := _pick(rng, CONTENT_TYPES)) is not None:
        headers["Content-Type" if shape == "apigw" else "content-type"] = content_type
    event["headers"] = headers if rng.random() < 0.97 else rng.choice([None, ["x"], "absent"])
    if event["headers"] == "absent":
        del event["headers"]
    _set(event, "body", body)
    _set(event, "isBase64Encoded", marked)
    _set(event, "httpMethod", _pick(rng, METHODS))
    _set(event, "path", _pick(rng, PATHS))
    _set(event, "queryString", _pick(rng, QUERIES))
    if shape == "apigw":  # the gateway's other name for it, read where queryString is absent or null
        _set(event, "queryStringParameters", _pick(rng, QUERIES))
    return event, _pick(rng, CONTEXTS)


class Paths:
    """The lane over the general path for one policy, and the general path alone: both with the same clock and
    random numbers. `taken` counts the requests the lane answered itself."""

    def __init__(self, env: dict[str, str], now: Callable[[], float] = lambda: NOW) -> None:
        settings = load_sign_settings({**SIGN_ENV, **env})
        endpoint = make_sign_endpoint(settings, now=now, random_u32=lambda: 7)
        self.general_calls = 0

        def general(event: object, context: object) -> dict[str, Any]:
            self.general_calls += 1
            return serve(event, context, endpoint, settings.http)

        self.general = general
        lane = _with_express_lane(settings, general, now, lambda: 7, lambda: 0.0)
        assert lane is not None
        self.lane = lane
        self.taken = 0

    def both(self, output: Output, event: Any, context: Any) -> tuple[Any, Any]:
        """(the lane's answer and log lines, the general path's), each log line without its time."""
        calls = self.general_calls
        ours = self.lane(event, context), _lines(output)
        self.taken += self.general_calls == calls
        return ours, (self.general(event, context), _lines(output))


def _lines(output: Output) -> list[dict[str, Any]]:
    return [{k: v for k, v in line.items() if k != "latency_ms"} for line in output.lines()]


@pytest.fixture
def same_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an id from SCF, each path would draw its own (shared.logs.invocation_id): the same one here."""
    monkeypatch.setattr(os, "urandom", lambda size: bytes(range(size)))


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.usefixtures("same_ids")
def test_the_lane_answers_generated_requests_as_the_general_path(
    policy: str, output: Output, leak_guard: LeakGuard
) -> None:
    paths = Paths(POLICIES[policy])
    rng = random.Random(f"express-{policy}")
    cases = 2_000
    for _ in range(cases):
        event, context = generated_event(rng)
        ours, general = paths.both(output, event, context)
        assert ours == general, (event, context)
        if ours[0]["statusCode"] == 200:
            leak_guard.add(response_json(ours[0])["signature"])
    # The lane took a good share of them (the first choices: three in four of each dimension), not only trivial ones
    assert cases // 10 < paths.taken < cases // 2, paths.taken


REQUEST: dict[str, Any] = {"path": "/signature", "body": {}, "headers": {"Authorization": f"Bearer {token()}"}}


@pytest.mark.parametrize(
    ("change", "taken"),
    [
        ({}, True),
        ({"shape": "function_url"}, True),
        ({"body": None}, True),
        ({"headers": {**REQUEST["headers"], "Origin": ORIGIN}}, True),
        ({"headers": {**REQUEST["headers"], "Content-Type": "application/json; charset=utf-8"}}, True),
        ({"headers": {**REQUEST["headers"], "authorization": "Bearer x"}}, False),  # which one counts: refused
        ({"headers": {**REQUEST["headers"], "Origin": [ORIGIN]}}, False),  # a gateway's list: the general path reads it
        ({"body": {"procedure": "transcode hd/é"}}, False),  # a choice: checked against the policy
        ({"method": "OPTIONS"}, False),
        ({"headers": {"Authorization": f"Bearer {token(exp=NOW - 1)}"}}, False),
    ],
)
def test_the_lane_takes_the_request_it_is_for(
    change: dict[str, Any], taken: bool, output: Output, leak_guard: LeakGuard
) -> None:
    paths = Paths(POLICIES["every policy setting"])
    for _ in range(2):  # a token not seen yet (verified the general way), then the same again
        ours, general = paths.both(output, http_event(**{**REQUEST, **change}), {"request_id": "ctx-1"})
        assert ours == general
    assert paths.taken == (1 if taken else 0)
    if taken:
        assert ours[0]["statusCode"] == 200 and leak_guard.add(response_json(ours[0])["signature"])


def test_a_token_is_verified_once_and_one_refused_is_not_kept(
    output: Output, leak_guard: LeakGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []

    def counted(token: str, auth: Any) -> Any:
        looked_up.append(token)
        return token_window(token, auth)

    monkeypatch.setattr(sign_handler, "token_window", counted)
    paths = Paths({})
    refused = http_event(**{**REQUEST, "headers": {"Authorization": "Bearer not.a.token"}})
    for _ in range(3):
        assert paths.both(output, refused, None)[0][0]["statusCode"] == 401
    assert (looked_up, paths.taken) == ([], 0)  # the general path's verdict alone, each time
    for _ in range(3):
        ours, _general = paths.both(output, http_event(**REQUEST), None)
        leak_guard.add(response_json(ours[0])["signature"])
    assert (len(looked_up), paths.taken) == (1, 2)  # learnt from the general path's first answer


def test_what_the_lane_keeps_of_header_names_is_bounded(output: Output) -> None:
    paths = Paths({})
    event = http_event(**REQUEST)
    paths.lane(event, None)  # the token learnt
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(MAX_KNOWN - 1):  # each with other names, ~2 KB of them, as anyone may send (what fills the cache)
        headers = {**event["headers"], **{f"x-{i}-{n:016d}": "" for n in range(100)}}
        assert paths.lane({**event, "headers": headers}, None)["statusCode"] == 200
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    output.skip()
    assert kept < 1_000_000, kept


def test_what_the_lane_keeps_is_at_most_max_known_entries(
    output: Output, leak_guard: LeakGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tokens and header layouts, as anyone may send new ones: the caches start over when full, never grow past it.
    monkeypatch.setattr(sign_handler, "MAX_KNOWN", 4)
    remember, sizes = sign_handler._remember, list[int]()

    def counted(cache: dict[Any, Any], key: Any, value: Any) -> Any:
        kept = remember(cache, key, value)
        sizes.append(len(cache))
        return kept

    monkeypatch.setattr(sign_handler, "_remember", counted)
    paths = Paths({})
    for i in range(20):
        headers = {"Authorization": f"Bearer {token(f'user-{i}')}", f"x-layout-{i}": ""}
        for _ in range(2):  # learnt from the general path's answer, then taken by the lane
            answer = paths.lane(http_event(**{**REQUEST, "headers": headers}), None)
            assert answer["statusCode"] == 200 and leak_guard.add(response_json(answer)["signature"])
    output.skip()
    assert paths.general_calls == 20 and len(sizes) >= 40 and max(sizes) == 4, sizes  # the lane took the rest


def test_a_token_the_lane_knows_expires_on_time(output: Output, leak_guard: LeakGuard) -> None:
    clock = [float(NOW)]
    paths = Paths({}, now=lambda: clock[0])
    event = http_event(**{**REQUEST, "headers": {"Authorization": f"Bearer {token(exp=NOW + 60, nbf=NOW + 40)}"}})
    # Valid from nbf less the 30 s leeway (NOW + 10) until exp and the leeway (NOW + 90): learnt at its first 200
    for moment, status, by_lane in [
        (NOW + 9.9, 401, False),
        (NOW + 10, 200, False),
        (NOW + 10, 200, True),
        (NOW + 89.9, 200, True),
        (NOW + 90, 401, False),
        (NOW + 9.9, 401, False),
    ]:
        clock[0] = moment
        taken = paths.taken
        ours, general = paths.both(output, event, None)
        assert ours == general and ours[0]["statusCode"] == status, moment
        assert paths.taken == taken + by_lane, moment
        if status == 200:
            leak_guard.add(response_json(ours[0])["signature"])


def test_the_lane_judges_a_known_token_and_signs_for_it_at_one_moment(output: Output, leak_guard: LeakGuard) -> None:
    # Learnt at NOW (the general path reads the clock once); then its last second, the clock moving on at each reading
    moments = iter([float(NOW), *(NOW + 89.9 + 0.6 * n for n in range(10))])
    paths = Paths({}, now=moments.__next__)
    event = http_event(**{**REQUEST, "headers": {"Authorization": f"Bearer {token(exp=NOW + 60)}"}})
    leak_guard.add(response_json(paths.lane(event, None))["signature"])
    body = response_json(paths.lane(event, None))
    leak_guard.add(body["signature"])
    assert paths.general_calls == 1 and (body["currentTimeStamp"], body["expireTime"]) == (NOW + 89, NOW + 90)


def test_the_lane_writes_no_line_below_the_calls_threshold(output: Output, leak_guard: LeakGuard) -> None:
    paths = Paths({})
    leak_guard.add(response_json(paths.lane(http_event(**REQUEST), None))["signature"])  # the token learnt
    output.skip()
    threshold = CALL_THRESHOLD.set(WARNING)
    try:
        result = paths.lane(http_event(**REQUEST), None)
    finally:
        CALL_THRESHOLD.reset(threshold)
    assert result["statusCode"] == 200 and paths.general_calls == 1
    leak_guard.add(response_json(result)["signature"])
    assert output.lines() == []


def test_random_numbers_are_32_bit_and_a_forked_child_draws_its_own() -> None:
    drawn = [urandom_u32() for _ in range(3000)]  # across a refill
    assert all(0 <= n < 2**32 for n in drawn) and len(set(drawn)) > 2990
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        os.write(write, json.dumps([urandom_u32() for _ in range(4)]).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        theirs = json.loads(pipe.read())
    assert theirs != [urandom_u32() for _ in range(4)]
