"""The upload and task records: a pure, deterministic fold over every stored event of one file.

The fold sorts events by a key derived from the events themselves (never by arrival), so any
delivery order of the same set of events gives the same records: a delete that arrives before
its upload still wins, a task event that arrives before its upload is kept.

Whose upload a file is can't be rewritten by a later event: when the upload events of one file disagree
on its identity (the user their sealed sourceContext proves, the sourceContext, the media URL), the
record is a conflict, attributed to nobody, and lists what disagrees. A delete applies to any file,
verified upload or not: it only marks a record deleted (VOD_CALLBACK_CONFIRM=fetch checks it with VOD).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from shared.events import (
    DeletePart,
    FileDeleted,
    MediaProcessResult,
    NewFileUpload,
    ProcedureStateChanged,
    VodEvent,
)
from shared.source_context import Attribution

Status = Literal["pending", "uploaded", "processing", "finished", "failed", "deleted", "conflict"]
TaskOutcome = Literal["processing", "finished", "failed"]


@dataclass(frozen=True)
class TaskResult:
    """One media-processing step of a task (Transcode, SnapshotByTimeOffset, ...)."""

    type: str
    status: str | None = None
    err_code: int | None = None
    message: str | None = None
    urls: tuple[str, ...] = ()  # every output URL, for people and for hooks that just want the files
    output: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TaskRecord:
    file_id: str
    task_id: str
    status: str | None = None  # VOD's word: PROCESSING / FINISH
    outcome: TaskOutcome = "processing"
    err_code: int | None = None
    message: str | None = None
    session_context: str | None = None
    session_id: str | None = None
    results: tuple[TaskResult, ...] = ()


@dataclass(frozen=True)
class UploadRecord:
    file_id: str
    status: Status = "pending"  # pending = known from other events, upload event not received yet
    user_id: str | None = None  # from the sourceContext the signature function sealed
    sign_request_id: str | None = None
    attribution: str | None = None  # why user_id is what it is: sealed, not_sealed, bad_seal, conflict, …
    confirmed: bool = False  # the identity facts were read from VOD (DescribeMediaInfos), not an event body
    conflicts: tuple[Conflict, ...] = ()
    name: str | None = None
    media_url: str | None = None
    cover_url: str | None = None
    media_type: str | None = None
    storage_region: str | None = None
    class_id: int | None = None
    source_type: str | None = None
    source_context: str | None = None
    create_time: str | None = None
    procedure_task_id: str | None = None
    review_task_id: str | None = None
    metadata: Mapping[str, Any] | None = None
    uploaded: bool = False
    deleted: bool = False
    deleted_at: float | None = None
    deleted_parts: tuple[DeletePart, ...] = ()
    first_seen_at: float = 0.0
    last_event_at: float = 0.0


@dataclass(frozen=True)
class Conflict:
    """Upload events of one file that disagree on an identity fact: every value seen, sorted."""

    field: str
    values: tuple[str | None, ...]


@dataclass(frozen=True)
class FoldInput:
    dedupe_key: str
    received_at: float
    event: VodEvent
    attribution: Attribution | None = None  # NewFileUpload: whom its sourceContext proves (at receipt)


def _order(item: FoldInput) -> tuple[int, int, str]:
    # Upload first, then task states (PROCESSING before FINISH), other types, deletes last; the
    # dedupe key breaks ties so the order is total.
    event = item.event
    rank = {"NewFileUpload": 0, "ProcedureStateChanged": 1, "FileDeleted": 3}.get(event.event_type, 2)
    finished = isinstance(event, ProcedureStateChanged) and event.status == "FINISH"
    return rank, int(finished), item.dedupe_key


def _urls(value: object, key: str = "") -> Iterator[str]:
    if isinstance(value, str):
        if key.endswith(("Url", "UrlSet", "UrlList")) and value:
            yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _urls(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _urls(v, key)


def task_result(result: MediaProcessResult) -> TaskResult:
    return TaskResult(
        type=result.type,
        status=result.status,
        err_code=result.err_code,
        message=result.message,
        urls=tuple(dict.fromkeys(_urls(result.output))),
        output=result.output,
    )


def _outcome(status: str | None, err_code: int | None, results: tuple[TaskResult, ...]) -> TaskOutcome:
    if status != "FINISH":
        return "processing"
    failed = err_code not in (None, 0) or any(r.status == "FAIL" or r.err_code not in (None, 0) for r in results)
    return "failed" if failed else "finished"


def _merge(record: Any, **values: Any) -> Any:
    """Later events (in fold order) override fields they carry; fields they omit keep earlier values."""
    return replace(record, **{k: v for k, v in values.items() if v is not None})


def _apply_upload(upload: UploadRecord, event: NewFileUpload) -> UploadRecord:
    merged: UploadRecord = _merge(
        upload,
        name=event.name,
        media_url=event.media_url,
        cover_url=event.cover_url,
        media_type=event.media_type,
        storage_region=event.storage_region,
        class_id=event.class_id,
        source_type=event.source_type,
        source_context=event.source_context,
        create_time=event.create_time,
        procedure_task_id=event.procedure_task_id,
        review_task_id=event.review_task_id,
        metadata=event.metadata,
    )
    return replace(merged, uploaded=True)


_IDENTITY = ("user_id", "source_context", "media_url")


def _identity(uploads: list[FoldInput]) -> dict[str, Any]:
    """Who and what the file is, from all its upload events at once (so arrival order cannot matter)."""
    if not uploads:
        return {}
    attributions = [item.attribution or Attribution("no_key") for item in uploads]
    facts: dict[str, set[str | None]] = {
        "user_id": {a.user_id for a in attributions},
        "source_context": {item.event.source_context for item in uploads if isinstance(item.event, NewFileUpload)},
        "media_url": {item.event.media_url for item in uploads if isinstance(item.event, NewFileUpload)},
    }
    conflicts = tuple(
        Conflict(name, tuple(sorted(facts[name], key=lambda v: (v is None, v or ""))))
        for name in _IDENTITY
        if len(facts[name]) > 1
    )
    if conflicts:
        return {
            "user_id": None,
            "sign_request_id": None,
            "attribution": "conflict",
            "conflicts": conflicts,
            "confirmed": all(a.confirmed for a in attributions),
        }
    first = attributions[0]
    return {
        "user_id": first.user_id,
        "sign_request_id": first.request_id,
        "attribution": first.why,
        "confirmed": all(a.confirmed for a in attributions),
    }


def _from_tasks(upload: UploadRecord, events: list[ProcedureStateChanged]) -> UploadRecord:
    """Name, URL and metadata from the task flow's events, where no upload event gave them."""
    for event in events:
        upload = replace(
            upload,
            name=upload.name or event.file_name,
            media_url=upload.media_url or event.file_url,
            metadata=upload.metadata or event.metadata,
        )
    return upload


