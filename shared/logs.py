"""Structured logging: every line the bundle writes is one JSON object (SCF ships stdout to CLS)."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str = "INFO") -> None:
    """Once per container. Reuses the runtime's root handler when there is one (SCF, pytest),
    otherwise writes bare JSON lines to stdout."""
    logger = logging.getLogger("vod")
    logger.setLevel(level.upper())
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
