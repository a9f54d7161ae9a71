"""Every failure the uploader reports, as one exception family.

Messages are written for the person running the upload and never contain a signature, a bearer
token, a temporary secret key, a security token or what an endpoint's URL may carry (`shown`): they are safe
to print and to log.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit


def shown(url: str) -> str:
    """`url` as messages quote it: without a user and password in it, nor its query (an API key, say)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a bracket unclosed: nothing of it is worth showing
        return "the URL given"
    if "@" in parts.netloc:
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    elif ":" in parts.netloc and "@" in url.partition("://")[2]:
        # A password holding "/", "?" or "#" not percent-encoded ends the host early (user:pass/word@host), and
        # reads as host:port when it is digits: no telling it from a port and an "@" further on
        return "the URL given"
    return urlunsplit(parts._replace(query="…" if parts.query else "", fragment=""))


class VodUploadError(Exception):
    """Base class: an upload could not be done (or not now)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SignatureError(VodUploadError):
    """The signature endpoint did not give us a signature."""


class GatewayRefusal(SignatureError):
    """The signature endpoint (or the uploads endpoint) answered 4xx; `code`/`message` are its
    `{"error": {...}}` envelope, `request_id` its X-Request-Id (what finds the request's log line)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        endpoint: str = "the signature endpoint",
        request_id: str | None = None,
    ) -> None:
        said = f" (request {request_id})" if request_id else ""
        super().__init__(f"{endpoint} refused ({status} {code}): {message}{said}")
        self.status = status
        self.code = code
        self.detail = message
        self.request_id = request_id


class AuthenticationFailed(GatewayRefusal):
    """401: the bearer token is missing, invalid or expired."""


class MalformedToken(AuthenticationFailed):
    """A bearer token no HTTP header can carry (not visible ASCII): refused before any request."""

    def __init__(self) -> None:
        VodUploadError.__init__(
            self, "the token has characters an Authorization header cannot carry (a space, a line break, a '…'?)"
        )
        self.status, self.code, self.detail, self.request_id = 0, "malformed_token", self.message, None


class SignatureRefused(GatewayRefusal):
    """403 (policy) or another 4xx: the caller is known but this request is not allowed."""


class SignatureUnavailable(SignatureError):
    """Network errors, 5xx or a malformed answer from the signature endpoint, after retries."""


class VodApiError(VodUploadError):
    """VOD answered `code != 0` to PrepareUploadUGC/ApplyUploadUGC/CommitUploadUGC (a definite refusal,
    not retried). VOD does not publish what each code means: the uploader treats them all alike."""

    def __init__(self, action: str, code: int, message: str) -> None:
        super().__init__(f"VOD refused {action} (code {code}): {message}")
        self.action = action
        self.code = code
        self.detail = message


class VodUnavailable(VodUploadError):
    """VOD's upload API could not be reached (network errors, 5xx, not JSON) on any host, after retries."""


class StorageError(VodUploadError):
    """COS refused or kept failing a request with the temporary credentials."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class CheckpointUnavailable(VodUploadError):
    """The directory of saved uploads cannot be read or written (VOD_UPLOAD_CHECKPOINT_DIR a file, say)."""


class UploadInProgress(VodUploadError):
    """The same files are being uploaded by another run (another process, or another task) right now."""


class SourceChanged(VodUploadError):
    """The file changed, or was deleted, while it was being uploaded."""


class AlreadyCommitted(VodUploadError):
    """Too late to cancel: a stopped run had sent the upload's commit, and VOD confirms the upload (`committed`,
    a vod_api.Committed). A commit cannot be taken back."""

    def __init__(self, committed: Any) -> None:
        super().__init__(f"too late to cancel: the upload was committed as file id {committed.file_id}")
        self.committed = committed


class UploadCancelled(VodUploadError):
    """The upload was cancelled: its COS parts were aborted and its checkpoint deleted."""


class UploadPaused(VodUploadError):
    """The upload is paused; its checkpoint is saved and `resume()` (or a new run) continues it."""
