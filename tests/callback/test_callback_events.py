"""shared.events: the Sign/T check, parsing at the edge, the dedupe key."""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import events
from shared.errors import CallbackSignRejected, MalformedEvent, StoreUnavailable, as_http_error
from shared.events import (
    MAX_DEPTH,
    MAX_FILES,
    FileDeleted,
    NewFileUpload,
    OtherEvent,
    ProcedureStateChanged,
    expected_sign,
    parse_event,
    stored_form,
    verify_callback_sign,
)
from tests.conftest import CALLBACK_SIGN_KEY
from tests.scf import load_event, nested
from vodtesting import vod_event

NOW = 1_800_000_000
AHEAD = 900
T = NOW + 600


def _md5_sign(t: object) -> str:
    return hashlib.md5(f"{CALLBACK_SIGN_KEY}{t}".encode()).hexdigest()


GOOD_SIGN = _md5_sign(T)


def test_sign_is_lowercase_hex_md5_of_key_and_t() -> None:
    # GOOD_SIGN is computed above with hashlib directly, independent of the implementation.
    assert expected_sign(CALLBACK_SIGN_KEY, T) == GOOD_SIGN


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"Sign": GOOD_SIGN, "T": T}, None),
        ({"Sign": GOOD_SIGN.upper(), "T": T}, "invalid_signature"),  # VOD sends lowercase; we compare exactly
        ({"Sign": expected_sign("WrongKey1", T), "T": T}, "invalid_signature"),  # wrong key
        ({"Sign": GOOD_SIGN[:-1] + ("0" if GOOD_SIGN[-1] != "0" else "1"), "T": T}, "invalid_signature"),  # tampered
        ({"Sign": GOOD_SIGN, "T": T + 1}, "invalid_signature"),  # T changed after signing
        ({"Sign": GOOD_SIGN[:-1], "T": T}, "invalid_signature"),  # a part of the right one is not it
        ({"Sign": "", "T": T}, "invalid_signature"),
        ({"Sign": GOOD_SIGN + "0", "T": T}, "invalid_signature"),
        ({"Sign": expected_sign(CALLBACK_SIGN_KEY, NOW - 1), "T": NOW - 1}, "signature_expired"),
        ({"Sign": expected_sign(CALLBACK_SIGN_KEY, NOW), "T": NOW}, None),  # expires at the end of its second
        ({"Sign": expected_sign(CALLBACK_SIGN_KEY, NOW + AHEAD), "T": NOW + AHEAD}, None),
        ({"Sign": expected_sign(CALLBACK_SIGN_KEY, NOW + AHEAD + 1), "T": NOW + AHEAD + 1}, "signature_too_far_ahead"),
        ({"T": T}, "missing_signature"),
        ({"Sign": GOOD_SIGN}, "missing_signature"),
        ({}, "missing_signature"),
        # T of another type, each signed as its text would be: refused for its type, not for the Sign
        ({"Sign": GOOD_SIGN, "T": str(T)}, "invalid_signature"),
        ({"Sign": _md5_sign(True), "T": True}, "invalid_signature"),
        ({"Sign": _md5_sign(float(T)), "T": float(T)}, "invalid_signature"),
        ({"Sign": 12345, "T": T}, "invalid_signature"),
        ({"Sign": "\udcff", "T": T}, "invalid_signature"),
    ],
)
@pytest.mark.parametrize("previous", [(), ("PreviousKey1",)], ids=["", "during a rotation"])
def test_verify_callback_sign(fields: dict[str, Any], code: str | None, previous: tuple[str, ...]) -> None:
    payload = {**load_event("vod_new_file_upload"), **fields}
    if code is None:
        assert verify_callback_sign(payload, (CALLBACK_SIGN_KEY, *previous), NOW, AHEAD) == 0  # the current key's
        return
    with pytest.raises(CallbackSignRejected) as caught:
        verify_callback_sign(payload, (CALLBACK_SIGN_KEY, *previous), NOW, AHEAD)
    assert caught.value.reason == code
    assert CALLBACK_SIGN_KEY not in caught.value.message
    answer = as_http_error(caught.value)  # what VOD gets back over HTTP
    assert answer is not None and (answer.status, answer.code) == (401, code)


@pytest.mark.parametrize(("keys", "accepted"), [(("NewKey1", "OldKey1"), True), (("NewKey1",), False)])
def test_a_delivery_signed_with_the_previous_sign_key_passes_only_while_it_is_set(
    keys: tuple[str, ...], accepted: bool
) -> None:
    payload = {**load_event("vod_new_file_upload"), "Sign": expected_sign("OldKey1", T), "T": T}
    with contextlib.nullcontext() if accepted else pytest.raises(CallbackSignRejected):
        assert verify_callback_sign(payload, keys, NOW, AHEAD) == 1  # the previous key's


