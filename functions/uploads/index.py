"""Uploads function: an uploader's own uploads and their task flows (GET /uploads, GET /uploads/{fileId})."""

from __future__ import annotations

from shared.config import ColdStart, load_uploads_settings, log_level
from shared.http.serve import serve
from shared.logs import set_level
from shared.status_service import make_uploads_endpoint
from shared.store import open_store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

set_level(log_level())
with ColdStart():  # a bad setting or key: logged as config.invalid, then the cold start fails
    SETTINGS = load_uploads_settings()  # once per container
    # Read-only: never writes, not even the schema (a read-only database role is enough). Each read within its time
    # limit, as a whole: the answer after a ?wait comes within the function's timeout.
    STORE = open_store(
        SETTINGS.store.database_url.reveal(),
        timeout_seconds=SETTINGS.store.timeout_seconds,
        read_only=True,
        bounded_reads=True,
    )
    ENDPOINT = make_uploads_endpoint(SETTINGS, lambda: STORE)


def main_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return serve(
        event, context, ENDPOINT, SETTINGS.http, methods=("GET",), allow_headers="Authorization, If-None-Match"
    )
