"""The VOD cloud API subset, driven by the real tencentcloud SDK over loopback (TC3-HMAC-SHA256)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.vod.v20180717 import models, vod_client

from tests.clocks import FrozenClock
from vodemu import tc3
from vodemu.app import Emulator

from .emulator_fixtures import (
    SECRET_ID,
    SECRET_KEY,
    SUB_APP_ID,
    client_upload,
    cloud_request,
    cos,
    vod,
    wait_until,
)


def _error(call: Callable[[], Any]) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as caught:
        call()
    return caught.value


def _server_upload(
    emulator: Emulator, content: bytes, cover: bytes | None = None, **fields: Any
) -> models.CommitUploadResponse:
    client = vod(emulator)
    kind = {"CoverType": "jpg"} if cover is not None else {}
    applied = client.ApplyUpload(cloud_request(models.ApplyUploadRequest, MediaType="mp4", **kind, **fields))
    cert = applied.TempCertificate
    storage = cos(emulator, applied.StorageRegion, cert.SecretId, cert.SecretKey, cert.Token)
    storage.put_object(Bucket=applied.StorageBucket, Key=applied.MediaStoragePath, Body=content)
    if cover is not None:
        storage.put_object(Bucket=applied.StorageBucket, Key=applied.CoverStoragePath, Body=cover)
    return client.CommitUpload(cloud_request(models.CommitUploadRequest, VodSessionKey=applied.VodSessionKey))


# -- event configuration --------------------------------------------------------------------------


def test_event_config_round_trip(emulator: Emulator):
    client = vod(emulator)
    initial = client.DescribeEventConfig(cloud_request(models.DescribeEventConfigRequest))
    assert (initial.Mode, initial.NotificationUrl, initial.UploadMediaCompleteEventSwitch) == ("PUSH", "", "OFF")

    client.ModifyEventConfig(
        cloud_request(
            models.ModifyEventConfigRequest,
            SubAppId=SUB_APP_ID,
            Mode="PULL",
            NotificationUrl="http://127.0.0.1:8080/vod-events",
            UploadMediaCompleteEventSwitch="ON",
            SignKey="abc123",
        )
    )
    client.ModifyEventConfig(cloud_request(models.ModifyEventConfigRequest, DeleteMediaCompleteEventSwitch="ON"))
    config = client.DescribeEventConfig(cloud_request(models.DescribeEventConfigRequest))
    assert config.Mode == "PULL"
    assert config.NotificationUrl == "http://127.0.0.1:8080/vod-events"
    assert config.UploadMediaCompleteEventSwitch == "ON"
    assert config.DeleteMediaCompleteEventSwitch == "ON"
    assert emulator.event_config().sign_key == "abc123"


@pytest.mark.parametrize(
    ("fields", "code", "hint"),
    [
        pytest.param({"NotificationUrl": "https://example.com/cb"}, "InvalidParameterValue", "loopback", id="remote"),
        pytest.param({"NotificationUrl": "ftp://127.0.0.1/cb"}, "InvalidParameterValue", "loopback", id="scheme"),
        pytest.param({"Mode": "EMAIL"}, "InvalidParameterValue", "PUSH or PULL", id="mode"),
        pytest.param({"SignKey": "not-alnum!"}, "InvalidParameterValue", "SignKey", id="sign key"),
        pytest.param({"SignKey": "a" * 33}, "InvalidParameterValue", "SignKey", id="sign key too long"),
        pytest.param({"UploadMediaCompleteEventSwitch": "YES"}, "InvalidParameterValue", "ON or OFF", id="switch"),
        pytest.param({"SubAppId": 1500000999}, "InvalidParameterValue.SubAppId", "1500000999", id="other app"),
    ],
)
def test_modify_event_config_refusals(emulator: Emulator, fields: dict[str, Any], code: str, hint: str):
    error = _error(lambda: vod(emulator).ModifyEventConfig(cloud_request(models.ModifyEventConfigRequest, **fields)))
    assert error.code == code
    assert hint in error.message
    assert error.requestId


# -- authentication ------------------------------------------------------------------------------


def test_wrong_key_unknown_id_and_old_timestamp_are_refused(emulator: Emulator, clock: FrozenClock):
    describe = cloud_request(models.DescribeEventConfigRequest)
    assert _error(lambda: vod(emulator, secret_key="wrong").DescribeEventConfig(describe)).code == (
        "AuthFailure.SignatureFailure"
    )
    assert _error(lambda: vod(emulator, secret_id="AKIDnobody").DescribeEventConfig(describe)).code == (
        "AuthFailure.SecretIdNotFound"
    )
    # The SDK stamps the real time; move the emulator well past the 300 s tolerance (not to its edge:
    # real seconds pass during the test).
    clock.advance(400)
    assert _error(lambda: vod(emulator).DescribeEventConfig(describe)).code == "AuthFailure.SignatureExpire"
    clock.advance(-400)
    vod(emulator).DescribeEventConfig(describe)


@pytest.mark.parametrize(
    ("token", "answer"), [("t1", None), (None, "AuthFailure.TokenFailure"), ("t0", "AuthFailure.TokenFailure")]
)
def test_temporary_keys_are_taken_only_with_their_token(
    emulator_factory: Callable[..., Emulator], token: str | None, answer: str | None
):
    emulator = emulator_factory(session_token="t1")  # the account keys are an execution role's, say
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=f"127.0.0.1:{emulator.port}"))
    client = vod_client.VodClient(Credential(SECRET_ID, SECRET_KEY, token), "ap-guangzhou", profile)
    describe = cloud_request(models.DescribeEventConfigRequest)
    if answer is None:
        assert client.DescribeEventConfig(describe).Mode == "PUSH"
    else:
        assert _error(lambda: client.DescribeEventConfig(describe)).code == answer


def _signed(emulator: Emulator, action: str, params: dict[str, Any], host: str = "127.0.0.1") -> RequestInternal:
    """A request signed by the SDK's own signer (over `host`, as the SDK is given it), not yet sent."""
    client = vod(emulator)
    client.profile.httpProfile.endpoint = f"{host}:{emulator.port}"
    request = RequestInternal(f"{host}:{emulator.port}", "POST", "/", header={})
    client._build_req_inter(action, params, request)
    return request


