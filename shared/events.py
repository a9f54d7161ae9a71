"""VOD v3 event notifications: verified, parsed at the edge, keyed for deduplication. The events:
NewFileUpload (https://cloud.tencent.com/document/product/266/7830), ProcedureStateChanged
(https://cloud.tencent.com/document/product/266/9636), FileDeleted
(https://cloud.tencent.com/document/product/266/13434); the notification modes (普通回调, 可靠回调):
https://www.tencentcloud.com/document/product/266/33948.

Only the fields this bundle uses are read, and each is type-checked: a wrong type is a 400 naming
the field. Absent (or null) fields are fine because VOD omits nulls; unknown fields and unknown
event types are kept, never rejected (VOD adds both over time).
"""

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from shared.errors import CallbackSignRejected, MalformedEvent
from shared.records import Record

JsonObject = Mapping[str, Any]
T = TypeVar("T")

# Per-delivery fields: they authenticate or acknowledge one delivery, they are not part of the event.
# They are left out of the dedupe key (VOD re-signs every retry and hands a PULL redelivery a new
# EventHandle) and out of the stored event (Sign + T would let anyone who reads the database
# brute-force a short SignKey offline).
DELIVERY_FIELDS = ("Sign", "T", "EventHandle")


class NewFileUpload(Record):
    file_id: str
    name: str | None = None
    media_url: str | None = None
    cover_url: str | None = None
    media_type: str | None = None
    storage_region: str | None = None
    class_id: int | None = None
    create_time: str | None = None
    source_type: str | None = None
    source_context: str | None = None
    procedure_task_id: str | None = None
    review_task_id: str | None = None
    metadata: JsonObject | None = None

    @property
    def event_type(self) -> str:
        return "NewFileUpload"

    @property
    def file_ids(self) -> tuple[str, ...]:
        return (self.file_id,)


class MediaProcessResult(Record):
    """One entry of MediaProcessResultSet: `Type` and its `<Type>Task` object."""

    type: str
    status: str | None = None
    err_code: int | None = None
    message: str | None = None
    output: JsonObject | None = None


class ProcedureStateChanged(Record):
    task_id: str
    status: str | None = None
    err_code: int | None = None
    message: str | None = None
    file_id: str | None = None
    file_name: str | None = None
    file_url: str | None = None
    session_context: str | None = None
    session_id: str | None = None
    results: tuple[MediaProcessResult, ...] = ()
    metadata: JsonObject | None = None

    @property
    def event_type(self) -> str:
        return "ProcedureStateChanged"

    @property
    def file_ids(self) -> tuple[str, ...]:
        return (self.file_id,) if self.file_id else ()


class DeletePart(Record):
    type: str | None = None
    definition: int | None = None


class FileDeleted(Record):
    file_ids: tuple[str, ...]
    # FileId -> the parts deleted; a file with no parts listed was deleted whole (DeleteMedia's
    # default), one with parts (e.g. only TranscodeFiles) still exists.
    parts: Mapping[str, tuple[DeletePart, ...]] | None = None

    @property
    def event_type(self) -> str:
        return "FileDeleted"

    def parts_for(self, file_id: str) -> tuple[DeletePart, ...]:
        return self.parts.get(file_id, ()) if self.parts else ()


class OtherEvent(Record):
    """Any other type (EditMediaComplete, ReviewAudioVideoComplete, ...): kept, linked to the files it names. Its
    `payload` is the notification as VOD sent it, less Sign, T and EventHandle (as stored): this module reads
    none of it, so a hook reads what it needs there (None once a file it names is erased: on a rerun, or for an event
    that comes after)."""

    event_type: str
    file_ids: tuple[str, ...] = ()
    payload: JsonObject | None = None


VodEvent = NewFileUpload | ProcedureStateChanged | FileDeleted | OtherEvent

