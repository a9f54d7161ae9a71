"""`vod-upload` as a person (or a script) runs it: separate processes, killed and interrupted ones
included, against the emulator and the signature function on loopback."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from tests.client.conftest import MIB, BusyGateway, Stack, Traffic, closed_port_url, write_file
from tests.conftest import JWT_SECRET, LeakGuard
from vodlocal import localstack
from vodupload import VodUnavailable
from vodupload.cli import _settled_text, parse_args, signature_url, status_url


class Child:
    """A running CLI process whose stderr is collected as it arrives."""

    def __init__(self, stack: Stack, *args: str | Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            stack.cli_args(*args), env=env or stack.cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._stderr: list[str] = []
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._arrived:
                self._stderr.append(line)
                self._arrived.notify_all()

    def wait_for_stderr(self, text: str, timeout: float = 60) -> None:
        with self._arrived:
            assert self._arrived.wait_for(lambda: text in self.stderr, timeout), self.stderr

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        assert self.proc.stdout is not None
        stdout = self.proc.stdout.read()
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code, stdout, self.stderr


def interrupted_upload(
    stack: Stack,
    video: Path,
    parts: int,
    interrupt: Callable[[Child, Traffic], None],
    *args: str,
    env: dict[str, str] | None = None,
) -> Child:
    """Start the CLI (with `args`, in `env`) with COS holding part uploads after `parts`; interrupt it once they are
    stored."""
    stack.traffic.hold_parts_after(parts)
    child = Child(stack, video, "--json", *args, env=env)
    stack.traffic.wait_until(lambda t: t.parts_stored == parts and t.held >= 1)
    interrupt(child, stack.traffic)
    return child


def sigkill(child: Child, traffic: Traffic) -> None:
    child.proc.kill()
    child.proc.wait(30)
    traffic.release(let_through=False)


def ctrl_c(child: Child, traffic: Traffic, sent: signal.Signals = signal.SIGINT) -> None:
    child.proc.send_signal(sent)
    child.wait_for_stderr("pausing")  # only then may the held parts finish: no new part starts after this
    traffic.release(let_through=True)


def no_leaks(guard: LeakGuard, *outputs: str) -> None:
    assert guard.leaks_in("".join(outputs)) == []


def test_a_killed_upload_resumes_sending_only_the_missing_parts(
    stack: Stack, tmp_path: Path, leak_guard: LeakGuard
) -> None:
    video = write_file(tmp_path / "match.mp4", 8 * MIB)
    killed = interrupted_upload(stack, video, 3, sigkill)
    assert killed.finish()[0] == -signal.SIGKILL
    before = stack.emulator.store.bytes_received
    assert before == 3 * MIB and len(stack.saved()) == 1
    stored = stack.traffic.parts_sent()

    rerun = stack.cli(video, "--json")

    assert rerun.returncode == 0, rerun.stderr
    assert "resuming the saved upload: 3.0 of 8.0 MiB already uploaded" in rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["status"] == "done" and result["bytesResumed"] == 3 * MIB
    assert stack.emulator.store.bytes_received - before == 5 * MIB  # parts 1-3 were not sent again
    # ListParts told the new process which parts COS has: the rest went into the same multipart upload.
    resent = stack.traffic.parts_sent()[len(stored) :]
    assert len({upload for upload, _ in stored + resent}) == 1
    assert sorted(number for _, number in resent) == sorted({1, 2, 3, 4, 5, 6, 7, 8} - {n for _, n in stored})
    assert stack.served(result["videoUrl"]) == video.read_bytes()
    assert stack.saved() == [] and stack.open_uploads() == []
    no_leaks(leak_guard, killed.stderr, rerun.stdout, rerun.stderr)


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_ctrl_c_pauses_with_the_progress_saved_and_a_rerun_resumes(
    stack: Stack, tmp_path: Path, leak_guard: LeakGuard, sent: signal.Signals
) -> None:
    video = write_file(tmp_path / "lecture.mp4", 6 * MIB)
    child = interrupted_upload(stack, video, 2, lambda child, traffic: ctrl_c(child, traffic, sent))

    code, stdout, stderr = child.finish()

    assert code == 130, stderr
    assert "Run the same command again to resume" in stderr and "Traceback" not in stderr
    paused = json.loads(stdout)
    assert paused["status"] == "paused" and 2 * MIB <= paused["bytesDone"] < 6 * MIB
    rerun = stack.cli(video, "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming the saved upload" in rerun.stderr
    assert stack.emulator.store.bytes_received == 6 * MIB
    assert stack.served(json.loads(rerun.stdout)["videoUrl"]) == video.read_bytes()
    no_leaks(leak_guard, stdout, stderr, rerun.stdout, rerun.stderr)


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_ctrl_c_while_the_signature_function_says_to_wait_pauses_at_once(
    stack: Stack, busy_gateway: BusyGateway, tmp_path: Path, sent: signal.Signals
) -> None:
    # GIVEN a run whose signature function is busy: 503, ask again in 30 s (on each of the client's 4 tries)
    env = stack.cli_env(VOD_UPLOAD_GATEWAY=busy_gateway.url)
    child = Child(stack, write_file(tmp_path / "clip.mp4", MIB), "--json", env=env)
    assert busy_gateway.asked.wait(30)
    # WHEN the user presses Ctrl-C (or the service manager stops it) while it waits
    child.proc.send_signal(sent)
    # THEN it pauses now, not after the wait, and says so as a pause does
    code, stdout, stderr = child.finish(timeout=15)
    assert code == 130, stderr
    assert json.loads(stdout)["status"] == "paused" and "Traceback" not in stderr


def test_a_cancel_while_a_run_waits_for_its_first_signature_is_refused(
    stack: Stack, busy_gateway: BusyGateway, tmp_path: Path
) -> None:
    # GIVEN a run that holds the file but has saved nothing yet: its signature function is busy (503, 30 s)
    video = write_file(tmp_path / "early.mp4", MIB)
    env = stack.cli_env(VOD_UPLOAD_GATEWAY=busy_gateway.url)
    child = Child(stack, video, "--json", env=env)
    assert busy_gateway.asked.wait(30)
    # WHEN the same file is cancelled THEN that is refused, as during any run: it may yet start an upload
    again = stack.cli(video, "--json", "--cancel", env=env)
    assert again.returncode == 1 and "being uploaded by another run" in again.stderr, again.stderr
    child.proc.send_signal(signal.SIGINT)
    assert child.finish(timeout=15)[0] == 130


@pytest.mark.parametrize("second", [(), ("--cancel",)], ids=["upload", "cancel"])
def test_a_second_run_of_the_same_file_meanwhile_is_refused_and_the_first_completes(
    stack: Stack, tmp_path: Path, leak_guard: LeakGuard, second: tuple[str, ...]
) -> None:
    # GIVEN a run whose part uploads COS holds after the third
    video = write_file(tmp_path / "twice.mp4", 8 * MIB)
    first = interrupted_upload(stack, video, 3, lambda child, traffic: None)
    # WHEN the same file is uploaded (or cancelled) again meanwhile
    again = stack.cli(video, "--json", *second)
    # THEN that run is refused before it asks VOD anything, and the first one's upload is untouched
    assert again.returncode == 1 and "being uploaded by another run" in again.stderr, again.stderr
    assert "progress is saved" not in again.stderr  # that is the other run's
    assert stack.traffic.actions() == ["ApplyUploadUGC"] and len(stack.saved()) == 1
    stack.traffic.release(let_through=True)
    code, stdout, stderr = first.finish()
    assert code == 0, stderr
    assert stack.served(json.loads(stdout)["videoUrl"]) == video.read_bytes()
    assert stack.saved() == [] and stack.open_uploads() == []
    no_leaks(leak_guard, again.stdout, again.stderr, stdout, stderr)


def _session_expires(stack: Stack) -> None:
    stack.clock.advance(301)  # past the session's resume window at VOD


def _signature_from_a_skewed_clock(stack: Stack) -> None:
    stack.clock.advance(-3600)  # VOD finds the CLI's signatures an hour early


def _vod_unreachable(stack: Stack) -> None:
    stack.traffic.vod_down = True


def test_a_file_that_changes_while_it_is_sent_stops_the_upload_and_says_to_start_over(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN an upload of 8 parts under way, its first part stored
    video = write_file(tmp_path / "recording.mp4", 8 * MIB)
    stack.traffic.hold_parts_after(1)
    child = Child(stack, video)
    stack.traffic.wait_until(lambda t: t.parts_stored == 1 and t.held >= 1)
    # WHEN the file grows (a recorder still writing it)
    with open(video, "ab") as out:
        out.write(b"more")
    stack.traffic.release(let_through=True)
    code, _, stderr = child.finish()
    # THEN the upload stops at its next part, and says to start over (not that its progress is saved)
    assert code == 1 and "changed during the upload; run the upload again to start over" in stderr, stderr
    assert "progress is saved" not in stderr
    assert len(stack.traffic.parts_sent()) <= 3  # the first, and the two read before the change


@pytest.mark.parametrize(
    ("disruption", "code", "status", "message", "left"),
    [
        (None, 0, "cancelled", "its unfinished parts were deleted", 0),
        # VOD refuses the session, for whatever reason: forgotten, but its parts cannot be deleted; it says so
        (_session_expires, 0, "cancelled", "its uploaded parts could NOT be deleted", 1),
        (_signature_from_a_skewed_clock, 0, "cancelled", "its uploaded parts could NOT be deleted", 1),
        # VOD cannot be reached: nothing is given up, a later --cancel can still clean up
        (_vod_unreachable, 1, "failed", "nothing was discarded: the saved upload is kept", 1),
    ],
    ids=["session-alive", "session-expired", "signature-refused", "vod-unreachable"],
)
def test_cancel_discards_a_saved_upload_and_says_whether_its_parts_were_deleted(
    start_stack: Callable[..., Stack],
    tmp_path: Path,
    disruption: Callable[[Stack], None] | None,
    code: int,
    status: str,
    message: str,
    left: int,
) -> None:
    stack = start_stack(session_ttl_seconds=300)
    video = write_file(tmp_path / "outtake.mp4", 5 * MIB)
    interrupted_upload(stack, video, 2, sigkill).finish()
    assert len(stack.open_uploads()) == 1
    if disruption is not None:
        disruption(stack)

    cancelled = stack.cli(video, "--cancel", "--json")

    result = json.loads(cancelled.stdout)
    assert (cancelled.returncode, result["status"]) == (code, status), cancelled.stderr
    assert message in cancelled.stderr and "Traceback" not in cancelled.stderr
    assert len(stack.open_uploads()) == left
    if status == "cancelled":
        assert result == {"status": "cancelled", "partsDeleted": not left}
        refused = "could not delete the abandoned upload's parts (VOD refused its session"
        assert (refused in cancelled.stderr) is bool(left)
        assert stack.saved() == []
    else:
        assert result["error"]["kind"] == "failed" and len(stack.saved()) == 1
        stack.traffic.vod_down = False  # VOD is back: cancelling again cleans up
        retried = stack.cli(video, "--cancel", "--json")
        assert (retried.returncode, json.loads(retried.stdout)["partsDeleted"]) == (0, True), retried.stderr
        assert stack.open_uploads() == [] and stack.saved() == []
    again = stack.cli(video, "--cancel", "--json")
    assert (again.returncode, json.loads(again.stdout)) == (0, {"status": "nothing_to_cancel"})


def test_a_cancel_after_vod_committed_the_upload_says_it_is_uploaded_and_exits_1(stack: Stack, tmp_path: Path) -> None:
    # GIVEN a saved upload whose commit VOD did, every answer to it lost on the way
    video = write_file(tmp_path / "clip.mp4", 3 * MIB)
    stack.traffic.commits_unanswered = 4  # the first try and the uploader's three retries
    with pytest.raises(VodUnavailable):
        stack.uploader().upload(video).run()
    # WHEN the user cancels it
    cancelled = stack.cli(video, "--cancel", "--json")
    # THEN too late: exit 1 (not 0: nothing was cancelled), with the file id VOD confirms
    result = json.loads(cancelled.stdout)
    file_ids = {call.answer["data"]["fileId"] for call in stack.traffic.calls if call.action == "CommitUploadUGC"}
    assert (cancelled.returncode, result["status"]) == (1, "already_uploaded"), cancelled.stderr
    assert file_ids == {result["fileId"]} and stack.served(result["videoUrl"]) == video.read_bytes()
    assert "VOD confirms it" in cancelled.stderr and stack.saved() == []


def test_vod_refusing_the_upload_exits_4_with_vods_code(stack: Stack, tmp_path: Path) -> None:
    # GIVEN VOD that refuses the CLI's signatures (its clock an hour behind: they are not valid yet)
    _signature_from_a_skewed_clock(stack)
    # WHEN the CLI uploads
    failed = stack.cli(write_file(tmp_path / "clip.mp4", 1000), "--json")
    # THEN it exits 4, refused (by VOD as by the signature endpoint's policy), VOD's code in --json's line
    error = json.loads(failed.stdout)["error"]
    refused = next(call.answer for call in stack.traffic.calls if call.answer["code"] != 0)
    assert (failed.returncode, error["kind"], error["code"]) == (4, "refused", refused["code"]), failed.stderr


def test_a_checkpoint_that_cannot_be_removed_after_the_commit_is_only_a_notice(stack: Stack, tmp_path: Path) -> None:
    # The upload is committed: failing it now would lose its file id, and a rerun would upload it again.
    video = write_file(tmp_path / "clip.mp4", 2 * MIB)
    saved: list[Path] = []

    def block_the_checkpoint(action: str) -> None:
        if action == "CommitUploadUGC":  # all parts sent: a directory where the checkpoint is, so it stays
            saved.extend(stack.saved())
            saved[0].unlink()
            (saved[0] / "in-the-way").mkdir(parents=True)

    stack.traffic.before_call = block_the_checkpoint
    done = stack.cli(video, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "done" and "Traceback" not in done.stderr
    assert f"cannot remove {saved[0]}" in done.stderr and "delete it by hand" in done.stderr


def _ctrl_c_twice(child: Child, traffic: Traffic) -> None:
    child.proc.send_signal(signal.SIGINT)
    child.wait_for_stderr("pausing")
    child.proc.send_signal(signal.SIGINT)  # the held parts have not finished: quit at once


def _ctrl_c_until_gone(child: Child, traffic: Traffic) -> None:
    _ctrl_c_twice(child, traffic)
    while child.proc.poll() is None:  # a third, and more, as the process quits (a held-down key, a supervisor)
        child.proc.send_signal(signal.SIGINT)
        time.sleep(0.001)


@pytest.mark.parametrize("interrupt", [_ctrl_c_twice, _ctrl_c_until_gone], ids=["twice", "until-gone"])
def test_a_second_ctrl_c_quits_at_once_and_still_says_so_in_json(
    stack: Stack, tmp_path: Path, interrupt: Callable[[Child, Traffic], None]
) -> None:
    child = interrupted_upload(stack, write_file(tmp_path / "quit.mp4", 6 * MIB), 2, interrupt)
    code, stdout, stderr = child.finish()
    stack.traffic.release(let_through=False)
    assert code == 130 and "Traceback" not in stderr
    result = json.loads(stdout)  # what the client had heard was stored: a stored part's answer may still be due
    assert result["status"] == "stopped" and 0 < result["bytesDone"] <= 2 * MIB and len(stack.saved()) == 1


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_an_interrupt_after_the_result_line_keeps_its_exit_status(
    stack: Stack, tmp_path: Path, sent: signal.Signals
) -> None:
    # GIVEN a run that has printed its outcome: the upload is done
    child = Child(stack, write_file(tmp_path / "late-ctrl-c.mp4", MIB), "--json")
    assert child.proc.stdout is not None
    line = child.proc.stdout.readline()
    # WHEN Ctrl-C (or SIGTERM) keeps arriving until the process is gone
    while child.proc.poll() is None:
        child.proc.send_signal(sent)
        time.sleep(0.001)
    # THEN the exit status is still the line's: a script trusting it does not upload the file again
    code, _, stderr = child.finish()
    assert (code, json.loads(line)["status"]) == (0, "done") and "Traceback" not in stderr, stderr


@pytest.mark.parametrize("flags", [("--json",), ()], ids=["json", "text"])
def test_a_result_line_nobody_reads_keeps_the_exit_status(stack: Stack, tmp_path: Path, flags: tuple[str, ...]) -> None:
    # GIVEN a run whose stdout's reader has gone (`vod-upload … | true`)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            stack.cli_args(write_file(tmp_path / "unread.mp4", MIB), *flags),
            env=stack.cli_env(),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    # THEN the upload done is still exit 0 (a script that retries on failure would upload it again)
    assert (proc.returncode, "Traceback" in proc.stderr) == (0, False), proc.stderr


def test_ctrl_c_during_a_cancel_keeps_the_saved_upload(start_stack: Callable[..., Stack], tmp_path: Path) -> None:
    stack = start_stack()
    video = write_file(tmp_path / "outtake.mp4", 5 * MIB)
    interrupted_upload(stack, video, 2, sigkill).finish()
    stack.traffic.vod_down = True  # the cancel keeps retrying VOD
    proc = subprocess.Popen(
        stack.cli_args(video, "--cancel", "--json"),
        env=stack.cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stack.traffic.wait_until(lambda traffic: traffic.bad_gateways > 0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr
    assert json.loads(stdout) == {"status": "cancel_stopped"} and "run the same command again" in stderr
    assert len(stack.saved()) == 1 and len(stack.open_uploads()) == 1


def test_a_rerun_starts_over_and_says_so_when_vod_refuses_the_saved_upload(
    start_stack: Callable[..., Stack], tmp_path: Path, leak_guard: LeakGuard
) -> None:
    stack = start_stack(session_ttl_seconds=300)
    video = write_file(tmp_path / "late.mp4", 4 * MIB)
    interrupted_upload(stack, video, 2, sigkill).finish()
    old_upload = stack.saved_session()["objects"][0]["upload_id"]
    _session_expires(stack)

    rerun = stack.cli(video, "--json")

    assert rerun.returncode == 0, rerun.stderr
    assert "VOD refused to continue the saved upload" in rerun.stderr and "starting over" in rerun.stderr
    # A new process holds no credentials for the refused session: the old parts stay, and it says so.
    assert "could not delete the abandoned upload's parts" in rerun.stderr
    result = json.loads(rerun.stdout)
    assert (result["status"], result["bytesResumed"]) == ("done", 0)
    assert stack.served(result["videoUrl"]) == video.read_bytes()
    assert stack.open_upload_ids() == {old_upload} and stack.saved() == []
    no_leaks(leak_guard, rerun.stdout, rerun.stderr)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"], ids=["ipv4", "ipv6"])  # --vod-endpoint http://[::1]:…
def test_json_output_of_an_upload_with_a_cover(start_stack: Callable[..., Stack], tmp_path: Path, host: str) -> None:
    stack = start_stack(host=host)
    video = write_file(tmp_path / "trip.mp4", 3 * MIB + 5)
    cover = write_file(tmp_path / "trip.png", 4096, seed=3)

    done = stack.cli(video, "--cover", cover, "--json")

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {"status", "fileId", "videoUrl", "coverUrl", "bytes", "bytesResumed"}
    assert (result["status"], result["bytes"], result["bytesResumed"]) == ("done", 3 * MIB + 5 + 4096, 0)
    assert stack.served(result["videoUrl"]) == video.read_bytes()
    assert stack.served(result["coverUrl"]) == cover.read_bytes()


def test_plain_output_names_the_file_id_and_urls(stack: Stack, tmp_path: Path) -> None:
    done = stack.cli(write_file(tmp_path / "short.mov", 1000))

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["file", "video"]
    assert lines[1].split()[-1].endswith(".mov")


def test_a_401_from_another_function_says_the_url_may_be_wrong(
    start_stack: Callable[..., Stack], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leak_guard: LeakGuard
) -> None:
    # The callback's URL given for the signature endpoint's: its 401 is about VOD's Sign, not the token.
    monkeypatch.setenv("VOD_CALLBACK_SIGN_KEY", "Key123")  # read by the callback as the stack starts
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/vod.sqlite3")
    stack = start_stack()
    callback = stack.signature_url.removesuffix("/signature") + "/vod-events"
    failed = stack.cli(write_file(tmp_path / "clip.mp4", 1000), env=stack.cli_env(VOD_UPLOAD_GATEWAY=callback))
    assert failed.returncode == 3, failed.stderr
    assert "(401 missing_signature)" in failed.stderr and f"is {callback} its URL?" in failed.stderr
    no_leaks(leak_guard, failed.stdout, failed.stderr)


@pytest.mark.parametrize(
    ("flag", "said"),
    [
        ("--gateway", "no signature from http://127.0.0.1:"),  # a closed port
        ("--status-url", "http://127.0.0.1:"),  # an uploads endpoint that answers 404 without its not_found
        ("--vod-endpoint", "no answer from VOD at http://127.0.0.1:"),  # a closed port
    ],
)
def test_what_an_endpoints_url_carries_is_never_quoted(stack: Stack, tmp_path: Path, flag: str, said: str) -> None:
    # A gateway that takes a password or an API key in its URL: the messages (stderr, --json) go into CI logs
    where = stack.signature_url.replace("/signature", "/nowhere") if flag == "--status-url" else closed_port_url()
    where = where.removesuffix("/signature") if flag == "--vod-endpoint" else where
    url = where.replace("http://", "http://alice:GwPassw0rd99@") + ("" if flag == "--vod-endpoint" else "?api_key=K3y")
    args = ["--gateway", stack.signature_url, *(["--wait"] if flag == "--status-url" else []), flag, url]
    failed = stack.cli(write_file(tmp_path / "clip.mp4", 1000), "--json", *args, env=stack.cli_env())
    assert failed.returncode in (1, 5) and said in failed.stderr, failed.stderr  # which endpoint, still said
    assert not {"alice", "GwPassw0rd99", "K3y"} & set(re.findall(r"\w+", failed.stdout + failed.stderr))


def _env(**values: str | Callable[[], str]) -> Callable[[Stack], dict[str, str]]:
    """The CLI's environment with these changes; a callable value is computed when the test runs."""
    return lambda stack: stack.cli_env(
        **{name: value() if callable(value) else value for name, value in values.items()}
    )


