"""The COS object API at the HTTP level: requests the SDK would not send, error shapes, crashes."""

from __future__ import annotations

import base64
import hashlib
import http.client
import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
import requests
from qcloud_cos.cos_auth import CosS3Auth

from vodemu.objects import ObjectStore

from .cos_helpers import BUCKET, MIB, CosEmulator, error_of, md5_etag, object_url, send, signed_request

KEY = "vod/video.mp4"


def test_a_header_changed_after_signing_is_refused(cos_emulator: CosEmulator):
    credential = cos_emulator.issue(KEY)
    prepared = signed_request(cos_emulator, credential, "PUT", KEY, headers={"Content-Type": "video/mp4"}, data=b"x")
    prepared.headers["Content-Type"] = "text/html"

    response = send(prepared)

    assert response.status_code == 403
    error = error_of(response)
    assert error["Code"] == "SignatureDoesNotMatch"
    assert error["Resource"] == f"{cos_emulator.host}/{KEY}"
    assert cos_emulator.store.stat(BUCKET, KEY) is None


def test_the_unaltered_request_is_accepted(cos_emulator: CosEmulator):
    credential = cos_emulator.issue(KEY)
    prepared = signed_request(cos_emulator, credential, "PUT", KEY, headers={"Content-Type": "video/mp4"}, data=b"x")
    response = send(prepared)
    assert response.status_code == 200
    assert response.headers["ETag"] == md5_etag(b"x")
    assert response.headers["x-cos-request-id"]


def test_host_signed_without_port_is_accepted_with_port_on_the_wire(cos_emulator: CosEmulator):
    # What the SDK does when it derives Host from the URL: it signs the hostname only.
    credential = cos_emulator.issue(KEY)
    prepared = requests.Request(
        "PUT",
        f"http://{cos_emulator.host}:{cos_emulator.port}/{KEY}",
        headers={"x-cos-security-token": credential.token},
        data=b"abc",
    ).prepare()
    CosS3Auth(cos_emulator.config(credential), KEY)(prepared)
    assert "host" in prepared.headers["Authorization"]

    connection = http.client.HTTPConnection("127.0.0.1", cos_emulator.port, timeout=30)
    try:
        headers = {**prepared.headers, "Host": f"{cos_emulator.host}:{cos_emulator.port}"}
        connection.request("PUT", f"/{KEY}", body=b"abc", headers=headers)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()

    assert response.status == 200
    assert cos_emulator.store.stat(BUCKET, KEY) is not None


def _chunks() -> Iterator[bytes]:
    yield b"first chunk, "
    yield os.urandom(MIB)
    yield b"last"


def test_chunked_bodies_are_stored_whole(cos_emulator: CosEmulator):
    credential = cos_emulator.issue(KEY)
    chunks = list(_chunks())
    prepared = signed_request(cos_emulator, credential, "PUT", KEY, data=iter(chunks))
    assert prepared.headers["Transfer-Encoding"] == "chunked"

    response = send(prepared)

    assert response.status_code == 200
    assert response.headers["ETag"] == md5_etag(b"".join(chunks))
    assert cos_emulator.store.bytes_received == sum(len(c) for c in chunks)


def test_chunked_bodies_over_the_limit_are_refused(start_cos_emulator):
    emulator = start_cos_emulator(max_object_size=MIB)
    credential = emulator.issue(KEY)
    response = send(signed_request(emulator, credential, "PUT", KEY, data=iter(list(_chunks()))))
    assert response.status_code == 400
    assert error_of(response)["Code"] == "EntityTooLarge"
    assert emulator.store.stat(BUCKET, KEY) is None


def test_a_refused_large_body_still_gets_its_answer(cos_emulator: CosEmulator):
    # The body is read and dropped, so the client is not reset while it is still sending.
    credential = cos_emulator.issue(KEY)
    response = send(signed_request(cos_emulator, credential, "PUT", "not/allowed.mp4", data=os.urandom(8 * MIB)))
    assert response.status_code == 403
    assert error_of(response)["Code"] == "AccessDenied"
    assert cos_emulator.store.bytes_received == 0


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("q-sign-algorithm=sha1&q-ak=x", id="truncated"),
    ],
)
def test_unsigned_or_malformed_requests_are_refused(cos_emulator: CosEmulator, authorization: str | None):
    headers = {"Host": cos_emulator.host}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = requests.get(object_url(cos_emulator, KEY), headers=headers, timeout=30)
    assert response.status_code == 403
    assert error_of(response)["Code"] == "AccessDenied"


@pytest.mark.parametrize("host", ["127.0.0.1", "not-a-bucket.cos.ap-guangzhou.myqcloud.com", ""])
def test_a_host_without_a_bucket_is_no_such_bucket(cos_emulator: CosEmulator, host: str):
    credential = cos_emulator.issue(KEY)
    prepared = signed_request(cos_emulator, credential, "GET", KEY)
    prepared.headers["Host"] = host
    response = send(prepared)
    assert response.status_code == 404
    assert error_of(response)["Code"] == "NoSuchBucket"


@pytest.mark.parametrize(
    ("method", "key", "params"),
    [
        pytest.param("DELETE", KEY, None, id="delete-object"),
        pytest.param("POST", KEY, None, id="post-object"),
        pytest.param("GET", "", None, id="list-objects"),
        pytest.param("PUT", "", None, id="put-bucket"),
        pytest.param("HEAD", KEY, {"uploadId": "x"}, id="head-upload"),
    ],
)
def test_unsupported_operations_are_method_not_allowed(
    cos_emulator: CosEmulator, method: str, key: str, params: dict[str, str] | None
):
    credential = cos_emulator.issue(KEY)
    response = send(signed_request(cos_emulator, credential, method, key, params=params))
    assert response.status_code == 405
    if method != "HEAD":
        assert error_of(response)["Code"] == "MethodNotAllowed"


