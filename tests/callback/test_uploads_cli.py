"""scripts/uploads: readable records, JSON for machines, clear errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from shared.ingest import ingest_event
from shared.store import open_store
from tests.conftest import KEYS, run_command
from tests.scf import load_event

ROOT = Path(__file__).resolve().parents[2]
FILE_ID = "5285890784273533167"


def uploads(database_url: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return run_command("vod-uploads", *args, env={"DATABASE_URL": database_url}, cwd=cwd)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/vod.sqlite3"
    store = open_store(url)
    for i, name in enumerate(["vod_new_file_upload", "vod_procedure_finish", "vod_transcode_complete"]):
        ingest_event(store, load_event(name), received_at=1_700_000_000.0 + i, keys=KEYS)
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
        ("sqlite:///{tmp}/nothing-here.sqlite3", ["show", FILE_ID], 1, "no database at"),
        ("mysql://root:hunter2@db/vod", ["show", FILE_ID], 2, "DATABASE_URL: must start with sqlite:///"),
        ("postgresql://nobody@/vod?host={tmp}&connect_timeout=2", ["show", FILE_ID], 2, "the store is unavailable"),
    ],
)
def test_clear_errors(
    database_url: str, tmp_path: Path, url: str | None, args: list[str], status: int, message: str
) -> None:
    result = uploads((url or database_url).format(tmp=tmp_path), *args)
    assert (result.returncode, result.stdout) == (status, "")
    assert message in result.stderr and "Traceback" not in result.stderr and "hunter2" not in result.stderr


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


def test_it_only_reads_so_a_read_only_role_is_enough(tmp_path: Path) -> None:
    # An empty database (not the callback's): an error, and still empty afterwards, no schema made in it.
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    result = uploads(f"sqlite:///{empty}", "list", "--user", "ann")
    assert result.returncode == 2 and "the store is unavailable" in result.stderr and "Traceback" not in result.stderr
    assert empty.stat().st_size == 0
