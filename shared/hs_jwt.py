"""HS256/HS384/HS512 JWT verification: what `jwt.decode` (PyJWT) decides, without importing PyJWT.

Why: PyJWT's package import pulls in its JWKS client (urllib.request, http.client, ssl, email), about
as much as the rest of the sign function's cold start. The sign function verifies a shared-secret
token on most cold starts, so this module does that one job with the stdlib; PyJWT stays the verifier
for public keys (shared.auth imports it only then).

It accepts and rejects exactly as `jwt.decode(token, key, algorithms, audience=[...], issuer=(...),
options={require: [exp, the user's claim], verify_exp/nbf/iat: False, verify_aud: True, verify_iss: when given})`
does (the checks below follow PyJWT 2.x's order), and tests/unit/test_hs_jwt.py proves it against PyJWT on
more than 10,000 generated valid and hostile tokens. Time claims are shared.auth's job.
"""

from __future__ import annotations

import binascii
import json

from shared import b64
from shared.digests import compare_digest, hmac_digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

HASHES = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}  # shared.digests names
_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_SUPPORTED_CRIT = frozenset({"b64"})


class TokenRejected(Exception):
    """Why a token is refused, in the words shared.auth answers with (never the token or the key)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_MALFORMED = "malformed token"


def _segment(segment: bytes) -> bytes:
    """One base64url segment, strictly: unpadded or correctly padded, no characters outside the alphabet,
    and the canonical encoding of what it decodes to."""
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    if padding > 2 or (padding and len(segment) % 4) or len(stripped) % 4 == 1 or not _ALPHABET.issuperset(stripped):
        raise TokenRejected(_MALFORMED)
    try:
        decoded = b64.url_safe_decode(stripped + b"=" * (-len(stripped) % 4))
    except binascii.Error:
        raise TokenRejected(_MALFORMED) from None
    if b64.url_safe_encode(decoded).rstrip(b"=") != stripped:
        raise TokenRejected(_MALFORMED)
    return decoded


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise TokenRejected(_MALFORMED) from None
    if not isinstance(value, dict):
        raise TokenRejected(_MALFORMED)
    return value


def _check_header(header: dict[str, Any]) -> None:
    if "kid" in header and not isinstance(header["kid"], str):
        raise TokenRejected(_MALFORMED)
    if "crit" in header:
        crit = header["crit"]
        if not isinstance(crit, list) or not crit:
            raise TokenRejected(_MALFORMED)
        for extension in crit:
            if not isinstance(extension, str) or extension not in _SUPPORTED_CRIT or extension not in header:
                raise TokenRejected(_MALFORMED)
    if header.get("b64", True) is False:  # a detached payload (RFC 7797): never what a client sends us
        raise TokenRejected(_MALFORMED)


def _load(token: str) -> tuple[bytes, dict[str, Any], bytes, bytes]:
    """(signing input, header, payload, signature): every segment is decoded before any header is judged,
    in PyJWT's order."""
    raw = token.encode("utf-8", "surrogatepass")
    signing_input, dot, crypto_segment = raw.rpartition(b".")
    header_segment, dot2, payload_segment = signing_input.partition(b".")
    if not dot or not dot2:
        raise TokenRejected(_MALFORMED)
    header = _json_object(_segment(header_segment))
    # (PyJWT treats a b64=false header's payload apart; _check_header refuses such a token anyway.)
    return signing_input, header, _segment(payload_segment), _segment(crypto_segment)


def decode(
    token: str,
    key: bytes,
    algorithms: Sequence[str],
    *,
    audience: Sequence[str] | None = None,
    issuer: Sequence[str] | None = None,
    user_claim: str = "sub",
) -> dict[str, Any]:
    """The claims of `token` if it is signed with `key` by one of `algorithms` (HS* names only) and its
    claims check out (its `aud` names one of `audience`, its `iss` is one of `issuer`, it has `exp` and
    `user_claim`); TokenRejected otherwise."""
    signing_input, header, payload, signature = _load(token)
    _check_header(header)
    alg = header.get("alg")
    if not alg or alg not in algorithms:
        raise TokenRejected("algorithm not allowed")
    if not compare_digest(signature, hmac_digest(key, signing_input, HASHES[alg])):
        raise TokenRejected("bad signature")
    claims = _json_object(payload)
    _check_claims(claims, audience, issuer, user_claim)
    return claims


