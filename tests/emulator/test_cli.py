"""`vod-emulator` run alone, as the README shows it: it starts, says how its events go, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from vodemu.app import build_emulator

CALLBACK = "http://127.0.0.1:9/vod-events"  # nothing is delivered: no upload is made
_COMMAND = [sys.executable, "-m", "vodemu.cli"]


def _environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    keys = {"TENCENTCLOUD_SECRET_ID": "AKIDemulatorclitest0123", "TENCENTCLOUD_SECRET_KEY": "emulator-cli-test-key"}
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **keys, **settings}


@pytest.mark.parametrize(
    ("options", "events", "address"),
    [
        (
            ["--notification-url", CALLBACK, "--sign-key", "Key123"],
            f"PUSH -> {CALLBACK}, signed with the SignKey",
            "127.0.0.1",
        ),
        # As VOD with no callback key: a callback holding one refuses such events, so the start says so.
        (["--notification-url", CALLBACK], f"PUSH -> {CALLBACK}, unsigned (no --sign-key)", "127.0.0.1"),
        (["--pull"], "PULL, upload events ON", "127.0.0.1"),
        ([], "PUSH, upload events OFF", "127.0.0.1"),  # VOD's own default: no notifications
        (["--host", "::1"], "PUSH, upload events OFF", "[::1]"),  # its URLs name the address in brackets
    ],
)
@pytest.mark.parametrize(
    ("sub_app", "account"),
    [("", "vodSubAppId (none: primary app)"), ("0", "vodSubAppId (none: primary app)"), ("7", "vodSubAppId 7")],
)
def test_the_emulator_alone_describes_its_event_delivery_and_stops_on_sigterm(
    tmp_path: Path, options: list[str], events: str, address: str, sub_app: str, account: str
) -> None:
    env = _environment(tmp_path, VOD_SUB_APP_ID=sub_app)  # 0: the primary application, as the functions take it
    command = [*_COMMAND, "--port", "0", "--state-dir", str(tmp_path / "state"), *options]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as emulator:
        try:
            assert emulator.stdout is not None
            described = []
            for line in emulator.stdout:  # up to its last line before it serves
                described.append(line.rstrip())
                if line.startswith("Ctrl-C to stop."):
                    break
            [event_line] = [line for line in described if line.lstrip().startswith("events ")]
            assert event_line.split(None, 1)[1].startswith(events), described
            assert any(line.strip().startswith("account") and line.endswith(account) for line in described)
            url = described[0].split()[3]  # VOD emulator on <url>
            assert url.startswith(f"http://{address}:") and f"IP='{address}'" in "\n".join(described)
            assert requests.post(f"{url}/v3/index.php", timeout=10).status_code == 200  # VOD's error, as JSON
            emulator.send_signal(signal.SIGTERM)
            out, err = emulator.communicate(timeout=30)
        finally:
            if emulator.poll() is None:
                emulator.kill()
    assert (emulator.returncode, out.strip()) == (0, "stopped."), err


@pytest.mark.parametrize(
    ("settings", "busy_port", "said"),
    [
        ({}, True, "is in use by another program: choose another with --port or VOD_EMULATOR_PORT"),
        ({"VOD_SUB_APP_ID": "-1"}, False, "VOD_SUB_APP_ID must be a whole number, got '-1'"),
        ({"VOD_APP_ID": "0"}, False, "VOD_APP_ID must be a positive integer, got '0'"),
        ({"VOD_APP_ID": "x"}, False, "VOD_APP_ID must be a positive integer, got 'x'"),
        ({"TENCENTCLOUD_SECRET_KEY": ""}, False, "set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY"),
    ],
)
def test_a_setting_it_cannot_start_with_is_a_usage_error_that_names_it(
    tmp_path: Path, settings: dict[str, str], busy_port: bool, said: str
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:  # another program's
        port = taken.getsockname()[1] if busy_port else 0
        run = subprocess.run(
            [*_COMMAND, "--port", str(port), "--state-dir", str(tmp_path / "state")],
            env=_environment(tmp_path, **settings),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert (run.returncode, run.stdout) == (2, ""), run.stderr
    assert said in run.stderr and "Traceback" not in run.stderr


def test_a_state_directory_another_emulator_keeps_is_refused(tmp_path: Path) -> None:
    # GIVEN an emulator running on a state directory (as `make serve` runs one on .local/vod-emulator)
    state = tmp_path / "state"
    with build_emulator(state, secret_id="AKIDholder0123456789", secret_key="holder-key"):
        # WHEN another is started on it THEN it refuses, saying why: both would deliver its queued events
        run = subprocess.run(
            [*_COMMAND, "--port", "0", "--state-dir", str(state), "--notification-url", CALLBACK],
            env=_environment(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 2 and f"another emulator keeps its state in {state}" in run.stderr, run.stderr
    # AND once that one has closed, the directory can be used again
    with build_emulator(state, secret_id="AKIDholder0123456789", secret_key="holder-key") as again:
        assert again.event_config().notification_url == ""  # the refused one changed nothing
