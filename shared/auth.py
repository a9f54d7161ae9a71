"""Who is calling: a verified JWT, a header set by a trusted API gateway, or (explicitly) nobody."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from shared import hs_jwt
from shared.config import AuthSettings, ConfigError, ProxySettings, known_secrets
from shared.digests import compare_digest
from shared.errors import IssuerKeysUnavailable, Unauthorized, UserIdTooLong
from shared.hs_jwt import TokenRejected
from shared.http.body import finite_number
from shared.http.model import Request
from shared.records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

REALM = "vod-upload"
_INFINITY = float("inf")
MAX_IDENTITY = 200  # a first bound on any caller's id; sealing it (source_context.MAX_USER_ID) allows less


class Principal(Record):
    user_id: str
    # The moment (Unix seconds) from which its credential is refused: a bearer token's exp and the leeway (None: the
    # credential says no end). What the sign function signs for this caller expires then at the latest.
    until: int | None = None


def _challenge(error: str | None = None, description: str | None = None) -> dict[str, str]:
    parts = [f'Bearer realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    return {"WWW-Authenticate": ", ".join(parts)}


def _invalid_token(description: str) -> Unauthorized:
    return Unauthorized(
        f"invalid token: {description}", code="invalid_token", headers=_challenge("invalid_token", description)
    )


def _bearer_token(request: Request) -> str:
    if request.headers.is_ambiguous("authorization"):  # Authorization and authorization: which one counts?
        raise Unauthorized(
            "send one Authorization header",
            code="invalid_request",
            headers=_challenge("invalid_request", "more than one Authorization header"),
        )
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("send Authorization: Bearer <token>", code="missing_credentials", headers=_challenge())
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "Authorization must be 'Bearer <token>'",
            code="invalid_request",
            headers=_challenge("invalid_request", "expected a Bearer token"),
        )
    if not token.isascii():  # a JWT is base64url and dots; anything else is not worth decoding
        raise _invalid_token("malformed token")
    return token.strip()


@functools.cache
def _id_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(What an id must not hold, what shows as nothing), compiled for the first id outside ASCII: ~2.5 ms, a tenth
    of a cold start, for ids most apps never issue.

    Not in an id: control characters (C0, DEL, C1), line and paragraph separators, the bidi embeddings, overrides
    and isolates that make text show other than it is, zero-width spaces, joiners and invisible operators that no
    name needs (U+200B, U+2060-2064, U+FEFF), soft hyphens, and lone surrogates (no UTF-8 form). The bidi marks
    (U+200E, U+200F, U+061C) stay: right-to-left names use them to show digits and Latin letters in order.
    Not str.isprintable(): it also refuses the joiners of emoji and of Persian words (U+200D, U+200C), spaces
    other than ASCII's, and every character newer than the interpreter's Unicode tables. Showing as nothing:
    spaces, and the format characters, fillers, variation selectors and tags that draw no glyph."""
    return (
        re.compile(
            "[\x00-\x1f\x7f-\x9f\xad\u200b\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ud800-\udfff]"
        ),
        re.compile(
            "[\\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2060-\u206f\u2800\u3164"
            "\ufe00-\ufe0f\uffa0\ufff9-\ufffb\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
        ),
    )


def _user_id(claim: object, source: str, refuse: Callable[[str], Unauthorized] = _invalid_token) -> str:
    if not isinstance(claim, str) or not claim.strip():
        raise refuse(f"{source} must be a non-empty string")
    holds = f"{source} must not hold control characters, line separators, bidi overrides or zero-width spaces"
    if not claim.isascii():
        not_in_an_id, invisible = _id_patterns()
        if not_in_an_id.search(claim):
            raise refuse(holds)
        if not invisible.sub("", claim):
            raise refuse(f"{source} must hold a visible character")
    elif not claim.isprintable():  # ASCII, not blank (above): printable is visible
        raise refuse(holds)
    if len(claim) > MAX_IDENTITY:  # a well-formed id, only too long to seal: the same answer as one just too long
        raise UserIdTooLong(f"user id is too long for sourceContext (got {len(claim)} characters)")
    return claim


def _bad_gateway_identity(description: str) -> Unauthorized:
    # Not the client's token (there is none): what the gateway passed on as the user cannot be one.
    return Unauthorized(f"the gateway's {description}", code="invalid_identity", headers=_challenge())


