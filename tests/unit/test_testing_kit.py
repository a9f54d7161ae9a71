"""The testing kit's builders make what SCF and VOD send: the product's own parsers take them as such."""

from __future__ import annotations

import base64
import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shared.errors import BadRequest
from shared.events import (
    FileDeleted,
    NewFileUpload,
    OtherEvent,
    ProcedureStateChanged,
    parse_event,
    verify_callback_sign,
)
from shared.http.triggers import request_from_event
from shared.ingest import ingest_event
from shared.logs import set_level
from shared.source_context import seal
from shared.store import open_store
from tests.conftest import CALLBACK_ENV, CALLBACK_SIGN_KEY, CONTEXT_KEY, JWT_SECRET, KEYS, SIGN_ENV
from vodtesting import FILE_ID, KINDS, dev_token, http_event, load_function, signed, vod_event
from vodtesting.ci import missing
from vodtesting.pgserver import DURABLE, bouncer_binary, find_bin_dir, launch


@pytest.mark.parametrize(
    ("kind", "fields", "where", "expected"),
    [
        ("NewFileUpload", {"FileId": "f-1"}, ("FileUploadEvent", "FileId"), "f-1"),
        ("NewFileUpload", {"FileId": "f-1"}, ("FileUploadEvent", "MediaBasicInfo", "Vid"), "f-1"),
        ("NewFileUpload", {"FileId": "f-1", "Vid": "live-1"}, ("FileUploadEvent", "MediaBasicInfo", "Vid"), "live-1"),
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
        (  # a partial delete (VOD's MediaDeleteItem): what was deleted of each file
            "FileDeleted",
            {"FileId": "a", "DeleteParts": [{"Type": "TranscodeFiles", "Definition": 100010}]},
            ("FileDeleteEvent", "FileDeleteResultInfo"),
            [{"FileId": "a", "DeleteParts": [{"Type": "TranscodeFiles", "Definition": 100010}]}],
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


@pytest.mark.parametrize(
    ("written", "meant"),
    [("NewFileUploaded", "NewFileUpload"), ("newfileupload", "NewFileUpload"), ("FileDelete", "FileDeleted")],
)
def test_a_slip_in_a_known_type_is_an_error_not_another_event(written: str, meant: str) -> None:
    with pytest.raises(TypeError, match=f"did you mean '{meant}'"):
        vod_event(written, FileId="f-1")


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("NewFileUpload", ("FileUploadEvent", "MediaBasicInfo", "MediaUrl")),
        ("ProcedureStateChanged", ("ProcedureStateChangeEvent", "FileUrl")),
    ],
)
def test_each_file_has_its_own_media_url(kind: str, url: tuple[str, ...]) -> None:
    def media_url(event: dict[str, Any]) -> Any:
        for key in url:
            event = event[key]
        return event

    urls = {media_url(vod_event(kind, FileId=file_id)) for file_id in ("f-1", "f-2", "f 3")}
    assert len(urls) == 3 and all(" " not in u for u in urls)
    assert media_url(vod_event(kind, FileId="f-1", **{url[-1]: "http://x/given.mp4"})) == "http://x/given.mp4"


def test_a_function_name_must_be_one_of_the_functions() -> None:
    with pytest.raises(
        ValueError, match="no function 'calback': one of callback, events_pull, sign, upload_page, uploads"
    ):
        load_function("calback", {})


@pytest.mark.parametrize(
    ("app_files", "hidden"),
    [
        ({"shared/__init__.py": "", "shared/config.py": "DEBUG = True\n"}, True),  # a package of its own
        ({"shared.py": ""}, True),  # a module
        ({"myapp/shared/__init__.py": ""}, False),  # inside the app's package: no clash
        ({}, False),
    ],
)
@pytest.mark.parametrize(
    "call",
    [
        "vodtesting.require_bundle_core()",
        "vodtesting.dev_token('ann', 's' * 32)",
        "vodtesting.load_function('calback', {})",
    ],
)
def test_an_apps_own_shared_that_hides_the_bundles_is_named_as_the_cause(
    tmp_path: Path, app_files: dict[str, str], hidden: bool, call: str
) -> None:
    # GIVEN an app whose folder is first on the path (python -c, python -m pytest: the working directory)
    for name, text in app_files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    # WHEN the kit is used there
    run = subprocess.run(
        [sys.executable, "-c", f"import vodtesting; {call}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # THEN an app's `shared` is named as what hides the bundle's core, before anything of it is imported
    said = f"the `shared` found first is not it ({tmp_path / 'shared'}"
    if hidden:
        assert run.returncode == 1 and said in run.stderr, run.stderr
        assert "ImportError" in run.stderr.splitlines()[-1]
    elif "load_function" not in call:  # the kit goes on
        assert run.returncode == 0, run.stderr
    else:  # ...to load_function's own error, for the misspelt name
        assert "no function 'calback'" in run.stderr.splitlines()[-1], run.stderr


def test_a_sample_video_needs_no_core_package(tmp_path: Path) -> None:
    """Bytes to upload: made without the core package or the COS SDK (an app's own `shared` may hide the first)."""
    code = (
        "import pathlib, sys, vodtesting; made = vodtesting.sample_video(pathlib.Path('clip.mp4'), 1000);"
        " print(made.stat().st_size, sorted(m for m in sys.modules if m.split('.')[0] in ('shared', 'qcloud_cos')))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert (run.returncode, run.stdout) == (0, "1000 []\n"), run.stderr


def test_each_function_logs_at_its_own_level(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # In SCF each function has a process, and a LOG_LEVEL, of its own; loaded side by side they must too.
    quiet = load_function("sign", {**SIGN_ENV, "LOG_LEVEL": "ERROR"})
    talkative = load_function(
        "uploads", {"DATABASE_URL": f"sqlite:///{tmp_path}/vod.sqlite3", "AUTH_JWT_SECRET": JWT_SECRET}
    )
    capsys.readouterr()
    quiet(http_event("POST", "/signature", body={}), {})  # a 401: an INFO line, below ERROR
    assert capsys.readouterr().out == ""
    talkative(http_event("GET", "/uploads"), {})
    assert '"event": "request"' in capsys.readouterr().out


def test_loading_a_function_leaves_the_tests_own_log_level_as_it_was() -> None:
    # GIVEN the test process logging at DEBUG
    before = set_level("DEBUG")
    try:
        # WHEN a function whose LOG_LEVEL is ERROR is loaded
        load_function("sign", {**SIGN_ENV, "LOG_LEVEL": "ERROR"})
        # THEN the process still logs at DEBUG: the function's level is its calls' alone
        assert set_level(before) == "DEBUG"
    finally:
        set_level(before)


def test_a_function_loads_with_os_environ_itself_as_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # (it was cleared before it was read: the function then found none of its settings)
    for name, value in SIGN_ENV.items():
        monkeypatch.setenv(name, value)
    sign = load_function("sign", os.environ)
    assert sign(http_event("POST", "/signature", body={}), {})["statusCode"] == 401  # no token: up and answering
    assert {name: os.environ[name] for name in SIGN_ENV} == SIGN_ENV


def test_an_environment_value_that_is_not_text_is_named() -> None:
    with pytest.raises(TypeError, match="'VOD_CLASS_ID': an environment holds text only"):
        load_function("sign", {**SIGN_ENV, "VOD_CLASS_ID": 5})  # type: ignore[dict-item]


@pytest.mark.parametrize("named", [None, "", " "], ids=["none", "blank", "space"])  # blank: a shell's default
def test_a_functions_store_is_the_tests_own_unless_it_names_one(
    vod_function: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named: str | None
) -> None:
    # GIVEN an app's tests run from its own directory, loading the callback and the uploads function with no
    # DATABASE_URL
    app = tmp_path / "app"
    app.mkdir()
    monkeypatch.chdir(app)
    store = {} if named is None else {"DATABASE_URL": named}
    callback = vod_function("callback", env={**CALLBACK_ENV, **store})
    uploads = vod_function("uploads", env={"AUTH_JWT_SECRET": JWT_SECRET, **store})
    # WHEN an event is delivered
    event = signed(
        vod_event("NewFileUpload", FileId="f-own", SourceContext=seal("ann", "r", CONTEXT_KEY)), CALLBACK_SIGN_KEY
    )
    assert callback(http_event("POST", "/vod-events", body=event), {})["statusCode"] == 200
    # THEN it is in the test's own database, which its functions share, not in the app's directory (where the
    # next test, and run, would find it a duplicate)
    token = dev_token("ann", JWT_SECRET)
    found = uploads(http_event("GET", "/uploads/f-own", headers={"Authorization": f"Bearer {token}"}), {})
    assert found["statusCode"] == 200 and not (app / ".local").exists()


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        (
            {"FileIdSet": "f-1"},
            "FileDeleted's FileIdSet is a list of FileIds (non-empty text), not 'f-1'",
        ),  # "f", "-", "1"
        ({"FileIdSet": []}, "not []"),
        ({"FileIdSet": ["f-1", 2]}, "not ['f-1', 2]"),
        ({"FileId": ""}, "not ['']"),
        ({"FileId": "a", "FileIdSet": ["b"]}, "FileId (one file) or FileIdSet (a list of them), not both"),  # "a" lost
        (
            {"DeleteParts": [], "FileDeleteResultInfo": [{"FileId": "a", "DeleteParts": []}]},
            "DeleteParts (of each file) or FileDeleteResultInfo (each its own), not both",
        ),
    ],
)
def test_a_delete_of_files_that_are_not_a_list_of_file_ids_is_an_error(fields: dict[str, Any], said: str) -> None:
    with pytest.raises(TypeError, match=re.escape(said)):
        vod_event("FileDeleted", **fields)


def test_a_function_urls_header_names_are_lowercase_as_it_sends_them() -> None:
    event = http_event("GET", "/", headers={"Authorization": "Bearer t", "X-Thing": "v"}, shape="function_url")
    assert {"authorization": "Bearer t", "x-thing": "v"}.items() <= event["headers"].items()
    assert all(name == name.lower() for name in event["headers"])


def test_signed_is_what_the_callback_verifies() -> None:
    event = signed(vod_event("NewFileUpload"), "Key123", ttl=300, now=1_000)
    assert event["T"] == 1_300
    verify_callback_sign(event, ("Key123",), now=1_000, max_ahead=900)  # raises if not


@pytest.mark.parametrize("shape", ["apigw", "function_url"])
@pytest.mark.parametrize(
    ("body", "headers", "expected_body", "content_type"),
    [
        ({"a": 1}, None, b'{"a": 1}', "application/json"),
        ("plain", {"Content-Type": "text/plain"}, b"plain", "text/plain"),
        ({"a": 1}, {"content-type": "text/plain"}, b'{"a": 1}', "text/plain"),  # the caller's type, in any case
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


@pytest.mark.parametrize("shape", ["apigw", "function_url"])
def test_a_query_goes_apart_from_the_path_as_a_trigger_sends_it(shape: str) -> None:
    request = request_from_event(http_event("GET", "/uploads", query={"limit": "5"}, shape=shape), "r-1")
    assert (request.path, request.query) == ("/uploads", {"limit": "5"})
    with pytest.raises(ValueError, match="a path, not a URL: give its query as query="):
        http_event("GET", "/uploads?limit=5", shape=shape)  # else the handler takes "/uploads?limit=5" for its path


def test_an_event_as_the_api_gateway_sends_it_is_read_as_the_request() -> None:
    # As in Tencent's own scf-go-lib (events/apigw_test.go): lowercase headers, a repeated key as a list, a key
    # without a value as true, and requestContext's httpMethod the one the API was configured with
    event = {
        "httpMethod": "POST",
        "path": "/signature",
        "headers": {"content-type": "application/json"},
        "queryString": {"a": ["b", "c"], "x": "y", "i": True},
        "requestContext": {"httpMethod": "ANY", "path": "/", "serviceId": "service-x", "stage": "release"},
        "body": "{}",
    }
    request = request_from_event(event, "ctx")
    assert (request.method, dict(request.query)) == ("POST", {"a": "b", "x": "y", "i": ""})
    with pytest.raises(BadRequest, match="no httpMethod"):  # never the configured one in the request's place
        request_from_event({k: v for k, v in event.items() if k != "httpMethod"}, "ctx")


def test_a_body_marked_base64_is_left_as_it_is() -> None:
    event = http_event(body="!!!", base64=True)
    assert event["isBase64Encoded"] is True and event["body"] == "!!!"
    assert base64.b64encode(b"\xff").decode() in str(http_event(body=b"\xff"))


def test_calls_on_two_threads_each_log_at_their_functions_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an upload to wait on, and the uploads function loaded to log errors only
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    upload = vod_event("NewFileUpload", FileId="f1", SourceContext=seal("ann", "r", CONTEXT_KEY))
    ingest_event(store, upload, received_at=1.0, keys=KEYS)
    store.close()
    quiet = load_function("uploads", {"DATABASE_URL": url, "AUTH_JWT_SECRET": JWT_SECRET, "LOG_LEVEL": "ERROR"})
    talkative = load_function("sign", SIGN_ENV)
    waiting = http_event(
        "GET", "/uploads/f1", headers={"Authorization": f"Bearer {dev_token('ann', JWT_SECRET)}"}, query={"wait": "1"}
    )
    capsys.readouterr()
    # WHEN two of its calls overlap (each waits a second for a change, the second begun half-way)
    first = threading.Thread(target=quiet, args=(waiting, {}))
    first.start()
    time.sleep(0.5)
    quiet(waiting, {})
    first.join(10)
    # THEN neither wrote its INFO line, and the level outside them is as it was
    assert capsys.readouterr().out == ""
    talkative(http_event("POST", "/signature", body={}), {})  # a 401: an INFO line
    assert capsys.readouterr().out.count('"event": "request"') == 1


@pytest.mark.parametrize(("version", "icu"), [("14.9", False), ("16.2 (Debian 16.2-1)", True)])
def test_a_server_that_fails_to_start_leaves_nothing_and_icu_is_asked_of_versions_that_have_it(
    version: str, icu: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An initdb that refuses what it is given (an older one, say), in a directory the postgres user may use.
    fake = Path(tempfile.mkdtemp(prefix="fake-initdb-"))
    try:
        fake.chmod(0o777)
        # The server's temp dir made in one of this test's own (another suite's servers come and go in the system's)
        (fake / "tmp").mkdir(mode=0o777)
        monkeypatch.setattr(tempfile, "tempdir", str(fake / "tmp"))
        initdb = fake / "initdb"
        initdb.write_text(
            '#!/bin/sh\n[ "$1" = --version ] && echo "initdb (PostgreSQL) ' + version + '" && exit 0\n'
            f'echo "$@" > {fake}/args; echo "initdb: unrecognized option" >&2; exit 1\n'
        )
        initdb.chmod(0o755)
        with pytest.raises(RuntimeError, match="unrecognized option"):
            launch(fake)
        assert glob.glob(f"{fake}/tmp/vod-pg-*") == []  # its temp dir is gone
        assert ("--locale-provider=icu" in (fake / "args").read_text()) is icu
    finally:
        shutil.rmtree(fake)


def test_a_server_launched_durable_waits_for_its_commits_on_disk() -> None:
    # The benchmarks' baseline is a durable upsert; the tests' own server trades that for speed.
    import psycopg2

    bin_dir = find_bin_dir()
    if bin_dir is None:
        missing("PostgreSQL binaries (initdb)", "to launch a server")
    server = launch(bin_dir, DURABLE)
    try:
        with contextlib.closing(psycopg2.connect(server.url())) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(DURABLE),))
            shown = dict(cursor.fetchall())
        assert shown == DURABLE
    finally:
        server.destroy()


KIT_CONFTEST = "from vodtesting.pgserver import pgbouncer, postgres_server\n"
KIT_TEST = """
import os, pathlib, time

def test_waits(pgbouncer):
    pathlib.Path(os.environ["STARTED"]).write_text(f"{pgbouncer.server.base} {pgbouncer.process.pid}")
    time.sleep(120)
"""


def test_a_run_ended_by_sigterm_leaves_no_server_behind(tmp_path: Path) -> None:
    """A CI job cancelled (SIGTERM) mid-test: the kit's PostgreSQL server and PgBouncer are stopped and their
    temp dir removed, as after Ctrl-C (pg_ctl detaches the server: only the fixtures' teardown stops it)."""
    if find_bin_dir() is None:
        missing("PostgreSQL binaries (initdb)", "to launch a server")
    bouncer_binary()  # (without it, the run below would skip its test, and this one wait for it in vain)
    (tmp_path / "conftest.py").write_text(KIT_CONFTEST)
    (tmp_path / "test_app.py").write_text(KIT_TEST)
    started = tmp_path / "started"
    env = {**os.environ, "STARTED": str(started)}
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), run.communicate(timeout=30)[0] if run.poll() is not None else "not started"
        base, bouncer_pid = started.read_text().split()
        run.send_signal(signal.SIGTERM)
        output = run.communicate(timeout=60)[0]
    finally:
        if run.poll() is None:
            run.kill()
    left = Path(base).exists()
    if left:  # what the run left, stopped here, so that a failure leaves nothing running either
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(bouncer_pid), signal.SIGTERM)
        subprocess.run(
            ["runuser", "-u", "postgres", "--"] * (os.geteuid() == 0)
            + [str((find_bin_dir() or Path()) / "pg_ctl"), "-D", f"{base}/data", "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)
    assert not left, output
    with pytest.raises(ProcessLookupError):  # pgbouncer, a child of that run, was stopped
        os.kill(int(bouncer_pid), 0)


def _vod_fields(model: str) -> list[str]:
    """The fields of one of VOD's API structures, as the SDK's model names them."""
    from tencentcloud.vod.v20180717 import models

    return [name.removeprefix("_") for name in vars(getattr(models, model)())]


@pytest.mark.parametrize(
    ("kind", "where", "fields"),
    [
        # A task event's body is VOD's ProcedureTask; an upload's MetaData its MediaMetaData
        ("ProcedureStateChanged", ("ProcedureStateChangeEvent",), _vod_fields("ProcedureTask")),
        ("NewFileUpload", ("FileUploadEvent", "MetaData"), _vod_fields("MediaMetaData")),
    ],
)
def test_every_field_vod_sends_can_be_given(kind: str, where: tuple[str, ...], fields: list[str]) -> None:
    assert len(fields) > 10
    for name in fields:
        body = vod_event(kind, **{name: "given"})
        for key in where:
            body = body[key]
        assert body[name] == "given", name
