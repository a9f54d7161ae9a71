"""AUTH_JWT_JWKS_URL: tokens verified with the key their kid names in the issuer's key set (an OpenID provider's
jwks_uri), served here by a loopback server that counts its requests; the real sign handler, SCF events."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared import auth
from shared.auth import authenticate, check_key
from shared.config import ConfigError, load_sign_settings, load_uploads_settings
from shared.http.triggers import request_from_event
from shared.sign_handler import make_sign_handler
from shared.source_context import attribute
from tests.conftest import KEYS, SECRET_ID, SECRET_KEY, SIGN_ENV, Output, Serve, TunnelProxy, closed_loopback_port
from tests.scf import response_json
from vodemu import signature as vod_signature
from vodlocal.tls import self_signed
from vodtesting import http_event

NOW = 1_800_000_000
ISSUER = "https://id.example.com/"
_RSA = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in ("k1", "k2", "k3")}
_EC = ec.generate_private_key(ec.SECP256R1())


def _jwk(kid: str, key: Any = None, **fields: Any) -> dict[str, Any]:
    public = (key or _RSA[kid]).public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        written = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        written = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
    return {**written, "kid": kid, "use": "sig", **fields}


def token(kid: str | None = "k1", *, key: Any = None, alg: str = "RS256", sub: str = "alice", **claims: Any) -> str:
    headers = {} if kid is None else {"kid": kid}
    signing_key = key or _RSA.get(kid or "k1", _RSA["k1"])  # a made-up kid: signed by a key of the set
    return jwt.encode(
        {"sub": sub, "exp": NOW + 300, "iss": ISSUER, **claims}, signing_key, algorithm=alg, headers=headers
    )


class Issuer:
    """The issuer's key set on loopback: what it answers can change, and it counts what it was asked."""

    def __init__(self, serve: Serve) -> None:
        self.keys = [_jwk("k1"), _jwk("k2")]
        self.answer: tuple[int, bytes] | None = None  # (status, body) instead of the key set
        self.headers: dict[str, str] = {}
        self.cut_after: int | None = None  # bytes of the body sent before the connection is reset
        self.trickle: float | None = None  # seconds between the body's bytes, sent one at a time
        self.trickle_headers: float | None = None  # seconds between header lines, sent on and on
        self.short_by = 0  # bytes the Content-Length claims beyond the body, before the connection is closed
        self.endless = False  # a body with no length, sent on and on, as fast as it is read
        self.requests = 0
        self._lock = threading.Lock()

        def answer(handler: BaseHTTPRequestHandler) -> None:  # a function (a bound method is no handler method)
            self._answer(handler)

        self.url = serve(answer) + "/.well-known/jwks.json"

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests += 1
        status, body = self.answer or (200, json.dumps({"keys": self.keys}).encode())
        handler.send_response(status)
        if self.trickle_headers is not None:
            handler.flush_headers()  # the status line and the server's headers, then one line at a time
            lines = [f"X-Padding-{n}: x\r\n".encode() for n in range(100)]  # (http.client takes 100 headers)
            _send_slowly(handler, lines, self.trickle_headers)
            return
        for name, value in {"Content-Type": "application/json", **self.headers}.items():
            handler.send_header(name, value)
        if self.endless:  # HTTP/1.0: the body ends when the connection does (64 MB/s, until the function hangs up)
            handler.end_headers()
            _send_slowly(handler, [body, *itertools.repeat(b" " * (1 << 16), 100_000)], 0.001)
            return
        handler.send_header("Content-Length", str(len(body) + self.short_by))
        handler.end_headers()
        handler.close_connection = self.short_by > 0
        if self.trickle is not None:
            _send_slowly(handler, [bytes([byte]) for byte in body], self.trickle)
            return
        if self.cut_after is None:
            handler.wfile.write(body)
            return
        handler.wfile.write(body[: self.cut_after])
        handler.wfile.flush()
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
        handler.close_connection = True


