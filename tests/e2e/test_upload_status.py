"""The uploads function behind the local gateway (HTTP through functions-framework), and `vod-upload --wait`
following a real upload's task flow to its end."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from shared.ingest import ingest_event
from shared.source_context import seal
from tests.conftest import command, run_command
from vodlocal import localstack
from vodtesting import sample_video, vod_event
from vodtesting.stack import VodStack, start_stack_with
from vodupload.errors import AuthenticationFailed
from vodupload.status import StatusClient, StatusUnavailable


@pytest.fixture
def stack_with_task_flow(monkeypatch: pytest.MonkeyPatch, start_vod_stack: Callable[..., VodStack]) -> VodStack:
    monkeypatch.setenv("VOD_PROCEDURE", "LongVideoPreset")  # every upload starts a task flow
    return start_vod_stack()


def test_the_status_api_over_http(stack_with_task_flow: VodStack, tmp_path: Path) -> None:
    stack = stack_with_task_flow
    committed = stack.upload(sample_video(tmp_path / "v.mp4", size=200_000), user="ann")
    stack.record(committed["fileId"])
    auth = {"Authorization": f"Bearer {stack.token('ann')}"}
    one = requests.get(
        f"{stack.gateway_url}/uploads/{committed['fileId']}", headers=auth, params={"wait": 5}, timeout=30
    )
    listed = requests.get(f"{stack.gateway_url}/uploads", headers=auth, timeout=30).json()
    others = requests.get(
        f"{stack.gateway_url}/uploads/{committed['fileId']}",
        timeout=30,
        headers={"Authorization": f"Bearer {stack.token('bob')}"},
    )
    assert one.status_code == 200 and one.json()["fileId"] == committed["fileId"] and one.headers["ETag"]
    assert [u["fileId"] for u in listed["uploads"]] == [committed["fileId"]]
    assert others.status_code == 404
    # Follow the task flow with ?wait until it stops changing: then the same ETag is a 304 with no body.
    tag, answers = one.headers["ETag"], list[requests.Response]()
    while len(answers) < 10 and (not answers or answers[-1].status_code == 200):
        answers.append(
            requests.get(
                f"{stack.gateway_url}/uploads/{committed['fileId']}",
                timeout=30,
                params={"wait": 2},
                headers={**auth, "If-None-Match": tag},
            )
        )
        tag = answers[-1].headers["ETag"]
    assert answers[-1].status_code == 304 and answers[-1].content == b""


def _upload_and_wait(stack: VodStack, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_command(
        "vod-upload",
        str(sample_video(tmp_path / "w.mp4", size=300_000)),
        "--gateway",
        stack.gateway_url,
        "--vod-endpoint",
        stack.emulator_url,
        "--wait",
        "--wait-timeout",
        "60",
        *args,
        "--checkpoint-dir",
        str(tmp_path / "checkpoints"),
        env={"VOD_UPLOAD_TOKEN": stack.token("wendy")},
        timeout=120,
    )


def test_vod_upload_wait_ends_with_the_finished_record(stack_with_task_flow: VodStack, tmp_path: Path) -> None:
    stack = stack_with_task_flow
    proc = _upload_and_wait(stack, tmp_path, "--json")
    assert proc.returncode == 0, proc.stderr
    done, settled = (json.loads(line) for line in proc.stdout.strip().splitlines()[-2:])
    assert done["status"] == "done"
    assert (settled["status"], settled["upload"]["fileId"], settled["upload"]["status"]) == (
        "settled",
        done["fileId"],
        "finished",
    )
    assert [t["status"] for t in settled["upload"]["tasks"]] == ["finished"]
    assert stack.record(done["fileId"]).user_id == "wendy"


def test_vod_upload_wait_shows_a_person_where_the_media_and_its_outputs_are(
    stack_with_task_flow: VodStack, tmp_path: Path
) -> None:
    proc = _upload_and_wait(stack_with_task_flow, tmp_path)
    assert proc.returncode == 0, proc.stderr
    file_id = re.findall(r"^file id +(\S+)$", proc.stdout, re.MULTILINE)[0]
    record = StatusClient(f"{stack_with_task_flow.gateway_url}/uploads", stack_with_task_flow.token("wendy")).get(
        file_id
    )[0]
    assert record is not None
    outputs = [output for task in record["tasks"] for output in task["outputs"]]
    shown = [f"  {o['type']}  {o['status'] or '-'}  {' '.join(o['urls'])}" for o in outputs]
    assert outputs and all(line in proc.stdout.splitlines() for line in shown), proc.stdout
    assert f"media      {record['mediaUrl']}" in proc.stdout.splitlines()


def _stuck_upload(stack: VodStack, video: Path) -> str:
    """The FileId of una's recorded upload of `video`, its task flow staying PROCESSING."""
    file_id = str(stack.upload(sample_video(video, size=200_000), user="una")["fileId"])
    stack.record(file_id)
    stuck = vod_event("ProcedureStateChanged", FileId=file_id, TaskId="t-stuck", Status="PROCESSING")
    ingest_event(stack.store, stuck, received_at=time.time(), keys=())
    return file_id


