"""Client uploads to VOD: ApplyUploadUGC -> COS (video, cover) -> CommitUploadUGC, resumable.

`Uploader(get_signature, options).upload(video, cover)` makes an `UploadTask`; `start()` runs it in a
background thread; `pause()` lets the parts in flight finish and keeps the checkpoint; `resume()`
continues (in this process, or any later one: the checkpoint is on disk); `cancel()` aborts the COS
multipart uploads and deletes the checkpoint; `Uploader.cancel_saved()` does that for an upload saved by
an earlier process. Callbacks (progress, state, notices) run on the uploader's threads or the caller's (a state on
whichever is delivering the task's reports, in order) and must be quick and thread-safe; one that raises is logged, and
the upload goes on as if it had not been called. Which saved sessions continue is `vodupload.sessions`.
"""

from __future__ import annotations

import collections
import enum
import logging
import math
import os
import re
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter

from vodupload import cos
from vodupload.checkpoint import Checkpoint, CheckpointStore, FileIdentity, checkpoint_name, identify
from vodupload.cos import RetryPolicy
from vodupload.credentials import SessionCredentials
from vodupload.errors import (
    AlreadyCommitted,
    SourceChanged,
    UploadCancelled,
    UploadPaused,
    VodApiError,
    VodUploadError,
)
from vodupload.halting import Halted, halting
from vodupload.notices import Notice, NoticeCallback, NoticeKind
from vodupload.progress import Progress, ProgressCallback, ProgressMeter
from vodupload.sessions import SavedSessions
from vodupload.signatures import SignatureClient
from vodupload.transfer import MAX_PART_SIZE, MIN_PART_SIZE, ObjectTransfer, TransferContext, fit_part_size
from vodupload.vod_api import Applied, Committed, MediaInfo, VodClient

log = logging.getLogger("vodupload")

# "断点续传的有效时间为1天" (https://cloud.tencent.com/document/product/266/9219)
RESUME_WINDOW_SECONDS = 24 * 3600


class UploadState(enum.Enum):
    CREATED = "created"
    APPLYING = "applying"
    UPLOADING = "uploading"
    PAUSED = "paused"
    COMMITTING = "committing"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


_SETTLED = {UploadState.CREATED, UploadState.PAUSED, UploadState.DONE, UploadState.CANCELLED, UploadState.FAILED}


class CancelOutcome(enum.Enum):
    """What `Uploader.cancel_saved()` did."""

    NOTHING_SAVED = "nothing_saved"  # there was no saved upload of these files
    DISCARDED = "discarded"  # the saved upload is forgotten and its parts in COS deleted
    PARTS_LEFT = "parts_left"  # forgotten, but its parts could not be deleted (a CLEANUP_FAILED notice says why)


UploadResult = Committed  # what an upload gives is its commit's answer: the file's id and URLs


@dataclass(frozen=True)
class UploadOptions:
    endpoint: str | None = None  # a local emulator serving the upload API and COS; None = Tencent's hosts
    storage_region: str | None = None
    part_size: int = 8 * 1024 * 1024  # as the SDKs; raised automatically to stay within 10000 parts
    parallel: int = 6  # parts in flight at once (the web SDK's default)
    part_attempts: int = 6  # per COS request: the first try and 5 retries
    retry_backoff: float = 0.5  # seconds before the first retry of a COS request, doubling up to 8 s
    api_retries: int = 3  # ApplyUploadUGC / CommitUploadUGC, like the SDK
    api_retry_delay: float = 1.0
    credential_margin: float = 300.0  # re-apply this long before the temporary credentials expire
    resume_window: float = RESUME_WINDOW_SECONDS
    timeout: float = 60.0  # seconds, per HTTP request

    def __post_init__(self) -> None:
        if not MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes")
        if self.parallel < 1 or self.part_attempts < 1 or self.api_retries < 0:
            raise ValueError("parallel and part_attempts must be at least 1, api_retries at least 0")
        if not 0 < self.timeout < math.inf:  # (not NaN either)
            raise ValueError("timeout must be a number of seconds above 0")
        if not (0 <= self.retry_backoff < math.inf and 0 <= self.api_retry_delay <= threading.TIMEOUT_MAX):
            raise ValueError("retry_backoff and api_retry_delay must be a number of seconds, at least 0")


