"""The uploads function: an uploader asks after its own uploads (GET /uploads, GET /uploads/{fileId}).

Authenticated exactly like the sign function (same settings, shared.auth). Only the owner sees an upload:
another user's file, a file attributed to nobody (not sealed, or a conflict) and an unknown file are the
same 404, so the answer says nothing about files that are not yours. Polling is cheap: every answer has
an ETag (If-None-Match → 304), and `?wait=N` holds the request until the upload changes (at most
UPLOADS_MAX_WAIT_SECONDS). The store is opened read-only: this function never writes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from shared.auth import authenticate, check_key
from shared.config import MAX_WAIT_SECONDS, UploadsSettings
from shared.errors import BadRequest, NotFound
from shared.events import MAX_ID, canonical_json, storable
from shared.http.body import finite_number
from shared.http.model import Endpoint, Request, Response, matches
from shared.source_context import check_sealable
from shared.store import DeletedPart, EventStore, TaskRecord, TaskResult, UploadRecord

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
POLL_SECONDS = 0.5
# SCF answers a synchronous call of at most 6 MB (its quota page), counting the function's return value as it
# carries it: the JSON body escaped again inside SCF's own JSON. Kept below with room for the headers.
ANSWER_BYTES = 4_000_000
# What VOD writes is short (a name of at most 64 characters, URLs of a few hundred); longer text, in a body forged
# with a Sign seen once, is cut to this, so that an upload's own fields always leave room in an answer.
MAX_TEXT = 2048
MAX_OUTPUT_URLS = 100  # an image sprite or a snapshot every second: thousands; `urlCount` says how many
MAX_OUTPUTS = 100  # of a task: VOD's task flows make a few, a forged body tens of thousands; `outputCount` says
_CACHE = {"Cache-Control": "private, no-cache"}  # may be kept, but asked again (If-None-Match) before use


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))  # not datetime: one import less at cold start


# DeleteMedia's part types (MediaDeleteItem) whose files are task outputs: result type -> (part type, whether one
# definition goes alone). Covers made by media processing go with any TranscodeFiles delete (its doc says so).
_DELETED_WITH = {
    "Transcode": ("TranscodeFiles", True),
    "AdaptiveDynamicStreaming": ("AdaptiveDynamicStreamingFiles", True),
    "CoverBySnapshot": ("TranscodeFiles", False),
}


def _deleted(result: TaskResult, made_at: float | None, parts: Sequence[DeletedPart]) -> bool:
    kind, by_definition = _DELETED_WITH.get(result.type, (None, False))
    definition = (result.output or {}).get("Definition")
    return any(
        p.type == kind
        and (not by_definition or p.definition in (0, None, definition))  # Definition 0: all of that type
        # A later task made them again (a transcode redone after its delete); unknown times: deleted.
        and (p.deleted_at is None or made_at is None or p.deleted_at >= made_at)
        for p in parts
    )


def task_view(task: TaskRecord, deleted_parts: Sequence[DeletedPart], *, all_gone: bool = False) -> dict[str, Any]:
    # DeleteMedia removed these: no URL that answers 404
    kept = (r for r in task.results if not all_gone and not _deleted(r, task.results_at, deleted_parts))
    outputs = [
        {
            "type": _cut(r.type),
            "status": _cut(r.status),
            "urls": [_cut(u) for u in r.urls[:MAX_OUTPUT_URLS]],
            "urlCount": len(r.urls),
        }
        for r in itertools.islice(kept, MAX_OUTPUTS)
    ]
    return {
        "taskId": task.task_id,
        "status": task.outcome,  # processing, finished, failed
        "vodStatus": _cut(task.status),
        "errCode": task.err_code,
        "message": _cut(task.message),
        "outputs": outputs,
        "outputCount": len(outputs) + sum(1 for _ in kept),
    }


def _status(upload: UploadRecord, task_ids: Collection[str], task_events: bool) -> str:
    # Uploaded with a task flow whose first event is still to come: for the uploader it is processing (unless
    # VOD was asked for no task events: then none will come, and all that is known is that it was uploaded),
    # whatever another task of the file (the app's ProcessMedia, say) has reported meanwhile.
    flow = upload.procedure_task_id
    if flow and task_events and upload.status != "deleted" and flow not in task_ids:
        return "processing"
    return upload.status


def _cut(text: str | None) -> str | None:
    return text[:MAX_TEXT] if text is not None else None


def upload_view(upload: UploadRecord, tasks: Iterable[TaskRecord], *, task_events: bool) -> dict[str, Any]:
    """The upload as the API shows it, within ANSWER_BYTES as SCF carries it: the tasks that fit, in order, and
    `"truncated": true` when some do not (thousands of tasks). A task's view is made only while there is room
    for it, and each record let go before the next is read: memory does not grow with the upload's tasks."""
    # OriginalFiles: the uploaded media is gone, and the cover uploaded with it (DeleteMedia's MediaDeleteItem).
    # A whole-file delete: every file of the media is.
    original_gone = upload.deleted or any(p.type == "OriginalFiles" for p in upload.deleted_parts)
    view: dict[str, Any] = {
        "fileId": upload.file_id,
        "status": upload.status,  # its place in the answer; its value is set below, once every task is known
        "name": _cut(upload.name),
        "mediaUrl": None if original_gone else _cut(upload.media_url),
        "coverUrl": None if original_gone else _cut(upload.cover_url),
        "createdAt": _cut(upload.create_time) or _iso(upload.first_seen_at),
        "updatedAt": _iso(upload.last_event_at),
        "tasks": [],
    }
    room = ANSWER_BYTES - carried_size({**view, "status": "processing", "truncated": True})
    task_ids = set()
    for task in tasks:
        task_ids.add(task.task_id)
        if "truncated" not in view:
            shown = task_view(task, upload.deleted_parts, all_gone=upload.deleted)
            room -= carried_size(shown) + 1  # and its comma
            if room >= 0:
                view["tasks"].append(shown)
            else:
                view["truncated"] = True
            del shown
        del task  # before the next is read: a loop's variable would keep it meanwhile
    view["status"] = _status(upload, task_ids, task_events)
    return view