def test_following_an_upload_that_does_not_settle_ends_at_its_deadline(vod_stack: VodStack, tmp_path: Path) -> None:
    # GIVEN an upload whose task flow stays PROCESSING
    file_id = _stuck_upload(vod_stack, tmp_path / "s.mp4")
    answers: list[int] = []
    now = [0.0]  # the follower's clock: half a second passes with each answer

    def answered(response: requests.Response, *args: object, **kwargs: object) -> None:
        answers.append(response.status_code)
        now[0] += 0.5

    session = requests.Session()
    session.hooks["response"].append(answered)
    client = StatusClient(f"{vod_stack.gateway_url}/uploads", vod_stack.token("una"), session=session)
    # WHEN the uploader follows it for 1.5 s
    with pytest.raises(StatusUnavailable, match=r"had not settled after 1.5 s \(last status: processing\)"):
        client.follow(file_id, timeout=1.5, clock=lambda: now[0])
    # THEN it read it, long-polled once for the second that was left (unchanged: 304), and stopped with less
    # than a second left: no zero-second polls spinning to the deadline
    assert answers == [200, 304]


def test_following_never_spins_when_the_uploads_function_does_not_hold_requests(
    monkeypatch: pytest.MonkeyPatch, start_vod_stack: Callable[..., VodStack], tmp_path: Path
) -> None:
    # GIVEN an uploads function that answers at once (UPLOADS_MAX_WAIT_SECONDS=0, as a proxy with a short
    # timeout would), and an upload whose task flow stays PROCESSING
    monkeypatch.setenv("UPLOADS_MAX_WAIT_SECONDS", "0")
    stack = start_vod_stack()
    file_id = _stuck_upload(stack, tmp_path / "h.mp4")
    answers, pauses, now = list[int](), list[float](), [0.0]  # the follower's clock: 0.1 s an answer

    def answered(response: requests.Response, *args: object, **kwargs: object) -> None:
        answers.append(response.status_code)
        now[0] += 0.1

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    session = requests.Session()
    session.hooks["response"].append(answered)
    client = StatusClient(f"{stack.gateway_url}/uploads", stack.token("una"), session=session)
    # WHEN the uploader follows it for 10 s
    with pytest.raises(StatusUnavailable, match="had not settled after 10 s"):
        client.follow(file_id, timeout=10, clock=lambda: now[0], sleep=sleep)
    # THEN each unchanged answer that came at once is followed by a pause: a few requests, not a hundred
    assert answers == [200] + [304] * len(pauses)
    assert 3 <= len(pauses) <= 5 and set(pauses[:-1]) == {2.0}


def test_following_stops_when_the_upload_is_no_longer_the_users(vod_stack: VodStack, tmp_path: Path) -> None:
    # GIVEN a followed upload, still processing, that VOD's events then disagree about (another
    # sourceContext: a conflict, which the status API shows to nobody)
    file_id = _stuck_upload(vod_stack, tmp_path / "c.mp4")
    answers: list[int] = []

    def answered(response: requests.Response, *args: object, **kwargs: object) -> None:
        answers.append(response.status_code)
        if len(answers) == 1:
            other = vod_event("NewFileUpload", FileId=file_id, SourceContext="someone-else")
            ingest_event(vod_stack.store, other, received_at=time.time(), keys=())

    session = requests.Session()
    session.hooks["response"].append(answered)
    client = StatusClient(f"{vod_stack.gateway_url}/uploads", vod_stack.token("una"), session=session)
    # WHEN the uploader follows it THEN the 404 that follows ends the wait at once, saying why
    with pytest.raises(StatusUnavailable, match="no longer shown to this user"):
        client.follow(file_id, timeout=600, sleep=lambda _: None)
    assert answers == [200, 404]