def _complete(emulator: CosEmulator, body: bytes) -> requests.Response:
    credential = emulator.issue(KEY)
    client = emulator.client(credential)
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=KEY)["UploadId"]
    client.upload_part(Bucket=BUCKET, Key=KEY, Body=b"part", PartNumber=1, UploadId=upload_id)
    return send(signed_request(emulator, credential, "POST", KEY, params={"uploadId": upload_id}, data=body))


ETAG = md5_etag(b"part")
PART = f"<Part><PartNumber>1</PartNumber><ETag>{ETAG}</ETag></Part>"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not xml at all", id="not-xml"),
        pytest.param(b"", id="empty"),
        pytest.param(b"<CompleteMultipartUpload></CompleteMultipartUpload>", id="no-parts"),
        pytest.param(f"<Other>{PART}</Other>".encode(), id="wrong-root"),
        pytest.param(
            b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>", id="no-etag"
        ),
        pytest.param(
            f"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>{ETAG}</ETag></Part>"
            "</CompleteMultipartUpload>".encode(),
            id="bad-number",
        ),
        pytest.param(
            f'<!DOCTYPE CompleteMultipartUpload [<!ENTITY e "{ETAG}">]><CompleteMultipartUpload><Part>'
            "<PartNumber>1</PartNumber><ETag>&e;</ETag></Part></CompleteMultipartUpload>".encode(),
            id="entity",
        ),
        pytest.param(
            f'<?xml version="1.0" encoding="utf-16"?><CompleteMultipartUpload>{PART}</CompleteMultipartUpload>'.encode(
                "utf-16"
            ),
            id="utf-16",
        ),
        pytest.param(
            b"<CompleteMultipartUpload>" + PART.encode() * 50_000 + b"</CompleteMultipartUpload>", id="too-large"
        ),
        pytest.param(
            f"<CompleteMultipartUpload><Part><PartNumber>{'9' * 5000}</PartNumber><ETag>{ETAG}</ETag></Part>"
            "</CompleteMultipartUpload>".encode(),
            id="5000-digit-number",
        ),
    ],
)
def test_malformed_complete_bodies(cos_emulator: CosEmulator, body: bytes):
    response = _complete(cos_emulator, body)
    assert response.status_code == 400
    assert error_of(response)["Code"] == "MalformedXML"
    assert cos_emulator.store.stat(BUCKET, KEY) is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(f"<CompleteMultipartUpload>{PART}</CompleteMultipartUpload>".encode(), id="plain"),
        pytest.param(
            f'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{PART}'
            "</CompleteMultipartUpload>".encode(),
            id="s3-namespace",
        ),
    ],
)
def test_complete_bodies_the_sdk_or_s3_tools_send(cos_emulator: CosEmulator, body: bytes):
    response = _complete(cos_emulator, body)
    assert response.status_code == 200, response.text
    root = ET.fromstring(response.content)
    assert root.tag == "CompleteMultipartUploadResult"  # answered without a namespace
    assert root.findtext("Key") == KEY
    assert root.findtext("ETag") == f'"{hashlib.md5(hashlib.md5(b"part").digest()).hexdigest()}-1"'


def test_content_md5_is_checked(cos_emulator: CosEmulator):
    credential = cos_emulator.issue(KEY)
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    bad = send(signed_request(cos_emulator, credential, "PUT", KEY, headers={"Content-MD5": wrong}, data=b"x"))
    invalid = send(signed_request(cos_emulator, credential, "PUT", KEY, headers={"Content-MD5": "nope"}, data=b"x"))
    assert (bad.status_code, error_of(bad)["Code"]) == (400, "BadDigest")
    assert (invalid.status_code, error_of(invalid)["Code"]) == (400, "InvalidDigest")
    assert cos_emulator.store.stat(BUCKET, KEY) is None


@pytest.mark.parametrize(
    ("params", "code"),
    [
        pytest.param({"partNumber": "0"}, "InvalidArgument", id="part-zero"),
        pytest.param({"partNumber": "abc"}, "InvalidArgument", id="part-not-a-number"),
        pytest.param({"partNumber": "\u00b2"}, "InvalidArgument", id="part-superscript"),  # int() refuses: was a 500
        pytest.param({"partNumber": "9" * 5000}, "InvalidArgument", id="part-5000-digits"),
        pytest.param({"partNumber": "1", "uploadId": "f" * 40}, "NoSuchUpload", id="unknown-upload"),
        pytest.param({"partNumber": "1", "uploadId": "../../x"}, "NoSuchUpload", id="path-as-upload-id"),
    ],
)
def test_bad_upload_part_parameters(cos_emulator: CosEmulator, params: dict[str, str], code: str):
    credential = cos_emulator.issue(KEY)
    upload_id = cos_emulator.client(credential).create_multipart_upload(Bucket=BUCKET, Key=KEY)["UploadId"]
    response = send(
        signed_request(cos_emulator, credential, "PUT", KEY, params={"uploadId": upload_id, **params}, data=b"x")
    )
    assert error_of(response)["Code"] == code


def test_a_crash_is_an_internal_error_that_leaks_nothing(
    cos_emulator: CosEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(ObjectStore, "put_object", crash)
    credential = cos_emulator.issue(KEY)

    with caplog.at_level(logging.ERROR, logger="vodemu.cos"):
        response = send(signed_request(cos_emulator, credential, "PUT", KEY, data=b"x"))

    assert response.status_code == 500
    error = error_of(response)
    assert error["Code"] == "InternalError"
    assert b"secret internal detail" not in response.content
    assert "secret internal detail" in caplog.text
    assert error["RequestId"] in caplog.text