def _shared_secret(settings: AuthSettings) -> bool:
    """HS* (a shared secret, verified by shared.hs_jwt) rather than a public key: config pins one family."""
    return settings.jwt_algorithms[0] in hs_jwt.HASHES


@functools.lru_cache(maxsize=1024)
def _verified_claims(token: str, settings: AuthSettings) -> Mapping[str, Any]:
    """The claims of a token whose signature, algorithm, audience and issuer check out.

    Cached per warm container: a client asks for a signature before every VOD call with the same
    bearer token. Failures raise, so only valid tokens are kept; time claims are checked on every
    use, outside the cache."""
    if settings.jwt_jwks_url is not None:
        key = _issuer_key(token, settings.jwt_jwks_url, settings.jwt_jwks_proxy)
        try:
            claims = decode_with_pyjwt(
                token,
                key,
                settings.jwt_algorithms,
                audience=settings.jwt_audiences,
                issuer=settings.jwt_issuers,
                user_claim=settings.jwt_user_claim,
            )
        except TokenRejected as exc:
            raise _invalid_token(exc.reason) from None
        return MappingProxyType(claims)
    assert settings.jwt_key is not None  # guaranteed by config for AUTH_MODE=jwt
    # Algorithms come from config, never from the token header; config pins them to the key's family.
    decode = hs_jwt.decode if _shared_secret(settings) else decode_with_pyjwt
    # During a rotation, the previous key: for a token the current key's signature does not verify
    keys = [key for key in (settings.jwt_key, settings.jwt_previous_key) if key is not None]
    for key in keys:
        try:
            claims = decode(
                token,
                key.reveal().encode(),
                settings.jwt_algorithms,
                audience=settings.jwt_audiences,
                issuer=settings.jwt_issuers,
                user_claim=settings.jwt_user_claim,
            )
        except TokenRejected as exc:
            # A signature is checked before the claims: another reason is the verdict of the key that signed it
            if exc.reason != "bad signature" or key is keys[-1]:
                raise _invalid_token(exc.reason) from None
        else:
            return MappingProxyType(claims)
    raise AssertionError("unreachable")


# The issuer's key set (AUTH_JWT_JWKS_URL), as PyJWT's PyJWKClient keeps it: read again when it is older than
# this, and for a kid it lacks (a key the issuer has just rotated in) at most once per cooldown, so that tokens
# naming made-up kids cost the issuer one request per cooldown, not one each.
JWKS_LIFESPAN_SECONDS = 300
JWKS_COOLDOWN_SECONDS = 30
JWKS_TIMEOUT_SECONDS = 2  # per connect and per read: a slow issuer is a 503, not SCF's timeout
JWKS_DEADLINE_SECONDS = 4  # the whole read (an answer trickled in, each part within the timeout): then it is cut
JWKS_MAX_BYTES = 1 << 20  # a key set is a few KiB: more is not one
# After a failed read, none for this long (an outage costs the issuer a request per pause, not one per token).
# Meanwhile, and while the outage lasts, the last set read stays in use, up to JWKS_STALE_SECONDS after that read.
# PyJWT keeps what a failed read gave back (that last set) for a lifespan as it keeps any set: so in an outage the
# issuer is asked once a lifespan (or for a kid the set lacks), and the last set may serve a lifespan past the limit.
JWKS_FAILURE_PAUSE_SECONDS = 5
JWKS_STALE_SECONDS = 3600