@pytest.mark.parametrize(
    ("fixture", "kind", "file_ids"),
    [
        ("vod_new_file_upload", NewFileUpload, ("5285890784273533167",)),
        ("vod_procedure_processing", ProcedureStateChanged, ("5285890784273533167",)),
        ("vod_procedure_finish", ProcedureStateChanged, ("5285890784273533167",)),
        ("vod_file_deleted", FileDeleted, ("5285890784273533167",)),
        ("vod_transcode_complete", OtherEvent, ("5285890784273533167",)),
        ("vod_pull_new_file_upload", NewFileUpload, ("5285890784273533999",)),
    ],
)
def test_parse_each_fixture(fixture: str, kind: type, file_ids: tuple[str, ...]) -> None:
    event = parse_event(load_event(fixture))
    assert isinstance(event, kind)
    assert event.file_ids == file_ids
    assert event.event_type == load_event(fixture)["EventType"]


def test_parse_reads_the_fields_we_use() -> None:
    event = parse_event(load_event("vod_procedure_finish"))
    assert isinstance(event, ProcedureStateChanged)
    assert (event.status, event.err_code, event.session_context) == ("FINISH", 0, "order-42")
    assert [(r.type, r.status) for r in event.results] == [
        ("Transcode", "SUCCESS"),
        ("SnapshotByTimeOffset", "SUCCESS"),
        ("CoverBySnapshot", "SUCCESS"),
    ]


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        # MediaProcessTaskResult in VOD's API (and tencentcloud-sdk-python-vod's models): Type -> its field.
        ("Transcode", "TranscodeTask"),
        ("AnimatedGraphics", "AnimatedGraphicTask"),
        ("SnapshotByTimeOffset", "SnapshotByTimeOffsetTask"),
        ("SampleSnapshot", "SampleSnapshotTask"),
        ("ImageSprites", "ImageSpriteTask"),
        ("CoverBySnapshot", "CoverBySnapshotTask"),
        ("AdaptiveDynamicStreaming", "AdaptiveDynamicStreamingTask"),
    ],
)
def test_each_kind_of_result_is_read_from_its_own_field(kind: str, field: str) -> None:
    task = {"Status": "FAIL", "ErrCode": 30010, "Message": "failed", "Output": {"Url": "http://x/y.gif"}}
    results = [{"Type": kind, field: task}]
    event = parse_event(_with("vod_procedure_finish:ProcedureStateChangeEvent.MediaProcessResultSet", results))
    assert isinstance(event, ProcedureStateChanged)
    [result] = event.results
    assert (result.type, result.status, result.err_code, result.message) == (kind, "FAIL", 30010, "failed")
    assert result.output == {"Url": "http://x/y.gif"}


def _with(path: str, value: Any) -> dict[str, Any]:
    """The fixture named before ':' with the dotted path after it set to value (removed for `...`)."""
    name, _, dotted = path.partition(":")
    payload = load_event(name)
    *parents, last = dotted.split(".")
    target = payload
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    key: Any = int(last) if isinstance(target, list) else last
    if value is ...:
        del target[key]
    else:
        target[key] = value
    return payload


def _ids(first: int, count: int) -> list[str]:
    return [str(5285890784273533167 + i) for i in range(first, first + count)]


def _results(first: int, count: int) -> list[dict[str, Any]]:
    return [{"FileId": file_id, "DeleteParts": []} for file_id in _ids(first, count)]


