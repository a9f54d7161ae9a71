"""Realistic SCF HTTP events for handler tests, built from the JSON fixtures in tests/events/."""

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


def http_event(
    shape: str,
    *,
    method: str = "POST",
    path: str = "/signature",
    headers: dict[str, str] | None = None,
    body: str | None = "{}",
    base64: bool = False,
) -> dict[str, Any]:
    """An SCF event of `shape` ('apigw' or 'function_url'); headers replace the fixture's
    Authorization/Content-Type etc. (case-insensitively); body None = absent, as SCF does."""
    event = load_event("apigw_post" if shape == "apigw" else "function_url_post")
    lowered = {k.lower() for k in headers or {}}
    base = {k: v for k, v in event["headers"].items() if k.lower() not in lowered}
    if shape == "function_url":
        event["headers"] = {**base, **{k.lower(): v for k, v in (headers or {}).items()}}
    else:
        event["headers"] = {**base, **(headers or {})}
        event["requestContext"]["httpMethod"] = method
        event["requestContext"]["path"] = path
    event["httpMethod"] = method
    event["path"] = path
    if body is None:
        event.pop("body", None)
    else:
        event["body"] = body
    if base64:
        event["isBase64Encoded"] = True
    return event


def response_json(result: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(result["body"]) if result["body"] else {}
    return body


def header(result: dict[str, Any], name: str) -> str | None:
    for key, value in result["headers"].items():
        if key.lower() == name.lower():
            return str(value)
    return None
