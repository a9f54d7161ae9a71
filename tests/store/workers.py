"""Code that runs in child processes (must be importable by name for multiprocessing's spawn)."""

from __future__ import annotations

import json
import os
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
