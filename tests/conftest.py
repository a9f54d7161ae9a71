"""Fixtures shared by every test: isolated environment, known test keys, and the leak guard."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from shared import logs
from vodlocal.localstack import LOOPBACK_HOSTS, PROXY_VARIABLES
from vodtesting.pgserver import own_postgres_server, pgbouncer, postgres_server  # noqa: F401 (one for the session)
from vodtesting.stack import VodStack, start_stack_with

if TYPE_CHECKING:
    from shared.config import VodApiSettings

# Test-only values (not credentials of any account).
SECRET_ID = "AKIDtest0000000000000000000000000000"
SECRET_KEY = "testSecretKey0123456789abcdefABCDEF"
JWT_SECRET = "test-jwt-secret-0123456789-abcdefghijklmnop"
CALLBACK_SIGN_KEY = "TestSignKey0123456789"
GATEWAY_SECRET = "gateway-shared-secret-0123456789"
CONTEXT_KEY = "test-context-key-0123456789-abcdefghijklmnop"
UNREADABLE_PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----"  # PEM-shaped, no key in it
UNREADABLE_PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----"
KEYS = (CONTEXT_KEY,)  # the context keys the callback and events_pull open sealed sourceContexts with

SIGN_ENV = {
    "TENCENTCLOUD_SECRET_ID": SECRET_ID,
    "TENCENTCLOUD_SECRET_KEY": SECRET_KEY,
    "AUTH_JWT_SECRET": JWT_SECRET,
    "VOD_CONTEXT_KEY": CONTEXT_KEY,
}
CALLBACK_ENV = {"VOD_CALLBACK_SIGN_KEY": CALLBACK_SIGN_KEY, "VOD_CONTEXT_KEY": CONTEXT_KEY}


def pytest_configure(config: pytest.Config) -> None:
    # Tests send Ctrl-C (SIGINT) to the commands they start. A job a shell starts in the background (`make test &`)
    # ignores SIGINT, and children inherit that: their Python then sets no KeyboardInterrupt handler and shrugs the
    # test's Ctrl-C off. With a handler here, each child starts with SIGINT's default, as from a terminal.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def callback_confirm_api(environ: dict[str, str]) -> VodApiSettings:
    """The callback's settings for VOD's API (VOD_CALLBACK_CONFIRM=fetch), made of `environ`."""
    from shared.config import load_callback_settings

    settings = load_callback_settings(
        {**CALLBACK_ENV, "VOD_SECRET_ID": "AKIDv", "VOD_SECRET_KEY": "kv", "VOD_CALLBACK_CONFIRM": "fetch", **environ}
    )
    assert settings.confirm_api is not None
    return settings.confirm_api


def command(name: str) -> str:
    """One of the project's console scripts (vod-upload, …), as `make setup` installed it: beside the
    interpreter running the tests, so the tests run exactly what a user runs."""
    return str(Path(sys.executable).parent / name)


def closed_loopback_port() -> int:
    """A loopback port nothing listens on: bound by the OS for us, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def user_env() -> dict[str, str]:
    """A fresh shell's environment: this one's PATH, HOME and LANG, none of the developer's settings."""
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}


def run_command(
    name: str,
    *args: str,
    env: dict[str, str] | None = None,
    base: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run a console script to the end: its exit code, stdout and stderr, as text. `env` is added to
    `base` (default: this process's environment; `user_env()` for a user's fresh shell)."""
    return subprocess.run(
        [command(name), *args],
        env={**(os.environ if base is None else base), **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class LeakGuard:
    """Collects strings that must never reach a log line (secrets, issued signatures)."""

    def __init__(self) -> None:
        self.values: set[str] = {SECRET_KEY, JWT_SECRET, CALLBACK_SIGN_KEY, GATEWAY_SECRET, CONTEXT_KEY}

    def add(self, value: str) -> str:
        self.values.add(value)
        return value

    def leaks_in(self, text: str) -> list[str]:
        return sorted(v[:12] + "…" for v in self.values if v and v in text)


@pytest.fixture(autouse=True)
def _isolated_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's real settings, and none leaks settings into the next."""
    for name in list(os.environ):
        if name.startswith(("TENCENTCLOUD_", "VOD_", "AUTH_", "CORS_", "DATABASE_", "HTTP_MAX_", "AFTER_COMMIT")):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test talks to loopback only; requests (under both Tencent SDKs) would send it through a
    proxy named in the environment."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", LOOPBACK_HOSTS)
    monkeypatch.setenv("no_proxy", LOOPBACK_HOSTS)


@pytest.fixture
def start_vod_stack(
    tmp_path: Path, leak_guard: LeakGuard, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., VodStack]]:
    """Factory: `start_vod_stack(pull=…, clock=…, …)` → a running VodStack (the testing kit's local stack),
    stopped after the test, every signature and temporary key it handled checked by the leak guard."""
    started: list[VodStack] = []

    def start(**options: Any) -> VodStack:
        started.append(start_stack_with(monkeypatch, tmp_path / f"vod-stack-{len(started)}", **options))
        return started[-1]

    yield start
    for stack in started:
        leak_guard.values.update(stack.secrets)
        stack.stop()


@pytest.fixture
def vod_function(vod_function: Callable[..., Any]) -> Callable[..., Any]:
    """The testing kit's fixture, with the function logging at every level (for the leak guard) unless the
    test sets LOG_LEVEL itself."""

    def load(name: str, env: dict[str, str] | None = None) -> Any:
        return vod_function(name, {"LOG_LEVEL": "DEBUG", **(env or {})})

    return load


