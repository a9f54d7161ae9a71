"""An AFTER_COMMIT_HOOK target for the handler tests (`tests.callback.hook_target:record`)."""

from __future__ import annotations

from shared.hooks import CommittedEvent

CALLS: list[CommittedEvent] = []


def record(committed: CommittedEvent) -> None:
    CALLS.append(committed)


not_callable = 42