def _apply_task(task: TaskRecord, event: ProcedureStateChanged) -> TaskRecord:
    results = tuple(task_result(r) for r in event.results) or None
    merged: TaskRecord = _merge(
        task,
        status=event.status,
        err_code=event.err_code,
        message=event.message,
        session_context=event.session_context,
        session_id=event.session_id,
        results=results,
    )
    return replace(merged, outcome=_outcome(merged.status, merged.err_code, merged.results))


def _apply_delete(upload: UploadRecord, event: FileDeleted, received_at: float) -> UploadRecord:
    parts = event.parts_for(upload.file_id)
    if parts:  # only some parts (e.g. transcodes) are gone; the media itself still exists
        return replace(upload, deleted_parts=tuple(sorted(set(upload.deleted_parts) | set(parts), key=repr)))
    first = received_at if upload.deleted_at is None else min(upload.deleted_at, received_at)
    return replace(upload, deleted=True, deleted_at=first)


def upload_status(upload: UploadRecord, tasks: Iterable[TaskRecord]) -> Status:
    if upload.deleted:
        return "deleted"
    if upload.conflicts:
        return "conflict"
    outcomes = {t.outcome for t in tasks}
    for outcome in ("processing", "failed", "finished"):
        if outcome in outcomes:
            return outcome
    return "uploaded" if upload.uploaded else "pending"


def fold(file_id: str, events: Iterable[FoldInput]) -> tuple[UploadRecord, tuple[TaskRecord, ...]]:
    """The records of `file_id` implied by `events` (all of them, in any order)."""
    items = sorted(events, key=_order)
    times = [item.received_at for item in items]
    upload = UploadRecord(file_id, first_seen_at=min(times, default=0.0), last_event_at=max(times, default=0.0))
    tasks: dict[str, TaskRecord] = {}
    uploads: list[FoldInput] = []
    task_events: list[ProcedureStateChanged] = []
    for item in items:
        event = item.event
        if isinstance(event, NewFileUpload) and event.file_id == file_id:
            upload = _apply_upload(upload, event)
            uploads.append(item)
        elif isinstance(event, ProcedureStateChanged) and event.file_id == file_id:
            tasks[event.task_id] = _apply_task(tasks.get(event.task_id) or TaskRecord(file_id, event.task_id), event)
            task_events.append(event)
        elif isinstance(event, FileDeleted) and file_id in event.file_ids:
            upload = _apply_delete(upload, event, item.received_at)
    upload = _from_tasks(replace(upload, **_identity(uploads)), task_events)
    ordered = tuple(tasks[k] for k in sorted(tasks))
    return replace(upload, status=upload_status(upload, ordered)), ordered