_INT64 = 2**63
MAX_ID = 256  # FileId, TaskId, EventType, …: VOD's are < 100 characters; longer ones would not fit an index
MAX_FILES = 1000  # FileIds one event may name (each is locked while its record is updated)
MAX_DEPTH = 32  # VOD's events nest about 6 deep; deeper is hostile, and would exhaust the JSON encoder
_KINDS: dict[type, str] = {str: "a string", int: "an integer", dict: "an object", list: "a list"}


def _typed(obj: JsonObject, key: str, kind: type[T], path: str) -> T | None:
    value = obj.get(key)
    if value is None:
        return None
    # bool is an int in Python: ErrCode: true must not pass as 1.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedEvent(f"{path}{key}", f"must be {_KINDS[kind]}")
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        raise MalformedEvent(f"{path}{key}", "is out of range (a 64-bit integer)")  # both stores: BIGINT
    if isinstance(value, str) and not storable(value):
        raise MalformedEvent(f"{path}{key}", "must not contain NUL or unpaired surrogates")
    return value


def storable(text: str) -> bool:
    # Both stores reject these in text columns; refusing them here keeps a storage error (503,
    # retried forever by VOD) from ever being the answer to a bad event.
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(obj: JsonObject, key: str, path: str) -> str | None:
    return _typed(obj, key, str, path) or None  # VOD writes "" for "none" (ProcedureTaskId, CoverUrl)


def _id(obj: JsonObject, key: str, path: str) -> str | None:
    """An identifier: keys of the store's indexes, so bounded (a 400 on every store, never a 503)."""
    value = _text(obj, key, path)
    if value is not None and len(value) > MAX_ID:
        raise MalformedEvent(f"{path}{key}", f"is longer than {MAX_ID} characters")
    return value


def _required_text(obj: JsonObject, key: str, path: str) -> str:
    value = _text(obj, key, path)
    if value is None:
        raise MalformedEvent(f"{path}{key}", "is required")
    return value


def _required_id(obj: JsonObject, key: str, path: str) -> str:
    value = _id(obj, key, path)
    if value is None:
        raise MalformedEvent(f"{path}{key}", "is required")
    return value


def _object(obj: JsonObject, key: str, path: str) -> JsonObject:
    return _typed(obj, key, dict, path) or {}


def _objects(obj: JsonObject, key: str, path: str) -> list[tuple[str, JsonObject]]:
    items = _typed(obj, key, list, path) or []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedEvent(f"{path}{key}[{i}]", "must be an object")
    return [(f"{path}{key}[{i}].", item) for i, item in enumerate(items)]


def _ids(obj: JsonObject, key: str, path: str) -> tuple[str, ...]:
    items = _typed(obj, key, list, path) or []
    if len(items) > MAX_FILES:
        raise MalformedEvent(f"{path}{key}", f"has more than {MAX_FILES} entries")
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item or not storable(item) or len(item) > MAX_ID:
            raise MalformedEvent(f"{path}{key}[{i}]", f"must be a non-empty string of at most {MAX_ID} characters")
    return tuple(dict.fromkeys(items))


def _new_file_upload(payload: JsonObject) -> NewFileUpload:
    p = "FileUploadEvent."
    body = _object(payload, "FileUploadEvent", "")
    info = _object(body, "MediaBasicInfo", p)
    ip = p + "MediaBasicInfo."
    source = _object(info, "SourceInfo", ip)
    return NewFileUpload(
        file_id=_required_id(body, "FileId", p),
        name=_text(info, "Name", ip),
        media_url=_text(info, "MediaUrl", ip),
        cover_url=_text(info, "CoverUrl", ip),
        media_type=_text(info, "Type", ip),
        storage_region=_text(info, "StorageRegion", ip),
        class_id=_typed(info, "ClassId", int, ip),
        create_time=_text(info, "CreateTime", ip),
        source_type=_text(source, "SourceType", ip + "SourceInfo."),
        source_context=_text(source, "SourceContext", ip + "SourceInfo."),
        procedure_task_id=_text(body, "ProcedureTaskId", p),
        review_task_id=_text(body, "ReviewAudioVideoTaskId", p),
        metadata=_typed(body, "MetaData", dict, p),
    )


