"""One logging path: every line is one JSON object, exceptions are a field, and every line written while
a request (or a PULL run) is served carries its id."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from shared.callback_service import make_callback_endpoint
from shared.config import load_callback_settings
from shared.hooks import CommittedEvent
from shared.http.model import Request, Response
from shared.http.serve import serve
from shared.logs import REQUEST_ID, log_event
from shared.pull_service import drain
from shared.store import open_store
from tests.conftest import CONTEXT_KEY, KEYS
from tests.scf import load_event
from vodtesting import http_event


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    records = [r for r in caplog.records if r.name.startswith("vod")]
    assert all("\n" not in r.getMessage() for r in records)  # one line each, tracebacks included
    return [json.loads(r.getMessage()) for r in records]


def test_an_exception_is_a_field_of_its_one_line(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise ValueError("bad\nthing \ud800")
    except ValueError as exc:
        log_event(logging.getLogger("vod.test"), logging.ERROR, "test.failed", error=exc, detail="é")
    [line] = lines(caplog)
    assert line["event"] == "test.failed" and line["detail"] == "é" and line["request_id"] is None
    assert line["exception"].startswith("Traceback") and "ValueError: bad\nthing" in line["exception"]
    assert caplog.records[-1].getMessage().isascii()  # a lone surrogate cannot lose the line


def test_every_line_of_a_request_carries_its_id(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
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
    caplog.clear()
    event = http_event(path="/vod-events", body=load_event("vod_new_file_upload"), shape="function_url")
    result = serve(event, {"request_id": "req-42"}, endpoint, settings.http)
    store.close()
    assert result["statusCode"] == 200
    logged = lines(caplog)
    assert [line["event"] for line in logged] == ["hook.failed", "request"]
    assert {line["request_id"] for line in logged} == {"req-42"}
    assert "RuntimeError: downstream is down" in logged[0]["exception"]
    assert REQUEST_ID.get() is None  # nothing leaks into the next invocation


def test_a_crash_is_logged_with_its_traceback_and_answered_with_nothing(caplog: pytest.LogCaptureFixture) -> None:
    def endpoint(request: Request) -> Response:
        raise KeyError("secret internals")

    settings = load_callback_settings({"VOD_CALLBACK_INSECURE": "true", "VOD_CONTEXT_KEY": CONTEXT_KEY}).http
    caplog.clear()
    result = serve(http_event(body="{}", request_id="req-crash-gw"), {"request_id": "req-crash"}, endpoint, settings)
    assert result["statusCode"] == 500 and "secret internals" not in result["body"]
    crash, request = lines(caplog)
    assert (crash["event"], crash["request_id"], request["outcome"]) == (
        "request.crash",
        "req-crash-gw",
        "internal_error",
    )
    assert "KeyError: 'secret internals'" in crash["exception"]


def test_a_pull_run_has_its_id_on_every_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
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
    assert [(line["event"], line["request_id"]) for line in lines(caplog)] == [("pull.drained", "timer-7")]
