"""VOD's cloud API over the standard library: a JSON POST signed with TC3-HMAC-SHA256 (签名方法 v3,
https://www.tencentcloud.com/document/api/266/34114), with the settings' credentials.

Why not the SDK's CommonClient: with `requests` under it, its import was most of the callback's cold start with
VOD_CALLBACK_CONFIRM=fetch (README, Benchmarks). The request is the SDK's: its body and every header it sends but
its own name and a trace id (neither signed). tests/unit/test_vod_cloud_api.py checks it against the SDK's own
request builder (abstract_client.py) on generated calls and on the wire, and every fetch-mode test calls the
emulator, which verifies the signature as VOD documents it.
The PULL function keeps the SDK (shared/vod_api.py); it shares the credentials from here.
Through a proxy (HTTPS_PROXY, read as the SDK's requests reads it: shared.env_proxy), the call goes through its
CONNECT tunnel, and VOD's certificate is checked for VOD's host.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import http.client
import json
import os
import ssl  # loaded by http.client already
import time
from collections.abc import Callable
from typing import Any

from shared.config import ROLE_CREDENTIAL_VARIABLES, VodApiSettings, is_header_value, note_secrets

SERVICE, VERSION = "vod", "2018-07-17"  # the API's name and version in a signature and its headers
CONTENT_TYPE = "application/json"
# A kept-alive connection idle longer is not used again: a NAT gateway (a VPC's way out) may have forgotten it
# without a word, and a call on it would wait out its whole timeout, then fail.
MAX_IDLE_SECONDS = 50
# What sending on a kept-alive connection the server closed while it was idle fails with (over TLS: an EOF where
# its records were due): another try, on a new connection, may succeed.
_STALE = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
    ssl.SSLEOFError,
)


def _finite(text: str) -> float:
    number = float(text)
    if abs(number) == float("inf"):  # 1e999: valid JSON, but no number a record could hold or JSON write again
        raise ValueError(f"{text[:20]} is too large")
    return number


def _not_json(constant: str) -> float:
    raise ValueError(f"{constant} is not JSON")  # Python's json reads NaN and Infinity; the store would write them


# VOD's answers, their numbers read as a PUSH body's are (shared.http.body): what is recorded must be JSON again
_ANSWER_JSON = json.JSONDecoder(parse_float=_finite, parse_constant=_not_json)


class CloudApiError(Exception):
    """A call that did not answer: `code` is VOD's error code (AuthFailure.SignatureFailure,
    InvalidParameterValue.TaskId, ...), or what went wrong on the way (ConnectionRefusedError, IncompleteRead,
    HTTP 502, NotAnApiAnswer, ProxyRefused 407). Never the request, whose headers carry the signature and a role's
    token."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class ExecutionRoleCredential:
    """An SCF execution role's temporary keys, read from the environment at every request: they expire, and a
    warm container outlives them (Tencent's own SCF client, tencentserverless, reads them at each call too).
    The ones the settings were loaded with stand in while the environment has none. Only inside SCF: elsewhere
    (a test, a laptop) the environment at call time is not the function's."""

    def __init__(self, settings: VodApiSettings) -> None:
        self._loaded = loaded_credentials(settings)

    def get_credential_info(self) -> tuple[str, str, str]:  # the SDK's name: it asks before each request
        secret_id, secret_key, token = (os.environ.get(name) or "" for name in ROLE_CREDENTIAL_VARIABLES)
        note_secrets({"TENCENTCLOUD_SECRETKEY": secret_key, "TENCENTCLOUD_SESSIONTOKEN": token})  # renewed: masked too
        # (a token no header can carry: a call would fail quoting it)
        renewed = secret_id and secret_key and token and is_header_value(secret_id + token)
        return (secret_id, secret_key, token) if renewed else self._loaded

    def __repr__(self) -> str:
        return "ExecutionRoleCredential(***)"


def loaded_credentials(settings: VodApiSettings) -> tuple[str, str, str]:
    """(SecretId, SecretKey, token or "") as the settings were loaded."""
    token = settings.session_token.reveal() if settings.session_token else ""
    return settings.secret_id, settings.secret_key.reveal(), token


def credentials(settings: VodApiSettings) -> Callable[[], tuple[str, str, str]]:
    """(SecretId, SecretKey, token or ""), asked before each call."""
    if settings.renewed_role:
        return ExecutionRoleCredential(settings).get_credential_info
    loaded = loaded_credentials(settings)
    return lambda: loaded


def with_sub_app(params: dict[str, Any], sub_app_id: int | None) -> dict[str, Any]:
    return {**params, "SubAppId": sub_app_id} if sub_app_id is not None else params


def _failure(exc: BaseException) -> str:
    """A failed call's code: the exception's type, or the status of a proxy that refused its tunnel (407: its
    user and password are wrong or missing)."""
    refused = str(exc).removeprefix("Tunnel connection failed: ")  # http.client's words for it
    if isinstance(exc, OSError) and refused != str(exc):
        return f"ProxyRefused {refused[:3]}"
    return type(exc).__name__


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac_sha256(key: bytes, text: str) -> bytes:
    return hmac.digest(key, text.encode("utf-8"), "sha256")