# MediaProcessTaskResult (VOD API): a result's fields are under "<Type>Task", but for these two types.
_TASK_FIELDS = {"AnimatedGraphics": "AnimatedGraphicTask", "ImageSprites": "ImageSpriteTask"}


def _result(path: str, item: JsonObject) -> MediaProcessResult:
    kind = _required_text(item, "Type", path)
    field = _TASK_FIELDS.get(kind, f"{kind}Task")  # Type "Transcode" -> "TranscodeTask"
    task = _object(item, field, path)
    tp = f"{path}{field}."
    return MediaProcessResult(
        type=kind,
        status=_text(task, "Status", tp),
        err_code=_typed(task, "ErrCode", int, tp),
        message=_text(task, "Message", tp),
        output=_typed(task, "Output", dict, tp),
    )


def _procedure_state_changed(payload: JsonObject) -> ProcedureStateChanged:
    p = "ProcedureStateChangeEvent."
    body = _object(payload, "ProcedureStateChangeEvent", "")
    return ProcedureStateChanged(
        task_id=_required_id(body, "TaskId", p),
        status=_text(body, "Status", p),
        err_code=_typed(body, "ErrCode", int, p),
        message=_text(body, "Message", p),
        file_id=_id(body, "FileId", p),
        file_name=_text(body, "FileName", p),
        file_url=_text(body, "FileUrl", p),
        session_context=_text(body, "SessionContext", p),
        session_id=_text(body, "SessionId", p),
        results=tuple(_result(path, item) for path, item in _objects(body, "MediaProcessResultSet", p)),
        metadata=_typed(body, "MetaData", dict, p),
    )


def _delete_parts(path: str, item: JsonObject) -> tuple[str, tuple[DeletePart, ...]]:
    parts = tuple(
        DeletePart(_text(part, "Type", pp), _typed(part, "Definition", int, pp))
        for pp, part in _objects(item, "DeleteParts", path)
    )
    return _required_id(item, "FileId", path), parts


def _file_deleted(payload: JsonObject) -> FileDeleted:
    p = "FileDeleteEvent."
    body = _object(payload, "FileDeleteEvent", "")
    results = _objects(body, "FileDeleteResultInfo", p)
    if len(results) > MAX_FILES:
        raise MalformedEvent(f"{p}FileDeleteResultInfo", f"names more than {MAX_FILES} files")
    listed: dict[str, list[tuple[DeletePart, ...]]] = {}
    for path, item in results:
        file_id, deleted = _delete_parts(path, item)
        listed.setdefault(file_id, []).append(deleted)
    # Listed more than once: the whole file if any says so, else all the lists, in any order. Merged once at the
    # end, not at each listing: a file listed 1,000 times, of many parts each, took minutes.
    parts = {
        file_id: lists[0] if len(lists) == 1 else tuple(sorted(set().union(*lists), key=repr)) if all(lists) else ()
        for file_id, lists in listed.items()
    }
    # A result for a file missing from FileIdSet still names a file this event is about.
    file_ids = tuple(dict.fromkeys((*_ids(body, "FileIdSet", p), *parts)))
    if len(file_ids) > MAX_FILES:  # each list is within the cap, but not their union
        raise MalformedEvent(f"{p}FileIdSet", f"and FileDeleteResultInfo name more than {MAX_FILES} files")
    return FileDeleted(file_ids=file_ids, parts=parts)


