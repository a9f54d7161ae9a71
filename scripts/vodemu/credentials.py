"""Temporary COS credentials (the `tempCertificate` VOD hands to uploading clients).

Each credential is scoped to one bucket and an explicit set of object keys, which is how the emulator
stands in for the CAM policy VOD attaches to the real STS credential. Committing an upload revokes the
credentials of its keys: a published file must not be writable with what the uploader was handed.
"""

from __future__ import annotations

import hmac
import secrets
import string
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# Real STS secret ids start with "AKID"; keeping the shape makes logs and fixtures look familiar.
_SECRET_ID_PREFIX = "AKID"
_ALPHANUMERIC = string.ascii_letters + string.digits
# Expired credentials are forgotten after this long, so a long-running emulator does not grow forever
# (until then a late request still gets the precise "expired" answer instead of "unknown key").
_RETENTION_SECONDS = 24 * 3600


@dataclass(frozen=True)
class TempCredential:
    secret_id: str
    secret_key: str = field(repr=False)
    token: str = field(repr=False)
    expired_time: int  # Unix seconds
    bucket: str  # full bucket name, e.g. "vodugc-1250000000"
    allowed_keys: frozenset[str]  # object keys (no leading "/") this credential may write/read
    region: str | None = None  # the bucket's region (COS buckets are regional); None: not checked

    def is_expired(self, now: float) -> bool:
        return now >= self.expired_time

    def allows(self, key: str) -> bool:
        return key in self.allowed_keys


def _random_alphanumeric(length: int) -> str:
    # Letters and digits only: ids and keys travel inside the `&`/`=`-delimited Authorization header.
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def _validated_keys(allowed_keys: Iterable[str]) -> frozenset[str]:
    keys = frozenset(allowed_keys)
    if not keys:
        raise ValueError("a credential needs at least one allowed key")
    for key in keys:
        if not key or key.startswith("/"):
            raise ValueError(f"object keys must be non-empty and have no leading '/': {key!r}")
    return keys


class CredentialRegistry:
    """Issues and looks up temporary credentials; safe to share between request threads."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._by_secret_id: dict[str, TempCredential] = {}
        self._revoked: set[str] = set()  # secret ids; kept (while known) to answer "revoked", not "unknown"

    def issue(
        self, bucket: str, allowed_keys: Iterable[str], ttl_seconds: int, region: str | None = None
    ) -> TempCredential:
        if not bucket:
            raise ValueError("bucket is required")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        now = self._clock()
        credential = TempCredential(
            secret_id=_SECRET_ID_PREFIX + _random_alphanumeric(32),
            secret_key=_random_alphanumeric(32),
            token=secrets.token_urlsafe(96),
            expired_time=int(now) + ttl_seconds,
            bucket=bucket,
            allowed_keys=_validated_keys(allowed_keys),
            region=region,
        )
        with self._lock:
            self._forget_expired(now)
            self._by_secret_id[credential.secret_id] = credential
        return credential

    def lookup(self, secret_id: str, token: str) -> TempCredential | None:
        """The credential for `secret_id` if `token` is its token; expiry is the caller's check."""
        with self._lock:
            credential = self._by_secret_id.get(secret_id)
        if credential is None:
            return None
        if not hmac.compare_digest(token.encode("utf-8"), credential.token.encode("utf-8")):
            return None
        return credential

    def revoke(self, bucket: str, keys: Iterable[str]) -> int:
        """Revoke every credential of `bucket` that may touch any of `keys`; returns how many were live."""
        targets = frozenset(keys)
        with self._lock:
            hits = {
                sid
                for sid, cred in self._by_secret_id.items()
                if cred.bucket == bucket and not cred.allowed_keys.isdisjoint(targets)
            }
            newly = hits - self._revoked
            self._revoked |= hits
        return len(newly)

    def is_revoked(self, secret_id: str) -> bool:
        with self._lock:
            return secret_id in self._revoked

    def knows(self, secret_id: str) -> bool:
        """Whether `secret_id` was issued (and not yet forgotten): tells "unknown key" from "wrong token"."""
        with self._lock:
            return secret_id in self._by_secret_id

    def _forget_expired(self, now: float) -> None:
        cutoff = now - _RETENTION_SECONDS
        stale = [sid for sid, cred in self._by_secret_id.items() if cred.expired_time < cutoff]
        for secret_id in stale:
            del self._by_secret_id[secret_id]
            self._revoked.discard(secret_id)