def _send(emulator: Emulator, request: RequestInternal, body: str | bytes | None = None) -> requests.Response:
    data = request.data if body is None else body
    return requests.post(f"{emulator.url}/", data=data, headers=request.header, timeout=10)


def test_a_body_changed_after_signing_is_refused(emulator: Emulator):
    signed = _signed(emulator, "ModifyEventConfig", {"Mode": "PULL", "SubAppId": SUB_APP_ID})
    assert "Error" not in _send(emulator, signed).json()["Response"]
    tampered = _send(emulator, signed, signed.data.replace("PULL", "PUSH"))
    assert tampered.status_code == 200
    assert tampered.headers["Content-Type"] == "application/json"
    assert tampered.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"


def test_a_signed_body_nested_past_the_json_decoders_depth_is_refused(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
):
    with monkeypatch.context() as patched:  # the SDK's signer, given a body json.dumps would not write
        patched.setattr(json, "dumps", lambda *_, **__: "[" * 50_000)
        signed = _signed(emulator, "DescribeEventConfig", {})
    answer = _send(emulator, signed).json()["Response"]
    assert answer["Error"]["Code"] == "InvalidParameter", answer


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("ModifyEventConfig", {"Mode": "PUSH", "NotificationUrl": "http://127.0.0.1:9/\udc00"}),
        ("DescribeMediaInfos", {"FileIds": ["\ud83d"]}),
        ("DescribeTaskDetail", {"TaskId": "\ud83d"}),
        ("ConfirmEvents", {"EventHandles": ["\ud83d"]}),
    ],
)
def test_text_with_a_lone_surrogate_is_a_parameter_error(emulator: Emulator, action: str, params: dict[str, Any]):
    # Stored, it would fail every later call that reads it (DescribeEventConfig, say) as an InternalError
    refused = _error(lambda: vod(emulator).call_json(action, {**params, "SubAppId": SUB_APP_ID}))
    assert refused.code == "InvalidParameter"
    assert "Error" not in vod(emulator).call_json("DescribeEventConfig", {"SubAppId": SUB_APP_ID})["Response"]


def test_signed_headers_are_checked_as_sent(emulator: Emulator):
    signed = _signed(emulator, "DescribeEventConfig", {})
    signed.header["Content-Type"] = "application/json; charset=utf-8"
    answer = _send(emulator, signed).json()["Response"]
    assert answer["Error"]["Code"] == "AuthFailure.SignatureFailure"


