"""What runs the local stack in-process (the benchmarks in scripts/vodbench/, the testing kit's VodStack)
keeps its loopback traffic (tokens, signatures, temporary keys) off any proxy, and restores the environment;
and how the stack's dev settings meet the shell's."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from vodbench.common import environment
from vodlocal.localstack import apply_settings, serve_wsgi
from vodlocal.tls import self_signed
from vodtesting.stack import VodStack, start_stack_with


@contextlib.contextmanager
def _testing_kit_stack(tmp_path: Path) -> Iterator[None]:
    stack = VodStack(tmp_path / "state")
    try:
        yield
    finally:
        stack.stop()


@pytest.mark.parametrize(
    "running",
    [lambda tmp_path: environment({"VOD_SUB_APP_ID": "1"}), _testing_kit_stack],
    ids=["vod-bench", "testing-kit"],
)
def test_loopback_traffic_skips_the_proxy_and_the_environment_comes_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, running: Callable[[Path], AbstractContextManager[None]]
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("https_proxy", "http://proxy.invalid:3128")
    monkeypatch.setenv("ALL_PROXY", "socks5://proxy.invalid:1080")
    monkeypatch.setenv("NO_PROXY", "example.com")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("VOD_SUB_APP_ID", raising=False)
    assert requests.utils.get_environ_proxies("http://127.0.0.1:9000/") != {}  # what the SDKs would use

    with running(tmp_path):
        assert os.environ["VOD_SUB_APP_ID"]  # the run's own settings are in place
        assert requests.utils.get_environ_proxies("http://127.0.0.1:9000/") == {}
        assert requests.utils.get_environ_proxies("http://localhost:9000/") == {}
        assert not {"HTTP_PROXY", "https_proxy", "ALL_PROXY"} & set(os.environ)

    assert os.environ["HTTP_PROXY"] == "http://proxy.invalid:3128"
    assert os.environ["https_proxy"] == "http://proxy.invalid:3128"
    assert os.environ["ALL_PROXY"] == "socks5://proxy.invalid:1080"
    assert os.environ["NO_PROXY"] == "example.com"
    assert "no_proxy" not in os.environ
    assert "http_proxy" not in os.environ
    assert "VOD_SUB_APP_ID" not in os.environ


DEV = {"AUTH_MODE": "jwt", "AUTH_JWT_SECRET": "dev-secret", "DATABASE_URL": "sqlite:///dev.sqlite3"}


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        ({}, DEV),
        ({"DATABASE_URL": " ", "AUTH_JWT_SECRET": ""}, DEV),  # blank is unset, as the functions read it
        ({"DATABASE_URL": "sqlite:///mine"}, {**DEV, "DATABASE_URL": "sqlite:///mine"}),
        ({"AUTH_JWT_LEEWAY": "30"}, {**DEV, "AUTH_JWT_LEEWAY": "30"}),  # a detail of the dev token check
        # the shell's own token check replaces the dev one whole: never a public key beside the dev secret
        ({"AUTH_JWT_PUBLIC_KEY": "PEM"}, {"AUTH_JWT_PUBLIC_KEY": "PEM", "DATABASE_URL": DEV["DATABASE_URL"]}),
        ({"AUTH_MODE": "gateway"}, {"AUTH_MODE": "gateway", "DATABASE_URL": DEV["DATABASE_URL"]}),
        # an identity provider's key set (README's table of them), AUTH_MODE left to its default
        (
            {"AUTH_JWT_JWKS_URL": "https://id/jwks"},
            {"AUTH_JWT_JWKS_URL": "https://id/jwks", "DATABASE_URL": DEV["DATABASE_URL"]},
        ),
    ],
    ids=["nothing", "blanks", "own-database", "leeway", "own-public-key", "own-mode", "own-key-set"],
)
def test_the_local_stack_takes_the_shells_settings_over_its_own(
    shell: dict[str, str], expected: dict[str, str]
) -> None:
    env = dict(shell)
    apply_settings(DEV, env)
    assert {k: v for k, v in env.items() if v.strip() and "PROXY" not in k.upper()} == expected


@pytest.mark.parametrize("spelling", ["NO_PROXY", "no_proxy"])
def test_loopback_traffic_skips_the_proxy_whichever_spelling_the_shell_exempts_hosts_with(
    monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    # GIVEN a shell with a proxy, exempting its own hosts under either spelling (requests reads no_proxy first)
    shell = {"HTTP_PROXY": "http://proxy.invalid:3128", spelling: "example.com"}
    # WHEN the stack's settings are put into that environment
    env = apply_settings(DEV, dict(shell))
    monkeypatch.setattr(os, "environ", env)
    # THEN requests, reading it, sends the stack's loopback traffic straight
    assert requests.utils.get_environ_proxies("http://127.0.0.1:9000/") == {}
    assert requests.utils.get_environ_proxies("http://localhost:9000/") == {}


def _taken_on_every_interface(port: int) -> bool:
    """Whether `port` is taken on another loopback address too (127.0.0.2): a server bound to 127.0.0.1 leaves it
    free there; one bound to 0.0.0.0, reachable from the network, does not."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.2", port))
        except OSError:
            return True
    return False


