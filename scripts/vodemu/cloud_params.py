"""Parameters of the emulated cloud API actions: accepted names and JSON types, typed access, field rules.

Unknown parameters and wrong JSON types are refused as Tencent's gateway does (UnknownParameter,
InvalidParameter), so a misspelt field in an app's call fails locally too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from vodemu.signature import MAX_SESSION_CONTEXT, MAX_SOURCE_CONTEXT, context_size
from vodemu.state import UploadOptions


class CloudApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Accepted parameters per action with their JSON types, as in the installed SDK's request models.
_STR, _INT, _LIST, _OBJECTS = "String", "Integer", "Array of String", "Array of Object"
ACTION_PARAMS: dict[str, dict[str, str]] = {
    "ModifyEventConfig": {
        "SubAppId": _INT,
        "Mode": _STR,
        "NotificationUrl": _STR,
        "UploadMediaCompleteEventSwitch": _STR,
        "DeleteMediaCompleteEventSwitch": _STR,
        "PersistenceCompleteEventSwitch": _STR,
        "SignKey": _STR,
    },
    "DescribeEventConfig": {"SubAppId": _INT},
    "PullEvents": {"SubAppId": _INT, "ExtInfo": _STR},
    "ConfirmEvents": {"SubAppId": _INT, "ExtInfo": _STR, "EventHandles": _LIST},
    "ApplyUpload": {
        "SubAppId": _INT,
        "MediaType": _STR,
        "MediaName": _STR,
        "CoverType": _STR,
        "Procedure": _STR,
        "ExpireTime": _STR,
        "StorageRegion": _STR,
        "ClassId": _INT,
        "SourceContext": _STR,
        "SessionContext": _STR,
        "ExtInfo": _STR,
        "MediaStoragePath": _STR,
    },
    "CommitUpload": {"SubAppId": _INT, "VodSessionKey": _STR},
    "DescribeMediaInfos": {"SubAppId": _INT, "FileIds": _LIST, "Filters": _LIST},
    "DescribeTaskDetail": {"SubAppId": _INT, "TaskId": _STR},
    "DeleteMedia": {"SubAppId": _INT, "FileId": _STR, "DeleteParts": _OBJECTS},
}


def _type_ok(value: object, kind: str) -> bool:
    if kind == _INT:
        return type(value) is int
    if kind == _LIST:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == _OBJECTS:
        return isinstance(value, list) and all(isinstance(v, dict) for v in value)
    return isinstance(value, str)


class Params:
    """The JSON body of one action, type-checked against the action's parameter list."""

    def __init__(self, values: Mapping[str, Any], spec: Mapping[str, str]) -> None:
        for name, value in values.items():
            if name not in spec:
                raise CloudApiError("UnknownParameter", f"The parameter `{name}` is not recognized")
            if value is not None and not _type_ok(value, spec[name]):
                raise CloudApiError("InvalidParameter", f"The value type of parameter `{name}` must be {spec[name]}")
        self._values = {k: v for k, v in values.items() if v is not None}

    def has(self, name: str) -> bool:
        return name in self._values

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self._values.get(name)
        if value is None and required:
            raise CloudApiError("MissingParameter", f"The request is missing a required parameter `{name}`")
        return value if value is None else str(value)

    def integer(self, name: str) -> int | None:
        value = self._values.get(name)
        return None if value is None else int(value)

    def texts(self, name: str, *, required: bool = False) -> list[str]:
        value = self._values.get(name)
        if value is None:
            if required:
                raise CloudApiError("MissingParameter", f"The request is missing a required parameter `{name}`")
            return []
        return list(value)

    def objects(self, name: str) -> list[dict[str, Any]]:
        return list(self._values.get(name) or [])


# MediaDeleteItem.Type's values (the SDK's model of DeleteMedia's DeleteParts)
DELETE_PART_TYPES = frozenset(
    [
        "OriginalFiles",
        "TranscodeFiles",
        "AdaptiveDynamicStreamingFiles",
        "WechatPublishFiles",
        "WechatMiniProgramPublishFiles",
        "MpsAiMediaAiAnalysisFiles",
        "MpsAiMediaSmartEraseFiles",
        "MpsAiMediaSmartSubtitleFiles",
    ]
)


def delete_parts(params: Params) -> list[dict[str, Any]]:
    """DeleteMedia's DeleteParts as VOD reports them: each {Type, Definition} (0, the default: every one of
    the type); a Type is required, and one of VOD's."""
    parts = []
    for n, item in enumerate(params.objects("DeleteParts"), start=1):
        unknown = set(item) - {"Type", "Definition"}
        if unknown:
            raise CloudApiError(
                "UnknownParameter", f"The parameter `DeleteParts.{n}.{sorted(unknown)[0]}` is not recognized"
            )
        kind, definition = item.get("Type"), item.get("Definition")
        if kind not in DELETE_PART_TYPES:
            raise CloudApiError(
                "InvalidParameterValue", f"DeleteParts.{n}.Type: one of {', '.join(sorted(DELETE_PART_TYPES))}"
            )
        if definition is not None and (type(definition) is not int or definition < 0):
            raise CloudApiError("InvalidParameterValue", f"DeleteParts.{n}.Definition: a template number, 0 for all")
        parts.append({"Type": kind, "Definition": definition or 0})
    return parts


def upload_options(params: Params, default_region: str) -> UploadOptions:
    class_id = params.integer("ClassId") or 0
    if class_id < 0:
        raise CloudApiError("InvalidParameterValue.ClassId", "ClassId must not be negative")
    source_context = params.text("SourceContext")
    if source_context is not None and context_size(source_context) > MAX_SOURCE_CONTEXT:
        raise CloudApiError("InvalidParameterValue", f"SourceContext: at most {MAX_SOURCE_CONTEXT} bytes in UTF-8")
    session_context = params.text("SessionContext")
    if session_context is not None and context_size(session_context) > MAX_SESSION_CONTEXT:
        raise CloudApiError(
            "InvalidParameterValue.SessionContextTooLong",
            f"SessionContext: at most {MAX_SESSION_CONTEXT} bytes in UTF-8",
        )
    options = UploadOptions(
        storage_region=params.text("StorageRegion") or default_region,
        class_id=class_id,
        procedure=params.text("Procedure"),
        source_context=source_context,
        session_context=session_context,
    )
    expire_time = params.text("ExpireTime")
    return replace(options, expire_time=iso8601(expire_time)) if expire_time else options


def iso8601(text: str) -> str:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CloudApiError("InvalidParameterValue.ExpireTime", "ExpireTime must be ISO 8601") from exc
    if parsed.tzinfo is None:
        raise CloudApiError("InvalidParameterValue.ExpireTime", "ExpireTime needs a time zone (e.g. Z)")
    try:
        return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except OverflowError as exc:  # 9999-12-31T23:59:59-23:59: past the calendar once in UTC
        raise CloudApiError("InvalidParameterValue.ExpireTime", "ExpireTime is out of range") from exc