@pytest.mark.parametrize(
    ("args", "env", "code", "message", "kind"),
    [
        ([], _env(VOD_UPLOAD_TOKEN="expired.or.forged"), 3, "(401 invalid_token)", "authentication_failed"),
        (["--procedure", "not-allowed"], _env(), 4, "(403 policy_violation)", "refused"),
        ([], _env(VOD_UPLOAD_GATEWAY=closed_port_url), 1, "no signature from", "failed"),
        ([], _env(VOD_UPLOAD_TOKEN=""), 2, "no bearer token", "usage"),
        (
            [],
            _env(VOD_UPLOAD_GATEWAY="ftp://example.com"),
            2,
            "VOD_UPLOAD_GATEWAY) 'ftp://example.com' is not",
            "usage",
        ),
        # before any signature is spent, or any upload made that only its waiting could fail
        (
            [],
            _env(VOD_UPLOAD_ENDPOINT="ftp://127.0.0.1:1"),
            2,
            "--vod-endpoint (or VOD_UPLOAD_ENDPOINT) 'ftp://",
            "usage",
        ),
        (
            ["--wait"],
            _env(VOD_UPLOAD_STATUS_URL="::"),
            2,
            "--status-url (or VOD_UPLOAD_STATUS_URL) '::' is not",
            "usage",
        ),
        (
            ["--wait", "--status-url", "http://h:port/uploads"],
            _env(),
            2,
            "VOD_UPLOAD_STATUS_URL) 'http://h:port",
            "usage",
        ),
        (["--part-size", "0"], _env(), 2, "MiB, from 1 to 5120 (got '0')", "usage"),
        (["--part-size", "5121"], _env(), 2, "MiB, from 1 to 5120 (got '5121')", "usage"),
        (["--parallel", "0"], _env(), 2, "--parallel: must be a whole number, at least 1 (got '0')", "usage"),
        (["--wait", "--wait-timeout", "0"], _env(), 2, "at least 1 (got '0')", "usage"),  # before any upload
        (["--wait", "--wait-timeout", "-5"], _env(), 2, "at least 1 (got '-5')", "usage"),
        ([], _env(VOD_UPLOAD_TOKEN="eyJhbGciOi…"), 3, "cannot carry", "authentication_failed"),  # the README's
        ([], _env(VOD_UPLOAD_TOKEN="eyJ.pasted\nin.two"), 3, "cannot carry", "authentication_failed"),
    ],
    ids=[
        "401",
        "403",
        "gateway-down",
        "no-token",
        "bad-gateway",
        "bad-vod-endpoint",
        "bad-status-url",
        "bad-status-port",
        "bad-part-size",
        "too-large-part-size",
        "no-parallel",
        "zero-wait",
        "negative-wait",
        "token-with-ellipsis",
        "token-with-line-break",
    ],
)
def test_failures_exit_with_a_clear_message_and_status(
    stack: Stack,
    tmp_path: Path,
    leak_guard: LeakGuard,
    args: list[str],
    env: Callable[[Stack], dict[str, Any]],
    code: int,
    message: str,
    kind: str,
) -> None:
    failed = stack.cli(write_file(tmp_path / "clip.mp4", 1000), "--json", *args, env=env(stack))

    assert failed.returncode == code, failed.stderr
    assert message in failed.stderr and "Traceback" not in failed.stderr
    assert json.loads(failed.stdout)["error"]["kind"] == kind  # --json's line, whatever failed
    assert ("(check VOD_UPLOAD_TOKEN / --token)" in failed.stderr) is (kind == "authentication_failed")
    if kind == "usage" or "cannot carry" in message:  # refused before anything was sent
        assert stack.traffic.calls == [] and stack.traffic.cos_requests == []
    no_leaks(leak_guard, failed.stdout, failed.stderr)


