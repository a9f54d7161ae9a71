"""The real handlers over real HTTP, served by functions-framework through the local harness."""

from __future__ import annotations

import json
from collections.abc import Iterator

import jwt
import localstack
import pytest
import requests

from shared import source_context
from shared.signing import verify_signature
from tests.conftest import JWT_SECRET, SECRET_ID, SECRET_KEY, SIGN_ENV, LeakGuard


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for key, value in {**SIGN_ENV, "CORS_ALLOW_ORIGINS": "https://app.example.com"}.items():
        monkeypatch.setenv(key, value)
    server = localstack.start_gateway()
    yield server.url
    server.stop()


def _token(sub: str = "http-user", exp: int = 2**40) -> str:
    return jwt.encode({"sub": sub, "exp": exp}, JWT_SECRET, algorithm="HS256")


def test_signature_over_http(gateway: str, leak_guard: LeakGuard) -> None:
    response = requests.post(f"{gateway}/signature", json={"sessionContext": "s"}, timeout=10,
                             headers={"Authorization": f"Bearer {_token()}"})
    assert response.status_code == 200, response.text
    body = response.json()
    leak_guard.add(body["signature"])
    params = verify_signature(body["signature"], {SECRET_ID: SECRET_KEY}, now=body["currentTimeStamp"])
    identity = source_context.decode(params.source_context)
    assert identity is not None and identity.user_id == "http-user"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("method", "kwargs", "status", "code"), [
    ("POST", {}, 401, "missing_credentials"),
    ("POST", {"headers": {"Authorization": f"Bearer {_token(exp=1)}"}}, 401, "invalid_token"),
    ("POST", {"headers": {"Authorization": f"Bearer {_token()}", "Content-Type": "text/plain"}, "data": "{}"}, 415,
     "unsupported_content_type"),
    ("POST", {"headers": {"Authorization": f"Bearer {_token()}", "Content-Type": "application/json"},
              "data": "{nope"}, 400, "invalid_json"),
    ("POST", {"headers": {"Authorization": f"Bearer {_token()}"}, "json": {"sourceContext": "forged"}}, 400,
     "field_not_allowed"),
    ("POST", {"headers": {"Authorization": f"Bearer {_token()}"}, "json": {"procedure": "x"}}, 403,
     "policy_violation"),
    ("POST", {"headers": {"Authorization": f"Bearer {_token()}"}, "json": {"a": "x" * 10_000}}, 413,
     "payload_too_large"),
    ("POST", {"headers": {"Authorization": f"Bearer {_token()}", "Content-Type": "application/json"},
              "data": b"\xff\xfe"}, 400, "invalid_json"),
    ("GET", {}, 405, "method_not_allowed"),
    ("DELETE", {}, 405, "method_not_allowed"),
])
def test_refusals_over_http(gateway: str, method: str, kwargs: dict[str, object], status: int, code: str) -> None:
    response = requests.request(method, f"{gateway}/signature", timeout=10, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.headers["Content-Type"].startswith("application/json")


def test_preflight_over_http(gateway: str) -> None:
    response = requests.options(f"{gateway}/signature", timeout=10, headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_unknown_path_is_a_json_404(gateway: str) -> None:
    response = requests.post(f"{gateway}/nowhere", timeout=10)
    assert response.status_code == 404
    assert json.loads(response.text)["error"]["code"] == "not_found"
