"""What the uploader tells the person running it, besides progress: plain sentences, safe to print."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass


class NoticeKind(enum.Enum):
    RESUMING = "resuming"  # a saved upload continues
    CHECKPOINT_EXPIRED = "checkpoint_expired"  # saved more than a day ago: starting over
    CHECKPOINT_UNREADABLE = "checkpoint_unreadable"  # damaged, or a newer version's: set aside, starting over
    FILE_CHANGED = "file_changed"  # the file is not what was saved: starting over
    REQUEST_CHANGED = "request_changed"  # asked for another task flow, region, class, name…: starting over (or kept)
    SESSION_REFUSED = "session_refused"  # VOD would not continue the saved session: starting over
    CREDENTIALS_REFRESHED = "credentials_refreshed"
    CLEANUP_FAILED = "cleanup_failed"  # something left behind: an abandoned upload's parts, a checkpoint file


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    message: str


NoticeCallback = Callable[[Notice], None]
