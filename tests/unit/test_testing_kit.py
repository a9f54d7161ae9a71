"""The testing kit's builders make what SCF and VOD send: the product's own parsers take them as such."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from shared.events import (
    FileDeleted,
    NewFileUpload,
    OtherEvent,
    ProcedureStateChanged,
    parse_event,
    verify_callback_sign,
)
from shared.http.triggers import request_from_event
from vodtesting import FILE_ID, KINDS, http_event, signed, vod_event


@pytest.mark.parametrize(
    ("kind", "fields", "where", "expected"),
    [
        ("NewFileUpload", {"FileId": "f-1"}, ("FileUploadEvent", "FileId"), "f-1"),
        ("NewFileUpload", {"FileId": "f-1"}, ("FileUploadEvent", "MediaBasicInfo", "Vid"), "f-1"),
        (
            "NewFileUpload",
            {"SourceContext": "u1:r:ann"},
            ("FileUploadEvent", "MediaBasicInfo", "SourceInfo", "SourceContext"),
            "u1:r:ann",
        ),
        (
            "NewFileUpload",
            {"MediaUrl": "http://x/v.mp4"},
            ("FileUploadEvent", "MediaBasicInfo", "MediaUrl"),
            "http://x/v.mp4",
        ),
        ("NewFileUpload", {"ProcedureTaskId": "t-9"}, ("FileUploadEvent", "ProcedureTaskId"), "t-9"),
        ("NewFileUpload", {"Size": 5}, ("FileUploadEvent", "MetaData", "Size"), 5),
        (
            "ProcedureStateChanged",
            {"TaskId": "t-9", "Status": "PROCESSING"},
            ("ProcedureStateChangeEvent", "Status"),
            "PROCESSING",
        ),
        ("ProcedureStateChanged", {"ErrCode": 70000}, ("ProcedureStateChangeEvent", "ErrCode"), 70000),
        ("FileDeleted", {"FileId": "f-2"}, ("FileDeleteEvent", "FileIdSet"), ["f-2"]),
        (
            "FileDeleted",
            {"FileIdSet": ["a", "b"]},
            ("FileDeleteEvent", "FileDeleteResultInfo"),
            [{"FileId": "a", "DeleteParts": []}, {"FileId": "b", "DeleteParts": []}],
        ),
    ],
)
def test_each_field_lands_where_vod_puts_it(
    kind: str, fields: dict[str, Any], where: tuple[str, ...], expected: Any
) -> None:
    event = vod_event(kind, **fields)
    value: Any = event
    for key in where:
        value = value[key]
    assert value == expected
    assert parse_event(event).event_type == kind  # and the callback's parser takes it as VOD's


@pytest.mark.parametrize(
    ("kind", "parsed"),
    [("NewFileUpload", NewFileUpload), ("ProcedureStateChanged", ProcedureStateChanged), ("FileDeleted", FileDeleted)],
)
def test_defaults_are_realistic_events(kind: str, parsed: type) -> None:
    assert kind in KINDS
    event = parse_event(vod_event(kind))
    assert isinstance(event, parsed) and event.file_ids == (FILE_ID,)


def test_any_other_type_comes_from_its_fields() -> None:
    event = vod_event("EditMediaComplete", EditMediaCompleteEvent={"TaskId": "e-1", "FileId": "f-3"})
    assert event == {"EventType": "EditMediaComplete", "EditMediaCompleteEvent": {"TaskId": "e-1", "FileId": "f-3"}}
    assert isinstance(parse_event(event), OtherEvent)


def test_an_unknown_field_is_an_error_not_a_silent_default() -> None:
    with pytest.raises(TypeError, match="NewFileUpload has no field 'Fileid'"):
        vod_event("NewFileUpload", Fileid="typo")


def test_signed_is_what_the_callback_verifies() -> None:
    event = signed(vod_event("NewFileUpload"), "Key123", ttl=300, now=1_000)
    assert event["T"] == 1_300
    verify_callback_sign(event, "Key123", now=1_000, max_ahead=900)  # raises if not


@pytest.mark.parametrize("shape", ["apigw", "function_url"])
@pytest.mark.parametrize(
    ("body", "headers", "expected_body", "content_type"),
    [
        ({"a": 1}, None, b'{"a": 1}', "application/json"),
        ("plain", {"Content-Type": "text/plain"}, b"plain", "text/plain"),
        (b"\xff\x00", None, b"\xff\x00", None),  # not UTF-8: the trigger sends it base64
        (None, None, b"", None),
    ],
)
def test_http_events_are_what_the_functions_parse(
    shape: str, body: Any, headers: dict[str, str] | None, expected_body: bytes, content_type: str | None
) -> None:
    event = http_event("PUT", "/x", headers=headers, body=body, shape=shape, query={"q": "1"}, request_id="rid")
    request = request_from_event(event, "ctx")
    assert (request.method, request.path, request.body, dict(request.query)) == ("PUT", "/x", expected_body, {"q": "1"})
    assert request.headers.get("content-type") == content_type
    assert request.request_id == ("rid" if shape == "apigw" else "ctx")  # function URLs carry no request id
    assert ("body" in event) is (body is not None)


def test_a_body_marked_base64_is_left_as_it_is() -> None:
    event = http_event(body="!!!", base64=True)
    assert event["isBase64Encoded"] is True and event["body"] == "!!!"
    assert base64.b64encode(b"\xff").decode() in str(http_event(body=b"\xff"))