@pytest.mark.parametrize(
    ("argv", "json_line"),
    [
        (["--json", "--part-size", "0", "clip.mp4"], True),
        (["--jso", "clip.mp4"], False),  # flags in full: an unknown one, not --json
        (["--part-size", "0", "--", "--json"], False),  # after "--", a file named --json
    ],
    ids=["json", "abbreviated", "a-file-named-json"],
)
def test_a_usage_error_writes_jsons_line_only_when_json_is_given(
    capsys: pytest.CaptureFixture[str], argv: list[str], json_line: bool
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    out = capsys.readouterr().out
    assert exited.value.code == 2
    assert json.loads(out)["error"]["kind"] == "usage" if json_line else out == ""


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.mp4"


def _no_extension(tmp_path: Path) -> Path:
    return write_file(tmp_path / "no-extension", 10)


def _directory(tmp_path: Path) -> Path:
    (tmp_path / "clips.mp4").mkdir()
    return tmp_path / "clips.mp4"


def _symlink_loop(tmp_path: Path) -> Path:
    (tmp_path / "loop.mp4").symlink_to("loop.mp4")
    return tmp_path / "loop.mp4"


def _under_a_file(tmp_path: Path) -> Path:
    return write_file(tmp_path / "file.mp4", 10) / "clip.mp4"  # stat: Not a directory


@pytest.mark.parametrize(
    ("make", "message", "cancel"),
    [
        (_missing, "missing.mp4: no such file", 0),
        (_no_extension, "give the file its extension", 2),
        (_directory, "clips.mp4: is a directory; give a video file", 0),
        (_under_a_file, "clip.mp4: cannot read it (Not a directory)", 0),
        # 3.13's resolve() lets a loop be, and stat() then says it
        (_symlink_loop, "a loop of symbolic links" if sys.version_info < (3, 13) else "symbolic links", None),
    ],
    ids=["missing", "no-extension", "directory", "under-a-file", "symlink-loop"],
)
def test_unusable_files_are_usage_errors(
    stack: Stack, tmp_path: Path, make: Callable[[Path], Path], message: str, cancel: int | None
) -> None:
    path = make(tmp_path)

    failed, cancelled = stack.cli(path, "--json"), stack.cli(path, "--cancel")

    assert failed.returncode == 2 and message in failed.stderr and "Traceback" not in failed.stderr
    assert json.loads(failed.stdout) == {"status": "failed", "error": {"kind": "usage", "message": ANY}}
    # --cancel needs no file (its saved upload may be of a file since moved): there is just nothing to cancel
    assert cancel is None or cancelled.returncode == cancel
    assert "Traceback" not in cancelled.stderr
    assert ("there is no saved upload" in cancelled.stderr) is (cancelled.returncode == 0)


def test_an_unreadable_file_is_a_usage_error(stack: Stack, tmp_path: Path) -> None:
    path = write_file(tmp_path / "secret.mp4", 10)
    path.chmod(0)
    # root reads any file: here it runs without the capabilities that let it (setpriv: util-linux)
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]
    args = [*(drop if os.geteuid() == 0 else []), *stack.cli_args(path, "--json")]
    failed = subprocess.run(args, env=stack.cli_env(), capture_output=True, text=True, timeout=120, check=False)
    assert failed.returncode == 2 and "secret.mp4: cannot read it (Permission denied)" in failed.stderr
    assert json.loads(failed.stdout) == {"status": "failed", "error": {"kind": "usage", "message": ANY}}
    assert "Traceback" not in failed.stderr and not stack.traffic.calls and not stack.traffic.cos_requests


