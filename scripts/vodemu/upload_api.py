"""The client upload API: `POST /v3/index.php?Action=PrepareUploadUGC|ApplyUploadUGC|CommitUploadUGC`.

JSON in, `{code, message, data}` out, HTTP 200 even for refusals, as vod-js-sdk-v6 expects (Web 端上传 SDK,
https://cloud.tencent.com/document/product/266/9239). Every call carries an upload signature, checked by
the emulator's own verifier (vodemu.signature). Refusal codes are the emulator's own (VOD does not
publish its table); each cause has its own code and a message that names it, see `Code`.
"""

from __future__ import annotations

import enum
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from vodemu.settings import EmulatorSettings
from vodemu.signature import Refused, SignatureRefused, UploadSignature, verify
from vodemu.state import EmulatorState, FileSpec, UploadOptions
from vodemu.uploads import Applied, Committed, NewFile, UploadError, UploadErrorKind, UploadService
from vodemu.wsgi import BodyTooLarge, WSGIApplication, guarded, is_decimal, json_response, parse_json, read_body

log = logging.getLogger("vodemu.upload")

PATH = "/v3/index.php"
_CORS = {"Access-Control-Allow-Origin": "*"}  # browser SDKs call this API cross-origin


class Code(enum.IntEnum):
    OK = 0
    BAD_REQUEST = 10001  # not a POST of a JSON object, or an unknown Action
    BAD_FIELD = 10002  # a request field is missing or has the wrong type or value
    SIGNATURE_MISSING = 10003
    SIGNATURE_MALFORMED = 10004  # not Base64, too short, or the signed text is not a valid parameter string
    SIGNATURE_BAD_PARAMETER = 10005  # a signed parameter outside VOD's domain (classId, sourceContext, ...)
    SIGNATURE_VALIDITY = 10006  # expireTime - currentTimeStamp outside 1 s .. 90 days
    UNKNOWN_SECRET_ID = 10007
    SIGNATURE_MISMATCH = 10008  # HMAC does not match
    SIGNATURE_EXPIRED = 10009
    SIGNATURE_NOT_YET_VALID = 10010  # currentTimeStamp too far in the future
    SUB_APP_ID_MISSING = 10011
    SUB_APP_ID_WRONG = 10012
    SIGNATURE_REUSED = 10013  # oneTimeValid=1 signature presented again
    STORAGE_REGION = 10020
    MEDIA_TYPE = 10021
    COVER_TYPE = 10022
    SESSION_NOT_FOUND = 10030
    SESSION_EXPIRED = 10031  # resume window (1 day) passed
    SESSION_COMMITTED = 10032  # re-apply on a committed session
    FILE_NOT_FOUND = 10033  # cover change of an unknown fileId
    NOT_UPLOADED = 10034  # commit before the object is in COS
    SIZE_MISMATCH = 10035  # commit with an object whose size differs from the size applied for
    INTERNAL = 10500  # answered with HTTP 500


_SIGNATURE_CODES = {
    Refused.MALFORMED: Code.SIGNATURE_MALFORMED,
    Refused.BAD_PARAMETER: Code.SIGNATURE_BAD_PARAMETER,
    Refused.VALIDITY: Code.SIGNATURE_VALIDITY,
    Refused.UNKNOWN_SECRET_ID: Code.UNKNOWN_SECRET_ID,
    Refused.MISMATCH: Code.SIGNATURE_MISMATCH,
    Refused.EXPIRED: Code.SIGNATURE_EXPIRED,
    Refused.NOT_YET_VALID: Code.SIGNATURE_NOT_YET_VALID,
}
_UPLOAD_CODES = {kind: Code[kind.name] for kind in UploadErrorKind}


class Refusal(Exception):
    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- request fields -----------------------------------------------------------------------------


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise Refusal(Code.BAD_FIELD, f"{name}: required")
        return None
    if not isinstance(value, str):
        raise Refusal(Code.BAD_FIELD, f"{name}: must be a string")
    return value


