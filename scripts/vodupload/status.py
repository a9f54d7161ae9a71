"""Following an upload after `done()`: the uploads function's GET /uploads/{fileId}, long-polled (`?wait`,
If-None-Match), until VOD's task flow has finished or failed.

    record = StatusClient("https://…/uploads", token).follow(file_id, timeout=600)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeGuard
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from vodupload.errors import AuthenticationFailed, VodUploadError, shown
from vodupload.signatures import BUSY, TokenSource, error_envelope, request_id, retry_after, token_of

# Where an upload stays: its task flow is over (or it has none: "uploaded"), or it was deleted.
SETTLED = frozenset({"uploaded", "finished", "failed", "deleted"})
WAIT_SECONDS = 20  # the most the uploads function holds a request
# An unchanged answer sooner than this was not held (UPLOADS_MAX_WAIT_SECONDS=0, a proxy): wait a pause first.
HELD_SECONDS, PAUSE_SECONDS = 1.0, 2.0


class StatusUnavailable(VodUploadError):
    """The uploads function did not say how the upload stands (before the wait ran out)."""


class _Unanswered(StatusUnavailable):
    """No answer worth reading this time (a 502, 503 or 504: the function's store down, say; a 408 or 429: busy;
    a connection dropped mid-poll): worth asking again while the wait lasts, after `pause` seconds."""

    def __init__(self, message: str, pause: float = PAUSE_SECONDS) -> None:
        super().__init__(message)
        self.pause = pause


_SLACK_SECONDS = 5.0  # a held request's answer may come this long after the wait it asked for
_OVERDUE_SECONDS = 30.0  # and an answer this much later than its wait is not coming: the request is made again


class StatusClient:
    def __init__(self, url: str, token: TokenSource, *, session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._session = session or requests.Session()

    def get(
        self, file_id: str, *, wait: int = 0, etag: str | None = None, within: float | None = None
    ) -> tuple[dict[str, Any] | None, str | None]:
        """(the upload, its ETag); (None, etag) when unchanged since `etag`; (None, None) when not recorded yet.
        A server that stops answering is given up on after `within` seconds (default: the wait and half a
        minute)."""
        headers = {"Authorization": f"Bearer {token_of(self._token)}", **({"If-None-Match": etag} if etag else {})}
        patience = wait + _OVERDUE_SECONDS if within is None else max(within, 1)
        parts = urlsplit(self.url)  # the id goes into the path, before a query the URL has (a --status-url's)
        response = self._session.get(
            urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{quote(file_id, safe='')}")),
            params={"wait": wait} if wait else None,
            headers=headers,
            timeout=(min(10, patience), patience),
        )
        status = response.status_code
        if status == 304:
            return None, etag
        if status == 404:
            if error_envelope(response)[0] == "not_found":  # not recorded yet (or not ours)
                return None, None
            raise StatusUnavailable(f"{shown(self.url)} is not the uploads endpoint (404 with no not_found error)")
        if status == 401:  # in the function's words: an expired token (refresh it) is not a wrong audience
            raise AuthenticationFailed(
                401, *error_envelope(response), endpoint="the uploads endpoint", request_id=request_id(response)
            )
        if status in (502, 503, 504):  # not 500: a bug or a refused setting, not worth waiting for
            raise _Unanswered(f"the uploads endpoint answered {status}")
        if status in BUSY:
            raise _Unanswered(f"the uploads endpoint answered {status}", retry_after(response) or PAUSE_SECONDS)
        if status != 200:  # in the function's words, when it gave them (a parameter it refuses, say)
            said = error_envelope(response)[1]
            raise StatusUnavailable(f"the uploads endpoint answered {status}" + (f": {said}" if said else ""))
        return _record(response.content, self.url), response.headers.get("ETag")

    def follow(
        self,
        file_id: str,
        *,
        timeout: float,
        on_update: Callable[[dict[str, Any]], None] = lambda upload: None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """The upload once settled (finished, failed, …); `on_update` hears every change on the way."""
        deadline, etag, last, trouble, answered = clock() + timeout, None, None, "", False
        while clock() < deadline:
            wait = int(min(WAIT_SECONDS, deadline - clock()))
            if last is not None and wait < 1:
                break  # less than a second left: a long poll that short would only spin
            asked = clock()
            try:
                upload, etag = self._ask(file_id, wait if last else 0, etag, deadline - clock(), answered)
            except _Unanswered as exc:  # the upload is done; only the asking failed: ask again
                trouble = f"; {exc}"
                sleep(min(exc.pause, max(deadline - clock(), 0)))
                continue
            answered, trouble = True, ""
            if upload is None and last is None:
                sleep(1.0)  # not recorded yet: VOD's event is on its way to the callback
                continue
            if upload is None and etag is None:  # a 404 for an upload it showed: someone else's now
                raise StatusUnavailable(
                    f"upload {file_id} is no longer shown to this user (VOD's events disagree on who uploaded it)"
                )
            changed = upload is not None and upload != last
            if upload is not None and changed:
                last = upload
                on_update(upload)
            if last is not None and last["status"] in SETTLED:
                return last
            if not changed and clock() - asked < HELD_SECONDS:
                sleep(min(PAUSE_SECONDS, max(deadline - clock(), 0)))
        raise StatusUnavailable(
            f"upload {file_id} had not settled after {timeout:g} s"
            + (f" (last status: {last['status']})" if last else " (not recorded yet)")
            + trouble
        )

    def _ask(
        self, file_id: str, wait: int, etag: str | None, left: float, answered: bool
    ) -> tuple[dict[str, Any] | None, str | None]:
        # Given up on when a held answer is overdue (it may come a little after the wait it asked for), and by the
        # end of the whole wait: a connection gone silent (a NAT's timeout, say) is asked again while that lasts.
        try:
            return self.get(file_id, wait=wait, etag=etag, within=min(wait + _OVERDUE_SECONDS, left) + _SLACK_SECONDS)
        except requests.RequestException as exc:
            if not answered:  # never reached: a wrong URL, say, not worth the whole wait
                # (not chained: requests' text quotes the URL, query and all, which may hold a key)
                raise StatusUnavailable(f"the uploads endpoint could not be reached: {type(exc).__name__}") from None
            raise _Unanswered(f"the uploads endpoint stopped answering: {type(exc).__name__}") from None


def _record(raw: bytes, url: str) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    if not _is_record(body):
        raise StatusUnavailable(f"{shown(url)} answered 200 with something that is not an upload's record")
    return body


def _is_record(body: object) -> TypeGuard[dict[str, Any]]:
    """Whether `body` has an upload record's shape where it is read (its status, its tasks' outputs' URLs)."""
    if not (isinstance(body, dict) and isinstance(body.get("status"), str) and isinstance(body.get("tasks"), list)):
        return False
    for task in body["tasks"]:
        outputs = task.get("outputs") or [] if isinstance(task, dict) else None
        if not isinstance(outputs, list):
            return False
        for output in outputs:
            urls = output.get("urls") or [] if isinstance(output, dict) else None
            if not (isinstance(urls, list) and all(isinstance(u, str) for u in urls)):
                return False
    return True
