"""The client upload API, driven like the client SDKs drive it (https://cloud.tencent.com/document/product/266/9239):
signatures from shared.signing, JSON over HTTP, bytes through the real COS SDK with the returned tempCertificate."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from qcloud_cos.cos_exception import CosServiceError
from tencentcloud.vod.v20180717 import models

from shared.signing import build_signature
from tests.clocks import FrozenClock
from tests.emulator.signatures import new_params
from vodemu.app import Emulator
from vodemu.credentials import TempCredential
from vodemu.objects import ObjectSealedError
from vodemu.upload_api import Code

from .emulator_fixtures import (
    APP_ID,
    SECRET_ID,
    SECRET_KEY,
    SUB_APP_ID,
    apply_video,
    bucket_of,
    client_upload,
    cos,
    cos_for_apply,
    key_of,
    raw_signature,
    signature,
    ugc,
    vod,
)


def test_prepare_apply_upload_commit_with_the_real_cos_sdk(emulator: Emulator, clock: FrozenClock, tmp_path: Path):
    prepared = ugc(emulator, "PrepareUploadUGC", {"signature": signature(clock)})
    assert prepared["code"] == 0
    assert prepared["data"]["appId"] == APP_ID
    assert prepared["data"]["cosRegionList"][0]["region"] == "ap-guangzhou"

    video = bytes(range(256)) * (10 * 1024 + 1)  # 2.5 MiB: a 3-part multipart upload at 1 MiB parts
    cover = b"\x89PNG cover"
    body = {
        "signature": signature(clock, source_context="user-42"),
        "videoName": "holiday",
        "videoType": "MP4",
        "videoSize": len(video),
        "coverName": "thumb",
        "coverType": "png",
        "coverSize": len(cover),
    }
    applied = ugc(emulator, "ApplyUploadUGC", body)
    assert applied["code"] == 0, applied
    data = applied["data"]
    assert data["storageAppId"] == APP_ID
    assert data["storageRegionV5"] == "ap-guangzhou"
    assert data["appId"] == APP_ID
    assert data["timestamp"] == int(clock())
    assert data["video"]["storagePath"].startswith(f"/{SUB_APP_ID}/")
    assert data["video"]["storagePath"].endswith(".mp4")
    assert data["cover"]["storagePath"].endswith(".png")
    assert set(data["tempCertificate"]) == {"secretId", "secretKey", "token", "expiredTime"}
    assert data["tempCertificate"]["expiredTime"] == int(clock()) + 3600

    client = cos_for_apply(emulator, data)
    local = tmp_path / "holiday.mp4"
    local.write_bytes(video)
    client.upload_file(
        Bucket=bucket_of(data), Key=data["video"]["storagePath"], LocalFilePath=str(local), PartSize=1, MAXThread=2
    )
    client.put_object(Bucket=bucket_of(data), Key=key_of(data["cover"]["storagePath"]), Body=cover)

    committed = ugc(
        emulator, "CommitUploadUGC", {"signature": signature(clock), "vodSessionKey": data["vodSessionKey"]}
    )
    assert committed["code"] == 0, committed
    result = committed["data"]
    assert re.fullmatch(r"[1-9][0-9]{18}", result["fileId"])
    assert result["video"]["verify_content"]
    assert requests.get(result["video"]["url"], timeout=10).content == video
    assert requests.get(result["cover"]["url"], timeout=10).content == cover
    ranged = requests.get(result["video"]["url"], headers={"Range": "bytes=256-511"}, timeout=10)
    assert ranged.status_code == 206
    assert ranged.content == bytes(range(256))
    assert emulator.store.bytes_received >= len(video) + len(cover)


def _raw(pairs: dict[str, object]) -> str:
    return raw_signature([(k, str(v)) for k, v in pairs.items()])


def _base(now: float) -> dict[str, object]:
    return {
        "secretId": SECRET_ID,
        "currentTimeStamp": int(now),
        "expireTime": int(now) + 600,
        "random": 7,
        "vodSubAppId": SUB_APP_ID,
    }


def _apply_body(sig: str, **fields: Any) -> dict[str, Any]:
    return {"signature": sig, "videoName": "v", "videoType": "mp4", "videoSize": 1, **fields}


BodyFor = Callable[[FrozenClock], dict[str, Any]]

REFUSALS: list[tuple[str, str, BodyFor, Code]] = [
    ("no signature", "ApplyUploadUGC", lambda c: {"videoType": "mp4", "videoSize": 1}, Code.SIGNATURE_MISSING),
    ("not base64", "ApplyUploadUGC", lambda c: _apply_body("%%% not base64"), Code.SIGNATURE_MALFORMED),
    (
        "no random",
        "ApplyUploadUGC",
        lambda c: _apply_body(raw_signature([("secretId", SECRET_ID), ("currentTimeStamp", str(int(c())))])),
        Code.SIGNATURE_MALFORMED,
    ),
    (
        "unknown secretId",
        "ApplyUploadUGC",
        lambda c: _apply_body(_raw({**_base(c()), "secretId": "AKIDnobody"})),
        Code.UNKNOWN_SECRET_ID,
    ),
    (
        "HMAC mismatch",
        "ApplyUploadUGC",
        lambda c: _apply_body(
            build_signature(new_params(SECRET_ID, 600, now=c, vod_sub_app_id=SUB_APP_ID), "wrong key")
        ),
        Code.SIGNATURE_MISMATCH,
    ),
    ("expired", "ApplyUploadUGC", lambda c: _apply_body(signature(lambda: c() - 601, 600)), Code.SIGNATURE_EXPIRED),
    (
        "from the future",
        "ApplyUploadUGC",
        lambda c: _apply_body(signature(lambda: c() + 3600)),
        Code.SIGNATURE_NOT_YET_VALID,
    ),
    (
        "validity over 90 days",
        "ApplyUploadUGC",
        lambda c: _apply_body(_raw({**_base(c()), "expireTime": int(c()) + 90 * 86400 + 1})),
        Code.SIGNATURE_VALIDITY,
    ),
    (
        "negative classId",
        "ApplyUploadUGC",
        lambda c: _apply_body(_raw({**_base(c()), "classId": -1})),
        Code.SIGNATURE_BAD_PARAMETER,
    ),
    *(
        (
            f"{name} over {limit} bytes in UTF-8",  # the strictest reading of VOD's "characters"
            "ApplyUploadUGC",
            lambda c, name=name, text=text: _apply_body(_raw({**_base(c()), name: text})),
            Code.SIGNATURE_BAD_PARAMETER,
        )
        for name, limit, text in (
            ("sourceContext", 250, "\u7528" * 84),
            ("sessionContext", 1000, "\N{GRINNING FACE}" * 251),
        )
    ),
    *(
        (
            f"{name} of {limit + 1} ASCII characters",  # over the limit however VOD counts
            "ApplyUploadUGC",
            lambda c, name=name, limit=limit: _apply_body(_raw({**_base(c()), name: "a" * (limit + 1)})),
            Code.SIGNATURE_BAD_PARAMETER,
        )
        for name, limit in (("sourceContext", 250), ("sessionContext", 1000))
    ),
    (
        "no vodSubAppId",
        "ApplyUploadUGC",
        lambda c: _apply_body(signature(c, vod_sub_app_id=None)),
        Code.SUB_APP_ID_MISSING,
    ),
    (
        "other vodSubAppId",
        "ApplyUploadUGC",
        lambda c: _apply_body(signature(c, vod_sub_app_id=1500000999)),
        Code.SUB_APP_ID_WRONG,
    ),
    ("negative size", "ApplyUploadUGC", lambda c: _apply_body(signature(c), videoSize=-1), Code.BAD_FIELD),
    ("size not a number", "ApplyUploadUGC", lambda c: _apply_body(signature(c), videoSize="big"), Code.BAD_FIELD),
    (
        "size of 5000 digits",
        "ApplyUploadUGC",
        lambda c: _apply_body(signature(c), videoSize="9" * 5000),
        Code.BAD_FIELD,
    ),
    ("no videoType", "ApplyUploadUGC", lambda c: _apply_body(signature(c), videoType=""), Code.BAD_FIELD),
    ("bad videoName", "ApplyUploadUGC", lambda c: _apply_body(signature(c), videoName="a/b"), Code.BAD_FIELD),
    ("unsupported type", "ApplyUploadUGC", lambda c: _apply_body(signature(c), videoType="exe"), Code.MEDIA_TYPE),
    (
        "unsupported cover",
        "ApplyUploadUGC",
        lambda c: _apply_body(signature(c), coverName="c", coverType="mp4", coverSize=1),
        Code.COVER_TYPE,
    ),
    (
        "region not enabled",
        "ApplyUploadUGC",
        lambda c: _apply_body(signature(c, storage_region="ap-mars")),
        Code.STORAGE_REGION,
    ),
    (
        "unknown session",
        "CommitUploadUGC",
        lambda c: {"signature": signature(c), "vodSessionKey": "nope"},
        Code.SESSION_NOT_FOUND,
    ),
    ("no session key", "CommitUploadUGC", lambda c: {"signature": signature(c)}, Code.BAD_FIELD),
    (
        "cover of unknown file",
        "ApplyUploadUGC",
        lambda c: {"signature": signature(c), "fileId": "1234567890123456789", "coverType": "jpg", "coverSize": 1},
        Code.FILE_NOT_FOUND,
    ),
    ("unknown action", "DeleteUploadUGC", lambda c: {"signature": signature(c)}, Code.BAD_REQUEST),
]


@pytest.mark.parametrize(("action", "body_for", "code"), [pytest.param(*r[1:], id=r[0]) for r in REFUSALS])
def test_refusals_have_their_own_codes(
    emulator: Emulator, clock: FrozenClock, action: str, body_for: BodyFor, code: Code
):
    answer = ugc(emulator, action, body_for(clock))
    assert answer["code"] == code, answer
    assert answer["message"]


def _retyped(signature_text: str, old: bytes, new: bytes) -> str:
    """The signature with `old` replaced by `new` in its signed text, keeping the original MAC."""
    decoded = base64.b64decode(signature_text)
    mac, original = decoded[:20], decoded[20:]
    assert original.count(old) == 1, original
    return base64.b64encode(mac + original.replace(old, new)).decode()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(b"sourceContext=user-42", b"sourceContext=user-43", id="another user, same length"),
        pytest.param(b"sourceContext=user-42", b"sourceContext=admin", id="another user"),
        pytest.param(b"&sourceContext=user-42", b"", id="identity removed"),
        pytest.param(b"sourceContext=user-42", b"sourceContext=user%2D42", id="same value, other encoding"),
    ],
)
def test_a_signature_whose_signed_text_was_edited_is_refused(emulator: Emulator, clock: FrozenClock, old, new):
    genuine = signature(clock, source_context="user-42")
    assert ugc(emulator, "ApplyUploadUGC", _apply_body(genuine))["code"] == 0  # the untouched one passes
    answer = ugc(emulator, "ApplyUploadUGC", _apply_body(_retyped(genuine, old, new)))
    assert answer["code"] == Code.SIGNATURE_MISMATCH, answer
    assert "signature" in answer["message"]


def test_refusal_codes_are_distinct():
    assert len({int(c) for c in Code}) == len(Code.__members__)


@pytest.mark.parametrize(
    "body",
    [
        b"nope",
        b"[" * 50_000,  # past the JSON decoder's depth
        # an emoji cut in half (JS truncating by UTF-16 units): JSON, but no text to store and describe later
        b'{"signature": "s", "videoName": "clip\\ud83d", "videoType": "mp4", "videoSize": 1}',
        b'{"signature": "s", "vodSessionKey": "\\udc00x"}',
    ],
    ids=["not JSON", "too deep", "lone surrogate", "lone surrogate in a session key"],
)
def test_a_body_that_is_not_json_is_refused(emulator: Emulator, body: bytes):
    action = "CommitUploadUGC" if b"vodSessionKey" in body else "ApplyUploadUGC"
    response = requests.post(f"{emulator.url}/v3/index.php?Action={action}", data=body, timeout=10)
    assert response.status_code == 200
    assert response.json()["code"] == Code.BAD_REQUEST


def test_one_time_signature_is_accepted_once(emulator: Emulator, clock: FrozenClock):
    once = signature(clock, one_time_valid=True)
    assert ugc(emulator, "PrepareUploadUGC", {"signature": once})["code"] == 0
    again = ugc(emulator, "ApplyUploadUGC", _apply_body(once))
    assert again["code"] == Code.SIGNATURE_REUSED
    reusable = signature(clock)
    assert ugc(emulator, "PrepareUploadUGC", {"signature": reusable})["code"] == 0
    assert ugc(emulator, "PrepareUploadUGC", {"signature": reusable})["code"] == 0


def test_one_time_signatures_are_remembered_across_restarts(
    emulator_factory: Callable[..., Emulator], clock: FrozenClock
):
    once = signature(clock, one_time_valid=True)
    first = emulator_factory()
    assert ugc(first, "PrepareUploadUGC", {"signature": once})["code"] == 0
    first.close()
    assert ugc(emulator_factory(), "PrepareUploadUGC", {"signature": once})["code"] == Code.SIGNATURE_REUSED


def test_resume_by_session_key_keeps_the_paths_with_fresh_credentials(emulator: Emulator, clock: FrozenClock):
    first = apply_video(emulator, clock, 5)
    clock.advance(3000)
    resumed = ugc(emulator, "ApplyUploadUGC", {"signature": signature(clock), "vodSessionKey": first["vodSessionKey"]})
    assert resumed["code"] == 0, resumed
    again = resumed["data"]
    assert again["vodSessionKey"] == first["vodSessionKey"]
    assert again["video"]["storagePath"] == first["video"]["storagePath"]
    assert again["tempCertificate"]["secretId"] != first["tempCertificate"]["secretId"]
    assert again["tempCertificate"]["expiredTime"] == int(clock()) + 3600

    cos_for_apply(emulator, again).put_object(
        Bucket=bucket_of(again), Key=key_of(again["video"]["storagePath"]), Body=b"12345"
    )
    committed = ugc(
        emulator, "CommitUploadUGC", {"signature": signature(clock), "vodSessionKey": first["vodSessionKey"]}
    )
    assert committed["code"] == 0, committed


def test_a_session_cannot_be_resumed_or_committed_after_a_day(emulator: Emulator, clock: FrozenClock):
    data = apply_video(emulator, clock, 5)
    clock.advance(24 * 3600 - 1)
    still = ugc(emulator, "ApplyUploadUGC", {"signature": signature(clock), "vodSessionKey": data["vodSessionKey"]})
    assert still["code"] == 0
    clock.advance(1)
    late = ugc(emulator, "ApplyUploadUGC", {"signature": signature(clock), "vodSessionKey": data["vodSessionKey"]})
    assert late["code"] == Code.SESSION_EXPIRED
    commit = ugc(emulator, "CommitUploadUGC", {"signature": signature(clock), "vodSessionKey": data["vodSessionKey"]})
    assert commit["code"] == Code.SESSION_EXPIRED


def test_temporary_credentials_cover_exactly_the_session_keys_and_expire(
    emulator_factory: Callable[..., Emulator], clock: FrozenClock
):
    emulator = emulator_factory(credential_ttl_seconds=120)
    data = apply_video(emulator, clock, 3)
    client = cos_for_apply(emulator, data)
    with pytest.raises(CosServiceError) as refused:
        client.put_object(Bucket=bucket_of(data), Key=f"{SUB_APP_ID}/elsewhere.mp4", Body=b"abc")
    assert refused.value.get_status_code() == 403

    clock.advance(121)
    with pytest.raises(CosServiceError):
        client.put_object(Bucket=bucket_of(data), Key=key_of(data["video"]["storagePath"]), Body=b"abc")
    fresh = ugc(emulator, "ApplyUploadUGC", {"signature": signature(clock), "vodSessionKey": data["vodSessionKey"]})
    cos_for_apply(emulator, fresh["data"]).put_object(
        Bucket=bucket_of(data), Key=key_of(data["video"]["storagePath"]), Body=b"abc"
    )


def test_commit_checks_the_object_is_uploaded_with_the_size_applied_for(emulator: Emulator, clock: FrozenClock):
    data = apply_video(emulator, clock, 10)
    commit = {"signature": signature(clock), "vodSessionKey": data["vodSessionKey"]}
    assert ugc(emulator, "CommitUploadUGC", commit)["code"] == Code.NOT_UPLOADED

    client, bucket, key = cos_for_apply(emulator, data), bucket_of(data), key_of(data["video"]["storagePath"])
    client.put_object(Bucket=bucket, Key=key, Body=b"123456789")
    wrong = ugc(emulator, "CommitUploadUGC", commit)
    assert wrong["code"] == Code.SIZE_MISMATCH
    assert "9 bytes" in wrong["message"]

    client.put_object(Bucket=bucket, Key=key, Body=b"0123456789")
    assert ugc(emulator, "CommitUploadUGC", commit)["code"] == 0


def _uploaded(emulator: Emulator, clock: FrozenClock, content: bytes) -> tuple[dict[str, Any], str, str]:
    """An applied session with `content` uploaded (not committed): its apply data, bucket and key."""
    data = apply_video(emulator, clock, len(content))
    bucket, key = bucket_of(data), key_of(data["video"]["storagePath"])
    cos_for_apply(emulator, data).put_object(Bucket=bucket, Key=key, Body=content)
    return data, bucket, key


def _commit(emulator: Emulator, clock: FrozenClock, data: dict[str, Any]) -> dict[str, Any]:
    answer = ugc(emulator, "CommitUploadUGC", {"signature": signature(clock), "vodSessionKey": data["vodSessionKey"]})
    assert answer["code"] == 0, answer
    committed: dict[str, Any] = answer["data"]
    return committed


COS_CALLS_AFTER_COMMIT: dict[str, Callable[[Any, str, str], object]] = {
    "put": lambda client, bucket, key: client.put_object(Bucket=bucket, Key=key, Body=b"swapped bytes"),
    "initiate multipart": lambda client, bucket, key: client.create_multipart_upload(Bucket=bucket, Key=key),
    "list uploads": lambda client, bucket, key: client.list_multipart_uploads(Bucket=bucket, Prefix=key),
    "get": lambda client, bucket, key: client.get_object(Bucket=bucket, Key=key),
}


@pytest.mark.parametrize("call", COS_CALLS_AFTER_COMMIT.values(), ids=COS_CALLS_AFTER_COMMIT.keys())
def test_commit_revokes_the_session_credentials(emulator: Emulator, clock: FrozenClock, call):
    data, bucket, key = _uploaded(emulator, clock, b"hello")
    client = cos_for_apply(emulator, data)
    committed = _commit(emulator, clock, data)
    with pytest.raises(CosServiceError) as refused:
        call(client, bucket, key)
    assert refused.value.get_status_code() == 403
    assert refused.value.get_error_code() == "AccessDenied"
    assert "revoked" in refused.value.get_error_msg()  # refused as a credential, before any store check
    assert requests.get(committed["video"]["url"], timeout=10).content == b"hello"
    assert emulator.service.verify_content(bucket, key) == committed["video"]["verify_content"]


COS_WRITES: dict[str, Callable[[Any, str, str], object]] = {
    "put": COS_CALLS_AFTER_COMMIT["put"],
    "initiate multipart": COS_CALLS_AFTER_COMMIT["initiate multipart"],
}


@pytest.mark.parametrize("write", COS_WRITES.values(), ids=COS_WRITES.keys())
def test_a_published_object_refuses_writes_even_with_a_live_credential(emulator: Emulator, clock: FrozenClock, write):
    data, bucket, key = _uploaded(emulator, clock, b"hello")
    committed = _commit(emulator, clock, data)
    live = emulator.credentials.issue(bucket, [key], 600)  # one the commit's revocation never saw
    client = cos(emulator, data["storageRegionV5"], live.secret_id, live.secret_key, live.token)
    with pytest.raises(CosServiceError) as refused:
        write(client, bucket, key)
    assert refused.value.get_status_code() == 403
    assert refused.value.get_error_code() == "AccessDenied"
    assert "committed" in refused.value.get_error_msg()
    assert requests.get(committed["video"]["url"], timeout=10).content == b"hello"


def test_a_write_in_flight_when_the_commit_lands_cannot_replace_the_published_bytes(
    emulator: Emulator, clock: FrozenClock
):
    data, bucket, key = _uploaded(emulator, clock, b"hello")
    committed: list[dict[str, Any]] = []

    class CommitWhileStreaming:
        """A PUT body (authenticated before the commit, as every PUT is) during which the commit happens."""

        def __init__(self) -> None:
            self.sent = False

        def read(self, size: int = -1) -> bytes:
            if self.sent:
                return b""
            self.sent = True
            committed.append(_commit(emulator, clock, data))
            return b"swapped bytes"

    with pytest.raises(ObjectSealedError):
        emulator.store.put_object(bucket, key, CommitWhileStreaming(), max_size=1024)
    [result] = committed
    assert requests.get(result["video"]["url"], timeout=10).content == b"hello"
    media = emulator.state.get_media(result["fileId"])
    assert media is not None and media.size == 5


def test_a_resume_racing_the_commit_gets_no_live_credential(
    emulator: Emulator, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
):
    data, _, _ = _uploaded(emulator, clock, b"hello")
    issue = emulator.credentials.issue
    issued: list[TempCredential] = []

    def commit_then_issue(*args: Any, **kwargs: Any) -> TempCredential:
        # The commit lands after the resume checked the session and before it issues a credential.
        emulator.service.commit(data["vodSessionKey"])
        credential = issue(*args, **kwargs)
        issued.append(credential)
        return credential

    monkeypatch.setattr(emulator.credentials, "issue", commit_then_issue)
    answer = ugc(emulator, "ApplyUploadUGC", {"signature": signature(clock), "vodSessionKey": data["vodSessionKey"]})
    assert answer["code"] == Code.SESSION_COMMITTED, answer
    [credential] = issued
    assert emulator.credentials.is_revoked(credential.secret_id)


def test_commit_twice_returns_the_same_file_and_reapply_is_refused(emulator: Emulator, clock: FrozenClock):
    data = apply_video(emulator, clock, 3)
    cos_for_apply(emulator, data).put_object(
        Bucket=bucket_of(data), Key=key_of(data["video"]["storagePath"]), Body=b"abc"
    )
    commit = {"signature": signature(clock), "vodSessionKey": data["vodSessionKey"]}
    first, second = ugc(emulator, "CommitUploadUGC", commit), ugc(emulator, "CommitUploadUGC", commit)
    assert first["code"] == second["code"] == 0
    assert first["data"] == second["data"]
    reapply = ugc(emulator, "ApplyUploadUGC", {"signature": signature(clock), "vodSessionKey": data["vodSessionKey"]})
    assert reapply["code"] == Code.SESSION_COMMITTED


def test_signature_options_reach_the_file(emulator: Emulator, clock: FrozenClock):
    result = client_upload(emulator, clock, b"abc", class_id=3, source_context="user-7", storage_region="ap-shanghai")
    info = vod(emulator).DescribeMediaInfos(_describe([result["fileId"]])).MediaInfoSet[0].BasicInfo
    assert info.ClassId == 3
    assert info.SourceInfo.SourceContext == "user-7"
    assert info.StorageRegion == "ap-shanghai"
    assert info.Name == "clip"
    assert info.MediaUrl == result["video"]["url"]


def test_change_only_the_cover_of_a_file(emulator: Emulator, clock: FrozenClock):
    result = client_upload(emulator, clock, b"video")
    cover = b"\xff\xd8 jpeg"
    body = {
        "signature": signature(clock),
        "fileId": result["fileId"],
        "coverName": "new",
        "coverType": "jpg",
        "coverSize": len(cover),
    }
    applied = ugc(emulator, "ApplyUploadUGC", body)
    assert applied["code"] == 0, applied
    data = applied["data"]
    assert "video" not in data
    cos_for_apply(emulator, data).put_object(
        Bucket=bucket_of(data), Key=key_of(data["cover"]["storagePath"]), Body=cover
    )

    committed = ugc(
        emulator, "CommitUploadUGC", {"signature": signature(clock), "vodSessionKey": data["vodSessionKey"]}
    )
    assert committed["code"] == 0, committed
    assert committed["data"]["fileId"] == result["fileId"]
    assert "video" not in committed["data"]
    assert requests.get(committed["data"]["cover"]["url"], timeout=10).content == cover
    info = vod(emulator).DescribeMediaInfos(_describe([result["fileId"]])).MediaInfoSet[0].BasicInfo
    assert info.CoverUrl == committed["data"]["cover"]["url"]
    assert info.MediaUrl == result["video"]["url"]


def test_media_is_served_only_once_committed(emulator: Emulator, clock: FrozenClock):
    data = apply_video(emulator, clock, 3)
    bucket, key = bucket_of(data), key_of(data["video"]["storagePath"])
    cos_for_apply(emulator, data).put_object(Bucket=bucket, Key=key, Body=b"abc")
    url = emulator.url_for(bucket, key)
    assert requests.get(url, timeout=10).status_code == 404
    ugc(emulator, "CommitUploadUGC", {"signature": signature(clock), "vodSessionKey": data["vodSessionKey"]})
    served = requests.get(url, timeout=10)
    assert served.status_code == 200
    assert served.content == b"abc"
    assert served.headers["Content-Type"] == "video/mp4"
    assert requests.head(url, timeout=10).headers["Content-Length"] == "3"
    cached = requests.get(url, headers={"If-None-Match": served.headers["ETag"]}, timeout=10)
    assert cached.status_code == 304
    assert requests.get(url, headers={"Range": "bytes=5-9"}, timeout=10).status_code == 416


def test_browsers_may_call_the_api_cross_origin(emulator: Emulator):
    preflight = requests.options(f"{emulator.url}/v3/index.php?Action=ApplyUploadUGC", timeout=10)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]


def test_a_crash_is_a_500_without_details(emulator: Emulator, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch):
    def boom(session_key: str) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(emulator.service, "commit", boom)
    response = requests.post(
        f"{emulator.url}/v3/index.php?Action=CommitUploadUGC",
        json={"signature": signature(clock), "vodSessionKey": "x"},
        timeout=10,
    )
    assert response.status_code == 500
    assert response.json()["code"] == Code.INTERNAL
    assert "secret" not in response.text


def test_primary_app_takes_no_sub_app_id_0_or_its_app_id(
    emulator_factory: Callable[..., Emulator], clock: FrozenClock
):  # the signature page: "blank, 0 or the AppId" is the primary application
    primary = emulator_factory(sub_app_id=None)
    unnamed = {k: v for k, v in _base(clock()).items() if k != "vodSubAppId"}
    for named in ({}, {"vodSubAppId": 0}, {"vodSubAppId": APP_ID}):
        assert ugc(primary, "PrepareUploadUGC", {"signature": _raw({**unnamed, **named})})["code"] == 0
    refused = ugc(primary, "PrepareUploadUGC", {"signature": signature(clock)})
    assert refused["code"] == Code.SUB_APP_ID_WRONG
    data = apply_video(primary, clock, 1, vod_sub_app_id=None)
    assert data["video"]["storagePath"].startswith(f"/{APP_ID}/")


def _describe(file_ids: list[str]) -> models.DescribeMediaInfosRequest:
    request = models.DescribeMediaInfosRequest()
    request.FileIds = file_ids
    request.SubAppId = SUB_APP_ID
    return request


def test_secret_key_is_not_in_settings_repr(emulator: Emulator):
    assert SECRET_KEY not in repr(emulator.settings)