@pytest.mark.parametrize(
    ("code", "outage", "answers", "failure"),
    [
        (503, 2, [503, 503, 200], None),  # its store down a while
        (503, None, [503] * 10, "had not settled after 10 s (not recorded yet); the uploads endpoint answered 503"),
        (500, None, [500], "the uploads endpoint answered 500"),  # a bug or a refused setting: no use waiting
    ],
    ids=["outage", "outage-past-the-deadline", "error"],
)
def test_following_rides_out_an_outage_of_the_uploads_function(
    vod_stack: VodStack, tmp_path: Path, code: int, outage: int | None, answers: list[int], failure: str | None
) -> None:
    # GIVEN a recorded upload, and an uploads endpoint that answers `code` `outage` times, or always
    committed = vod_stack.upload(sample_video(tmp_path / "o.mp4", size=200_000), user="una")
    vod_stack.record(committed["fileId"])
    seen: list[int] = []
    now = [0.0]  # the follower's clock: a second passes with each answer

    def down(response: requests.Response, *args: object, **kwargs: object) -> requests.Response:
        now[0] += 1.0
        if outage is None or len(seen) < outage:
            response.status_code = code
        seen.append(response.status_code)
        return response

    session = requests.Session()
    session.hooks["response"].append(down)
    client = StatusClient(f"{vod_stack.gateway_url}/uploads", vod_stack.token("una"), session=session)
    # WHEN the uploader follows it THEN it asks again after each 502/503/504, until an answer or its deadline
    if failure is None:
        assert client.follow(committed["fileId"], timeout=10, clock=lambda: now[0], sleep=lambda _: None)["status"]
    else:
        with pytest.raises(StatusUnavailable, match=re.escape(failure)):
            client.follow(committed["fileId"], timeout=10, clock=lambda: now[0], sleep=lambda _: None)
    assert seen == answers


@pytest.mark.parametrize(
    ("claims", "said"),
    [
        (None, "(401 invalid_token): invalid token: "),
        ({"exp": 1}, "(401 invalid_token): invalid token: token has expired"),  # refresh it: not a wrong setting
    ],
)
def test_a_refused_token_names_the_uploads_endpoint_and_why(
    vod_stack: VodStack, claims: dict[str, Any] | None, said: str
) -> None:
    token = "not-a-jwt" if claims is None else vod_stack.token("una", **claims)
    client = StatusClient(f"{vod_stack.gateway_url}/uploads", token)
    with pytest.raises(AuthenticationFailed, match=f"^the uploads endpoint refused {re.escape(said)}"):
        client.get("5285890784273533167")


def test_a_status_url_that_is_not_the_uploads_endpoint_fails_at_once(vod_stack: VodStack) -> None:
    # A 404 without the uploads function's not_found error is a wrong URL, not an upload still on its way.
    client = StatusClient(f"{vod_stack.gateway_url}/not-the-uploads", vod_stack.token("una"))
    seconds = itertools.count(0, 30)  # each look at the clock, half a minute later: waiting would end quickly
    with pytest.raises(StatusUnavailable, match="is not the uploads endpoint"):
        client.follow("5285890784273533167", timeout=600, clock=lambda: next(seconds), sleep=lambda _: None)


def test_an_upload_whose_waiting_fails_is_not_reported_as_failed(vod_stack: VodStack, tmp_path: Path) -> None:
    # A script that uploads again on "failed" (exit 1) would upload a second copy of a committed video.
    proc = run_command(
        "vod-upload",
        str(sample_video(tmp_path / "w.mp4", size=200_000)),
        *("--gateway", vod_stack.gateway_url, "--vod-endpoint", vod_stack.emulator_url, "--json", "--wait"),
        *("--status-url", f"{vod_stack.gateway_url}/not-the-uploads", "--checkpoint-dir", str(tmp_path / "c")),
        env={"VOD_UPLOAD_TOKEN": vod_stack.token("wendy")},
    )
    done, waited = (json.loads(line) for line in proc.stdout.strip().splitlines())
    assert proc.returncode == 5 and done["status"] == "done", proc.stderr
    assert (waited["status"], waited["fileId"]) == ("wait_failed", done["fileId"])
    assert "is not the uploads endpoint" in waited["error"]["message"] and "only the waiting failed" in proc.stderr
    assert vod_stack.record(done["fileId"]).user_id == "wendy"