def signed_request(
    action: str,
    params: dict[str, Any],
    *,
    host: str,
    region: str | None,
    credential: tuple[str, str, str],
    timestamp: int,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a call: a POST of `params` as JSON to https://`host`/, signed for `timestamp`."""
    secret_id, secret_key, token = credential
    body = json.dumps(params).encode("utf-8")
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    canonical = f"POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{host}\n\ncontent-type;host\n{_sha256_hex(body)}"
    scope = f"{date}/{SERVICE}/tc3_request"
    text = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{_sha256_hex(canonical.encode('utf-8'))}"
    key = _hmac_sha256(_hmac_sha256(_hmac_sha256(("TC3" + secret_key).encode("utf-8"), date), SERVICE), "tc3_request")
    signature = _hmac_sha256(key, text).hex()
    headers = {
        "Content-Type": CONTENT_TYPE,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Version": VERSION,
        "X-TC-Language": "zh-CN",  # the SDK's default: the language of error messages (none is shown)
        "Authorization": f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, "
        f"Signature={signature}",
    }
    if region:
        headers["X-TC-Region"] = region
    if token:
        headers["X-TC-Token"] = token
    return body, headers


def _ca_locations() -> tuple[str | None, str | None]:
    """(cafile, capath) of certifi's CAs: in a bundle, one per file (capath: certifi/hashed/, made by scripts/build),
    so that OpenSSL reads only the CA a connection needs, where reading all ~120 of cacert.pem costs tens of ms of a
    cold start; else cacert.pem (cafile: certifi as pip installs it). Found without importing certifi, whose where()
    loads importlib.resources (~20 ms)."""
    import importlib.util

    spec = importlib.util.find_spec("certifi")
    for directory in (spec.submodule_search_locations or []) if spec else []:
        if os.path.isdir(hashed := os.path.join(directory, "hashed")):
            return None, hashed
    import certifi

    return certifi.where(), None


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context of https calls, made once per container: certificates checked against certifi's CAs,
    those the SDK trusted (through requests), not whatever the runtime image has."""
    cafile, capath = _ca_locations()
    return ssl.create_default_context(cafile=cafile, capath=capath)


class VodCloudApi:
    """Calls to VOD's API on one kept-alive connection: not to be shared between threads (one each)."""

    def __init__(
        self, settings: VodApiSettings, timeout_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._host, self._https = settings.endpoint, settings.protocol == "https"
        self._region, self._proxy = settings.region, settings.proxy
        self._credential = credentials(settings)
        self._timeout = timeout_seconds
        self._clock = clock
        self._connection: http.client.HTTPConnection | None = None
        self._idle_since = 0.0  # when the kept connection last answered (the clock's time)

    def call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        """VOD's `Response` object for `action`; CloudApiError when there is none, or it is an Error."""
        body, headers = signed_request(
            action,
            params,
            host=self._host,
            region=self._region,
            credential=self._credential(),
            timestamp=int(self._clock()),
        )
        try:
            status, data = self._post(body, headers)
        except (OSError, http.client.HTTPException) as exc:  # not reached, timed out, cut off
            raise CloudApiError(_failure(exc)) from None  # its text may name the host, never the request
        if status != 200:
            raise CloudApiError(f"HTTP {status}")
        try:
            answer = _ANSWER_JSON.decode(data.decode("utf-8"))["Response"]
        except (ValueError, KeyError, TypeError, RecursionError):
            answer = None
        if not isinstance(answer, dict):
            raise CloudApiError("NotAnApiAnswer")
        error = answer.get("Error")
        if error is not None:
            code = error.get("Code") if isinstance(error, dict) else None
            raise CloudApiError(code if isinstance(code, str) and code else "Error")
        return answer

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        while True:
            if self._connection is not None and not 0 <= self._clock() - self._idle_since <= MAX_IDLE_SECONDS:
                self.close()
            reused = self._connection is not None
            connection = self._connection or self._connect()
            self._connection = None
            try:
                connection.request("POST", "/", body, headers)
                response = connection.getresponse()
                data = response.read()
            except _STALE:
                connection.close()
                if reused:  # the API's Describe calls change nothing: asking again is safe
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            if not response.will_close:
                self._connection, self._idle_since = connection, self._clock()
            else:
                connection.close()
            return response.status, data

    def _connect(self) -> http.client.HTTPConnection:
        if not self._https:
            return http.client.HTTPConnection(self._host, timeout=self._timeout)
        if self._proxy is None:
            return http.client.HTTPSConnection(self._host, timeout=self._timeout, context=tls_context())
        # Through the proxy's tunnel: the certificate is checked for VOD's host, not the proxy's
        proxy = self._proxy
        connection = http.client.HTTPSConnection(proxy.host, proxy.port, timeout=self._timeout, context=tls_context())
        tunnel = {"Proxy-Authorization": proxy.authorization.reveal()} if proxy.authorization else None
        connection.set_tunnel(self._host, headers=tunnel)
        return connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __repr__(self) -> str:
        return f"VodCloudApi({self._host!r})"