def _send_slowly(handler: BaseHTTPRequestHandler, pieces: Iterable[bytes], pause: float) -> None:
    with contextlib.suppress(OSError):  # until the function hangs up
        for piece in pieces:
            handler.wfile.write(piece)
            handler.wfile.flush()
            time.sleep(pause)


def new_container() -> None:
    """What a container keeps forgotten: its key-set client (one per URL) and the tokens it verified (by token and
    settings, the URL among them). A port an earlier test's issuer had may come again, and the same claims signed
    with the same RSA key are the same token: else a test could be answered by an earlier one's verdict."""
    auth._jwks_client.cache_clear()
    auth._verified_claims.cache_clear()


@pytest.fixture
def issuer(loopback_http: Serve) -> Issuer:
    new_container()
    return Issuer(loopback_http)


def sign(url: str, **env: str) -> Callable[[str], dict[str, Any]]:
    jwks = {"AUTH_JWT_SECRET": "", "AUTH_JWT_JWKS_URL": url, "AUTH_JWT_ISSUER": ISSUER}
    settings = load_sign_settings({**SIGN_ENV, **jwks, **env})
    check_key(settings.auth)
    handler = make_sign_handler(settings, now=lambda: NOW, random_u32=lambda: 7)
    return lambda bearer: handler(
        http_event(path="/signature", body={}, headers={"Authorization": f"Bearer {bearer}"}), {"request_id": "r-1"}
    )


def _user(result: dict[str, Any]) -> str | None:
    """Whom the signature in `result` uploads for, read back as VOD's events give it."""
    signed = vod_signature.verify(response_json(result)["signature"], {SECRET_ID: SECRET_KEY}, now=NOW)
    return attribute(str(signed.values["sourceContext"]), KEYS).user_id


def test_each_token_is_verified_with_the_key_its_kid_names_from_one_read_of_the_set(issuer: Issuer) -> None:
    call = sign(issuer.url)
    for kid, user in (("k1", "alice"), ("k2", "bob"), ("k1", "carol")):
        result = call(token(kid, sub=user))
        assert result["statusCode"] == 200, result
        assert _user(result) == user
    assert issuer.requests == 1  # kept for JWKS_LIFESPAN_SECONDS


def test_an_ec_key_of_the_set_verifies_es256(issuer: Issuer) -> None:
    issuer.keys = [_jwk("ec-1", _EC)]
    result = sign(issuer.url, AUTH_JWT_ALGORITHMS="ES256")(token("ec-1", key=_EC, alg="ES256"))
    assert result["statusCode"] == 200, result


@pytest.mark.parametrize(
    ("bearer", "said"),
    [
        (lambda: token("k9"), "signed with a key the issuer does not publish (kid)"),
        (lambda: token(None), "names no key (kid): the issuer's key set is looked up by it"),
        (lambda: token(""), "names no key (kid): the issuer's key set is looked up by it"),
        (lambda: token("k2", key=_RSA["k1"]), "bad signature"),  # a kid that is not its signer's
        (lambda: token("k3"), "signed with a key the issuer does not publish (kid)"),  # k3 is not in the set
        (lambda: jwt.encode({"sub": "m", "exp": NOW + 300}, "x" * 32, headers={"kid": "k1"}), "algorithm not allowed"),
        (lambda: token("k1", aud="another-app"), "wrong audience"),  # no audience set: a token naming one is refused
        (lambda: token("k1", iss="https://securetoken.google.com/another-project"), "wrong issuer"),
        (lambda: "not.a.token", "malformed token"),
        # a forged header naming the set's EC key for RS256, or its RSA key for ES256: its key's alg or nothing
        (lambda: token("ec-1", key=_RSA["k1"]), "algorithm not allowed"),
        (lambda: token("k1", key=_EC, alg="ES256"), "algorithm not allowed"),
    ],
    ids=[
        "unknown-kid",
        "no-kid",
        "empty-kid",
        "kid-not-its-signer",
        "removed-key",
        "hs256-confusion",
        "audience",
        "issuer",
        "malformed",
        "rs-naming-ec",
        "es-naming-rsa",
    ],
)
def test_a_token_the_set_does_not_vouch_for_is_401(issuer: Issuer, bearer: Callable[[], str], said: str) -> None:
    issuer.keys.append(_jwk("ec-1", _EC))  # keys of two kinds, as a realm moving from RSA to EC has
    result = sign(issuer.url, AUTH_JWT_ALGORITHMS="RS256,ES256")(bearer())
    assert (result["statusCode"], response_json(result)["error"]["message"]) == (401, f"invalid token: {said}")


