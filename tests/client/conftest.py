"""The client uploader's test stack, all on loopback: the real VOD emulator (behind a recording,
part-holding middleware) and the real signature function served over HTTP by the local harness.

Clocks: the signature function and the COS SDK sign with the real time, so the emulator's clock (and,
where a test wants it, the uploader's) is the real time plus an offset that tests move by exact amounts.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from werkzeug.wrappers import Response

from tests.clocks import OffsetClock
from tests.conftest import JWT_SECRET, SECRET_ID, SECRET_KEY, SIGN_ENV, LeakGuard, closed_loopback_port, command
from vodemu.app import Emulator, build_emulator
from vodlocal import harness, localstack
from vodupload import CheckpointStore, SignatureClient, Uploader, UploadOptions

CLI = command("vod-upload")
SUB_APP_ID = 1500000001
MIB = 1024 * 1024
PART = MIB  # COS's minimum part size keeps the test files small


def closed_port_url() -> str:
    """A signature URL nothing listens on."""
    return f"http://127.0.0.1:{closed_loopback_port()}/signature"


def content(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def write_file(path: Path, size: int, seed: int = 1) -> Path:
    path.write_bytes(content(size, seed))
    return path


@dataclass
class VodCall:
    action: str
    request: dict[str, Any]
    answer: dict[str, Any]


@dataclass(frozen=True)
class CosRequest:
    """A request to COS as it arrived: the operation and the temporary secret id that signed it."""

    method: str
    query: dict[str, str]
    secret_id: str  # q-ak of the Authorization header
    status: int

    @property
    def part(self) -> tuple[str, int] | None:
        """(uploadId, partNumber) of an UploadPart request."""
        if self.method != "PUT" or "partNumber" not in self.query or "uploadId" not in self.query:
            return None
        return self.query["uploadId"], int(self.query["partNumber"])

    @property
    def is_abort(self) -> bool:
        return self.method == "DELETE" and "uploadId" in self.query


def _cos_request(environ: dict[str, Any], status: int) -> CosRequest:
    query = {
        name: values[0] for name, values in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()
    }
    fields = parse_qs(environ.get("HTTP_AUTHORIZATION", ""))
    return CosRequest(environ["REQUEST_METHOD"], query, fields.get("q-ak", [""])[0], status)


def _is_part_upload(environ: dict[str, Any]) -> bool:
    return _cos_request(environ, 0).part is not None


_UNAVAILABLE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
    b"<Message>held by the test</Message><Resource>/</Resource><RequestId>-</RequestId></Error>"
)


class _FirstByteChanged(io.RawIOBase):
    """A request body whose first byte is changed on its way to COS: what the fault on a network path leaves."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._changed = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        count: int = self._stream.readinto(view)
        if count and not self._changed:
            view[0] ^= 0xFF
            self._changed = True
        return count


# What a checkpoint holds: only what COS cannot tell (no parts, no bucket or object keys: they come with the session)
CHECKPOINT_FIELDS = {"version", "name", "session_key", "created_at", "objects", "committing", "commit_refused", "asked"}


