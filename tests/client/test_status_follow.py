"""StatusClient.follow against an uploads endpoint that misbehaves as networks and gateways do (a scripted HTTP
server on loopback: the real uploads function never answers like this, which is the point)."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import requests

from tests.conftest import Serve, closed_loopback_port
from vodupload import status
from vodupload.status import StatusClient, StatusUnavailable

Scripted = Callable[..., str]  # the scripted fixture: actions -> the endpoint's URL
PROCESSING = {"fileId": "f1", "status": "processing", "tasks": []}
FINISHED = {"fileId": "f1", "status": "finished", "tasks": []}
# The uploads function's answer for an upload it does not show (not recorded yet, or not the user's)
NOT_FOUND: tuple[int, dict[str, str], Any] = (404, {}, {"error": {"code": "not_found", "message": "no such upload"}})


def _answer(handler: BaseHTTPRequestHandler, action: Any, stop: threading.Event) -> None:
    """One scripted answer: a record (200), (status, headers) with an empty JSON body (or (status, headers, body)),
    raw bytes (200), or "drop" (the connection closed unanswered), "cut" (closed in the middle of the body), "hang"
    (no answer)."""
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
        status, headers, body = action[0], action[1], json.dumps(action[2] if len(action) > 2 else {}).encode()
    handler.send_response(status)
    for name, value in {"Content-Type": "application/json", **headers}.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class Timeline:
    """The follower's clock and sleep: time passes only by `took` seconds with each answer, and by its pauses."""

    def __init__(self, took: float = 0.0) -> None:
        self.now, self.took, self.pauses = 0.0, took, list[float]()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def session(self) -> requests.Session:
        session = requests.Session()
        session.hooks["response"].append(self._answered)
        return session

    def _answered(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        self.now += self.took


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


@pytest.mark.parametrize("settled", ["uploaded", "finished", "failed", "deleted"])
def test_a_settled_status_ends_the_wait(scripted: Scripted, settled: str) -> None:
    # GIVEN an endpoint that shows the upload settled (and nothing else after it)
    timeline = Timeline(took=0.5)
    client = StatusClient(scripted({**PROCESSING, "status": settled}), "token", session=timeline.session())
    # WHEN the uploader follows it THEN it has its record at the first answer
    assert client.follow("f1", timeout=60, clock=timeline.clock, sleep=timeline.sleep)["status"] == settled
    assert timeline.pauses == []


@pytest.mark.parametrize("passing", ["processing", "transcoding"], ids=["processing", "a-status-not-known-yet"])
def test_any_other_status_is_followed_until_the_upload_settles(scripted: Scripted, passing: str) -> None:
    # GIVEN an upload that is processing, then in `passing` (a status a later uploads function may add), then done
    heard: list[str] = []
    script = (PROCESSING, {**PROCESSING, "status": passing, "tasks": [{"taskId": "t"}]}, FINISHED)
    client = StatusClient(scripted(*script), "token")
    # WHEN the uploader follows it THEN it hears each, and ends only at the settled one
    record = client.follow("f1", timeout=60, on_update=lambda u: heard.append(u["status"]), sleep=lambda _: None)
    assert (record["status"], heard) == ("finished", ["processing", passing, "finished"])


@pytest.mark.parametrize(
    ("took", "pauses"),
    [(0.5, [2.0]), (status.HELD_SECONDS, []), (float(status.WAIT_SECONDS), [])],
    ids=["answered-at-once", "held-a-second", "held-the-whole-wait"],
)
def test_only_an_unchanged_answer_that_came_at_once_is_followed_by_a_pause(
    scripted: Scripted, took: float, pauses: list[float]
) -> None:
    # GIVEN an endpoint that shows the same record twice, then the settled one, each answer `took` seconds after
    # its request (a proxy answering at once, or the uploads function holding the request)
    timeline = Timeline(took)
    client = StatusClient(scripted(PROCESSING, PROCESSING, FINISHED), "token", session=timeline.session())
    # WHEN the uploader follows it
    assert client.follow("f1", timeout=600, clock=timeline.clock, sleep=timeline.sleep)["status"] == "finished"
    # THEN it paused only after the unchanged answer that was not held: a changed one, or a held one, is asked on
    assert timeline.pauses == pauses


@pytest.mark.parametrize(
    ("script", "pauses", "failure"),
    [
        ((NOT_FOUND, NOT_FOUND, FINISHED), [1.0, 1.0], None),  # not recorded yet: VOD's event is on its way
        ((PROCESSING, NOT_FOUND), [], "upload f1 is no longer shown to this user"),  # shown, then someone else's
    ],
    ids=["not-recorded-yet", "no-longer-shown"],
)
def test_a_not_found_is_waited_out_only_until_the_upload_is_shown(
    scripted: Scripted, script: tuple[Any, ...], pauses: list[float], failure: str | None
) -> None:
    timeline = Timeline()
    client = StatusClient(scripted(*script), "token", session=timeline.session())
    if failure is None:
        assert client.follow("f1", timeout=60, clock=timeline.clock, sleep=timeline.sleep)["status"] == "finished"
    else:
        with pytest.raises(StatusUnavailable, match=failure):
            client.follow("f1", timeout=60, clock=timeline.clock, sleep=timeline.sleep)
    assert timeline.pauses == pauses


def test_an_endpoint_never_reached_fails_at_once() -> None:
    # GIVEN a status URL nothing answers at (a wrong port, say)
    timeline = Timeline()
    client = StatusClient(f"http://127.0.0.1:{closed_loopback_port()}/uploads?code=key-in-the-query", "token")
    # WHEN the uploader follows an upload there THEN it says so at once: no pause, no waiting out the deadline
    with pytest.raises(StatusUnavailable, match=r"^the uploads endpoint could not be reached: ConnectionError$") as e:
        client.follow("f1", timeout=600, clock=timeline.clock, sleep=timeline.sleep)
    assert timeline.pauses == []
    # and its traceback, logged, quotes no part of the URL requests' own error would (a key in its query, say)
    assert "key-in-the-query" not in "".join(traceback.format_exception(e.value))


def test_a_settled_upload_is_read_with_less_than_a_second_left(scripted: Scripted) -> None:
    # GIVEN a follow of a second, and a clock a quarter second later at each look: less than a second to wait
    ticks = itertools.count(0.0, 0.25)
    asked: list[str] = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, *args, **kwargs: asked.append(response.request.url))
    client = StatusClient(scripted(FINISHED), "token", session=session)
    # WHEN the uploader follows a settled upload THEN it still asks once, at once (no long poll), and has it
    assert client.follow("f1", timeout=1, clock=lambda: next(ticks), sleep=lambda _: None)["status"] == "finished"
    assert len(asked) == 1 and "wait=" not in asked[0], asked


@pytest.mark.parametrize(
    ("script", "pauses", "said"),
    [
        # asked to come back after the deadline: waited until the deadline only, and the trouble said
        (
            (PROCESSING, (429, {"Retry-After": "30"})),
            [9.0],
            "(last status: processing); the uploads endpoint answered 429",
        ),
        # a trouble ridden out is not said at the deadline; the last pause is what was left of the wait
        ((PROCESSING, (503, {}), PROCESSING), [2.0, 2.0, 2.0, 1.5], "(last status: processing)"),
    ],
    ids=["asked-to-come-back-too-late", "trouble-ridden-out"],
)
def test_the_wait_ends_at_its_deadline_saying_how_it_stood(
    scripted: Scripted, script: tuple[Any, ...], pauses: list[float], said: str
) -> None:
    timeline = Timeline(took=0.5)
    client = StatusClient(scripted(*script), "token", session=timeline.session())
    with pytest.raises(StatusUnavailable, match=f"^upload f1 had not settled after 10 s {re.escape(said)}$"):
        client.follow("f1", timeout=10, clock=timeline.clock, sleep=timeline.sleep)
    assert timeline.pauses == pauses