@pytest.mark.parametrize(
    ("signed_host", "sent_host", "accepted"),
    [
        ("localhost", "localhost", True),
        ("LocalHost", "LocalHost", False),  # signed as typed: the rule lowercases what it signs
        ("localhost", "LocalHost", True),  # the header's case is not what is signed
    ],
)
def test_signed_header_values_are_lowercased(emulator: Emulator, signed_host: str, sent_host: str, accepted: bool):
    signed = _signed(emulator, "DescribeEventConfig", {"SubAppId": SUB_APP_ID}, host=signed_host)
    signed.header["Host"] = f"{sent_host}:{emulator.port}"
    answer = _send(emulator, signed).json()["Response"]
    assert ("Error" not in answer) is accepted, answer


def test_the_raw_body_is_hashed_not_a_reserialisation(emulator: Emulator):
    signed = _signed(emulator, "ApplyUpload", {"MediaType": "mp4", "MediaName": "été", "SubAppId": SUB_APP_ID})
    assert "\\u00e9" in signed.data  # the SDK escapes non-ASCII: re-serialising would change the hash
    answer = _send(emulator, signed).json()["Response"]
    assert "Error" not in answer, answer


def test_missing_or_malformed_authorization(emulator: Emulator):
    signed = _signed(emulator, "DescribeEventConfig", {})
    del signed.header["Authorization"]
    assert _send(emulator, signed).json()["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"
    signed.header["Authorization"] = "TC3-HMAC-SHA256 Credential=x"
    assert _send(emulator, signed).json()["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"


def test_credential_date_must_be_the_timestamp_date(emulator: Emulator):
    signed = _signed(emulator, "DescribeEventConfig", {})
    signed.header["Authorization"] = signed.header["Authorization"].replace("/20", "/19", 1)
    assert _send(emulator, signed).json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"


def _resigned(emulator: Emulator, *, day: int = 0, service: str = "vod") -> RequestInternal:
    """A request the SDK's own TC3 signer signs for credential scope `<date + day days>/<service>/tc3_request`."""
    signed = _signed(emulator, "DescribeEventConfig", {"SubAppId": SUB_APP_ID})
    timestamp = int(signed.header["X-TC-Timestamp"]) + day * 86400
    date = datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d")
    signature = vod(emulator)._get_tc3_signature(None, signed, date, service, SECRET_KEY)
    signed.header["Authorization"] = (
        f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{date}/{service}/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )
    return signed


def _edit_authorization(old: str, new: str) -> Callable[[Emulator], RequestInternal]:
    def edited(emulator: Emulator) -> RequestInternal:
        signed = _resigned(emulator)
        assert signed.header["Authorization"].count(old) == 1
        signed.header["Authorization"] = signed.header["Authorization"].replace(old, new)
        return signed

    return edited


# Each a request signed with the real key, over a scope or algorithm other than the one TC3 prescribes
# (https://www.tencentcloud.com/document/api/266/34114): the signature matches what it claims, and is refused.
SCOPE_REFUSALS: list[tuple[str, Callable[[Emulator], RequestInternal]]] = [
    ("date the day before the timestamp's", lambda emulator: _resigned(emulator, day=-1)),
    ("date the day after the timestamp's", lambda emulator: _resigned(emulator, day=1)),
    ("another service", lambda emulator: _resigned(emulator, service="cvm")),
    ("scope not ending in tc3_request", _edit_authorization("/tc3_request,", "/tc3_other,")),
    ("another algorithm", _edit_authorization("TC3-HMAC-SHA256 ", "AWS4-HMAC-SHA256 ")),
]


def test_a_request_resigned_as_the_sdk_signs_is_accepted(emulator: Emulator):
    answer = _send(emulator, _resigned(emulator)).json()["Response"]
    assert "Error" not in answer, answer


@pytest.mark.parametrize("request_for", [pytest.param(row[1], id=row[0]) for row in SCOPE_REFUSALS])
def test_a_signature_over_another_scope_is_refused(
    emulator: Emulator, request_for: Callable[[Emulator], RequestInternal]
):
    answer = _send(emulator, request_for(emulator)).json()["Response"]
    assert answer["Error"]["Code"].startswith("AuthFailure."), answer


@pytest.mark.parametrize("offset", [400, -400], ids=["emulator ahead", "emulator behind"])
def test_a_timestamp_over_five_minutes_off_either_way_is_refused(emulator: Emulator, clock: FrozenClock, offset: int):
    # "If the difference between the UNIX timestamp and the server time is greater than 5 minutes": either sign.
    clock.advance(offset)
    describe = cloud_request(models.DescribeEventConfigRequest)
    assert _error(lambda: vod(emulator).DescribeEventConfig(describe)).code == "AuthFailure.SignatureExpire"


def test_get_requests_are_verified_then_declined(emulator: Emulator):
    # GET signs the raw query string instead of the body: verified, then declined (JSON POST only).
    client = vod(emulator)
    client.profile.httpProfile.reqMethod = "GET"
    error = _error(lambda: client.DescribeEventConfig(cloud_request(models.DescribeEventConfigRequest)))
    assert error.code == "UnsupportedOperation"


def test_unsigned_payload_marker_is_understood(emulator: Emulator):
    client = vod(emulator)
    client.profile.unsignedPayload = True
    assert client.DescribeEventConfig(cloud_request(models.DescribeEventConfigRequest)).Mode == "PUSH"


def test_parse_authorization():
    auth = tc3.parse_authorization(
        "TC3-HMAC-SHA256 Credential=AKIDx/2024-01-02/vod/tc3_request, SignedHeaders=content-type;host, Signature=AB"
    )
    assert auth == tc3.Tc3Authorization("AKIDx", "2024-01-02", "vod", ("content-type", "host"), "ab")
    with pytest.raises(tc3.Tc3Error):
        tc3.parse_authorization(
            "TC3-HMAC-SHA256 Credential=AKIDx/2024-01-02/vod/tc3_request, SignedHeaders=host, Signature=ab"
        )


# -- actions and parameters ----------------------------------------------------------------------


def test_unknown_action_parameter_and_version(emulator: Emulator):
    client = vod(emulator)
    assert _error(lambda: client.call_json("SearchMedia", {})).code == "InvalidAction"
    unknown = _error(lambda: client.call_json("DescribeEventConfig", {"Colour": "blue"}))
    assert (unknown.code, "Colour" in unknown.message) == ("UnknownParameter", True)
    assert _error(lambda: client.call_json("DescribeEventConfig", {"SubAppId": "x"})).code == "InvalidParameter"
    assert _error(lambda: client.call_json("CommitUpload", {"SubAppId": SUB_APP_ID})).code == "MissingParameter"
    client._apiVersion = "2017-01-01"
    assert _error(lambda: client.call_json("DescribeEventConfig", {})).code == "NoSuchVersion"


@pytest.mark.parametrize("action", ["PullEvents", "DescribeEventConfig", "DescribeMediaInfos", "DescribeTaskDetail"])
def test_a_call_without_the_sub_application_is_not_answered_from_it(emulator: Emulator, action: str):
    # Without SubAppId VOD answers for the account's primary application: a caller that drops it (the
    # functions, vod-configure-events) must not find its sub-application's events and files there.
    error = _error(lambda: vod(emulator).call_json(action, {"FileIds": ["1"]} if "Media" in action else {}))
    assert (error.code, "SubAppId" in error.message) == ("InvalidParameterValue.SubAppId", True)


def test_answers_are_json_with_status_200(emulator: Emulator):
    response = _send(emulator, _signed(emulator, "DescribeEventConfig", {"Colour": 1}))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert set(response.json()["Response"]) == {"Error", "RequestId"}


def test_a_crash_answers_internal_error_without_details(emulator: Emulator, monkeypatch: pytest.MonkeyPatch):
    def boom() -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(emulator.state, "get_event_config", boom)
    response = _send(emulator, _signed(emulator, "DescribeEventConfig", {"SubAppId": SUB_APP_ID}))
    assert response.json()["Response"]["Error"]["Code"] == "InternalError"
    assert "secret" not in response.text


# -- server-side upload and media ----------------------------------------------------------------


def test_apply_upload_cos_put_commit_upload_describe(emulator: Emulator):
    committed = _server_upload(
        emulator, b"server bytes", MediaName="talk", ClassId=2, SourceContext="svc", StorageRegion="ap-beijing"
    )
    assert len(committed.FileId) == 19
    assert requests.get(committed.MediaUrl, timeout=10).content == b"server bytes"

    infos = vod(emulator).DescribeMediaInfos(
        cloud_request(models.DescribeMediaInfosRequest, FileIds=[committed.FileId, "1111111111111111111"])
    )
    assert infos.NotExistFileIdSet == ["1111111111111111111"]
    basic = infos.MediaInfoSet[0].BasicInfo
    assert (basic.Name, basic.Type, basic.ClassId, basic.StorageRegion) == ("talk", "mp4", 2, "ap-beijing")
    assert basic.MediaUrl == committed.MediaUrl
    assert basic.SourceInfo.SourceType == "Upload"
    assert basic.SourceInfo.SourceContext == "svc"
    assert basic.CreateTime.endswith("Z")
    assert infos.MediaInfoSet[0].MetaData.Size == len(b"server bytes")


def test_commit_upload_is_idempotent(emulator: Emulator):
    client = vod(emulator)
    applied = client.ApplyUpload(cloud_request(models.ApplyUploadRequest, MediaType="mp3", CoverType="jpg"))
    assert applied.CoverStoragePath.endswith(".jpg")
    cert = applied.TempCertificate
    bucket_client = cos(emulator, applied.StorageRegion, cert.SecretId, cert.SecretKey, cert.Token)
    commit = cloud_request(models.CommitUploadRequest, VodSessionKey=applied.VodSessionKey)
    assert _error(lambda: client.CommitUpload(commit)).code == "FailedOperation"
    bucket_client.put_object(Bucket=applied.StorageBucket, Key=applied.MediaStoragePath, Body=b"a")
    bucket_client.put_object(Bucket=applied.StorageBucket, Key=applied.CoverStoragePath, Body=b"c")
    first, second = client.CommitUpload(commit), client.CommitUpload(commit)
    assert (first.FileId, first.MediaUrl, first.CoverUrl) == (second.FileId, second.MediaUrl, second.CoverUrl)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        pytest.param({"MediaType": "exe"}, "InvalidParameterValue.MediaType", id="type"),
        pytest.param(
            {"MediaType": "mp4", "StorageRegion": "ap-mars"}, "InvalidParameterValue.StorageRegion", id="region"
        ),
        pytest.param(
            {"MediaType": "mp4", "SessionContext": "x" * 1001},
            "InvalidParameterValue.SessionContextTooLong",
            id="session context",
        ),
        pytest.param({"MediaType": "mp4", "SourceContext": "x" * 251}, "InvalidParameterValue", id="source context"),
        # in UTF-8 bytes, the strictest reading of VOD's "characters"
        pytest.param({"MediaType": "mp4", "SourceContext": "\u7528" * 84}, "InvalidParameterValue", id="cjk context"),
        pytest.param({"MediaType": "mp4", "ExpireTime": "tomorrow"}, "InvalidParameterValue.ExpireTime", id="expiry"),
        pytest.param(  # past the calendar once in UTC
            {"MediaType": "mp4", "ExpireTime": "9999-12-31T23:59:59-23:59"},
            "InvalidParameterValue.ExpireTime",
            id="expiry out of range",
        ),
        pytest.param({"MediaType": "mp4", "MediaName": "clip\ud83d"}, "InvalidParameter", id="lone surrogate"),
        pytest.param({"MediaType": "mp4", "ClassId": -1}, "InvalidParameterValue.ClassId", id="class"),
        pytest.param({}, "MissingParameter", id="no type"),
    ],
)
def test_apply_upload_refusals(emulator: Emulator, fields: dict[str, Any], code: str):
    assert _error(lambda: vod(emulator).ApplyUpload(cloud_request(models.ApplyUploadRequest, **fields))).code == code


