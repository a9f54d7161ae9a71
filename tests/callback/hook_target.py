"""An AFTER_COMMIT_HOOK target for the handler tests (`tests.callback.hook_target:record`)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

from shared.hooks import CommittedEvent

CALLS: list[CommittedEvent] = []


def record(committed: CommittedEvent) -> None:
    CALLS.append(committed)


def append_to_file(committed: CommittedEvent) -> None:
    """For a hook run in another process (vod-uploads hooks --rerun): one line to HOOK_TARGET_FILE."""
    with open(os.environ["HOOK_TARGET_FILE"], "a", encoding="utf-8") as out:
        users = ",".join(u.user_id or "-" for u in committed.uploads)
        out.write(f"{committed.dedupe_key} {committed.event.event_type} {users}\n")


def append_to_file_noisily(committed: CommittedEvent) -> None:
    """append_to_file, and what a process it starts writes to its stdout (curl's answer, say)."""
    append_to_file(committed)
    print("the hook's own print")
    subprocess.run(["echo", "a process the hook started"], check=True)


def append_to_file_slowly(committed: CommittedEvent) -> None:
    """append_to_file, as a hook doing real work would: some time after the commit."""
    time.sleep(0.5)
    append_to_file(committed)


def rerun_meanwhile(committed: CommittedEvent) -> None:
    """append_to_file; and, the first time, while it runs, another operator's `vod-uploads hooks --rerun`."""
    append_to_file(committed)
    if not os.environ.get("HOOK_TARGET_NESTED"):
        env = {**os.environ, "HOOK_TARGET_NESTED": "1"}
        command = [sys.executable, "-m", "vodadmin.uploads", "hooks", "--rerun"]
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=60)


class Killed(KeyboardInterrupt):
    """SCF ending the invocation (timeout): nothing after it runs. An interrupt, the one thing hooks' callers let
    through (they record any other exception as the hook's failure)."""


def killed(committed: CommittedEvent) -> None:
    raise Killed


def quotes_the_keys(committed: CommittedEvent) -> None:
    raise RuntimeError(
        f"refused with {os.environ['VOD_CALLBACK_SIGN_KEY']} and {os.environ['TENCENTCLOUD_SECRET_KEY']}"
    )


def interrupted(committed: CommittedEvent) -> None:
    raise KeyboardInterrupt  # the operator's Ctrl-C while the hook runs


def waits(committed: CommittedEvent) -> None:
    """Says it runs (HOOK_TARGET_FILE), then runs until the rerun is stopped: for a signal sent while it runs."""
    with open(os.environ["HOOK_TARGET_FILE"], "a", encoding="utf-8") as out:
        out.write("running\n")
    time.sleep(60)


def fail(committed: CommittedEvent) -> None:
    raise ConnectionError("the app's queue is down")


def exits(committed: CommittedEvent) -> None:
    raise SystemExit("the app's hook gave up")


_HELD: list[object] = []


def lock_the_store(committed: CommittedEvent) -> None:
    """Runs, then keeps the SQLite database at HOOK_TARGET_DATABASE locked: its result cannot be recorded."""
    import sqlite3

    append_to_file(committed)
    if not _HELD:
        held = sqlite3.connect(os.environ["HOOK_TARGET_DATABASE"], isolation_level=None)
        held.execute("BEGIN EXCLUSIVE")
        _HELD.append(held)


print("hook_target loaded")  # as a hook module that prints (or sets up logging to stdout) at import may


not_callable = 42


async def asynchronous(committed: CommittedEvent) -> None:
    CALLS.append(committed)


def generator(committed: CommittedEvent) -> Iterator[None]:
    CALLS.append(committed)
    yield


asynchronous_partial = functools.partial(asynchronous)


class AsyncCallable:
    async def __call__(self, committed: CommittedEvent) -> None:
        CALLS.append(committed)


async_callable = AsyncCallable()


async def asynchronous_generator(committed: CommittedEvent) -> AsyncIterator[None]:
    CALLS.append(committed)
    yield


class GeneratingCallable:
    def __call__(self, committed: CommittedEvent) -> Iterator[None]:
        CALLS.append(committed)
        yield


class AsyncGeneratingCallable:
    async def __call__(self, committed: CommittedEvent) -> AsyncIterator[None]:
        CALLS.append(committed)
        yield


generator_callable, async_generator_callable = GeneratingCallable(), AsyncGeneratingCallable()


def cancelled(committed: CommittedEvent) -> None:
    import asyncio

    raise asyncio.CancelledError  # a BaseException: from a hook that runs asyncio itself, say
