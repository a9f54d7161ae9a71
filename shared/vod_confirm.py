"""Confirm-by-fetch (VOD_CALLBACK_CONFIRM=fetch): before recording a PUSH NewFileUpload, FileDeleted or
ProcedureStateChanged, ask VOD. An upload is recorded as VOD has the file (DescribeMediaInfos,
https://cloud.tencent.com/document/api/266/31763), not as the body says; a delete only once VOD no longer
lists each file it deletes whole; a task event only as VOD has the task (DescribeTaskDetail,
https://cloud.tencent.com/document/api/266/33431), so no body puts its own results (the output URLs a user
is shown) on a file. Where VOD does not vouch for an event yet, the answer is a 503 and VOD delivers it
again. A PUSH body is vouched for only by Sign = MD5(SignKey + T), which does not cover it: whoever saw one
delivery could replay its Sign and T with another body until T passes.

Imported only when the option is on. VOD is called through shared/vod_cloud_api.py (the stdlib, signed as the
SDK signs), not through the SDK, whose import would be most of the callback's cold start.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from shared.config import VodApiSettings
from shared.errors import MalformedEvent, VodUnavailable
from shared.events import FileDeleted, NewFileUpload, ProcedureStateChanged, VodEvent, check_writable, parse_event
from shared.ingest import Vouched
from shared.source_context import Attribution, attribute
from shared.vod_cloud_api import CloudApiError, VodCloudApi, with_sub_app

MAX_FILE_IDS = 20  # DescribeMediaInfos: FileIds per call
PARALLEL_CALLS = 8  # of them at once (VOD allows 100 a second): 1,000 FileIds in 7 rounds
_TIMEOUT_SECONDS = 3  # the callback's own timeout is 10 s
_UNEXPECTED = (KeyError, TypeError, ValueError, AttributeError)  # an answer of a shape VOD does not document
# VOD's API may not list yet a file it has just stored, as it may list still one just deleted. An upload event of a
# file VOD does not list, made this recently by its own account (MediaBasicInfo.CreateTime), is asked to come
# again: recorded unconfirmed, under the delivery's dedupe key, the genuine one would keep its user from the upload
# for good. A forged body gains nothing by it: a recent time only gets it a 503.
LISTING_LAG_SECONDS = 300.0


class MediaLookup:
    """What VOD knows of files and of their tasks."""

    def __init__(self, settings: VodApiSettings) -> None:
        self._settings = settings
        self._client = self._new_client()
        self._sub_app_id = settings.sub_app_id

    def _new_client(self) -> VodCloudApi:
        return VodCloudApi(self._settings, _TIMEOUT_SECONDS)

    def media(self, file_ids: Sequence[str]) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """{FileId: MediaInfo} for the files VOD has, and the ones it does not."""
        batches = [file_ids[start : start + MAX_FILE_IDS] for start in range(0, len(file_ids), MAX_FILE_IDS)]
        answers = (
            [self._describe(self._client, batch) for batch in batches] if len(batches) < 2 else self._at_once(batches)
        )
        found: dict[str, dict[str, Any]] = {}
        missing: set[str] = set()
        for batch_found, batch_missing in answers:
            found.update(batch_found)
            missing.update(batch_missing)
        return found, missing

    def _at_once(self, batches: Sequence[Sequence[str]]) -> list[tuple[dict[str, dict[str, Any]], set[str]]]:
        """The batches of a FileDeleted of many files, PARALLEL_CALLS at a time: one after another, 1,000 FileIds
        (50 calls) would outlast the callback's timeout at VOD's usual latency, and every retry with it. A client
        per thread: each keeps one connection, which is not made to be shared between threads."""
        from concurrent.futures import ThreadPoolExecutor  # here: only a delete of over 20 files needs it

        local = threading.local()
        clients: list[VodCloudApi] = []  # closed at the end: their threads are gone, their connections would stay

        def describe(batch: Sequence[str]) -> tuple[dict[str, dict[str, Any]], set[str]]:
            if not hasattr(local, "client"):
                local.client = self._new_client()
                clients.append(local.client)
            return self._describe(local.client, batch)

        pool = ThreadPoolExecutor(min(PARALLEL_CALLS, len(batches)), thread_name_prefix="describe-media")
        try:
            return list(pool.map(describe, batches))
        finally:  # the first failure is the answer (a 503): the calls not begun are not made
            pool.shutdown(wait=True, cancel_futures=True)
            for client in clients:
                client.close()

    def _describe(self, client: VodCloudApi, file_ids: Sequence[str]) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """(MediaInfoSet, NotExistFileIdSet) of one DescribeMediaInfos call."""
        params = with_sub_app({"FileIds": list(file_ids), "Filters": ["basicInfo", "metaData"]}, self._sub_app_id)
        try:
            answer = client.call("DescribeMediaInfos", params)
            found = {info["FileId"]: info for info in answer.get("MediaInfoSet") or []}
            return found, set(answer.get("NotExistFileIdSet") or [])
        # VOD retries a delivery it got no 200 for: a 503 now loses nothing (an answer of an unexpected
        # shape too). Its code tells the operator keys that VOD refuses from a VOD that is not reached.
        except CloudApiError as exc:
            raise VodUnavailable(f"DescribeMediaInfos failed: {exc.code}") from exc
        except _UNEXPECTED as exc:
            raise VodUnavailable(f"DescribeMediaInfos failed: {type(exc).__name__}") from exc

    def task(self, task_id: str, task_type: str) -> dict[str, Any] | None:
        """VOD's task `task_id` of this type (its part of DescribeTaskDetail's answer: ProcedureTask for a
        Procedure, ...); None when VOD has no such task (it answers for those of the last 3 days)."""
        params = with_sub_app({"TaskId": task_id}, self._sub_app_id)
        try:
            answer = self._client.call("DescribeTaskDetail", params)
            task = answer.get(task_type + "Task")
            return task if answer.get("TaskType") == task_type and isinstance(task, dict) else None
        except CloudApiError as exc:
            if exc.code == "InvalidParameterValue.TaskId":  # VOD: "the task ID does not exist"
                return None
            raise VodUnavailable(f"DescribeTaskDetail failed: {exc.code}") from exc
        except _UNEXPECTED as exc:
            raise VodUnavailable(f"DescribeTaskDetail failed: {type(exc).__name__}") from exc


# The tasks an upload event names: (its field, DescribeTaskDetail's TaskType, where the task has its FileId).
_UPLOAD_TASKS = (
    ("procedure_task_id", "Procedure", ("FileId",)),
    ("review_task_id", "ReviewAudioVideo", ("Input", "FileId")),
)


def _at(value: object, path: Sequence[str]) -> object:
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def vouched_upload(payload: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
    """The NewFileUpload with VOD's own facts (name, URLs, type, region, class, sourceContext, metadata)
    in place of the body's."""
    vouched = copy.deepcopy(dict(payload))
    body = vouched.setdefault("FileUploadEvent", {})
    body["MediaBasicInfo"] = info.get("BasicInfo") or {}
    body["MetaData"] = info.get("MetaData")  # none from VOD: none, not the body's
    return vouched


