"""COS as a browser meets it: preflights answered before any authentication, and CORS headers (the exposed
ETag above all) on every answer, refusals included."""

from __future__ import annotations

import pytest
import requests

from .cos_helpers import CosEmulator, error_of, send, signed_request

ORIGIN = "https://app.example.com"


@pytest.mark.parametrize(
    ("path", "method", "asked"),
    [
        ("/?uploads&prefix=video.mp4", "GET", "authorization,x-cos-security-token"),  # sliceUploadFile's first call
        ("/video.mp4?uploads", "POST", "authorization,content-type"),
        ("/video.mp4?partNumber=1&uploadId=u", "PUT", "authorization,content-md5"),
    ],
)
def test_a_preflight_is_answered_before_authentication(
    cos_emulator: CosEmulator, path: str, method: str, asked: str
) -> None:
    with requests.Session() as session:
        response = session.options(
            cos_emulator.url(path),
            timeout=10,
            headers={
                "Host": cos_emulator.host,
                "Origin": ORIGIN,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": asked,
            },
        )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert method in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == asked
    assert "ETag" in response.headers["Access-Control-Expose-Headers"]


def test_a_refusal_still_carries_the_cors_headers(cos_emulator: CosEmulator) -> None:
    with requests.Session() as session:
        response = session.get(
            cos_emulator.url("/?uploads&prefix=x"), timeout=10, headers={"Host": cos_emulator.host, "Origin": ORIGIN}
        )
    assert response.status_code == 403 and error_of(response)["Code"] == "AccessDenied"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert {"ETag", "x-cos-request-id"} <= {
        h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    }


def test_an_upload_exposes_its_etag(cos_emulator: CosEmulator) -> None:
    credential = cos_emulator.issue("video.mp4")
    prepared = signed_request(cos_emulator, credential, "PUT", "video.mp4", data=b"bytes", headers={"Origin": ORIGIN})
    response = send(prepared)
    assert response.status_code == 200 and response.headers["ETag"]
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "ETag" in response.headers["Access-Control-Expose-Headers"]
