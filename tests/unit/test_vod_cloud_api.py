"""shared.vod_cloud_api: the callback's stdlib client of VOD's API, against the SDK it stands in for.

The request is checked against the SDK's own request builder (tencentcloud-sdk-python-common's
abstract_client.py) on generated calls, and once as each sends it over the wire; the client's handling of
connections and answers against scripted servers on loopback.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import shutil
import socket
import ssl
import string
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import certifi
import pytest
from tencentcloud.common import abstract_client
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from shared import vod_cloud_api
from shared.config import ROLE_CREDENTIAL_VARIABLES, Secret, VodApiSettings, known_secrets
from shared.vod_cloud_api import MAX_IDLE_SECONDS, CloudApiError, VodCloudApi, signed_request
from tests.conftest import TunnelProxy, callback_confirm_api
from tests.deploy.scripts import load_script
from vodlocal.tls import self_signed

SDK_ONLY = {"X-TC-RequestClient", "X-TC-TraceId"}  # the SDK's name and version, a trace id: not signed, not checked
_ACTIONS = ("DescribeMediaInfos", "DescribeTaskDetail", "PullEvents", "ConfirmEvents", "ModifyEventConfig")
_HOSTS = ("vod.tencentcloudapi.com", "vod.ap-guangzhou.tencentcloudapi.com", "127.0.0.1:8123", "[::1]:9000")


def _keys(info: tuple[str, str, str]) -> SimpleNamespace:
    """Credentials as the SDK asks for them (what ExecutionRoleCredential answers too)."""
    return SimpleNamespace(get_credential_info=lambda: info)


def _text(rng: random.Random, alphabet: str, most: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, most)))


_UNICODE = string.ascii_letters + string.digits + string.punctuation + ' \t\n"\\/é漢字😀\u2028\x00'


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return rng.randint(-(2**63), 2**63)
    if kind == 1:
        return _text(rng, _UNICODE, 12)
    if kind == 2:
        return rng.choice([None, True, False, 0.5, -1e300, 20])
    if kind == 3:
        return ""
    if kind in (4, 5):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {_text(rng, _UNICODE, 8): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _call(rng: random.Random) -> dict[str, Any]:
    midnight = rng.randrange(0, 4_102_444_800, 86_400)  # dates up to 2100, at and around a day's edges
    return {
        "action": rng.choice(_ACTIONS),
        "params": {_text(rng, string.ascii_letters, 10): _value(rng) for _ in range(rng.randrange(5))},
        "host": rng.choice(_HOSTS),
        "region": rng.choice(["", "ap-guangzhou", "ap-singapore", _text(rng, string.ascii_lowercase + "-", 20)]),
        "credential": (
            "AKID" + _text(rng, string.ascii_letters + string.digits, 32),
            _text(rng, string.ascii_letters + string.digits + "+/=!é", 40),
            rng.choice(["", _text(rng, string.ascii_letters + string.digits + "_-=", 300)]),
        ),
        "timestamp": midnight + rng.choice([0, -1, 1, rng.randrange(86_400)]),
    }


def _sdk_request(call: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, dict[str, str]]:
    """The body and headers the SDK's CommonClient builds for `call` (its clock set to the call's time)."""
    monkeypatch.setattr(abstract_client, "time", SimpleNamespace(time=lambda: call["timestamp"]))
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=call["host"]))
    client = CommonClient("vod", "2018-07-17", _keys(call["credential"]), call["region"], profile)
    request = RequestInternal(call["host"], "POST", "/", header={})
    client._build_req_with_tc3_signature(call["action"], call["params"], request)
    headers = {name: value for name, value in request.header.items() if name not in SDK_ONLY}
    return request.data.encode("utf-8"), headers


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "America/Los_Angeles"])
def test_every_generated_call_is_signed_and_sent_as_the_sdk_builds_it(
    monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    # In any local time zone: the signed date is UTC's (a call near midnight would otherwise be refused)
    rng = random.Random(20261204)
    try:
        with monkeypatch.context() as zoned:
            zoned.setenv("TZ", zone)
            time.tzset()
            for _ in range(5000 if zone == "UTC" else 1000):
                call = _call(rng)
                assert signed_request(**call) == _sdk_request(call, monkeypatch), call
    finally:
        time.tzset()  # the process's own zone again, for the tests after this one


@pytest.mark.parametrize(
    ("environment", "used"),
    [
        ({}, "loaded"),
        ({"TENCENTCLOUD_SECRETID": "AKIDrenewed", "TENCENTCLOUD_SECRETKEY": "renewed-key"}, "loaded"),  # no token
        ({"TENCENTCLOUD_SECRETKEY": "renewed-key", "TENCENTCLOUD_SESSIONTOKEN": "renewed-token"}, "loaded"),
        (  # a token no header can carry: each call would fail quoting it
            {
                "TENCENTCLOUD_SECRETID": "AKIDrenewed",
                "TENCENTCLOUD_SECRETKEY": "renewed-key",
                "TENCENTCLOUD_SESSIONTOKEN": "renewed\ntoken",
            },
            "loaded",
        ),
        (
            {
                "TENCENTCLOUD_SECRETID": "AKIDrenewed",
                "TENCENTCLOUD_SECRETKEY": "renewed-key",
                "TENCENTCLOUD_SESSIONTOKEN": "renewed-token",
            },
            "renewed",
        ),
    ],
)
def test_a_roles_renewed_keys_are_used_only_when_all_three_are_there(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], used: str
) -> None:
    # (a role's keys are temporary: a SecretId and SecretKey without their token would be refused by VOD)
    for name in ROLE_CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    loaded = ("AKIDloaded", "loaded-key", "loaded-token")
    settings = _settings(
        "127.0.0.1:9",
        secret_id=loaded[0],
        secret_key=Secret(loaded[1]),
        session_token=Secret(loaded[2]),
        renewed_role=True,
    )
    renewed = ("AKIDrenewed", "renewed-key", "renewed-token")
    assert vod_cloud_api.ExecutionRoleCredential(settings).get_credential_info() == (
        loaded if used == "loaded" else renewed
    )


def test_a_roles_renewed_keys_are_masked_wherever_they_show(monkeypatch: pytest.MonkeyPatch) -> None:
    renewed = {name: f"renewed-{name}-{os.urandom(8).hex()}" for name in ROLE_CREDENTIAL_VARIABLES}
    for name, value in renewed.items():
        monkeypatch.setenv(name, value)
    settings = _settings("127.0.0.1:9", secret_id="AKIDloaded", secret_key=Secret("loaded-key"), renewed_role=True)
    vod_cloud_api.ExecutionRoleCredential(settings).get_credential_info()
    for name in ("TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN"):  # read at this request: known as secrets
        assert renewed[name] in known_secrets()


# --- over the wire -------------------------------------------------------------------------------------


class _Server:
    """HTTP/1.1 on loopback (connections kept alive), answering each POST with `answers` in turn (the last
    one again); notes each request and which connection it came on. An answer is (status, body) or a function
    of the handler that does it all."""

    def __init__(self, answers: list[Any], tls: ssl.SSLContext | None = None) -> None:
        self.answers = answers
        self.requests: list[tuple[int, dict[str, str], bytes]] = []
        server, numbers = self, itertools.count()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:  # once per connection: numbered (an id() may be used again once one is gone)
                super().setup()
                self.number = next(numbers)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.requests.append((self.number, dict(self.headers.items()), body))
                answer = server.answers[min(len(server.requests), len(server.answers)) - 1]
                if callable(answer):
                    answer(self)
                    return
                status, data = answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        if tls is not None:
            self.http.socket = tls.wrap_socket(self.http.socket, server_side=True)
        threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True).start()
        self.endpoint = f"127.0.0.1:{self.http.server_port}"


@pytest.fixture
def serve() -> Iterator[Callable[..., _Server]]:
    servers: list[_Server] = []

    def start(*answers: Any, tls: ssl.SSLContext | None = None) -> _Server:
        servers.append(_Server(list(answers), tls))
        return servers[-1]

    yield start
    for server in servers:
        server.http.shutdown()
        server.http.server_close()


def _settings(endpoint: str, **fields: Any) -> VodApiSettings:
    values: dict[str, Any] = {
        "secret_id": "AKIDwire",
        "secret_key": Secret("wire-secret-key"),
        "session_token": None,
        "renewed_role": False,
        "endpoint": endpoint,
        "protocol": "http",
        "region": "ap-guangzhou",
        "sub_app_id": None,
    }
    return VodApiSettings(**{**values, **fields})


def _ok(response: dict[str, Any]) -> tuple[int, bytes]:
    return 200, json.dumps({"Response": {**response, "RequestId": "r1"}}).encode()


# Each HTTP library's own (requests': User-Agent, Accept, Connection; http.client's: Accept-Encoding), and the length
_TRANSPORT = {"Content-Length", "Accept-Encoding", "User-Agent", "Accept", "Connection"}


def _wire(request: tuple[int, dict[str, str], bytes]) -> tuple[bytes, dict[str, str]]:
    _, headers, body = request
    return body, {k: v for k, v in headers.items() if k not in SDK_ONLY | _TRANSPORT}


@pytest.mark.parametrize("token", ["", "role-token"])
def test_on_the_wire_the_request_is_the_sdks(serve: Callable[..., _Server], token: str) -> None:
    server = serve(_ok({"MediaInfoSet": []}))
    settings = _settings(server.endpoint, session_token=Secret(token) if token else None)
    params = {"FileIds": ["52858907", "é漢"], "Filters": ["basicInfo"], "SubAppId": 1500000001}
    now = 1_764_806_400.7
    ours = VodCloudApi(settings, 3, clock=lambda: now).call("DescribeMediaInfos", params)
    sdk = CommonClient(
        "vod",
        "2018-07-17",
        _keys(("AKIDwire", "wire-secret-key", token)),
        "ap-guangzhou",
        ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=server.endpoint)),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(abstract_client, "time", SimpleNamespace(time=lambda: now))
        theirs = sdk.call_json("DescribeMediaInfos", params)["Response"]
    assert ours == theirs == {"MediaInfoSet": [], "RequestId": "r1"}
    [(_, sent_by_us), (_, sent_by_sdk)] = [_wire(request) for request in server.requests]
    assert sent_by_us == sent_by_sdk and server.requests[0][2] == server.requests[1][2]
    assert ("X-TC-Token" in sent_by_us) == bool(token)


@pytest.fixture
def trust(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[[str, str], None]]:
    """`trust(pem, layout)`: certifi, as the client finds it on sys.path, holds these CAs, as pip installs it
    ("cacert.pem") or as a bundle has it ("hashed": in certifi/hashed/ only, cacert.pem left as it is). The TLS
    context is made again from them, and again after the test."""

    def install(pem: str, layout: str) -> None:
        package = tmp_path / "site" / "certifi"
        shutil.copytree(Path(certifi.__file__).parent, package)
        if layout == "hashed":
            load_script("build").hash_ca_directory(pem, package / "hashed")
        else:
            (package / "cacert.pem").write_text(pem)
        for name in [name for name in sys.modules if name.partition(".")[0] == "certifi"]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.syspath_prepend(str(package.parent))
        vod_cloud_api.tls_context.cache_clear()

    vod_cloud_api.tls_context.cache_clear()
    yield install
    vod_cloud_api.tls_context.cache_clear()


def _tls_server(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    """A server's TLS context with a certificate for 127.0.0.1 and localhost that no public CA signed; its PEM."""
    cert, key = self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    return tls, cert.read_text()