def vouched_task(payload: Mapping[str, Any], task: Mapping[str, Any]) -> dict[str, Any]:
    """The ProcedureStateChanged with VOD's ProcedureTask (the same fields) in place of the body's."""
    return {**copy.deepcopy(dict(payload)), "ProcedureStateChangeEvent": copy.deepcopy(dict(task))}


def vouched_delete(payload: Mapping[str, Any], gone: Sequence[str]) -> dict[str, Any]:
    """The FileDeleted with the files VOD no longer has (`gone`) deleted whole, whatever parts the body lists
    for them (how VOD lists a whole file's delete is not published)."""
    body = copy.deepcopy(dict(payload["FileDeleteEvent"]))
    whole = set(gone)
    results = body.get("FileDeleteResultInfo")
    if isinstance(results, list):
        body["FileDeleteResultInfo"] = [r for r in results if not (isinstance(r, dict) and r.get("FileId") in whole)]
    body["FileIdSet"] = list(dict.fromkeys([*(body.get("FileIdSet") or []), *gone]))
    return {**payload, "FileDeleteEvent": body}


def _readable(vouched: Mapping[str, Any], action: str) -> VodEvent:
    """The event as VOD's answer has it. An answer of a shape VOD does not document is VOD's fault, not the
    body's: a 503 (delivered again), never a 400 that blames the delivery, nor a crash."""
    try:
        event = parse_event(vouched)
        check_writable(vouched)
    except MalformedEvent as exc:
        raise VodUnavailable(f"{action} answered an unexpected shape: {exc.field}") from exc
    return event


def _made_since(create_time: str | None, since: float) -> bool:
    """Whether an ISO 8601 time with its zone, as VOD writes it (2019-01-09T16:36:22Z), is `since` or later."""
    from datetime import datetime  # here: only a file VOD does not list needs it

    try:
        made = datetime.fromisoformat((create_time or "").replace("Z", "+00:00"))
        return made.tzinfo is not None and made.timestamp() >= since
    except (ValueError, OverflowError):  # not such a time, or one past what a timestamp holds
        return False


