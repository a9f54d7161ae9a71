"""Deliveries from many processes at once (like warm containers), on each backend."""

from __future__ import annotations

import json
import multiprocessing
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.ingest import ingest_event
from shared.source_context import seal
from shared.store import EventStore, open_store
from tests.conftest import CONTEXT_KEY, KEYS
from tests.scf import load_event
from tests.store import workers
from vodtesting import vod_event


def _at_once(target: Callable[..., None], shares: list[tuple[Any, ...]]) -> list[tuple[str, Any]]:
    """`target(*share, start, results)` in a process of its own for each share, all released together (a
    Barrier); what each reported, none an error."""
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: nothing inherited but the arguments
    start, results = ctx.Barrier(len(shares)), ctx.Queue()
    processes = [ctx.Process(target=target, args=(*share, start, results)) for share in shares]
    for p in processes:
        p.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(60)
    assert [o for o in outcomes if o[0] == "error"] == []
    return outcomes


def test_sixteen_processes_delivering_one_event_have_one_effect(new_url: Callable[[], str], tmp_path: Path) -> None:
    url = new_url()  # a fresh database: the 16 processes also race to create the schema
    hook_log = tmp_path / "hook.log"
    hook_log.touch()
    payload = load_event("vod_new_file_upload")
    outcomes = _at_once(workers.deliver, [(url, payload, str(hook_log))] * 16)
    assert sorted(duplicate for _, duplicate in outcomes) == [False] + [True] * 15
    assert len(hook_log.read_text().splitlines()) == 1
    assert json.loads(hook_log.read_text())["key"]
    store = open_store(url)
    try:
        assert store.event_count() == 1
    finally:
        store.close()


def _overlapping_events() -> tuple[list[str], list[tuple[dict[str, Any], float]]]:
    """Three users' files, each with a task's two states and a partial delete, and two deletes naming several
    files in opposite orders: events whose records depend on one another, each with its own receive time."""
    files = [f"5285890784273{n:04d}" for n in range(3)]
    events = []
    for n, file_id in enumerate(files):
        task = f"1400329073-procedurev2-{file_id}"
        events += [
            vod_event("NewFileUpload", FileId=file_id, SourceContext=seal(f"user-{n}", f"req-{n}", CONTEXT_KEY)),
            vod_event("ProcedureStateChanged", FileId=file_id, TaskId=task, Status="PROCESSING"),
            vod_event("ProcedureStateChanged", FileId=file_id, TaskId=task, Status="FINISH", ErrCode=n),
            vod_event(
                "FileDeleted",
                FileId=file_id,
                FileDeleteResultInfo=[
                    {"FileId": file_id, "DeleteParts": [{"Type": "TranscodeFiles", "Definition": 10}]}
                ],
            ),
        ]
    events += [vod_event("FileDeleted", FileIdSet=files[1:]), vod_event("FileDeleted", FileIdSet=files[::-1][:2])]
    return files, [(event, 1000.0 + n) for n, event in enumerate(events)]


def _records(store: EventStore, files: list[str]) -> list[Any]:
    return [(store.upload(file_id), store.tasks(file_id)) for file_id in files]


def test_processes_delivering_related_events_in_any_order_leave_the_records_of_one_at_a_time(
    new_url: Callable[[], str],
) -> None:
    # The per-file locks referee: 8 processes × 2 threads, each event delivered three times, shuffled.
    files, events = _overlapping_events()
    deliveries = events * 3
    random.Random(7).shuffle(deliveries)
    url = new_url()
    outcomes = _at_once(workers.deliver_all, [(url, deliveries[n::8]) for n in range(8)])
    assert sorted(json.dumps(e, sort_keys=True) for _, new in outcomes for e in new) == sorted(
        json.dumps(e, sort_keys=True) for e, _ in events
    )  # each event new exactly once
    serial = open_store(new_url())
    concurrent = open_store(url)
    try:
        for payload, received_at in events:
            ingest_event(serial, payload, received_at=received_at, keys=KEYS)
        assert _records(concurrent, files) == _records(serial, files)
        assert concurrent.event_count() == len(events)
    finally:
        serial.close()
        concurrent.close()
