"""The COS object API driven by the real `qcloud_cos.CosS3Client`: passing here is the protocol proof."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

from .cos_helpers import (
    BUCKET,
    CRC64_HEADER,
    MIB,
    OTHER_BUCKET,
    REGION,
    CosEmulator,
    md5_etag,
    multipart_etag_of,
    sdk_crc64,
)

VIDEO = "vod/1250000000/video.mp4"


def read_body(response: dict[str, Any]) -> bytes:
    data: bytes = response["Body"].get_raw_stream().read()
    return data


def write_file(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    ("key", "body"),
    [
        pytest.param(VIDEO, os.urandom(1000), id="plain"),
        pytest.param("中文 目录/带 空格的 文件.mp4", b"unicode and spaces", id="unicode-spaces"),
        pytest.param("a+b=c&d;e,f'g\"h!.mp4", b"reserved characters", id="reserved-characters"),
        pytest.param("empty.bin", b"", id="empty"),
    ],
)
def test_put_head_get(cos_emulator: CosEmulator, key: str, body: bytes):
    client = cos_emulator.client(cos_emulator.issue(key))

    put = client.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="video/mp4")
    head = client.head_object(Bucket=BUCKET, Key=key)
    got = client.get_object(Bucket=BUCKET, Key=key)

    assert put["ETag"] == head["ETag"] == got["ETag"] == md5_etag(body)
    assert put[CRC64_HEADER] == head[CRC64_HEADER] == got[CRC64_HEADER] == str(sdk_crc64(body))
    assert put["x-cos-request-id"]
    assert head["Content-Length"] == str(len(body))
    assert head["Content-Type"] == "video/mp4"
    assert read_body(got) == body
    assert cos_emulator.store.bytes_received == len(body)


def test_an_empty_file_arrives_chunked_and_is_stored(cos_emulator: CosEmulator, tmp_path: Path):
    client = cos_emulator.client(cos_emulator.issue("empty.mp4"))
    with open(write_file(tmp_path / "empty", b""), "rb") as empty:
        client.put_object(Bucket=BUCKET, Key="empty.mp4", Body=empty)  # requests sends Transfer-Encoding: chunked
    info = cos_emulator.store.stat(BUCKET, "empty.mp4")
    assert info is not None
    assert (info.size, info.etag) == (0, md5_etag(b""))


def test_upload_file_in_parts_is_byte_identical(cos_emulator: CosEmulator, tmp_path: Path):
    data = os.urandom(5 * MIB + 12345)
    client = cos_emulator.client(cos_emulator.issue(VIDEO))

    result = client.upload_file(
        Bucket=BUCKET, Key=VIDEO, LocalFilePath=write_file(tmp_path / "v", data), PartSize=1, MAXThread=5
    )

    assert result["ETag"] == multipart_etag_of(data, MIB)
    assert read_body(client.get_object(Bucket=BUCKET, Key=VIDEO)) == data
    head = client.head_object(Bucket=BUCKET, Key=VIDEO)
    assert head["ETag"] == result["ETag"]
    assert head[CRC64_HEADER] == result[CRC64_HEADER] == str(sdk_crc64(data))  # the whole object's, as COS's
    assert cos_emulator.store.bytes_received == len(data)
    assert client.list_multipart_uploads(Bucket=BUCKET, Prefix=VIDEO).get("Upload", []) == []


def test_upload_file_resumes_an_unfinished_upload(cos_emulator: CosEmulator, tmp_path: Path):
    data = os.urandom(5 * MIB + 100)
    client = cos_emulator.client(cos_emulator.issue(VIDEO))
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=VIDEO)["UploadId"]
    for number in (1, 3):
        chunk = data[(number - 1) * MIB : number * MIB]
        client.upload_part(Bucket=BUCKET, Key=VIDEO, Body=chunk, PartNumber=number, UploadId=upload_id)
    before = cos_emulator.store.bytes_received

    result = client.upload_file(
        Bucket=BUCKET, Key=VIDEO, LocalFilePath=write_file(tmp_path / "v", data), PartSize=1, MAXThread=5
    )

    assert cos_emulator.store.bytes_received - before == len(data) - 2 * MIB  # only the missing parts
    assert result["ETag"] == multipart_etag_of(data, MIB)
    assert read_body(client.get_object(Bucket=BUCKET, Key=VIDEO)) == data
    with pytest.raises(CosServiceError) as refused:
        client.list_parts(Bucket=BUCKET, Key=VIDEO, UploadId=upload_id)  # completed: gone
    assert refused.value.get_error_code() == "NoSuchUpload"


def test_upload_file_starts_over_when_a_listed_part_differs(cos_emulator: CosEmulator, tmp_path: Path):
    data = os.urandom(3 * MIB)
    client = cos_emulator.client(cos_emulator.issue(VIDEO))
    stale = client.create_multipart_upload(Bucket=BUCKET, Key=VIDEO)["UploadId"]
    client.upload_part(Bucket=BUCKET, Key=VIDEO, Body=os.urandom(MIB), PartNumber=1, UploadId=stale)
    before = cos_emulator.store.bytes_received

    client.upload_file(Bucket=BUCKET, Key=VIDEO, LocalFilePath=write_file(tmp_path / "v", data), PartSize=1)

    assert cos_emulator.store.bytes_received - before == len(data)
    assert read_body(client.get_object(Bucket=BUCKET, Key=VIDEO)) == data


def test_list_parts_and_multipart_uploads(cos_emulator: CosEmulator):
    key = "目录/a b.mp4"
    client = cos_emulator.client(cos_emulator.issue(key))
    first = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    second = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    chunks = [os.urandom(MIB), os.urandom(1000)]
    answers = [
        client.upload_part(Bucket=BUCKET, Key=key, Body=chunk, PartNumber=number, UploadId=second)
        for number, chunk in enumerate(chunks, start=1)
    ]

    uploads = client.list_multipart_uploads(Bucket=BUCKET, Prefix=key)
    parts = client.list_parts(Bucket=BUCKET, Key=key, UploadId=second)

    assert [(u["Key"], u["UploadId"]) for u in uploads["Upload"]] == [(key, first), (key, second)]
    assert uploads["IsTruncated"] == "false"
    assert parts["Key"] == key
    assert parts["IsTruncated"] == "false"
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts["Part"]] == [
        ("1", str(MIB), md5_etag(chunks[0])),
        ("2", "1000", md5_etag(chunks[1])),
    ]
    assert [answer[CRC64_HEADER] for answer in answers] == [str(sdk_crc64(chunk)) for chunk in chunks]


def test_list_parts_pages(cos_emulator: CosEmulator):
    client = cos_emulator.client(cos_emulator.issue(VIDEO))
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=VIDEO)["UploadId"]
    for number in (1, 2, 3):
        client.upload_part(Bucket=BUCKET, Key=VIDEO, Body=b"%d" % number, PartNumber=number, UploadId=upload_id)

    first = client.list_parts(Bucket=BUCKET, Key=VIDEO, UploadId=upload_id, MaxParts=2)
    rest = client.list_parts(
        Bucket=BUCKET, Key=VIDEO, UploadId=upload_id, MaxParts=2, PartNumberMarker=int(first["NextPartNumberMarker"])
    )

    assert ([p["PartNumber"] for p in first["Part"]], first["IsTruncated"]) == (["1", "2"], "true")
    assert ([p["PartNumber"] for p in rest["Part"]], rest["IsTruncated"]) == (["3"], "false")


# A page of none would say there is more and never move on: a client paging to the end would loop forever.
EMPTY_PAGES = [
    (
        "list-parts",
        lambda client, upload_id: client.list_parts(Bucket=BUCKET, Key=VIDEO, UploadId=upload_id, MaxParts=0),
    ),
    (
        "list-uploads",
        lambda client, upload_id: client.list_multipart_uploads(Bucket=BUCKET, Prefix=VIDEO, MaxUploads=0),
    ),
]


@pytest.mark.parametrize("call", [pytest.param(row[1], id=row[0]) for row in EMPTY_PAGES])
def test_a_page_of_none_is_refused(cos_emulator: CosEmulator, call: Callable[[Any, str], Any]):
    client = cos_emulator.client(cos_emulator.issue(VIDEO))
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=VIDEO)["UploadId"]
    client.upload_part(Bucket=BUCKET, Key=VIDEO, Body=b"1", PartNumber=1, UploadId=upload_id)

    with pytest.raises(CosServiceError) as refused:
        call(client, upload_id)
    assert (refused.value.get_status_code(), refused.value.get_error_code()) == (400, "InvalidArgument")


def test_abort_leaves_no_parts(cos_emulator: CosEmulator):
    client = cos_emulator.client(cos_emulator.issue(VIDEO))
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=VIDEO)["UploadId"]
    client.upload_part(Bucket=BUCKET, Key=VIDEO, Body=os.urandom(MIB), PartNumber=1, UploadId=upload_id)

    client.abort_multipart_upload(Bucket=BUCKET, Key=VIDEO, UploadId=upload_id)

    uploads_dir = cos_emulator.store.root / BUCKET / "uploads"
    assert list(uploads_dir.iterdir()) == []
    assert [p for p in cos_emulator.store.root.rglob("*") if p.is_file()] == []
    assert client.list_multipart_uploads(Bucket=BUCKET, Prefix=VIDEO).get("Upload", []) == []
    with pytest.raises(CosServiceError) as refused:
        client.list_parts(Bucket=BUCKET, Key=VIDEO, UploadId=upload_id)
    assert (refused.value.get_status_code(), refused.value.get_error_code()) == (404, "NoSuchUpload")


def _complete_with(client: Any, parts: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=VIDEO)["UploadId"]
    uploaded = []
    for number, size in ((1, MIB), (2, MIB // 2), (3, 10)):
        answer = client.upload_part(
            Bucket=BUCKET, Key=VIDEO, Body=os.urandom(size), PartNumber=number, UploadId=upload_id
        )
        uploaded.append({"PartNumber": number, "ETag": answer["ETag"]})
    client.complete_multipart_upload(
        Bucket=BUCKET, Key=VIDEO, UploadId=upload_id, MultipartUpload={"Part": parts(uploaded)}
    )


COMPLETE_REFUSALS = [
    ("wrong-etag", lambda parts: [{"PartNumber": 1, "ETag": md5_etag(b"other")}], "InvalidPart"),
    ("missing-part", lambda parts: [parts[0], {"PartNumber": 7, "ETag": parts[0]["ETag"]}], "InvalidPart"),
    ("order", lambda parts: [parts[1], parts[0]], "InvalidPartOrder"),
    ("small-part", lambda parts: [parts[0], parts[1], parts[2]], "EntityTooSmall"),
]


@pytest.mark.parametrize(("parts", "code"), [pytest.param(*row[1:], id=row[0]) for row in COMPLETE_REFUSALS])
def test_complete_refusals(cos_emulator: CosEmulator, parts: Callable[..., Any], code: str):
    client = cos_emulator.client(cos_emulator.issue(VIDEO))
    with pytest.raises(CosServiceError) as refused:
        _complete_with(client, parts)
    assert (refused.value.get_status_code(), refused.value.get_error_code()) == (400, code)
    assert cos_emulator.store.stat(BUCKET, VIDEO) is None


def _expire(emulator: CosEmulator, credential: Any) -> dict[str, Any]:
    emulator.clock.move_past(credential.expired_time)
    return {}


def _signer_clock_ahead(emulator: CosEmulator, credential: Any) -> dict[str, Any]:
    # The SDK signs [now - 60, now + 10000]; an emulator 1000 s behind sees a signature from the future.
    emulator.clock.advance(-1000)
    return {}


def _signature_expired(emulator: CosEmulator, credential: Any) -> dict[str, Any]:
    emulator.clock.advance(20000)  # past the signature's end (and the credential's, checked later)
    return {}


REFUSALS: list[tuple[str, Callable[[CosEmulator, Any], dict[str, Any]], str, int]] = [
    ("wrong-secret-key", lambda emu, cred: {"secret_key": "not-the-secret-key"}, "SignatureDoesNotMatch", 403),
    ("wrong-token", lambda emu, cred: {"token": emu.issue(VIDEO).token}, "AccessDenied", 403),
    ("expired-credential", _expire, "AccessDenied", 403),
    ("signature-expired", _signature_expired, "AccessDenied", 403),
    ("signer-clock-ahead", _signer_clock_ahead, "RequestTimeTooSkewed", 403),
]


@pytest.mark.parametrize(("setup", "code", "status"), [pytest.param(*row[1:], id=row[0]) for row in REFUSALS])
def test_credential_refusals(
    cos_emulator: CosEmulator, setup: Callable[[CosEmulator, Any], dict[str, Any]], code: str, status: int
):
    credential = cos_emulator.issue(VIDEO, ttl=600)
    client = cos_emulator.client(credential, **setup(cos_emulator, credential))

    with pytest.raises(CosServiceError) as refused:
        client.put_object(Bucket=BUCKET, Key=VIDEO, Body=os.urandom(3 * MIB))

    assert (refused.value.get_status_code(), refused.value.get_error_code()) == (status, code)
    assert refused.value.get_request_id()
    assert cos_emulator.store.stat(BUCKET, VIDEO) is None
    assert cos_emulator.store.bytes_received == 0


def test_unknown_secret_id_is_refused(cos_emulator: CosEmulator):
    credential = cos_emulator.issue(VIDEO)
    config = cos_emulator.config(credential)
    config._secret_id = "AKIDnotissuedbytheemulator"

    with pytest.raises(CosServiceError) as refused:
        CosS3Client(config, retry=0).put_object(Bucket=BUCKET, Key=VIDEO, Body=b"x")
    assert (refused.value.get_status_code(), refused.value.get_error_code()) == (403, "InvalidAccessKeyId")


def test_a_bucket_is_found_only_in_its_region(cos_emulator: CosEmulator):
    credential = cos_emulator.credentials.issue(BUCKET, [VIDEO], 3600, region=REGION)
    elsewhere = CosConfig(
        IP="127.0.0.1",
        Port=cos_emulator.port,
        Region="ap-shanghai",  # the session's bucket is in REGION
        SecretId=credential.secret_id,
        SecretKey=credential.secret_key,
        Token=credential.token,
        Scheme="http",
    )
    with pytest.raises(CosServiceError) as refused:
        CosS3Client(elsewhere, retry=0).put_object(Bucket=BUCKET, Key=VIDEO, Body=b"x")
    assert (refused.value.get_status_code(), refused.value.get_error_code()) == (404, "NoSuchBucket")
    assert cos_emulator.client(credential).put_object(Bucket=BUCKET, Key=VIDEO, Body=b"x")["ETag"]


SCOPE_REFUSALS: list[tuple[str, str, Callable[[Any], Any]]] = [
    ("key-outside-allowed", BUCKET, lambda c: c.put_object(Bucket=BUCKET, Key="other.mp4", Body=b"x")),
    ("other-bucket", BUCKET, lambda c: c.put_object(Bucket=OTHER_BUCKET, Key=VIDEO, Body=b"x")),
    ("credential-of-other-bucket", OTHER_BUCKET, lambda c: c.put_object(Bucket=BUCKET, Key=VIDEO, Body=b"x")),
    ("read-outside-allowed", BUCKET, lambda c: c.get_object(Bucket=BUCKET, Key="other.mp4")),
    ("list-other-prefix", BUCKET, lambda c: c.list_multipart_uploads(Bucket=BUCKET, Prefix="vod/")),
    ("list-without-prefix", BUCKET, lambda c: c.list_multipart_uploads(Bucket=BUCKET)),
    ("initiate-outside-allowed", BUCKET, lambda c: c.create_multipart_upload(Bucket=BUCKET, Key="other.mp4")),
]


@pytest.mark.parametrize(("bucket", "call"), [pytest.param(*row[1:], id=row[0]) for row in SCOPE_REFUSALS])
def test_scope_refusals(cos_emulator: CosEmulator, bucket: str, call: Callable[[Any], Any]):
    client = cos_emulator.client(cos_emulator.issue(VIDEO, bucket=bucket))
    with pytest.raises(CosServiceError) as refused:
        call(client)
    assert (refused.value.get_status_code(), refused.value.get_error_code()) == (403, "AccessDenied")


def test_missing_objects(cos_emulator: CosEmulator):
    client = cos_emulator.client(cos_emulator.issue(VIDEO))
    with pytest.raises(CosServiceError) as got:
        client.get_object(Bucket=BUCKET, Key=VIDEO)
    with pytest.raises(CosServiceError) as headed:
        client.head_object(Bucket=BUCKET, Key=VIDEO)
    assert (got.value.get_status_code(), got.value.get_error_code()) == (404, "NoSuchKey")
    assert headed.value.get_status_code() == 404  # HEAD has no body; the SDK names it NoSuchResource


@pytest.mark.parametrize(
    ("header", "status", "expected"),
    [
        pytest.param("bytes=2-5", "206", slice(2, 6), id="middle"),
        pytest.param("bytes=-3", "206", slice(7, 10), id="suffix"),
        pytest.param("bytes=8-", "206", slice(8, 10), id="open-ended"),
        pytest.param("bytes=5-100", "206", slice(5, 10), id="past-the-end"),
    ],
)
def test_ranged_get(cos_emulator: CosEmulator, header: str, status: str, expected: slice):
    body = b"0123456789"
    client = cos_emulator.client(cos_emulator.issue(VIDEO))
    client.put_object(Bucket=BUCKET, Key=VIDEO, Body=body)

    got = client.get_object(Bucket=BUCKET, Key=VIDEO, Range=header)

    assert read_body(got) == body[expected]
    assert got["Content-Range"] == f"bytes {expected.start}-{expected.stop - 1}/10"


def test_unsatisfiable_range(cos_emulator: CosEmulator):
    client = cos_emulator.client(cos_emulator.issue(VIDEO))
    client.put_object(Bucket=BUCKET, Key=VIDEO, Body=b"0123456789")
    with pytest.raises(CosServiceError) as refused:
        client.get_object(Bucket=BUCKET, Key=VIDEO, Range="bytes=20-30")
    assert (refused.value.get_status_code(), refused.value.get_error_code()) == (416, "InvalidRange")


def test_objects_over_the_maximum_size_are_refused(start_cos_emulator: Callable[..., CosEmulator], tmp_path: Path):
    # As COS: one PUT (or one part) of at most 5 GiB, an object of parts up to 48.82 TB (here: 2 and 3 MiB)
    emulator = start_cos_emulator(max_object_size=2 * MIB, max_assembled_size=3 * MIB)
    client = emulator.client(emulator.issue(VIDEO))

    with pytest.raises(CosServiceError) as single:
        client.put_object(Bucket=BUCKET, Key=VIDEO, Body=os.urandom(2 * MIB + 1))
    with pytest.raises(CosServiceError) as multipart:
        client.upload_file(Bucket=BUCKET, Key=VIDEO, LocalFilePath=write_file(tmp_path / "v", os.urandom(4 * MIB)))
    assert (single.value.get_status_code(), single.value.get_error_code()) == (400, "EntityTooLarge")
    assert (multipart.value.get_status_code(), multipart.value.get_error_code()) == (400, "EntityTooLarge")
    assert emulator.store.stat(BUCKET, VIDEO) is None
    # larger than one PUT may be, in parts: stored (it was refused, as if COS capped objects at 5 GiB)
    client.upload_file(Bucket=BUCKET, Key=VIDEO, LocalFilePath=write_file(tmp_path / "w", os.urandom(3 * MIB)))
    stored = emulator.store.stat(BUCKET, VIDEO)
    assert stored is not None and stored.size == 3 * MIB


def test_the_emulator_never_logs_secret_keys_or_tokens(
    cos_emulator: CosEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG, logger="vodemu")
    credential = cos_emulator.issue(VIDEO)
    client = cos_emulator.client(credential)
    client.upload_file(Bucket=BUCKET, Key=VIDEO, LocalFilePath=write_file(tmp_path / "v", os.urandom(2 * MIB + 1)))
    with pytest.raises(CosServiceError):
        cos_emulator.client(credential, secret_key="wrong").put_object(Bucket=BUCKET, Key=VIDEO, Body=b"x")
    with pytest.raises(CosServiceError):
        client.put_object(Bucket=BUCKET, Key="not-allowed", Body=b"x")

    # The SDK logs its own secrets at DEBUG; only the emulator's records are checked here.
    emulator_text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("vodemu"))
    assert "COS PUT" in emulator_text
    assert credential.secret_key not in emulator_text
    assert credential.token not in emulator_text