class Traffic:
    """WSGI middleware in front of the emulator.

    Records every upload-API call (and registers its signature and the temporary credentials it hands
    out with the leak guard) and every COS request, counts part uploads COS stored, and can hold part
    uploads after the next N: a held request waits, body unread, until `release()` answers it 503 or
    lets it through. `vod_down` makes the upload API answer 502, as an unreachable VOD would.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], guard: LeakGuard) -> None:
        self._app = app
        self._guard = guard
        self._cond = threading.Condition()
        self.calls: list[VodCall] = []
        self.cos_requests: list[CosRequest] = []
        self.vod_down = False
        self.bad_gateways = 0  # upload-API calls answered 502 while vod_down
        self.before_call: Callable[[str], None] = lambda action: None  # runs before each upload-API call
        self.parts_stored = 0
        self.aborts_to_fail = 0  # the next AbortMultipartUpload requests COS answers 503
        self.completes_unanswered = 0  # the next CompleteMultipartUploads COS does, but their answer is a 503
        # the next CompleteMultipartUploads COS fails after it began answering: "200 OK" with an error (these codes)
        self.completes_failed_in_200: list[str] = []
        self.commits_unanswered = 0  # the next CommitUploadUGCs VOD does, but their answer is a 502
        self.heads_forbidden = False  # HEAD answered 403, as by credentials that may only write
        self.bodies_to_change = 0  # the next PUTs (a part, or an object sent whole) reach COS with a byte changed
        self.bodies_changed = 0
        self.puts_refused_as: list[str] = []  # the next PUTs COS answers 400 with these codes, storing nothing
        self.crc64_hidden = False  # COS answers without the CRC64 of what it stored (x-cos-hash-crc64ecma)
        self.held = 0
        self._passes: int | None = None
        self._release: bool | None = None  # None: holding; True: let through; False: answer 503

    # -- test controls ---------------------------------------------------------------------------

    def hold_parts_after(self, count: int) -> None:
        with self._cond:
            self._passes, self._release = count, None

    def release(self, *, let_through: bool) -> None:
        """The held parts go through, or are refused (503); so are, until pass_all(), any that come later: a
        killed client's part already on its way, say, which must not be stored after the test saw it die."""
        with self._cond:
            self._passes, self._release = (None if let_through else 0), let_through
            self._cond.notify_all()

    def pass_all(self) -> None:
        with self._cond:
            self._passes, self._release = None, None

    def wait_until(self, predicate: Callable[[Traffic], bool], timeout: float = 60) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: predicate(self), timeout), "timed out waiting for upload traffic"

    @property
    def cos_statuses(self) -> list[int]:
        return [request.status for request in self.cos_requests]

    def parts_sent(self) -> list[tuple[str, int]]:
        """(uploadId, partNumber) of every UploadPart request COS answered 200."""
        return [part for request in self.cos_requests if request.status == 200 and (part := request.part)]

    def actions(self) -> list[str]:
        return [
            call.action + (" (resume)" if "vodSessionKey" in call.request and call.action == "ApplyUploadUGC" else "")
            for call in self.calls
        ]

    # -- WSGI ------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/v3/index.php":
            return self._upload_api(environ, start_response)
        if ".cos." not in environ.get("HTTP_HOST", ""):
            return self._app(environ, start_response)
        if self.heads_forbidden and environ["REQUEST_METHOD"] == "HEAD":
            start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", "0")])
            return []
        if self._unanswered_complete(environ):
            answer = self._app(environ, lambda *args: lambda data: None)  # COS completes the object...
            b"".join(answer)
            getattr(answer, "close", lambda: None)()
            start_response("503 Service Unavailable", [("Content-Type", "application/xml"), ("Connection", "close")])
            return [_UNAVAILABLE]  # ... and its answer is lost on the way
        refusal = self._refusal(environ)
        if refusal is not None:
            line, code = refusal
            with self._cond:
                self.cos_requests.append(_cos_request(environ, int(line.split()[0])))
            start_response(line, [("Content-Type", "application/xml"), ("Connection", "close")])
            return [_UNAVAILABLE.replace(b"ServiceUnavailable", code.encode())]
        if environ["REQUEST_METHOD"] == "PUT" and self._counted_down("bodies_to_change"):
            environ["wsgi.input"] = _FirstByteChanged(environ["wsgi.input"])
            with self._cond:  # parts arrive on threads of their own
                self.bodies_changed += 1
        status: list[int] = []

        def recording_start_response(line: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            status.append(int(line.split(maxsplit=1)[0]))
            if self.crc64_hidden:
                headers = [(name, value) for name, value in headers if name.lower() != "x-cos-hash-crc64ecma"]
            return start_response(line, headers, *exc)

        result = self._app(environ, recording_start_response)
        with self._cond:
            self.cos_requests.append(_cos_request(environ, status[0]))
            if _is_part_upload(environ) and status == [200]:
                self.parts_stored += 1
            self._cond.notify_all()
        return result

    def _unanswered_complete(self, environ: dict[str, Any]) -> bool:
        return self._on_upload(environ, "POST") and self._counted_down("completes_unanswered")

    def _failed_abort(self, environ: dict[str, Any]) -> bool:
        return self._on_upload(environ, "DELETE") and self._counted_down("aborts_to_fail")

    @staticmethod
    def _on_upload(environ: dict[str, Any], method: str) -> bool:
        """Whether this is a `method` on a multipart upload."""
        return environ["REQUEST_METHOD"] == method and "uploadId=" in environ.get("QUERY_STRING", "")

    def _refusal(self, environ: dict[str, Any]) -> tuple[str, str] | None:
        """(status line, COS error code) when the test has COS refuse this request, storing nothing."""
        if (_is_part_upload(environ) and self._held()) or self._failed_abort(environ):
            return "503 Service Unavailable", "ServiceUnavailable"
        with self._cond:
            if environ["REQUEST_METHOD"] == "PUT" and self.puts_refused_as:
                return "400 Bad Request", self.puts_refused_as.pop(0)
            if self._on_upload(environ, "POST") and self.completes_failed_in_200:
                return "200 OK", self.completes_failed_in_200.pop(0)
        return None

    def _counted_down(self, counter: str) -> bool:
        """Whether the test still asks `counter` more of these (one fewer from now on)."""
        with self._cond:
            if not getattr(self, counter):
                return False
            setattr(self, counter, getattr(self, counter) - 1)
            return True

    def _held(self) -> bool:
        with self._cond:
            if self._passes is None:
                return False
            if self._passes > 0:
                self._passes -= 1
                return False
            self.held += 1
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._release is not None)
            return not self._release

    def _upload_api(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.vod_down:
            with self._cond:
                self.bad_gateways += 1
                self._cond.notify_all()
            start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
            return [b"bad gateway (held by the test)"]
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action", ["?"])[0]
        self.before_call(action)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        started: list[Any] = []
        answer = b"".join(self._app(environ, lambda *args: started.append(args)))
        request, reply = json.loads(body or b"{}"), json.loads(answer)
        self._guard.add(str(request.get("signature", "")))
        data = reply.get("data") or {}
        cert = data.get("tempCertificate") or {}
        for secret in (cert.get("secretKey"), cert.get("token"), data.get("vodSessionKey")):
            if secret:
                self._guard.add(secret)
        with self._cond:
            self.calls.append(VodCall(action, request, reply))
            self._cond.notify_all()
        if action == "CommitUploadUGC" and self._counted_down("commits_unanswered"):
            start_response("502 Bad Gateway", [("Content-Type", "text/plain")])  # the answer, lost on the way
            return [b"bad gateway (held by the test)"]
        start_response(*started[0])
        return [answer]


@dataclass
class Stack:
    emulator: Emulator
    traffic: Traffic
    url: str  # the emulator (upload API, COS and media), behind Traffic
    signature_url: str
    token: str
    clock: OffsetClock  # the emulator's
    checkpoints: Path
    notices: list[Any] = field(default_factory=list)

    def signer(self, token: str | None = None) -> SignatureClient:
        return SignatureClient(self.signature_url, token or self.token, backoff=0)

    def uploader(
        self,
        clock: Callable[[], float] = time.time,
        signer: Callable[[], str] | None = None,
        checkpoints: CheckpointStore | None = None,
        owner: Callable[[], str] | None = None,
        **options: Any,
    ) -> Uploader:
        settings = {
            "endpoint": self.url,
            "part_size": PART,
            "parallel": 2,
            "retry_backoff": 0.01,
            "api_retry_delay": 0.01,
            **options,
        }
        return Uploader(
            signer or self.signer(),
            UploadOptions(**settings),
            checkpoints=checkpoints or CheckpointStore(self.checkpoints),
            clock=clock,
            owner=owner,
        )

    def saved(self) -> list[Path]:
        return sorted(self.checkpoints.glob("*.json")) if self.checkpoints.exists() else []

    def served(self, url: str) -> bytes:
        response = requests.get(url, timeout=30)
        assert response.status_code == 200, response.text
        return response.content

    def saved_session(self) -> dict[str, Any]:
        """The one saved checkpoint, as JSON."""
        (path,) = self.saved()
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def open_uploads(self) -> list[Any]:
        root = self.emulator.store.root
        buckets = [path.name for path in root.iterdir() if path.is_dir()] if root.exists() else []
        return [upload for bucket in buckets for upload in self.emulator.store.list_uploads(bucket)]

    def open_upload_ids(self) -> set[str]:
        return {upload.upload_id for upload in self.open_uploads()}

    def cli_env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
            "VOD_UPLOAD_GATEWAY": self.signature_url,
            "VOD_UPLOAD_TOKEN": self.token,
            "VOD_UPLOAD_ENDPOINT": self.url,
            "VOD_UPLOAD_CHECKPOINT_DIR": str(self.checkpoints),
        }
        return {**env, **extra}

    def cli_args(self, *args: str | Path) -> list[str]:
        # Small parts, few threads; later arguments (the test's) win.
        return [CLI, "--part-size", "1", "--parallel", "2", *map(str, args)]

    def cli(self, *args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        self.traffic.pass_all()  # a new client: nothing of an interrupted one is still coming
        return subprocess.run(
            self.cli_args(*args), env=env or self.cli_env(), capture_output=True, text=True, timeout=120, check=False
        )


@pytest.fixture
def start_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leak_guard: LeakGuard
) -> Iterator[Callable[..., Stack]]:
    """Factory: `host` is the emulator's address (127.0.0.1, or ::1); other keyword arguments are emulator settings
    (credential_ttl_seconds, session_ttl_seconds...)."""
    # The sign function reads its settings as the gateway starts. One-time signatures are its default;
    # a long validity lets tests move the emulator's clock ahead by minutes.
    for key, value in {**SIGN_ENV, "VOD_SUB_APP_ID": str(SUB_APP_ID), "VOD_SIGNATURE_TTL": "7200"}.items():
        monkeypatch.setenv(key, value)
    servers: list[localstack.RunningServer] = []
    emulators: list[Emulator] = []

    def start(host: str = "127.0.0.1", **settings: Any) -> Stack:
        clock = OffsetClock()
        emulator = build_emulator(
            tmp_path / "vodemu",
            secret_id=SECRET_ID,
            secret_key=SECRET_KEY,
            sub_app_id=SUB_APP_ID,
            clock=clock,
            **settings,
        )
        emulators.append(emulator)
        traffic = Traffic(emulator.wsgi_app, leak_guard)
        server = localstack.serve_wsgi("vodemu", traffic, host=host)
        servers.append(server)
        emulator.public_url = server.url
        gateway = localstack.serve_wsgi("gateway", harness.create_app())  # what localstack.start_gateway() serves
        servers.append(gateway)
        token = leak_guard.add(localstack.mint_token(JWT_SECRET, "uploader@example.com"))
        return Stack(emulator, traffic, server.url, f"{gateway.url}/signature", token, clock, tmp_path / "checkpoints")

    yield start
    for stack_emulator in emulators:
        stack_emulator.close()
    for server in servers:
        server.stop()


@pytest.fixture
def stack(start_stack: Callable[..., Stack]) -> Stack:
    return start_stack()


@dataclass
class BusyGateway:
    url: str
    asked: threading.Event  # set once a request came


@pytest.fixture
def busy_gateway() -> Iterator[BusyGateway]:
    """A signature endpoint that answers every request 503, "ask again in 30 s"."""
    asked = threading.Event()

    def busy(environ: Any, start_response: Any) -> Any:
        asked.set()
        return Response("busy", 503, headers={"Retry-After": "30"})(environ, start_response)

    server = localstack.serve_wsgi("busy-gateway", busy)
    yield BusyGateway(server.url, asked)
    server.stop()
