"""Fixtures and helpers for the VOD emulator's upload, cloud API and event tests.

conftest.py re-exports the fixtures, so test modules import only the helpers they call. Proxy
variables are stripped for the whole directory by conftest.py's autouse fixture.

Clock: the SDKs sign with the real time (TC3 X-TC-Timestamp, COS q-sign-time), so the emulator's
injected FrozenClock starts at the real time, then stands still until a test moves it by an exact amount.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from qcloud_cos import CosConfig, CosS3Client
from tencentcloud.common.credential import Credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.vod.v20180717 import vod_client
from werkzeug.wrappers import Request, Response

from shared.signing import build_signature
from tests.clocks import FrozenClock
from tests.emulator.signatures import new_params
from vodemu.app import Emulator, build_emulator
from vodlocal import localstack

SECRET_ID = "AKIDemulatorTests0000000000000000000"
SECRET_KEY = "emulatorTestsSecretKey0000000000"
APP_ID = 1250000000
SUB_APP_ID = 1500000001


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def emulator_factory(tmp_path: Path, clock: FrozenClock) -> Iterator[Callable[..., Emulator]]:
    """Build and start emulators (closed at teardown); keyword arguments override build_emulator's."""
    started: list[Emulator] = []

    def factory(**overrides: Any) -> Emulator:
        options: dict[str, Any] = {
            "secret_id": SECRET_ID,
            "secret_key": SECRET_KEY,
            "app_id": APP_ID,
            "sub_app_id": SUB_APP_ID,
            "clock": clock,
            "long_poll_seconds": 0.2,
            "push_retry_delays": (0.01, 0.01),
        }
        options.update(overrides)
        state_dir = options.pop("state_dir", tmp_path / "vodemu")
        emulator = build_emulator(state_dir, **options)
        emulator.start()
        started.append(emulator)
        return emulator

    yield factory
    for emulator in started:
        emulator.close()


@pytest.fixture
def emulator(emulator_factory: Callable[..., Emulator]) -> Emulator:
    return emulator_factory()


# -- clients ----------------------------------------------------------------------------------------


def vod(emulator: Emulator, secret_id: str = SECRET_ID, secret_key: str = SECRET_KEY) -> vod_client.VodClient:
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=f"127.0.0.1:{emulator.port}"))
    return vod_client.VodClient(Credential(secret_id, secret_key), "ap-guangzhou", profile)


def cloud_request(model: Any, **fields: Any) -> Any:
    """A cloud API request of the emulated sub-application (SubAppId set, as every caller of it must) with
    `fields`."""
    request = model()
    for name, value in {"SubAppId": SUB_APP_ID, **fields}.items():
        setattr(request, name, value)
    return request


def cos(emulator: Emulator, region: str, secret_id: str, secret_key: str, token: str) -> CosS3Client:
    config = CosConfig(
        Region=region,
        SecretId=secret_id,
        SecretKey=secret_key,
        Token=token,
        Scheme="http",
        IP="127.0.0.1",
        Port=emulator.port,
    )
    return CosS3Client(config, retry=0)


def cos_for_apply(emulator: Emulator, data: dict[str, Any]) -> CosS3Client:
    """A COS client from an ApplyUploadUGC answer, as the client SDKs build it."""
    cert = data["tempCertificate"]
    return cos(emulator, data["storageRegionV5"], cert["secretId"], cert["secretKey"], cert["token"])


def bucket_of(data: dict[str, Any]) -> str:
    return f"{data['storageBucket']}-{data['storageAppId']}"


def key_of(storage_path: str) -> str:
    return storage_path.lstrip("/")


# -- client upload API ------------------------------------------------------------------------------


def signature(clock: Callable[[], float], validity: int = 600, **options: Any) -> str:
    """An upload signature from shared.signing, for the emulated app unless vod_sub_app_id is given."""
    options.setdefault("vod_sub_app_id", SUB_APP_ID)
    return build_signature(new_params(SECRET_ID, validity, now=clock, **options), SECRET_KEY)


def raw_signature(pairs: list[tuple[str, str]], secret_key: str = SECRET_KEY) -> str:
    """A signature over an arbitrary `original`, for parameters shared.signing refuses to build."""
    original = urlencode(pairs).encode()
    mac = hmac.new(secret_key.encode(), original, hashlib.sha1).digest()
    return base64.b64encode(mac + original).decode()


def ugc(emulator: Emulator, action: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{emulator.url}/v3/index.php?Action={action}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    answer: dict[str, Any] = response.json()
    return answer


def apply_video(
    emulator: Emulator, clock: Callable[[], float], size: int, *, video_type: str = "mp4", **options: Any
) -> dict[str, Any]:
    body = {"signature": signature(clock, **options), "videoName": "clip", "videoType": video_type, "videoSize": size}
    answer = ugc(emulator, "ApplyUploadUGC", body)
    assert answer["code"] == 0, answer
    data: dict[str, Any] = answer["data"]
    return data


def client_upload(
    emulator: Emulator, clock: Callable[[], float], content: bytes = b"video bytes", **options: Any
) -> dict[str, Any]:
    """Apply, PUT the bytes with the real COS SDK, commit: the commit answer's data."""
    data = apply_video(emulator, clock, len(content), **options)
    cos_for_apply(emulator, data).put_object(
        Bucket=bucket_of(data), Key=key_of(data["video"]["storagePath"]), Body=content
    )
    answer = ugc(emulator, "CommitUploadUGC", {"signature": signature(clock), "vodSessionKey": data["vodSessionKey"]})
    assert answer["code"] == 0, answer
    committed: dict[str, Any] = answer["data"]
    return committed


# -- a loopback receiver for PUSH callbacks ---------------------------------------------------------


@dataclass
class Receiver:
    """Records requests (POSTed JSON); answers with the queued statuses, then 200.

    A 3xx answer carries `Location: redirect_to`. Every request is recorded, whatever its method.
    """

    statuses: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    redirect_to: str = ""
    url: str = ""
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        with self._arrived:
            self.methods.append(request.method)
            self.received.append(request.get_json(force=True, silent=True) or {})
            status = self.statuses.pop(0) if self.statuses else 200
            self._arrived.notify_all()
        headers = {"Location": self.redirect_to} if 300 <= status < 400 else {}
        return Response("ok" if status == 200 else "no", status=status, headers=headers)(environ, start_response)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout)
            return list(self.received)


@pytest.fixture
def start_receiver() -> Iterator[Callable[[], Receiver]]:
    """Factory: start loopback receivers (stopped at teardown)."""
    servers: list[localstack.RunningServer] = []

    def start() -> Receiver:
        target = Receiver()
        servers.append(localstack.serve_wsgi("receiver", target))
        target.url = f"{servers[-1].url}/vod-events"
        return target

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def receiver(start_receiver: Callable[[], Receiver]) -> Receiver:
    return start_receiver()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Bounded polling for background work (the PUSH worker, a parked long poll)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
