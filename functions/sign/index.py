"""Signature function: authenticate the caller, issue a VOD upload signature (POST, path-agnostic)."""

from __future__ import annotations

from shared.config import ColdStart, load_sign_settings, log_level
from shared.logs import set_level
from shared.sign_handler import make_sign_handler

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

set_level(log_level())
with ColdStart():  # a bad setting or key: logged as config.invalid, then the cold start fails
    SETTINGS = load_sign_settings()  # once per container
    HANDLER = make_sign_handler(SETTINGS)


def main_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return HANDLER(event, context)