def _linked_file_ids(value: object) -> set[str]:
    """Every FileId anywhere in an event (objects and lists, depth bounded by parse_event): EditMediaComplete
    names its output under Output and its inputs under Input.FileInfoSet, for instance; ClipComplete its source
    as SrcFileId (as other tasks' inputs are InputFileId, LastFrameFileId)."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if key.endswith("FileId") and isinstance(child, str):
                    found.add(child)
                elif key == "FileIdSet" and isinstance(child, list):
                    found.update(f for f in child if isinstance(f, str))
                else:
                    stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _other(payload: JsonObject, event_type: str) -> OtherEvent:
    # Best effort, never an error: unknown types are kept whatever they hold; only usable ids are linked.
    usable = {f for f in _linked_file_ids(payload) if f and len(f) <= MAX_ID and storable(f)}
    body = {k: v for k, v in payload.items() if k not in DELIVERY_FIELDS}
    return OtherEvent(event_type, tuple(sorted(usable)[:MAX_FILES]), body)


def parse_event(payload: object) -> VodEvent:
    """The typed event in a v3 notification (PUSH body or one PULL EventSet item)."""
    payload = _object_within_depth(payload)
    event_type = payload.get("EventType")
    if event_type is None:
        raise MalformedEvent("EventType", "is required")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedEvent("EventType", "must be a non-empty string")
    if len(event_type) > MAX_ID:
        raise MalformedEvent("EventType", f"is longer than {MAX_ID} characters")
    if not storable(event_type):
        raise MalformedEvent("EventType", "must not contain NUL or unpaired surrogates")
    _id(payload, "EventHandle", "")
    if event_type == "NewFileUpload":
        return _new_file_upload(payload)
    if event_type == "ProcedureStateChanged":
        return _procedure_state_changed(payload)
    if event_type == "FileDeleted":
        return _file_deleted(payload)
    return _other(payload, event_type)


def _object_within_depth(payload: object) -> JsonObject:
    if not isinstance(payload, dict):
        raise MalformedEvent("body", "must be a JSON object")
    if _depth(payload) > MAX_DEPTH:
        raise MalformedEvent("body", f"is nested more than {MAX_DEPTH} levels deep")
    return payload


def _depth(value: object) -> int:
    """Nesting depth of a JSON value, one level at a time (no recursion, so hostile depth cannot crash
    it); it stops counting past MAX_DEPTH."""
    depth = 0
    level = [value] if isinstance(value, (dict, list)) else []
    while level and depth <= MAX_DEPTH:
        depth += 1
        below = []
        for item in level:
            for child in item.values() if isinstance(item, dict) else item:
                if isinstance(child, (dict, list)):
                    below.append(child)
        level = below
    return depth


# Sorted keys, no spaces, ASCII only: one text per event whatever the sender's key order, and one that
# any store can hold as it is.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)
_AS_WRITTEN = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


class StoredEvent(Record):
    """The event as it is stored (canonical JSON without the per-delivery fields) and its dedupe key, the
    SHA-256 of the delivery's text in the same form. Every delivery of one notification gets one key: a
    PUSH retry, a PULL redelivery, and the same event arriving by PUSH and by PULL."""

    key: str
    text: str


def canonical_json(value: object) -> str:
    """The one JSON text of a plain value: what is hashed for dedupe keys and ETags, and what the store keeps."""
    return _CANONICAL.encode(value)


def stored_form(payload: JsonObject, delivered: JsonObject | None = None) -> StoredEvent:
    """`payload` as stored, keyed by `delivered`: the body as received, when what is recorded is VOD's own
    answer instead (VOD_CALLBACK_CONFIRM=fetch), so that answer changing between retries makes no second event."""
    text = _without_delivery_fields(payload)
    keyed = text if delivered is None else _without_delivery_fields(delivered)
    return StoredEvent(hashlib.sha256(keyed.encode("ascii")).hexdigest(), text)


def check_writable(payload: JsonObject) -> None:
    """MalformedEvent where a key or string, in any field (the parser's or not), holds half a surrogate pair (it has
    no UTF-8 form, and every answer that showed it would fail), or a number is NaN or infinite (Python's json reads
    them; JSON has none, and what the store wrote of one no strict reader would read). A PUSH body holding either
    is refused as it is read (shared.http.body); this checks what PullEvents and VOD's API return."""
    try:
        _AS_WRITTEN.encode(payload).encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedEvent("body", "a string in it holds an unpaired surrogate (it has no UTF-8 form)") from None
    except ValueError:
        raise MalformedEvent("body", "a number in it is NaN or infinite (no JSON has one)") from None