@pytest.mark.parametrize("idle", [0, 0.3], ids=["at-once", "after-a-pause"])
@pytest.mark.parametrize("protocol", ["http", "https"])
def test_calls_share_one_connection_and_one_the_server_closed_is_replaced(
    serve: Callable[..., _Server], trust: Callable[[str, str], None], tmp_path: Path, protocol: str, idle: float
) -> None:
    def close_after(handler: BaseHTTPRequestHandler) -> None:  # answers, but keeps nothing alive after
        data = _ok({"n": 2})[1]
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        handler.close_connection = True  # without saying so (nor TLS's close_notify): the client finds out itself

    tls = None
    if protocol == "https":
        tls, pem = _tls_server(tmp_path)
        trust(pem, "hashed")
    server = serve(_ok({"n": 1}), close_after, _ok({"n": 3}), _ok({"n": 4}), tls=tls)
    api = VodCloudApi(_settings(server.endpoint, protocol=protocol), 3)
    answers = []
    for _ in range(4):
        answers.append(api.call("DescribeTaskDetail", {"TaskId": "t"})["n"])
        time.sleep(idle)
    connections = [connection for connection, _, _ in server.requests]
    # the first two on one connection; the server closed it: the third is sent on a new one
    assert answers == [1, 2, 3, 4]
    assert connections[0] == connections[1] != connections[-1]
    assert len(server.requests) in (4, 5)  # 5 when the closed connection still took the third's bytes


