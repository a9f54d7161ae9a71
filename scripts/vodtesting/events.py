"""Events exactly as SCF and VOD deliver them, for tests that call the real handlers.

- `http_event`: what an API gateway trigger (integrated request,
  https://cloud.tencent.com/document/product/583/31927) or a function URL
  (https://cloud.tencent.com/document/product/583/96099) hands the function.
- `vod_event`: a v3 event notification, each keyword a field named as VOD names it, put where VOD puts
  it (NewFileUpload https://cloud.tencent.com/document/product/266/7830, ProcedureStateChanged
  https://cloud.tencent.com/document/product/266/9636, FileDeleted
  https://cloud.tencent.com/document/product/266/13434; any other type from its fields).
- `signed`: the Sign and T that VOD adds to a PUSH delivery when a SignKey is configured.

Written from Tencent's pages, not from the bundle's code: a test built with them checks the bundle.
"""

from __future__ import annotations

import base64
import copy
import difflib
import json
import time
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

FILE_ID = "5285890784273533167"
TASK_ID = "1400329073-procedurev2-6a8d1e5f8c3b4a2e9d7f0c1b2a3e4d5ft0"


def _media_url(file_id: str) -> str:
    folder = f"b1e3a1f2{quote(str(file_id), safe='')}"
    return f"http://1400329073.vod2.myqcloud.com/d9d5f4ffvodgzp1400329073/{folder}/sample.mp4"


_MEDIA_URL = _media_url(FILE_ID)
_WHEN = "2026-01-01T00:00:00Z"

_API_GATEWAY_HEADERS = {
    "Accept": "application/json",
    "Host": "service-f94sy04v-1250000000.gz.apigw.tencentcs.com",
    "User-Agent": "vod-js-sdk-v6",
}
_FUNCTION_URL_HEADERS = {
    "accept": "application/json",
    "host": "1250000000-abcdefgh-gz.scf.tencentcs.com",
    "user-agent": "vod-js-sdk-v6",
    "x-scf-remote-addr": "203.0.113.7",
}


def _body(body: str | bytes | Mapping[str, Any] | None) -> tuple[str | None, bool, bool]:
    """(text, base64-encoded, is JSON) as the trigger passes a body."""
    if body is None:
        return None, False, False
    if isinstance(body, Mapping):
        return json.dumps(body), False, True
    if isinstance(body, bytes):
        try:
            return body.decode("utf-8"), False, False
        except UnicodeDecodeError:
            return base64.b64encode(body).decode("ascii"), True, False
    return body, False, False


def gateway_route(path: str) -> tuple[str, str, dict[str, str]]:
    """The API's route a path takes, as deploy/api-gateway/serverless.yml declares it: requestContext carries
    its path (a template) and its method ("ANY"), not the request's; and its path parameters."""
    parent, _, last = path.rstrip("/").rpartition("/")
    if parent == "/uploads" and last:  # as sent, percent-encoded: the uploads function reads `path` and decodes it
        return "/uploads/{fileId}", "ANY", {"fileId": last}
    return path, "POST" if path == "/vod-events" else "ANY", {}


