"""VOD's temporary COS credentials as the COS SDK's `CosConfig(CredentialInstance=...)`.

The SDK asks the instance for `secret_id` and `secret_key` whenever it signs a request
(qcloud_cos/cos_auth.py, `CosS3Auth.__init__`), so renewing credentials is a matter of answering with
fresh ones: `SessionCredentials` re-applies (ApplyUploadUGC with the session's vodSessionKey) shortly
before they expire, like vod-js-sdk-v6's `getAuthorization` (src/uploader.ts, `uploadToCos`). Expiry is
judged on VOD's clock (the answer's `timestamp`), so a skewed local clock does not matter to it (the SDK
signs each request with the local time, though: COS refuses a clock far off, `cos._clock_hint`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from vodupload.errors import StorageError, VodUploadError
from vodupload.vod_api import Applied, TempCredentials


class SessionCredentials:
    """The credentials of one upload session, renewed `margin` seconds before expiredTime (at most half
    their lifetime ahead, so that short-lived credentials do not make every request re-apply).

    A request reads `secret_id` first (cos_auth.py), then `secret_key`, then `token`: the first read
    picks the credentials for the whole request in this thread, so a renewal by another thread in between
    never mixes two sets. Thread-safe; `reapply` runs under a lock, once per renewal. A renewal that failed is
    not tried again: every thread that needs one gets its error (it ends the run; a new run has credentials of its
    own), not a wait of its own on a signature endpoint that just refused, or stayed busy through every try.
    """

    def __init__(
        self,
        applied: Applied,
        reapply: Callable[[], Applied],
        *,
        clock: Callable[[], float],
        margin: float,
        on_refresh: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self._reapply = reapply
        self._clock = clock
        self._margin = margin
        self._on_refresh = on_refresh
        self._lock = threading.Lock()
        self._failed: VodUploadError | None = None  # the renewal that failed
        self._in_use = threading.local()
        self._install(applied)

    @property
    def applied(self) -> Applied:
        """The latest ApplyUploadUGC answer: bucket, region, object keys and the current credentials."""
        with self._lock:
            return self._applied

    # -- what the COS SDK reads --------------------------------------------------------------------

    @property
    def secret_id(self) -> str:
        self._renew_if(self._expiring, "the temporary credentials are about to expire", pick=True)
        return self._current().secret_id

    @property
    def secret_key(self) -> str:
        return self._current().secret_key

    @property
    def token(self) -> str:
        return self._current().token

    # -- after COS refused them --------------------------------------------------------------------

    def renew_after_denial(self) -> None:
        """COS refused the credentials this thread last signed with: renew them, unless another thread
        already did (then the next request signs with the newer ones anyway)."""
        self._renew_if(lambda: self._current() is self._applied.credentials, "COS refused the temporary credentials")

    def _current(self) -> TempCredentials:
        credentials: TempCredentials | None = getattr(self._in_use, "credentials", None)
        return credentials if credentials is not None else self._applied.credentials

    def _install(self, applied: Applied) -> None:
        self._applied = applied
        self._skew = applied.server_time - self._clock() if applied.server_time else 0.0

    def _expiring(self) -> bool:
        applied = self._applied
        lifetime = applied.credential_lifetime if applied.server_time else self._margin * 2
        margin = min(self._margin, max(lifetime, 0) / 2)
        return self._clock() + self._skew >= applied.credentials.expired_time - margin

    def _renew_if(self, needed: Callable[[], bool], reason: str, *, pick: bool = False) -> None:
        """Re-apply when `needed()` (checked under the lock); `pick`: this thread signs with the result."""
        with self._lock:
            renewed = needed()
            if renewed:
                if self._failed is not None:
                    raise self._failed
                try:
                    fresh = self._reapply()
                except VodUploadError as exc:  # refused, or unreachable (not a stop: the next try may be a cancel's)
                    self._failed = exc
                    raise
                old = self._applied
                if (fresh.bucket, fresh.video_key, fresh.cover_key) != (old.bucket, old.video_key, old.cover_key):
                    raise StorageError("VOD moved the upload to other storage when renewing its credentials")
                self._install(fresh)
            if pick:
                self._in_use.credentials = self._applied.credentials
        if renewed:  # outside the lock: the callback may read `applied`
            self._on_refresh(reason)
