"""Receiving VOD events: verify (PUSH), parse, dedupe, record in one transaction, then the hook.

`ingest_event` is the transport-free core: the HTTP endpoint below calls it for a PUSH body, a
PULL function calls it for each item of PullEvents' EventSet and confirms the handles only after
it returned. Either way the dedupe key is the event's content (see `shared.events.dedupe_key`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.config import CallbackSettings
from shared.errors import ServiceUnavailable
from shared.events import TRANSPORT_FIELDS, MalformedEvent, VodEvent, dedupe_key, parse_event, verify_callback_sign
from shared.hooks import AfterCommit, CommittedEvent, no_hook, run_hook
from shared.http import Endpoint, Request, Response, json_object
from shared.store import EventStore, StoreUnavailable, UploadRecord

log = logging.getLogger("vod.callback")

StoreProvider = Callable[[], EventStore]


@dataclass(frozen=True)
class IngestResult:
    dedupe_key: str
    event: VodEvent
    duplicate: bool  # True: this exact event was recorded before; nothing changed, no hook ran
    uploads: tuple[UploadRecord, ...] = ()
    hook_error: str | None = None


def ingest_event(
    store: EventStore,
    payload: Mapping[str, Any],
    *,
    received_at: float,
    after_commit: AfterCommit = no_hook,
) -> IngestResult:
    """Record one v3 event exactly once. Raises MalformedEvent (a BadRequest) for a payload that is
    not an event, StoreUnavailable when nothing could be committed (safe to retry: deduplicated)."""
    event = parse_event(payload)
    key = dedupe_key(payload)
    kept = {k: v for k, v in payload.items() if k not in TRANSPORT_FIELDS}
    has_hook = after_commit is not no_hook
    ingested = store.ingest(key, event, kept, received_at=received_at, hook_pending=has_hook)
    if ingested.duplicate:
        return IngestResult(key, event, duplicate=True)
    if not has_hook:
        return IngestResult(key, event, False, ingested.uploads)
    committed = CommittedEvent(key, event, received_at, ingested.uploads)
    return IngestResult(key, event, False, ingested.uploads, run_hook(after_commit, committed, store))


def make_callback_endpoint(
    settings: CallbackSettings,
    store_provider: StoreProvider,
    *,
    now: Callable[[], float] = time.time,
    after_commit: AfterCommit = no_hook,
) -> Endpoint:
    """POST handler for VOD's PUSH notifications: 200 only after the event is committed (VOD retries
    anything else), 401 for a bad Sign/T, 400 for a body that is not an event, 503 when the store fails."""
    sign_key = settings.sign_key.reveal() if settings.sign_key is not None else None

    def endpoint(request: Request) -> Response:
        # VOD's Content-Type is not documented: a strict check would only risk endless retries.
        payload = json_object(request, require_content_type=False)
        if payload is None:
            raise MalformedEvent("body", "must be a JSON object (the body is empty)")
        if settings.insecure:
            request.notes["unverified"] = True
        else:
            assert sign_key is not None  # guaranteed by config unless VOD_CALLBACK_INSECURE
            verify_callback_sign(payload, sign_key, now(), settings.max_ahead_seconds)
        try:
            result = ingest_event(store_provider(), payload, received_at=now(), after_commit=after_commit)
        except StoreUnavailable as exc:
            log.warning(json.dumps({"event": "store.unavailable", "request_id": request.request_id,
                                    "error": str(exc)}, ensure_ascii=False))
            raise ServiceUnavailable("the event store is unavailable; retry later", code="store_unavailable") from None
        request.notes.update(event_type=result.event.event_type, dedupe_key=result.dedupe_key,
                             duplicate=result.duplicate, file_ids=list(result.event.file_ids))
        if result.hook_error is not None:
            request.notes["hook_failed"] = True
        return Response(200, {"ok": True, "duplicate": result.duplicate, "eventType": result.event.event_type,
                              "dedupeKey": result.dedupe_key})

    return endpoint
