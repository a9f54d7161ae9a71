"""An AFTER_COMMIT_HOOK target for the handler tests (`tests.callback.hook_target:record`)."""

from __future__ import annotations

import os

from shared.hooks import CommittedEvent

CALLS: list[CommittedEvent] = []


def record(committed: CommittedEvent) -> None:
    CALLS.append(committed)


def append_to_file(committed: CommittedEvent) -> None:
    """For a hook run in another process (vod-uploads hooks --rerun): one line to HOOK_TARGET_FILE."""
    with open(os.environ["HOOK_TARGET_FILE"], "a", encoding="utf-8") as out:
        users = ",".join(u.user_id or "-" for u in committed.uploads)
        out.write(f"{committed.dedupe_key} {committed.event.event_type} {users}\n")


class Killed(BaseException):
    """What the hook sees when SCF ends the invocation (timeout): nothing after it runs."""


def killed(committed: CommittedEvent) -> None:
    raise Killed


def fail(committed: CommittedEvent) -> None:
    raise ConnectionError("the app's queue is down")


not_callable = 42
