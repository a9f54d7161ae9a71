"""shared.hs_jwt decides exactly as PyJWT does (shared.auth.decode_with_pyjwt, the referee) on 12,000
generated tokens, valid and hostile, under randomly drawn settings: same claims, or the same reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared import hs_jwt
from shared.auth import decode_with_pyjwt
from shared.config import ConfigError
from shared.hs_jwt import TokenRejected
from tests.conftest import SIGN_ENV

TOKENS = 12_000
KEYS = [bytes(random.Random(n).randrange(33, 127) for _ in range(64)) for n in range(3)]
ALGORITHM_SETS = [("HS256",), ("HS256", "HS384", "HS512"), ("HS512",), ("HS384", "HS256")]
AUDIENCES = [None, None, ("vod-upload",), ("app",), ("web", "app")]
ISSUERS = [None, None, ("https://issuer.example",), ("other",), ("https://issuer.example", "other")]
USER_CLAIMS = ["sub", "sub", "oid"]
ABSENT = object()
JUNK = "!+/ =.~*\x00é"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _pick(rng: random.Random, common: Any, *rare: Any, p: float = 0.8) -> Any:
    return common if rng.random() < p or not rare else rng.choice(rare)


def _header(rng: random.Random, algorithms: tuple[str, ...]) -> dict[str, Any]:
    header: dict[str, Any] = {"typ": "JWT"}
    alg = _pick(rng, rng.choice(algorithms), "HS384", "none", "RS256", "", None, 1, ["HS256"], "hs256", ABSENT, p=0.9)
    if alg is not ABSENT:
        header["alg"] = alg
    if rng.random() < 0.1:
        header["kid"] = rng.choice(["k1", 7, None, ["k"]])
    if rng.random() < 0.1:
        header["crit"] = rng.choice([["b64"], [], "b64", [1], ["exp"], ["b64", "b64"]])
    if rng.random() < 0.1:
        header["b64"] = rng.choice([True, False, "false", 0])
    return header


def _claims(rng: random.Random, audience: tuple[str, ...] | None, issuer: tuple[str, ...] | None) -> dict[str, Any]:
    values = {
        "sub": _pick(rng, "alice", "", 123, None, ["a"], "ü\u2028", ABSENT, p=0.9),
        "exp": _pick(rng, 1_900_000_000, 1.5e9, "tomorrow", None, True, ABSENT, p=0.9),
        "aud": _pick(
            rng,
            rng.choice(audience) if audience else ABSENT,
            "vod-upload",
            ["app", "x"],
            ["x", "web"],
            [],
            [1],
            [rng.choice(audience) if audience else "x", 5],
            5,
            "",
            None,
            ABSENT,
            p=0.7,
        ),
        "iss": _pick(
            rng,
            rng.choice(issuer) if issuer else ABSENT,
            "https://issuer.example",
            "other",
            "other/",
            5,
            ["other"],
            None,
            ABSENT,
            p=0.7,
        ),
        "oid": _pick(rng, "0a1b-2c", ABSENT, 7, None, "", p=0.6),
        "jti": _pick(rng, ABSENT, "j-1", 5, None, p=0.8),
        "nbf": _pick(rng, ABSENT, 1_900_000_000, "soon", p=0.8),
        "iat": _pick(rng, ABSENT, 0, "x", p=0.8),
    }
    return {name: value for name, value in values.items() if value is not ABSENT}


def _json(rng: random.Random, value: dict[str, Any]) -> bytes:
    form = rng.random()
    if form < 0.95:
        return json.dumps(value, separators=rng.choice([(",", ":"), (", ", ": ")])).encode()
    return rng.choice(
        [
            b"[1, 2]",
            b'"text"',
            b"{",
            b"\xff\xfe",
            json.dumps(value).encode("utf-16"),
            b"[" * 2000 + b"]" * 2000,
            b'{"a": NaN}',
            b"",
        ]
    )


def _mutate(rng: random.Random, token: str) -> str:
    parts = token.split(".")
    i = rng.randrange(len(parts))
    kind = rng.randrange(9)
    if kind == 0:  # padding, right or wrong
        parts[i] += "=" * rng.randint(1, 3)
    elif kind == 1:
        parts[i] += "=" * (-len(parts[i]) % 4)
    elif kind == 2 and parts[i]:  # junk inside a segment
        at = rng.randrange(len(parts[i]))
        parts[i] = parts[i][:at] + rng.choice(JUNK) + parts[i][at:]
    elif kind == 3 and parts[i]:  # one character changed
        at = rng.randrange(len(parts[i]))
        parts[i] = parts[i][:at] + rng.choice("AQgw_-") + parts[i][at + 1 :]
    elif kind == 4:
        parts.pop(i)
    elif kind == 5:
        parts.insert(i, rng.choice(["", "e30", "x"]))
    elif kind == 6:
        parts[i] = ""
    elif kind == 7 and parts[i]:  # the last, non-canonical bits of a segment
        parts[i] = parts[i][:-1] + rng.choice("BCDEFGH")
    else:
        return token[: rng.randrange(len(token) + 1)]
    return ".".join(parts)


Case = tuple[str, bytes, tuple[str, ...], tuple[str, ...] | None, tuple[str, ...] | None, str]


def _case(rng: random.Random) -> Case:
    key, algorithms, audience, issuer, user_claim = (
        rng.choice(KEYS),
        rng.choice(ALGORITHM_SETS),
        rng.choice(AUDIENCES),
        rng.choice(ISSUERS),
        rng.choice(USER_CLAIMS),
    )
    header = _header(rng, algorithms)
    signing_input = f"{_b64(_json(rng, header))}.{_b64(_json(rng, _claims(rng, audience, issuer)))}"
    alg = header.get("alg")
    digest = hs_jwt.HASHES[alg if isinstance(alg, str) and alg in hs_jwt.HASHES else rng.choice(sorted(hs_jwt.HASHES))]
    signed_with = key if rng.random() < 0.9 else rng.choice(KEYS)
    token = f"{signing_input}.{_b64(hmac.new(signed_with, signing_input.encode(), digest).digest())}"
    if rng.random() < 0.2:
        token = _mutate(rng, token)
    return token, key, algorithms, audience, issuer, user_claim


def _verdict(
    decode: Any, token: str, key: bytes, algorithms: tuple[str, ...], aud: Any, iss: Any, user_claim: str
) -> tuple[str, Any]:
    try:
        return "accepted", decode(token, key, algorithms, audience=aud, issuer=iss, user_claim=user_claim)
    except TokenRejected as exc:
        return "rejected", exc.reason


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_hs_jwt_decides_as_pyjwt_on_generated_tokens() -> None:
    rng = random.Random(20261201)
    verdicts: Counter[str] = Counter()
    for n in range(TOKENS):
        case = _case(rng)
        ours, referee = _verdict(hs_jwt.decode, *case), _verdict(decode_with_pyjwt, *case)
        assert ours == referee, f"token {n}: {case[0]!r} with {case[2:]}"
        verdicts[ours[0] if ours[0] == "accepted" else ours[1]] += 1
    # The generator reaches every decision, and in numbers: the agreement above is not vacuous.
    assert verdicts["accepted"] > 1000, verdicts
    reasons = {"malformed token", "algorithm not allowed", "bad signature", "wrong audience", "wrong issuer"}
    assert all(verdicts[reason] > 100 for reason in reasons), verdicts
    missing = {"missing claim exp", "missing claim sub", "missing claim oid", "missing claim aud", "missing claim iss"}
    assert missing <= set(verdicts), verdicts


@pytest.mark.parametrize(
    ("secret", "refused"),
    [
        (b"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n", True),
        (b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA user@host", True),
        (b' {"kty": "oct", "k": "c2VjcmV0"}', True),
        (b'{"kty": "oct", "k": "c2VjcmV0"', True),  # a JWK cut short in the copying: not JSON, still refused
        (KEYS[0], False),
        (hashlib.sha256(b"random").hexdigest().encode(), False),
        # Ordinary secrets that merely start like JSON or DER:
        (b'"quoted-secret-0123456789abcdef0123456789"', False),
        (b"{not-json-0123456789abcdef0123456789abcdef", False),
        (b"0T" + b"a" * 84, False),
        (b"[1, 2, 3]", True),  # any JSON array or object: broader than PyJWT, never narrower
        (b"[" * 5000, True),  # nested deeper than it reads, on every interpreter
        (b"[" * 501, True),
        (b"[" * 400 + b"]" * 400, True),
        (b"[" * 400, False),  # not JSON, and shallow enough to tell
    ],
)
def test_a_key_shaped_secret_is_refused(secret: bytes, refused: bool) -> None:
    assert (hs_jwt.refused_secret(secret) is not None) == refused


def _key_shaped() -> list[bytes]:
    """Secrets PyJWT's HMAC refuses: public keys and certificates in every encoding, JWKs."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.x509.oid import NameOID

    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys: list[ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey] = [
        ec_key,
        rsa.generate_private_key(65537, 2048),
        ed25519.Ed25519PrivateKey.generate(),
    ]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vod")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ec_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(ec_key, hashes.SHA256())
    )
    public = [k.public_key() for k in keys]
    shaped = [cert.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.DER)]
    for key in public:
        shaped += [
            key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
            key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
        ]
    jwk = {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}
    shaped += [json.dumps(value).encode() for value in (jwk, [jwk], {"keys": [jwk]})]
    shaped += [b"\xef\xbb\xbf " + json.dumps(jwk).encode(), json.dumps(jwk, indent=2).encode()]
    # JSON a strict reader gives up on (an int over 4,300 digits), with the member's name escaped
    shaped.append(b'{"k\\u0074y": "oct", "k": "c2VjcmV0", "n": ' + b"1" * 5000 + b"}")
    # RFC 4716, as `ssh-keygen -e` writes a public key; and PEM labels with four dashes and a space
    blob = public[2].public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).split()[1]
    for label in (b"SSH2 PUBLIC KEY", b"PUBLIC KEY"):
        shaped.append(b"---- BEGIN %s ----\n%s\n---- END %s ----\n" % (label, blob, label))
    return shaped