# (payload, the field the 400 must name)
MALFORMED: list[tuple[Any, str]] = [
    ([], "body"),
    ("NewFileUpload", "body"),
    (None, "body"),
    ({"FileUploadEvent": {}}, "EventType"),
    ({"EventType": 7}, "EventType"),
    ({"EventType": ""}, "EventType"),
    ({"EventType": ["NewFileUpload"]}, "EventType"),
    ({"EventType": "NewFileUpload", "EventHandle": 3}, "EventHandle"),
    (_with("vod_new_file_upload:FileUploadEvent", "x"), "FileUploadEvent"),
    (_with("vod_new_file_upload:FileUploadEvent", ["x"]), "FileUploadEvent"),
    (_with("vod_new_file_upload:FileUploadEvent.FileId", ...), "FileUploadEvent.FileId"),
    (_with("vod_new_file_upload:FileUploadEvent.FileId", 5285890784273533167), "FileUploadEvent.FileId"),
    (_with("vod_new_file_upload:FileUploadEvent.FileId", "52\x0085"), "FileUploadEvent.FileId"),
    (_with("vod_new_file_upload:FileUploadEvent.MediaBasicInfo", "x"), "FileUploadEvent.MediaBasicInfo"),
    (_with("vod_new_file_upload:FileUploadEvent.MediaBasicInfo.ClassId", "0"), "MediaBasicInfo.ClassId"),
    (_with("vod_new_file_upload:FileUploadEvent.MediaBasicInfo.ClassId", False), "MediaBasicInfo.ClassId"),
    (_with("vod_new_file_upload:FileUploadEvent.MediaBasicInfo.ClassId", 2**63), "MediaBasicInfo.ClassId"),
    (_with("vod_procedure_finish:ProcedureStateChangeEvent.ErrCode", -(2**64)), "ProcedureStateChangeEvent.ErrCode"),
    (_with("vod_new_file_upload:FileUploadEvent.MetaData", nested(40)), "body"),
    (_with("vod_new_file_upload:FileUploadEvent.MediaBasicInfo.MediaUrl", 1), "MediaBasicInfo.MediaUrl"),
    (
        _with("vod_new_file_upload:FileUploadEvent.MediaBasicInfo.SourceInfo.SourceContext", {}),
        "SourceInfo.SourceContext",
    ),
    (_with("vod_new_file_upload:FileUploadEvent.MetaData", [1]), "FileUploadEvent.MetaData"),
    (_with("vod_procedure_finish:ProcedureStateChangeEvent.TaskId", ...), "ProcedureStateChangeEvent.TaskId"),
    (_with("vod_procedure_finish:ProcedureStateChangeEvent.ErrCode", "0"), "ProcedureStateChangeEvent.ErrCode"),
    (_with("vod_procedure_finish:ProcedureStateChangeEvent.MediaProcessResultSet", {}), "MediaProcessResultSet"),
    (
        _with("vod_procedure_finish:ProcedureStateChangeEvent.MediaProcessResultSet.0", "Transcode"),
        "MediaProcessResultSet[0]",
    ),
    (
        _with("vod_procedure_finish:ProcedureStateChangeEvent.MediaProcessResultSet.0.Type", ...),
        "MediaProcessResultSet[0].Type",
    ),
    (
        _with("vod_procedure_finish:ProcedureStateChangeEvent.MediaProcessResultSet.0.TranscodeTask", []),
        "MediaProcessResultSet[0].TranscodeTask",
    ),
    (
        _with("vod_procedure_finish:ProcedureStateChangeEvent.MediaProcessResultSet.0.TranscodeTask.Output", "u"),
        "TranscodeTask.Output",
    ),
    (_with("vod_file_deleted:FileDeleteEvent.FileIdSet", "5285890784273533167"), "FileDeleteEvent.FileIdSet"),
    (_with("vod_file_deleted:FileDeleteEvent.FileIdSet", [5285890784273533167]), "FileDeleteEvent.FileIdSet[0]"),
    (
        _with("vod_file_deleted:FileDeleteEvent.FileDeleteResultInfo", [{"DeleteParts": []}]),
        "FileDeleteResultInfo[0].FileId",
    ),
    (
        _with("vod_file_deleted:FileDeleteEvent.FileIdSet", _ids(0, MAX_FILES + 1)),
        f"FileDeleteEvent.FileIdSet has more than {MAX_FILES} entries",
    ),
    (
        _with("vod_file_deleted:FileDeleteEvent.FileDeleteResultInfo", _results(0, MAX_FILES + 1)),
        "FileDeleteEvent.FileDeleteResultInfo",
    ),
    (  # within the cap each, not together
        _with(
            "vod_file_deleted:FileDeleteEvent",
            {"FileIdSet": _ids(0, MAX_FILES), "FileDeleteResultInfo": _results(MAX_FILES, 1)},
        ),
        f"FileDeleteEvent.FileIdSet and FileDeleteResultInfo name more than {MAX_FILES}",
    ),
]


@pytest.mark.parametrize(("payload", "named"), MALFORMED)
def test_malformed_events_name_the_field(payload: Any, named: str) -> None:
    """`named`: the field, or the start of the message about it (which starts with the field)."""
    with pytest.raises(MalformedEvent) as caught:
        parse_event(payload)
    answer = as_http_error(caught.value)
    assert answer is not None and (answer.status, answer.code) == (400, "malformed_event")
    assert named in caught.value.message and caught.value.message.startswith(caught.value.field)