NOT_UTF8 = os.fsdecode(b"clip\xff.mp4")  # a name's byte that is not UTF-8, as Python holds it (a lone surrogate)


@pytest.mark.parametrize("args", [(NOT_UTF8,), ("clip.mp4", "--" + NOT_UTF8)], ids=["missing-file", "unknown-option"])
def test_a_name_that_is_not_utf8_is_written_in_json_to_a_strict_stdout(
    stack: Stack, tmp_path: Path, args: tuple[str, ...]
) -> None:
    # A UTF-8 locale's stdout refuses lone surrogates (the C locale's lets their bytes through)
    env = stack.cli_env(PYTHONIOENCODING="utf-8:strict")
    failed = stack.cli(*args, "--json", env=env)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    error = json.loads(failed.stdout)["error"]
    assert error["kind"] == "usage" and NOT_UTF8 in error["message"]


def test_a_cover_that_is_a_directory_is_named_as_the_cover(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "covers.jpg").mkdir()
    failed = stack.cli(write_file(tmp_path / "clip.mp4", 10), "--cover", tmp_path / "covers.jpg")
    assert failed.returncode == 2 and "covers.jpg: is a directory; give an image file" in failed.stderr


def test_a_checkpoint_directory_that_cannot_be_used_is_a_clear_failure(stack: Stack, tmp_path: Path) -> None:
    not_a_directory = write_file(tmp_path / "checkpoints", 10)
    env = stack.cli_env(VOD_UPLOAD_CHECKPOINT_DIR=str(not_a_directory))
    for args in (["--json"], ["--json", "--cancel"]):
        failed = stack.cli(write_file(tmp_path / "clip.mp4", 1000), *args, env=env)
        assert failed.returncode == 1 and "Traceback" not in failed.stderr
        assert f"cannot read the saved uploads in {not_a_directory}: Not a directory" in failed.stderr
        assert json.loads(failed.stdout)["error"]["kind"] == "failed"
        assert "progress is saved" not in failed.stderr and "saved upload is kept" not in failed.stderr  # none is


