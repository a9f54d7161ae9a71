"""vod-uploads: readable records, JSON for machines, clear errors without tracebacks."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from shared.config import CALLBACK_MAX_BODY_BYTES, DEFAULT_DATABASE_TIMEOUT
from shared.hooks import INTERRUPTED
from shared.ingest import ingest_event
from shared.source_context import seal
from shared.store import EventStore, open_store
from shared.store.base import MIGRATIONS, SCHEMA_VERSION
from tests.callback import hook_target
from tests.conftest import CALLBACK_SIGN_KEY, CONTEXT_KEY, KEYS, SECRET_KEY, command, run_command
from tests.scf import largest_task_event, load_event
from tests.store.test_erasure import deleted_in_bulk
from vodadmin.uploads import main as uploads_main
from vodtesting import vod_event
from vodtesting.pgserver import database_name

ROOT = Path(__file__).resolve().parents[2]
FILE_ID = "5285890784273533167"


def uploads(database_url: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return run_command("vod-uploads", *args, env={"DATABASE_URL": database_url}, cwd=cwd)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    for i, name in enumerate(["vod_new_file_upload", "vod_procedure_finish", "vod_transcode_complete"]):
        with contextlib.suppress(hook_target.Killed):  # its hook owed ("pending"), its result recorded below
            ingest_event(
                store, load_event(name), received_at=1_700_000_000.0 + i, keys=KEYS, after_commit=hook_target.killed
            )
    store.record_hook_result(store.events_for(FILE_ID)[0].dedupe_key, "ValueError: index down")
    store.close()
    return url


def test_show_is_readable(database_url: str) -> None:
    shown = uploads(database_url, "show", FILE_ID)
    assert shown.returncode == 0, shown.stderr
    for expected in [
        "status             finished",
        "user               alice",
        "holiday (mp4)",
        "v.f100030.mp4",
        "10_5000.jpg",
        "TranscodeComplete",
        "2023-11-14 22:13:20Z",
        "hook failed 1x: ValueError: index down",
    ]:
        assert expected in shown.stdout


def test_show_says_when_the_task_flow_has_not_reported_yet(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    ingest_event(store, load_event("vod_new_file_upload"), received_at=1_700_000_000.0, keys=KEYS)
    store.close()
    shown = uploads(url, "show", FILE_ID)
    assert "status             uploaded (its task flow has not reported a task event yet)" in shown.stdout


def test_the_store_is_waited_for_as_long_as_database_timeout_says(database_url: str) -> None:
    # GIVEN another writer holding the database past the default wait, and DATABASE_TIMEOUT far above it
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")  # WAL readers wait only for a database held so
    holder.execute("BEGIN EXCLUSIVE")
    env = {**os.environ, "DATABASE_URL": database_url, "DATABASE_TIMEOUT": "60"}
    with subprocess.Popen(
        [command("vod-uploads"), "list", "--user", "alice"], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True
    ) as listing:
        time.sleep(DEFAULT_DATABASE_TIMEOUT + 1.5)
        holder.execute("COMMIT")
        holder.close()  # the exclusive hold ends with the connection
        # THEN the command waited for it (every statement, the schema check included), and lists
        assert listing.wait(timeout=60) == 0 and FILE_ID in listing.stdout.read()  # type: ignore[union-attr]


@pytest.mark.parametrize("command", [("show", "e-1\x1b[2J"), ("list", "--user", "alice"), ("hooks",)])
def test_forged_text_cannot_drive_the_operators_terminal(tmp_path: Path, command: tuple[str, ...]) -> None:
    # GIVEN an event whose text (anyone who saw one delivery's Sign can forge a body) holds terminal controls
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    controls = "\x1b[2J\x1b[31mFAKE\x1b]0;title\x07\x9b1m\x7f\nfake line \u202eexe.4pm\u2066\u2029"
    forged = vod_event(
        "NewFileUpload", FileId="e-1\x1b[2J", Name=controls, SourceContext=seal("alice", "r", CONTEXT_KEY)
    )
    with contextlib.suppress(hook_target.Killed):
        ingest_event(store, forged, received_at=1_700_000_000.0, keys=KEYS, after_commit=hook_target.killed)
    store.record_hook_result(store.events_for("e-1\x1b[2J")[0].dedupe_key, controls)
    store.close()
    # THEN vod-uploads shows them as escapes, on the lines they belong to
    shown = uploads(url, *command, "--older-than", "0") if command == ("hooks",) else uploads(url, *command)
    assert shown.returncode in (0, 1) and "\\x1b[2J" in shown.stdout, shown.stderr
    assert not set(shown.stdout) & {"\x1b", "\x07", "\x9b", "\x7f", "\u202e", "\u2066", "\u2029"}
    assert "\nfake line" not in shown.stdout and "\\u202eexe.4pm" in shown.stdout
    if command[0] == "list":  # and its columns are measured as shown: the last one starts where its header does
        header, row = shown.stdout.splitlines()
        assert row.index("http://") == header.index("MEDIA URL")


def test_the_list_lines_up_names_in_chinese(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    for file_id, name in (("c1", "假期视频"), ("c2", "holiday"), ("c3", "e\u0301te\u0301"), ("c4", "ＶＯＤ")):
        event = vod_event("NewFileUpload", FileId=file_id, Name=name, SourceContext=seal("ann", "r", CONTEXT_KEY))
        ingest_event(store, event, received_at=1_700_000_000.0, keys=KEYS)
    store.close()
    header, *rows = uploads(url, "list", "--user", "ann").stdout.splitlines()
    # wide (W), fullwidth (F), combining
    wide = {row: sum(1 for c in row[: row.index("http://")] if unicodedata.east_asian_width(c) in "WF") for row in rows}
    combining = {row: sum(1 for c in row[: row.index("http://")] if unicodedata.combining(c)) for row in rows}
    # the MEDIA URL column starts, on screen, where its header does: a wide character takes two columns, a mark none
    assert {row.index("http://") + wide[row] - combining[row] for row in rows} == {header.index("MEDIA URL")}


@pytest.mark.parametrize("command", [("show", "e-1", "--json"), ("list", "--user", "alice", "--json")])
def test_forged_text_cannot_drive_the_operators_terminal_in_json_either(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    # JSON escapes C0 itself, not DEL nor C1: U+009B is ESC [ to a UTF-8 terminal (xterm), and `show --json` is
    # what the README has an operator run to answer an access request
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    name = "\x9b2J\x9b31mFAKE\x7f\x1b[0m\u202eexe.4pm"
    ingest_event(
        store,
        vod_event("NewFileUpload", FileId="e-1", Name=name, SourceContext=seal("alice", "r", CONTEXT_KEY)),
        received_at=1_700_000_000.0,
        keys=KEYS,
    )
    store.close()
    shown = uploads(url, *command)
    assert shown.returncode == 0, shown.stderr
    assert not {c for c in shown.stdout if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0 or c == "\u202e"}
    uploads_named = [shown_upload["name"] for shown_upload in _uploads_in(json.loads(shown.stdout))]
    assert uploads_named == [name]  # the same text, read back


def _uploads_in(shown: dict[str, Any]) -> list[dict[str, Any]]:
    return [shown["upload"]] if "upload" in shown else list(shown["uploads"])


def test_list_says_which_media_vod_deleted(tmp_path: Path) -> None:
    # A user reports a broken link: the URL listed answers 404, since VOD deleted the media it names
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    for file_id in ("kept", "gone"):
        event = vod_event("NewFileUpload", FileId=file_id, SourceContext=seal("gina", "r", CONTEXT_KEY))
        ingest_event(store, event, received_at=1_700_000_000.0, keys=KEYS)
    info = [{"FileId": "gone", "DeleteParts": [{"Type": "OriginalFiles"}]}]
    ingest_event(
        store, vod_event("FileDeleted", FileId="gone", FileDeleteResultInfo=info), received_at=1.7e9 + 1, keys=KEYS
    )
    store.close()
    rows = {line.split()[0]: line for line in uploads(url, "list", "--user", "gina").stdout.splitlines()[1:]}
    assert rows["gone"].endswith("gone/sample.mp4 (deleted)") and not rows["kept"].endswith("(deleted)")


@pytest.mark.parametrize(
    ("stored", "asked", "said"),
    [
        ("Jos\u00e9", "Jose\u0301", "'Jos\\xe9', the same letters composed otherwise (NFC), has some"),
        ("Jose\u0301", "Jos\u00e9", "'Jose\\u0301', the same letters composed otherwise (NFD), has some"),
    ],
    ids=["asked-NFD", "asked-NFC"],
)
@pytest.mark.parametrize("args", [("list", "--user"), ("erase", "--user")])
def test_a_user_id_composed_otherwise_is_named_when_nothing_is_found(
    tmp_path: Path, args: tuple[str, str], stored: str, asked: str, said: str
) -> None:
    # An erasure request pasted with "é" decomposed (NFD) finds nothing: ids match exactly, as the functions
    # compare them; the id that has uploads is named, its letters escaped, since it looks the same
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    event = vod_event("NewFileUpload", FileId="f-1", SourceContext=seal(stored, "r", CONTEXT_KEY))
    ingest_event(store, event, received_at=1_700_000_000.0, keys=KEYS)
    store.close()
    found = uploads(url, *args, asked)
    assert "no uploads recorded for user" in found.stdout + found.stderr
    assert said in found.stdout + found.stderr


@pytest.mark.parametrize("yes", [(), ("--yes",)], ids=["listed", "erased"])
def test_erasing_a_user_whose_id_has_files_in_both_compositions_names_the_other(
    tmp_path: Path, yes: tuple[str, ...]
) -> None:
    # One person to the eye, two ids to the functions: the erasure takes the one asked for and names the other
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    for file_id, user in (("f-nfc", "Jos\u00e9"), ("f-nfd", "Jose\u0301")):
        event = vod_event("NewFileUpload", FileId=file_id, SourceContext=seal(user, "r", CONTEXT_KEY))
        ingest_event(store, event, received_at=1_700_000_000.0, keys=KEYS)
    store.close()
    erased = uploads(url, "erase", "--user", "Jos\u00e9", *yes)
    assert erased.returncode == 0, erased.stderr
    assert "'Jose\\u0301', the same letters composed otherwise (NFD), has some too" in erased.stderr
    assert "f-nfc" in erased.stdout and "f-nfd" not in erased.stdout
    again = uploads(url, "erase", "--user", "Jos\u00e9", *yes)  # after an erasure: none left (else still one)
    assert again.returncode == (1 if yes else 0)
    if yes:
        assert "(none, or all erased already): nothing to erase; 'Jose\\u0301'" in again.stderr


def test_an_erasure_goes_on_to_its_end_when_its_output_stops(tmp_path: Path) -> None:
    # GIVEN a user with more files than one erasing transaction takes
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    for i in range(250):
        event = vod_event("NewFileUpload", FileId=f"f-{i}", SourceContext=seal("bob", "r", CONTEXT_KEY))
        ingest_event(store, event, received_at=1_700_000_000.0 + i, keys=KEYS)
    store.close()
    # WHEN its output is read for one line only (`| head -1`)
    env = {**os.environ, "DATABASE_URL": url}
    with subprocess.Popen(
        [command("vod-uploads"), "erase", "--user", "bob", "--yes"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as erasing:
        assert erasing.stdout is not None and erasing.stdout.readline().startswith("erased f-")
        erasing.stdout.close()
        said = erasing.stderr.read() if erasing.stderr else ""
        status = erasing.wait(timeout=60)
    # THEN every file is erased all the same, and it says its output stopped
    assert status == 0 and "the erasure went on: 250 file(s) erased" in said, said
    assert "no uploads recorded for user 'bob'" in uploads(url, "list", "--user", "bob").stdout


def test_show_json(database_url: str) -> None:
    record = json.loads(uploads(database_url, "show", FILE_ID, "--json").stdout)
    assert record["upload"]["user_id"] == "alice" and record["upload"]["status"] == "finished"
    assert record["tasks"][0]["results"][0]["urls"][0].endswith("/v.f100030.mp4")
    assert [e["event_type"] for e in record["events"]] == [
        "NewFileUpload",
        "ProcedureStateChanged",
        "TranscodeComplete",
    ]
    assert record["events"][0]["hook_failures"] == 1
    # and each event as VOD sent it (an access request's answer: what the record does not keep too)
    sent = record["events"][0]["payload"]
    assert sent["EventType"] == "NewFileUpload" and sent["FileUploadEvent"]["FileId"] == FILE_ID


def test_show_json_is_json_dumps_indented(database_url: str) -> None:
    # Written an event at a time, as one json.dumps(indent=2) of it all would be
    shown = uploads(database_url, "show", FILE_ID, "--json").stdout
    assert shown == json.dumps(json.loads(shown), indent=2, ensure_ascii=False) + "\n"


def test_show_json_holds_one_event_at_a_time(tmp_path: Path) -> None:
    # GIVEN a file with several of the largest task events (a snapshot every second, ~6 MB of JSON each)
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    ingest_event(store, vod_event("NewFileUpload", FileId="f-big"), received_at=1.0, keys=KEYS)
    tasks = [f"t-{n}" for n in range(4)]
    for at, task in enumerate(tasks, start=2):
        ingest_event(store, largest_task_event(CALLBACK_MAX_BODY_BYTES, "f-big", task), received_at=at, keys=KEYS)
    store.close()
    # WHEN an operator shows it as JSON (an access request's answer), its peak memory measured
    measured = (
        "import sys\nfrom vodadmin.uploads import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
        "    peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')][0].split()[1]\n"
        "    print(peak, file=sys.stderr)"
    )
    with (tmp_path / "shown.json").open("w") as out:
        proc = subprocess.run(
            [sys.executable, "-c", measured, "show", "f-big", "--json"],
            env={**os.environ, "DATABASE_URL": url},
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=120,
        )
    # THEN every event is there, and what it held at once is about one event's, not all of them
    shown = json.loads((tmp_path / "shown.json").read_text())
    assert [e["payload"]["ProcedureStateChangeEvent"].get("TaskId") for e in shown["events"][1:]] == tasks
    peak_mib = int(proc.stderr.split()[-1]) / 1024
    assert peak_mib < 320, peak_mib  # all at once: ~800


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["list", "--user", "alice"], f"{FILE_ID}  finished  holiday"),
        (["list", "--user", "bob"], "no uploads recorded for user 'bob'"),
    ],
)
def test_list(database_url: str, args: list[str], expected: str) -> None:
    listed = uploads(database_url, *args)
    assert listed.returncode == 0 and expected in listed.stdout


def test_list_json_oldest_first(database_url: str) -> None:
    # Two later uploads, one whose id sorts before the first's and one after: only arrival order fits.
    store = open_store(database_url)
    for file_id, at in (("5285890784273533100", 30.0), ("5285890784273533900", 40.0)):
        later = load_event("vod_new_file_upload")
        later["FileUploadEvent"]["FileId"] = file_id
        ingest_event(store, later, received_at=1_700_000_000.0 + at, keys=KEYS)
    store.close()
    listed = json.loads(uploads(database_url, "list", "--user", "alice", "--json").stdout)
    assert [u["file_id"] for u in listed["uploads"]] == [FILE_ID, "5285890784273533100", "5285890784273533900"]


@pytest.mark.parametrize(
    ("url", "args", "status", "message"),
    [
        (None, ["show", "no-such-file"], 1, "no upload with file id 'no-such-file' has been recorded"),
        ("sqlite:///{tmp}/nothing-here.sqlite3", ["show", FILE_ID], 2, "no database at"),
        ("mysql://root:hunter2@db/vod", ["show", FILE_ID], 2, "DATABASE_URL: must start with sqlite:///"),
        ("postgresql://nobody@/vod?host={tmp}&connect_timeout=2", ["show", FILE_ID], 2, "the store is unavailable"),
        # a negative age would take hooks that may still be running
        (None, ["hooks", "--older-than", "-60"], 2, "not a number of seconds up to 10 digits: '-60'"),
        (None, ["hooks", "--older-than", "9" * 400], 2, "not a number of seconds up to 10 digits"),
        (None, ["hooks", "--older-than", "1" * 11], 2, "not a number of seconds up to 10 digits"),
        (None, ["hooks", "--older-than", "\u00b2"], 2, "not a number of seconds up to 10 digits"),  # a digit to isdigit
        (None, ["hooks", "--older-than", "\u0669\u0660\u0660"], 2, "not a number of seconds up to 10 digits"),
        (None, ["hooks", "--owed-since", "yesterday"], 2, "not a time such as 2026-12-01T08:30:00Z"),
        # a time with no zone would be read in one the operator did not mean
        (None, ["hooks", "--owed-since", "2026-12-01T08:30:00"], 2, "not a time such as 2026-12-01T08:30:00Z"),
        (None, ["hooks", "--owed-since", "2026-02-30"], 2, "not a time such as 2026-12-01T08:30:00Z"),
        (None, ["hooks", "--owed-since", "9999-12-31T23:59:59Z"], 2, "in the future"),
        (None, ["hooks", "--yes"], 2, "--yes goes with --owed-since"),
    ],
)
def test_clear_errors(
    database_url: str, tmp_path: Path, url: str | None, args: list[str], status: int, message: str
) -> None:
    result = uploads((url or database_url).format(tmp=tmp_path), *args)
    assert (result.returncode, result.stdout) == (status, "")
    assert message in result.stderr and "Traceback" not in result.stderr and "hunter2" not in result.stderr


def test_a_database_with_an_empty_schema_version_table_is_no_store_to_make(tmp_path: Path) -> None:
    # GIVEN a database whose schema_version table (another program's, say) is empty
    database = tmp_path / "other.sqlite3"
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
        db.commit()
    # THEN a rerun, which could write, says it is no event store, and makes none there
    rerun = uploads(f"sqlite:///{database}", "hooks", "--rerun")
    assert rerun.returncode == 2 and "no event store in that database" in rerun.stderr, rerun.stderr
    with contextlib.closing(sqlite3.connect(database)) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'events'").fetchall() == []


@pytest.mark.parametrize(
    ("version", "said"),
    [
        (1, "the functions upgrade it when they next store an event"),  # deployed, no event stored since
        (99, "use the vod-uploads of the release deployed"),
    ],
)
def test_a_schema_it_does_not_read_is_named(tmp_path: Path, version: int, said: str) -> None:
    path = tmp_path / "vod.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION)")
        conn.execute("INSERT INTO schema_version VALUES (?, 0)", (version,))
    for args in (["show", FILE_ID], ["list", "--user", "ann"], ["hooks"]):
        result = uploads(f"sqlite:///{path}", *args)
        assert result.returncode == 2 and f"the database's schema is version {version}" in result.stderr
        assert said in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["hooks", "--rerun"], 0, "no hook failed or left pending"),
        (["erase", "--user", "ann", "--yes"], 1, "no uploads recorded for user 'ann'"),
    ],
)
def test_a_command_that_may_write_upgrades_an_older_schema_as_the_functions_do(
    tmp_path: Path, args: list[str], code: int, said: str
) -> None:
    # GIVEN a database the functions made at schema version 1 (deployed since, no event stored yet)
    path = tmp_path / "vod.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
        for statement in MIGRATIONS[0][1]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (1, 0)")
    # WHEN a command that may write runs THEN it brings the schema up to date, and does its work
    env = {"DATABASE_URL": f"sqlite:///{path}", "AFTER_COMMIT_HOOK": "tests.callback.hook_target:record"}
    done = run_command("vod-uploads", *args, env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert done.returncode == code and said in done.stdout + done.stderr, done.stderr
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT max(version) FROM schema_version").fetchone() == (SCHEMA_VERSION,)


@pytest.mark.parametrize("file_id", ["5285890784273533168", "5285890784273533999"])  # an input, the output
def test_show_finds_an_edit_under_every_file_it_names(database_url: str, file_id: str) -> None:
    store = open_store(database_url)
    ingest_event(store, load_event("vod_edit_media_complete"), received_at=1_700_000_010.0, keys=KEYS)
    store.close()
    record = json.loads(uploads(database_url, "show", file_id, "--json").stdout)
    assert [e["event_type"] for e in record["events"]] == ["EditMediaComplete"]
    assert record["upload"]["status"] == "pending" and record["upload"]["conflicts"] == []


def test_show_json_lists_a_conflict(database_url: str) -> None:
    store = open_store(database_url)
    forged = load_event("vod_new_file_upload")
    forged["FileUploadEvent"]["MediaBasicInfo"]["MediaUrl"] = "http://evil.example/x.mp4"
    ingest_event(store, forged, received_at=1_700_000_020.0, keys=KEYS)
    store.close()
    upload = json.loads(uploads(database_url, "show", FILE_ID, "--json").stdout)["upload"]
    assert (upload["status"], upload["user_id"], upload["attribution"]) == ("conflict", None, "conflict")
    assert upload["conflicts"][0]["field"] == "media_url"


def test_show_says_a_user_no_seal_proves_as_a_dash(tmp_path: Path) -> None:
    # GIVEN a file's only upload events: one sealed for carol, one with a seal none of the keys opens (for ann)
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    for at, context in ((1.0, seal("ann", "r1", "k" * 32)), (2.0, seal("carol", "r2", CONTEXT_KEY))):
        ingest_event(
            store, vod_event("NewFileUpload", FileId=FILE_ID, SourceContext=context), received_at=at, keys=KEYS
        )
    store.close()
    # THEN the conflict's values are carol and no one proven: "-", as every row says what is not known
    shown = uploads(url, "show", FILE_ID).stdout
    [line] = [line for line in shown.splitlines() if line.startswith("conflict: user_id")]
    assert sorted(line.split(None, 2)[2].split(" | ")) == ["-", "carol"]


@pytest.mark.parametrize("args", [("show", "ab\udcff"), ("list", "--user", "\udcff")], ids=["show", "list"])
def test_an_argument_that_is_not_utf8_is_a_usage_error(database_url: str, args: tuple[str, ...]) -> None:
    # (bytes that are not UTF-8, as a shell passes them: Python's argv holds them as lone surrogates)
    result = uploads(database_url, *args)
    assert result.returncode == 2 and "not UTF-8 text" in result.stderr and "Traceback" not in result.stderr


def test_it_only_reads_so_a_read_only_role_is_enough(tmp_path: Path) -> None:
    # An empty database (not the callback's): an error, and still empty afterwards, no schema made in it.
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    result = uploads(f"sqlite:///{empty}", "list", "--user", "ann")
    assert result.returncode == 2 and "the store is unavailable" in result.stderr and "Traceback" not in result.stderr
    assert empty.stat().st_size == 0


@pytest.mark.postgres
def test_a_readers_role_reads_and_what_writes_asks_for_the_functions_role(postgres_server: Any) -> None:
    # GIVEN a store and a role that may only read it, as README's PostgreSQL section grants the uploads function
    url: str = postgres_server.create_database()
    reader = url.replace("postgresql://postgres@", "postgresql://vod_cli_reader@")
    postgres_server.execute("CREATE ROLE vod_cli_reader LOGIN")
    try:
        store = open_store(url)
        event = vod_event("NewFileUpload", FileId=FILE_ID, SourceContext=seal("ann", "r", CONTEXT_KEY))
        key = ingest_event(store, event, received_at=1.0, keys=KEYS, after_commit=hook_target.fail).dedupe_key
        store.close()
        for sql in (
            "GRANT USAGE ON SCHEMA public TO vod_cli_reader",
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO vod_cli_reader",
        ):
            postgres_server.execute(sql, database_name(url))
        # WHEN vod-uploads reads, and writes, with it
        reads = [uploads(reader, *a) for a in (["list", "--user", "ann"], ["show", FILE_ID], ["hooks"])]
        writes = [uploads(reader, *a) for a in (["hooks", "--give-up", key], ["erase", FILE_ID, "--yes"])]
    finally:
        postgres_server.drop_database(url)
        postgres_server.execute("DROP ROLE vod_cli_reader")
    # THEN it reads (a writer would make the schema first, which this role may not), and what writes says what it needs
    assert [r.returncode for r in reads] == [0, 0, 0], [r.stderr for r in reads]
    assert key in reads[2].stdout
    for written in writes:
        assert written.returncode == 2 and "this command writes, and DATABASE_URL may not" in written.stderr
        assert "use the functions' one" in written.stderr and "Traceback" not in written.stderr


def rerun_env(url: str, hook: str, calls: Path) -> dict[str, str]:
    """vod-uploads' settings for running `hook` of tests.callback.hook_target, which writes to `calls`."""
    return {
        "DATABASE_URL": url,
        "AFTER_COMMIT_HOOK": f"tests.callback.hook_target:{hook}",
        "HOOK_TARGET_FILE": str(calls),
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def unfinished(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A store with a hook done, one failed, one cut short long ago and one pending now (maybe running)."""
    url = f"sqlite:///{tmp_path}/hooks.sqlite3"
    store = open_store(url)
    keys: dict[str, str] = {}
    for name, hook, at in [
        ("done", hook_target.record, 1_700_000_000.0),
        ("failed", hook_target.fail, 1_700_000_001.0),
        ("cut_short", hook_target.killed, 1_700_000_002.0),
        ("running", hook_target.killed, time.time()),
    ]:
        event = vod_event("NewFileUpload", FileId=f"{len(keys) + 1}", SourceContext=seal(name, "r", CONTEXT_KEY))
        try:
            keys[name] = ingest_event(store, event, received_at=at, keys=KEYS, after_commit=hook).dedupe_key
        except hook_target.Killed:
            keys[name] = store.events_for(f"{len(keys) + 1}")[0].dedupe_key
    store.close()
    return url, keys


def test_hooks_lists_the_failed_and_the_cut_short(unfinished: tuple[str, dict[str, str]]) -> None:
    url, keys = unfinished
    listed = uploads(url, "hooks")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[3] for line in listed.stdout.splitlines()] == [keys["failed"], keys["cut_short"]]
    assert "failed 1x: ConnectionError: the app's queue is down" in listed.stdout
    rows = json.loads(uploads(url, "hooks", "--json", "--older-than", "0").stdout)["hooks"]
    assert [(r["dedupe_key"], r["hook_status"], r["rerun"]) for r in rows] == [
        (keys["failed"], "failed", None),
        (keys["cut_short"], "pending", None),
        (keys["running"], "pending", None),
    ]


@pytest.mark.parametrize(
    ("hook", "status", "outcome", "left"),
    [
        ("tests.callback.hook_target:append_to_file", 0, "run again: done", []),
        ("tests.callback.hook_target:fail", 1, "run again: failed again: ConnectionError", ["failed", "cut_short"]),
        ("", 2, "set AFTER_COMMIT_HOOK", ["failed", "cut_short"]),
        ("tests.callback.hook_target:missing", 2, "cannot load", ["failed", "cut_short"]),
        (
            "tests.callback.hook_broken:on_upload",
            2,
            "cannot load 'tests.callback.hook_broken:on_upload': RuntimeError",
            ["failed", "cut_short"],
        ),
    ],
    ids=["runs", "fails-again", "no-hook", "bad-hook", "hook-fails-to-import"],
)
def test_hooks_rerun_runs_each_once_more_and_records_it(
    unfinished: tuple[str, dict[str, str]], tmp_path: Path, hook: str, status: int, outcome: str, left: list[str]
) -> None:
    url, keys = unfinished
    calls = tmp_path / "calls.txt"
    env = {"DATABASE_URL": url, "AFTER_COMMIT_HOOK": hook, "HOOK_TARGET_FILE": str(calls), "PYTHONPATH": str(ROOT)}
    rerun = run_command("vod-uploads", "hooks", "--rerun", env=env, cwd=ROOT)
    assert rerun.returncode == status, rerun.stderr
    assert outcome in rerun.stdout + rerun.stderr
    assert not any(line.startswith("Traceback") for line in rerun.stderr.splitlines())  # (a log line may quote one)
    if status == 0:  # the hook saw each event with its record as it is now
        assert calls.read_text().splitlines() == [
            f"{keys['failed']} NewFileUpload failed",
            f"{keys['cut_short']} NewFileUpload cut_short",
        ]
        shown = uploads(url, "show", "2").stdout  # the failed one's file
        assert "hook done (after 1 failure(s): ConnectionError" in shown and "hook failed" not in shown
    rows = json.loads(uploads(url, "hooks", "--json").stdout)["hooks"]
    assert [r["dedupe_key"] for r in rows] == [keys[name] for name in left]
    failures = [r["hook_failures"] for r in rows]
    assert failures == ([2, 1] if hook.endswith(":fail") else [1, 0][: len(left)])


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_what_a_rerun_hook_writes_goes_to_stderr_not_into_the_list(
    unfinished: tuple[str, dict[str, str]], tmp_path: Path, as_json: bool
) -> None:
    url, keys = unfinished
    env = rerun_env(url, "append_to_file_noisily", tmp_path / "calls.txt")
    rerun = run_command("vod-uploads", "hooks", "--rerun", *(["--json"] if as_json else []), env=env, cwd=ROOT)
    assert rerun.returncode == 0, rerun.stderr
    assert "a process the hook started" in rerun.stderr and "the hook's own print" in rerun.stderr
    assert "a process the hook started" not in rerun.stdout and "the hook's own print" not in rerun.stdout
    if as_json:  # the list alone, whole
        assert keys["failed"] in {r["dedupe_key"] for r in json.loads(rerun.stdout)["hooks"]}


def test_a_rerun_whose_result_cannot_be_recorded_says_so_and_stops(
    unfinished: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    # GIVEN a hook that runs, then leaves the database locked (another writer, say)
    url, keys = unfinished
    calls = tmp_path / "calls.txt"
    env = {
        **rerun_env(url, "lock_the_store", calls),
        "DATABASE_TIMEOUT": "1",
        "HOOK_TARGET_DATABASE": url.removeprefix("sqlite:///"),
    }
    rerun = run_command("vod-uploads", "hooks", "--rerun", "--json", env=env, cwd=ROOT)
    # THEN the run stops at once with exit 2, and its list says the hook ran but nothing was recorded
    assert rerun.returncode == 2 and "the store is unavailable" in rerun.stderr, rerun.stderr
    [row] = json.loads(rerun.stdout)["hooks"]
    assert row["dedupe_key"] == keys["failed"] and row["rerun"].startswith("done, but that could not be recorded")
    assert len(calls.read_text().splitlines()) == 1
    # still this run's claim, as after a run that died: listed again once the claim is --older-than old
    assert [r["dedupe_key"] for r in json.loads(uploads(url, "hooks", "--json").stdout)["hooks"]] == [keys["cut_short"]]
    assert "hook being run again since" in uploads(url, "show", "2").stdout


def test_a_rerun_masks_the_bundles_secrets_as_the_callback_does(
    unfinished: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    # GIVEN an operator's shell with the functions' secrets, and a hook whose error quotes them
    url, _ = unfinished
    secrets = {"VOD_CALLBACK_SIGN_KEY": CALLBACK_SIGN_KEY, "TENCENTCLOUD_SECRET_KEY": SECRET_KEY}
    env = {"DATABASE_URL": url, "AFTER_COMMIT_HOOK": "tests.callback.hook_target:quotes_the_keys", **secrets}
    rerun = run_command("vod-uploads", "hooks", "--rerun", env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    # THEN neither shows, in what it printed or what it recorded
    listed = uploads(url, "hooks", "--json").stdout
    assert "refused with ******** and ********" in listed
    assert [secret for secret in secrets.values() if secret in rerun.stdout + rerun.stderr + listed] == []


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_a_rerun_stopped_mid_hook_records_it_failed_and_lists_it(
    unfinished: tuple[str, dict[str, str]], tmp_path: Path, stop: str
) -> None:
    # GIVEN a rerun whose first hook is stopped while it runs: the operator's Ctrl-C, or a SIGTERM (`timeout`, cron)
    url, keys = unfinished
    running = tmp_path / "running.txt"
    target = "interrupted" if stop == "ctrl-c" else "waits"
    env = {"DATABASE_URL": url, "AFTER_COMMIT_HOOK": f"tests.callback.hook_target:{target}", "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [command("vod-uploads"), "hooks", "--rerun", "--json"],
        env={**os.environ, **env, "HOOK_TARGET_FILE": str(running)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as rerun:
        if stop == "sigterm":
            deadline = time.monotonic() + 30
            while not running.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            rerun.terminate()
        out, err = rerun.communicate(timeout=60)
    # THEN it stops, listing that hook, which is failed (the next rerun takes it), not held as being run
    assert rerun.returncode == 130, err
    [row] = json.loads(out)["hooks"]
    assert (row["dedupe_key"], row["rerun"]) == (keys["failed"], f"failed: {INTERRUPTED}")
    listed = json.loads(uploads(url, "hooks", "--json").stdout)
    assert (listed["hooks"][0]["dedupe_key"], listed["hooks"][0]["hook_status"]) == (keys["failed"], "failed")
    assert listed.get("being_rerun", []) == []


def test_two_operators_reruns_run_each_hook_once(unfinished: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    # GIVEN a second operator's rerun started while the first runs its first hook: both listed both events
    url, keys = unfinished
    calls = tmp_path / "calls.txt"
    env = rerun_env(url, "rerun_meanwhile", calls)
    rerun = run_command("vod-uploads", "hooks", "--rerun", "--json", env=env, cwd=ROOT)
    # THEN each hook ran once: the second operator ran the one the first had not claimed yet, which the first
    # then left to it (not a failure of its run)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(calls.read_text().splitlines()) == sorted(
        [f"{keys['failed']} NewFileUpload failed", f"{keys['cut_short']} NewFileUpload cut_short"]
    )
    assert [r["rerun"] for r in json.loads(rerun.stdout)["hooks"]] == [
        "done",
        "not run: another rerun has taken it, or recorded it, since it was listed",
    ]
    assert json.loads(uploads(url, "hooks", "--json").stdout)["hooks"] == []


@pytest.mark.parametrize(
    "older_than",
    [[], ["--older-than", "0"], ["--older-than", "3600"]],
    ids=["by default", "older-than 0", "older-than an hour"],  # a claim's age is 15 minutes whatever it says
)
def test_a_claim_left_by_a_rerun_that_died_is_taken_again_once_old(
    unfinished: tuple[str, dict[str, str]], tmp_path: Path, older_than: list[str]
) -> None:
    url, keys = unfinished
    store = open_store(url)
    listed = store.unfinished_hooks(time.time() - 900)
    assert store.claim_hook(listed[0], claimed_at=time.time() - 1000)  # that run died long ago
    assert store.claim_hook(listed[1], claimed_at=time.time() - 300)  # this one is running now (a long hook)
    store.close()
    shown = uploads(url, "hooks", *older_than).stdout
    unfinished_part, _, being_rerun = shown.partition("being run again by another rerun")
    assert "rerun since" in unfinished_part and keys["failed"] in unfinished_part
    assert keys["cut_short"] not in unfinished_part and keys["cut_short"] in being_rerun  # not finished either
    env = {
        "DATABASE_URL": url,
        "AFTER_COMMIT_HOOK": "tests.callback.hook_target:append_to_file",
        "PYTHONPATH": str(ROOT),
    }
    rerun = run_command(
        "vod-uploads", "hooks", "--rerun", *older_than, env={**env, "HOOK_TARGET_FILE": str(tmp_path / "c")}, cwd=ROOT
    )
    assert rerun.returncode == 0, rerun.stderr
    # the dead run's hook only (and, with --older-than 0, the pending one that arrived just now): the one
    # claimed five minutes ago is left to the run that has it, however short --older-than is
    ran = [line.split()[0] for line in (tmp_path / "c").read_text().splitlines()]
    assert ran == [keys["failed"]] + ([keys["running"]] if older_than[1:] == ["0"] else [])
    assert "hook being run again since" in uploads(url, "show", "3").stdout  # cut_short's file: still claimed
    assert "1 hook(s) being run again by another rerun" in rerun.stdout and keys["cut_short"] in rerun.stdout
    listed = json.loads(uploads(url, "hooks", "--json", *older_than).stdout)
    assert [r["dedupe_key"] for r in listed["being_rerun"]] == [keys["cut_short"]]


def test_a_rerun_whose_output_is_closed_says_it_stopped(unfinished: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, _ = unfinished
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    env |= {"AFTER_COMMIT_HOOK": "tests.callback.hook_target:append_to_file", "HOOK_TARGET_FILE": str(tmp_path / "c")}
    rerun = subprocess.Popen(
        [command("vod-uploads"), "hooks", "--rerun"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert rerun.stdout is not None
    rerun.stdout.close()  # `| head -0`: the reader is gone before the first line
    _, stderr = rerun.communicate(timeout=60)
    # Not 0: hooks were left unrun (`hooks` lists them)
    assert rerun.returncode == 1 and b"stopped, its output closed" in stderr and b"Traceback" not in stderr


@pytest.mark.parametrize(
    "args",
    [("hooks",), ("hooks", "--json"), ("hooks", "--rerun"), ("show", "2")],
    ids=["list", "json", "rerun", "show"],
)
def test_an_output_that_fails_says_so_in_the_exit_status(
    unfinished: tuple[str, dict[str, str]], tmp_path: Path, args: tuple[str, ...]
) -> None:
    url, _ = unfinished
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    env |= {"AFTER_COMMIT_HOOK": "tests.callback.hook_target:append_to_file", "HOOK_TARGET_FILE": str(tmp_path / "c")}
    with open("/dev/full", "w") as full:  # `> out.txt` on a full disk
        line = [command("vod-uploads"), *args]
        run = subprocess.run(line, env=env, cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True, check=False)
    # THEN not a traceback (and, for a rerun, not the end of the list after its first hook's line unsaid)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "stopped, its output failed (No space left on device)" in run.stderr
    assert ("the hooks run so far are recorded" in run.stderr) is ("--rerun" in args)


def test_a_rerun_never_makes_an_event_store_where_there_is_none(tmp_path: Path) -> None:
    empty = tmp_path / "other.sqlite3"
    sqlite3.connect(empty).close()  # a database, but not the functions'
    env = {"DATABASE_URL": f"sqlite:///{empty}", "AFTER_COMMIT_HOOK": "tests.callback.hook_target:fail"}
    rerun = run_command("vod-uploads", "hooks", "--rerun", env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert rerun.returncode == 2 and "the store is unavailable" in rerun.stderr, rerun.stderr
    assert sqlite3.connect(empty).execute("SELECT name FROM sqlite_master").fetchall() == []


def _failed_hooks(store: EventStore, count: int) -> None:
    """`count` deletes, one a second, each of a file of its own, whose hooks failed."""
    for n in range(count):
        delete = vod_event("FileDeleted", FileId=f"f{n}")
        ingest_event(store, delete, received_at=1.0 + n, keys=KEYS, after_commit=hook_target.fail)


def test_hooks_lists_every_page_and_its_json_holds_only_the_list(tmp_path: Path) -> None:
    # GIVEN more failed hooks than one page of the store's holds
    url = f"sqlite:///{tmp_path}/many.sqlite3"
    store = open_store(url)
    _failed_hooks(store, 501)
    store.close()
    # WHEN they are run again, failing again, with --json
    env = {"DATABASE_URL": url, "AFTER_COMMIT_HOOK": "tests.callback.hook_target:fail", "PYTHONPATH": str(ROOT)}
    rerun = run_command("vod-uploads", "hooks", "--rerun", "--json", env=env, cwd=ROOT)
    # THEN every one was run, stdout is the JSON list alone (the log lines of the failures went to stderr)
    assert rerun.returncode == 1 and "501 of 501 hook(s) failed again" in rerun.stderr
    rows = json.loads(rerun.stdout)["hooks"]
    assert len(rows) == 501 and {r["rerun"] for r in rows} == {"failed again: ConnectionError: the app's queue is down"}
    assert '"event": "hook.failed"' in rerun.stderr


def test_erase_lists_then_with_yes_erases_a_users_uploads(database_url: str) -> None:
    listed = uploads(database_url, "erase", "--user", "alice")
    assert listed.returncode == 0 and f"{FILE_ID}  finished  holiday" in listed.stdout
    assert "nothing erased yet; run again with --yes" in listed.stdout
    assert "user               alice" in uploads(database_url, "show", FILE_ID).stdout  # unchanged
    erased = uploads(database_url, "erase", "--user", "alice", "--yes")
    assert erased.returncode == 0, erased.stderr
    assert f"erased {FILE_ID}" in erased.stdout and "VOD still holds each file" in erased.stdout
    assert "whose events have not arrived yet are recorded when they come: run this again" in erased.stdout
    assert "no uploads recorded for user 'alice'" in uploads(database_url, "list", "--user", "alice").stdout
    shown = uploads(database_url, "show", FILE_ID).stdout
    assert "erased" in shown and "alice" not in shown and "holiday" not in shown
    assert "user               - (erased)" in shown  # not "no upload event yet": it lists that event
    assert "(vod-uploads erase): nothing of its uploader is kept" in shown  # when, and what erased means


def test_erase_run_again_leaves_what_it_erased_as_it_was(database_url: str) -> None:
    # GIVEN a file erased (then its erasure run again, as after it was cut short)
    assert uploads(database_url, "erase", FILE_ID, "--yes").returncode == 0
    shown = uploads(database_url, "show", FILE_ID).stdout
    listed = uploads(database_url, "erase", FILE_ID)
    again = uploads(database_url, "erase", FILE_ID, "--yes")
    # THEN it is listed as erased already, and left so: when it was erased stays what `show` says
    assert (listed.returncode, listed.stdout) == (
        0,
        f"{FILE_ID}  erased already  -\n0 file(s): nothing erased yet; run again with --yes to erase them\n",
    )
    assert again.returncode == 0 and again.stdout.startswith(
        f"{FILE_ID} erased already: left as it was\n0 file(s) erased"
    )
    assert uploads(database_url, "show", FILE_ID).stdout == shown


@pytest.mark.parametrize(
    ("args", "said"),
    [
        # its last event came at 22:13:22Z (its events at :20, :21 and :22): not before it
        (
            ["--before", "2023-11-14T22:13:22Z"],
            "nothing to erase: no file had its last event before 2023-11-14 22:13:22Z",
        ),
        (["--before", "2023-11-14T22:13:23Z"], f"{FILE_ID}  finished  last event 2023-11-14 22:13:22Z  holiday"),
        (["--before", "2023-11-15"], "1 file(s): nothing erased yet; run again with --yes"),
        (["--before", "2023-11-15", "--deleted"], "nothing to erase: no file VOD deleted had its last event before"),
        (["--before", "2023-11-15T08:00+08:00", "--yes"], f"erased {FILE_ID}\n1 file(s) erased from the event store"),
        (["--before", "2023-11-14", "--yes"], "(erased ones aside)"),  # a scheduled run with nothing to do
    ],
)
def test_erase_before_a_time_takes_the_files_no_event_has_come_for_since(
    database_url: str, args: list[str], said: str
) -> None:
    done = uploads(database_url, "erase", *args)
    assert done.returncode == 0 and said in done.stdout, done.stdout + done.stderr
    assert "Uploads the user made before" not in done.stdout  # said of a user's erasure only
    shown = uploads(database_url, "show", FILE_ID).stdout
    assert ("user               - (erased)" in shown) == (f"erased {FILE_ID}" in done.stdout)


def test_erase_before_keeps_a_file_whose_event_came_after_it_was_listed(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the file listed past its retention, and an event of it stored right after (its task flow run again)
    listed = EventStore.files_past

    def then_an_event_comes(store: EventStore, *args: Any, **kwargs: Any) -> Any:
        found = listed(store, *args, **kwargs)
        again = load_event("vod_procedure_finish")
        again["ProcedureStateChangeEvent"]["TaskId"] = "1250000000-procedure-again"
        ingest_event(store, again, received_at=time.time(), keys=KEYS)
        return found

    monkeypatch.setattr(EventStore, "files_past", then_an_event_comes)
    monkeypatch.setenv("DATABASE_URL", database_url)
    # WHEN the files past it are erased
    status = uploads_main(["erase", "--before", "2023-11-15", "--yes"])
    # THEN that one is kept, and said so: the run is not a failure
    said = capsys.readouterr().out
    assert status == 0 and "1 file(s) not erased: an event came meanwhile" in said and "erased 5" not in said, said
    assert "0 file(s) erased from the event store" in said
    assert "user               alice" in uploads(database_url, "show", FILE_ID).stdout


def test_an_erase_the_store_cannot_take_exits_2_and_erases_nothing(database_url: str) -> None:
    # GIVEN another writer holding the database (a long transaction, say) past the command's DATABASE_TIMEOUT
    path = database_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        erased = run_command(
            "vod-uploads",
            "erase",
            "--user",
            "alice",
            "--yes",
            env={"DATABASE_URL": database_url, "DATABASE_TIMEOUT": "1"},
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # THEN an outage's exit status (2: try again), and nothing erased
    assert erased.returncode == 2, erased.stderr
    assert "the store is unavailable" in erased.stderr and "Traceback" not in erased.stderr
    assert "user               alice" in uploads(database_url, "show", FILE_ID).stdout


def test_erase_takes_files_whose_events_name_many_others_a_few_at_a_time(tmp_path: Path) -> None:
    # GIVEN a user's three files, each deleted in a bulk delete of 1,000 files: too many to lock in one erase
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    files = deleted_in_bulk(store, "alice", 3)
    store.close()
    # WHEN the user's files are erased THEN every one is, in as many transactions as their locks need
    erased = uploads(url, "erase", "--user", "alice", "--yes")
    assert erased.returncode == 0, erased.stderr
    assert sorted(line.split()[1] for line in erased.stdout.splitlines() if line.startswith("erased ")) == files
    assert "3 file(s) erased from the event store" in erased.stdout


@pytest.mark.parametrize(
    ("args", "status", "said"),
    [
        (["--user", "nobody", "--yes"], 1, "no uploads recorded for user 'nobody'"),
        # a mistyped id: the others erased, but not an erasure done, as `show` of it is not found
        ([FILE_ID, "5285890784273533999", "--yes"], 1, "not recorded, so nothing to erase: 5285890784273533999"),
        ([FILE_ID, "5285890784273533999"], 1, "not recorded: 5285890784273533999"),
        ([FILE_ID, "5285890784273533999"], 1, "1 file(s): nothing erased yet"),  # the one recorded
        ([], 2, "one of the arguments --user FILE_ID --before is required"),
        ([FILE_ID, FILE_ID], 0, "\n1 file(s): nothing erased yet"),  # named twice: one file
        (["--user", "alice", "--deleted"], 2, "--deleted goes with --before"),
        (["--before", "2023-11-15", FILE_ID], 2, "argument FILE_ID: not allowed with argument --before"),
        (["--before", "2999-01-01"], 2, "argument --before: in the future: '2999-01-01'"),
        # a period shorter than VOD's queue keeps an event: a file's events may be still to come
        (["--before", time.strftime("%Y-%m-%d", time.gmtime(time.time() - 3 * 86400))], 2, "at least 4 days ago"),
    ],
)
def test_erase_says_what_it_could_not(database_url: str, args: list[str], status: int, said: str) -> None:
    done = uploads(database_url, "erase", *args)
    assert done.returncode == status and said in done.stdout + done.stderr


def test_a_hook_given_up_is_listed_and_rerun_no_more(unfinished: tuple[str, dict[str, str]]) -> None:
    # GIVEN a hook that failed on an event it can never take (a poison one), which the app has dealt with otherwise
    url, keys = unfinished
    # WHEN the operator gives it up, and asks for one that is done too
    given = uploads(url, "hooks", "--give-up", keys["failed"])
    refused = uploads(url, "hooks", "--give-up", keys["done"], "no-such-key")
    # THEN it is listed no more (nor rerun), and `show` says so; a done hook, or none, is not given up
    assert (given.returncode, given.stdout) == (0, f"{keys['failed']}  given up: owed the hook no more\n")
    assert refused.returncode == 1 and "2 of 2 not given up: only a failed or pending hook is" in refused.stderr
    assert "or one a rerun that died took" in refused.stderr
    assert refused.stdout.splitlines() == [f"{keys['done']}  not given up", "no-such-key  not given up"]
    rows = json.loads(uploads(url, "hooks", "--json").stdout)["hooks"]
    assert [r["dedupe_key"] for r in rows] == [keys["cut_short"]]
    shown = uploads(url, "show", "2").stdout  # the failed one's file
    assert "hook given up (vod-uploads hooks --give-up) after 1 failure(s): ConnectionError" in shown
    both = uploads(url, "hooks", "--give-up", keys["cut_short"], "--rerun")
    assert both.returncode == 2 and "--give-up goes alone" in both.stderr


def test_a_hook_whose_rerun_died_is_given_up_once_its_claim_is_old(unfinished: tuple[str, dict[str, str]]) -> None:
    # GIVEN a hook whose rerun died (one that kills the process running it: each rerun would die on it again), and
    # one a rerun is running now
    url, keys = unfinished
    store = open_store(url)
    listed = store.unfinished_hooks(time.time() - 900)
    assert store.claim_hook(listed[0], claimed_at=time.time() - 1000)  # the failed one's: that run died
    assert store.claim_hook(listed[1], claimed_at=time.time() - 300)  # the cut short one's: running now
    store.close()
    # WHEN the operator gives both up THEN the dead run's is given up, the running one's is left to its run
    given = uploads(url, "hooks", "--give-up", keys["failed"], keys["cut_short"])
    assert given.returncode == 1, given.stderr
    assert given.stdout.splitlines() == [
        f"{keys['failed']}  given up: owed the hook no more",
        f"{keys['cut_short']}  not given up",
    ]


def test_a_hook_turned_on_is_owed_the_events_stored_while_none_was_set(tmp_path: Path) -> None:
    # GIVEN events stored while no hook was set: one before the hook was turned on, two since (its rollout's)
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    keys = [
        ingest_event(
            store,
            vod_event("NewFileUpload", FileId=f"f-{i}", SourceContext=seal("ann", "r", CONTEXT_KEY)),
            received_at=1_700_000_000.0 + at,  # 2023-11-14 22:13:20Z and after
            keys=KEYS,
        ).dedupe_key
        for i, at in enumerate((0, 86_400, 86_500))
    ]
    store.close()
    assert "no hook failed or left pending" in uploads(url, "hooks").stdout  # owed nothing: no hook was set
    # WHEN the operator owes the hook those received since it was turned on, and runs it for them
    calls = tmp_path / "calls.txt"
    env = rerun_env(url, "append_to_file", calls)
    since = "2023-11-16T06:13:20+08:00"  # 2023-11-15 22:13:20Z, in the operator's zone
    asked = uploads(url, "hooks", "--owed-since", since)  # first, how many: nothing changed
    assert asked.stdout.startswith("2 event(s) received since 2023-11-15 22:13:20Z while no hook was set would be")
    rerun = run_command("vod-uploads", "hooks", "--owed-since", since, "--yes", "--rerun", env=env, cwd=ROOT)
    # THEN the hook heard of those two, once, and of none before
    assert rerun.returncode == 0, rerun.stderr
    said = "2 event(s) received since 2023-11-15 22:13:20Z while no hook was set: owed it now"
    assert rerun.stdout.startswith(said), rerun.stdout
    assert [line.split()[0] for line in calls.read_text().splitlines()] == keys[1:]
    again = json.loads(uploads(url, "hooks", "--owed-since", "2023-11-15", "--json").stdout)
    assert (again["would_owe"], again["hooks"]) == (0, [])


def test_hooks_by_default_leaves_out_those_of_events_younger_than_scfs_longest_timeout(tmp_path: Path) -> None:
    # GIVEN an event ten minutes old whose hook never finished (it may still run: SCF's timeout is 900 s)
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    with contextlib.suppress(hook_target.Killed):
        event = vod_event("NewFileUpload", FileId="f-1", SourceContext=seal("ann", "r", CONTEXT_KEY))
        ingest_event(store, event, received_at=time.time() - 600, keys=KEYS, after_commit=hook_target.killed)
    store.close()
    # THEN `hooks` leaves it out, and lists it once --older-than is below its age
    assert "no hook failed or left pending (of events older than 900 s)" in uploads(url, "hooks").stdout
    assert "pending" in uploads(url, "hooks", "--older-than", "300").stdout


def test_hooks_whose_output_is_closed_is_no_failure(unfinished: tuple[str, dict[str, str]]) -> None:
    # `vod-uploads hooks | head -0`: nothing was run, nothing left undone
    url, _ = unfinished
    env = {**os.environ, "DATABASE_URL": url}
    listing = subprocess.Popen(
        [command("vod-uploads"), "hooks"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert listing.stdout is not None
    listing.stdout.close()
    _, stderr = listing.communicate(timeout=60)
    assert listing.returncode == 0 and b"Traceback" not in stderr, stderr


@pytest.mark.parametrize(
    ("later", "row", "shown"),
    [
        ([], "status", "  uploaded"),  # no ProcedureTaskId: no task event is awaited
        ([vod_event("FileDeleted", FileId="f-1")], "deleted", "2023-11-14 22:14:20Z"),  # when VOD deleted it
    ],
    ids=["no-task-flow", "deleted"],
)
def test_show_says_how_an_upload_stands(tmp_path: Path, later: list[dict[str, Any]], row: str, shown: str) -> None:
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    for at, event in enumerate([vod_event("NewFileUpload", FileId="f-1"), *later]):
        ingest_event(store, event, received_at=1_700_000_000.0 + 60 * at, keys=KEYS)
    store.close()
    rows = {line.split("  ")[0]: line for line in uploads(url, "show", "f-1").stdout.splitlines()}
    assert rows[row].endswith(shown), rows


def test_a_rerun_of_an_event_that_cannot_be_read_back_is_a_failure(tmp_path: Path) -> None:
    # GIVEN a failed hook whose stored event this version cannot read (stored by an older, laxer one)
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    event = vod_event("NewFileUpload", FileId="f-1", SourceContext=seal("ann", "r", CONTEXT_KEY))
    ingest_event(store, event, received_at=1_700_000_000.0, keys=KEYS, after_commit=hook_target.fail)
    store.close()
    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db, db:
        db.execute("UPDATE events SET payload = '{}'")
    env = {
        "DATABASE_URL": url,
        "AFTER_COMMIT_HOOK": "tests.callback.hook_target:append_to_file",
        "PYTHONPATH": str(ROOT),
    }
    rerun = run_command(
        "vod-uploads", "hooks", "--rerun", env={**env, "HOOK_TARGET_FILE": str(tmp_path / "c")}, cwd=ROOT
    )
    # THEN it says so, and exits 1: the hook was not run
    assert rerun.returncode == 1 and "not run: the stored event cannot be read" in rerun.stdout, rerun.stderr


def test_more_hooks_being_rerun_than_are_listed_are_said_to_be_more(tmp_path: Path) -> None:
    # GIVEN as many hooks taken by another rerun (running now) as are listed, and one more
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    _failed_hooks(store, 101)
    for event in store.unfinished_hooks(time.time()):
        assert store.claim_hook(event, claimed_at=time.time() - 60)
    store.close()
    shown = uploads(url, "hooks").stdout
    # THEN the 100 listed are said to be some of them
    assert "100+ hook(s) being run again by another rerun" in shown, shown