def carried_size(body: Mapping[str, Any]) -> int:
    """Bytes of `body` as SCF carries the answer: its JSON text (as shared.http.serve writes it), as a JSON string."""
    return len(json.dumps(json.dumps(body, ensure_ascii=False, separators=(",", ":"))))


def etag(body: Mapping[str, Any]) -> str:
    return '"' + hashlib.sha256(canonical_json(body).encode("ascii")).hexdigest()[:32] + '"'


def _cursor(text: str) -> tuple[float, str]:
    refused = BadRequest("cursor is not one this endpoint gave", code="invalid_cursor")
    try:
        first_seen, file_id = json.loads(base64.urlsafe_b64decode(text.encode("ascii") + b"=="))
    except (ValueError, TypeError, UnicodeEncodeError, binascii.Error, RecursionError):
        raise refused from None
    first = finite_number(first_seen)
    if first is None or not isinstance(file_id, str) or not _possible_file_id(file_id):
        raise refused
    return first, file_id


def _possible_file_id(text: str) -> bool:
    # What an event may carry as a FileId (so every stored upload can be named, and a cursor that ends on one
    # taken back); no other: a NUL or a lone surrogate PostgreSQL, or the UTF-8 driver, would refuse in a query
    # with an error that is not the client's.
    return len(text) <= MAX_ID and storable(text)


def _next_cursor(upload: UploadRecord) -> str:
    return _cursor_text(upload.first_seen_at, upload.file_id)