def test_another_user_does_not_resume_someone_elses_saved_upload(
    stack: Stack, tmp_path: Path, leak_guard: LeakGuard
) -> None:
    # VOD gives a resumed session the sourceContext it was opened with: resuming it would make it the first
    # user's upload, whoever finishes it.
    video = write_file(tmp_path / "shared.mp4", 4 * MIB)
    interrupted_upload(stack, video, 2, sigkill).finish()
    other = leak_guard.add(localstack.mint_token(JWT_SECRET, "someone-else@example.com"))

    theirs = stack.cli(video, "--json", env=stack.cli_env(VOD_UPLOAD_TOKEN=other))

    assert theirs.returncode == 0, theirs.stderr
    assert json.loads(theirs.stdout)["bytesResumed"] == 0 and "resuming" not in theirs.stderr
    assert len(stack.saved()) == 1  # still there for its owner, who resumes it
    mine = stack.cli(video, "--json")
    assert (mine.returncode, json.loads(mine.stdout)["bytesResumed"]) == (0, 2 * MIB), mine.stderr


@pytest.mark.parametrize(
    ("claim_args", "claim_env", "resumed_by_another"),
    [
        (("--user-claim", "uid"), {}, False),
        ((), {"VOD_UPLOAD_USER_CLAIM": "uid"}, False),
        ((), {}, True),  # by `sub`, the app's back end's in both tokens: what the setting is for
    ],
    ids=["flag", "environment", "sub"],
)
def test_saved_uploads_belong_to_the_user_the_claim_names(
    start_stack: Callable[..., Stack],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    leak_guard: LeakGuard,
    claim_args: tuple[str, ...],
    claim_env: dict[str, str],
    resumed_by_another: bool,
) -> None:
    # An app whose back end mints every user's token with its own `sub` names the user in another claim, as the
    # functions read it (AUTH_JWT_USER_CLAIM).
    monkeypatch.setenv("AUTH_JWT_USER_CLAIM", "uid")
    ann, bob = (leak_guard.add(localstack.mint_token(JWT_SECRET, "app-backend", uid=user)) for user in ("ann", "bob"))
    stack = replace(start_stack(), token=ann)
    video = write_file(tmp_path / "shared.mp4", 4 * MIB)
    interrupted_upload(stack, video, 2, sigkill, *claim_args, env=stack.cli_env(**claim_env)).finish()

    theirs = stack.cli(video, "--json", *claim_args, env=stack.cli_env(VOD_UPLOAD_TOKEN=bob, **claim_env))

    assert theirs.returncode == 0, theirs.stderr
    assert json.loads(theirs.stdout)["bytesResumed"] == (2 * MIB if resumed_by_another else 0)
    if not resumed_by_another:
        mine = stack.cli(video, "--json", *claim_args, env=stack.cli_env(**claim_env))
        assert (mine.returncode, json.loads(mine.stdout)["bytesResumed"]) == (0, 2 * MIB), mine.stderr