def _without_delivery_fields(payload: JsonObject) -> str:
    return canonical_json({k: v for k, v in payload.items() if k not in DELIVERY_FIELDS})


def expected_sign(sign_key: str, t: int) -> str:
    """Sign = lowercase hex MD5(SignKey + str(T)), VOD's signature of a PUSH delivery (MD5 is VOD's choice)."""
    return hashlib.md5((sign_key + str(t)).encode("utf-8"), usedforsecurity=False).hexdigest()


def verify_callback_sign(payload: JsonObject, sign_keys: tuple[str, ...], now: float, max_ahead: int) -> int:
    """Accept a PUSH notification only with Sign == MD5(SignKey + str(T)) for one of `sign_keys` (the current one;
    during a rotation, the previous one too) and now <= T <= now + max_ahead. Returns the index of the key it
    was signed with.

    Sign does not cover the body: it only proves the sender knows the SignKey and bounds replays
    to T. Duplicates are handled by the dedupe key, not here.
    """
    sign, t = payload.get("Sign"), payload.get("T")
    if sign is None or t is None:
        raise CallbackSignRejected("missing_signature", "Sign and T are required (configure the same SignKey in VOD)")
    if not isinstance(sign, str):
        raise CallbackSignRejected("invalid_signature", "Sign must be a string")
    if type(t) is not int:  # not bool, not "1700000000", not 1.7e9
        raise CallbackSignRejected("invalid_signature", "T must be an integer")
    sent = sign.encode("utf-8", "surrogatepass")
    matches = [hmac.compare_digest(sent, expected_sign(key, t).encode("ascii")) for key in sign_keys]
    if True not in matches:
        raise CallbackSignRejected("invalid_signature", "Sign does not match")
    if t < now:
        raise CallbackSignRejected("signature_expired", "T has passed: the notification has expired")
    if t > now + max_ahead:
        raise CallbackSignRejected("signature_too_far_ahead", f"T is more than {max_ahead} s ahead")
    return matches.index(True)


def pulled_form(item: object) -> dict[str, Any]:
    """One PullEvents EventSet item as a PUSH delivery of it carries it, so both deliveries of an event look
    the same: PullEvents returns every absent field as null, PUSH omits them. (Its EventHandle, this delivery's
    receipt, is a delivery field: stored_form leaves it out, as it does Sign and T.)"""
    without: dict[str, Any] = _without_nulls(_object_within_depth(item))  # depth checked: the recursion is bounded
    check_writable(without)
    return without


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """A record (the committed event, an upload, a task: immutable NamedTuples, nested) as plain data for
    JSON or a queue: records are objects (an event's with its `event_type`), tuples are lists."""
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        data = {name: plain(field) for name, field in value._asdict().items()}
        event_type = getattr(value, "event_type", None)
        return data if event_type is None else {"event_type": event_type, **data}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(name): plain(item) for name, item in value.items()}
    return value


def named_in(raw: object) -> dict[str, Any]:
    """What tells an operator which event this is when it cannot be read or stored: its type and the file ids its
    body names at the first level, as far as they are text (bounded: the body is anyone's until it is read)."""
    if not isinstance(raw, dict):
        return {}
    event_type = raw.get("EventType")
    ids: list[str] = []
    for body in raw.values():
        if isinstance(body, dict):
            named = body.get("FileIdSet")
            for file_id in named if isinstance(named, list) else [body.get("FileId")]:
                ids += [file_id[:64]] if isinstance(file_id, str) else []
    return {"event_type": event_type[:64] if isinstance(event_type, str) else None, "file_ids": ids[:20]}
