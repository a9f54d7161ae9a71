"""Upload page: what a first visit costs (requests, bytes over the wire), what a revisit costs (the page asked
again, with its ETag: the SDK is immutable), and the function's cold import over a bare interpreter."""

from __future__ import annotations

import base64
import gzip
import re
from collections.abc import Callable
from typing import Any

from vodbench.common import (
    Figure,
    Section,
    bundle_cold_start,
    bundle_figure,
    cold_start_rows,
    environment,
    goal,
)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def _fetch(handler: Handler, path: str, **headers: str) -> tuple[bytes, str]:
    """The gzipped body of one GET, asked as a browser asks (Accept-Encoding: gzip), and its ETag."""
    from vodtesting import http_event

    asked = {"Accept-Encoding": "gzip", **headers}
    answer = handler(http_event(method="GET", path=path, headers=asked, shape="function_url"), None)
    return base64.b64decode(answer["body"]), answer["headers"].get("ETag", "")


def run() -> Section:
    from vodlocal.harness import function_file, load_handler

    with environment({"LOG_LEVEL": "WARNING"}):
        handler: Handler = load_handler("upload_page", function_file("upload_page"))
    page, etag = _fetch(handler, "/")
    names = re.findall(r'(?:src|href)="(assets/[^"]+)"', gzip.decompress(page).decode())
    assets = {name: _fetch(handler, f"/{name}")[0] for name in names}
    again = _fetch(handler, "/", **{"If-None-Match": etag})[0]  # a 304: no body
    start = bundle_cold_start("upload_page", {"LOG_LEVEL": "WARNING"})
    wire = len(page) + sum(len(body) for body in assets.values())
    decoded = len(gzip.decompress(page)) + sum(len(gzip.decompress(body)) for body in assets.values())
    largest = max(len(body) for body in assets.values())
    lines = [
        ("first visit: requests", f"{1 + len(assets):8d}   (the page, with its script and style; the SDK)"),
        ("first visit: bytes over the wire", f"{wire / 1024:8.1f} KiB  (×{decoded / wire:.1f} smaller than decoded)"),
        *(
            (
                f"  of which {name}",
                f"{len(body) / 1024:8.1f} KiB  ({len(gzip.decompress(body)) / 1024:.0f} KiB decoded)",
            )
            for name, body in assets.items()
        ),
        ("revisit: requests, bytes (the page's ETag)", f"{1:8d}, {len(again) / 1024:.1f} KiB"),
        ("largest answer, base64, over SCF's 6 MB limit", f"{largest * 4 / 3 / 6e6:8.2f}"),
        *cold_start_rows("upload_page", start, "no request"),
    ]
    sdk = max(len(gzip.decompress(body)) for body in assets.values())
    figures = [
        Figure(
            "upload page, first visit / revisit",
            f"{1 + len(assets)} requests, {wire / 1024:.0f} KiB / 1 request, {len(again) / 1024:.1f} KiB",
            f"×{decoded / wire:.1f} smaller than decoded (the largest asset, the SDK, is {sdk / 1e6:.1f} MB)",
        ),
        bundle_figure("upload_page", start, goal_text=goal(start.cold - start.bare, 0.2, unit="s", places=3)),
    ]
    return Section(lines, figures)
