"""Reliable-callback (PULL) function, on a timer: PullEvents → store → ConfirmEvents until near the time limit."""

from __future__ import annotations

from shared.config import ColdStart, load_pull_settings, log_level
from shared.hooks import load_hook
from shared.logs import set_level
from shared.pull_service import run_invocation
from shared.store import open_store
from shared.vod_api import SdkEventQueue, make_client

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

set_level(log_level())
with ColdStart():  # a bad setting, hook or key: logged as config.invalid, then the cold start fails
    SETTINGS = load_pull_settings()  # once per container
    STORE = open_store(SETTINGS.store.database_url.reveal(), timeout_seconds=SETTINGS.store.timeout_seconds)
    QUEUE = SdkEventQueue(make_client(SETTINGS.api), SETTINGS.api.sub_app_id)
    AFTER_COMMIT = load_hook(SETTINGS.after_commit_hook)


def main_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return run_invocation(context, SETTINGS, QUEUE, STORE, AFTER_COMMIT)._asdict()