def _size(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    # Numbers, or decimal strings: some non-JS clients send form-style values.
    if isinstance(value, str) and is_decimal(value):
        value = int(value)
    if type(value) is not int or value < 0:
        raise Refusal(Code.BAD_FIELD, f"{name}: required, a non-negative integer")
    return value


def _new_file(body: dict[str, Any], role: str) -> NewFile:
    return NewFile(
        name=_text(body, f"{role}Name") or "",
        type=_text(body, f"{role}Type", required=True) or "",
        size=_size(body, f"{role}Size"),
    )


def _has_cover(body: dict[str, Any]) -> bool:
    return any(body.get(f"cover{part}") not in (None, "") for part in ("Name", "Type", "Size"))


# -- the API ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadApi:
    settings: EmulatorSettings
    state: EmulatorState
    service: UploadService
    clock: Callable[[], float]

    def handle(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._preflight()
        action = request.args.get("Action", "")
        try:
            payload = self._dispatch(request, action)
        except Refusal as refusal:
            log.info("%s refused: %d %s", action or "?", refusal.code, refusal.message)
            return json_response({"code": int(refusal.code), "message": refusal.message, "data": {}}, headers=_CORS)
        return json_response({"code": 0, "message": "成功", "data": payload}, headers=_CORS)

    def _dispatch(self, request: Request, action: str) -> dict[str, Any]:
        handlers = {
            "PrepareUploadUGC": self._prepare,
            "ApplyUploadUGC": self._apply,
            "CommitUploadUGC": self._commit,
        }
        handler = handlers.get(action)
        if handler is None:
            raise Refusal(Code.BAD_REQUEST, f"Action must be one of {', '.join(handlers)}")
        if request.method != "POST":
            raise Refusal(Code.BAD_REQUEST, f"{action} takes a POST with a JSON body")
        body = self._json_body(request)
        params = self._authenticate(body)
        try:
            return handler(body, params)
        except UploadError as exc:
            raise Refusal(_UPLOAD_CODES[exc.kind], exc.message) from exc

    @staticmethod
    def _json_body(request: Request) -> dict[str, Any]:
        try:
            body = parse_json(read_body(request))
        except (BodyTooLarge, ValueError) as exc:
            raise Refusal(Code.BAD_REQUEST, f"the body must be a JSON object ({exc})") from exc
        if not isinstance(body, dict):
            raise Refusal(Code.BAD_REQUEST, "the body must be a JSON object")
        return body

    def _authenticate(self, body: dict[str, Any]) -> UploadSignature:
        signature = body.get("signature")
        if not signature:
            raise Refusal(Code.SIGNATURE_MISSING, "signature: required")
        if not isinstance(signature, str):
            raise Refusal(Code.SIGNATURE_MALFORMED, "signature: must be a string")
        now = self.clock()
        try:
            skew = self.settings.signature_clock_skew
            params = verify(signature, self.settings.secret_keys, now=now, clock_skew=skew)
        except SignatureRefused as exc:
            raise Refusal(_SIGNATURE_CODES[exc.kind], f"signature: {exc}") from exc
        self._check_sub_app(params)
        if params.one_time and not self.state.consume_signature(params.digest, params.expire_time, now):
            raise Refusal(Code.SIGNATURE_REUSED, "signature: oneTimeValid=1 and it was used already")
        return params

    def _check_sub_app(self, params: UploadSignature) -> None:
        expected = self.settings.sub_app_id
        given = params.number("vodSubAppId")
        # The signature page: "blank, 0 or the account's AppId" means the primary application.
        if given == expected or (expected is None and given in (0, self.settings.app_id)):
            return
        if given is None:
            raise Refusal(Code.SUB_APP_ID_MISSING, f"signature: vodSubAppId is required (this app is {expected})")
        raise Refusal(
            Code.SUB_APP_ID_WRONG,
            f"signature: vodSubAppId {given} is not this application"
            + (f" ({expected})" if expected is not None else " (the primary app takes no vodSubAppId)"),
        )

    # -- actions -------------------------------------------------------------------------------

    def _prepare(self, body: dict[str, Any], params: UploadSignature) -> dict[str, Any]:
        region = params.text("storageRegion") or self.settings.default_region
        return {"appId": self.settings.app_id, "cosRegionList": [{"region": region, "domain": _cos_domain(region)}]}

    def _apply(self, body: dict[str, Any], params: UploadSignature) -> dict[str, Any]:
        session_key = _text(body, "vodSessionKey")
        if session_key is not None:
            applied = self.service.resume(session_key)
        elif body.get("fileId") not in (None, ""):
            file_id = str(body["fileId"])
            applied = self.service.change_cover(self._options(body, params), file_id, _new_file(body, "cover"))
        else:
            cover = _new_file(body, "cover") if _has_cover(body) else None
            applied = self.service.new_upload(self._options(body, params), _new_file(body, "video"), cover)
        return self._apply_data(applied)

    def _commit(self, body: dict[str, Any], params: UploadSignature) -> dict[str, Any]:
        committed = self.service.commit(_text(body, "vodSessionKey", required=True) or "")
        return self._commit_data(committed)

    # -- answers -------------------------------------------------------------------------------

    def _options(self, body: dict[str, Any], params: UploadSignature) -> UploadOptions:
        # The signature is the app's word, so it wins over the (client-written) body.
        region = params.text("storageRegion") or _text(body, "storageRegion") or self.settings.default_region
        return UploadOptions(
            storage_region=region,
            class_id=params.number("classId") or 0,
            procedure=params.text("procedure"),
            task_priority=params.number("taskPriority"),
            task_notify_mode=params.text("taskNotifyMode"),
            source_context=params.text("sourceContext"),
            session_context=params.text("sessionContext"),
        )

    def _apply_data(self, applied: Applied) -> dict[str, Any]:
        session, credential = applied.session, applied.credential
        region = session.options.storage_region
        data: dict[str, Any] = {}
        for role, spec in (("video", session.video), ("cover", session.cover)):
            if spec is not None:
                data[role] = _storage(spec)
        data.update(
            {
                "storageAppId": self.settings.app_id,
                "storageBucket": session.bucket.removesuffix(f"-{self.settings.app_id}"),
                "storageRegion": region,
                "storageRegionV5": region,
                "StorageRegionV5": region,  # VOD sends both spellings
                "domain": f"{session.bucket}.{_cos_domain(region)}",
                "vodSessionKey": session.session_key,
                "tempCertificate": {
                    "secretId": credential.secret_id,
                    "secretKey": credential.secret_key,
                    "token": credential.token,
                    "expiredTime": credential.expired_time,
                },
                "appId": self.settings.app_id,
                "timestamp": int(self.clock()),
            }
        )
        return data

    def _commit_data(self, committed: Committed) -> dict[str, Any]:
        media, session = committed.media, committed.session
        data: dict[str, Any] = {"fileId": media.file_id}
        if session.video is not None:
            data["video"] = self._published(media.bucket, session.video)
        if session.cover is not None:
            data["cover"] = self._published(media.bucket, session.cover)
        return data

    def _published(self, bucket: str, spec: FileSpec) -> dict[str, str]:
        return {
            "url": self.service.url_for(bucket, spec.key),
            "verify_content": self.service.verify_content(bucket, spec.key),
        }

    @staticmethod
    def _preflight() -> Response:
        response = Response(status=204)
        response.headers.update(
            {
                **_CORS,
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "600",
            }
        )
        return response


def _cos_domain(region: str) -> str:
    return f"cos.{region}.myqcloud.com"


def _storage(spec: FileSpec) -> dict[str, str]:
    # storageSignature is a legacy COS v4 signature the SDKs no longer use (they use tempCertificate);
    # the emulator returns an opaque placeholder so that the field is present.
    return {"storageSignature": secrets.token_urlsafe(32), "storagePath": "/" + spec.key}


def _internal_error() -> Response:
    return json_response({"code": int(Code.INTERNAL), "message": "internal error", "data": {}}, 500, _CORS)


def make_upload_app(
    settings: EmulatorSettings, state: EmulatorState, service: UploadService, clock: Callable[[], float]
) -> WSGIApplication:
    api = UploadApi(settings, state, service, clock)
    return guarded(api.handle, _internal_error, "upload API")