def test_a_field_named_by_the_bodys_own_text_is_named_briefly() -> None:
    # A result's Type names its field (TranscodeTask...): a 100,000-character one is not echoed back whole
    kind = "A" * 100_000
    result = {"Type": kind, f"{kind}Task": 5}
    body = {"TaskId": "t", "FileId": "f", "Status": "FINISH", "MediaProcessResultSet": [result]}
    with pytest.raises(MalformedEvent) as caught:
        parse_event({"EventType": "ProcedureStateChanged", "ProcedureStateChangeEvent": body})
    assert len(caught.value.message) < 300 and caught.value.message.endswith("must be an object")


_TRANSCODES = {"Type": "TranscodeFiles", "Definition": 100010}


@pytest.mark.parametrize(
    ("first", "second", "parts"),
    [
        ([_TRANSCODES], [], ()),  # one entry says the whole file: the whole file
        ([_TRANSCODES], [{"Type": "OriginalFiles"}], (("OriginalFiles", None), ("TranscodeFiles", 100010))),
        ([_TRANSCODES], [_TRANSCODES], (("TranscodeFiles", 100010),)),
    ],
    ids=["whole-and-parts", "two-lists", "same-list"],
)
def test_a_file_listed_twice_in_a_delete_is_read_the_same_in_either_order(
    first: list[dict[str, Any]], second: list[dict[str, Any]], parts: tuple[tuple[str, int | None], ...]
) -> None:
    read = []
    for entries in ([first, second], [second, first]):
        results = [{"FileId": "f1", "DeleteParts": deleted} for deleted in entries]
        event = parse_event({"EventType": "FileDeleted", "FileDeleteEvent": {"FileDeleteResultInfo": results}})
        assert isinstance(event, FileDeleted)
        read.append(sorted(tuple(part) for part in event.parts_for("f1")))
    assert read[0] == read[1] == sorted(parts)


@pytest.mark.parametrize(
    ("event_type", "content", "file_ids"),
    [
        (
            "EditMediaComplete",
            {"Output": {"FileId": "out"}, "Input": {"FileInfoSet": [{"FileId": "in"}]}},
            ("in", "out"),
        ),
        ("ClipComplete", {"SrcFileId": "src", "FileInfo": {"FileId": "clip"}}, ("clip", "src")),
        ("SnapshotByTimeOffsetComplete", {"InputFileId": "src", "FileIdSet": ["a", "b"]}, ("a", "b", "src")),
        ("ComposeMediaComplete", {"FileIds": "not one", "Output": {"FileId": 5}}, ()),
    ],
    ids=["outputs-and-inputs", "clip-source", "task-input", "no-usable-id"],
)
def test_another_event_is_linked_to_every_file_it_names(
    event_type: str, content: dict[str, Any], file_ids: tuple[str, ...]
) -> None:
    # What `vod-uploads show` lists for a file, and `erase` clears: an event derived from the user's video too
    event = parse_event({"EventType": event_type, f"{event_type}Event": content})
    assert event.file_ids == file_ids


@pytest.mark.parametrize("whole", [False, True], ids=["parts", "and-the-whole-file"])
def test_a_file_listed_many_times_is_merged_once(monkeypatch: pytest.MonkeyPatch, whole: bool) -> None:
    # 999 listings of one file (a signed body of under 1 MiB): merged at each listing, they took a minute
    listings = [[{"Type": "TranscodeFiles", "Definition": n * 25 + i} for i in range(25)] for n in range(999)]
    results = [{"FileId": "f1", "DeleteParts": parts} for parts in listings + ([[]] if whole else [])]
    keyed = []

    def key(part: object) -> str:  # the merge's sort key, counted
        keyed.append(part)
        return repr(part)

    monkeypatch.setattr(events, "repr", key, raising=False)
    event = parse_event({"EventType": "FileDeleted", "FileDeleteEvent": {"FileDeleteResultInfo": results}})
    assert isinstance(event, FileDeleted)
    assert len(event.parts_for("f1")) == (0 if whole else 999 * 25) and len(keyed) <= 999 * 25


def _wrapped(depth: int, container: str) -> Any:
    """A value `depth` containers deep (a dict holding lists, say), with a scalar and an empty one beside each."""
    value: Any = "leaf"
    for level in range(depth):
        value = {"x": value, "n": level, "e": []} if container == "dict" else [1, value, {}]
    return value


@pytest.mark.parametrize("container", ["dict", "list"])
@pytest.mark.parametrize(("depth", "refused"), [(MAX_DEPTH, False), (MAX_DEPTH + 1, True), (5_000, True)])
def test_nesting_is_refused_one_level_past_the_limit(container: str, depth: int, refused: bool) -> None:
    # The event object itself is one level; the empty containers beside the chain are one level deeper.
    payload = {"EventType": "EditMediaComplete", "Data": _wrapped(depth - 2, container)}
    if refused:
        with pytest.raises(MalformedEvent, match="nested more than"):
            parse_event(payload)
    else:
        assert isinstance(parse_event(payload), OtherEvent)


