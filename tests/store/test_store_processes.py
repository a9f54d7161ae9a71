"""Duplicate deliveries from 16 processes at once (like 16 warm containers), on both backends."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from pathlib import Path

from shared.store import open_store
from tests.scf import load_event
from tests.store import workers


def test_sixteen_processes_delivering_one_event_have_one_effect(new_url: Callable[[], str], tmp_path: Path) -> None:
    url = new_url()  # a fresh database: the 16 processes also race to create the schema
    hook_log = tmp_path / "hook.log"
    hook_log.touch()
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: nothing inherited but the arguments
    start, results = ctx.Barrier(16), ctx.Queue()
    payload = load_event("vod_new_file_upload")
    processes = [
        ctx.Process(target=workers.deliver, args=(url, payload, str(hook_log), start, results)) for _ in range(16)
    ]
    for p in processes:
        p.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(60)
    assert [o for o in outcomes if o[0] == "error"] == []
    assert sorted(duplicate for _, duplicate in outcomes) == [False] + [True] * 15
    assert len(hook_log.read_text().splitlines()) == 1
    assert json.loads(hook_log.read_text())["key"]
    store = open_store(url)
    try:
        assert store.event_count() == 1
    finally:
        store.close()
