"""Code that runs in child processes (must be importable by name for multiprocessing's spawn)."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from shared.hooks import CommittedEvent
from shared.ingest import ingest_event
from shared.store import open_store
from tests.conftest import KEYS


def deliver(url: str, payload: dict[str, Any], hook_log: str, start: Any, results: Any) -> None:
    """Open the store like a fresh container would, wait until every process is ready, deliver once."""
    store = open_store(url)

    def hook(committed: CommittedEvent) -> None:
        with open(hook_log, "a") as log:  # O_APPEND: one whole line per call, across processes
            log.write(json.dumps({"pid": os.getpid(), "key": committed.dedupe_key}) + "\n")

    start.wait(120)  # a Barrier: all 16 processes leave it together
    try:
        result = ingest_event(store, payload, received_at=1.0, after_commit=hook, keys=KEYS)
        results.put(("ok", result.duplicate))
    except Exception as exc:  # reported to the parent, which fails the test with it
        results.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        store.close()


def deliver_all(url: str, deliveries: list[tuple[dict[str, Any], float]], start: Any, results: Any) -> None:
    """Like `deliver`, for many events, from two threads (two concurrent invocations of one container):
    reports the events that were new, or the first error."""
    store = open_store(url)
    pending, new, errors = list(deliveries), [], []

    def run() -> None:
        while pending:
            try:
                payload, received_at = pending.pop()
            except IndexError:  # the other thread took the last one
                return
            try:
                if not ingest_event(store, payload, received_at=received_at, keys=KEYS).duplicate:
                    new.append(payload)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    start.wait(120)
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    results.put(("error", errors[0]) if errors else ("ok", new))
