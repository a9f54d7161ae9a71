"""What an event cannot do, on every store: rewrite whose upload a file is, claim a user without the seal,
or poison the store (an answer other than 400 for a bad event would be retried by VOD forever)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from shared.callback_service import make_callback_endpoint
from shared.config import load_callback_settings
from shared.hooks import CommittedEvent
from shared.http.serve import serve
from shared.ingest import Vouched, ingest_event
from shared.source_context import Attribution, seal
from shared.store import EventStore
from tests.conftest import CALLBACK_ENV, CONTEXT_KEY, KEYS, Output
from tests.scf import load_event, response_json
from vodtesting import http_event, signed, vod_event

FILE = "5285890784273533167"


def upload_by(user: str, **fields: Any) -> dict[str, Any]:
    return vod_event("NewFileUpload", FileId=FILE, SourceContext=seal(user, f"req-{user}", CONTEXT_KEY), **fields)


def test_what_vod_vouches_for_is_keyed_as_the_delivery(store: EventStore) -> None:
    # GIVEN one notification, recorded as VOD answered when asked (VOD_CALLBACK_CONFIRM=fetch)
    delivered = upload_by("alice")
    answers = [upload_by("alice", Name=name) for name in ("as uploaded", "renamed since")]
    first = ingest_event(
        store, delivered, received_at=1.0, keys=KEYS, vouched=Vouched(answers[0], Attribution("sealed", "alice"))
    )
    # WHEN VOD retries it after its answer changed, and the same notification also arrives by PULL (not asked)
    retry = ingest_event(
        store, delivered, received_at=2.0, keys=KEYS, vouched=Vouched(answers[1], Attribution("sealed", "alice"))
    )
    pulled = ingest_event(store, delivered, received_at=3.0, keys=KEYS)
    # THEN it is one event, recorded as VOD first vouched for it
    assert (first.duplicate, retry.duplicate, pulled.duplicate) == (False, True, True)
    assert first.dedupe_key == retry.dedupe_key == pulled.dedupe_key and store.event_count() == 1
    assert store.payload(first.dedupe_key) == answers[0]
    record = store.upload(FILE)
    assert record is not None and (record.name, record.user_id) == ("as uploaded", "alice")


@pytest.mark.parametrize("forged_first", [False, True], ids=["genuine-first", "forged-first"])
def test_a_forged_upload_for_an_existing_file_never_names_the_forger(store: EventStore, forged_first: bool) -> None:
    # GIVEN Alice's upload, and a validly signed replay with Mallory's own sealed context for the same FileId
    genuine, forged = upload_by("alice"), upload_by("mallory", Name="mine now")
    # WHEN both arrive, in either order
    for payload in (forged, genuine) if forged_first else (genuine, forged):
        ingest_event(store, payload, received_at=1.0, keys=KEYS)
    # THEN the record names nobody, says why, and lists what disagrees
    record = store.upload(FILE)
    assert record is not None
    assert (record.user_id, record.status, record.attribution) == (None, "conflict", "conflict")
    assert [(c.field, c.values) for c in record.conflicts] == [
        ("user_id", ("alice", "mallory")),
        (
            "source_context",
            tuple(
                sorted(
                    [
                        genuine["FileUploadEvent"]["MediaBasicInfo"]["SourceInfo"]["SourceContext"],
                        forged["FileUploadEvent"]["MediaBasicInfo"]["SourceInfo"]["SourceContext"],
                    ]
                )
            ),
        ),
    ]


UNCONFIRMED = Attribution("unconfirmed")  # what VOD_CALLBACK_CONFIRM=fetch records when VOD does not list the file


@pytest.mark.parametrize("deleted", [False, True], ids=["listed", "deleted"])
@pytest.mark.parametrize("forged_first", [False, True], ids=["genuine-first", "forged-first"])
def test_an_upload_vod_did_not_list_changes_no_file_it_meets(
    store: EventStore, forged_first: bool, deleted: bool
) -> None:
    # GIVEN Alice's upload as VOD vouched for it, and a validly signed body for the same FileId that VOD did not
    # list when asked (forged before the FileId was issued, or after the file was deleted), naming Mallory
    genuine = (upload_by("alice"), Vouched(upload_by("alice"), Attribution("sealed", "alice", "req-alice", True)))
    # ...with a name and URLs of its own, a cover and a task where VOD has none
    forged = upload_by(
        "mallory", Name="mine now", MediaUrl="http://evil.example/x.mp4", CoverUrl="http://evil.example/c.jpg"
    )
    forged["FileUploadEvent"]["ProcedureTaskId"] = "evil-task"
    deliveries: list[tuple[dict[str, Any], Vouched | None]] = [genuine, (forged, Vouched(forged, UNCONFIRMED))]
    if deleted:
        deliveries.append((vod_event("FileDeleted", FileIdSet=[FILE]), None))
    # WHEN they arrive in either order
    for payload, vouched in deliveries[::-1] if forged_first else deliveries:
        ingest_event(store, payload, received_at=1.0, keys=KEYS, vouched=vouched)
    # THEN the record is Alice's, as VOD has it: the forged body's user, name and URL count for nothing
    record = store.upload(FILE)
    assert record is not None and store.event_count() == len(deliveries)
    assert (record.user_id, record.attribution, record.confirmed, record.conflicts) == ("alice", "sealed", True, ())
    vods = genuine[0]["FileUploadEvent"]["MediaBasicInfo"]
    assert (record.name, record.media_url) == (vods["Name"], vods["MediaUrl"])
    assert (record.cover_url, record.procedure_task_id) == (None, None)
    assert record.status == ("deleted" if deleted else "uploaded")


def test_uploads_vod_did_not_list_alone_name_nobody(store: EventStore) -> None:
    for user in ("alice", "mallory"):  # bodies that disagree: still no conflict, as none of them is VOD's word
        ingest_event(store, upload_by(user), received_at=1.0, keys=KEYS, vouched=Vouched(upload_by(user), UNCONFIRMED))
    record = store.upload(FILE)
    assert record is not None
    assert (record.user_id, record.attribution, record.confirmed, record.conflicts) == (None, "unconfirmed", False, ())
    assert record.status == "uploaded"


def test_a_conflict_is_logged_and_reaches_the_hook(store: EventStore, output: Output) -> None:
    seen: list[CommittedEvent] = []
    ingest_event(store, upload_by("alice"), received_at=1.0, keys=KEYS, after_commit=seen.append)
    output.skip()
    ingest_event(store, upload_by("mallory"), received_at=2.0, keys=KEYS, after_commit=seen.append)
    # The hook sees the record as committed: nobody's, with what disagrees (so an app can alert on it).
    last = seen[-1].upload
    assert last is not None and (last.status, last.user_id) == ("conflict", None)
    assert [c.field for c in last.conflicts] == ["user_id", "source_context"]
    assert [(line["level"], line["event"], line["file_ids"], line["conflicts"]) for line in output.lines()] == [
        ("WARNING", "upload.conflict", [FILE], ["user_id", "source_context"])
    ]
    output.skip()  # the file's later events disagree with nothing: said once, by the event that disagreed
    ingest_event(store, vod_event("ProcedureStateChanged", FileId=FILE, TaskId="t-1"), received_at=3.0, keys=KEYS)
    assert [line["event"] for line in output.lines()] == []
    for user in ("alice", "mallory"):  # what disagrees, not the seals: each would attribute uploads to its user
        assert seal(user, f"req-{user}", CONTEXT_KEY) not in output.seen


def _mac_starting(character: str) -> str:
    prefix, request_id, mac, user = seal("alice", "r", CONTEXT_KEY).split(":")
    return ":".join([prefix, request_id, character + mac[1:], user])


@pytest.mark.parametrize(
    ("context", "why"),
    [
        ("u1:c6af9ac6-7b61-11e6-9a41-93e8deadbeef:alice", "not_sealed"),  # plain text names anyone
        ("console upload", "not_sealed"),
        ("", "no_context"),
        (seal("alice", "r", "another-key-0123456789-abcdefghijklmnop"), "bad_seal"),
        (seal("alice", "r", CONTEXT_KEY)[:-1] + "x", "bad_seal"),  # the user id changed after sealing
        (seal("alice", "req1", CONTEXT_KEY).replace(":req1:", ":req2:"), "bad_seal"),  # so did its sign request id
        # the shape of a seal but not one the signer writes: no MAC is even checked
        (seal("alice", "req1", CONTEXT_KEY).replace(":req1:", ":req.1:"), "not_sealed"),  # a character it drops
        (seal("alice", "r", CONTEXT_KEY).replace(":alice", "A:alice"), "not_sealed"),  # a MAC one character longer
        (seal("alice", "r", CONTEXT_KEY).removesuffix("alice"), "not_sealed"),  # no user id
        *((_mac_starting(character), "not_sealed") for character in ("+", "é", "=")),  # not base64url
    ],
)
def test_only_a_sealed_context_names_a_user(store: EventStore, output: Output, context: str, why: str) -> None:
    for _ in range(2):  # and again, as VOD retries: a duplicate, said once
        payload = vod_event("NewFileUpload", FileId=FILE, SourceContext=context)
        ingest_event(store, payload, received_at=1.0, keys=KEYS)
    record = store.upload(FILE)
    assert record is not None and (record.user_id, record.attribution, record.status) == (None, why, "uploaded")
    # A seal none of the keys opens is a misdeploy (or a forgery): every upload would lose its user, so it is said
    said = [(line["level"], line["event"], line["file_ids"]) for line in output.lines()]
    assert said == ([("WARNING", "upload.unattributed", [FILE])] if why == "bad_seal" else [])


def test_the_previous_key_still_opens_what_it_sealed(store: EventStore) -> None:
    old = "the-previous-context-key-0123456789-abcdef"
    payload = vod_event("NewFileUpload", FileId=FILE, SourceContext=seal("carol", "r", old))
    ingest_event(store, payload, received_at=1.0, keys=(CONTEXT_KEY, old))
    record = store.upload(FILE)
    assert record is not None and (record.user_id, record.attribution) == ("carol", "sealed")


def test_a_task_event_alone_still_gives_name_url_and_metadata(store: EventStore) -> None:
    event = vod_event(
        "ProcedureStateChanged", FileId=FILE, FileName="clip", FileUrl="http://x/clip.mp4", Status="PROCESSING"
    )
    event["ProcedureStateChangeEvent"]["MetaData"] = {"Duration": 3.0}
    ingest_event(store, event, received_at=1.0, keys=KEYS)
    record = store.upload(FILE)
    assert record is not None
    assert (record.name, record.media_url, record.metadata, record.user_id) == (
        "clip",
        "http://x/clip.mp4",
        {"Duration": 3.0},
        None,
    )


@pytest.mark.parametrize("upload_first", [False, True], ids=["task-first", "upload-first"])
def test_an_upload_vod_did_not_list_names_nothing_a_task_event_gave(store: EventStore, upload_first: bool) -> None:
    # GIVEN a file known only by its task flow's event, then deleted (VOD lists it no more), and a body naming it
    # that VOD did not list (recorded unconfirmed) with a name and URL of its own
    task = vod_event("ProcedureStateChanged", FileId=FILE, FileName="clip", FileUrl="http://x/clip.mp4")
    forged = upload_by("mallory", Name="evil", MediaUrl="http://evil.example/x.mp4")
    deliveries = [(task, None), (forged, Vouched(forged, UNCONFIRMED))]
    for payload, vouched in deliveries[::-1] if upload_first else deliveries:
        ingest_event(store, payload, received_at=1.0, keys=KEYS, vouched=vouched)
    # THEN the name and URL are the task event's, whatever the order
    record = store.upload(FILE)
    assert record is not None and (record.name, record.media_url, record.user_id) == ("clip", "http://x/clip.mp4", None)


def test_an_edit_is_linked_to_every_file_it_names(store: EventStore) -> None:
    result = ingest_event(store, load_event("vod_edit_media_complete"), received_at=1.0, keys=KEYS)
    assert result.event.file_ids == ("5285890784273533167", "5285890784273533168", "5285890784273533999")
    for file_id in result.event.file_ids:
        report = store.file_report(file_id)
        assert report is not None and [e.event_type for e in report.events] == ["EditMediaComplete"]


_LONG = "9" * 3000
POISON = [
    (vod_event("NewFileUpload", FileId=_LONG), "FileUploadEvent.FileId"),
    (vod_event("ProcedureStateChanged", TaskId=_LONG), "ProcedureStateChangeEvent.TaskId"),
    (vod_event("ProcedureStateChanged", FileId=_LONG), "ProcedureStateChangeEvent.FileId"),
    (
        {"EventType": "FileDeleted", "FileDeleteEvent": {"FileIdSet": [str(i) for i in range(20_000)]}},
        "FileDeleteEvent.FileIdSet",
    ),
    ({"EventType": "FileDeleted", "FileDeleteEvent": {"FileIdSet": [_LONG]}}, "FileDeleteEvent.FileIdSet[0]"),
    ({"EventType": "E" * 300}, "EventType"),
    ({**vod_event("NewFileUpload"), "EventHandle": _LONG}, "EventHandle"),
]


@pytest.fixture
def deliver(store: EventStore) -> Callable[[dict[str, Any]], dict[str, Any]]:
    settings = load_callback_settings(CALLBACK_ENV)
    endpoint = make_callback_endpoint(settings, lambda: store)

    def post(payload: dict[str, Any]) -> dict[str, Any]:
        event = http_event(path="/vod-events", body=json.dumps(signed(payload, CALLBACK_ENV["VOD_CALLBACK_SIGN_KEY"])))
        result = serve(event, {"request_id": "poison"}, endpoint, settings.http)
        return {"status": result["statusCode"], **response_json(result)}

    return post


@pytest.mark.parametrize(("payload", "field"), POISON, ids=[field for _, field in POISON])
def test_a_poison_event_is_a_400_on_every_store(
    deliver: Callable[..., dict[str, Any]], store: EventStore, payload: dict[str, Any], field: str
) -> None:
    answer = deliver(payload)
    assert (answer["status"], answer["error"]["code"]) == (400, "malformed_event")
    assert answer["error"]["message"].startswith(field)
    assert store.event_count() == 0


def test_a_delete_of_many_files_is_recorded_whole(deliver: Callable[..., dict[str, Any]], store: EventStore) -> None:
    files = [f"f{i}" for i in range(1000)]  # the most an event may name
    assert deliver(vod_event("FileDeleted", FileIdSet=files))["status"] == 200
    statuses = {f: (record.status if (record := store.upload(f)) else None) for f in files}
    assert set(statuses.values()) == {"deleted"}