def http_event(
    method: str = "POST",
    path: str = "/",
    *,
    headers: Mapping[str, str] | None = None,
    body: str | bytes | Mapping[str, Any] | None = None,
    shape: str = "apigw",
    query: Mapping[str, str | list[str]] | None = None,
    request_id: str | None = None,
    base64: bool = False,
) -> dict[str, Any]:
    """The event SCF delivers for one HTTP request. `body` may be text, bytes (not UTF-8: sent base64
    as SCF does) or a dict (sent as JSON, with a JSON Content-Type unless `headers` says otherwise);
    None means no body, which the trigger then leaves out. `base64=True` marks a text body as
    base64-encoded as it is (to test what a handler makes of a bad one). `query`: the query string's parameters
    (a trigger delivers them apart from the path, which therefore holds no "?"); a name sent more than once has its
    values as a list, as API gateway gives them."""
    if "?" in path or "#" in path:  # an event no trigger sends: the handler would take the query for the path
        raise ValueError(f"{path!r}: a path, not a URL: give its query as query={{...}}")
    text, is_base64, is_json = _body(body)
    is_base64 = is_base64 or base64
    given = dict(headers or {})
    if is_json and not any(name.lower() == "content-type" for name in given):
        given["Content-Type"] = "application/json"
    if shape == "function_url":
        event: dict[str, Any] = {
            "headers": {**_FUNCTION_URL_HEADERS, **{k.lower(): v for k, v in given.items()}},
            "httpMethod": method,
            "path": path,
            "queryString": dict(query or {}),
        }
    elif shape == "apigw":
        lowered = {name.lower() for name in given}
        defaults = {k: v for k, v in _API_GATEWAY_HEADERS.items() if k.lower() not in lowered}
        rid = request_id or str(uuid.uuid4())
        route, declared_method, path_parameters = gateway_route(path)
        event = {
            "requestContext": {
                "serviceId": "service-f94sy04v",
                "path": route,
                "httpMethod": declared_method,
                "requestId": rid,
                "identity": {"secretId": "abdcdxxxxxxxsdfs"},
                "sourceIp": "10.0.2.14",
                "stage": "release",
            },
            "headers": {**defaults, **given},
            "pathParameters": path_parameters,
            "queryStringParameters": {},  # the API's declared query parameters only: those here declare none
            "headerParameters": {"Refer": "10.0.2.14"},
            "stageVariables": {"stage": "release"},
            "path": path,
            "queryString": dict(query or {}),
            "httpMethod": method,
        }
    else:
        raise ValueError(f"shape must be 'apigw' or 'function_url', not {shape!r}")
    if text is not None:
        event["body"] = text
    if is_base64:
        event["isBase64Encoded"] = True
    return event


_TEMPLATES: dict[str, dict[str, Any]] = {
    "NewFileUpload": {
        "EventType": "NewFileUpload",
        "FileUploadEvent": {
            "FileId": FILE_ID,
            "MediaBasicInfo": {
                "Name": "sample",
                "Description": "",
                "CreateTime": _WHEN,
                "UpdateTime": _WHEN,
                "ExpireTime": "9999-12-31T23:59:59Z",
                "ClassId": 0,
                "ClassName": "其他",
                "ClassPath": "其他",
                "CoverUrl": "",
                "Type": "mp4",
                "MediaUrl": _MEDIA_URL,
                "TagSet": [],
                "StorageRegion": "ap-guangzhou",
                "SourceInfo": {"SourceType": "Upload", "SourceContext": ""},
                "Vid": FILE_ID,
                "Category": "Video",
                "Status": "Normal",
                "StorageClass": "STANDARD",
            },
            "ProcedureTaskId": "",
            "ReviewAudioVideoTaskId": "",
            "MetaData": {
                "Size": 2097152,
                "Container": "mov,mp4,m4a,3gp,3g2,mj2",
                "Bitrate": 1048576,
                "Height": 720,
                "Width": 1280,
                "Duration": 16.0,
                "Rotate": 0,
                "VideoStreamSet": [],
                "AudioStreamSet": [],
                "VideoDuration": 16.0,
                "AudioDuration": 16.0,
                "Md5": "",
            },
        },
    },
    "ProcedureStateChanged": {
        "EventType": "ProcedureStateChanged",
        "ProcedureStateChangeEvent": {
            "TaskId": TASK_ID,
            "Status": "FINISH",
            "ErrCode": 0,
            "Message": "SUCCESS",
            "FileId": FILE_ID,
            "FileName": "sample",
            "FileUrl": _MEDIA_URL,
            "MetaData": {
                "Size": 2097152,
                "Container": "mov,mp4,m4a,3gp,3g2,mj2",
                "Duration": 16.0,
                "VideoStreamSet": [],
                "AudioStreamSet": [],
            },
            # VOD's ProcedureTask, as the event is (https://cloud.tencent.com/document/product/266/9636)
            "MediaProcessResultSet": [],
            "AiContentReviewResultSet": [],
            "AiAnalysisResultSet": [],
            "AiRecognitionResultSet": [],
            "SessionContext": "",
            "SessionId": "",
            "TasksPriority": 0,
            "TasksNotifyMode": "Finish",
            "Operator": "",
            "OperationType": "",
        },
    },
    "FileDeleted": {
        "EventType": "FileDeleted",
        "FileDeleteEvent": {
            "FileIdSet": [FILE_ID],
            "FileDeleteResultInfo": [{"FileId": FILE_ID, "DeleteParts": []}],
        },
    },
}
KINDS = tuple(_TEMPLATES)