def _cursor_text(first_seen_at: float, file_id: str) -> str:
    raw = json.dumps([first_seen_at, file_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


# A page's answer without its uploads, with the longest cursor any upload's can be (each character of its FileId
# escaped as a surrogate pair): the room the uploads are fitted in is what this leaves.
_PAGE_FRAME = carried_size({"uploads": [], "nextCursor": _cursor_text(-1.7976931348623157e308, "\U0010ffff" * MAX_ID)})


def _integer(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    # The length first: int() refuses (ValueError) a string of more than 4300 digits.
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(high)) or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be an integer in {low}..{high}", code="invalid_parameter")
    return int(raw)


def _only(request: Request, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        # The name as sent, cut: a query key is anyone's text, as long as the gateway lets by
        name = unknown[0] if len(unknown[0]) <= 40 else unknown[0][:40] + "…"
        raise BadRequest(f"unknown parameter {name!r}; allowed: {', '.join(allowed)}", code="invalid_parameter")
    if request.repeated:  # ?cursor=A&cursor=B: a client that appends each page's cursor would get page 2 forever
        raise BadRequest(f"parameter {min(request.repeated)!r} given more than once", code="invalid_parameter")


def target(path: str) -> str | None:
    """The FileId a path names, or None for the list: /uploads (or /) is the list, /uploads/<id> one upload, after
    any prefix (a gateway's stage); without an /uploads segment (a function URL), the last segment is the FileId.
    By position, not by value: /uploads/uploads is the upload whose FileId is "uploads"."""
    parts = [p for p in path.split("/") if p]
    if "uploads" in parts:
        parts = parts[parts.index("uploads") + 1 :]
        if len(parts) > 1:  # /uploads/<id>/more: no such resource
            raise NotFound("no such upload")
    if not parts:
        return None
    file_id = unquote(parts[-1])
    if not _possible_file_id(file_id):
        raise NotFound("no such upload")  # no FileId looks like this: the same answer as any unknown one
    return file_id


def make_uploads_endpoint(
    settings: UploadsSettings,
    store_provider: Callable[[], EventStore],
    *,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    elapsed: Callable[[], float] = time.monotonic,
) -> Endpoint:
    """`now`: the time of day (tokens' claims); `elapsed`: a clock that never steps back (a wait's deadline)."""
    check_key(settings.auth)  # a misconfigured key fails the cold start, here as in the sign function

    def listing(request: Request, user: str) -> Response:
        _only(request, ("limit", "cursor"))
        limit = _integer(request.query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        before = _cursor(request.query["cursor"]) if "cursor" in request.query else None

        def sized(upload: UploadRecord, tasks: Iterator[TaskRecord]) -> tuple[dict[str, Any], int]:
            view = upload_view(upload, tasks, task_events=settings.task_events)
            return view, carried_size(view) + 1  # and its comma

        page, more = store_provider().user_page(user, limit, before, sized, ANSWER_BYTES - _PAGE_FRAME)
        body = {"uploads": [view for _, view in page], "nextCursor": _next_cursor(page[-1][0]) if more else None}
        return _answer(request, body)

    def current(file_id: str, user: str) -> tuple[dict[str, Any], tuple[int, float]]:
        def noted(upload: UploadRecord, tasks: Iterator[TaskRecord]) -> tuple[dict[str, Any], tuple[int, float]]:
            # upload_version's, as of this read
            return upload_view(upload, tasks, task_events=settings.task_events), (upload.revision, upload.last_event_at)

        found = store_provider().user_upload(user, file_id, noted)
        if found is None:  # someone else's, nobody's, unknown: one answer, after one lookup
            raise NotFound("no such upload")
        return found

    def one(request: Request, user: str, file_id: str, started: float) -> Response:
        _only(request, ("wait",))
        wait = _integer(request.query, "wait", 0, 0, MAX_WAIT_SECONDS)
        # From the request's start (its token's check included: reading the issuer's keys takes up to 4 s), not after
        # its first read: no read begins after the bound, so the answer comes within it plus one read (the
        # function's timeout allows for that: serverless.yml).
        deadline = started + min(wait, settings.max_wait_seconds)
        body, version = current(file_id, user)
        known = request.headers.get("if-none-match") or etag(body)  # the client's tags, or what it has now
        # Until it changes, or the wait is over; `*` names every version, so no change would end a wait: none is held
        while known.strip() != "*" and matches(known, etag(body)) and elapsed() < deadline:
            sleep(min(POLL_SECONDS, max(deadline - elapsed(), 0)))
            # Else the same record, the same tasks; a change seen after the bound is not read whole (the client asks
            # again).
            if store_provider().upload_version(user, file_id) != version and elapsed() < deadline:
                body, version = current(file_id, user)
        return _answer(request, body)

    def endpoint(request: Request) -> Response:
        started = elapsed()
        principal = authenticate(request, settings.auth, now)
        request.notes["user"] = principal.user_id
        check_sealable(principal.user_id)  # as the sign function does: no upload is such a user's
        file_id = target(request.path)
        return (
            listing(request, principal.user_id)
            if file_id is None
            else one(request, principal.user_id, file_id, started)
        )

    return endpoint


def _answer(request: Request, body: dict[str, Any]) -> Response:
    tag = etag(body)
    if matches(request.headers.get("if-none-match"), tag):
        return Response(304, None, {"ETag": tag, **_CACHE})
    return Response(200, body, {"ETag": tag, **_CACHE})
