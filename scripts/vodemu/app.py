"""The whole emulator: one WSGI app on one port, standing in for COS, VOD's upload API and its cloud API.

Routing (first match):
- `Host` containing `.cos.` (the COS SDK's IP/Port mode)  -> COS object API (cos_api.py)
- `/v3/index.php`                                         -> client upload API (upload_api.py)
- `/vod-media/<bucket>/<key>`                             -> committed media and covers (media.py)
- `POST /` or any request with `X-TC-Action`              -> VOD cloud API (cloud_api.py)
- anything else                                           -> 404 JSON

State (SQLite + objects) lives under one directory, so a restart keeps sessions, files and events.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from vodemu.cloud_api import make_cloud_app
from vodemu.cos_api import make_cos_app
from vodemu.credentials import CredentialRegistry
from vodemu.delivery import EventSignal, PostJson, PushSettings, PushWorker, post_json, updated_event_config
from vodemu.media import PREFIX as MEDIA_PREFIX
from vodemu.media import make_media_app, media_path
from vodemu.objects import ObjectStore
from vodemu.settings import EmulatorSettings
from vodemu.state import PUSH, EmulatorState, EventConfig
from vodemu.upload_api import PATH as UPLOAD_PATH
from vodemu.upload_api import make_upload_app
from vodemu.uploads import UploadService
from vodemu.wsgi import StartResponse, WSGIApplication, WSGIEnvironment, json_response

log = logging.getLogger("vodemu")

OBJECTS_DIR = "cos"
_NOT_FOUND = {
    "code": 404,
    "message": "not an emulated endpoint",
    "routes": {
        "COS object API": "any request with Host <bucket>.cos.<region>.myqcloud.com",
        "client upload API": "POST /v3/index.php?Action=PrepareUploadUGC|ApplyUploadUGC|CommitUploadUGC",
        "cloud API": "POST / with X-TC-Action (TC3-HMAC-SHA256, version 2018-07-17)",
        "media": "GET /vod-media/<bucket>/<key>",
    },
}
_CRASH_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>internal error</Message><Resource>/</Resource><RequestId>-</RequestId></Error>"
)


class Emulator:
    """Holds the parts; `wsgi_app` serves them all. Use start()/stop() (or `with`) to serve on loopback."""

    def __init__(
        self,
        settings: EmulatorSettings,
        state_dir: Path,
        *,
        clock: Callable[[], float],
        public_url: str | None,
        push_post: PostJson,
        cos_options: dict[str, Any],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.public_url = public_url.rstrip("/") if public_url else None
        self.state = EmulatorState(state_dir)
        # Committed files are immutable: the store refuses to replace an object the state lists as published.
        self.store = ObjectStore(state_dir / OBJECTS_DIR, clock=clock, sealed=self.state.is_published)
        self.credentials = CredentialRegistry(clock)
        self.signal = EventSignal()
        self.stopping = threading.Event()
        self.push_worker = PushWorker(
            self.state,
            self.signal,
            clock,
            PushSettings(settings.push_retry_delays, settings.push_timeout_seconds, settings.push_sign_ttl_seconds),
            post=push_post,
        )
        self.service = UploadService(
            settings, self.state, self.store, self.credentials, self.signal, clock, self.url_for
        )
        self._cos = make_cos_app(self.store, self.credentials, clock=clock, **cos_options)
        self._upload = make_upload_app(settings, self.state, self.service, clock)
        self._cloud = make_cloud_app(settings, self.state, self.service, self.signal, clock, self.stopping)
        self._media = make_media_app(self.store, self.state)
        self._server: BaseWSGIServer | None = None
        self._host = "127.0.0.1"  # as URLs name the address it serves on
        self._thread: threading.Thread | None = None

    # -- URLs ------------------------------------------------------------------------------------

    def url_for(self, bucket: str, key: str) -> str:
        """Where a committed object is served (MediaUrl/CoverUrl); needs public_url (set by start())."""
        base = self.public_url or "http://127.0.0.1"
        return base + media_path(bucket, key)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not serving; call start()")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # -- events ----------------------------------------------------------------------------------

    def configure_events(
        self,
        *,
        mode: str = PUSH,
        notification_url: str = "",
        sign_key: str = "",
        upload_switch: str = "ON",
        delete_switch: str = "ON",
    ) -> None:
        """What ModifyEventConfig does (with the same checks), for launchers and tests that want events
        from the start; raises delivery.EventConfigError (a ValueError) for a value it would refuse."""
        config = updated_event_config(
            self.state.get_event_config(),
            mode=mode,
            notification_url=notification_url,
            sign_key=sign_key,
            upload_switch=upload_switch,
            delete_switch=delete_switch,
        )
        self.state.put_event_config(config)
        self.signal.notify()

    def event_config(self) -> EventConfig:
        return self.state.get_event_config()

    # -- WSGI ------------------------------------------------------------------------------------

    def _route(self, environ: WSGIEnvironment) -> WSGIApplication | None:
        path = environ.get("PATH_INFO", "")
        if ".cos." in environ.get("HTTP_HOST", ""):
            return self._cos
        if path == UPLOAD_PATH:
            return self._upload
        if path.startswith(MEDIA_PREFIX):
            return self._media
        if path == "/" and (environ.get("REQUEST_METHOD") == "POST" or "HTTP_X_TC_ACTION" in environ):
            return self._cloud
        return None

    def wsgi_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        app = self._route(environ)
        try:
            if app is None:
                return json_response(_NOT_FOUND, 404)(environ, start_response)
            return app(environ, start_response)
        except Exception:  # the last line of defence: log the traceback, answer without it
            log.exception("unexpected error on %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            is_cos = app is self._cos
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "application/xml" if is_cos else "application/json")],
                sys.exc_info(),
            )
            return [_CRASH_XML if is_cos else b'{"code": 500, "message": "internal error"}']

    # -- serving ---------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0, *, deliver: bool = True) -> int:
        """Serve on host:port in a background thread (port 0 = any free port); returns the port. `deliver`:
        start pushing events now (False: once `start_delivery` is called, after `configure_events` say)."""
        if self._server is not None:
            raise RuntimeError("already serving")
        self.stopping.clear()
        self._server = make_server(host, port, self.wsgi_app, threaded=True)
        # An IPv6 address in brackets; every address (0.0.0.0, ::) includes the loopback one
        self._host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
        if self.public_url is None:
            self.public_url = self.url
        server = self._server
        # A short poll interval makes stop() prompt (shutdown waits for the loop to notice).
        self._thread = threading.Thread(target=lambda: server.serve_forever(0.05), name="vodemu-http", daemon=True)
        self._thread.start()
        if deliver:
            self.start_delivery()
        return self.port

    def start_delivery(self) -> None:
        self.push_worker.start()

    def stop(self) -> None:
        """Stop serving and delivering; long polls in progress return at once. State stays open."""
        self.stopping.set()
        self.signal.notify()
        self.push_worker.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.state.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_emulator(
    state_dir: Path,
    *,
    secret_id: str,
    secret_key: str,
    app_id: int = 1250000000,
    sub_app_id: int | None = None,
    public_url: str | None = None,
    clock: Callable[[], float] = time.time,
    push_post: PostJson = post_json,
    cos_options: dict[str, Any] | None = None,
    **settings: Any,  # any other EmulatorSettings field (TTLs, waits, retry delays, regions...)
) -> Emulator:
    """An emulator keeping its state under `state_dir`; call .start() to serve it.

    public_url: the base of MediaUrl/CoverUrl; None = the address start() binds.
    clock: every timestamp the emulator checks or writes (signatures, TC3, sessions, credentials,
    the 30 s confirm window, `T` of PUSH callbacks). Waits (long poll, PUSH backoff) are real time.
    cos_options: keyword arguments for make_cos_app (e.g. max_object_size).
    """
    config = EmulatorSettings(
        secret_id=secret_id, secret_key=secret_key, app_id=app_id, sub_app_id=sub_app_id, **settings
    )
    return Emulator(
        config, Path(state_dir), clock=clock, public_url=public_url, push_post=push_post, cos_options=cos_options or {}
    )
