"""Recording one VOD event, whatever brought it: parse, key, store exactly once, then the after-commit hook.

The PUSH callback calls it for a verified body; the PULL function for each item of PullEvents' EventSet,
confirming the handles only after it returned. No transport here: failures are domain errors
(MalformedEvent, StoreUnavailable) that each caller answers in its own way.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from shared.events import NewFileUpload, OtherEvent, ProcedureStateChanged, VodEvent, parse_event, stored_form
from shared.hooks import AfterCommit, CommittedEvent, no_hook, run_hook
from shared.logs import INFO, WARNING, log_event
from shared.records import Record
from shared.source_context import Attribution, attribute
from shared.store import EventStore, StoreUnavailable, UploadRecord


class Vouched(Record):
    """What VOD answered for one delivery (VOD_CALLBACK_CONFIRM=fetch): the event to record in place of the
    body, and whom an upload belongs to by VOD's sourceContext."""

    payload: Mapping[str, Any]
    attribution: Attribution | None


class IngestResult(Record):
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
    keys: Sequence[str],
    after_commit: AfterCommit = no_hook,
    vouched: Vouched | None = None,
) -> IngestResult:
    """Record one v3 event (`payload`, as delivered) exactly once. An upload's user is the one its
    sourceContext proves under `keys` (the context keys, current first). `vouched`, when VOD was asked,
    is recorded in its place, keyed as the delivery. Raises MalformedEvent for a payload that is not an
    event, StoreUnavailable when nothing could be committed (safe to retry: deduplicated)."""
    recorded = payload if vouched is None else vouched.payload
    event = parse_event(recorded)
    # The one serialisation: stored as it is, and hashed for the key (the delivery's text, when VOD vouched).
    stored = stored_form(recorded, None if vouched is None else payload)
    has_hook = after_commit is not no_hook
    attribution = None if vouched is None else vouched.attribution
    if attribution is None and isinstance(event, NewFileUpload):
        attribution = attribute(event.source_context, keys)
    try:
        ingested = store.ingest(stored, event, received_at=received_at, hook_pending=has_hook, attribution=attribution)
    except StoreUnavailable as exc:
        exc.dedupe_key = stored.key
        raise
    if ingested.duplicate or ingested.erased:  # erased: kept as a tombstone, told to no hook
        return IngestResult(stored.key, event, duplicate=ingested.duplicate)
    for upload in ingested.uploads if isinstance(event, NewFileUpload) else ():  # the one kind that disagrees
        if upload.conflicts:  # stored, attributed to nobody: an operator should look (vod-uploads show)
            # What disagrees, not the values: a sealed sourceContext names its user to whoever holds it.
            log_event(
                WARNING,
                "upload.conflict",
                file_ids=[upload.file_id],  # as every other line names files
                dedupe_key=stored.key,
                conflicts=[conflict.field for conflict in upload.conflicts],
            )
    if (  # sealed before a rotation of VOD_CONTEXT_KEY: what tells an operator the old key is still needed
        attribution is not None
        and attribution.why == "sealed"
        and len(keys) > 1
        and isinstance(event, NewFileUpload)
        and attribute(event.source_context, keys[:1]).why != "sealed"
    ):
        log_event(INFO, "upload.previous_context_key", file_ids=list(event.file_ids), dedupe_key=stored.key)
    if attribution is not None and attribution.why == "bad_seal":
        # Sealed, with none of the keys: sign's VOD_CONTEXT_KEY is not this function's, a rotation left out
        # VOD_CONTEXT_KEY_PREVIOUS, or a forgery. Recorded with no user, which its uploader cannot see.
        log_event(WARNING, "upload.unattributed", file_ids=list(event.file_ids), dedupe_key=stored.key, why="bad_seal")
    if not has_hook:
        return IngestResult(stored.key, event, False, ingested.uploads)
    told = event._replace(payload=None) if ingested.partly_erased and isinstance(event, OtherEvent) else event
    committed = CommittedEvent(stored.key, told, received_at, ingested.uploads)
    return IngestResult(stored.key, event, False, ingested.uploads, run_hook(after_commit, committed, store))


def logged_fields(result: IngestResult) -> dict[str, Any]:
    """What a log line says of an event recorded (the callback's request line, events_pull's pull.event): which
    one, and whether it was new; of a new upload, how its user was attributed and the sign request it came from
    (the request_id of the sign function's line: its user there); of a task flow, how it stands. Never the
    sourceContext, which names its user to whoever holds it."""
    event = result.event
    fields: dict[str, Any] = {
        "event_type": event.event_type,
        "file_ids": list(event.file_ids),
        "dedupe_key": result.dedupe_key,
        "duplicate": result.duplicate,
    }
    if isinstance(event, NewFileUpload):
        for upload in result.uploads:
            fields.update(attribution=upload.attribution, sign_request_id=upload.sign_request_id)
    elif isinstance(event, ProcedureStateChanged):
        fields.update(task_id=event.task_id, task_status=event.status, err_code=event.err_code)
    return fields
