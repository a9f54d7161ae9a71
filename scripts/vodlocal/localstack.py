"""The local stack's moving parts: dev settings under one state directory, dev tokens, servers.

Everything runs on 127.0.0.1. Dev keys are generated once per state directory and kept there,
so tokens and stored data survive restarts; nothing real is ever needed or written to the repo.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
import jwt
from werkzeug.serving import BaseWSGIServer, load_ssl_context, make_server

from shared.config import hide_database_password
from vodlocal import pull_timer, tls

DEFAULT_STATE_DIR = Path(".local")  # relative to the current directory: the checkout, under make serve
DEV_USER = "dev-user"


def _alnum(n: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _generated(state_dir: Path) -> dict[str, str]:
    return {
        "TENCENTCLOUD_SECRET_ID": "AKIDLOCAL" + _alnum(27),
        "TENCENTCLOUD_SECRET_KEY": _alnum(32),
        "VOD_SUB_APP_ID": "1500000001",
        "AUTH_MODE": "jwt",
        "AUTH_JWT_SECRET": secrets.token_urlsafe(48),
        "VOD_CALLBACK_SIGN_KEY": _alnum(32),
        "VOD_CONTEXT_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": f"sqlite:///{state_dir / 'vod.sqlite3'}",
        "CORS_ALLOW_ORIGINS": "http://localhost:3000,http://127.0.0.1:3000",
    }


FROM_SHELL = "from-shell.json"  # in the state directory: the dev settings the running stack took from its shell


def _make_state_dir(state_dir: Path) -> None:
    """The state directory, ignored by git: it holds dev keys and a TLS private key, wherever it is made (vod-serve
    run in an app's repository makes .local/ there)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ignore = state_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# made by vod-serve: dev keys, a TLS key and local state, never to be committed\n*\n")


def dev_settings(state_dir: Path) -> dict[str, str]:
    """Settings for local runs: generated once, kept in state_dir/dev-settings.json (0600); a setting added
    by a newer version is generated into an existing file."""
    _make_state_dir(state_dir)
    path = state_dir / "dev-settings.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if not isinstance(stored, dict) or not all(isinstance(v, str) for v in stored.values()):  # edited by hand
        raise ValueError(f'{path} is not the local stack\'s settings (an object of strings: "1", not 1)')
    settings = {**_generated(state_dir), **stored}
    # The generated database is the one where the state is, however the state directory was named (from another
    # directory, say); one set in the file by hand is kept.
    if settings["DATABASE_URL"].startswith("sqlite:///") and settings["DATABASE_URL"].endswith("/vod.sqlite3"):
        settings["DATABASE_URL"] = f"sqlite:///{state_dir / 'vod.sqlite3'}"
    if settings != stored:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(settings, handle, indent=2)
    return settings


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
LOOPBACK_HOSTS = "127.0.0.1,localhost"


def loopback_only(environ: MutableMapping[str, str]) -> None:
    """No proxy variables, NO_PROXY naming the loopback hosts: requests (under both Tencent SDKs) would
    otherwise send the stack's traffic, tokens, signatures and temporary keys included, through a proxy."""
    for name in PROXY_VARIABLES:
        environ.pop(name, None)
    environ["NO_PROXY"] = environ["no_proxy"] = LOOPBACK_HOSTS


# The one dev setting that stays the caller's when a stack uses its own (its keys, auth and database: what its
# tokens, signatures and store rely on): the browser origins allowed to call it.
CALLERS_SETTINGS = frozenset({"CORS_ALLOW_ORIGINS"})

# Keys and auth the stack does not set, dropped with `override` (an AUTH_JWT_AUDIENCE would refuse its tokens).
# VOD_CALLBACK_INSECURE: its events are signed with its own SignKey, which that setting would contradict. The page's
# API URLs: an app's (production's, say) would have the stack's page send its tokens there.
_SHELL_ONLY = frozenset(
    {
        "VOD_CONTEXT_KEY_PREVIOUS",
        "VOD_CALLBACK_SIGN_KEY_PREVIOUS",
        "VOD_SECRET_ID",
        "VOD_SECRET_KEY",
        "TENCENTCLOUD_SESSIONTOKEN",
        "VOD_CALLBACK_INSECURE",
        "UPLOAD_PAGE_SIGNATURE_URL",
        "UPLOAD_PAGE_STATUS_URL",
    }
)
# How tokens are checked: the user's choice of these replaces the dev pair whole (a user's public key, or an
# identity provider's key set, beside the dev secret is two keys, which the functions refuse).
_TOKEN_CHECK = ("AUTH_MODE", "AUTH_JWT_SECRET", "AUTH_JWT_PUBLIC_KEY", "AUTH_JWT_JWKS_URL")


def apply_settings(
    settings: Mapping[str, str], environ: dict[str, str] | None = None, *, override: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Put dev settings into the environment (variables the user already set win, but for those named in
    `override`, and then other auth and key settings are dropped), and keep its loopback traffic off any proxy.
    A blank variable is unset, as the functions read it (a deploy shell exports blanks for defaults)."""
    env = os.environ if environ is None else environ
    if override:  # settings of the same kind the stack leaves unset would still change how it answers
        for key in [k for k in env if k not in settings and (k.startswith("AUTH_") or k in _SHELL_ONLY)]:
            del env[key]
    users = {k for k, v in env.items() if v.strip()} - override
    for key, value in settings.items():
        if key in users or (key in _TOKEN_CHECK and users.intersection(_TOKEN_CHECK)):
            continue
        env[key] = value
    loopback_only(env)
    return dict(env)


def shown_url(url: str) -> str:
    """A database URL fit to print: its password, if any, masked (user:pass@, ?password=, ?sslpassword=)."""
    return hide_database_password(url, url)


def mint_token(
    secret: str, user: str = DEV_USER, ttl_seconds: int = 24 * 3600, *, algorithm: str = "HS256", **claims: Any
) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + ttl_seconds, **claims}, secret, algorithm=algorithm)


def token_for(env: Mapping[str, str], user: str = DEV_USER) -> str | None:
    """A token the functions configured by `env` accept for `user` (its audience, issuer, user claim, an HS algorithm it
    allows), or None when only the shell's own identity provider can make one (public keys, a gateway)."""
    from shared.config import load_sign_settings

    auth = load_sign_settings(env).auth
    algorithm = next((a for a in auth.jwt_algorithms if a.startswith("HS")), None)
    if auth.mode != "jwt" or auth.jwt_key is None or algorithm is None:
        return None
    claims: dict[str, Any] = {n: v[0] for n, v in (("aud", auth.jwt_audiences), ("iss", auth.jwt_issuers)) if v}
    claims[auth.jwt_user_claim] = user  # (sub stays the user too)
    return mint_token(auth.jwt_key.reveal(), user, algorithm=algorithm, **claims)


@dataclass
class RunningServer:
    name: str
    server: BaseWSGIServer
    thread: threading.Thread
    in_flight: InFlight  # its app, counting the requests it answers

    @property
    def url(self) -> str:
        scheme = "https" if self.server.ssl_context is not None else "http"
        host = str(self.server.server_address[0])
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{self.server.server_port}"

    def stop(self, wait_seconds: float = 0) -> None:
        """Stop serving; with `wait_seconds`, once the requests it is answering are answered (a slow after-commit
        hook, say: else it would go on into whatever runs next, a later test), that long at most: then a warning
        says so."""
        self.server.shutdown()
        try:
            if wait_seconds and not self.in_flight.wait_until_idle(wait_seconds):
                warnings.warn(  # an error under -W error: what follows is done all the same
                    f"{self.name}: stopped while {self.in_flight.count} request(s) still ran after {wait_seconds} s",
                    RuntimeWarning,
                    stacklevel=2,
                )
        finally:
            self.server.server_close()
            self.thread.join(timeout=10)


class InFlight:
    """A WSGI app counting the requests it is answering (its response sent, or given up)."""

    def __init__(self, app: Any) -> None:
        self.app, self.count, self._changed = app, 0, threading.Condition()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        with self._changed:
            self.count += 1
        try:
            answer = self.app(environ, start_response)
            try:
                yield from answer
            finally:
                if hasattr(answer, "close"):  # as PEP 3333 asks of whoever iterates an app's answer
                    answer.close()
        finally:
            with self._changed:
                self.count -= 1
                self._changed.notify_all()

    def wait_until_idle(self, seconds: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.count == 0, timeout=seconds)


def serve_wsgi(
    name: str, app: Any, port: int = 0, ssl_context: tuple[str, str] | None = None, *, host: str = "127.0.0.1"
) -> RunningServer:
    """Serve a WSGI app on host (a loopback address) in a daemon thread (port 0 picks a free port); over TLS with
    ssl_context=(cert file, key file)."""
    in_flight = InFlight(app)
    server = make_server(host, port, in_flight, threaded=True)
    if ssl_context is not None:
        # As werkzeug wraps it, but the handshake in each request's thread, not in accept() on the serving one: a
        # client that connects and says nothing (a port probe) would hold every other one, and shutdown, meanwhile.
        tls_context = load_ssl_context(*ssl_context)
        server.socket = tls_context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        server.ssl_context = tls_context
    # A short poll interval: stopping takes milliseconds instead of half a second.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=f"serve-{name}", daemon=True)
    thread.start()
    return RunningServer(name, server, thread, in_flight)


def start_gateway(port: int = 0) -> RunningServer:
    """The functions (harness.ROUTES) behind functions-framework, configured from os.environ."""
    from vodlocal import harness

    return serve_wsgi("gateway", harness.create_app(), port)


def start_emulator(state_dir: Path, env: Mapping[str, str], port: int = 0, **options: Any) -> Any:
    """The local VOD emulator with the account keys the sign function uses; returns the started Emulator, its
    event delivery not yet started (`start_delivery`)."""
    from vodemu.app import build_emulator

    sub_app = env.get("VOD_SUB_APP_ID")
    emulator = build_emulator(
        state_dir,
        secret_id=env["TENCENTCLOUD_SECRET_ID"],
        secret_key=env["TENCENTCLOUD_SECRET_KEY"],
        sub_app_id=int(sub_app) or None if sub_app else None,  # 0: the primary application, as the functions read it
        **options,
    )
    # Delivery waits for the launcher's configure_events: events pending from a last run would go to its URL.
    emulator.start("127.0.0.1", port, deliver=False)
    return emulator


class StateDirInUse(Exception):
    """Another stack runs on this state directory: a second would take over its emulator's event delivery."""


def check_state_dir(state_dir: Path) -> None:
    """StateDirInUse when another stack runs on `state_dir` (the ports it holds would be busy too: said first)."""
    _claim(state_dir).release()


def _claim(state_dir: Path) -> filelock.BaseFileLock:
    _make_state_dir(state_dir)
    lock = filelock.FileLock(state_dir / "stack.lock", thread_local=False)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise StateDirInUse(
            f"another local stack is running on {state_dir} (its events would come here): stop it, or give this "
            "one its own state directory (vod-serve --state-dir .local/second)"
        ) from None
    return lock


@dataclass
class LocalStack:
    gateway: RunningServer
    emulator: Any  # vodemu.app.Emulator
    tls: RunningServer  # the emulator again, over TLS, for browsers (vodlocal.tls)
    claim: filelock.BaseFileLock  # its state directory's, while it runs
    pull_timer: subprocess.Popen[bytes] | None = None  # events_pull's, once started

    def start_pull_timer(self) -> None:
        self.pull_timer = pull_timer.start()

    @property
    def page_url(self) -> str:
        return f"{self.gateway.url}/upload/"

    def chromium_flags(self) -> list[str]:
        return tls.chromium_flags(self.tls.server.server_port, self.emulator.port)

    def stop(self) -> None:
        if self.pull_timer:  # first: a run going on would pull from a stopped emulator
            pull_timer.stop(self.pull_timer)
        self.tls.stop()
        self.emulator.close()  # its state too: another emulator may then keep it (a stack started again)
        try:
            self.gateway.stop(wait_seconds=30)  # the functions' answers: a hook still running ends before the stack
        finally:
            from vodlocal import harness

            harness.close_stores(self.gateway.in_flight.app.extensions["vod_functions"].values())
            self.claim.release()


def start_stack(
    state_dir: Path,
    gateway_port: int = 0,
    emulator_port: int = 0,
    *,
    tls_port: int = 0,
    pull: bool = False,
    own_settings: bool = False,
    **emulator_options: Any,
) -> LocalStack:
    """Gateway + emulator on loopback, sharing dev settings under state_dir. The emulator delivers
    events to the gateway's /vod-events (PUSH, signed with the callback's SignKey), or queues them
    for PullEvents (pull=True). Sets VOD_API_ENDPOINT so SDK clients find the emulator. `own_settings`:
    its keys and database replace any the shell has (a stack that must not touch the user's). StateDirInUse
    while another stack runs on `state_dir`."""
    claim = _claim(state_dir)
    try:
        settings = dev_settings(state_dir)
        env = apply_settings(settings, override=frozenset(settings) - CALLERS_SETTINGS if own_settings else frozenset())
        # Which dev settings this run took from its shell (names only: a shell's value, a real key perhaps, is
        # never written): `vod-configure-events --dev-keys` signs with those as the stack does.
        from_shell = sorted(name for name, value in settings.items() if env.get(name) != value)
        if env.get("DATABASE_URL") == f"sqlite:///{state_dir / 'vod.sqlite3'}" and "?" in str(state_dir):
            # (sqlite:/// takes no query string: the functions would refuse it as the shell's setting)
            raise ValueError(f"a path holding '?' cannot name the stack's SQLite database: {state_dir}")
        (state_dir / FROM_SHELL).write_text(json.dumps(from_shell))
        from shared.config import (
            load_callback_settings,
            load_pull_settings,
            load_sign_settings,
            load_upload_page_settings,
            load_uploads_settings,
        )
        from shared.hooks import load_hook
        from shared.store import open_store

        # A ConfigError now, naming the setting, rather than a ready stack that answers 500 (or drops every event).
        loads = (
            load_sign_settings,
            load_uploads_settings,
            load_upload_page_settings,
            *((load_pull_settings,) if pull else ()),
        )
        for load in loads:
            load(env)
        load_hook(load_callback_settings(env).after_commit_hook)

        store = open_store(env["DATABASE_URL"])
        store.schema_version()  # created now: the uploads function only reads, and may be asked first
        store.close()
        emulator = start_emulator(state_dir / "vod-emulator", env, emulator_port, **emulator_options)
        # Before the gateway: its functions start with it, and read where VOD's API is (SDK clients here do too).
        os.environ["VOD_API_ENDPOINT"] = emulator.url
        front = gateway = None
        try:  # leave nothing half-running: a port taken, say
            cert, key = tls.self_signed(state_dir / "tls")
            front = serve_wsgi("emulator-tls", emulator.wsgi_app, tls_port, ssl_context=(str(cert), str(key)))
            gateway = start_gateway(gateway_port)
            if pull:
                emulator.configure_events(mode="PULL")
            else:
                emulator.configure_events(
                    mode="PUSH", notification_url=f"{gateway.url}/vod-events", sign_key=env["VOD_CALLBACK_SIGN_KEY"]
                )
            emulator.start_delivery()
        except BaseException:
            for running in (front, gateway):
                if running is not None:
                    running.stop()
            emulator.close()
            raise
        return LocalStack(gateway, emulator, front, claim)
    except BaseException:
        claim.release()
        raise
