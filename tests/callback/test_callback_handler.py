"""The callback function with realistic SCF events of both trigger shapes."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.callback_service import make_callback_endpoint
from shared.config import ConfigError, load_callback_settings, load_store_settings
from shared.events import DeletePart, FileDeleted, OtherEvent, expected_sign
from shared.hooks import keep_secret, load_hook, plain, rerun_hook
from shared.http.serve import serve
from shared.source_context import seal
from shared.store import EventStore, open_store
from tests.callback import hook_target
from tests.conftest import CALLBACK_ENV, CALLBACK_SIGN_KEY, CONTEXT_KEY, LeakGuard, Output
from tests.scf import SHAPES, header, load_event, response_json
from vodtesting import http_event, vod_event
from vodtesting import signed as vod_signed

NOW = 1_800_000_000
FILE_ID = "5285890784273533167"


def signed(payload: dict[str, Any], ttl: int = 600) -> dict[str, Any]:
    """As VOD pushes it, at the tests' exact clock (the kit's `signed`)."""
    return vod_signed(payload, CALLBACK_SIGN_KEY, ttl, now=NOW)


def body_of(payload: Any) -> str:
    return payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    opened = open_store(f"sqlite:///{tmp_path}/vod.sqlite3")
    yield opened
    opened.close()


Call = Callable[..., dict[str, Any]]


@pytest.fixture
def call(store: EventStore, leak_guard: LeakGuard) -> Callable[..., Call]:
    """Build the endpoint from an environment with an exact clock; invoke it through serve()."""

    def factory(hook: Callable[..., None] | None = None, **env: str) -> Call:
        settings = load_callback_settings({**CALLBACK_ENV, **env})
        endpoint = make_callback_endpoint(
            settings, lambda: store, now=lambda: NOW, **({"after_commit": hook} if hook else {})
        )

        def invoke(payload: Any, shape: str = "apigw", **kwargs: Any) -> dict[str, Any]:
            if isinstance(payload, dict) and "Sign" in payload:
                leak_guard.add(payload["Sign"])  # a Sign must never be logged either
            event = http_event(path="/vod-events", body=body_of(payload), shape=shape, **kwargs)
            result = serve(event, {"request_id": "req-1"}, endpoint, settings.http)
            return {"status": result["statusCode"], **response_json(result)}

        return invoke

    return factory


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    "fixture",
    [
        "vod_new_file_upload",
        "vod_procedure_processing",
        "vod_procedure_finish",
        "vod_file_deleted",
        "vod_transcode_complete",
        "vod_pull_new_file_upload",
    ],
)
def test_each_event_type_is_acknowledged_and_stored(
    call: Callable[..., Call], store: EventStore, shape: str, fixture: str
) -> None:
    result = call()(signed(load_event(fixture)), shape)
    assert result == {
        "status": 200,
        "ok": True,
        "duplicate": False,
        "eventType": load_event(fixture)["EventType"],
        "dedupeKey": result["dedupeKey"],
    }
    assert store.event(result["dedupeKey"]) is not None


@pytest.mark.parametrize(
    ("sign_fields", "code"),
    [
        ({"T": NOW + 600, "Sign": expected_sign("SomeOtherKey", NOW + 600)}, "invalid_signature"),
        ({"T": NOW + 600, "Sign": "0" * 32}, "invalid_signature"),
        ({"T": NOW - 1, "Sign": expected_sign(CALLBACK_SIGN_KEY, NOW - 1)}, "signature_expired"),
        ({"T": NOW + 901, "Sign": expected_sign(CALLBACK_SIGN_KEY, NOW + 901)}, "signature_too_far_ahead"),
        ({"T": NOW + 600}, "missing_signature"),
        ({"T": str(NOW + 600), "Sign": expected_sign(CALLBACK_SIGN_KEY, NOW + 600)}, "invalid_signature"),
        ({"T": True, "Sign": expected_sign(CALLBACK_SIGN_KEY, 1)}, "invalid_signature"),
    ],
)
def test_bad_signatures_are_401_and_store_nothing(
    call: Callable[..., Call], store: EventStore, output: Output, sign_fields: dict[str, Any], code: str
) -> None:
    result = call()({**load_event("vod_new_file_upload"), **sign_fields})
    assert (result["status"], result["error"]["code"]) == (401, code)
    assert store.event_count() == 0
    # The operator's line says which check refused it, as the caller hears it (never the Sign it came with).
    [line] = output.lines()
    assert (line["level"], line["sign_error"]) == ("WARNING", result["error"]["message"])


def _with_output_url(url: str) -> dict[str, Any]:
    event = load_event("vod_procedure_finish")
    event["ProcedureStateChangeEvent"]["MediaProcessResultSet"][0]["TranscodeTask"]["Output"]["Url"] = url
    return event


def test_text_beyond_the_basic_plane_is_accepted(call: Callable[..., Call], store: EventStore) -> None:
    # A surrogate pair, escaped as JSON encoders do by default: one character (an emoji), valid text, kept as it is.
    assert call()(json.dumps(signed(_with_output_url("http://vod.example/\U0001f600.mp4"))))["status"] == 200
    [task] = store.tasks("5285890784273533167")
    assert "http://vod.example/\U0001f600.mp4" in task.results[0].urls


@pytest.mark.parametrize(
    ("payload", "code", "names"),
    [
        ("{not json", "invalid_json", "not valid JSON"),
        ('{"EventType": "NewFileUpload", "EventType": "FileDeleted"}', "invalid_json", "duplicate key"),
        ("[]", "invalid_json", "JSON object"),
        ('"NewFileUpload"', "invalid_json", "JSON object"),
        ("", "malformed_event", "body"),
        (signed({"FileUploadEvent": {"FileId": "1"}}), "malformed_event", "EventType is required"),
        (signed({"EventType": 12}), "malformed_event", "EventType must be a non-empty string"),
        (signed({"EventType": "E" * 257}), "malformed_event", "EventType is longer than"),  # not "non-empty"
        (signed({"EventType": "a\x00b"}), "malformed_event", "EventType must not contain NUL"),
        (
            signed({"EventType": "NewFileUpload", "FileUploadEvent": "1"}),
            "malformed_event",
            "FileUploadEvent must be an object",
        ),
        (
            signed({"EventType": "NewFileUpload", "FileUploadEvent": {}}),
            "malformed_event",
            "FileUploadEvent.FileId is required",
        ),
        (
            signed({"EventType": "FileDeleted", "FileDeleteEvent": {"FileIdSet": "1"}}),
            "malformed_event",
            "FileDeleteEvent.FileIdSet must be a list",
        ),
        (
            signed(
                {"EventType": "ProcedureStateChanged", "ProcedureStateChangeEvent": {"TaskId": "t", "ErrCode": "0"}}
            ),
            "malformed_event",
            "ProcedureStateChangeEvent.ErrCode must be an integer",
        ),
        (  # deep in a task's output, where the event is not read field by field: still not text
            json.dumps(signed(_with_output_url("http://vod.example/\ud800.mp4"))),  # escaped, as JSON allows
            "invalid_json",
            "unpaired surrogate",
        ),
    ],
)
def test_malformed_bodies_are_400_naming_the_problem(
    call: Callable[..., Call], store: EventStore, payload: Any, code: str, names: str
) -> None:
    result = call()(payload)
    assert (result["status"], result["error"]["code"]) == (400, code)
    assert names in result["error"]["message"]
    assert store.event_count() == 0


def test_the_request_line_names_a_signed_event_it_cannot_read(call: Callable[..., Call], output: Output) -> None:
    # VOD stops retrying some day: the operator must know which event and file were lost
    task = {"TaskId": "t", "FileId": "5285890784273533167", "ErrCode": "0"}
    result = call()(signed({"EventType": "ProcedureStateChanged", "ProcedureStateChangeEvent": task}))
    [line] = [line for line in output.lines() if line["event"] == "request"]
    assert (result["status"], line["level"], line["event_type"], line["file_ids"]) == (
        400,
        "WARNING",
        "ProcedureStateChanged",
        ["5285890784273533167"],
    )


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json; charset=utf-8"])
def test_any_content_type_is_accepted(call: Callable[..., Call], store: EventStore, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {"Content-Type": ""}
    assert call()(signed(load_event("vod_new_file_upload")), headers=headers)["status"] == 200
    assert store.event_count() == 1  # recorded, not only answered


def test_during_a_context_key_rotation_both_keys_name_their_users(
    call: Callable[..., Call], store: EventStore, output: Output
) -> None:
    # The callback told of the new key first (README, Settings: rotating VOD_CONTEXT_KEY), the sign function after
    new, old, other = "n" * 32, CONTEXT_KEY, "o" * 32
    invoke = call(VOD_CONTEXT_KEY=new, VOD_CONTEXT_KEY_PREVIOUS=old)
    for file_id, key in (("f-new", new), ("f-old", old), ("f-other", other)):
        event = vod_event("NewFileUpload", FileId=file_id, SourceContext=seal("ann", "r", key))
        assert invoke(signed(event, 600))["status"] == 200
    users = {f: (u.user_id if (u := store.upload(f)) else "?") for f in ("f-new", "f-old", "f-other")}
    assert users == {"f-new": "ann", "f-old": "ann", "f-other": None}  # sealed with neither: no one's
    # What tells the operator the previous key is still needed, and what no key opened
    said = [(line["event"], line["file_ids"]) for line in output.lines() if line["event"].startswith("upload.")]
    assert said == [("upload.previous_context_key", ["f-old"]), ("upload.unattributed", ["f-other"])]


def test_during_a_sign_key_rotation_deliveries_signed_with_either_key_are_stored(
    call: Callable[..., Call], store: EventStore, output: Output
) -> None:
    # The callback told of the new key first, with the old one as previous (README: rotating the SignKey); then VOD
    new = "NewSignKey0123456789"
    invoke = call(VOD_CALLBACK_SIGN_KEY=new, VOD_CALLBACK_SIGN_KEY_PREVIOUS=CALLBACK_SIGN_KEY)

    def delivery(file_id: str, key: str) -> dict[str, Any]:
        return vod_signed(vod_event("NewFileUpload", FileId=file_id), key, 600, now=NOW)

    answers = [
        (answer["status"], answer.get("error", {}).get("code"))
        for answer in (
            invoke(delivery("f-new", new)),
            invoke(delivery("f-old", CALLBACK_SIGN_KEY)),
            invoke(delivery("f-other", "OtherKey0123456789")),
            call(VOD_CALLBACK_SIGN_KEY=new)(delivery("f-late", CALLBACK_SIGN_KEY)),  # the previous key unset since
        )
    ]
    assert answers == [(200, None), (200, None), (401, "invalid_signature"), (401, "invalid_signature")]
    assert store.event_count() == 2
    # What tells the operator the rotation may end: no delivery signed with the old key any more
    lines = [line for line in output.lines() if line["event"] == "request"]
    assert [line.get("sign_key") for line in lines] == [None, "previous", None, None]


def test_duplicate_deliveries_are_acknowledged_once(call: Callable[..., Call], store: EventStore) -> None:
    calls: list[Any] = []
    invoke = call(hook=calls.append)
    first = invoke(signed(load_event("vod_new_file_upload"), 600))
    retry = invoke(signed(load_event("vod_new_file_upload"), 700))  # VOD re-signs each retry
    assert (first["duplicate"], retry["duplicate"]) == (False, True)
    assert first["dedupeKey"] == retry["dedupeKey"]
    assert store.event_count() == 1 and len(calls) == 1


@pytest.mark.parametrize("shape", SHAPES)
def test_sixteen_concurrent_deliveries_have_one_effect(
    call: Callable[..., Call], store: EventStore, shape: str
) -> None:
    calls: list[Any] = []
    invoke = call(hook=calls.append)
    barrier = threading.Barrier(16)
    results: list[dict[str, Any]] = []

    def deliver() -> None:
        barrier.wait()
        results.append(invoke(signed(load_event("vod_new_file_upload")), shape))

    threads = [threading.Thread(target=deliver) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r["status"] for r in results] == [200] * 16
    assert sorted(r["duplicate"] for r in results) == [False] + [True] * 15
    assert store.event_count() == 1 and len(calls) == 1


def test_insecure_mode_accepts_unsigned_events(call: Callable[..., Call], output: Output) -> None:
    invoke = call(VOD_CALLBACK_SIGN_KEY="", VOD_CALLBACK_INSECURE="true")
    output.skip()
    assert invoke(load_event("vod_new_file_upload"))["status"] == 200
    [line] = output.lines()
    assert (line["event"], line["unverified"]) == ("request", True)


def test_signature_fields_are_not_stored(call: Callable[..., Call], store: EventStore) -> None:
    result = call()(signed(load_event("vod_new_file_upload")))
    assert store.payload(result["dedupeKey"]) == load_event("vod_new_file_upload")


# A secret of the app's whose text nothing names as one (a webhook's URL), as a hook's module keeps it
APP_WEBHOOK = keep_secret("https://hooks.chat.example/services/T01/B02/wh-0451")


@pytest.mark.parametrize(
    ("raised", "kept"),
    [
        ("search index rejected the document", "search index rejected the document"),
        # what may be secret in an app's error is masked where it is kept and in the logged traceback
        (
            "HTTPSConnectionPool(host='hooks.example.com'): Max retries exceeded with url: /?token=tok-123456&u=7",
            "HTTPSConnectionPool(host='hooks.example.com'): Max retries exceeded with url: /?token=********&u=7",
        ),
        (
            "cannot reach https://app:hunter2-pw@queue.example.com/jobs#access_token=fragment-key",
            "cannot reach https://app:********@queue.example.com/jobs#access_token=********",
        ),
        (
            "connection failed: host=db user=app password=hunter2-pw",
            "connection failed: host=db user=app password=********",
        ),
        (
            "bad config {'api_key': 'ak-98765', 'region': 'ap-guangzhou'}",
            "bad config {'api_key': '********', 'region': 'ap-guangzhou'}",
        ),
        (f"signed with {CALLBACK_SIGN_KEY} and {CONTEXT_KEY}", "signed with ******** and ********"),  # the bundle's own
        (f"posting to {APP_WEBHOOK} failed", "posting to ******** failed"),  # the app's, named by keep_secret
        (  # its path, as requests quotes a URL it could not reach
            "HTTPSConnectionPool(host='hooks.chat.example', port=443): Max retries exceeded with url: "
            "/services/T01/B02/wh-0451 (Caused by NewConnectionError)",
            "HTTPSConnectionPool(host='hooks.chat.example', port=443): Max retries exceeded with url: "
            "******** (Caused by NewConnectionError)",
        ),
        ("x" * 2000, "x" * (500 - len("ValueError: "))),  # the row keeps 500 characters
        (  # masked before it is cut: the refresh token starts far past the 500 characters the row keeps
            f'refresh failed: {{"access_token": "{"A" * 900}", "id_token": "{"B" * 900}", '
            f'"refresh_token": "rt-77{"C" * 600}"}}',
            'refresh failed: {"access_token": "********", "id_token": "********", "refresh_token": "********"}',
        ),
    ],
    ids=[
        "plain",
        "a URL's query",
        "a URL's password and fragment",
        "a connection string",
        "a dict",
        "own secrets",
        "the app's secrets",
        "the app's URL's path",
        "cut",
        "long",
    ],
)
def test_failing_hook_still_acknowledges_and_is_visible(
    call: Callable[..., Call], store: EventStore, output: Output, leak_guard: LeakGuard, raised: str, kept: str
) -> None:
    for secret in (
        "tok-123456",
        "hunter2-pw",
        "fragment-key",
        "ak-98765",
        "rt-77C",
        "wh-0451",
        CALLBACK_SIGN_KEY,
        CONTEXT_KEY,
    ):
        leak_guard.add(secret)

    def hook(committed: Any) -> None:
        raise ValueError(raised)

    result = call(hook=hook)(signed(load_event("vod_new_file_upload")))
    assert result["status"] == 200 and result["duplicate"] is False
    event = store.event(result["dedupeKey"])
    assert event is not None and event.hook_failures == 1
    assert event.hook_last_error == f"ValueError: {kept}"
    failed = [line for line in output.lines() if line["event"] == "hook.failed"]
    assert [(line["level"], line["dedupe_key"], line["file_ids"]) for line in failed] == [
        ("ERROR", result["dedupeKey"], ["5285890784273533167"])
    ]
    assert failed[0]["exception"].startswith("Traceback") and f"ValueError: {kept}" in failed[0]["exception"]
    assert failed[0]["error_detail"] == event.hook_last_error  # as the row keeps it


@pytest.mark.parametrize(
    ("setting", "value", "env"),
    [
        # the account's key, given to the callback (serverless.yml) but read only when it asks VOD (fetch)
        ("VOD_SECRET_KEY", "SKunreadByTheCallback0123456789", {"VOD_CALLBACK_CONFIRM": "none"}),
        ("AUTH_JWT_SECRET", "jwt-secret-the-callback-never-reads", {}),
        ("TENCENTCLOUD_SESSIONTOKEN", "role-token-the-callback-never-reads", {}),
    ],
    ids=["account key, confirm none", "another function's JWT secret", "a role's token"],
)
def test_a_secret_setting_the_callback_does_not_read_is_masked_all_the_same(
    call: Callable[..., Call], store: EventStore, output: Output, setting: str, value: str, env: dict[str, str]
) -> None:
    def hook(committed: Any) -> None:
        raise RuntimeError(f"auth failed with key {value}")

    result = call(hook=hook, **env, **{setting: value})(signed(load_event("vod_new_file_upload")))
    assert result["status"] == 200
    event = store.event(result["dedupeKey"])
    assert event is not None and event.hook_last_error == "RuntimeError: auth failed with key ********"
    assert value not in output.text()


def test_a_hook_failing_with_a_long_message_still_logs_its_name_and_frames(
    call: Callable[..., Call], output: Output
) -> None:
    def hook(committed: Any) -> None:
        raise ValueError("the app's queue answered: " + "<html>" * 40_000)  # a whole error page, say

    call(hook=hook)(signed(load_event("vod_new_file_upload")))
    [failed] = [line for line in output.lines() if line["event"] == "hook.failed"]
    assert failed["error_detail"].startswith("ValueError: the app's queue answered: <html>")
    assert failed["exception"].startswith("Traceback") and ", in hook\n" in failed["exception"]
    assert len(failed["exception"]) < 20_100


@pytest.mark.parametrize(
    ("payload", "level", "detail"),
    [
        # VOD signed it, yet this build cannot read it: once VOD stops retrying it is lost, so an operator must see it
        (signed({"EventType": "NewFileUpload", "FileUploadEvent": {"FileId": 5}}), "WARNING", "FileId must be a"),
        ("{not json", "INFO", "body is not valid JSON"),  # nobody's event: not the operator's to act on
        ("", "INFO", "body must be a JSON object (the body is empty)"),
        (" \r\n\t", "INFO", "body must be a JSON object (the body is empty)"),  # JSON's whitespace alone
        ("\x0b", "INFO", "body is not valid JSON: Expecting value"),  # whitespace to bytes.strip, not to JSON
    ],
)
def test_an_event_that_cannot_be_read_is_logged_with_why(
    call: Callable[..., Call], output: Output, payload: Any, level: str, detail: str
) -> None:
    assert call()(payload)["status"] == 400
    [line] = [line for line in output.lines() if line["event"] == "request"]
    assert line["level"] == level and detail in line["error_detail"]


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
def test_method_other_than_post_is_405(call: Callable[..., Call], method: str) -> None:
    answer = call()(signed(load_event("vod_new_file_upload")), method=method)  # no browser calls VOD's endpoint
    assert (answer["status"], answer["error"]["code"]) == (405, "method_not_allowed")


# --- the deployed handler module ------------------------------------------------------------------------


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "data" / "vod.sqlite3"


@pytest.fixture
def callback(vod_function: Callable[..., Any], database: Path) -> Callable[..., Any]:
    """The deployed callback handler, loaded fresh with these settings (plus `extra`)."""

    def load(**extra: str) -> Any:
        return vod_function(
            "callback",
            env={**CALLBACK_ENV, "DATABASE_URL": f"sqlite:///{database}", **extra},
        )

    return load


def handler_event(shape: str, payload: dict[str, Any]) -> dict[str, Any]:
    # the module uses the real clock
    return http_event(path="/vod-events", body=vod_signed(payload, CALLBACK_SIGN_KEY), shape=shape)


@pytest.mark.parametrize("shape", SHAPES)
def test_handler_module_records_an_upload(callback: Callable[..., Any], database: Path, shape: str) -> None:
    main_handler = callback()
    result = main_handler(handler_event(shape, load_event("vod_new_file_upload")), {"request_id": "scf-1"})
    assert result["statusCode"] == 200 and header(result, "X-Request-Id")
    store = open_store(f"sqlite:///{database}")
    upload = store.upload(FILE_ID)
    store.close()
    assert upload is not None and upload.user_id == "alice"


def test_handler_survives_a_store_that_is_down_at_cold_start(callback: Callable[..., Any], database: Path) -> None:
    database.mkdir(parents=True)  # the database path is a directory: unusable
    main_handler = callback()  # the import must not touch the store
    down = main_handler(handler_event("apigw", load_event("vod_new_file_upload")), {})
    assert down["statusCode"] == 503 and response_json(down)["error"]["code"] == "store_unavailable"
    database.rmdir()
    up = main_handler(handler_event("apigw", load_event("vod_new_file_upload")), {})
    assert up["statusCode"] == 200 and response_json(up)["duplicate"] is False


def test_at_warning_the_log_still_shows_what_loses_events(
    callback: Callable[..., Any], database: Path, output: Output
) -> None:
    main_handler = callback(LOG_LEVEL="WARNING")
    event = load_event("vod_new_file_upload")
    output.skip()
    database.mkdir(parents=True)  # the store is down: 503, VOD retries (and gives up at last)
    assert main_handler(handler_event("apigw", event), {})["statusCode"] == 503
    database.rmdir()
    forged = http_event(path="/vod-events", body=vod_signed(event, "NotTheSignKey"))  # or a wrong SignKey
    assert main_handler(forged, {})["statusCode"] == 401
    assert main_handler(http_event(path="/vod-events", body="{"), {})["statusCode"] == 400  # its sender's problem
    assert main_handler(handler_event("apigw", event), {})["statusCode"] == 200
    lines = [(line["level"], line["event"], line["outcome"]) for line in output.lines()]
    assert lines == [("WARNING", "request", "store_unavailable"), ("WARNING", "request", "invalid_signature")]


def test_the_request_lines_tell_an_operator_which_event_whose_upload_and_how_its_task_stands(
    callback: Callable[..., Any], database: Path, output: Output
) -> None:
    main_handler = callback()
    upload, task = load_event("vod_new_file_upload"), load_event("vod_procedure_finish")
    database.mkdir(parents=True)  # the store is down: which event VOD delivers again, named as its retry will be
    assert main_handler(handler_event("apigw", upload), {})["statusCode"] == 503
    database.rmdir()
    for event in (upload, upload, task):
        assert main_handler(handler_event("apigw", event), {})["statusCode"] == 200
    down, new, again, finished = [line for line in output.lines() if line["event"] == "request"]
    assert (down["status"], down["dedupe_key"]) == (503, new["dedupe_key"])
    # The upload's sign request (whose own line names its user), and how the user was found; not its sourceContext
    assert (new["attribution"], new["sign_request_id"], new["duplicate"]) == (
        "sealed",
        "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        False,
    )
    assert (again["duplicate"], "attribution" in again) == (True, False)  # a redelivery changed nothing
    assert (finished["task_id"], finished["task_status"], finished["err_code"]) == (
        "1400329073-procedurev2-6a8d1e5f8c3b4a2e9d7f0c1b2a3e4d5ft0",
        "FINISH",
        0,
    )
    assert "u2:" not in output.seen


def test_a_hook_result_that_cannot_be_recorded_still_acknowledges_the_event(tmp_path: Path, output: Output) -> None:
    # GIVEN a hook that runs, then leaves the database locked (another writer holding it, say)
    database = tmp_path / "vod.sqlite3"
    store, held = open_store(f"sqlite:///{database}", timeout_seconds=1), list[sqlite3.Connection]()

    def hook(committed: Any) -> None:
        held.append(sqlite3.connect(database, isolation_level=None))
        held[0].execute("BEGIN EXCLUSIVE")

    settings = load_callback_settings(CALLBACK_ENV)
    endpoint = make_callback_endpoint(settings, lambda: store, now=lambda: NOW, after_commit=hook)
    event = http_event(path="/vod-events", body=body_of(signed(load_event("vod_new_file_upload"))))
    try:
        result = serve(event, {"request_id": "req-1"}, endpoint, settings.http)
    finally:
        for connection in held:
            connection.close()
    # THEN VOD's delivery is acknowledged (the event is committed: a 503 would only bring it again, a duplicate),
    # the log says the hook's result is not recorded, and the event is still owed its hook (listed for a rerun)
    assert result["statusCode"] == 200 and response_json(result)["duplicate"] is False
    [line] = [line for line in output.lines() if line["level"] == "ERROR"]
    assert (line["event"], line["event_type"], line["file_ids"]) == (
        "hook.result_not_recorded",
        "NewFileUpload",
        ["5285890784273533167"],
    )
    recorded = store.event(response_json(result)["dedupeKey"])
    assert recorded is not None and recorded.hook_status == "pending"
    store.close()


def test_handler_runs_the_configured_hook(callback: Callable[..., Any]) -> None:
    hook_target.CALLS.clear()
    main_handler = callback(AFTER_COMMIT_HOOK="tests.callback.hook_target:record")
    for _ in range(2):
        assert main_handler(handler_event("function_url", load_event("vod_new_file_upload")), {})["statusCode"] == 200
    [committed] = hook_target.CALLS
    assert committed.upload is not None and committed.upload.user_id == "alice"
    data = plain(committed)  # what a hook would put on a queue
    assert json.loads(json.dumps(data)) == data
    assert (data["event"]["event_type"], data["event"]["file_id"]) == ("NewFileUpload", committed.upload.file_id)
    assert (data["uploads"][0]["user_id"], data["uploads"][0]["conflicts"]) == ("alice", [])


def test_a_hook_reads_what_the_parser_does_not_in_the_events_payload(
    callback: Callable[..., Any], database: Path
) -> None:
    # An event type the bundle only keeps (an edit, a review, ...): the hook gets VOD's notification itself, when it
    # is delivered and when vod-uploads hooks --rerun runs it again (after a failure): the same, as stored
    hook_target.CALLS.clear()
    event = load_event("vod_edit_media_complete")
    again = {**event, "EditMediaCompleteEvent": {**event["EditMediaCompleteEvent"], "TaskId": "another-task"}}
    failing = callback(AFTER_COMMIT_HOOK="tests.callback.hook_target:fail")
    assert failing(handler_event("apigw", again), {})["statusCode"] == 200  # stored; its hook failed, owed a rerun
    delivery = handler_event("function_url", event)
    assert "Sign" in json.loads(delivery["body"])
    assert callback(AFTER_COMMIT_HOOK="tests.callback.hook_target:record")(delivery, {})["statusCode"] == 200
    store = open_store(f"sqlite:///{database}")
    [failed] = store.unfinished_hooks(received_before=time.time() + 1)
    assert rerun_hook(hook_target.record, store, failed) is None
    store.close()
    for committed, sent in zip(hook_target.CALLS, (event, again), strict=True):
        assert isinstance(committed.event, OtherEvent) and committed.event.event_type == "EditMediaComplete"
        assert committed.event.payload == {k: v for k, v in sent.items() if k not in ("Sign", "T", "EventHandle")}
        assert plain(committed)["event"]["payload"] == committed.event.payload


@pytest.mark.parametrize(
    ("hook", "error"),
    [
        ("exits", "SystemExit: the app's hook gave up"),
        ("cancelled", "CancelledError: "),  # a BaseException too
        ("async_callable", "HookNotRun: it returned a coroutine, whose body did not run: make it synchronous"),
        ("generator_callable", "HookNotRun: it returned a generator, whose body did not run: make it synchronous"),
        (
            "async_generator_callable",
            "HookNotRun: it returned an async generator, whose body did not run: make it synchronous",
        ),
    ],
)
def test_a_hook_that_exits_or_does_not_run_is_a_failed_hook_not_a_failed_delivery(
    callback: Callable[..., Any], database: Path, output: Output, hook: str, error: str
) -> None:
    main_handler = callback(AFTER_COMMIT_HOOK=f"tests.callback.hook_target:{hook}")
    calls = len(hook_target.CALLS)
    answer = main_handler(handler_event("function_url", load_event("vod_new_file_upload")), {})
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["ok"] is True
    assert [(line["event"], line.get("hook_failed")) for line in output.lines()] == [
        ("hook.failed", None),
        ("request", True),
    ]
    store = open_store(f"sqlite:///{database}")
    [event] = store.events_for(FILE_ID)
    store.close()
    assert (event.hook_status, event.hook_last_error) == ("failed", error)
    assert len(hook_target.CALLS) == calls  # none of them ran the hook's body


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (FileDeleted(("f1",)), {"event_type": "FileDeleted", "file_ids": ["f1"], "parts": None}),
        (
            FileDeleted(("f1",), {"f1": (DeletePart("TranscodeFiles", 100030),)}),
            {
                "event_type": "FileDeleted",
                "file_ids": ["f1"],
                "parts": {"f1": [{"type": "TranscodeFiles", "definition": 100030}]},
            },
        ),
        ([DeletePart(None, 1)], [{"type": None, "definition": 1}]),
    ],
)
def test_plain_turns_nested_records_into_objects(record: Any, expected: Any) -> None:
    assert plain(record) == expected


# --- settings -------------------------------------------------------------------------------------------


def test_store_settings_defaults() -> None:
    settings = load_store_settings({})
    assert (settings.database_url.reveal(), settings.timeout_seconds) == ("sqlite:///.local/vod.sqlite3", 3)
    callback = load_callback_settings(CALLBACK_ENV)
    assert (callback.after_commit_hook, callback.store) == (None, settings)


@pytest.mark.parametrize(
    "spec",
    [
        "tests.callback.no_such_module:fn",
        "tests.callback.hook_target:missing",
        "tests.callback.hook_target:not_callable",
        # calling them would only make a coroutine or a generator: the hook would never run, yet count as done
        "tests.callback.hook_target:asynchronous",
        "tests.callback.hook_target:generator",
        "tests.callback.hook_target:asynchronous_generator",
        "tests.callback.hook_target:asynchronous_partial",
        "tests.callback.hook_broken:on_upload",  # its module fails as it is imported: named, not a bare error
        "tests.callback.hook_exits:on_upload",  # its module calls sys.exit() as it is imported
    ],
)
def test_hooks_that_cannot_load_fail_the_cold_start(spec: str) -> None:
    with pytest.raises(ConfigError, match="AFTER_COMMIT_HOOK") as raised:
        load_hook(spec)
    shown = "".join(traceback.format_exception(raised.type, raised.value, raised.tb))
    assert "pw-of-the-hook" not in shown  # the import's error may quote the app's password: masked, not chained
    raised_by = {
        "tests.callback.hook_broken:on_upload": "RuntimeError",
        "tests.callback.hook_exits:on_upload": "SystemExit",
    }
    if spec in raised_by:
        assert f"{raised_by[spec]}: needs APP_DB: cannot open postgresql://audit:********@db/audit" in shown


def test_a_hook_failing_to_import_is_masked_before_it_is_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The URL's end falls past the 2,000 characters kept: cut first, its password would no longer look like one
    url = "postgresql://vod:Sup3rS3cretPassw0rd@db.internal:5432/vod"
    (tmp_path / "long_broken_hook.py").write_text(f"raise RuntimeError({'x' * 1907!r} + ' cannot reach {url}')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as raised:
        load_hook("long_broken_hook:on_upload")
    assert "Sup3rS" not in str(raised.value)


def test_keep_secret_takes_text_only() -> None:
    # bytes would make every later masking fail: refused as the hook's module is imported (its cold start)
    with pytest.raises(TypeError, match="keep_secret takes text, not bytes"):
        keep_secret(b"https://hooks.chat.example/services/T01/B02/wh-0452")  # type: ignore[arg-type]


def test_hook_loads_by_name() -> None:
    assert load_hook("tests.callback.hook_target:record") is hook_target.record