@pytest.mark.parametrize(
    ("payload", "kind", "file_ids"),
    [
        ({"EventType": "SomethingNew"}, OtherEvent, ()),  # unknown types are accepted and kept
        # best effort for other types: a FileId of the wrong type is no error, just not linked
        ({"EventType": "SomethingNew", "SomethingNewEvent": {"FileId": 12}}, OtherEvent, ()),
        (  # a list of files, as FileDeleted names them, at any depth; only its ids that are text
            {"EventType": "SomethingNew", "SomethingNewEvent": {"Sets": [{"FileIdSet": ["b", "a", 3]}]}},
            OtherEvent,
            ("a", "b"),
        ),
        (
            {"EventType": "NewFileUpload", "FileUploadEvent": {"FileId": "1", "NewField": {"x": [1]}}},
            NewFileUpload,
            ("1",),
        ),
        (
            {"EventType": "ProcedureStateChanged", "ProcedureStateChangeEvent": {"TaskId": "t"}},  # absent = VOD's null
            ProcedureStateChanged,
            (),
        ),
        ({"EventType": "FileDeleted", "FileDeleteEvent": {}}, FileDeleted, ()),
        (  # a field the bundle does not read is not checked: a task's Input, here a string
            {
                "EventType": "ProcedureStateChanged",
                "ProcedureStateChangeEvent": {
                    "TaskId": "t",
                    "MediaProcessResultSet": [{"Type": "Transcode", "TranscodeTask": {"Input": "odd"}}],
                },
            },
            ProcedureStateChanged,
            (),
        ),
        (
            {"EventType": "NewFileUpload", "FileUploadEvent": {"FileId": "1", "MediaBasicInfo": None}},
            NewFileUpload,
            ("1",),
        ),
    ],
)
def test_absent_and_unknown_fields_are_fine(payload: dict[str, Any], kind: type, file_ids: tuple[str, ...]) -> None:
    event = parse_event(payload)
    assert isinstance(event, kind)
    assert (event.event_type, event.file_ids) == (payload["EventType"], file_ids)


def test_dedupe_key_ignores_the_delivery_fields() -> None:
    event = load_event("vod_new_file_upload")
    key = stored_form(event).key
    assert stored_form({**event, "Sign": "a" * 32, "T": 1}).key == key
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert stored_form({**event, "Sign": "a" * 32, "T": 1}).text == canonical  # what is stored is what is hashed
    assert key == hashlib.sha256(canonical.encode()).hexdigest()
    assert stored_form(load_event("vod_procedure_finish")).key != key


def test_dedupe_key_ignores_the_event_handle_a_receipt_per_delivery() -> None:
    event = load_event("vod_pull_new_file_upload")
    redelivered = {**event, "EventHandle": "another-receipt"}
    pushed = {k: v for k, v in event.items() if k != "EventHandle"}
    assert stored_form(event).key == stored_form(redelivered).key == stored_form(pushed).key


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6), st.integers(), st.text())
def test_dedupe_key_is_independent_of_key_order_and_transport(body: dict[str, Any], t: int, sign: str) -> None:
    body.pop("EventHandle", None)
    reordered = dict(reversed(list(body.items())))
    assert stored_form(body).key == stored_form({**reordered, "T": t, "Sign": sign}).key


def test_a_subclass_of_a_mapped_error_gets_its_parents_answer() -> None:
    class PoolExhausted(StoreUnavailable):  # e.g. a backend's more precise failure
        pass

    answer = as_http_error(PoolExhausted("no connection left"))
    assert answer is not None and answer.status == 503  # VOD retries, as for any store failure
    assert as_http_error(ValueError("unexpected")) is None  # not a domain error: a 500 that says nothing


@pytest.mark.parametrize(
    ("kind", "field"), [("NewFileUpload", "FileId"), ("ProcedureStateChanged", "TaskId"), ("FileDeleted", "FileId")]
)
def test_an_identifier_of_256_characters_is_read_and_one_more_refused(kind: str, field: str) -> None:
    parsed = events.parse_event(vod_event(kind, **{field: "1" * 256}))
    assert "1" * 256 in (*parsed.file_ids, getattr(parsed, "task_id", None))
    with pytest.raises(MalformedEvent, match=f"{field} (is longer than|must be a non-empty string of at most) 256"):
        events.parse_event(vod_event(kind, **{field: "1" * 257}))