def test_describe_media_infos_limits(emulator: Emulator):
    client = vod(emulator)
    ids = [str(10**18 + i) for i in range(21)]
    too_many = _error(lambda: client.DescribeMediaInfos(cloud_request(models.DescribeMediaInfosRequest, FileIds=ids)))
    assert too_many.code == "InvalidParameterValue.FileIdsTooMany"
    assert (
        _error(lambda: client.DescribeMediaInfos(cloud_request(models.DescribeMediaInfosRequest))).code
        == "MissingParameter"
    )
    filtered = client.DescribeMediaInfos(
        cloud_request(models.DescribeMediaInfosRequest, FileIds=["1"], Filters=["transcodeInfo"])
    )
    assert filtered.NotExistFileIdSet == ["1"]


def test_describe_task_detail_answers_the_procedure_its_events_report(emulator: Emulator):
    client = vod(emulator)
    client.ModifyEventConfig(
        cloud_request(models.ModifyEventConfigRequest, Mode="PULL", UploadMediaCompleteEventSwitch="ON")
    )
    committed = _server_upload(emulator, b"abc", Procedure="QCVB_SimpleProcessFile", SessionContext="s1")
    pulled = _pull(emulator)
    [upload] = [e for e in pulled if e.EventType == "NewFileUpload"]
    [finish] = [e for e in pulled if e.ProcedureStateChangeEvent and e.ProcedureStateChangeEvent.Status == "FINISH"]
    task_id = upload.FileUploadEvent.ProcedureTaskId
    detail = client.DescribeTaskDetail(cloud_request(models.DescribeTaskDetailRequest, TaskId=task_id))
    assert (detail.TaskType, detail.Status) == ("Procedure", "FINISH")
    # The SDK's own model of both: the task VOD describes is the one its FINISH event carried.
    assert json.loads(detail.ProcedureTask.to_json_string()) == json.loads(
        finish.ProcedureStateChangeEvent.to_json_string()
    )
    assert (detail.ProcedureTask.FileId, detail.ProcedureTask.SessionContext) == (committed.FileId, "s1")
    [result] = detail.ProcedureTask.MediaProcessResultSet
    assert result.TranscodeTask.Output.Url == committed.MediaUrl

    unknown = cloud_request(models.DescribeTaskDetailRequest, TaskId=task_id + "0")
    assert _error(lambda: client.DescribeTaskDetail(unknown)).code == "InvalidParameterValue.TaskId"
    assert (
        _error(lambda: client.DescribeTaskDetail(cloud_request(models.DescribeTaskDetailRequest))).code
        == "MissingParameter"
    )