def _check_claims(
    claims: dict[str, Any], audience: Sequence[str] | None, issuer: Sequence[str] | None, user_claim: str
) -> None:
    for claim in ("exp", user_claim):
        if claims.get(claim) is None:
            raise TokenRejected(f"missing claim {claim}")
    if issuer is not None:
        if "iss" not in claims:
            raise TokenRejected("missing claim iss")
        if not isinstance(claims["iss"], str) or claims["iss"] not in issuer:
            raise TokenRejected("wrong issuer")
    if audience is not None:
        _check_audience(claims, audience)
    elif claims.get("aud"):  # RFC 7519 §4.1.3: a token for an audience this service is not, as PyJWT decides
        raise TokenRejected("wrong audience")
    for claim in ("sub", "jti"):  # a number, say: an app's mistake, said as such
        if claim in claims and not isinstance(claims[claim], str):
            raise TokenRejected(f"{claim} must be a string")


def _check_audience(claims: dict[str, Any], audience: Sequence[str]) -> None:
    if not claims.get("aud"):
        raise TokenRejected("missing claim aud")
    accepted = claims["aud"]
    if isinstance(accepted, str):
        accepted = [accepted]
    if not isinstance(accepted, list) or any(not isinstance(a, str) for a in accepted):
        raise TokenRejected("wrong audience")
    if not any(name in accepted for name in audience):
        raise TokenRejected("wrong audience")


def refused_secret(key: bytes) -> str | None:
    """Why `key` must not be an HMAC secret (it is a public key, a certificate or a JWK: an
    algorithm-confusion risk), or None. Broader than PyJWT's own refusal (HMACAlgorithm.prepare_key),
    never narrower: tests/unit/test_hs_jwt.py checks that on PyJWT's own cases."""
    text = key.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not key:
        return "is empty"
    if any(marker in key for marker in _ARMOR):
        return "looks like a PEM key or certificate"
    if key.startswith((b"ssh-", b"ecdsa-sha2-")):
        return "looks like an SSH public key"
    if b'"kty"' in key or _json_container(text):
        return "looks like JSON (a JWK?); use the key's secret bytes"
    if key[0] == 0x30 and b"\x00" in key:  # DER (a SEQUENCE) always holds a NUL; text from the environment never
        return "looks like a DER key or certificate"
    return None


# PEM armor (RFC 7468: five dashes) and the RFC 4716 SSH2 form (`---- BEGIN SSH2 PUBLIC KEY ----`, what
# `ssh-keygen -e` writes): every marker PyJWT's is_pem_format matches, whatever the label.
_ARMOR = (b"----BEGIN", b"---- BEGIN", b"----END", b"---- END")
_DEEPEST = 500  # openings in a row at the start: JSON nested deeper than any key's is refused unread


def _json_container(text: bytes) -> bool:
    if not text.startswith((b"{", b"[")):
        return False
    # Counted, not left to json.loads: where it gives up (RecursionError) depends on the interpreter (3.13's
    # C scanner goes ~10,000 deep) and on the stack already in use.
    if len(text) - len(text.lstrip(b"[{ \t\r\n")) > _DEEPEST:
        return True
    try:
        # Numbers read as 0, as PyJWT reads them: a huge one must not make a JWK unreadable, so accepted.
        return isinstance(json.loads(text, parse_int=lambda _: 0), dict | list)
    except RecursionError:  # still too deep for this stack: refused rather than read
        return True
    except ValueError:
        return False
