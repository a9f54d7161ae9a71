"""One logging path: every line is one JSON object on stdout, exceptions are a field, and every line written
while a request (or a PULL run) is served carries its id."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from shared.callback_service import make_callback_endpoint
from shared.config import load_callback_settings
from shared.hooks import CommittedEvent
from shared.http.model import Request, Response
from shared.http.serve import serve
from shared.logs import DEBUG, ERROR, INFO, REQUEST_ID, WARNING, invocation_id, log_event, set_level
from shared.pull_service import drain
from shared.store import open_store
from tests.conftest import CONTEXT_KEY, KEYS, Output
from tests.scf import load_event
from vodtesting import http_event


def test_an_exception_is_a_field_of_its_one_line(output: Output) -> None:
    output.skip()
    try:
        raise ValueError("bad\nthing \ud800")
    except ValueError as exc:
        log_event(ERROR, "test.failed", error=exc, detail="é")
    text = output.text()
    assert text.isascii() and text.count("\n") == 1  # one line, a lone surrogate cannot lose it
    [line] = Output.parse(text)
    assert (line["level"], line["event"], line["detail"], line["request_id"]) == ("ERROR", "test.failed", "é", None)
    assert line["exception"].startswith("Traceback") and "ValueError: bad\nthing" in line["exception"]


@pytest.mark.parametrize(
    ("level", "written"),
    [
        ("DEBUG", ["debug", "info", "warning"]),
        ("INFO", ["info", "warning"]),
        ("WARNING", ["warning"]),
        ("ERROR", []),
    ],
)
def test_lines_below_the_level_are_not_written(output: Output, level: str, written: list[str]) -> None:
    set_level(level)
    output.skip()
    log_event(DEBUG, "debug")
    log_event(INFO, "info")
    log_event(WARNING, "warning")
    assert [line["event"] for line in output.lines()] == written


def test_setting_the_level_returns_the_one_it_replaced() -> None:
    # (the autouse fixture has set DEBUG, and puts INFO back after the test)
    assert set_level("WARNING") == "DEBUG"
    assert set_level("ERROR") == "WARNING"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("3f2c0b9e-1d1e-4c55-9d0a-6f1f7a0e2b11", True),  # SCF's UUID
        ("a" * 128, True),
        ("a" * 129, False),  # longer than any id: a random one instead
        ("req-\u00e9t\u00e9", False),  # letters, but not ASCII (a response header's value)
        ("req-1\nforged", False),
        ("req 1", False),
        (None, False),
    ],
)
def test_an_invocation_id_is_scfs_only_when_it_is_an_id(given: str | None, kept: bool) -> None:
    rid = invocation_id({"request_id": given})
    assert (rid == given) == kept
    assert kept or (len(rid) == 32 and int(rid, 16) >= 0)


def test_a_line_written_to_a_closed_stdout_is_lost_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = io.StringIO()
    closed.close()  # writing to it raises ValueError, as a closed sys.stdout does
    monkeypatch.setattr("sys.stdout", closed)
    log_event(ERROR, "test.closed")


class _BrokenStdout:
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")  # a closed pipe (`vod-serve | head`, say)

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_line_that_cannot_be_written_is_lost_not_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    def endpoint(request: Request) -> Response:
        log_event(ERROR, "test.inside")
        return Response(200, {"ok": True})

    settings = load_callback_settings({"VOD_CALLBACK_INSECURE": "true", "VOD_CONTEXT_KEY": CONTEXT_KEY}).http
    monkeypatch.setattr("sys.stdout", _BrokenStdout())
    result = serve(http_event(body="{}"), {"request_id": "req-pipe"}, endpoint, settings)
    assert result["statusCode"] == 200


def test_every_line_of_a_request_carries_its_id(tmp_path: Path, output: Output) -> None:
    settings = load_callback_settings(
        {
            "VOD_CALLBACK_INSECURE": "true",
            "VOD_CONTEXT_KEY": CONTEXT_KEY,
            "DATABASE_URL": f"sqlite:///{tmp_path}/vod.sqlite3",
        }
    )
    store = open_store(settings.store.database_url.reveal())

    def hook(committed: CommittedEvent) -> None:
        raise RuntimeError("downstream is down")

    endpoint = make_callback_endpoint(settings, lambda: store, after_commit=hook)
    output.skip()
    event = http_event(path="/vod-events", body=load_event("vod_new_file_upload"), shape="function_url")
    result = serve(event, {"request_id": "req-42"}, endpoint, settings.http)
    store.close()
    assert result["statusCode"] == 200
    logged = output.lines()
    assert [line["event"] for line in logged] == ["hook.failed", "request"]
    assert {line["request_id"] for line in logged} == {"req-42"}
    assert "RuntimeError: downstream is down" in logged[0]["exception"]
    assert REQUEST_ID.get() is None  # nothing leaks into the next invocation


def test_a_crash_is_logged_with_its_traceback_and_answered_with_nothing(output: Output) -> None:
    def endpoint(request: Request) -> Response:
        raise KeyError("secret internals")

    settings = load_callback_settings({"VOD_CALLBACK_INSECURE": "true", "VOD_CONTEXT_KEY": CONTEXT_KEY}).http
    output.skip()
    result = serve(http_event(body="{}", request_id="req-crash-gw"), {"request_id": "req-crash"}, endpoint, settings)
    assert result["statusCode"] == 500 and "secret internals" not in result["body"]
    crash, request = output.lines()
    assert (crash["event"], crash["request_id"], request["outcome"], request["level"]) == (
        "request.crash",
        "req-crash-gw",
        "internal_error",
        "WARNING",  # an operator logging at WARNING sees the request a crash failed too
    )
    assert "KeyError: 'secret internals'" in crash["exception"]


def test_a_pull_run_has_its_id_on_every_line(tmp_path: Path, output: Output) -> None:
    class EmptyQueue:
        def pull(self) -> list[dict[str, Any]]:
            return []

        def confirm(self, handles: Any) -> None:
            raise AssertionError("nothing to confirm")

    store = open_store(f"sqlite:///{tmp_path}/vod.sqlite3")
    report = drain(
        EmptyQueue(),
        store,
        deadline=1e12,
        clock=lambda: 0.0,
        reserve_seconds=0,
        stop_when_empty=True,
        run_id="timer-7",
        keys=KEYS,
    )
    store.close()
    assert report.stopped == "empty"
    assert [(line["event"], line["request_id"]) for line in output.lines()] == [("pull.drained", "timer-7")]