# -- DeleteMedia -----------------------------------------------------------------------------------

_PART = {"Type": "TranscodeFiles", "Definition": 100010}


@pytest.mark.parametrize(
    ("parts", "reported", "listed", "served"),
    [
        (None, [], False, False),  # the whole file (DeleteParts' default): no longer listed nor served
        ([{"Type": "TranscodeFiles"}], [{"Type": "TranscodeFiles", "Definition": 0}], True, True),  # 0: all of them
        (
            [_PART, {"Type": "WechatPublishFiles", "Definition": 0}],
            [_PART, {"Type": "WechatPublishFiles", "Definition": 0}],
            True,
            True,
        ),
        # the original (and the cover uploaded with it): the file is still listed, its media no longer served
        ([{"Type": "OriginalFiles"}], [{"Type": "OriginalFiles", "Definition": 0}], True, False),
    ],
    ids=["whole", "all-transcodes", "two-parts", "original"],
)
def test_delete_media_is_reported_as_filedeleted(
    emulator: Emulator, parts: list[dict[str, Any]] | None, reported: list[dict[str, Any]], listed: bool, served: bool
):
    client = vod(emulator)
    client.ModifyEventConfig(
        cloud_request(models.ModifyEventConfigRequest, Mode="PULL", DeleteMediaCompleteEventSwitch="ON")
    )
    committed = _server_upload(emulator, b"abc", b"cover", Procedure="QCVB_SimpleProcessFile")
    task_ids = {e.ProcedureStateChangeEvent.TaskId for e in _pull(emulator)}  # its task flow's, PROCESSING and FINISH
    client.DeleteMedia(cloud_request(models.DeleteMediaRequest, FileId=committed.FileId, DeleteParts=parts))
    # The SDK's own model of the event: one file, with the parts deleted
    [event] = _pull(emulator)
    assert (event.EventType, event.FileDeleteEvent.FileIdSet) == ("FileDeleted", [committed.FileId])
    [result] = event.FileDeleteEvent.FileDeleteResultInfo
    assert result.FileId == committed.FileId
    assert [json.loads(part.to_json_string()) for part in result.DeleteParts] == reported
    infos = client.DescribeMediaInfos(cloud_request(models.DescribeMediaInfosRequest, FileIds=[committed.FileId]))
    assert infos.NotExistFileIdSet == ([] if listed else [committed.FileId])
    served_urls = [url for url in (committed.MediaUrl, committed.CoverUrl) if requests.get(url, timeout=10).ok]
    assert served_urls == ([committed.MediaUrl, committed.CoverUrl] if served else [])
    # VOD describes a task for 3 days, whatever became of its file
    [task_id] = task_ids
    detail = client.DescribeTaskDetail(cloud_request(models.DescribeTaskDetailRequest, TaskId=task_id))
    assert (detail.Status, detail.ProcedureTask.FileId) == ("FINISH", committed.FileId)


