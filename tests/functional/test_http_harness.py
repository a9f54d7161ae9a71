"""The real handlers over real HTTP, served by functions-framework through the local harness."""

from __future__ import annotations

import base64
import json
import re
import socket
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import flask
import jwt
import pytest
import requests

from shared import source_context
from tests.conftest import JWT_SECRET, KEYS, SECRET_ID, SECRET_KEY, SIGN_ENV, LeakGuard
from vodemu import signature as vod_signature
from vodlocal import harness, localstack
from vodtesting import http_event


@pytest.fixture
def start_gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Serve the real functions over HTTP with the given settings; returns the base URL."""
    servers: list[localstack.RunningServer] = []

    def start(**env: str) -> str:
        for key, value in {**SIGN_ENV, "CORS_ALLOW_ORIGINS": "https://app.example.com", **env}.items():
            monkeypatch.setenv(key, value)
        servers.append(localstack.start_gateway())
        return servers[-1].url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def gateway(start_gateway: Callable[..., str]) -> str:
    return start_gateway()


def _token(sub: str = "http-user", exp: int = 2**40) -> str:
    return jwt.encode({"sub": sub, "exp": exp}, JWT_SECRET, algorithm="HS256")


def test_signature_over_http(gateway: str, leak_guard: LeakGuard) -> None:
    response = requests.post(
        f"{gateway}/signature",
        json={"sessionContext": "s"},
        timeout=10,
        headers={"Authorization": f"Bearer {_token()}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    leak_guard.add(body["signature"])
    signed = vod_signature.verify(body["signature"], {SECRET_ID: SECRET_KEY}, now=body["currentTimeStamp"])
    identity = source_context.attribute(signed.text("sourceContext"), KEYS)
    assert identity.why == "sealed" and identity.user_id == "http-user"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "kwargs", "status", "code"),
    [
        ("POST", {}, 401, "missing_credentials"),
        ("POST", {"headers": {"Authorization": f"Bearer {_token(exp=1)}"}}, 401, "invalid_token"),
        (
            "POST",
            {"headers": {"Authorization": f"Bearer {_token()}", "Content-Type": "text/plain"}, "data": "{}"},
            415,
            "unsupported_content_type",
        ),
        (
            "POST",
            {"headers": {"Authorization": f"Bearer {_token()}", "Content-Type": "application/json"}, "data": "{nope"},
            400,
            "invalid_json",
        ),
        (
            "POST",
            {"headers": {"Authorization": f"Bearer {_token()}"}, "json": {"sourceContext": "forged"}},
            400,
            "field_not_allowed",
        ),
        (
            "POST",
            {"headers": {"Authorization": f"Bearer {_token()}"}, "json": {"procedure": "x"}},
            403,
            "policy_violation",
        ),
        (
            "POST",
            {"headers": {"Authorization": f"Bearer {_token()}"}, "json": {"a": "x" * 20_000}},
            413,
            "payload_too_large",
        ),
        (
            "POST",
            {
                "headers": {"Authorization": f"Bearer {_token()}", "Content-Type": "application/json"},
                "data": b"\xff\xfe",
            },
            400,
            "invalid_json",
        ),
        ("GET", {}, 405, "method_not_allowed"),
        ("DELETE", {}, 405, "method_not_allowed"),
    ],
)
def test_refusals_over_http(gateway: str, method: str, kwargs: dict[str, object], status: int, code: str) -> None:
    response = requests.request(method, f"{gateway}/signature", timeout=10, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.headers["Content-Type"].startswith("application/json")


def test_preflight_over_http(gateway: str) -> None:
    response = requests.options(
        f"{gateway}/signature",
        timeout=10,
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_unknown_path_is_a_json_404(gateway: str) -> None:
    response = requests.post(f"{gateway}/nowhere", timeout=10)
    assert response.status_code == 404
    assert json.loads(response.text)["error"]["code"] == "no_route"


_NONE_HEADER = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
_CLAIMS = base64.urlsafe_b64encode(b'{"sub":"mallory","exp":99999999999}').rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("env", "headers", "code"),
    [
        ({}, {"Authorization": f"Bearer {_NONE_HEADER}.{_CLAIMS}."}, "invalid_token"),  # alg: none
        (
            {},
            {"Authorization": "Bearer " + jwt.encode({"sub": "m", "exp": 2**40}, "x" * 40, algorithm="HS256")},
            "invalid_token",
        ),  # signed with another key
        ({"AUTH_JWT_AUDIENCE": "vod-upload"}, {"Authorization": f"Bearer {_token()}"}, "invalid_token"),  # no aud
        (
            {"AUTH_MODE": "gateway", "AUTH_GATEWAY_SECRET": "gateway-shared-secret-0123456789"},
            {"X-User-Id": "mallory"},
            "untrusted_gateway",
        ),  # the user header without the gateway's secret
    ],
)
def test_auth_refusals_over_http(
    start_gateway: Callable[..., str], env: dict[str, str], headers: dict[str, str], code: str
) -> None:
    response = requests.post(f"{start_gateway(**env)}/signature", json={}, headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="vod-upload"')


def test_preflight_from_another_origin_is_refused_over_http(gateway: str) -> None:
    response = requests.options(
        f"{gateway}/signature",
        timeout=10,
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_head_over_http(gateway: str) -> None:
    page = requests.get(f"{gateway}/upload/", timeout=10)
    host = urlsplit(gateway)
    with socket.create_connection((host.hostname, host.port or 80), timeout=10) as raw:
        raw.sendall(b"HEAD /upload/ HTTP/1.0\r\nAccept-Encoding: gzip, deflate\r\n\r\n")
        answer = b"".join(iter(lambda: raw.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b""  # no body on the wire...
    fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    assert fields["Content-Type"] == page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert fields["Content-Length"] == page.headers["Content-Length"]  # ...and GET's length announced
    refused = requests.head(f"{gateway}/signature", timeout=10)
    assert (refused.status_code, refused.headers["Allow"]) == (405, "POST, OPTIONS")


def test_the_page_on_its_own_origin_gets_what_a_function_url_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    # As deployed: the page on a function URL of its own, whose events have no requestContext, lowercase headers
    for key, value in SIGN_ENV.items():
        monkeypatch.setenv(key, value)
    app = flask.Flask("event")
    with app.test_request_context(
        "/assets/a.js?v=1", headers={"X-Thing": "v"}, environ_base={"REMOTE_ADDR": "127.0.0.9"}
    ):
        event = harness.function_url_event(flask.request, "rid")
    assert event == {
        "headers": {"x-thing": "v", "host": "localhost", "x-scf-remote-addr": "127.0.0.9"},
        "httpMethod": "GET",
        "path": "/assets/a.js",
        "queryString": {"v": "1"},
        "body": "",
    }
    server = localstack.serve_wsgi("page", harness.create_app("upload_page"), 0)
    try:
        page = requests.get(f"{server.url}/", timeout=10)
        script = re.search(r'src="(assets/vod-js-sdk-v6\.[0-9a-f]+\.js)"', page.text)
        asset = requests.get(f"{server.url}/{script and script[1]}", timeout=10)
        other = requests.get(f"{server.url}/upload", timeout=10, allow_redirects=False)  # every path reaches it
    finally:
        server.stop()
    assert page.status_code == 200 and "<h1>Upload a video</h1>" in page.text
    assert (other.status_code, other.headers.get("Location")) == (308, "upload/")
    assert asset.status_code == 200 and asset.headers["Content-Type"].startswith("text/javascript")


@pytest.mark.parametrize(
    ("path", "route", "method", "parameters"),
    [
        ("/uploads/5285890784273533167", "/uploads/{fileId}", "ANY", {"fileId": "5285890784273533167"}),
        ("/uploads/a%2Fb", "/uploads/{fileId}", "ANY", {"fileId": "a%2Fb"}),
        ("/uploads", "/uploads", "ANY", {}),
        ("/signature", "/signature", "ANY", {}),
        ("/vod-events", "/vod-events", "POST", {}),
    ],
)
def test_the_api_gets_what_its_gateway_routes_send(path: str, route: str, method: str, parameters: dict[str, str]):
    # As deploy/api-gateway/serverless.yml declares them: requestContext names the route and its declared method;
    # header values are text (a WSGI server hands over their UTF-8 bytes read as Latin-1)
    sent = {"HTTP_X_USER_ID": "张三".encode().decode("latin-1"), "HTTP_X_RAW": "\xe9", "REMOTE_ADDR": "127.0.0.9"}
    with flask.Flask("event").test_request_context(path, method="POST", environ_base=sent):
        event = harness.api_gateway_event(flask.request, "rid")
    assert (event["path"], event["httpMethod"]) == (path, "POST")
    context = event["requestContext"]
    assert (context["path"], context["httpMethod"], event["pathParameters"]) == (route, method, parameters)
    assert context["sourceIp"] == "127.0.0.9"  # the client's address, as the gateway reports it
    assert (event["headers"]["X-User-Id"], event["headers"]["X-Raw"]) == ("张三", "\xe9")  # not UTF-8: as read
    kit = http_event("POST", path)  # and the testing kit's event, as the gateway's
    assert (kit["requestContext"]["path"], kit["requestContext"]["httpMethod"], kit["pathParameters"]) == (
        route,
        method,
        parameters,
    )


def test_a_function_that_failed_to_start_fails_each_request_and_the_others_serve(gateway: str) -> None:
    # Only the sign function's settings: the callback's cold start failed when the gateway started, as in SCF.
    answers = [requests.post(f"{gateway}/vod-events", json={}, timeout=10).status_code for _ in range(3)]
    assert answers == [500, 500, 500]
    signed = requests.post(f"{gateway}/signature", json={}, headers={"Authorization": f"Bearer {_token()}"}, timeout=10)
    assert signed.status_code == 200


@pytest.mark.parametrize("own", [True, False], ids=["an-app-module-of-that-name", "none"])
def test_building_the_app_leaves_the_import_system_as_it_was(monkeypatch: pytest.MonkeyPatch, own: bool) -> None:
    # functions-framework loads the harness file again as a top-level `harness` module and adds its directory to
    # sys.path: an app tested beside a stack may have a module of that name (its hook, say)
    mine = types.ModuleType("harness")
    if own:
        monkeypatch.setitem(sys.modules, "harness", mine)
    else:
        monkeypatch.delitem(sys.modules, "harness", raising=False)
    for name, value in SIGN_ENV.items():
        monkeypatch.setenv(name, value)
    path = list(sys.path)
    app = harness.create_app()
    assert sys.path == path and sys.modules.get("harness") is (mine if own else None)
    assert app.test_client().post("/signature").status_code == 401  # and the app it built still serves


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("limit=5", {"limit": "5"}),
        # As a captured event has them (tencentyun/scf-go-lib, events/apigw_test.go): a repeated name's values as a
        # list, a name without `=` as true
        ("a=b&a=c&i&x=", {"a": ["b", "c"], "i": True, "x": ""}),
        ("cursor=a%2Bb+c&w%C3%A9=%E2%9C%93", {"cursor": "a+b c", "wé": "✓"}),
        ("", {}),
    ],
)
def test_the_gateway_event_carries_the_query_as_the_api_gateway_sends_it(
    query: str, expected: dict[str, object]
) -> None:
    with flask.Flask("event").test_request_context(f"/uploads?{query}"):
        event = harness.api_gateway_event(flask.request, "r-1")
    # queryStringParameters: the API's declared parameters only (deploy/api-gateway declares none)
    assert (event["queryString"], event["queryStringParameters"]) == (expected, {})


@pytest.mark.parametrize(
    ("sent", "body", "marked"),
    [
        (b"", None, False),  # no body: API gateway leaves the field out
        ('{"name": "é"}'.encode(), '{"name": "é"}', False),  # UTF-8: as text
        (b"\xff\xfe{}", base64.b64encode(b"\xff\xfe{}").decode(), True),  # not UTF-8: base64, and marked so
    ],
    ids=["none", "text", "bytes"],
)
def test_the_gateway_event_carries_the_body_as_the_api_gateway_sends_it(
    sent: bytes, body: str | None, marked: bool
) -> None:
    with flask.Flask("event").test_request_context("/signature", method="POST", data=sent):
        event = harness.api_gateway_event(flask.request, "r-1")
    assert (event.get("body", None), event["isBase64Encoded"]) == (body, marked)
    assert ("body" in event) == bool(sent)


@pytest.mark.parametrize(
    ("result", "content_type", "data"),
    [
        # A 304 or a preflight's 204: no body, no Content-Type (Flask would otherwise claim text/html)
        ({"statusCode": 304, "headers": {"ETag": '"abc"'}, "body": ""}, None, b""),
        ({"statusCode": 204, "headers": {}, "body": ""}, None, b""),
        ({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{}"}, "application/json", b"{}"),
        (
            {"statusCode": 200, "headers": {"Content-Type": "image/png"}, "isBase64Encoded": True, "body": "iVBORw=="},
            "image/png",
            base64.b64decode("iVBORw=="),
        ),
    ],
    ids=["not-modified", "no-content", "json", "base64"],
)
def test_a_handlers_answer_is_the_http_response_it_describes(
    result: dict[str, object], content_type: str | None, data: bytes
) -> None:
    with flask.Flask("answer").app_context():
        response = harness.to_flask(result)
    assert response.status_code == result["statusCode"]
    assert (response.headers.get("Content-Type"), response.get_data()) == (content_type, data)


def test_a_server_stops_once_the_requests_it_answers_are_answered() -> None:
    # GIVEN a request the server is answering (a callback whose after-commit hook still runs, say)
    answering, release = threading.Event(), threading.Event()
    answered: list[int] = []

    def slow(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        answering.set()
        release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    server = localstack.serve_wsgi("slow", slow, 0)
    client = threading.Thread(target=lambda: answered.append(requests.get(server.url, timeout=10).status_code))
    client.start()
    assert answering.wait(10)
    # WHEN the server stops THEN it waits for that answer (not into whatever runs next), up to its bound
    threading.Timer(0.3, release.set).start()
    server.stop(wait_seconds=30)
    assert release.is_set() and server.in_flight.count == 0
    client.join(10)
    assert answered == [200]


def test_a_server_that_cannot_wait_for_its_requests_says_so() -> None:
    release = threading.Event()

    def stuck(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        release.wait(10)
        start_response("200 OK", [])
        return [b""]

    server = localstack.serve_wsgi("stuck", stuck, 0)
    client = threading.Thread(target=lambda: requests.get(server.url, timeout=10))
    client.start()
    try:
        while server.in_flight.count == 0:
            time.sleep(0.01)
        with pytest.warns(RuntimeWarning, match=r"stuck: stopped while 1 request\(s\) still ran after 0.2 s"):
            server.stop(wait_seconds=0.2)
    finally:
        release.set()
        client.join(10)