def test_an_upload_whose_task_flow_failed_is_not_reported_as_failed(vod_stack: VodStack, tmp_path: Path) -> None:
    # GIVEN an uploads endpoint that reports the upload's task flow failed (VOD's transcoding refused the file)
    def failed_record(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        file_id = environ["PATH_INFO"].rsplit("/", 1)[-1]
        task = {
            "taskId": "t",
            "status": "failed",
            "vodStatus": "FINISH",
            "errCode": 70000,
            "message": "bad",
            "outputs": [],
        }
        body = {"fileId": file_id, "status": "failed", "mediaUrl": None, "tasks": [task]}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    server = localstack.serve_wsgi("failed-uploads", failed_record)
    try:
        proc = run_command(
            "vod-upload",
            str(sample_video(tmp_path / "f.mp4", size=200_000)),
            *("--gateway", vod_stack.gateway_url, "--vod-endpoint", vod_stack.emulator_url, "--json", "--wait"),
            *("--status-url", f"{server.url}/uploads", "--checkpoint-dir", str(tmp_path / "c")),
            env={"VOD_UPLOAD_TOKEN": vod_stack.token("fay")},
        )
    finally:
        server.stop()
    # THEN it exits 6, not 1: the upload is done, and a script retrying on failure would upload a second copy
    done, settled = (json.loads(line) for line in proc.stdout.strip().splitlines())
    assert proc.returncode == 6 and done["status"] == "done", proc.stderr
    assert (settled["status"], settled["upload"]["status"]) == ("settled", "failed")


def test_ctrl_c_while_waiting_says_the_upload_is_done(vod_stack: VodStack, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers: the wait goes on
        proc = subprocess.Popen(
            [
                command("vod-upload"),
                str(sample_video(tmp_path / "c.mp4", size=200_000)),
                *("--gateway", vod_stack.gateway_url, "--vod-endpoint", vod_stack.emulator_url),
                *("--status-url", f"http://127.0.0.1:{silent.getsockname()[1]}/uploads", "--wait", "--json"),
                *("--checkpoint-dir", str(tmp_path / "checkpoints")),
            ],
            env={**os.environ, "PYTHONUNBUFFERED": "1", "VOD_UPLOAD_TOKEN": vod_stack.token("carl")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        done = json.loads(proc.stdout.readline())  # the upload's own result: from now on it waits
        assert done["status"] == "done", proc.stderr.read() if proc.stderr else ""
        held, _ = silent.accept()  # the first status request has arrived; it is never answered
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        held.close()
    assert proc.returncode == 130 and "Traceback" not in stderr
    assert json.loads(stdout) == {"status": "stopped_waiting", "fileId": done["fileId"]}
    assert "stopped waiting; the upload itself is done" in stderr


@pytest.mark.parametrize("file_id", ["a%41", "f/x", "uploads"])
def test_over_http_a_file_id_is_decoded_once(vod_stack: VodStack, file_id: str) -> None:
    # GIVEN two of una's uploads, one of whose FileId decoded twice would be the other's ("a%41" -> "aA")
    key = vod_stack.settings["VOD_CONTEXT_KEY"]
    for one in (file_id, "aA"):
        event = vod_event("NewFileUpload", FileId=one, SourceContext=seal("una", "r", key))
        ingest_event(vod_stack.store, event, received_at=1.0, keys=(key,))
    # WHEN she asks for it by its URL, as the status client builds it THEN it is the one she asked for
    url = f"{vod_stack.gateway_url}/uploads/{quote(file_id, safe='')}"
    answer = requests.get(url, headers={"Authorization": f"Bearer {vod_stack.token('una')}"}, timeout=10)
    assert (answer.status_code, answer.json().get("fileId")) == (200, file_id), answer.text


def test_a_stack_stopped_during_a_long_poll_leaves_no_database_open(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a stack whose uploads function is answering a ?wait poll (it takes a connection again at each look)
    stack = start_stack_with(monkeypatch, tmp_path / "stack")
    try:
        committed = stack.upload(sample_video(tmp_path / "v.mp4", size=100_000), user="ann")
        stack.record(committed["fileId"])
        url = f"{stack.gateway_url}/uploads/{committed['fileId']}"
        auth = {"Authorization": f"Bearer {stack.token('ann')}"}
        tag = requests.get(url, headers=auth, timeout=30).headers["ETag"]
        answers: list[int] = []
        poll = threading.Thread(
            target=lambda: answers.append(
                requests.get(url, headers={**auth, "If-None-Match": tag}, params={"wait": 3}, timeout=30).status_code
            )
        )
        poll.start()
        time.sleep(1)
    finally:
        # WHEN the stack stops meanwhile, and the poll ends after
        stack.stop()
    poll.join()
    # THEN the poll was answered, and the database it used is closed all the same
    assert answers == [304]
    assert not [name for name in _open_files() if str(tmp_path / "stack") in name]


def _open_files() -> list[str]:
    names = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed since
            names.append(os.readlink(f"/proc/self/fd/{fd}"))
    return names