@pytest.mark.parametrize(
    ("pause", "connections"),
    [(MAX_IDLE_SECONDS - 1, 1), (MAX_IDLE_SECONDS + 1, 2), (-5, 2)],
    ids=["kept", "idle-too-long", "clock-stepped-back"],
)
def test_a_connection_idle_too_long_is_not_used_again(
    serve: Callable[..., _Server], pause: float, connections: int
) -> None:
    # (a NAT may have dropped it without a word: a call on it would wait out its timeout, then fail)
    now = [1_764_806_400.0]
    server = serve(_ok({"n": 1}))
    api = VodCloudApi(_settings(server.endpoint), 3, clock=lambda: now[0])
    api.call("DescribeTaskDetail", {"TaskId": "t"})
    now[0] += pause
    api.call("DescribeTaskDetail", {"TaskId": "t"})
    assert len({number for number, _, _ in server.requests}) == connections


def _drop(handler: BaseHTTPRequestHandler) -> None:
    handler.close_connection = True  # no answer at all


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ((502, b"<html>bad gateway</html>"), "HTTP 502"),
        (
            (404, b'{"Response": {"RequestId": "r1"}}'),
            "HTTP 404",
        ),  # a proxy's, say: no answer of VOD's, whatever it reads
        ((200, b"<html>a captive portal</html>"), "NotAnApiAnswer"),
        ((200, b'{"Response": "no"}'), "NotAnApiAnswer"),
        ((200, b'{"NoResponse": {}}'), "NotAnApiAnswer"),
        ((200, b'{"Response": ' * 100_000), "NotAnApiAnswer"),  # nested too deep to read
        # what Python's json reads but JSON has not: recorded, it would be written out as no JSON reads it
        ((200, b'{"Response": {"MetaData": {"Duration": NaN}}}'), "NotAnApiAnswer"),
        ((200, b'{"Response": {"MetaData": {"Size": -Infinity}}}'), "NotAnApiAnswer"),
        ((200, b'{"Response": {"MetaData": {"Size": 1e999}}}'), "NotAnApiAnswer"),
        ((200, b'{"Response": {"Name": "\xff"}}'), "NotAnApiAnswer"),  # not UTF-8
        (_ok({"Error": {"Code": "AuthFailure.SecretIdNotFound", "Message": "m"}}), "AuthFailure.SecretIdNotFound"),
        (_ok({"Error": {"Message": "no code"}}), "Error"),
        (_ok({"Error": "text"}), "Error"),
        (_ok({"Error": {"Code": 5, "Message": "m"}}), "Error"),  # a code that is not text is none
        (_drop, "RemoteDisconnected"),  # on a new connection: not asked again
    ],
    ids=[
        "502",
        "404-reading-as-an-answer",
        "html",
        "response-not-object",
        "no-response",
        "too-deep",
        "nan",
        "infinity",
        "too-large",
        "not-utf8",
        "error",
        "error-without-code",
        "error-text",
        "error-code-number",
        "dropped",
    ],
)
def test_an_answer_that_is_not_vods_is_an_error_with_a_code(
    serve: Callable[..., _Server], answer: Any, code: str
) -> None:
    server = serve(answer)
    with pytest.raises(CloudApiError) as raised:
        VodCloudApi(_settings(server.endpoint), 3).call("DescribeMediaInfos", {"FileIds": ["1"]})
    assert raised.value.code == code and len(server.requests) == 1


