"""Saved upload sessions: when one is continued, and what happens when it cannot be.

The rule is vod-js-sdk-v6's (src/uploader.ts, `applyUploadUGC`): the saved vodSessionKey goes to
ApplyUploadUGC, and when VOD refuses it, whatever the code, the saved session is deleted and a new one
applied for. VOD does not publish which codes mean what, so none is treated specially. Unlike the SDK, the
saved session is deleted only once VOD has given the new one: refusing that too, VOD refuses the signature
(the signature endpoint's clock or keys), not the session, and a later run may continue it. Before asking VOD,
a session older than its resume window ("断点续传的有效时间为1天", https://cloud.tencent.com/document/product/266/9219)
or saved for a file that has changed since is dropped locally. Unlike the SDK, failing to reach VOD
(network errors, 5xx) is no refusal: the saved session stays for a later try. A session whose commit was
sent by a run that stopped before the answer is committed again, not uploaded a second time. So is one whose
commit VOD refused (the refusal may be the signature's alone): the next run asks for that commit once more, and
only if VOD refuses it again starts over, in that run (vod-js-sdk-v6 deletes its saved session before it
commits). A cancel asks VOD again only for a commit that may have been made (a try went unanswered); one refused
at its first try never was, and is discarded. A saved session this run will not continue (its commit refused
again, or it asked for something else) is deleted, as a refused one, only once VOD has given the new one.

Dropping a session aborts its multipart uploads, best effort. COS needs the session's own temporary
credentials for that, and VOD hands them out only while it accepts the session: after a refusal only
credentials this process still holds for it can do it; otherwise the user is told the parts stay behind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vodupload.checkpoint import Checkpoint, FileIdentity, SavedObject
from vodupload.credentials import SessionCredentials
from vodupload.errors import CheckpointUnavailable, StorageError, VodApiError
from vodupload.notices import NoticeKind
from vodupload.progress import ProgressMeter
from vodupload.vod_api import Committed, MediaInfo

if TYPE_CHECKING:
    from vodupload.uploader import Uploader

Notify = Callable[[NoticeKind, str], None]


@dataclass(frozen=True)
class Replaced:
    """A saved session this run starts over from, deleted once VOD has given the new one."""

    saved: Checkpoint
    kind: NoticeKind
    why: str
    refused: bool = False  # VOD refused the session itself: it gives no credentials for it any more


@dataclass(frozen=True)
class Opened:
    checkpoint: Checkpoint
    credentials: SessionCredentials
    resumed: bool  # a saved session continues (ask COS what it holds)


class SavedSessions:
    """The saved session of one task's files (checkpoint `name`), opened, abandoned or finished."""

    def __init__(self, uploader: Uploader, name: str, notify: Notify, on_refresh: Callable[[str], None]) -> None:
        self._up = uploader
        self.name = name
        self._notify = notify
        self._on_refresh = on_refresh

    def load(self) -> Checkpoint | None:
        return self._up.checkpoints.load(self.name, lambda why: self._notify(NoticeKind.CHECKPOINT_UNREADABLE, why))

    def open(
        self,
        identities: dict[str, FileIdentity],
        video: MediaInfo,
        cover: MediaInfo | None,
        asked: dict[str, Any],
        replacing: Replaced | None = None,
    ) -> Opened:
        """The saved session if VOD continues it, else a new one (saved before anything is uploaded). `asked`:
        what this upload asks for (a saved session asked for something else is not continued). `replacing`: a
        saved session already known not to be continued (recommit's)."""
        saved = None
        if replacing is None:
            saved, replacing = self._usable(identities, asked)
        if saved is not None:
            try:
                applied = self._up.vod.apply_resume(saved.session_key)
            except VodApiError as exc:
                why = f"VOD refused to continue the saved upload (code {exc.code}: {exc.detail})"
                replacing = Replaced(saved, NoticeKind.SESSION_REFUSED, why, refused=True)
            else:
                return Opened(saved, self._up._credentials(applied, self._on_refresh), resumed=True)
        try:
            applied = self._up.vod.apply_new(video, cover, storage_region=self._up.options.storage_region)
        except VodApiError as exc:
            if replacing is not None:  # the signature's fault, perhaps, or the new request's: kept for a later run
                kept = f"VOD refused a new one (code {exc.code}): the saved upload is kept for a later run"
                self._notify(replacing.kind, f"{replacing.why}; {kept}")
            raise
        if replacing is not None:  # VOD is willing: only that session is over
            self._notify(replacing.kind, f"{replacing.why}; starting over with a new upload")
            self.abandon(replacing.saved, refused=replacing.refused)
        objects = [SavedObject(role, identity) for role, identity in identities.items()]
        checkpoint = Checkpoint(self.name, applied.session_key, self._up._clock(), objects, asked=asked)
        self._up.checkpoints.save(checkpoint)
        return Opened(checkpoint, self._up._credentials(applied, self._on_refresh), resumed=False)

    def recommit(self, identities: dict[str, FileIdentity], asked: dict[str, Any]) -> Committed | Replaced | None:
        """The upload a stopped run had sent CommitUploadUGC for (killed, say, before the answer), committed
        again: a commit is repeatable (vod-js-sdk-v6 retries it with the same session key). None when there is
        no such upload; Replaced, for open(), when VOD refuses that commit."""
        saved = self.load()
        if saved is None or not saved.committing:
            return None
        # Whatever its age (VOD decides whether the session still answers), but not for a file changed since:
        # the upload asked for is of what the file is now (open() says so, and starts over).
        if any(_change(identities.get(obj.role), obj) is not None for obj in saved.objects):
            return None
        try:
            committed = self.commit(saved)
        except VodApiError as exc:  # final: resumed, the session would send nothing and be refused again
            why = f"VOD refused to commit the saved upload (code {exc.code}: {exc.detail})"
            return Replaced(saved, NoticeKind.SESSION_REFUSED, why)
        if saved.asked is not None and saved.asked != asked:  # done, as asked then: another upload would be a copy
            self._notify(
                NoticeKind.REQUEST_CHANGED,
                "the previous run had committed the upload, as it asked for then "
                f"({_differences(saved.asked, asked)}); nothing left to send",
            )
        else:
            self._notify(NoticeKind.RESUMING, "the previous run had committed the upload; nothing left to send")
        return committed

    def commit(self, checkpoint: Checkpoint) -> Committed:
        """Send the commit (or send it again, for a saved session a stopped run sent it for): done, and the saved
        session forgotten, when VOD confirms it. Before each try is sent, once it has its signature, the checkpoint
        says the commit may have been made (one that never got a signature was not sent, and stays cancellable); a
        VodApiError when VOD refuses it, the checkpoint then saying whether it was ever made."""
        never_made = not checkpoint.committing or checkpoint.commit_refused
        tries: list[None] = []

        def sending() -> None:
            tries.append(None)
            if not checkpoint.committing or checkpoint.commit_refused:
                checkpoint.committing, checkpoint.commit_refused = True, False
                self._up.checkpoints.save(checkpoint)

        try:
            committed = self._up.vod.commit(checkpoint.session_key, sending=sending)
        except VodApiError:
            if never_made and len(tries) == 1:  # refused at its only try: still never made, so a cancel asks nothing
                checkpoint.commit_refused = True
                self._up.checkpoints.save(checkpoint)
            raise
        self.finished(checkpoint)
        return committed

    def finished(self, checkpoint: Checkpoint) -> None:
        """Committed or cancelled: nothing left to resume."""
        self._up._release(checkpoint.session_key)
        try:
            self._up.checkpoints.delete(checkpoint.name)
        except CheckpointUnavailable as exc:  # the upload is committed (or cancelled): say so, do not fail it
            self._notify(NoticeKind.CLEANUP_FAILED, f"{exc.message}; delete it by hand")

    def abandon(self, saved: Checkpoint, *, refused: bool = False) -> bool:
        """Forget a saved session, first aborting its multipart uploads: with fresh credentials for it
        (unless VOD just `refused` it), else with credentials this process still holds. True when nothing
        is left in COS; False when parts are (a CLEANUP_FAILED notice says why). Failing to reach VOD or
        the signature endpoint propagates and keeps the checkpoint for another try."""
        cleaned = True
        if any(obj.upload_id for obj in saved.objects):
            try:
                self._abort(saved, refused=refused)
            except (VodApiError, StorageError) as exc:
                self._notify(
                    NoticeKind.CLEANUP_FAILED,
                    f"could not delete the abandoned upload's parts "
                    f"({exc.message}); they stay in VOD's storage until it removes them",
                )
                cleaned = False
        self.finished(saved)
        return cleaned

    def _abort(self, saved: Checkpoint, *, refused: bool) -> None:
        credentials = None
        why = "VOD refused its session"
        if not refused:
            try:
                credentials = self._up._credentials(self._up.vod.apply_resume(saved.session_key), self._on_refresh)
            except VodApiError as exc:
                why = f"VOD refused its session: code {exc.code}: {exc.detail}"
        credentials = credentials or self._up._held(saved.session_key)
        if credentials is None:
            raise StorageError(f"{why}, and only that session's credentials may delete them")
        meter = ProgressMeter(0, None)
        for transfer in self._up._transfers(saved, credentials, halt=threading.Event(), meter=meter, parallel=1):
            transfer.abort()

    def _usable(
        self, identities: dict[str, FileIdentity], asked: dict[str, Any]
    ) -> tuple[Checkpoint | None, Replaced | None]:
        """The saved session to continue, or the one to start over from (deleted once VOD gives the new one)."""
        saved = self.load()
        if saved is None:
            return None, None
        window = self._up.options.resume_window
        age = self._up._clock() - saved.created_at
        if age >= window:
            # Not aborted: VOD no longer gives credentials for a session that old, and only those may delete
            left = any(obj.upload_id for obj in saved.objects)
            self._notify(
                NoticeKind.CHECKPOINT_EXPIRED,
                f"the saved upload is {age / 3600:.1f} hours old, past VOD's {window / 3600:.0f}-hour "
                "resume window; starting over"
                + (" (its uploaded parts stay in VOD's storage until VOD removes them)" if left else ""),
            )
            self.finished(saved)
            return None, None
        # The checkpoint's name covers which files (paths); whether they are still the same files is this.
        changes = [
            f"{obj.role}: {change}"
            for obj in saved.objects
            if (change := _change(identities.get(obj.role), obj)) is not None
        ]
        if changes:
            self._notify(
                NoticeKind.FILE_CHANGED,
                f"the file changed since the upload was saved ({'; '.join(changes)}); starting over",
            )
            self.abandon(saved)
            return None, None
        # VOD keeps what a session was opened with (its task flow, region, class, name): continuing it would
        # give the upload those, not what this run asks for.
        if saved.asked is not None and saved.asked != asked:
            why = f"the saved upload asked for something else ({_differences(saved.asked, asked)})"
            return None, Replaced(saved, NoticeKind.REQUEST_CHANGED, why)
        return saved, None


def _differences(saved: dict[str, Any], asked: dict[str, Any]) -> str:
    names = sorted(name for name in {*saved, *asked} if saved.get(name) != asked.get(name))
    return "; ".join(f"{name}: {saved.get(name)!r} then, {asked.get(name)!r} now" for name in names)


def _change(current: FileIdentity | None, saved: SavedObject) -> str | None:
    if current is None:
        return "it is no longer part of the upload"
    return current.change_from(saved.source)