@pytest.fixture
def vod_stack(start_vod_stack: Callable[..., VodStack]) -> VodStack:
    """The testing kit's fixture, with its secrets under the leak guard."""
    return start_vod_stack()


class Output:
    """What a test's in-process code wrote to stdout: the functions' JSON log lines. Read as it comes;
    everything read is kept, for the leak guard."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self.seen = ""

    def text(self) -> str:
        """What was written since the last read."""
        new = self._capsys.readouterr().out
        self.seen += new
        return new

    def skip(self) -> None:
        """Pass over what was written so far (still leak-checked)."""
        self.text()

    def lines(self) -> list[dict[str, Any]]:
        """The log lines written since the last read, parsed."""
        return self.parse(self.text())

    @staticmethod
    def parse(text: str) -> list[dict[str, Any]]:
        """Every line must be one JSON object: a traceback or other stray text fails the test."""
        return [json.loads(line) for line in text.splitlines() if line]


@pytest.fixture
def output(capsys: pytest.CaptureFixture[str]) -> Output:
    return Output(capsys)


@pytest.fixture(autouse=True)
def leak_guard(
    caplog: pytest.LogCaptureFixture, output: Output, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LeakGuard]:
    """Every log line written during a test (all levels: the functions' on stdout, the tools' through
    `logging`) is checked for registered secrets."""
    caplog.set_level(logging.DEBUG)
    logs.set_level("DEBUG")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")  # functions loaded during the test set it again at their import
    guard = LeakGuard()
    try:
        yield guard
    finally:
        logs.set_level("INFO")  # the module's default
    output.text()
    leaks = guard.leaks_in(caplog.text + output.seen)
    assert not leaks, f"secret or signature leaked into logs/output: {leaks}"


Answer = Callable[[BaseHTTPRequestHandler], None]
Serve = Callable[[Answer], str]  # the loopback_http fixture


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a reset, once a function gave up an answer): what these servers exist to provoke.
        (socketserver would print its traceback, late, into a later test's closed output.)"""


@pytest.fixture
def loopback_http() -> Iterator[Serve]:
    """A scripted HTTP server on loopback per call: `serve(answer)` -> its base URL; `answer(handler)` answers
    every GET and POST (for what the real servers never answer). All stopped after the test."""
    servers: list[ThreadingHTTPServer] = []

    def serve(answer: Answer) -> str:
        class Scripted(BaseHTTPRequestHandler):
            do_GET = do_POST = answer

            def log_message(self, *args: object) -> None:
                pass

        servers.append(_Quiet(("127.0.0.1", 0), Scripted))
        threading.Thread(target=servers[-1].serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{servers[-1].server_port}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


AnswerOf = Callable[[str, dict[str, Any]], bytes]  # a call's action and parameters -> the body answered


@pytest.fixture
def answering_vod(loopback_http: Serve) -> Callable[[AnswerOf], str]:
    """VOD's cloud API on loopback, answering each call with the body a function makes of it (the signature is not
    checked: what is tested is the answer's use)."""

    def serve(answer: AnswerOf) -> str:
        def respond(handler: BaseHTTPRequestHandler) -> None:
            params = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
            body = answer(handler.headers["X-TC-Action"], params)
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

        return loopback_http(respond)

    return serve


@pytest.fixture
def scripted_vod(answering_vod: Callable[[AnswerOf], str]) -> Callable[[dict[str, Any]], str]:
    """VOD's cloud API answering every call with one scripted Response: for what the emulator, whose tasks
    finish as they start, never answers."""

    def serve(response: dict[str, Any]) -> str:
        body = json.dumps({"Response": {**response, "RequestId": "scripted"}}).encode()
        return answering_vod(lambda action, params: body)

    return serve


class TunnelProxy:
    """An HTTP proxy on loopback that takes CONNECT only. It notes each tunnel asked for (its target and headers),
    refuses one without `authorization` (407), and tunnels every target to `upstream`: a client asking for
    vod.tencentcloudapi.com:443 reaches the test's API, and nothing leaves loopback."""

    def __init__(self, upstream: int, authorization: str | None) -> None:
        self.tunnels: list[tuple[str, dict[str, str]]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_CONNECT(self) -> None:
                proxy.tunnels.append((self.path, dict(self.headers.items())))
                if authorization is not None and self.headers.get("Proxy-Authorization") != authorization:
                    self.send_response(407)
                    self.send_header("Proxy-Authenticate", 'Basic realm="test"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with socket.create_connection(("127.0.0.1", upstream)) as api:
                    self.send_response(200, "Connection established")
                    self.end_headers()
                    copying = threading.Thread(target=_copy_until_closed, args=(api, self.connection), daemon=True)
                    copying.start()
                    _copy_until_closed(self.connection, api)
                    copying.join()
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True).start()
        self.address = f"127.0.0.1:{self.http.server_port}"


def _copy_until_closed(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


@pytest.fixture
def tunnel_proxy() -> Iterator[Callable[[int, str | None], TunnelProxy]]:
    proxies: list[TunnelProxy] = []

    def start(upstream: int, authorization: str | None = None) -> TunnelProxy:
        proxies.append(TunnelProxy(upstream, authorization))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.http.shutdown()
        proxy.http.server_close()
