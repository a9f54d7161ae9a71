"""Helpers for the COS emulator tests: requests signed by the SDK's own signer, and error parsing."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import crcmod
import requests
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_auth import CosS3Auth

from tests.clocks import OffsetClock
from vodemu.credentials import CredentialRegistry, TempCredential
from vodemu.objects import ObjectStore
from vodlocal import localstack

BUCKET = "vodugc-1250000000"
OTHER_BUCKET = "vodugc-1250000001"
REGION = "ap-guangzhou"
MIB = 1024 * 1024


@contextmanager
def serving(app: Any) -> Iterator[int]:
    """Serve a WSGI app on 127.0.0.1 (a free port) in a background thread; yields the port."""
    running = localstack.serve_wsgi("cos-emulator", app)
    try:
        yield running.server.server_port
    finally:
        running.stop()


@dataclass
class CosEmulator:
    port: int
    store: ObjectStore
    credentials: CredentialRegistry
    clock: OffsetClock

    @property
    def host(self) -> str:
        return f"{BUCKET}.cos.{REGION}.myqcloud.com"

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def issue(self, *keys: str, bucket: str = BUCKET, ttl: int = 3600) -> TempCredential:
        return self.credentials.issue(bucket, keys, ttl)

    def config(self, credential: TempCredential, *, secret_key: str | None = None, token: str | None = None) -> Any:
        return CosConfig(
            IP="127.0.0.1",
            Port=self.port,
            Region=REGION,
            SecretId=credential.secret_id,
            SecretKey=credential.secret_key if secret_key is None else secret_key,
            Token=credential.token if token is None else token,
            Scheme="http",
        )

    def client(self, credential: TempCredential, *, secret_key: str | None = None, token: str | None = None) -> Any:
        """The real SDK client, without retries (a 5xx must surface, not be retried)."""
        return CosS3Client(self.config(credential, secret_key=secret_key, token=token), retry=0)


# The COS SDK's own CRC64 (qcloud_cos/resumable_downloader.py, its download check): crcmod, not the
# fastcrc the emulator and the uploader compute it with, so a fault shared by those two cannot pass.
_SDK_CRC64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)
CRC64_HEADER = "x-cos-hash-crc64ecma"


def sdk_crc64(data: bytes) -> int:
    value: int = _SDK_CRC64(data)
    return value


def md5_etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


def multipart_etag_of(data: bytes, part_size: int) -> str:
    """What COS answers for `data` uploaded in `part_size` parts."""
    parts = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def object_url(emulator: CosEmulator, key: str) -> str:
    # Exactly how CosConfig.uri() puts a key into the URL.
    return emulator.url(quote(key.encode("utf-8"), "/-_.~").replace("./", ".%2F"))


def signed_request(
    emulator: CosEmulator,
    credential: TempCredential,
    method: str,
    key: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    data: Any = None,
    secret_key: str | None = None,
) -> requests.PreparedRequest:
    """A request signed by the SDK's `CosS3Auth`, ready to alter before sending."""
    all_headers = {"Host": emulator.host, "x-cos-security-token": credential.token, **(headers or {})}
    url = object_url(emulator, key) if key else emulator.url()
    prepared = requests.Request(method, url, params=dict(params or {}), headers=all_headers, data=data).prepare()
    auth = CosS3Auth(emulator.config(credential, secret_key=secret_key), key or None, params=dict(params or {}))
    signed: requests.PreparedRequest = auth(prepared)
    return signed


def send(prepared: requests.PreparedRequest) -> requests.Response:
    # Session.send (unlike Session.request) does not consult proxy variables.
    with requests.Session() as session:
        return session.send(prepared, timeout=60)


def error_of(response: requests.Response) -> dict[str, str]:
    """The children of COS's <Error> document; asserts its shape on the way."""
    root = ET.fromstring(response.content)
    assert root.tag == "Error"  # no namespace
    fields = {child.tag: child.text or "" for child in root}
    assert list(fields) == ["Code", "Message", "Resource", "RequestId", "TraceId"]
    assert all(fields.values())
    assert response.headers["x-cos-request-id"] == fields["RequestId"]
    return fields
