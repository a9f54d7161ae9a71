"""The JSON fixtures in tests/events/ (VOD events as Tencent documents them), and reading SCF responses.
Events are built with the testing kit (vodtesting); these are data."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

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
