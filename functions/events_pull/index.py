"""Reliable-callback (PULL) function, on a timer: PullEvents → store → ConfirmEvents until near the time limit."""

import time
from typing import Any

from shared.config import load_pull_settings, log_level
from shared.hooks import load_hook
from shared.logs import invocation_id, setup_logging
from shared.pull_service import drain, time_limit_seconds
from shared.store import open_store
from shared.vod_api import SdkEventQueue, make_client

setup_logging(log_level())
SETTINGS = load_pull_settings()  # once per container; a bad setting fails the cold start loudly
STORE = open_store(SETTINGS.store.database_url.reveal(), timeout_seconds=SETTINGS.store.timeout_seconds)
QUEUE = SdkEventQueue(make_client(SETTINGS.api), SETTINGS.api.sub_app_id)
AFTER_COMMIT = load_hook(SETTINGS.after_commit_hook)
KEYS = SETTINGS.context_keys.all()


def main_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    deadline = time.time() + time_limit_seconds(context, SETTINGS.budget_seconds)
    report = drain(
        QUEUE,
        STORE,
        deadline=deadline,
        clock=time.time,
        reserve_seconds=SETTINGS.reserve_seconds,
        keys=KEYS,
        after_commit=AFTER_COMMIT,
        run_id=invocation_id(context),
    )
    return vars(report)
