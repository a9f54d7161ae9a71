"""The JSON fixtures in tests/events/ (VOD events as Tencent documents them), and reading SCF responses.
Events are built with the testing kit (vodtesting); these are data."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from tests.conftest import CALLBACK_SIGN_KEY
from vodtesting import signed, vod_event

EVENTS = Path(__file__).parent / "events"
SHAPES = ("apigw", "function_url")


@cache
def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return loaded


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of tests/events/<name>.json."""
    return copy.deepcopy(_fixture(name))


def nested(depth: int) -> Any:
    """A JSON value `depth` objects deep (for events nested past the parser's limit)."""
    value: Any = "deep"
    for _ in range(depth):
        value = {"x": value}
    return value


def response_json(result: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(result["body"]) if result["body"] else {}
    return body


def header(result: dict[str, Any], name: str) -> str | None:
    for key, value in result["headers"].items():
        if key.lower() == name.lower():
            return str(value)
    return None


def snapshots_event(file_id: str, task_id: str, count: int) -> dict[str, Any]:
    """A task's FINISH with `count` snapshots (one a second of the video), each its own URL."""
    pictures = [
        {
            "TimeOffset": i * 1000,
            "Url": f"http://1400329073.vod2.myqcloud.com/d9d5/b1e3/snapshotByTimeOffset_10_{i}.jpg",
        }
        for i in range(count)
    ]
    task = {"Status": "SUCCESS", "ErrCode": 0, "Message": "SUCCESS", "Input": {"Definition": 10}}
    results = [
        {
            "Type": "SnapshotByTimeOffset",
            "SnapshotByTimeOffsetTask": {**task, "Output": {"Definition": 10, "PicInfoSet": pictures}},
        }
    ]
    return vod_event("ProcedureStateChanged", FileId=file_id, TaskId=task_id, MediaProcessResultSet=results)


def outputs_event(file_id: str, task_id: str, count: int) -> dict[str, Any]:
    """A task's FINISH with `count` outputs (a forged body's shape: VOD's task flows make a few), one URL each."""
    results = [
        {
            "Type": "Transcode",
            "TranscodeTask": {
                "Status": "SUCCESS",
                "ErrCode": 0,
                "Output": {"Definition": i, "Url": f"http://v/{i}.mp4"},
            },
        }
        for i in range(count)
    ]
    return vod_event("ProcedureStateChanged", FileId=file_id, TaskId=task_id, MediaProcessResultSet=results)


def largest_task_event(
    limit: int, file_id: str = "f-big", task_id: str = "t-big", shape: Callable[..., dict[str, Any]] = snapshots_event
) -> dict[str, Any]:
    """The `shape` (snapshots_event: one output of many URLs; outputs_event), signed, whose body is as large as the
    callback takes (`limit` bytes)."""

    def event(count: int) -> dict[str, Any]:
        return signed(shape(file_id, task_id, count), CALLBACK_SIGN_KEY)

    size = len(json.dumps(event(1000)))
    count = 1000 * limit // size
    while len(json.dumps(event(count))) > limit:
        count -= 100
    return event(count)
