"""The VOD cloud API subset (version 2018-07-17), TC3-signed, as the tencentcloud SDKs call it.

`POST /` with `X-TC-Action`; answers are always HTTP 200 with `Content-Type: application/json` and
`{"Response": {..., "RequestId"}}`, errors `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`
in Tencent's codes (an unexpected crash too, as `InternalError`: the SDK reports a non-200 answer only
as a network error).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from vodemu import tc3
from vodemu.cloud_params import ACTION_PARAMS, CloudApiError, Params, delete_parts, upload_options
from vodemu.delivery import EventConfigError, EventSignal, PullSettings, pull_events, updated_event_config
from vodemu.events import as_pulled, delete_events, iso_time, media_basic_info, meta_data, procedure_task
from vodemu.settings import API_VERSION, SERVICE, EmulatorSettings
from vodemu.state import EmulatorState
from vodemu.uploads import NewFile, UploadError, UploadErrorKind, UploadService
from vodemu.wsgi import BodyTooLarge, WSGIApplication, guarded, json_response, parse_json, read_body

log = logging.getLogger("vodemu.cloud")

MAX_CONFIRM_HANDLES = 16
MAX_FILE_IDS = 20
_MEDIA_INFO_FILTERS = frozenset(
    [
        "basicInfo",
        "metaData",
        "transcodeInfo",
        "animatedGraphicsInfo",
        "imageSpriteInfo",
        "snapshotByTimeOffsetInfo",
        "sampleSnapshotInfo",
        "keyFrameDescInfo",
        "adaptiveDynamicStreamingInfo",
        "miniProgramReviewInfo",
        "subtitleInfo",
        "reviewInfo",
        "mpsAiMediaInfo",
        "knowledgeBasesInfo",
    ]
)


_UPLOAD_ERROR_CODES = {
    UploadErrorKind.BAD_FIELD: "InvalidParameterValue",
    UploadErrorKind.STORAGE_REGION: "InvalidParameterValue.StorageRegion",
    UploadErrorKind.MEDIA_TYPE: "InvalidParameterValue.MediaType",
    UploadErrorKind.COVER_TYPE: "InvalidParameterValue.CoverType",
    UploadErrorKind.SESSION_NOT_FOUND: "InvalidParameterValue.VodSessionKey",
    UploadErrorKind.SESSION_EXPIRED: "InvalidParameterValue.VodSessionKey",
    UploadErrorKind.SESSION_COMMITTED: "InvalidParameterValue.VodSessionKey",
    UploadErrorKind.FILE_NOT_FOUND: "ResourceNotFound.FileNotExist",
    UploadErrorKind.NOT_UPLOADED: "FailedOperation",
    UploadErrorKind.SIZE_MISMATCH: "FailedOperation",
}


# -- the API --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CloudApi:
    settings: EmulatorSettings
    state: EmulatorState
    service: UploadService
    signal: EventSignal
    clock: Callable[[], float]
    stopping: threading.Event  # set on shutdown so long polls return

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        action = request.headers.get("X-TC-Action", "")
        try:
            result = self._call(request, action)
        except CloudApiError as exc:
            log.info("%s refused: %s %s", action or "?", exc.code, exc.message)
            return _answer({"Error": {"Code": exc.code, "Message": exc.message}}, request_id)
        except Exception:  # Tencent answers a crash as InternalError with HTTP 200
            log.exception("%s failed (RequestId %s)", action or "?", request_id)
            return _answer({"Error": {"Code": "InternalError", "Message": "An internal error occurred"}}, request_id)
        return _answer(result, request_id)

    def _call(self, request: Request, action: str) -> dict[str, Any]:
        try:
            body = read_body(request)
        except BodyTooLarge as exc:
            raise CloudApiError("RequestSizeLimitExceeded", str(exc)) from exc
        headers = {name.lower(): value for name, value in request.headers.items()}  # values as sent
        wire = tc3.Tc3Request(request.method, request.query_string.decode("latin-1"), headers, body)
        try:
            tc3.verify(
                wire,
                self.settings.secret_keys,
                service=SERVICE,
                now=self.clock,
                tolerance_seconds=self.settings.tc3_tolerance_seconds,
                session_token=self.settings.session_token,
            )
        except tc3.Tc3Error as exc:
            raise CloudApiError(exc.code, exc.message) from exc
        handler = self._handlers().get(action)
        if handler is None:
            raise CloudApiError("InvalidAction", f"The action `{action}` is not emulated (or does not exist)")
        self._check_version(request)
        params = Params(self._json_params(request, body), ACTION_PARAMS[action])
        self._check_sub_app(params)
        return handler(params)

    def _handlers(self) -> dict[str, Callable[[Params], dict[str, Any]]]:
        return {
            "ModifyEventConfig": self._modify_event_config,
            "DescribeEventConfig": self._describe_event_config,
            "PullEvents": self._pull_events,
            "ConfirmEvents": self._confirm_events,
            "ApplyUpload": self._apply_upload,
            "CommitUpload": self._commit_upload,
            "DescribeMediaInfos": self._describe_media_infos,
            "DescribeTaskDetail": self._describe_task_detail,
            "DeleteMedia": self._delete_media,
        }

    @staticmethod
    def _check_version(request: Request) -> None:
        version = request.headers.get("X-TC-Version")
        if not version:
            raise CloudApiError("MissingParameter", "The request is missing the X-TC-Version header")
        if version != API_VERSION:
            raise CloudApiError("NoSuchVersion", f"VOD API version {version!r} does not exist; use {API_VERSION}")

    @staticmethod
    def _json_params(request: Request, body: bytes) -> dict[str, Any]:
        if request.method != "POST" or request.mimetype != "application/json":
            raise CloudApiError(
                "UnsupportedOperation", "the emulator takes POST with Content-Type application/json (the SDK default)"
            )
        try:
            values = parse_json(body) if body else {}
        except ValueError as exc:
            raise CloudApiError("InvalidParameter", f"the body is not JSON: {exc}") from exc
        if not isinstance(values, dict):
            raise CloudApiError("InvalidParameter", "the body must be a JSON object")
        return values

    def _check_sub_app(self, params: Params) -> None:
        sub_app_id = params.integer("SubAppId")
        if sub_app_id is None and self.settings.sub_app_id is not None:
            # VOD would answer for the account's primary application (which accounts opened since 2023-12-25
            # may not use at all): a caller that drops SubAppId sees nothing of its sub-application there.
            raise CloudApiError(
                "InvalidParameterValue.SubAppId",
                f"no SubAppId: the call is the primary application's, and this emulator holds sub-application "
                f"{self.settings.sub_app_id} only",
            )
        if sub_app_id is not None and sub_app_id != self.settings.vod_app_id:
            raise CloudApiError(
                "InvalidParameterValue.SubAppId",
                f"SubAppId {sub_app_id} is not this application ({self.settings.vod_app_id})",
            )

    # -- event configuration -------------------------------------------------------------------

    def _modify_event_config(self, params: Params) -> dict[str, Any]:
        try:
            config = updated_event_config(
                self.state.get_event_config(),
                mode=params.text("Mode") or None,  # an empty Mode keeps the current one
                notification_url=params.text("NotificationUrl"),  # "" clears it
                sign_key=params.text("SignKey"),  # "" clears it
                upload_switch=params.text("UploadMediaCompleteEventSwitch"),
                delete_switch=params.text("DeleteMediaCompleteEventSwitch"),
                persistence_switch=params.text("PersistenceCompleteEventSwitch"),
            )
        except EventConfigError as exc:
            raise CloudApiError("InvalidParameterValue", exc.message) from exc
        self.state.put_event_config(config)
        self.signal.notify()  # a PUSH worker waiting on a missing URL may now deliver
        return {}

    def _describe_event_config(self, params: Params) -> dict[str, Any]:
        config = self.state.get_event_config()
        return {
            "Mode": config.mode,
            "NotificationUrl": config.notification_url,
            "UploadMediaCompleteEventSwitch": config.upload_switch,
            "DeleteMediaCompleteEventSwitch": config.delete_switch,
            "PersistenceCompleteEventSwitch": config.persistence_switch,
        }

    # -- reliable callback (PULL) --------------------------------------------------------------

    def _pull_events(self, params: Params) -> dict[str, Any]:
        settings = PullSettings(
            long_poll_seconds=self.settings.long_poll_seconds,
            confirm_window_seconds=self.settings.confirm_window_seconds,
            retention_seconds=self.settings.event_retention_seconds,
        )
        pulled = pull_events(self.state, self.signal, self.clock, settings, stopping=self.stopping)
        return {"EventSet": [as_pulled(e.body, e.handle) for e in pulled]}

    def _confirm_events(self, params: Params) -> dict[str, Any]:
        handles = params.texts("EventHandles", required=True)
        if not handles or len(handles) > MAX_CONFIRM_HANDLES:
            raise CloudApiError("InvalidParameterValue", f"EventHandles: 1 to {MAX_CONFIRM_HANDLES} handles")
        refused = self.state.confirm_events(handles, self.clock(), window=self.settings.confirm_window_seconds)
        if refused:
            details = ", ".join(f"{h} ({why})" for h, why in refused.items())
            raise CloudApiError(
                "InvalidParameter",
                f"EventHandles not confirmable, none were confirmed: {details}; a handle is valid for "
                f"{self.settings.confirm_window_seconds} s after PullEvents returned it",
            )
        return {}

    # -- server-side upload ----------------------------------------------------------------------

    def _apply_upload(self, params: Params) -> dict[str, Any]:
        if params.has("MediaStoragePath"):
            raise CloudApiError("InvalidParameterValue.MediaStoragePath", "the emulator assigns storage paths itself")
        media_type = params.text("MediaType", required=True) or ""
        cover_type = params.text("CoverType")
        try:
            applied = self.service.new_upload(
                upload_options(params, self.settings.default_region),
                NewFile(params.text("MediaName") or "", media_type, None),
                NewFile("", cover_type, None) if cover_type else None,
            )
        except UploadError as exc:
            raise _upload_error(exc) from exc
        session, credential = applied.session, applied.credential
        answer: dict[str, Any] = {
            "StorageBucket": session.bucket,
            "StorageRegion": session.options.storage_region,
            "VodSessionKey": session.session_key,
            "MediaStoragePath": "/" + session.video.key if session.video else None,
            "CoverStoragePath": "/" + session.cover.key if session.cover else None,
            "TempCertificate": {
                "SecretId": credential.secret_id,
                "SecretKey": credential.secret_key,
                "Token": credential.token,
                "ExpiredTime": credential.expired_time,
            },
        }
        return {k: v for k, v in answer.items() if v is not None}

    def _commit_upload(self, params: Params) -> dict[str, Any]:
        try:
            committed = self.service.commit(params.text("VodSessionKey", required=True) or "")
        except UploadError as exc:
            raise _upload_error(exc) from exc
        media = committed.media
        answer = {"FileId": media.file_id, "MediaUrl": self.service.url_for(media.bucket, media.media_key)}
        if media.cover_key:
            answer["CoverUrl"] = self.service.url_for(media.bucket, media.cover_key)
        return answer

    # -- media ---------------------------------------------------------------------------------

    def _describe_media_infos(self, params: Params) -> dict[str, Any]:
        file_ids = params.texts("FileIds", required=True)
        if not file_ids:
            raise CloudApiError("InvalidParameterValue.FileIdsEmpty", "FileIds must not be empty")
        if len(file_ids) > MAX_FILE_IDS:
            raise CloudApiError("InvalidParameterValue.FileIdsTooMany", f"FileIds: at most {MAX_FILE_IDS}")
        filters = set(params.texts("Filters")) or {"basicInfo", "metaData"}
        unknown = filters - _MEDIA_INFO_FILTERS
        if unknown:
            raise CloudApiError("InvalidParameterValue", f"Filters: unknown {', '.join(sorted(unknown))}")
        infos, missing = [], []
        for file_id in dict.fromkeys(file_ids):  # VOD answers each id once
            media = self.state.get_media(file_id)
            if media is None:
                missing.append(file_id)
                continue
            info: dict[str, Any] = {"FileId": file_id}
            if "basicInfo" in filters:
                info["BasicInfo"] = media_basic_info(media, self.service.url_for)
            if "metaData" in filters:
                info["MetaData"] = meta_data(media)
            infos.append(info)
        return {"MediaInfoSet": infos, "NotExistFileIdSet": missing}

    def _delete_media(self, params: Params) -> dict[str, Any]:
        """The whole file (no DeleteParts): no longer listed, nor its media served; some parts: the file stays,
        its original and the cover uploaded with it no longer served if OriginalFiles is one (the emulator
        holds no other part). FileDeleted follows, as the event configuration says."""
        file_id = params.text("FileId", required=True) or ""
        parts = delete_parts(params)
        events = delete_events(file_id, parts, self.state.get_event_config())
        original = any(part["Type"] == "OriginalFiles" for part in parts)
        if not self.state.delete_media(file_id, events, self.clock(), whole=not parts, original=original):
            raise CloudApiError("ResourceNotFound.FileNotExist", f"file {file_id!r} does not exist")
        if events:
            self.signal.notify()
        return {}

    def _describe_task_detail(self, params: Params) -> dict[str, Any]:
        task_id = params.text("TaskId", required=True)
        media = self.state.media_of_task(task_id or "")
        if media is None:  # VOD's own code and words for it
            raise CloudApiError("InvalidParameterValue.TaskId", "任务 ID 不存在。")
        # The emulator's procedures finish as the upload is committed (see vodemu.events).
        at = iso_time(media.created_at)
        return {
            "TaskType": "Procedure",
            "Status": "FINISH",
            "CreateTime": at,
            "BeginProcessTime": at,
            "FinishTime": at,
            "ProcedureTask": procedure_task(media, "FINISH", self.service.url_for),
        }


def _upload_error(exc: UploadError) -> CloudApiError:
    return CloudApiError(_UPLOAD_ERROR_CODES[exc.kind], exc.message)


def _answer(payload: dict[str, Any], request_id: str) -> Response:
    return json_response({"Response": {**payload, "RequestId": request_id}})


def _crash_answer() -> Response:
    return _answer({"Error": {"Code": "InternalError", "Message": "An internal error occurred"}}, str(uuid.uuid4()))


def make_cloud_app(
    settings: EmulatorSettings,
    state: EmulatorState,
    service: UploadService,
    signal: EventSignal,
    clock: Callable[[], float],
    stopping: threading.Event,
) -> WSGIApplication:
    api = CloudApi(settings, state, service, signal, clock, stopping)
    return guarded(api.handle, _crash_answer, "cloud API")