def _place(event: dict[str, Any], name: str, value: Any) -> bool:
    """Set the shallowest field called `name` (objects only, breadth first); False if there is none."""
    queue: deque[dict[str, Any]] = deque([event])
    while queue:
        obj = queue.popleft()
        if name in obj:
            obj[name] = value
            return True
        queue.extend(v for v in obj.values() if isinstance(v, dict))
    return False


def vod_event(kind: str, **fields: Any) -> dict[str, Any]:
    """A realistic v3 event of `kind`. For NewFileUpload, ProcedureStateChanged and FileDeleted each
    keyword is a field named as VOD names it (FileId, SourceContext, MediaUrl, TaskId, Status, ErrCode,
    FileIdSet, DeleteParts (a partial delete's, of each file), …), set where VOD puts it; an unknown name is an
    error. Any other kind is
    `{"EventType": kind, **fields}` (e.g. `vod_event("EditMediaComplete", EditMediaCompleteEvent={...})`)."""
    template = _TEMPLATES.get(kind)
    if template is None:
        near = difflib.get_close_matches(kind.lower(), [k.lower() for k in KINDS], n=1, cutoff=0.75)
        if near:  # a slip, which would be stored as some other event and leave every field where VOD never puts it
            meant = next(k for k in KINDS if k.lower() == near[0])
            raise TypeError(f"no event type {kind!r}: did you mean {meant!r}? (VOD's names: {', '.join(KINDS)}, …)")
        return {"EventType": kind, **copy.deepcopy(fields)}
    event = copy.deepcopy(template)
    parts: list[Any] = []
    if kind == "FileDeleted":
        fields = _deleted_files(fields)
        parts = fields.pop("DeleteParts", [])
    if "FileId" in fields and kind != "FileDeleted":  # each file its own URL, as VOD gives it
        fields = {"MediaUrl" if kind == "NewFileUpload" else "FileUrl": _media_url(fields["FileId"]), **fields}
    for name, value in fields.items():
        if not _place(event, name, copy.deepcopy(value)):
            raise TypeError(f"{kind} has no field {name!r} (VOD's names, e.g. FileId, SourceContext, MediaUrl)")
    body = event[next(k for k in event if k != "EventType")]
    if kind == "NewFileUpload" and "Vid" not in fields:
        body["MediaBasicInfo"]["Vid"] = body["FileId"]  # VOD's Vid is the FileId
    if kind == "FileDeleted" and "FileDeleteResultInfo" not in fields:
        body["FileDeleteResultInfo"] = [{"FileId": f, "DeleteParts": copy.deepcopy(parts)} for f in body["FileIdSet"]]
    return event


def _deleted_files(fields: dict[str, Any]) -> dict[str, Any]:
    """A FileDeleted's fields with its files as FileIdSet: a list of FileIds (FileId=: one file, the common case)."""
    if "FileId" in fields and "FileIdSet" in fields:
        raise TypeError("FileDeleted takes FileId (one file) or FileIdSet (a list of them), not both")
    if "DeleteParts" in fields and "FileDeleteResultInfo" in fields:
        raise TypeError("FileDeleted takes DeleteParts (of each file) or FileDeleteResultInfo (each its own), not both")
    files = [fields.pop("FileId")] if "FileId" in fields else fields.get("FileIdSet", [FILE_ID])
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f for f in files):
        raise TypeError(f"FileDeleted's FileIdSet is a list of FileIds (non-empty text), not {files!r}")
    return {**fields, "FileIdSet": files}


def signed(event: Mapping[str, Any], sign_key: str, ttl: int = 600, *, now: float | None = None) -> dict[str, Any]:
    """The event as VOD pushes it with a SignKey: T (the delivery's expiry, Unix seconds, `ttl` from now)
    and Sign = lowercase hex MD5(SignKey + str(T))."""
    from vodemu.events import push_signature  # the emulator's, written from VOD's page (never the product's)

    expiry = int(time.time() if now is None else now) + ttl
    return {**event, "T": expiry, "Sign": push_signature(sign_key, expiry)}