def _confirmed_upload(
    event: NewFileUpload, payload: Mapping[str, Any], lookup: MediaLookup, keys: Sequence[str], now: float
) -> Vouched:
    found, missing = lookup.media([event.file_id])
    info = found.get(event.file_id)
    if info is None and event.file_id in missing:
        if _made_since(event.create_time, now - LISTING_LAG_SECONDS):
            raise VodUnavailable(f"VOD does not list file {event.file_id} yet")
        return Vouched(payload, Attribution("unconfirmed"))
    if info is None:  # in neither list: not an answer VOD documents (a 200 would make every retry a duplicate)
        raise VodUnavailable(f"DescribeMediaInfos named file {event.file_id} neither found nor missing")
    # DescribeMediaInfos does not tell a file's tasks: those the body names must be VOD's, of this file (a
    # made-up task flow would have the uploader follow a task that never ends).
    for field, task_type, file_id_at in _UPLOAD_TASKS:
        task_id = getattr(event, field)
        if task_id and _at(lookup.task(task_id, task_type), file_id_at) != event.file_id:
            raise VodUnavailable(f"VOD has no {task_type} task {task_id} of file {event.file_id}")
    vouched = vouched_upload(payload, info)
    upload = _readable(vouched, "DescribeMediaInfos")
    assert isinstance(upload, NewFileUpload)  # the body's EventType, which vouched_upload keeps
    # VOD's API may answer these null ("取不到有效值"): then it vouches for no one, and a 200 would record the upload
    # with no user for good (every retry a duplicate). Asked again later; a forged body only earns a 503 by it.
    if not info.get("BasicInfo"):  # null, or nothing in it (what else is no object failed the shape check above)
        raise VodUnavailable(f"DescribeMediaInfos gave no BasicInfo of file {event.file_id}")
    if event.source_context and not upload.source_context:  # SourceInfo, or its SourceContext, null or empty
        raise VodUnavailable(f"DescribeMediaInfos gave no sourceContext of file {event.file_id}, whose body has one")
    return Vouched(vouched, attribute(upload.source_context, keys, confirmed=True))


def confirmed(payload: Mapping[str, Any], lookup: MediaLookup, keys: Sequence[str], now: float) -> Vouched:
    """What to record for one PUSH delivery at `now` (Unix seconds): an upload as VOD has it (unconfirmed, with no
    user, when VOD does not know the file, unless the body says it was made recently); a delete as VOD confirms it; a
    task event as VOD has the task now."""
    event = parse_event(payload)
    if isinstance(event, ProcedureStateChanged):
        task = lookup.task(event.task_id, "Procedure")
        # A genuine event's task is VOD's before it is sent; one VOD does not know (yet) is answered 503, so
        # a genuine delivery comes again and a forged one is dropped. A FINISH VOD does not report yet
        # would record the task as still processing, under the last delivery it has: VOD is asked to wait.
        if task is None:
            raise VodUnavailable(f"VOD has no procedure task {event.task_id}")
        if event.status == "FINISH" and task.get("Status") != "FINISH":
            raise VodUnavailable(f"VOD does not report task {event.task_id} finished yet")
        vouched = vouched_task(payload, task)
        _readable(vouched, "DescribeTaskDetail")
        return Vouched(vouched, None)
    if isinstance(event, NewFileUpload):
        return _confirmed_upload(event, payload, lookup, keys, now)
    if isinstance(event, FileDeleted) and event.file_ids:
        _, missing = lookup.media(list(event.file_ids))
        # A delete of some parts (transcodes, say) leaves the media in place: VOD still listing the file is
        # what it should say (the parts are recorded as delivered). A whole file it still lists is not
        # confirmed: a 503, so that a genuine delete VOD's API has not caught up with comes again; dropping
        # it under this delivery's dedupe key would lose it for good.
        listed = [f for f in event.file_ids if f not in missing and not event.parts_for(f)]
        if listed:
            raise VodUnavailable(f"VOD still lists {len(listed)} of the {len(event.file_ids)} deleted file(s)")
        # A file VOD no longer has is deleted whole, as VOD says, whatever parts the body lists for it.
        gone = [f for f in event.file_ids if f in missing and event.parts_for(f)]
        if gone:
            return Vouched(vouched_delete(payload, gone), None)
    return Vouched(payload, None)