@functools.cache
def _jwks_client(url: str, proxy: ProxySettings | None = None) -> Any:
    import threading

    import jwt  # public keys only: PyJWT is imported for them anyway

    class IssuerKeys(jwt.PyJWKClient):
        lock = threading.Lock()  # one read at a time: concurrent first requests make one
        failed_at: float | None = None
        last: tuple[Any, float] | None = None  # the last set read, and when

        def fetch_data(self) -> Any:
            now = time.monotonic()
            if self.failed_at is not None and now - self.failed_at < JWKS_FAILURE_PAUSE_SECONDS:
                return self._last_or(jwt.PyJWKClientConnectionError("its last read failed: not read again yet"))
            try:  # anything the issuer answers: not only the errors expected
                data = _signing_key_set(_read_key_set(self.uri, proxy))
            except Exception as exc:
                self.failed_at = now
                return self._last_or(exc)
            self.failed_at, self.last = None, (data, now)
            self._last_successful_fetch = now  # PyJWT's cooldown counts from a read, as its own fetch_data has it
            return data

        def _last_or(self, error: Exception) -> Any:
            if self.last is not None and time.monotonic() - self.last[1] < JWKS_STALE_SECONDS:
                return self.last[0]
            raise error

    return IssuerKeys(
        url, lifespan=JWKS_LIFESPAN_SECONDS, timeout=JWKS_TIMEOUT_SECONDS, cooldown_duration=JWKS_COOLDOWN_SECONDS
    )


def _signing_key_set(data: Any) -> Any:
    """`data` as PyJWT's key set (PyJWKSet), if it is one with a key to verify tokens by: else its read counts as
    failed, so that the last set read stays in use (an issuer answering `[]` or `{}` during an outage, say)."""
    import jwt

    if not isinstance(data, dict):
        raise jwt.PyJWKClientError("The JWKS endpoint did not return a JSON object")
    key_set = jwt.PyJWKSet.from_dict(data)
    if not any(key.public_key_use in ("sig", None) and key.key_id for key in key_set.keys):  # as PyJWKClient's
        raise jwt.PyJWKClientError("The JWKS endpoint did not contain any signing keys")
    return key_set


def _read_key_set(url: str, proxy: ProxySettings | None = None) -> Any:
    """The JSON the issuer answers at `url`, as PyJWKClient.fetch_data reads it (no redirect followed: a jwks_uri
    answers itself, and a redirect could hand the function someone else's keys), within JWKS_DEADLINE_SECONDS and
    JWKS_MAX_BYTES. PyJWT bounds each socket read only: a slow name lookup (which no socket timeout bounds; SCF's
    DNS can take seconds), or an answer (its headers too) trickled in, would hold the request, and every other
    waiting for the set, until SCF's timeout. So it is read in a thread, waited for until the deadline."""
    import json
    import threading

    expired, opened = threading.Event(), []  # type: ignore[var-annotated]
    outcome: list[bytearray | BaseException] = []

    def read() -> None:
        try:
            outcome.append(_read_bounded(_watched_opener(expired, opened, proxy), url, proxy))
        except BaseException as exc:  # handed to the request's thread
            outcome.append(exc)

    reader = threading.Thread(target=read, name="jwks-read", daemon=True)
    reader.start()
    reader.join(JWKS_DEADLINE_SECONDS)
    if not outcome:  # its connection shut down, the thread ends (a name lookup: once it returns)
        _cut(expired, opened)
        raise TimeoutError(f"the key set took more than {JWKS_DEADLINE_SECONDS} s to read")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return json.loads(outcome[0])


def _cut(expired: Any, opened: list[Any]) -> None:
    import contextlib
    import socket

    expired.set()
    for sock in opened:
        with contextlib.suppress(OSError):  # closed already
            sock.shutdown(socket.SHUT_RDWR)


def _watched_opener(expired: Any, opened: list[Any], proxy: ProxySettings | None = None) -> Any:
    """urllib's opener, following no redirect, whose connections' sockets are noted in `opened` (for _cut), through
    `proxy` (its tunnel) or direct: never through what urllib itself would read from the environment."""
    import http.client
    import ssl
    import urllib.request

    def watched(connection: type[http.client.HTTPConnection]) -> Any:
        class Watched(connection):  # type: ignore[valid-type,misc]
            def connect(self) -> None:
                super().connect()
                opened.append(self.sock)
                if expired.is_set():
                    raise TimeoutError("connected past the deadline")

        return Watched

    class Plain(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(watched(http.client.HTTPConnection), req)

    class Tls(urllib.request.HTTPSHandler):  # urllib's default context, as PyJWT's without an ssl_context
        def https_open(self, req: Any) -> Any:
            return self.do_open(watched(http.client.HTTPSConnection), req, context=ssl.create_default_context())

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None  # the 3xx is then an HTTPError

    via = {} if proxy is None else {"https": f"http://{_bracketed(proxy.host)}:{proxy.port}"}
    return urllib.request.build_opener(urllib.request.ProxyHandler(via), Plain, Tls, NoRedirect)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _read_bounded(opener: Any, url: str, proxy: ProxySettings | None = None) -> bytearray:
    import http.client
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url)  # noqa: S310 - https://, or http:// on loopback (checked at cold start)
    if proxy is not None and proxy.authorization is not None:  # urllib sends it with the CONNECT, not to the issuer
        request.add_header("Proxy-Authorization", proxy.authorization.reveal())
    try:
        with opener.open(request, timeout=JWKS_TIMEOUT_SECONDS) as answer:
            body = bytearray()
            while chunk := answer.read1(1 << 16):
                body += chunk
                if len(body) > JWKS_MAX_BYTES:
                    raise ValueError(f"the key set is larger than {JWKS_MAX_BYTES} bytes")
            if answer.length:  # the connection closed before all its Content-Length came (PyJWT's read says so too)
                raise http.client.IncompleteRead(bytes(body), answer.length)
            return body
    except urllib.error.HTTPError as exc:
        exc.close()
        raise