def test_the_kits_stack_listens_on_loopback_alone(tmp_path: Path) -> None:
    # GIVEN the testing kit's stack, running: its tokens, signatures and temporary keys travel over its servers
    stack = VodStack(tmp_path / "state")
    try:
        urls = (stack.gateway_url, stack.emulator_url, stack.page_url)
        tls_port = int(re.findall(r"MAP vod2\.qcloud\.com 127\.0\.0\.1:(\d+)", " ".join(stack.chromium_flags()))[0])
        ports = {urlsplit(stack.gateway_url).port, urlsplit(stack.emulator_url).port, tls_port}
        # THEN each server is bound to the loopback address, not to every interface
        assert {port for port in ports if port and _taken_on_every_interface(port)} == set()
    finally:
        stack.stop()
    assert {urlsplit(url).hostname for url in urls} == {"127.0.0.1"}


def _scheme(environ: dict[str, Any], start_response: Callable[..., object]) -> list[bytes]:
    start_response("200 OK", [])
    return [environ["wsgi.url_scheme"].encode()]


def test_a_client_that_says_nothing_holds_up_no_other_on_the_tls_front(tmp_path: Path) -> None:
    # GIVEN the emulator's TLS front (browsers' vod2.qcloud.com), and a connection to it that never starts its
    # handshake (a port probe, a stalled path)
    cert, key = self_signed(tmp_path / "tls")
    front = serve_wsgi("tls", _scheme, ssl_context=(str(cert), str(key)))
    url = f"https://localhost:{front.server.server_port}/"
    try:
        with socket.create_connection(("127.0.0.1", front.server.server_port)):
            # WHEN another client asks THEN it is answered, over TLS, meanwhile
            trusting = ssl.create_default_context(cafile=str(cert))
            with urllib.request.urlopen(url, timeout=10, context=trusting) as answer:
                assert answer.read() == b"https"
            # and it stops at once, the silent client still connected
            stopping = time.monotonic()
            front.stop()
            assert time.monotonic() - stopping < 5
    finally:
        front.stop()  # (a no-op once stopped)


def test_the_fixtures_stack_keeps_the_tests_traffic_off_the_shells_proxy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a shell with a proxy, and the stack started as the vod_stack fixture starts it (through monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    stack = start_stack_with(monkeypatch, tmp_path / "state")
    try:
        # THEN while it runs, the test's own calls to it (requests, the SDKs) go straight too: the variables the
        # stack removed are removed from the test's environment as well
        assert "HTTP_PROXY" not in os.environ
        assert requests.utils.get_environ_proxies(stack.gateway_url) == {}
    finally:
        stack.stop()


def test_the_kits_stack_sets_aside_the_apps_page_urls_and_says_which_origins_it_allows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN an app's test environment holding its production page settings and its dev server's origin
    monkeypatch.setenv("UPLOAD_PAGE_SIGNATURE_URL", "https://api.prod.example/signature")
    monkeypatch.setenv("UPLOAD_PAGE_STATUS_URL", "https://api.prod.example/uploads")
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "http://localhost:5173")
    stack = start_stack_with(monkeypatch, tmp_path / "state")
    try:
        page = requests.get(stack.page_url, timeout=10)
        # THEN its page sends tokens to its own functions, and its settings say the origins it runs with
        assert page.status_code == 200 and "prod.example" not in page.text
        assert stack.settings["CORS_ALLOW_ORIGINS"] == "http://localhost:5173"
    finally:
        stack.stop()
    assert os.environ["UPLOAD_PAGE_SIGNATURE_URL"] == "https://api.prod.example/signature"  # the app's, back