StateCallback = Callable[[UploadState], None]


@dataclass(frozen=True)
class _Source:
    role: str
    path: Path
    name: str  # the name VOD shows (the file name without extension unless given)
    type: str  # the extension, VOD's file type
    size: int  # when the task was made (0 for a cancel's, which need not exist); a run identifies it anew

    def media(self, identity: FileIdentity) -> MediaInfo:
        """What ApplyUploadUGC announces: the size is the file's as the run found it, not as it was
        when the task was made (it may have changed while the task waited or was paused)."""
        return MediaInfo(self.name, self.type, identity.size)


def _source(role: str, path: str | os.PathLike[str], name: str | None = None, *, must_exist: bool = True) -> _Source:
    try:
        resolved = Path(path).resolve()
    except RuntimeError:  # a symbolic link loop (Python < 3.13; later ones leave it to stat())
        raise ValueError(f"{path}: a loop of symbolic links") from None
    size = _regular_file_size(path, resolved, role) if must_exist else 0
    # Named as given: a link's own name ("Holiday.mp4" -> store/blob0001), as a browser names a file picked
    shown = Path(path)
    extension = shown.suffix.lstrip(".").lower()
    if not extension:
        raise ValueError(f"{path}: VOD needs the file type; give the file its extension (e.g. .mp4, .jpg)")
    return _Source(role, resolved, _media_name(name, shown), extension, size)


# What VOD refuses in a media name (vod-js-sdk-v6 checks a given mediaName for these): a name given is refused
# here, one taken from the file name (where they are legal) has them replaced.
_NOT_IN_NAMES = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')


def _media_name(given: str | None, path: Path) -> str:
    if given:
        if _NOT_IN_NAMES.search(given) or not _is_utf8(given):
            raise ValueError(
                f'the name {given!r}: VOD refuses \\ / : * ? " < > |, control characters and bytes that are '
                "not UTF-8 in names"
            )
        return given
    stem = path.stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace")  # bytes that are not UTF-8: �
    return _NOT_IN_NAMES.sub("_", stem)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")  # a name from a command line of bytes that are not UTF-8 holds lone surrogates
    except UnicodeEncodeError:
        return False
    return True


def _sources(
    video: str | os.PathLike[str],
    cover: str | os.PathLike[str] | None,
    name: str | None = None,
    *,
    must_exist: bool = True,
) -> list[_Source]:
    sources = [_source("video", video, name, must_exist=must_exist)]
    if cover is not None:
        sources.append(_source("cover", cover, must_exist=must_exist))
    return sources


def _regular_file_size(path: str | os.PathLike[str], resolved: Path, role: str) -> int:
    try:
        info = resolved.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as exc:  # a directory on the way that cannot be entered, say
        raise PermissionError(f"{path}: cannot read it ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"{path}: is a directory; give {'a video' if role == 'video' else 'an image'} file")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path}: not a regular file")
    try:  # said now, before anything is sent: not by the upload's first read, in its thread
        open(resolved, "rb").close()
    except OSError as exc:
        raise PermissionError(f"{path}: cannot read it ({exc.strerror})") from None
    return info.st_size


