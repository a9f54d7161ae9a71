"""Upload page function: a browser uploader built on vod-js-sdk-v6 (GET /, GET /assets/<name>)."""

from __future__ import annotations

from pathlib import Path

from shared.config import ColdStart, load_upload_page_settings, log_level
from shared.http.serve import serve
from shared.logs import set_level
from shared.upload_page import build_page, make_page_endpoint

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HERE = Path(__file__).resolve().parent
set_level(log_level())
with ColdStart():  # a bad setting: logged as config.invalid, then the cold start fails
    SETTINGS = load_upload_page_settings()  # once per container
    ENDPOINT = make_page_endpoint(build_page(SETTINGS, HERE / "static", HERE / "vendor"))


def main_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return serve(event, context, ENDPOINT, SETTINGS.http, methods=("GET",), allow_headers="")
