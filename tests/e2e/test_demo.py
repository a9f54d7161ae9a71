"""The README's demo command runs the whole flow and shows the record with the user id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import command, run_command, user_env

ROOT = Path(__file__).resolve().parents[2]


def test_demo_uploads_and_shows_the_record(tmp_path: Path) -> None:
    # the shell's app hook (here one no function could load) is not told of the demo's made-up upload
    env = {"HOME": str(tmp_path), "AFTER_COMMIT_HOOK": "apphooks.notify:on_upload"}
    proc = run_command("vod-demo", base=user_env(), env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "committed: FileId" in proc.stdout
    record = proc.stdout.split("the record the callback stored")[1]
    assert "dev-user" in record and "NewFileUpload" in record
    assert "cover URL" in record and "/vod-media/" in record
    assert "stack stopped." in proc.stdout
    assert "Traceback" not in proc.stderr


def test_a_kept_demo_prints_the_command_that_reads_its_records(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "TMPDIR": str(tmp_path)}  # kept in the test's own directory
    proc = run_command("vod-demo", "--keep", base=user_env(), env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = "its records, once the demo has ended: "
    [pasted] = [line.removeprefix(said) for line in proc.stdout.splitlines() if line.startswith(said)]
    shown = subprocess.run(
        ["bash", "-c", pasted], env=user_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert shown.returncode == 0 and "dev-user" in shown.stdout, shown.stderr
    file_id = pasted.rsplit(" ", 1)[1]
    assert f"FileId {file_id}" in proc.stdout


def test_a_setting_the_functions_refuse_is_named_not_a_traceback(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "VOD_SIGNATURE_TTL": "abc"}
    proc = run_command("vod-demo", base=user_env(), env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "VOD_SIGNATURE_TTL" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_an_interrupted_demo_stops_its_stack_and_removes_its_state(tmp_path: Path, sent: signal.Signals) -> None:
    # GIVEN the demo under way (its stack up, its state with dev keys in a temporary directory)
    (tmp_path / "tmp").mkdir()
    env = {**user_env(), "HOME": str(tmp_path), "TMPDIR": str(tmp_path / "tmp")}
    pipe = subprocess.PIPE
    proc = subprocess.Popen([command("vod-demo")], env=env, cwd=tmp_path, stdout=pipe, stderr=pipe)
    assert proc.stdout is not None and b"local stack up" in proc.stdout.readline()
    # WHEN it is stopped THEN it says so, without a traceback, and leaves nothing behind
    proc.send_signal(sent)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert b"interrupted." in stderr and b"Traceback" not in stderr and b"stack stopped." in stdout
    assert list((tmp_path / "tmp").iterdir()) == []


# The parent is interrupted while it starts the child (inside Popen(), which has forked but not returned):
# the child asks for it before it starts its program, then gives the parent time to take it.
_INTERRUPTED_AS_IT_STARTS = """
import os, signal, subprocess, sys, time
from vodadmin import stop_on_sigterm
from vodlocal.demo import run
stop_on_sigterm()

def interrupt_the_parent():
    os.kill(os.getppid(), signal.SIGTERM)
    time.sleep(1)

try:
    child = [sys.executable, "-c", "import time; time.sleep(60)", sys.argv[1]]
    run(child, preexec_fn=interrupt_the_parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
except KeyboardInterrupt:
    print("interrupted")
"""


def _running_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:  # gone meanwhile
            continue
    return found


def test_a_child_started_as_the_demo_is_interrupted_does_not_run_on() -> None:
    marker = f"vod-demo-child-{uuid.uuid4().hex}"
    proc = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED_AS_IT_STARTS, marker],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    left = _running_with(marker)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert proc.stdout == "interrupted\n", proc.stderr
    assert left == []