@pytest.mark.parametrize(
    ("parts", "code"),
    [
        ([{"Type": "Transcodes"}], "InvalidParameterValue"),
        ([{"Definition": 10}], "InvalidParameterValue"),  # a Type is required
        ([{"Type": "TranscodeFiles", "Definition": -1}], "InvalidParameterValue"),
        ([{"Type": "TranscodeFiles", "Name": "x"}], "UnknownParameter"),
    ],
)
def test_delete_media_refuses_parts_vod_does_not_have(emulator: Emulator, parts: list[dict[str, Any]], code: str):
    committed = _server_upload(emulator, b"abc")
    request = cloud_request(models.DeleteMediaRequest, FileId=committed.FileId, DeleteParts=parts)
    assert _error(lambda: vod(emulator).DeleteMedia(request)).code == code


def test_delete_media_with_its_event_switch_off_sends_nothing(emulator: Emulator):
    client = vod(emulator)
    client.ModifyEventConfig(cloud_request(models.ModifyEventConfigRequest, Mode="PULL"))  # the switch is OFF
    committed = _server_upload(emulator, b"abc")
    client.DeleteMedia(cloud_request(models.DeleteMediaRequest, FileId=committed.FileId))
    assert _pull(emulator) == []
    again = cloud_request(models.DeleteMediaRequest, FileId=committed.FileId)  # gone already
    assert _error(lambda: client.DeleteMedia(again)).code == "ResourceNotFound.FileNotExist"
    assert _error(lambda: client.DeleteMedia(cloud_request(models.DeleteMediaRequest))).code == "MissingParameter"