def test_cancel_discards_the_saved_upload_of_a_file_moved_away_since(stack: Stack, tmp_path: Path) -> None:
    video = write_file(tmp_path / "moved.mp4", 4 * MIB)
    interrupted_upload(stack, video, 2, sigkill).finish()
    video.rename(tmp_path / "elsewhere.mp4")

    cancelled = stack.cli(video, "--cancel", "--json")

    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout) == {"status": "cancelled", "partsDeleted": True}
    assert stack.open_uploads() == [] and stack.saved() == []


@pytest.mark.parametrize(
    ("result", "line"),
    [
        # The uploads function lists an output's first 100 URLs: a person is told there are more
        ({"type": "SampleSnapshot", "status": "SUCCESS", "urls": ["u1", "u2"], "urlCount": 2000}, "u1 u2 (+1998 more)"),
        ({"type": "Transcode", "status": "SUCCESS", "urls": ["u"], "urlCount": 1}, "u"),
        ({"type": "Transcode", "status": "SUCCESS", "urls": ["u"]}, "u"),  # an uploads function before urlCount
    ],
    ids=["capped", "all", "no-count"],
)
def test_wait_shows_how_many_urls_an_output_has(result: dict[str, Any], line: str) -> None:
    upload = {
        "status": "finished",
        "mediaUrl": "m",
        "tasks": [{"taskId": "t", "status": "finished", "outputs": [result]}],
    }
    assert _settled_text(upload).splitlines()[-1] == f"  {result['type']}  SUCCESS  {line}"