def test_unreachable_and_silent_apis_are_errors_named_by_what_happened(serve: Callable[..., _Server]) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(CloudApiError) as refused:
        VodCloudApi(_settings(f"127.0.0.1:{port}"), 3).call("DescribeMediaInfos", {})
    server = serve(lambda handler: threading.Event().wait(2))  # reads the call, never answers
    with pytest.raises(CloudApiError) as silent:
        VodCloudApi(_settings(server.endpoint), 0.3).call("DescribeMediaInfos", {})
    assert (refused.value.code, silent.value.code) == ("ConnectionRefusedError", "TimeoutError")


@pytest.mark.parametrize("answer", [_ok({"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "m"}}), _drop])
def test_nothing_secret_is_in_an_error_as_logged_or_in_a_repr(serve: Callable[..., _Server], answer: Any) -> None:
    # VOD's refusal, and a failure on the way (whose own exception the error is raised from)
    server = serve(answer)
    api = VodCloudApi(_settings(server.endpoint, session_token=Secret("the-token")), 3)
    with pytest.raises(CloudApiError) as raised:
        api.call("DescribeMediaInfos", {})
    _, headers, _ = server.requests[0]
    signature = headers["Authorization"].rpartition("Signature=")[2]
    shown = repr(api) + "".join(traceback.format_exception(type(raised.value), raised.value, raised.tb))
    assert raised.value.code in shown
    assert not [secret for secret in ("wire-secret-key", "the-token", signature) if secret in shown]


@pytest.mark.parametrize("layout", ["cacert.pem", "hashed"])
def test_https_calls_check_the_certificate_against_certifis_cas(
    serve: Callable[..., _Server], trust: Callable[[str, str], None], tmp_path: Path, layout: str
) -> None:
    # GIVEN an API on loopback whose certificate no public CA signed
    tls, pem = _tls_server(tmp_path)
    port = serve(_ok({"Found": 1}), tls=tls).http.server_port
    # THEN it is refused; and with its certificate among certifi's CAs, it is called, for either name
    with pytest.raises(CloudApiError) as refused:
        VodCloudApi(_settings(f"127.0.0.1:{port}", protocol="https"), 3).call("DescribeMediaInfos", {})
    assert refused.value.code == "SSLCertVerificationError"
    trust(pem, layout)
    for host in ("127.0.0.1", "localhost"):
        assert VodCloudApi(_settings(f"{host}:{port}", protocol="https"), 3).call("X", {})["Found"] == 1


_API_HOST = "vod.tencentcloudapi.com"
_KEYS = {"VOD_SECRET_ID": "AKIDwire", "VOD_SECRET_KEY": "wire-secret-key", "VOD_API_REGION": "ap-guangzhou"}


def _api_behind_a_proxy(
    serve: Callable[..., _Server], trust: Callable[[str, str], None], tmp_path: Path, hosts: tuple[str, ...]
) -> tuple[_Server, Path]:
    """An API on loopback with a certificate for `hosts` that certifi (as a bundle has it) trusts; its PEM's path."""
    cert, key = self_signed(tmp_path / "api", hosts)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    trust(cert.read_text(), "hashed")
    return serve(_ok({"Found": 1}), tls=tls), cert


@pytest.mark.parametrize(
    ("userinfo", "authorization"),
    [("", None), ("app%20user:p%40ss-w%C3%B6rd@", "Basic " + base64.b64encode(b"app user:p@ss-w\xf6rd").decode())],
    ids=["open", "with-password"],
)
def test_through_a_proxy_the_tunnel_is_the_sdks_and_kept_alive(
    serve: Callable[..., _Server],
    trust: Callable[[str, str], None],
    tunnel_proxy: Callable[..., TunnelProxy],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    userinfo: str,
    authorization: str | None,
) -> None:
    # GIVEN VOD's API reached through an http:// proxy, named as a deployment names it (HTTPS_PROXY)
    server, cert = _api_behind_a_proxy(serve, trust, tmp_path, (_API_HOST,))
    proxy = tunnel_proxy(server.http.server_port, authorization)
    monkeypatch.setenv("HTTPS_PROXY", f"http://{userinfo}{proxy.address}")
    settings = callback_confirm_api({**_KEYS, "VOD_API_ENDPOINT": _API_HOST, "HTTPS_PROXY": os.environ["HTTPS_PROXY"]})
    # WHEN we call twice, and the SDK once
    api = VodCloudApi(settings, 3)
    assert [api.call("DescribeMediaInfos", {})["Found"] for _ in range(2)] == [1, 1]
    profile = HttpProfile(endpoint=_API_HOST, certification=str(cert))
    sdk = CommonClient(
        "vod",
        "2018-07-17",
        _keys(("AKIDwire", "wire-secret-key", "")),
        "ap-guangzhou",
        ClientProfile(httpProfile=profile),
    )
    assert sdk.call_json("DescribeMediaInfos", {})["Response"]["Found"] == 1
    # THEN ours went through one tunnel (kept alive), asked for as the SDK asks for its own
    [(ours, our_headers), (theirs, their_headers)] = proxy.tunnels
    assert ours == theirs == f"{_API_HOST}:443"
    assert our_headers.get("Proxy-Authorization") == their_headers.get("Proxy-Authorization") == authorization
    assert [host for _, headers, _ in server.requests for host in [headers["Host"]]] == [_API_HOST] * 3


def test_a_proxy_that_refuses_the_tunnel_is_an_error_that_names_its_status(
    serve: Callable[..., _Server],
    trust: Callable[[str, str], None],
    tunnel_proxy: Callable[..., TunnelProxy],
    tmp_path: Path,
) -> None:
    server, _ = _api_behind_a_proxy(serve, trust, tmp_path, (_API_HOST,))
    proxy = tunnel_proxy(server.http.server_port, "Basic " + base64.b64encode(b"app:right").decode())
    settings = callback_confirm_api(
        {**_KEYS, "VOD_API_ENDPOINT": _API_HOST, "HTTPS_PROXY": f"http://app:wrong-password@{proxy.address}"}
    )
    api = VodCloudApi(settings, 3)
    with pytest.raises(CloudApiError) as refused:
        api.call("DescribeMediaInfos", {})
    assert refused.value.code == "ProxyRefused 407" and not server.requests
    shown = repr(api) + "".join(traceback.format_exception(type(refused.value), refused.value, refused.tb))
    assert "wrong-password" not in shown and base64.b64encode(b"app:wrong-password").decode() not in shown


def test_through_a_proxy_the_certificate_is_checked_for_vods_host_not_the_proxys(
    serve: Callable[..., _Server],
    trust: Callable[[str, str], None],
    tunnel_proxy: Callable[..., TunnelProxy],
    tmp_path: Path,
) -> None:
    # a certificate certifi trusts, for loopback's names (the proxy's), not for VOD's API
    server, _ = _api_behind_a_proxy(serve, trust, tmp_path, ("localhost",))
    proxy = tunnel_proxy(server.http.server_port)
    settings = callback_confirm_api({**_KEYS, "VOD_API_ENDPOINT": _API_HOST, "HTTPS_PROXY": f"http://{proxy.address}"})
    with pytest.raises(CloudApiError) as refused:
        VodCloudApi(settings, 3).call("DescribeMediaInfos", {})
    assert refused.value.code == "SSLCertVerificationError" and len(proxy.tunnels) == 1 and not server.requests