# -- reliable callback (PULL) --------------------------------------------------------------------


def _pull(emulator: Emulator) -> list[Any]:
    return vod(emulator).PullEvents(cloud_request(models.PullEventsRequest)).EventSet or []


def _confirm(emulator: Emulator, handles: list[str]) -> None:
    vod(emulator).ConfirmEvents(cloud_request(models.ConfirmEventsRequest, EventHandles=handles))


def test_pull_confirm_and_redelivery_after_30_seconds(emulator: Emulator, clock: FrozenClock):
    vod(emulator).ModifyEventConfig(
        cloud_request(models.ModifyEventConfigRequest, Mode="PULL", UploadMediaCompleteEventSwitch="ON")
    )
    committed = _server_upload(emulator, b"abc")
    [event] = _pull(emulator)
    assert event.EventType == "NewFileUpload"
    assert event.FileUploadEvent.FileId == committed.FileId
    assert _pull(emulator) == []  # handed out: not again within 30 s

    clock.advance(29)
    assert _pull(emulator) == []
    clock.advance(1)
    [again] = _pull(emulator)
    assert again.FileUploadEvent.FileId == committed.FileId
    assert again.EventHandle != event.EventHandle

    stale = _error(lambda: _confirm(emulator, [event.EventHandle, again.EventHandle]))
    assert stale.code == "InvalidParameter"
    assert event.EventHandle in stale.message
    _confirm(emulator, [again.EventHandle])
    _confirm(emulator, [again.EventHandle])  # confirming twice within the window is harmless
    clock.advance(60)
    assert _pull(emulator) == []
    assert _error(lambda: _confirm(emulator, ["no-such-handle"])).code == "InvalidParameter"


def test_confirm_takes_at_most_16_handles(emulator: Emulator, clock: FrozenClock):
    # EventHandles: "数组长度限制：16" (the SDK's ConfirmEventsRequest, from the API reference).
    emulator.configure_events(mode="PULL")
    for _ in range(17):
        client_upload(emulator, clock)
    handles = [e.EventHandle for e in _pull(emulator) + _pull(emulator)]
    assert len(handles) == 17
    assert _error(lambda: _confirm(emulator, handles)).code.startswith("InvalidParameter")
    _confirm(emulator, handles[:16])
    _confirm(emulator, handles[16:])
    clock.advance(30)
    assert _pull(emulator) == []


def _sdk_fields(model: type) -> set[str]:
    return {name.lstrip("_") for name in vars(model())}


# (where in an EventSet item, the SDK's model of what is there)
_PULLED_STRUCTURES = [
    ((), models.EventContent),
    (("FileUploadEvent",), models.FileUploadTask),
    (("FileUploadEvent", "MediaBasicInfo"), models.MediaBasicInfo),
    (("FileUploadEvent", "MediaBasicInfo", "SourceInfo"), models.MediaSourceData),
    (("FileUploadEvent", "MetaData"), models.MediaMetaData),
    (("ProcedureStateChangeEvent",), models.ProcedureTask),
    (("ProcedureStateChangeEvent", "MetaData"), models.MediaMetaData),
    (("ProcedureStateChangeEvent", "MediaProcessResultSet", 0), models.MediaProcessTaskResult),
    (
        ("ProcedureStateChangeEvent", "MediaProcessResultSet", 0, "TranscodeTask"),
        models.MediaProcessTaskTranscodeResult,
    ),
]


