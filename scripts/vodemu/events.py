"""v3 event notifications as VOD writes them, and which of them an upload produces: NewFileUpload
(https://cloud.tencent.com/document/product/266/7830), ProcedureStateChanged
(https://cloud.tencent.com/document/product/266/9636), FileDeleted
(https://cloud.tencent.com/document/product/266/13434).

Events are plain dicts with null fields left out, as VOD's PUSH deliveries are (PullEvents answers them
with every absent field null: `as_pulled`). The emulator does not
transcode: a procedure "finishes" at once, and its Transcode result points at the original media URL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from vodemu.state import PULL, PUSH, EventConfig, MediaFile, UploadOptions

NEVER_EXPIRES = "9999-12-31T23:59:59Z"
EMULATED_TRANSCODE_DEFINITION = 100010  # a VOD preset definition id, reported by the fake Transcode task

_VIDEO_TYPES = frozenset(
    [
        "3gp",
        "asf",
        "asx",
        "avi",
        "dat",
        "f4v",
        "flv",
        "m2ts",
        "m3u8",
        "m4v",
        "mkv",
        "mov",
        "mp4",
        "mp4v",
        "mpe",
        "mpeg",
        "mpg",
        "mts",
        "mxf",
        "qt",
        "ram",
        "rm",
        "rmvb",
        "ts",
        "vob",
        "webm",
        "wm",
        "wmv",
    ]
)
_AUDIO_TYPES = frozenset(["aac", "ac3", "amr", "ape", "flac", "m4a", "mp3", "ogg", "opus", "wav", "wma"])
_IMAGE_TYPES = frozenset(["bmp", "gif", "heic", "jpeg", "jpg", "png", "tif", "tiff", "webp"])
MEDIA_TYPES = _VIDEO_TYPES | _AUDIO_TYPES | _IMAGE_TYPES
COVER_TYPES = _IMAGE_TYPES

UrlFor = Callable[[str, str], str]  # (bucket, key) -> URL the emulator serves the object at


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(int(timestamp), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _compact(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields without the null ones, at every depth."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if v is not None}
        return [strip(v) for v in value] if isinstance(value, list) else value

    compacted: dict[str, Any] = strip(fields)
    return compacted


def category(media_type: str) -> str:
    media_type = media_type.lower()
    if media_type in _AUDIO_TYPES:
        return "Audio"
    if media_type in _IMAGE_TYPES:
        return "Image"
    return "Video"


def media_basic_info(media: MediaFile, url_for: UrlFor) -> dict[str, Any]:
    options = media.options
    return _compact(
        {
            "Name": media.name,
            "Description": "",
            "CreateTime": iso_time(media.created_at),
            "UpdateTime": iso_time(media.updated_at),
            "ExpireTime": options.expire_time or NEVER_EXPIRES,
            "ClassId": options.class_id,
            "CoverUrl": url_for(media.bucket, media.cover_key) if media.cover_key else "",
            "Type": media.type,
            "MediaUrl": url_for(media.bucket, media.media_key),
            "SourceInfo": {"SourceType": "Upload", "SourceContext": options.source_context or ""},
            "StorageRegion": options.storage_region,
            "StoragePath": "/" + media.media_key,
            "TagSet": [],
            "Vid": "",
            "Category": category(media.type),
            "Status": "Normal",
            "StorageClass": "STANDARD",
        }
    )


def meta_data(media: MediaFile) -> dict[str, Any]:
    # Only what the emulator knows without probing the file.
    return {"Size": media.size, "Container": media.type}


def new_file_upload(media: MediaFile, url_for: UrlFor) -> dict[str, Any]:
    return _compact(
        {
            "EventType": "NewFileUpload",
            "FileUploadEvent": {
                "FileId": media.file_id,
                "MediaBasicInfo": media_basic_info(media, url_for),
                "ProcedureTaskId": media.procedure_task_id or "",
                "ReviewAudioVideoTaskId": "",
                "MetaData": meta_data(media),
            },
        }
    )


def _transcode_result(media: MediaFile, url_for: UrlFor) -> dict[str, Any]:
    return {
        "Type": "Transcode",
        "TranscodeTask": {
            "Status": "SUCCESS",
            "ErrCode": 0,
            "ErrCodeExt": "",
            "Message": "SUCCESS",
            "Progress": 100,
            "Input": {"Definition": EMULATED_TRANSCODE_DEFINITION},
            "Output": {
                "Url": url_for(media.bucket, media.media_key),
                "Definition": EMULATED_TRANSCODE_DEFINITION,
                "Size": media.size,
                "Container": media.type,
            },
        },
    }


def procedure_task(media: MediaFile, status: str, url_for: UrlFor) -> dict[str, Any]:
    """The file's procedure task at `status`: what its ProcedureStateChanged carries, and what
    DescribeTaskDetail (https://cloud.tencent.com/document/api/266/33431) answers as ProcedureTask."""
    options = media.options
    finished = status == "FINISH"
    return _compact(
        {
            "TaskId": media.procedure_task_id,
            "Status": status,
            "ErrCode": 0,
            "Message": "SUCCESS",
            "FileId": media.file_id,
            "FileName": media.name,
            "FileUrl": url_for(media.bucket, media.media_key),
            "MetaData": meta_data(media),
            "MediaProcessResultSet": [_transcode_result(media, url_for)] if finished else [],
            "AiContentReviewResultSet": [],
            "AiAnalysisResultSet": [],
            "AiRecognitionResultSet": [],
            "TasksPriority": options.task_priority or 0,
            "TasksNotifyMode": options.task_notify_mode,  # as signed; left out when the signature had none
            "SessionContext": options.session_context or "",
            "SessionId": "",
        }
    )


def procedure_state_changed(media: MediaFile, status: str, url_for: UrlFor) -> dict[str, Any]:
    return {"EventType": "ProcedureStateChanged", "ProcedureStateChangeEvent": procedure_task(media, status, url_for)}


def procedure_statuses(options: UploadOptions) -> tuple[str, ...]:
    """The ProcedureStateChanged statuses a procedure reports, by the signature's taskNotifyMode.

    Not given (the default) or Change: PROCESSING, then FINISH; Finish: FINISH only; None: nothing.
    Without a procedure there is no task, so nothing either. (The project's issue 4 asks for both
    statuses by default; note that Tencent's API reference reads an absent mode as Finish.)
    """
    if not options.procedure or options.task_notify_mode == "None":  # procedure=: signed empty, no task flow
        return ()
    if options.task_notify_mode == "Finish":
        return ("FINISH",)
    return ("PROCESSING", "FINISH")  # Change, or no mode given


def upload_events(media: MediaFile, config: EventConfig, url_for: UrlFor) -> list[tuple[str, dict[str, Any]]]:
    """The (delivery mode, event) pairs a committed upload produces under `config`.

    UploadMediaCompleteEventSwitch gates NewFileUpload only; procedure state changes are always sent.
    """
    events = [new_file_upload(media, url_for)] if config.upload_switch == "ON" else []
    events.extend(procedure_state_changed(media, s, url_for) for s in procedure_statuses(media.options))
    return _delivered(events, config)


def file_deleted(file_id: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """FileDeleted for DeleteMedia of `parts` of a file (none: the whole of it). The page's example gives the
    parts deleted; how VOD lists a whole file's delete is not published: here, with no parts."""
    return {
        "EventType": "FileDeleted",
        "FileDeleteEvent": {
            "FileIdSet": [file_id],
            "FileDeleteResultInfo": [{"FileId": file_id, "DeleteParts": parts}],
        },
    }


def delete_events(file_id: str, parts: list[dict[str, Any]], config: EventConfig) -> list[tuple[str, dict[str, Any]]]:
    """What DeleteMedia produces under `config`: FileDeleted, if DeleteMediaCompleteEventSwitch is ON."""
    return _delivered([file_deleted(file_id, parts)] if config.delete_switch == "ON" else [], config)


def _delivered(events: list[dict[str, Any]], config: EventConfig) -> list[tuple[str, dict[str, Any]]]:
    # PUSH without a NotificationUrl has nowhere to go, so nothing is queued (as VOD: nothing is sent).
    if config.mode == PUSH and not config.notification_url:
        return []
    delivery = PULL if config.mode == PULL else PUSH
    return [(delivery, event) for event in events]


# What PullEvents answers, unlike PUSH: every field of the API's data structures, null when absent (its example,
# https://cloud.tencent.com/document/api/266/34183; the structures: https://cloud.tencent.com/document/api/266/31773).
def _names(text: str) -> list[str]:
    return text.split()


_EVENT_CONTENT = _names(
    "EventHandle EventType FileUploadEvent ProcedureStateChangeEvent FileDeleteEvent PullCompleteEvent "
    "EditMediaCompleteEvent SplitMediaCompleteEvent ComposeMediaCompleteEvent ClipCompleteEvent "
    "TranscodeCompleteEvent CreateImageSpriteCompleteEvent ConcatCompleteEvent SnapshotByTimeOffsetCompleteEvent "
    "WechatPublishCompleteEvent WechatMiniProgramPublishCompleteEvent RemoveWatermarkCompleteEvent "
    "RestoreMediaCompleteEvent RebuildMediaCompleteEvent ExtractTraceWatermarkCompleteEvent "
    "ExtractCopyRightWatermarkCompleteEvent ReviewAudioVideoCompleteEvent ReduceMediaBitrateCompleteEvent "
    "DescribeFileAttributesCompleteEvent QualityInspectCompleteEvent QualityEnhanceCompleteEvent "
    "MediaCastStatusChangedEvent PersistenceCompleteEvent ComplexAdaptiveDynamicStreamingCompleteEvent "
    "ProcessMediaByMPSCompleteEvent AigcImageCompleteEvent AigcVideoCompleteEvent ExtractBlindWatermarkComplete "
    "SceneAigcImageCompleteEvent ProcessImageAsyncCompleteEvent AigcHunyuan3DCompleteEvent "
    "DescribeAigcFaceInfoAsyncCompleteEvent CreateAigcCustomVoiceCompleteEvent "
    "CreateAigcAdvancedCustomElementCompleteEvent"
)
_META_DATA = _names(
    "Size Container Bitrate Height Width Duration Rotate VideoStreamSet AudioStreamSet VideoDuration AudioDuration Md5"
)
# field -> (the fields of the structure there, and what is within them)
Shape = dict[str, tuple[list[str], "Shape"]]
_PULLED: Shape = {
    "FileUploadEvent": (
        _names("FileId MediaBasicInfo ProcedureTaskId MetaData ReviewAudioVideoTaskId"),
        {
            "MediaBasicInfo": (
                _names(
                    "Name Description CreateTime UpdateTime ExpireTime ClassId ClassName ClassPath CoverUrl Type "
                    "MediaUrl SourceInfo StorageRegion TagSet Vid Category Status StorageClass StoragePath"
                ),
                {
                    "SourceInfo": (
                        _names("SourceType SourceContext LiveRecordInfo TrtcRecordInfo WebPageRecordInfo"),
                        {},
                    )
                },
            ),
            "MetaData": (_META_DATA, {}),
        },
    ),
    "ProcedureStateChangeEvent": (
        _names(
            "TaskId Status ErrCode Message FileId FileName FileUrl MetaData MediaProcessResultSet "
            "AiContentReviewResultSet AiAnalysisResultSet AiRecognitionResultSet TasksPriority TasksNotifyMode "
            "SessionContext SessionId Operator OperationType"
        ),
        {
            "MetaData": (_META_DATA, {}),
            "MediaProcessResultSet": (
                _names(
                    "Type TranscodeTask AnimatedGraphicTask SnapshotByTimeOffsetTask SampleSnapshotTask "
                    "ImageSpriteTask CoverBySnapshotTask AdaptiveDynamicStreamingTask"
                ),
                {
                    "TranscodeTask": (
                        _names("Status ErrCodeExt ErrCode Message Input Output Progress BeginProcessTime FinishTime"),
                        {},
                    )
                },
            ),
        },
    ),
    "FileDeleteEvent": (
        _names("FileIdSet FileDeleteResultInfo"),
        {"FileDeleteResultInfo": (_names("FileId DeleteParts"), {"DeleteParts": (_names("Type Definition"), {})})},
    ),
}


def _with_nulls(value: Any, fields: list[str], within: Shape) -> Any:
    if isinstance(value, list):
        return [_with_nulls(item, fields, within) for item in value]
    if not isinstance(value, dict):
        return value
    filled = {**dict.fromkeys(fields), **value}
    for name, (inner_fields, inner) in within.items():
        if filled[name] is not None:
            filled[name] = _with_nulls(filled[name], inner_fields, inner)
    return filled


def as_pulled(event: dict[str, Any], handle: str) -> dict[str, Any]:
    """An EventSet item of PullEvents: the event with its EventHandle, every absent field null."""
    filled: dict[str, Any] = _with_nulls({**event, "EventHandle": handle}, _EVENT_CONTENT, _PULLED)
    return filled


def push_signature(sign_key: str, expires_at: int) -> str:
    """Sign = lowercase hex MD5(SignKey + str(T)), with T the delivery's expiry (VOD's event signature)."""
    return hashlib.md5((sign_key + str(expires_at)).encode("utf-8"), usedforsecurity=False).hexdigest()


def signed_push_body(event: dict[str, Any], sign_key: str, now: float, ttl_seconds: int) -> dict[str, Any]:
    if not sign_key:
        return event
    expires_at = int(now) + ttl_seconds
    return {**event, "Sign": push_signature(sign_key, expires_at), "T": expires_at}