@pytest.mark.parametrize(
    ("count", "last"),
    [(250, "  (+249 more outputs)"), (1, "  Transcode  SUCCESS  u"), (None, "  Transcode  SUCCESS  u")],
)
def test_wait_shows_how_many_outputs_a_task_has(count: int | None, last: str) -> None:
    # The uploads function lists a task's first 100 outputs, and outputCount (not before it had the field)
    output = {"type": "Transcode", "status": "SUCCESS", "urls": ["u"], "urlCount": 1}
    task = {
        "taskId": "t",
        "status": "finished",
        "outputs": [output],
        **({} if count is None else {"outputCount": count}),
    }
    assert _settled_text({"status": "finished", "mediaUrl": "m", "tasks": [task]}).splitlines()[-1] == last


@pytest.mark.parametrize(
    ("gateway", "status"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/uploads"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/uploads"),
        ("http://127.0.0.1:8080/signature", "http://127.0.0.1:8080/uploads"),
        ("http://127.0.0.1:8080/signature/", "http://127.0.0.1:8080/uploads"),
        ("https://service.example/release/signature", "https://service.example/release/uploads"),
        # A query is the signature endpoint's, not the uploads function's (which refuses any but its `wait`)
        ("https://gw.example/?code=abc", "https://gw.example/uploads"),
        ("https://gw.example?code=abc#x", "https://gw.example/uploads"),
        ("https://gw.example/release/signature?code=abc", "https://gw.example/release/uploads"),
    ],
)
def test_the_uploads_endpoint_is_found_beside_the_signature_endpoint(gateway: str, status: str) -> None:
    assert status_url(argparse.Namespace(gateway=gateway, status_url=None)) == status


@pytest.mark.parametrize(
    ("gateway", "signature"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/signature"),
        ("https://gw.example/?code=abc", "https://gw.example/signature?code=abc"),
        ("https://gw.example#x", "https://gw.example/signature#x"),
        ("https://gw.example/release/sign?code=abc", "https://gw.example/release/sign?code=abc"),  # a path: as it is
    ],
)
def test_a_bare_gateway_gets_the_signature_path_before_its_query(gateway: str, signature: str) -> None:
    assert signature_url(gateway) == signature


@pytest.mark.parametrize(
    ("args", "setting", "value"),
    [
        (["--part-size", "1"], "part_size", 1),
        (["--part-size", "5120"], "part_size", 5120),  # COS's largest part: 5 GiB
        (["--parallel", "1"], "parallel", 1),
        (["--wait-timeout", "1"], "wait_timeout", 1),
    ],
)
def test_a_setting_at_its_bound_is_taken(args: list[str], setting: str, value: int) -> None:
    assert getattr(parse_args(["clip.mp4", *args]), setting) == value