def test_every_secret_pyjwt_refuses_is_refused() -> None:
    from jwt.algorithms import HMACAlgorithm
    from jwt.exceptions import InvalidKeyError

    def pyjwt_refuses(key: bytes) -> bool:
        try:
            HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(key)
        except InvalidKeyError:
            return True
        return False

    shaped = _key_shaped()
    assert all(pyjwt_refuses(key) for key in shaped)  # the cases are real
    assert [key[:40] for key in shaped if hs_jwt.refused_secret(key) is None] == []
    ordinary = [*KEYS, hashlib.sha256(b"x").hexdigest().encode(), base64.b64encode(bytes(range(48)))]
    assert [key for key in ordinary if pyjwt_refuses(key) or hs_jwt.refused_secret(key)] == []


@pytest.mark.parametrize("function", ["sign", "uploads"])
def test_a_public_key_as_the_shared_secret_fails_the_cold_start(
    function: str, vod_function: Callable[..., Any], tmp_path: Path
) -> None:
    # A public key is public: as an HMAC secret, anyone could mint tokens with it (algorithm confusion).
    pem = _key_shaped()[2].decode()
    env = {**SIGN_ENV, "AUTH_JWT_SECRET": pem, "DATABASE_URL": f"sqlite:///{tmp_path}/vod.sqlite3"}
    with pytest.raises(ConfigError, match="AUTH_JWT_SECRET: looks like a PEM key"):
        vod_function(function, env=env)


def test_config_offers_exactly_the_algorithms_hs_jwt_verifies() -> None:
    # config keeps its own list so that functions without auth never import hs_jwt at cold start
    from shared import config

    assert {alg: hashlib.new(name).digest_size for alg, name in hs_jwt.HASHES.items()} == config._SYMMETRIC_ALGS
