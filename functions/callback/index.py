"""Callback function: verify, record and acknowledge VOD event notifications (POST, path-agnostic)."""

from __future__ import annotations

from shared.callback_service import make_callback_endpoint
from shared.config import ColdStart, load_callback_settings, log_level
from shared.hooks import load_hook
from shared.http.serve import serve
from shared.logs import set_level
from shared.store import open_store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

set_level(log_level())
with ColdStart():  # a bad setting, hook or key: logged as config.invalid, then the cold start fails
    SETTINGS = load_callback_settings()  # once per container
    # Connects on first use, not here: a store that is down at cold start answers 503, it can't crash the import.
    STORE = open_store(SETTINGS.store.database_url.reveal(), timeout_seconds=SETTINGS.store.timeout_seconds)
    ENDPOINT = make_callback_endpoint(SETTINGS, lambda: STORE, after_commit=load_hook(SETTINGS.after_commit_hook))


def main_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return serve(event, context, ENDPOINT, SETTINGS.http)