def test_pulled_events_carry_every_field_null_when_absent_as_vods_api_answers(emulator: Emulator):
    # GIVEN an upload with a task flow, its events queued for PullEvents
    client = vod(emulator)
    client.ModifyEventConfig(
        cloud_request(models.ModifyEventConfigRequest, Mode="PULL", UploadMediaCompleteEventSwitch="ON")
    )
    _server_upload(emulator, b"abc", Procedure="QCVB_SimpleProcessFile")
    # WHEN they are pulled, read as JSON (the SDK's models would fill in the nulls themselves)
    answer = json.loads(client.call("PullEvents", {"SubAppId": SUB_APP_ID}))["Response"]
    items = {(e["EventType"], (e["ProcedureStateChangeEvent"] or {}).get("Status")): e for e in answer["EventSet"]}
    finish = items[("ProcedureStateChanged", "FINISH")]
    # THEN every structure has every field of the SDK's model of it (the API's data structures), the absent null
    for path, model in _PULLED_STRUCTURES:
        item = finish if path and path[0] == "ProcedureStateChangeEvent" else items[("NewFileUpload", None)]
        for step in path:
            item = item[step]
        assert set(item) == _sdk_fields(model), path
    assert finish["FileUploadEvent"] is None and finish["ProcedureStateChangeEvent"]["Operator"] is None


def test_a_pulled_filedeleted_carries_every_field_null_when_absent(emulator: Emulator):
    client = vod(emulator)
    client.ModifyEventConfig(
        cloud_request(models.ModifyEventConfigRequest, Mode="PULL", DeleteMediaCompleteEventSwitch="ON")
    )
    committed = _server_upload(emulator, b"abc")
    client.DeleteMedia(cloud_request(models.DeleteMediaRequest, FileId=committed.FileId, DeleteParts=[_PART]))
    [event] = json.loads(client.call("PullEvents", {"SubAppId": SUB_APP_ID}))["Response"]["EventSet"]
    deleted = event["FileDeleteEvent"]
    for item, model in [
        (event, models.EventContent),
        (deleted, models.FileDeleteTask),
        (deleted["FileDeleteResultInfo"][0], models.FileDeleteResultItem),
        (deleted["FileDeleteResultInfo"][0]["DeleteParts"][0], models.MediaDeleteItem),
    ]:
        assert set(item) == _sdk_fields(model), model
    assert event["FileUploadEvent"] is None


def test_pull_returns_at_most_16_events(emulator: Emulator, clock: FrozenClock):
    emulator.configure_events(mode="PULL")
    for _ in range(17):
        client_upload(emulator, clock)
    first = _pull(emulator)
    assert len(first) == 16
    _confirm(emulator, [e.EventHandle for e in first])
    assert len(_pull(emulator)) == 1


def test_long_poll_wakes_on_a_new_event_and_does_not_block_others(
    emulator_factory: Callable[..., Emulator], clock: FrozenClock
):
    emulator = emulator_factory(long_poll_seconds=60.0)  # only a wake-up can end this poll in time
    emulator.push_worker.stop()  # so that the only waiter on the event signal is the long poll
    emulator.configure_events(mode="PULL")
    results: list[list[Any]] = []
    poller = threading.Thread(target=lambda: results.append(_pull(emulator)), daemon=True)
    poller.start()
    assert wait_until(lambda: emulator.signal.waiting == 1)

    assert vod(emulator).DescribeEventConfig(cloud_request(models.DescribeEventConfigRequest)).Mode == "PULL"
    committed = client_upload(emulator, clock)
    poller.join(timeout=20)
    assert not poller.is_alive()
    assert [e.FileUploadEvent.FileId for e in results[0]] == [committed["fileId"]]


def test_a_long_poll_without_events_returns_an_empty_set(emulator: Emulator):
    assert _pull(emulator) == []


def test_unpulled_events_are_kept_for_four_days_only(emulator: Emulator, clock: FrozenClock):
    emulator.configure_events(mode="PULL")
    client_upload(emulator, clock)
    clock.advance(4 * 24 * 3600 + 1)
    assert emulator.state.pull_events(clock(), limit=16, window=30, retention=4 * 24 * 3600, new_handle=str) == []


def test_sdk_secret_is_never_echoed(emulator: Emulator):
    response = _send(emulator, _signed(emulator, "DescribeEventConfig", {}))
    assert SECRET_KEY not in response.text
    assert SECRET_ID not in response.text
