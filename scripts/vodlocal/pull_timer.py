"""events_pull's timer trigger (serverless.yml: each minute, a 60 s limit), locally: the real handler, configured
from the environment as the gateway's functions are, invoked on time in a process of its own, as an SCF container
of its own would be. Stopping the stack ends that process, mid-run too: a run left going in the stack's process
would go on pulling from a stopped emulator, and log each refused call as an error."""

from __future__ import annotations

import logging
import secrets
import select
import subprocess
import sys
import time


def start(limit_seconds: int = 60, every_seconds: int = 60) -> subprocess.Popen[bytes]:
    """The timer's process: it inherits the environment (the stack's settings) and the terminal, and ends at
    `stop`, or once the stack's process is gone (its stdin, a pipe, closes)."""
    return subprocess.Popen(
        [sys.executable, "-m", "vodlocal.pull_timer", str(limit_seconds), str(every_seconds)],
        stdin=subprocess.PIPE,
        start_new_session=True,  # a Ctrl-C in the terminal is the stack's to handle, not a traceback here
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()  # SIGTERM: Python's default ends it at once, without a word
    process.wait(timeout=10)
    if process.stdin:
        process.stdin.close()


def _run(limit_seconds: int, every_seconds: int) -> None:
    from vodlocal import harness

    handler = harness.load_handler("events_pull", harness.function_file("events_pull"))
    while True:
        started = time.monotonic()
        event = {"Type": "Timer", "TriggerName": "vod_events_pull", "Time": time.strftime("%Y-%m-%dT%H:%M:%SZ")}
        try:
            handler(event, {"time_limit_in_ms": limit_seconds * 1000, "request_id": secrets.token_hex(8)})
        except Exception as exc:  # (drain ends a crashed run itself): one bad run never stops the timer, as in SCF
            logging.getLogger("vodlocal").error("events_pull failed: %s: %s", type(exc).__name__, exc)
        pause = max(0.0, every_seconds - (time.monotonic() - started))
        if select.select([sys.stdin], [], [], pause)[0]:  # readable before the next run: the stack's end (EOF)
            return


if __name__ == "__main__":
    _run(int(sys.argv[1]), int(sys.argv[2]))