def _issuer_key(token: str, url: str, proxy: ProxySettings | None = None) -> Any:
    """The key of the issuer's key set that `token` names by its `kid` (RFC 7517; every OpenID provider's jwks_uri),
    as PyJWT's PyJWK, whose algorithm the token's must be: IssuerKeysUnavailable when the set cannot be read, 401
    when the token names no key of it."""
    import jwt

    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        raise _invalid_token("malformed token") from None
    if not isinstance(kid, str) or not kid:
        raise _invalid_token("names no key (kid): the issuer's key set is looked up by it")
    client = _jwks_client(url, proxy)
    with client.lock:
        try:
            key = client.match_kid(client.get_signing_keys(), kid)
        except Exception as exc:  # not read, not a key set, no signing key in it...
            raise _keys_unavailable(exc) from None
        if key is None:
            try:  # read again (once per cooldown): a key the issuer has just added
                key = client.get_signing_key(kid)
            except jwt.PyJWKClientError as exc:  # not in it, unless it could not be read
                if isinstance(exc, jwt.PyJWKClientConnectionError) or client.failed_at is not None:
                    raise _keys_unavailable(exc) from None
                raise _invalid_token("signed with a key the issuer does not publish (kid)") from None
            except Exception as exc:
                raise _keys_unavailable(exc) from None
    return key


def _keys_unavailable(error: Exception) -> IssuerKeysUnavailable:
    from shared.redaction import redact  # here: only a read of the key set that failed needs it

    # Masked as a hook's error is: a library's message may quote a proxy's URL, password and all
    return IssuerKeysUnavailable(redact(f"AUTH_JWT_JWKS_URL: {type(error).__name__}: {error}", known_secrets())[:300])


def decode_with_pyjwt(
    token: str,
    key: Any,
    algorithms: Sequence[str],
    *,
    audience: Sequence[str] | None = None,
    issuer: Sequence[str] | None = None,
    user_claim: str = "sub",
) -> dict[str, Any]:
    """PyJWT's verdict, in TokenRejected's words: the verifier for public keys (RS*, ES*), and the
    referee shared.hs_jwt is tested against. Imported here: only public-key deployments pay for it."""
    import jwt

    issuers = None if issuer is None else tuple(issuer)  # one of them (a tuple: never PyJWT 2.10.0's substring match)

    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=list(algorithms),
            audience=None if audience is None else list(audience),  # any one of them
            issuer=issuers,
            options={
                "require": ["exp", user_claim],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": True,  # also without an audience: then a token naming one is refused
                "verify_iss": issuer is not None,
                "enforce_minimum_key_length": True,  # checked at the cold start (check_key): never a warning
            },
        )
    except jwt.InvalidAudienceError:
        raise TokenRejected("wrong audience") from None
    except jwt.InvalidIssuerError:
        raise TokenRejected("wrong issuer") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenRejected(f"missing claim {exc.claim}") from None
    except jwt.InvalidAlgorithmError:
        raise TokenRejected("algorithm not allowed") from None
    except jwt.InvalidSignatureError:
        raise TokenRejected("bad signature") from None
    except jwt.exceptions.InvalidSubjectError:
        raise TokenRejected("sub must be a string") from None
    except jwt.exceptions.InvalidJTIError:
        raise TokenRejected("jti must be a string") from None
    except (jwt.PyJWTError, TypeError, ValueError):  # also a key PyJWT cannot use for the token's alg
        raise TokenRejected("malformed token") from None
    return claims