class Uploader:
    """Makes upload tasks; one instance can serve many (sequential or concurrent) uploads.

    `owner`: whose uploads these are (default: a SignatureClient's endpoint and token subject); a saved upload
    resumes only for the same owner, as VOD gives a resumed session the sourceContext it was opened with."""

    def __init__(
        self,
        get_signature: Callable[[], str],
        options: UploadOptions | None = None,
        *,
        checkpoints: CheckpointStore | None = None,
        clock: Callable[[], float] = time.time,
        owner: Callable[[], str] | None = None,
    ) -> None:
        self.options = options or UploadOptions()
        self._owner = owner or (get_signature.owner if isinstance(get_signature, SignatureClient) else lambda: "")
        # What each signature is asked for, when known: a saved upload that asked for something else starts over.
        self._signature_request = get_signature.request_body() if isinstance(get_signature, SignatureClient) else {}
        self.checkpoints = checkpoints or CheckpointStore()
        self._clock = clock
        self._session = requests.Session()
        # Enough pooled connections for every part in flight (requests keeps 10 by default).
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, self.options.parallel + 2))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self.vod = VodClient(
            get_signature,
            endpoint=self.options.endpoint,
            session=self._session,
            timeout=min(self.options.timeout, 30.0),
            retries=self.options.api_retries,
            retry_delay=self.options.api_retry_delay,
        )
        self._cos_endpoint = cos.cos_endpoint(self.options.endpoint)
        # Credentials this process holds per session key: after VOD refuses a session, the only way to
        # delete its parts (see vodupload.sessions).
        self._held_lock = threading.Lock()
        self._held_credentials: dict[str, SessionCredentials] = {}

    def upload(
        self,
        video: str | os.PathLike[str],
        cover: str | os.PathLike[str] | None = None,
        *,
        name: str | None = None,
        on_progress: ProgressCallback | None = None,
        on_state: StateCallback | None = None,
        on_notice: NoticeCallback | None = None,
    ) -> UploadTask:
        return UploadTask(self, _sources(video, cover, name), on_progress, on_state, on_notice)

    def cancel_saved(
        self,
        video: str | os.PathLike[str],
        cover: str | os.PathLike[str] | None = None,
        *,
        on_notice: NoticeCallback | None = None,
    ) -> CancelOutcome:
        """Abort and forget a saved (paused or interrupted) upload of these files (`cover` None: of the video,
        with whatever cover it was saved with).

        PARTS_LEFT when the saved upload is forgotten but its parts could not be deleted (VOD refused the
        session and this process holds no credentials for it, or COS refused): `on_notice` hears why.
        Raises, keeping the saved upload for another try, when VOD or the signature endpoint cannot be
        reached or the signature endpoint refuses; AlreadyCommitted (nothing left to keep) when a stopped
        run had sent the commit and VOD confirms it.
        """
        # The files themselves need not exist any more: a saved upload of a moved file is still cancelled.
        sources = _sources(video, cover, must_exist=False)
        if cover is None and self.checkpoints.load(self._name_for(sources)) is None:
            # Asked for the video alone: the saved upload of it with a cover, if this uploader has one.
            for saved_cover in self.checkpoints.covers_saved_with(str(sources[0].path)):
                with_cover = _sources(video, saved_cover, must_exist=False)
                if self.checkpoints.load(self._name_for(with_cover)) is not None:
                    sources = with_cover
                    break
        task = UploadTask(self, sources, None, None, on_notice)
        outcome = task._cancel_idle_or_stop()
        return CancelOutcome.NOTHING_SAVED if outcome is None else outcome  # (a new task is idle: never None)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- shared by tasks ---------------------------------------------------------------------------

    def _name_for(self, sources: list[_Source]) -> str:
        cover = next((str(s.path) for s in sources if s.role == "cover"), None)
        return checkpoint_name(self.options.endpoint, str(sources[0].path), cover, self._owner())

    def _credentials(self, applied: Applied, on_refresh: Callable[[str], None]) -> SessionCredentials:
        credentials = SessionCredentials(
            applied,
            lambda: self.vod.apply_resume(applied.session_key),
            clock=self._clock,
            margin=self.options.credential_margin,
            on_refresh=on_refresh,
        )
        with self._held_lock:
            self._held_credentials[applied.session_key] = credentials
        return credentials

    def _held(self, session_key: str) -> SessionCredentials | None:
        with self._held_lock:
            return self._held_credentials.get(session_key)

    def _release(self, session_key: str) -> None:
        with self._held_lock:
            self._held_credentials.pop(session_key, None)

    def _transfers(
        self,
        checkpoint: Checkpoint,
        credentials: SessionCredentials,
        *,
        halt: threading.Event,
        meter: ProgressMeter,
        parallel: int | None = None,
    ) -> list[ObjectTransfer]:
        """A transfer per object of the checkpoint, into the storage VOD gave the session."""
        options = self.options
        client = cos.make_client(credentials, self._cos_endpoint, self._session, options.timeout)
        context = TransferContext(
            client,
            credentials,
            RetryPolicy(options.part_attempts, options.retry_backoff),
            parallel or options.parallel,
            halt,
            meter,
            lambda: self.checkpoints.save(checkpoint),
        )
        applied = credentials.applied
        keys = {"video": applied.video_key, "cover": applied.cover_key}
        transfers = []
        for obj in checkpoint.objects:
            key = keys.get(obj.role)
            if key is None:
                raise VodUploadError(f"VOD gave no storage path for the {obj.role}")
            # An open multipart upload goes on in the parts it began with (COS's parts are checked against them).
            part_size = obj.part_size if obj.upload_id and obj.part_size else options.part_size
            transfers.append(ObjectTransfer(obj, key, fit_part_size(obj.source.size, part_size), context))
        return transfers


