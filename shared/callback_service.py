"""The PUSH callback: verify VOD's Sign/T, then record the event (shared.ingest); 200 only after the commit.

Errors travel as they are (MalformedEvent, CallbackSignRejected, StoreUnavailable) and become 400, 401
and 503 in shared.errors, the one place that maps errors to HTTP; VOD retries anything but a 200.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shared.config import CallbackSettings
from shared.errors import BadRequest, StoreUnavailable
from shared.events import named_in, parse_event, stored_form, verify_callback_sign
from shared.hooks import AfterCommit, no_hook
from shared.http.body import json_object
from shared.http.model import Endpoint, Request, Response
from shared.ingest import IngestResult, Vouched, ingest_event, logged_fields
from shared.store import EventStore

StoreProvider = Callable[[], EventStore]


def make_callback_endpoint(
    settings: CallbackSettings,
    store_provider: StoreProvider,
    *,
    now: Callable[[], float] = time.time,
    after_commit: AfterCommit = no_hook,
) -> Endpoint:
    sign_keys = tuple(key.reveal() for key in (settings.sign_key, settings.previous_sign_key) if key is not None)
    keys = settings.context_keys.all()
    confirm: Callable[[dict[str, Any]], Vouched] | None = None
    if settings.confirm_api is not None:
        from shared.vod_confirm import MediaLookup, confirmed  # VOD called over HTTP, only for this option

        lookup = MediaLookup(settings.confirm_api)

        def confirm(payload: dict[str, Any]) -> Vouched:
            return confirmed(payload, lookup, keys, now())

    def endpoint(request: Request) -> Response:
        # VOD's Content-Type is not documented: a strict check would only risk endless retries.
        payload = json_object(request, require_content_type=False)
        if payload is None:
            # Not a MalformedEvent (logged at WARNING as an event VOD signed): no Sign was checked yet
            raise BadRequest("body must be a JSON object (the body is empty)", code="malformed_event")
        if not sign_keys:  # VOD_CALLBACK_INSECURE=true, local development only (refused inside SCF)
            request.notes["unverified"] = True
        elif verify_callback_sign(payload, sign_keys, now(), settings.max_ahead_seconds):
            request.notes["sign_key"] = "previous"  # a SignKey rotation ends once no delivery says this
        # Which event, on the request's line whatever follows (an event it cannot read, a store or VOD outage)
        request.notes.update(named_in(payload))
        vouched = None
        # VOD's word instead of the body's (VodUnavailable: a 503, VOD retries), unless this delivery was recorded
        # before (VOD retries when our 200 was lost): then it is a duplicate, whatever VOD would say now.
        if confirm is not None and not _recorded(store_provider(), payload):
            vouched = confirm(payload)
            request.notes["confirmed"] = vouched.attribution.confirmed if vouched.attribution else None
        result = _ingest(
            request, store_provider(), payload, received_at=now(), keys=keys, after_commit=after_commit, vouched=vouched
        )
        request.notes.update(logged_fields(result))
        if result.hook_error is not None:
            request.notes["hook_failed"] = True
        return Response(
            200,
            {
                "ok": True,
                "duplicate": result.duplicate,
                "eventType": result.event.event_type,
                "dedupeKey": result.dedupe_key,
            },
        )

    return endpoint


def _ingest(request: Request, store: EventStore, payload: dict[str, Any], **options: Any) -> IngestResult:
    """ingest_event, with the event's key on the request's line when the store fails too: VOD delivers the event
    again, and the line of the retry that records it names the same key."""
    try:
        return ingest_event(store, payload, **options)
    except StoreUnavailable as exc:
        if exc.dedupe_key is not None:
            request.notes["dedupe_key"] = exc.dedupe_key
        raise


def _recorded(store: EventStore, payload: dict[str, Any]) -> bool:
    parse_event(payload)  # a body that is no event is a 400 before anything is asked
    return store.event(stored_form(payload).key) is not None