def _from_jwt(request: Request, settings: AuthSettings, now: float) -> Principal:
    claims = _verified_claims(_bearer_token(request), settings)
    try:
        user = _user_id(claims.get(settings.jwt_user_claim), settings.jwt_user_claim)
    except UserIdTooLong:  # a 403 only for a token good now: an expired one is a 401 (a client renews on it)
        _check_times(claims, now, settings.jwt_leeway_seconds)
        raise
    request.notes["user"] = user  # signed by the issuer: on the request's line, also when its time is refused
    until = _check_times(claims, now, settings.jwt_leeway_seconds)  # the injected clock: tests are exact
    return Principal(user, until)


def token_window(token: str, settings: AuthSettings) -> tuple[str, float, int] | None:
    """(user id, since, until) for a bearer token `_from_jwt` accepts exactly while since <= now < until (None: one
    it refuses at any time, or any doubt): what the sign function's express lane keeps of a token it has seen."""
    if not token or token != token.strip() or not token.isascii():
        return None
    try:
        claims = _verified_claims(token, settings)
        user_id = _user_id(claims.get(settings.jwt_user_claim), settings.jwt_user_claim)
    except Exception:  # refused: the general path says why
        return None
    leeway = settings.jwt_leeway_seconds
    moments = [finite_number(claims["exp"]) if "exp" in claims else None]
    moments += [finite_number(claims[claim]) for claim in ("nbf", "iat") if claim in claims]
    if None in moments:
        return None
    exp, *starts = moments
    # _check_times' tests, rearranged: int(exp) + leeway <= now refuses, and so does int(start) - leeway > now.
    since = max((int(start) - leeway for start in starts), default=-_INFINITY)  # type: ignore[arg-type]
    return user_id, since, int(exp) + leeway  # type: ignore[arg-type]


def _check_times(claims: Mapping[str, Any], now: float, leeway: int) -> int:
    """The moment from which the token is refused (as Principal.until), if it is not yet."""
    # NaN or Infinity (JSON's 1e999) would make every comparison false: a token that never expires.
    exp = finite_number(claims.get("exp"))
    if exp is None:
        raise _invalid_token("exp must be a finite number")
    # Whole seconds, as PyJWT reads them (int()): a fraction neither adds to a token's life nor takes from it
    if int(exp) + leeway <= now:
        raise _invalid_token("token has expired")
    for claim in ("nbf", "iat"):  # not before; issued at (in the future: not valid yet either, as in PyJWT)
        if claim not in claims:
            continue
        # Present: a JSON number (RFC 7519's NumericDate; null is refused, as by PyJWT, and so is "1700000000",
        # which PyJWT would read): said as such, so that no one looks for a clock that is off.
        moment = finite_number(claims[claim])
        if moment is None:
            raise _invalid_token(f"{claim} must be a finite number")
        if int(moment) - leeway > now:
            raise _invalid_token(f"token is not valid yet ({claim})")
    return int(exp) + leeway


def _from_gateway(request: Request, settings: AuthSettings) -> Principal:
    assert settings.gateway_secret is not None  # guaranteed by config for AUTH_MODE=gateway
    if request.headers.is_ambiguous(settings.gateway_user_header) or request.headers.is_ambiguous(
        settings.gateway_secret_header
    ):
        # X-User-Id and x-user-id both present: one may be the client's, passed through the gateway.
        raise Unauthorized(
            "the gateway's identity headers appear more than once", code="untrusted_gateway", headers=_challenge()
        )
    sent = request.headers.get(settings.gateway_secret_header, "").encode("utf-8", "surrogatepass")
    secrets = (settings.gateway_secret, settings.gateway_previous_secret)  # the previous one during a rotation
    # Only the gateway knows the secret: without it the user header could come from anyone.
    if not any(secret is not None and compare_digest(sent, secret.reveal().encode()) for secret in secrets):
        raise Unauthorized(
            "request did not come through the authenticating gateway", code="untrusted_gateway", headers=_challenge()
        )
    user = request.headers.get(settings.gateway_user_header)
    if user is None or not user.strip():
        raise Unauthorized(
            f"gateway sent no {settings.gateway_user_header} header", code="missing_credentials", headers=_challenge()
        )
    return Principal(_user_id(user, settings.gateway_user_header, _bad_gateway_identity))