class UploadTask:
    """One upload (a video and its optional cover), from apply to commit; thread-safe controls."""

    def __init__(
        self,
        uploader: Uploader,
        sources: list[_Source],
        on_progress: ProgressCallback | None,
        on_state: StateCallback | None,
        on_notice: NoticeCallback | None,
    ) -> None:
        self._up = uploader
        self._sources = sources
        # The app's code, which may raise: never into the upload's own (a done upload made failed, started again)
        self._on_state = _guarded(on_state, "on_state")
        self._on_notice = _guarded(on_notice, "on_notice")
        self.checkpoint_name = uploader._name_for(sources)
        # The sizes now, until a run identifies the files (they may change before it starts).
        self._meter = ProgressMeter(sum(s.size for s in sources), _guarded(on_progress, "on_progress"))
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._state = UploadState.CREATED
        self._changes = 0  # of the state, numbered: reports of older changes than one reported are dropped
        self._report_lock = threading.Lock()  # for the four below, never held while on_state runs
        self._reported = 0
        self._reports: collections.deque[UploadState] = collections.deque()
        self._reporting = False
        self._halt = threading.Event()
        self._stop_reason: UploadState | None = None  # PAUSED or CANCELLED, when asked
        self._thread: threading.Thread | None = None
        self._result: UploadResult | None = None
        self._error: VodUploadError | None = None
        self._error_traceback: TracebackType | None = None
        self._error_context: BaseException | None = None
        self._sessions = SavedSessions(uploader, self.checkpoint_name, self._notice, self._credentials_refreshed)

    # -- control -----------------------------------------------------------------------------------

    @property
    def state(self) -> UploadState:
        with self._lock:
            return self._state

    @property
    def progress(self) -> Progress:
        return self._meter.snapshot()

    def start(self) -> UploadTask:
        """Run in a background thread (also continues a paused or failed task). Returns self."""
        with self._lock:
            if self._state not in (UploadState.CREATED, UploadState.PAUSED, UploadState.FAILED):
                raise RuntimeError(f"cannot start an upload that is {self._state.value}")
            self._halt.clear()
            self._stop_reason = None
            self._error = None
            change = self._change_to(UploadState.APPLYING)
            self._thread = threading.Thread(target=self._run, name="vodupload-task", daemon=True)
        self._emit_state(UploadState.APPLYING, change)  # before the thread can report a later state
        self._thread.start()
        return self

    def resume(self) -> UploadTask:
        return self.start()

    def pause(self) -> None:
        """Stop after the parts in flight; the checkpoint keeps the progress. No effect unless running."""
        with self._lock:
            if self._state not in _SETTLED:
                self._ask_to_stop(UploadState.PAUSED)

    def cancel(self) -> None:
        """Abort the COS uploads and delete the checkpoint. A running task does it after its parts in flight, in its
        own thread. One not running (paused, failed, not started) does it here, in the caller's thread: this call
        then takes as long as VOD's and COS's answers and retries (a UI calls it from a worker), and raises what
        `Uploader.cancel_saved` raises, the task left as it was. Too late once its commit is sent: the upload then
        completes."""
        self._cancel_idle_or_stop()

    def _cancel_idle_or_stop(self) -> CancelOutcome | None:
        """cancel(); what the cleanup did when the task was idle, None when it was running or over."""
        with self._lock:
            # One critical section decides between stopping a running task and cleaning up an idle one:
            # a start() cannot slip in between, and start() is refused while the cleanup runs.
            if self._state in (UploadState.DONE, UploadState.CANCELLED):
                return None
            if self._state not in _SETTLED:
                self._ask_to_stop(UploadState.CANCELLED)
                return None
            previous, self._state = self._state, UploadState.APPLYING
        try:
            outcome = self._discard_saved()
        except BaseException:
            self._settle(previous)  # e.g. the token was refused: nothing was given up, cancel can be retried
            raise
        self._settle(UploadState.CANCELLED)
        return outcome

    def _discard_saved(self) -> CancelOutcome:
        """Abort the saved upload's COS uploads and delete its checkpoint."""
        if self._sessions.load() is None and not self._up.checkpoints.lock_made(self.checkpoint_name):
            return CancelOutcome.NOTHING_SAVED  # never uploaded: no need to make its lock file
        # (A run may hold the lock with nothing saved yet: it waits for its first signature, say. Refused then.)
        with self._up.checkpoints.claimed(self.checkpoint_name):
            saved = self._sessions.load()  # again, now that no run can change it
            if saved is None:
                return CancelOutcome.NOTHING_SAVED
            # A stopped run sent the commit, perhaps received: VOD's answer, asked again (as a run would), says. Not
            # one VOD refused at its first try: never committed, it is discarded as any other.
            if saved.committing and not saved.commit_refused:
                try:
                    committed = self._sessions.commit(saved)
                except VodApiError:  # refused: never to be committed, so discarded as any other
                    pass
                else:
                    raise AlreadyCommitted(committed)
            return CancelOutcome.DISCARDED if self._sessions.abandon(saved) else CancelOutcome.PARTS_LEFT

    def wait(self, timeout: float | None = None) -> UploadState:
        """Block until the task is not running (done, paused, cancelled, failed) or `timeout` passes."""
        with self._settled:
            self._settled.wait_for(lambda: self._state in _SETTLED, timeout)
            return self._state

    def result(self, timeout: float | None = None) -> UploadResult:
        """Wait, then the result; raises the failure, UploadPaused or UploadCancelled otherwise (TimeoutError when
        `timeout` passed first; RuntimeError for a task never started)."""
        state = self.wait(timeout)
        with self._lock:
            if self._result is not None:
                return self._result
            if self._error is not None:  # as it failed: a raise adds its caller's frames and exception to it
                self._error.__context__ = self._error_context
                raise self._error.with_traceback(self._error_traceback)
        if state is UploadState.PAUSED:
            raise UploadPaused("the upload is paused; its progress is saved")
        if state is UploadState.CANCELLED:
            raise UploadCancelled("the upload was cancelled")
        if state is UploadState.CREATED:
            raise RuntimeError("the upload has not been started: start() it first")
        raise TimeoutError(f"the upload is still {state.value}")

    def run(self) -> UploadResult:
        """start() and result() in one call."""
        return self.start().result()

    def _ask_to_stop(self, reason: UploadState) -> None:
        """Ask the running task to stop (PAUSED or CANCELLED); the caller holds the lock."""
        if self._stop_reason is not UploadState.CANCELLED:  # cancel wins over pause
            self._stop_reason = reason
        self._halt.set()

    # -- the run -----------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._drive()
        except VodUploadError as exc:
            self._fail(exc)
        except FileNotFoundError as exc:
            self._fail(
                SourceChanged(
                    f"{exc.filename or 'the file'} was deleted during the upload; its saved progress stays until the "
                    "upload is cancelled (vod-upload FILE --cancel)"
                )
            )
        except OSError as exc:  # the file became unreadable
            self._fail(VodUploadError(f"cannot read {exc.filename or 'the file'}: {exc.strerror or exc}"))
        except Exception as exc:  # a bug or an unexpected library error: report it, do not lose the thread
            log.exception("upload failed unexpectedly")
            self._fail(VodUploadError(f"unexpected error: {type(exc).__name__}: {exc}"))

    def _drive(self) -> None:
        with self._up.checkpoints.claimed(self.checkpoint_name), halting(self._halt):
            try:
                ended = self._drive_claimed()
            except Halted:  # waiting to ask again for a signature or a VOD call: what is saved stays as it was
                ended = UploadState.PAUSED
        # Settled only now, so that a cancel or resume the caller makes at once finds the checkpoint free. A cancel
        # asked for after the run decided to pause (the task still running) is done here, as on a paused task:
        # decided and settled in one critical section, so that none is lost in between.
        while True:
            with self._lock:
                if ended is not UploadState.PAUSED or self._stop_reason is not UploadState.CANCELLED:
                    change = self._change_to(ended)
                    self._settled.notify_all()
                    break
            try:
                self._discard_saved()
                ended = UploadState.CANCELLED
            except AlreadyCommitted as done:  # its commit was sent before the cancel: the upload is done
                ended = self._done(done.committed)
        self._emit_state(ended, change)

    def _drive_claimed(self) -> UploadState:
        """Upload and commit; DONE, or PAUSED or CANCELLED when asked to stop."""
        identities = {s.role: identify(s.path) for s in self._sources}
        asked = self._asked()
        recommitted = self._sessions.recommit(identities, asked)
        if isinstance(recommitted, Committed):
            committed = recommitted
        else:
            opened = self._sessions.open(identities, *self._media(identities), asked, recommitted)
            checkpoint = opened.checkpoint
            transfers = self._up._transfers(checkpoint, opened.credentials, halt=self._halt, meter=self._meter)
            finished = self._transfer(transfers, opened.resumed, sum(i.size for i in identities.values()))
            stop, change = self._enter_commit(finished)
            if stop is not None:
                if stop is UploadState.CANCELLED:
                    for transfer in transfers:
                        transfer.abort()
                    self._sessions.finished(checkpoint)
                return stop
            self._emit_state(UploadState.COMMITTING, change)
            # Refused, it stays saved as committing: the next run asks once more (see sessions.py).
            committed = self._sessions.commit(checkpoint)
        return self._done(committed)

    def _done(self, committed: Committed) -> UploadState:
        with self._lock:
            self._result = committed
        return UploadState.DONE

    def _transfer(self, transfers: list[ObjectTransfer], resumed: bool, total: int) -> bool:
        """Upload every object; whether they all finished (False: halted)."""
        self._set_state(UploadState.UPLOADING)
        try:
            stored = 0
            if resumed:
                stored = sum(transfer.resume() for transfer in transfers)
                self._notice(
                    NoticeKind.RESUMING,
                    f"resuming the saved upload: {_mib(stored)} of {_mib(total)} MiB already uploaded",
                )
            self._meter.restart(stored, total)
            return all(transfer.run() for transfer in transfers)
        except Halted:
            return False

    def _enter_commit(self, finished: bool) -> tuple[UploadState | None, int]:
        """Move to COMMITTING (and its change's number), unless a pause or cancel was asked for (even after the last
        part): then that (PAUSED or CANCELLED). Decided under the lock, so no stop request is lost."""
        with self._lock:
            if self._stop_reason is not None:
                return self._stop_reason, 0
            if not finished:  # halted without a stop request: cannot happen, but never commit then
                return UploadState.PAUSED, 0
            return None, self._change_to(UploadState.COMMITTING)

    def _asked(self) -> dict[str, Any]:
        """What this upload asks for: of the signature endpoint (when the uploader knows: a SignatureClient's
        request), of ApplyUploadUGC, and the names VOD is to show."""
        return {
            **{f"signature {name}": value for name, value in self._up._signature_request.items()},
            "storage region": self._up.options.storage_region,
            **{f"{source.role} name": source.name for source in self._sources},
        }

    def _media(self, identities: dict[str, FileIdentity]) -> tuple[MediaInfo, MediaInfo | None]:
        video, *cover = (source.media(identities[source.role]) for source in self._sources)
        return video, (cover[0] if cover else None)

    # -- state and callbacks -----------------------------------------------------------------------

    def _credentials_refreshed(self, reason: str) -> None:
        self._notice(NoticeKind.CREDENTIALS_REFRESHED, f"{reason}: renewed them with the upload session")

    def _notice(self, kind: NoticeKind, message: str) -> None:
        log.log(logging.INFO if kind is NoticeKind.CREDENTIALS_REFRESHED else logging.WARNING, "%s", message)
        if self._on_notice is not None:
            self._on_notice(Notice(kind, message))

    def _set_state(self, state: UploadState) -> None:
        with self._lock:
            change = self._change_to(state)
        self._emit_state(state, change)

    def _settle(self, state: UploadState) -> None:
        with self._lock:
            change = self._change_to(state)
            self._settled.notify_all()
        self._emit_state(state, change)

    def _change_to(self, state: UploadState) -> int:
        """Under the lock: the new state, and the change's number, for its report."""
        self._state = state
        self._changes += 1
        return self._changes

    def _fail(self, error: VodUploadError) -> None:
        with self._lock:
            self._error, self._error_traceback, self._error_context = error, error.__traceback__, error.__context__
        log.warning("upload failed: %s", error.message)
        self._settle(UploadState.FAILED)

    def _emit_state(self, state: UploadState, change: int) -> None:
        """Report `state` to on_state in the order of the changes: a report that comes after a later change's (a run's
        of its pause, late, after a resume or a cancel in another thread: wait() returns once the state is settled)
        is dropped. One thread at a time delivers the reports, the others leaving theirs to it: none waits for
        another's callback (which may wait for the thread that resumes)."""
        log.debug("upload %s", state.value)
        if self._on_state is None:
            return
        with self._report_lock:
            if change < self._reported:
                return
            self._reported = change
            self._reports.append(state)
            if self._reporting:
                return
            self._reporting = True
        failure: BaseException | None = None
        while True:
            with self._report_lock:
                if not self._reports:  # done delivering: said in the same critical section, or one queued now is lost
                    self._reporting = False
                    break
                state = self._reports.popleft()
            try:
                self._on_state(state)
            except BaseException as exc:  # (a SystemExit: _guarded logs the rest) the others' reports still delivered
                failure = failure or exc
        if failure is not None:
            raise failure


T = TypeVar("T")


def _guarded(callback: Callable[[T], None] | None, name: str) -> Callable[[T], None] | None:
    """`callback`, its exceptions logged instead of raised."""
    if callback is None:
        return None
    app_callback = callback  # (bound here: mypy keeps a closure's view of the optional)

    def call(value: T) -> None:
        try:
            app_callback(value)
        except Exception:
            log.exception("the app's %s callback raised; the upload goes on", name)

    return call


def _mib(count: int) -> str:
    return f"{count / 2**20:.1f}"