def test_a_key_the_issuer_rotates_in_is_read_at_its_first_token(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "JWKS_COOLDOWN_SECONDS", 0)  # read again at once (30 s by default)
    call = sign(issuer.url)
    assert call(token("k1"))["statusCode"] == 200
    issuer.keys.append(_jwk("k3"))  # the issuer publishes a new key, then signs with it
    result = call(token("k3", sub="dave"))
    assert (result["statusCode"], _user(result), issuer.requests) == (200, "dave", 2)


def test_made_up_kids_make_no_more_reads_of_the_set_within_the_cooldown(issuer: Issuer) -> None:
    call = sign(issuer.url)
    assert call(token("k1"))["statusCode"] == 200
    for n in range(20):
        assert call(token(f"made-up-{n}"))["statusCode"] == 401
    assert issuer.requests == 1  # each unknown kid may read the set again, once per JWKS_COOLDOWN_SECONDS


@pytest.mark.parametrize(
    "answer",
    [
        (500, b"oops"),
        (200, b"<html>not json</html>"),
        (200, b"[]"),  # JSON, not a key set
        (200, b'{"keys": []}'),  # no key at all
        (200, b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'),  # no signing key (one with a kid)
        (200, b'{"keys": [{"kty": "RSA", "kid": "k1"}]}'),  # a key with no modulus: none usable
        (200, b"[" * 100_000),  # nested past what the JSON reader takes
        (200, b'{"keys": [{"kty": "RSA", "kid": "k1", "alg": ["RS256"]}]}'),  # an alg that is not text
    ],
    ids=["500", "html", "list", "no-keys", "no-signing-key", "broken-key", "too-deep", "alg-not-text"],
)
def test_a_key_set_that_cannot_be_read_is_a_503_to_retry_never_a_401(
    issuer: Issuer, output: Output, answer: tuple[int, bytes]
) -> None:
    issuer.answer = answer
    result = sign(issuer.url)(token("k1"))
    assert result["statusCode"] == 503, result
    assert response_json(result)["error"]["code"] == "issuer_keys_unavailable"
    [line] = [line for line in output.lines() if line["event"] == "request"]
    assert line["issuer_keys_error"].startswith("AUTH_JWT_JWKS_URL: ")


@pytest.mark.parametrize(
    "answer",
    [b"[]", b"null", b"{}", b'{"keys": []}', b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'],
    ids=["list", "null", "empty", "no-keys", "no-signing-key"],
)
def test_an_answer_that_is_no_key_set_leaves_the_last_set_in_use(
    issuer: Issuer, short_lived_set: None, answer: bytes
) -> None:
    call = sign(issuer.url)
    assert call(token("k1"))["statusCode"] == 200
    issuer.answer = (200, answer)  # an issuer's outage, answered as a success
    time.sleep(0.06)  # past the set's lifespan: read again
    assert [call(token(kid, sub=f"u-{kid}"))["statusCode"] for kid in ("k1", "k2")] == [200, 200]
    assert issuer.requests == 2


def test_a_redirect_is_not_followed(issuer: Issuer, loopback_http: Serve) -> None:
    # (an issuer's jwks_uri answers itself: a redirect could hand the function someone else's keys)
    elsewhere = Issuer(loopback_http)
    issuer.answer = (302, b"")
    issuer.headers = {"Location": elsewhere.url}
    result = sign(issuer.url)(token("k1"))
    assert (result["statusCode"], elsewhere.requests) == (503, 0)


def test_a_key_set_cut_off_mid_body_is_a_503(issuer: Issuer) -> None:
    issuer.cut_after = 10  # the connection reset ten bytes into the set
    result = sign(issuer.url)(token("k1"))
    assert (result["statusCode"], response_json(result)["error"]["code"]) == (503, "issuer_keys_unavailable")


def test_a_key_set_trickled_in_is_a_503_at_the_deadline(issuer: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    # each byte well within the per-read timeout: only the deadline on the whole read ends it
    monkeypatch.setattr(auth, "JWKS_DEADLINE_SECONDS", 0.5)
    issuer.trickle = 0.05
    started = time.monotonic()
    result = sign(issuer.url)(token("k1"))
    assert (result["statusCode"], response_json(result)["error"]["code"]) == (503, "issuer_keys_unavailable")
    assert time.monotonic() - started < 2  # not the set's whole ~60 s
    assert reads_end()  # cut, not left reading on in the warm container


def test_an_answer_whose_headers_trickle_in_is_a_503_at_the_deadline(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "JWKS_DEADLINE_SECONDS", 0.5)
    issuer.trickle_headers = 0.05  # 100 headers: 5 s, each line well within the per-read timeout
    started = time.monotonic()
    result = sign(issuer.url)(token("k1"))
    assert (result["statusCode"], response_json(result)["error"]["code"]) == (503, "issuer_keys_unavailable")
    assert time.monotonic() - started < 2


def test_a_name_lookup_that_hangs_is_a_503_at_the_deadline(issuer: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    # SCF's DNS can take seconds (Tencent says so): no socket timeout bounds a lookup, the deadline does
    monkeypatch.setattr(auth, "JWKS_DEADLINE_SECONDS", 0.5)
    lookup = socket.getaddrinfo

    def slow_lookup(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.5)
        return lookup(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_lookup)
    started = time.monotonic()
    result = sign(issuer.url)(token("k1"))
    assert (result["statusCode"], response_json(result)["error"]["code"]) == (503, "issuer_keys_unavailable")
    assert time.monotonic() - started < 1.2
    # Once the lookup returns, the read (answered already) connects to the issuer no more
    assert reads_end() and issuer.requests == 0


def reads_end(within: float = 3) -> bool:
    """Whether every read of a key set has ended within `within` seconds."""
    deadline = time.monotonic() + within
    while any(thread.name == "jwks-read" for thread in threading.enumerate()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_key_set_shorter_than_its_content_length_is_a_503(issuer: Issuer) -> None:
    issuer.short_by = 100  # the connection closed before the length it announced
    result = sign(issuer.url)(token("k1"))
    assert (result["statusCode"], response_json(result)["error"]["code"]) == (503, "issuer_keys_unavailable")


@pytest.mark.parametrize("endless", [False, True], ids=["padded", "endless"])
def test_a_key_set_larger_than_any_is_a_503(
    issuer: Issuer, output: Output, monkeypatch: pytest.MonkeyPatch, endless: bool
) -> None:
    if endless:  # whitespace after the set, on and on: what is read is bounded as it comes, not once it has all come
        issuer.endless = True
        monkeypatch.setattr(auth, "JWKS_DEADLINE_SECONDS", 1)  # which it would reach with ~64 MB read
    else:
        issuer.answer = (200, json.dumps({"keys": [_jwk("k1")], "padding": "x" * auth.JWKS_MAX_BYTES}).encode())
    result = sign(issuer.url)(token("k1"))
    assert (result["statusCode"], response_json(result)["error"]["code"]) == (503, "issuer_keys_unavailable")
    [line] = [line for line in output.lines() if line["event"] == "request"]
    assert "larger than" in line["issuer_keys_error"]


@contextlib.contextmanager
def _tls_server(tls: ssl.SSLContext) -> Iterator[Serve]:
    """A Serve of https:// servers on loopback, with `tls`'s certificate."""
    servers: list[ThreadingHTTPServer] = []

    def serve_tls(answer: Callable[[BaseHTTPRequestHandler], None]) -> str:
        class Handler(BaseHTTPRequestHandler):
            do_GET = answer

            def log_message(self, *args: object) -> None:
                pass

        servers.append(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
        servers[-1].socket = tls.wrap_socket(servers[-1].socket, server_side=True)
        threading.Thread(target=servers[-1].serve_forever, daemon=True).start()
        return f"https://127.0.0.1:{servers[-1].server_port}"

    try:
        yield serve_tls
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "no-trusted-ca"])
def test_a_key_set_over_https_is_read_from_a_certificate_a_trusted_ca_signed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trusted: bool
) -> None:
    cert, key = self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    if trusted:  # as the system's CAs (OpenSSL reads SSL_CERT_FILE as it makes a default context)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    new_container()
    with _tls_server(tls) as serve_tls:
        issuer = Issuer(serve_tls)
        result = sign(issuer.url)(token("k1"))
    assert result["statusCode"] == (200 if trusted else 503), result
    assert issuer.requests == trusted  # untrusted: refused in the handshake, before any request


@pytest.mark.parametrize(
    ("userinfo", "authorization"),
    [("", None), ("app:p%40ss-w0rd@", "Basic " + base64.b64encode(b"app:p@ss-w0rd").decode())],
    ids=["open", "with-password"],
)
def test_a_key_set_is_read_through_the_proxy_the_environment_names(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tunnel_proxy: Callable[..., TunnelProxy],
    output: Output,
    userinfo: str,
    authorization: str | None,
) -> None:
    # GIVEN an issuer whose key set is reached through an http:// proxy (a VPC's way out), as the callback reaches
    # VOD's API: its tunnel for the issuer's host (which this one sends to the issuer on loopback)
    cert, key = self_signed(tmp_path, ("id.example.com",))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    new_container()
    with _tls_server(tls) as serve_tls:
        issuer = Issuer(serve_tls)
        proxy = tunnel_proxy(urlsplit(issuer.url).port, authorization)
        url = "https://id.example.com/.well-known/jwks.json"
        result = sign(url, HTTPS_PROXY=f"http://{userinfo}{proxy.address}")(token("k1"))
    # THEN the set is read through it, its password sent to the proxy only, and in no log line
    assert result["statusCode"] == 200, result
    assert issuer.requests == 1 and [target for target, _ in proxy.tunnels] == ["id.example.com:443"]
    assert proxy.tunnels[0][1].get("Proxy-Authorization") == authorization
    assert "p@ss-w0rd" not in output.text() and "p%40ss-w0rd" not in output.text()


@pytest.mark.parametrize(
    ("proxy", "said"),
    [
        ("socks5://127.0.0.1:1080", "must be an http:// proxy (the issuer's key set is reached through its tunnel)"),
        ("http:/user:hunter2-secret@proxy.internal:3128", "must be http://host[:port]"),  # a slash missing
    ],
)
def test_a_proxy_the_key_set_cannot_be_read_through_fails_the_cold_start(proxy: str, said: str) -> None:
    jwks = {"AUTH_JWT_SECRET": "", "AUTH_JWT_JWKS_URL": "https://id.example.com/jwks", "AUTH_JWT_ISSUER": ISSUER}
    with pytest.raises(ConfigError) as refused:
        load_sign_settings({**SIGN_ENV, **jwks, "HTTPS_PROXY": proxy})
    assert said in str(refused.value) and "hunter2" not in str(refused.value)


def test_an_issuer_that_does_not_answer_is_a_503(output: Output) -> None:
    url = f"http://127.0.0.1:{closed_loopback_port()}/jwks.json"
    result = sign(url)(token("k1"))
    assert (result["statusCode"], response_json(result)["error"]["code"]) == (503, "issuer_keys_unavailable")


@pytest.fixture
def short_lived_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "JWKS_LIFESPAN_SECONDS", 0.05)  # read again at each request 50 ms apart
    monkeypatch.setattr(auth, "JWKS_COOLDOWN_SECONDS", 0)


def test_in_an_outage_the_last_set_read_stays_in_use_and_the_issuer_is_asked_once_a_pause(
    issuer: Issuer, short_lived_set: None
) -> None:
    call = sign(issuer.url)
    assert call(token("k1"))["statusCode"] == 200
    issuer.answer = (503, b"down")
    statuses: list[int] = []
    for _ in range(5):
        time.sleep(0.06)  # past the set's lifespan: each request would read it
        statuses.append(call(token("k2", sub=f"u{len(statuses)}"))["statusCode"])
    assert statuses == [200] * 5  # the last set read still verifies its keys' tokens
    assert issuer.requests == 2  # the read that failed, then none within JWKS_FAILURE_PAUSE_SECONDS
    # A kid the last set lacks cannot be told from a key the issuer added meanwhile: a 503, not a 401
    result = call(token("k3"))
    assert (result["statusCode"], response_json(result)["error"]["code"]) == (503, "issuer_keys_unavailable")


def test_after_an_outage_a_kid_no_set_has_is_a_401_again(
    issuer: Issuer, short_lived_set: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "JWKS_FAILURE_PAUSE_SECONDS", 0.05)
    call = sign(issuer.url)
    issuer.answer = (500, b"oops")
    assert call(token("k1"))["statusCode"] == 503
    issuer.answer = None  # the issuer is back
    time.sleep(0.06)
    assert call(token("k1", sub="back"))["statusCode"] == 200
    result = call(token("k9"))  # read again, and not in the set: the token is refused, not retried
    assert (result["statusCode"], response_json(result)["error"]["code"]) == (401, "invalid_token")


def test_in_a_long_outage_a_set_older_than_the_stale_limit_is_no_longer_trusted(
    issuer: Issuer, short_lived_set: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The issuer may have removed a key meanwhile (one that leaked): its tokens verify no longer than that
    monkeypatch.setattr(auth, "JWKS_STALE_SECONDS", 1)
    monkeypatch.setattr(auth, "JWKS_FAILURE_PAUSE_SECONDS", 0)
    call = sign(issuer.url)
    assert call(token("k1"))["statusCode"] == 200
    issuer.answer = (503, b"down")
    time.sleep(0.06)  # past the set's lifespan: read again, which fails, and the last set serves
    assert call(token("k1", sub="early"))["statusCode"] == 200 and issuer.requests == 2
    time.sleep(1.1)
    result = call(token("k1", sub="late"))
    assert (result["statusCode"], response_json(result)["error"]["code"]) == (503, "issuer_keys_unavailable")


def test_in_an_outage_before_any_set_was_read_the_issuer_is_asked_once_a_pause(
    issuer: Issuer, short_lived_set: None
) -> None:
    issuer.answer = (500, b"oops")
    call = sign(issuer.url)
    assert [call(token("k1", sub=f"u{n}"))["statusCode"] for n in range(5)] == [503] * 5
    assert issuer.requests == 1


def test_concurrent_first_requests_read_the_set_once(issuer: Issuer) -> None:
    call = sign(issuer.url)
    answers: list[int] = []
    threads = [
        threading.Thread(target=lambda n=n: answers.append(call(token("k1", sub=f"u{n}"))["statusCode"]))
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (answers, issuer.requests) == ([200] * 8, 1)


def test_the_uploads_function_verifies_with_the_same_setting(issuer: Issuer) -> None:
    settings = load_uploads_settings(
        {"AUTH_JWT_JWKS_URL": issuer.url, "AUTH_JWT_ISSUER": ISSUER, "VOD_CONTEXT_KEY": KEYS[0]}
    )
    check_key(settings.auth)
    bearer = {"Authorization": f"Bearer {token('k2', sub='bob')}"}
    request = request_from_event(http_event("GET", "/uploads", headers=bearer), "r-1")
    assert authenticate(request, settings.auth, lambda: NOW).user_id == "bob"