def check_key(settings: AuthSettings) -> None:
    """At cold start: every configured algorithm can use the configured public key in this bundle (RS256
    needs the `cryptography` package; an EC key cannot verify RS256), so a misconfiguration fails the
    deploy instead of answering 401 to every valid token. (A shared secret is checked with the settings.)"""
    if settings.mode != "jwt" or _shared_secret(settings):
        return
    import jwt  # public keys only: PyJWT prepares (and so checks) them

    keys = {"AUTH_JWT_PUBLIC_KEY": settings.jwt_key, "AUTH_JWT_PUBLIC_KEY_PREVIOUS": settings.jwt_previous_key}
    algorithms = {}
    for name in settings.jwt_algorithms:  # also for the keys of AUTH_JWT_JWKS_URL, known at the first token only
        try:
            algorithms[name] = jwt.get_algorithm_by_name(name)
        except NotImplementedError:
            why = f"{name} needs the `cryptography` package in the bundle (add it to the function's requirements.in)"
            raise ConfigError([("AUTH_JWT_ALGORITHMS", why)]) from None
    for setting, secret in keys.items():
        if secret is None:
            continue
        key = secret.reveal()
        for name, algorithm in algorithms.items():
            try:
                # A key too small to trust (an RSA key under 2048 bits: RFC 7518 §3.3), which PyJWT only warns of
                short = algorithm.check_key_length(algorithm.prepare_key(key))
            except Exception as exc:  # InvalidKeyError, ValueError…; cryptography's UnsupportedAlgorithm (SM2)
                why = _unusable_key(key, name) or f"cannot be used with {name}: {type(exc).__name__}"
                raise ConfigError([(setting, why)]) from None
            if short:
                raise ConfigError([(setting, f"is too short for {name}: {short}")])


# The algorithms each kind of public key verifies (JWA, RFC 7518 §3.4 for the curves; RFC 8037 for EdDSA).
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512", "secp256k1": "ES256K"}
_RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")


def _unusable_key(key: str, algorithm: str) -> str | None:
    """Why a public key PyJWT refused for `algorithm` is unusable, in terms of what to change: the key, or
    AUTH_JWT_ALGORITHMS (an EC key under the default RS256, say); None when it is neither."""
    from cryptography.exceptions import UnsupportedAlgorithm  # PyJWT's public-key algorithms are built on it
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        public = load_pem_public_key(key.encode("utf-8"))
    except UnsupportedAlgorithm:
        return "is a kind of key no JWT algorithm verifies with (an SM2 key, say): use an RSA, EC or Ed25519 key"
    except (ValueError, TypeError):
        one_line = "\\n" in key and "\n" not in key.strip()  # as a CI secret often holds it
        return "is not a readable PEM public key" + (
            " (its line breaks written as \\n: it needs them)" if one_line else ""
        )
    fits: tuple[str, ...] = ()
    if isinstance(public, rsa.RSAPublicKey):
        kind, fits = "an RSA key", _RSA_ALGORITHMS
    elif isinstance(public, ec.EllipticCurvePublicKey):
        kind = f"an EC key on {public.curve.name}"
        fits = (_EC_ALGORITHMS[public.curve.name],) if public.curve.name in _EC_ALGORITHMS else ()
    elif isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        kind, fits = "an EdDSA key", ("EdDSA",)
    if not fits or algorithm in fits:
        return None  # a kind that does fit: PyJWT refused it for something else
    return f"is {kind}, which {algorithm} cannot use: set AUTH_JWT_ALGORITHMS to {' or '.join(fits)}"


def authenticate(request: Request, settings: AuthSettings, now: Callable[[], float]) -> Principal:
    if settings.mode == "jwt":
        return _from_jwt(request, settings, now())
    if settings.mode == "gateway":
        return _from_gateway(request, settings)
    return Principal("anonymous")
