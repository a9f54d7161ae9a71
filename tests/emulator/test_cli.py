"""`vod-emulator` run alone, as the README shows it: it starts, says how its events go, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

CALLBACK = "http://127.0.0.1:9/vod-events"  # nothing is delivered: no upload is made


@pytest.mark.parametrize(
    ("options", "events"),
    [
        (["--notification-url", CALLBACK, "--sign-key", "Key123"], f"PUSH -> {CALLBACK}, signed with the SignKey"),
        # As VOD with no callback key: a callback holding one refuses such events, so the start says so.
        (["--notification-url", CALLBACK], f"PUSH -> {CALLBACK}, unsigned (no --sign-key)"),
        (["--pull"], "PULL, upload events ON"),
        ([], "PUSH, upload events OFF"),  # VOD's own default: no notifications
    ],
)
def test_the_emulator_alone_describes_its_event_delivery_and_stops_on_sigterm(
    tmp_path: Path, options: list[str], events: str
) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "TENCENTCLOUD_SECRET_ID": "AKIDemulatorclitest0123",
        "TENCENTCLOUD_SECRET_KEY": "emulator-cli-test-key",
    }
    command = [sys.executable, "-m", "vodemu.cli", "--port", "0", "--state-dir", str(tmp_path / "state"), *options]
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
            emulator.send_signal(signal.SIGTERM)
            out, err = emulator.communicate(timeout=30)
        finally:
            if emulator.poll() is None:
                emulator.kill()
    assert (emulator.returncode, out.strip()) == (0, "stopped."), err
