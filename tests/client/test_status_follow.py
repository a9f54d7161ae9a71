"""StatusClient.follow against an uploads endpoint that misbehaves as networks and gateways do (a scripted HTTP
server on loopback: the real uploads function never answers like this, which is the point)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.conftest import Serve
from vodupload import status
from vodupload.status import StatusClient, StatusUnavailable

Scripted = Callable[..., str]  # the scripted fixture: actions -> the endpoint's URL
PROCESSING = {"fileId": "f1", "status": "processing", "tasks": []}
FINISHED = {"fileId": "f1", "status": "finished", "tasks": []}


def _answer(handler: BaseHTTPRequestHandler, action: Any, stop: threading.Event) -> None:
    """One scripted answer: a record (200), (status, headers) with an empty JSON body, raw bytes (200), or
    "drop" (the connection closed unanswered), "cut" (closed in the middle of the body), "hang" (no answer)."""
    if action == "drop":
        handler.close_connection = True
        return
    if action == "cut":
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b'{"st')
        handler.close_connection = True
        return
    if action == "hang":
        stop.wait(60)
        return
    status, headers, body = 200, {}, b""
    if isinstance(action, dict):
        body = json.dumps(action).encode()
    elif isinstance(action, bytes):
        body = action
    elif isinstance(action, tuple):
        status, headers, body = action[0], action[1], b"{}"
    handler.send_response(status)
    for name, value in {"Content-Type": "application/json", **headers}.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def scripted(loopback_http: Serve) -> Iterator[Scripted]:
    """An uploads endpoint answering each request with the script's next action (the last one repeats)."""
    stop = threading.Event()

    def serve(*script: Any) -> str:
        actions = list(script)
        return (
            loopback_http(lambda handler: _answer(handler, actions.pop(0) if len(actions) > 1 else actions[0], stop))
            + "/uploads"
        )

    yield serve
    stop.set()  # a hanging answer ends, before the server stops


@pytest.mark.parametrize(
    ("script", "pauses"),
    [
        ((PROCESSING, "drop", FINISHED), [2.0]),  # a long poll cut by a gateway or a NAT: asked again
        ((PROCESSING, "cut", FINISHED), [2.0]),
        ((PROCESSING, (429, {"Retry-After": "1"}), FINISHED), [1.0]),  # throttled: asked again when it says
        ((PROCESSING, (408, {}), FINISHED), [2.0]),
    ],
    ids=["dropped", "cut-mid-answer", "throttled", "timed-out"],
)
def test_a_passing_trouble_is_ridden_out(scripted: Scripted, script: tuple[Any, ...], pauses: list[float]) -> None:
    slept: list[float] = []
    client = StatusClient(scripted(*script), "token")
    assert client.follow("f1", timeout=60, sleep=slept.append)["status"] == "finished"
    assert slept == pauses


@pytest.mark.parametrize(
    "answer",
    [
        {},
        [],
        {"status": "finished"},
        b"<html>a portal</html>",
        # where the CLI's settled text reads it: a task, its outputs, their URLs
        {"status": "finished", "tasks": [None]},
        {"status": "finished", "tasks": [{"outputs": {"urls": []}}]},
        {"status": "finished", "tasks": [{"outputs": ["a URL"]}]},
        {"status": "finished", "tasks": [{"outputs": [{"urls": "https://a.example/v.mp4"}]}]},
        {"status": "finished", "tasks": [{"outputs": [{"urls": [None]}]}]},
    ],
)
def test_an_answer_that_is_not_a_record_is_said_so(scripted: Scripted, answer: Any) -> None:
    with pytest.raises(StatusUnavailable, match="answered 200 with something that is not an upload's record"):
        StatusClient(scripted(answer), "token").follow("f1", timeout=60, sleep=lambda _: None)


def test_an_endpoint_that_stops_answering_cannot_hold_the_follow_past_its_deadline(
    scripted: Scripted,
) -> None:
    client = StatusClient(scripted(PROCESSING, "hang"), "token")
    started = time.monotonic()
    with pytest.raises(StatusUnavailable, match=r"had not settled after 3 s \(last status: processing\); the upl"):
        client.follow("f1", timeout=3, sleep=lambda _: None)  # the record, then a 2 s poll that stalls
    assert time.monotonic() - started < 3 + 5 + 5  # the deadline, the slack a held answer gets, and a margin


def test_a_poll_gone_silent_is_asked_again_while_the_wait_lasts(
    scripted: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A held request whose connection goes silent (a NAT's timeout, a proxy that swallows the answer) is given up
    # on once overdue, not at the end of the whole wait: asked again, the settled upload is seen. (Shortened here:
    # 1 s polls, overdue after 1 s more.)
    monkeypatch.setattr(status, "WAIT_SECONDS", 1)
    monkeypatch.setattr(status, "_OVERDUE_SECONDS", 1.0)
    monkeypatch.setattr(status, "_SLACK_SECONDS", 0.5)
    client = StatusClient(scripted(PROCESSING, "hang", FINISHED), "token")
    started = time.monotonic()
    assert client.follow("f1", timeout=60, sleep=lambda _: None)["status"] == "finished"
    assert time.monotonic() - started < 30


def test_the_file_id_goes_into_the_path_before_a_query_the_url_has(loopback_http: Serve) -> None:
    asked: list[str] = []

    def answer(handler: BaseHTTPRequestHandler) -> None:
        asked.append(handler.path)
        _answer(handler, FINISHED, threading.Event())

    url = loopback_http(answer) + "/uploads?code=abc"  # a gateway's key in the query, say
    StatusClient(url, "token").follow("f 1", timeout=10, sleep=lambda _: None)
    assert asked == ["/uploads/f%201?code=abc"]


def test_a_refusal_is_said_in_the_functions_words(loopback_http: Serve) -> None:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        body = json.dumps({"error": {"code": "invalid_parameter", "message": "unknown parameter 'code'"}}).encode()
        handler.send_response(400)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with pytest.raises(StatusUnavailable, match="answered 400: unknown parameter 'code'"):
        StatusClient(loopback_http(answer) + "/uploads", "token").follow("f1", timeout=10, sleep=lambda _: None)
