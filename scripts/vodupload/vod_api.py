"""VOD's client upload API: PrepareUploadUGC, ApplyUploadUGC, CommitUploadUGC, as the client upload
guide (https://cloud.tencent.com/document/product/266/9219) and vod-js-sdk-v6 (src/uploader.ts) use it.

`POST {host}/v3/index.php?Action=<Action>` with a JSON body carrying a fresh signature; the answer is
`{code, message, data}`, HTTP 200 even for refusals. A network error, an HTTP 5xx or an answer that is
not the JSON envelope is retried (3 times, a fresh signature each time) and switches to the backup host,
like vod-js-sdk-v6 does for HTTP 5xx. A refusal (`code != 0`) is definite: it is not retried, since a
retry would only spend another one-time signature on the same answer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import requests

from vodupload.errors import VodApiError, VodUnavailable, shown
from vodupload.halting import wait_to_retry

log = logging.getLogger("vodupload")

DEFAULT_HOSTS = ("https://vod2.qcloud.com", "https://vod2.dnsv1.com")
PATH = "/v3/index.php"


@dataclass(frozen=True)
class MediaInfo:
    """A file as ApplyUploadUGC announces it: name without extension, type = extension, size in bytes."""

    name: str
    type: str
    size: int


@dataclass(frozen=True)
class TempCredentials:
    secret_id: str
    secret_key: str = field(repr=False)
    token: str = field(repr=False)
    expired_time: int  # Unix seconds, VOD's clock


@dataclass(frozen=True)
class Applied:
    """An ApplyUploadUGC answer: where to put the bytes and the credentials to do it with."""

    session_key: str = field(repr=False)
    bucket: str  # full COS bucket name, `{storageBucket}-{storageAppId}`
    region: str  # COS region (storageRegionV5)
    video_key: str | None  # COS object keys, without the leading "/"
    cover_key: str | None
    credentials: TempCredentials
    server_time: int  # `timestamp`: VOD's clock when it answered, for credential lifetimes

    @property
    def credential_lifetime(self) -> int:
        return self.credentials.expired_time - self.server_time


@dataclass(frozen=True)
class Committed:
    file_id: str
    video_url: str | None
    cover_url: str | None


@dataclass(frozen=True)
class Prepared:
    app_id: int
    regions: tuple[str, ...]


def _key(storage: dict[str, Any] | None) -> str | None:
    return str(storage["storagePath"]).lstrip("/") if storage else None


def parse_applied(data: dict[str, Any]) -> Applied:
    cert = data["tempCertificate"]
    return Applied(
        session_key=str(data["vodSessionKey"]),
        bucket=f"{data['storageBucket']}-{data['storageAppId']}",
        region=str(data.get("storageRegionV5") or data.get("StorageRegionV5") or data["storageRegion"]),
        video_key=_key(data.get("video")),
        cover_key=_key(data.get("cover")),
        credentials=TempCredentials(
            str(cert["secretId"]), str(cert["secretKey"]), str(cert["token"]), int(cert["expiredTime"])
        ),
        server_time=int(data.get("timestamp") or 0),
    )


def parse_committed(data: dict[str, Any]) -> Committed:
    def url(role: str) -> str | None:
        published = data.get(role)
        return str(published["url"]) if isinstance(published, dict) and published.get("url") else None

    return Committed(file_id=str(data["fileId"]), video_url=url("video"), cover_url=url("cover"))


class VodClient:
    """Calls the upload API with a fresh signature per call. `endpoint` (e.g. the local emulator's
    `http://127.0.0.1:PORT`) replaces `hosts`, Tencent's main and backup hosts. Thread-safe."""

    def __init__(
        self,
        get_signature: Callable[[], str],
        *,
        endpoint: str | None = None,
        hosts: Sequence[str] = DEFAULT_HOSTS,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        retry_delay: float = 1.0,
        sleep: Callable[[float], None] = wait_to_retry,
    ) -> None:
        self._get_signature = get_signature
        self._hosts = (endpoint,) if endpoint else tuple(hosts)
        self._host = 0  # the one to ask: the other after a failure (threads share it: an Uploader's tasks)
        self._host_lock = threading.Lock()
        self._session = session or requests.Session()
        self._timeout = timeout
        self._retries = retries
        self._retry_delay = retry_delay
        self._sleep = sleep

    def prepare(self) -> Prepared:
        data = self._call("PrepareUploadUGC", {})
        regions = tuple(str(item["region"]) for item in data.get("cosRegionList") or [])
        return Prepared(app_id=int(data.get("appId") or 0), regions=regions)

    def apply_new(
        self, video: MediaInfo, cover: MediaInfo | None = None, *, storage_region: str | None = None
    ) -> Applied:
        body: dict[str, Any] = {"videoName": video.name, "videoType": video.type, "videoSize": video.size}
        if cover is not None:
            body.update(coverName=cover.name, coverType=cover.type, coverSize=cover.size)
        if storage_region:
            body["storageRegion"] = storage_region
        return parse_applied(self._call("ApplyUploadUGC", body))

    def apply_resume(self, session_key: str) -> Applied:
        """The same session (same object keys) with fresh temporary credentials."""
        return parse_applied(self._call("ApplyUploadUGC", {"vodSessionKey": session_key}))

    def commit(self, session_key: str, *, sending: Callable[[], None] | None = None) -> Committed:
        """`sending`: called before each attempt is sent, once it has its signature (not when none came)."""
        return parse_committed(self._call("CommitUploadUGC", {"vodSessionKey": session_key}, sending))

    def _call(self, action: str, fields: dict[str, Any], sending: Callable[[], None] | None = None) -> dict[str, Any]:
        attempts, failure = self._retries + 1, ""
        for attempt in range(attempts):
            if attempt:
                self._sleep(self._retry_delay)
            # A fresh signature per attempt: a one-time signature is spent even by a failed call.
            body = {"signature": self._get_signature(), **fields}
            if sending is not None:
                sending()
            answer = self._post(action, body)
            if isinstance(answer, str):
                failure = answer
                continue  # the host failed (network, 5xx, not the envelope): retry, on the other host
            code = answer["code"]
            if code == 0:
                data: dict[str, Any] = answer["data"]
                return data
            # A definite refusal: the same request would be refused again.
            log.info("%s refused: code %s", action, code)
            raise VodApiError(action, code, str(answer.get("message", "")))
        raise VodUnavailable(
            f"{action}: no answer from VOD at {' or '.join(map(shown, self._hosts))} after {attempts} attempts "
            f"(the last: {failure}); check the VOD endpoint (--vod-endpoint, VOD_UPLOAD_ENDPOINT) and the network"
        )

    def _post(self, action: str, body: dict[str, Any]) -> dict[str, Any] | str:
        """VOD's `{code, message, data}` answer, or (after switching host) what went wrong with the host."""
        used = self._host
        host = self._hosts[used % len(self._hosts)].rstrip("/")
        try:
            response = self._session.post(f"{host}{PATH}", params={"Action": action}, json=body, timeout=self._timeout)
        except requests.RequestException as exc:
            failure = f"{type(exc).__name__} from {shown(host)}"
        else:
            answer = _json(response) if response.status_code < 500 else None
            if _is_envelope(answer):
                return answer
            failure = f"HTTP {response.status_code} from {shown(host)}" + (
                ", not VOD's answer" * (response.status_code < 500)
            )
        log.info("%s failed: %s", action, failure)
        with self._host_lock:  # the SDK's host switch, main <-> backup: away from the one that failed, once
            if self._host == used:  # (two uploads failing on it at once would switch twice, back to it)
                self._host = used + 1
        return failure


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):  # not JSON, or nested past the decoder's depth: not VOD's answer
        return None


def _is_envelope(answer: Any) -> TypeGuard[dict[str, Any]]:
    """`{code, message, data}` with an integer code, and the data object when the code is 0."""
    if not isinstance(answer, dict):
        return False
    code = answer.get("code")
    if type(code) is not int:
        return False
    return code != 0 or isinstance(answer.get("data"), dict)
