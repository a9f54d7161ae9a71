"""Client uploads to VOD: ApplyUploadUGC -> COS (video, cover) -> CommitUploadUGC, resumable.

`Uploader(get_signature, options).upload(video, cover)` makes an `UploadTask`; `start()` runs it in a
background thread; `pause()` lets the parts in flight finish and keeps the checkpoint; `resume()`
continues (in this process, or any later one: the checkpoint is on disk); `cancel()` aborts the COS
multipart uploads and deletes the checkpoint; `Uploader.cancel_saved()` does that for an upload saved by
an earlier process. Callbacks (progress, state, notices) run on the uploader's threads and must be quick
and thread-safe.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from vodupload import cos
from vodupload.checkpoint import Checkpoint, CheckpointStore, FileIdentity, ObjectProgress, checkpoint_name, identify
from vodupload.cos import CredentialKeeper, Halted, RetryPolicy
from vodupload.errors import StorageError, UploadCancelled, UploadPaused, VodApiError, VodUploadError
from vodupload.progress import Progress, ProgressCallback, ProgressMeter
from vodupload.transfer import MAX_PART_SIZE, MIN_PART_SIZE, Ledger, ObjectTransfer, TransferContext, fit_part_size
from vodupload.vod_api import Applied, MediaInfo, VodClient

log = logging.getLogger("vodupload")

RESUME_WINDOW_SECONDS = 24 * 3600  # REFERENCE §2: VOD keeps an upload session resumable for 1 day


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


class NoticeKind(enum.Enum):
    RESUMING = "resuming"  # a saved upload continues
    CHECKPOINT_EXPIRED = "checkpoint_expired"  # saved more than a day ago: starting over
    FILE_CHANGED = "file_changed"  # the file is not what was saved: starting over
    SESSION_REFUSED = "session_refused"  # VOD would not continue the saved session: starting over
    CREDENTIALS_REFRESHED = "credentials_refreshed"
    CLEANUP_FAILED = "cleanup_failed"  # an abandoned upload could not be aborted (COS expires it later)


class CancelOutcome(enum.Enum):
    """What `Uploader.cancel_saved()` did."""

    NOTHING_SAVED = "nothing_saved"  # there was no saved upload of these files
    DISCARDED = "discarded"  # the saved upload is forgotten and its parts in COS deleted
    PARTS_LEFT = "parts_left"  # forgotten, but its parts could not be deleted (a CLEANUP_FAILED notice says why)


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    message: str


@dataclass(frozen=True)
class UploadResult:
    file_id: str
    video_url: str | None
    cover_url: str | None


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


StateCallback = Callable[[UploadState], None]
NoticeCallback = Callable[[Notice], None]


@dataclass(frozen=True)
class _Source:
    role: str
    path: Path
    name: str  # the name VOD shows (the file name without extension unless given)
    type: str  # the extension, VOD's file type

    def media(self, identity: FileIdentity) -> MediaInfo:
        """What ApplyUploadUGC announces: the size is the file's as the run found it, not as it was
        when the task was made (it may have changed while the task waited or was paused)."""
        return MediaInfo(self.name, self.type, identity.size)


def _source(role: str, path: str | os.PathLike[str], name: str | None = None) -> _Source:
    resolved = Path(path).resolve()
    if not resolved.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    extension = resolved.suffix.lstrip(".").lower()
    if not extension:
        raise ValueError(f"{path}: VOD needs the file type; give the file its extension (e.g. .mp4, .jpg)")
    return _Source(role, resolved, name or resolved.stem, extension)


class Uploader:
    """Makes upload tasks; one instance can serve many (sequential or concurrent) uploads."""

    def __init__(
        self,
        get_signature: Callable[[], str],
        options: UploadOptions | None = None,
        *,
        checkpoints: CheckpointStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options or UploadOptions()
        self.checkpoints = checkpoints or CheckpointStore()
        self._clock = clock
        self._session = requests.Session()
        # Enough pooled connections for every part in flight (requests keeps 10 by default).
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, self.options.parallel + 2))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self.vod = VodClient(get_signature, endpoint=self.options.endpoint, session=self._session,
                             timeout=min(self.options.timeout, 30.0), retries=self.options.api_retries,
                             retry_delay=self.options.api_retry_delay)
        self._cos_endpoint = cos.cos_endpoint(self.options.endpoint)

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
        sources = [_source("video", video, name)] + ([_source("cover", cover)] if cover is not None else [])
        return UploadTask(self, sources, on_progress, on_state, on_notice)

    def cancel_saved(self, video: str | os.PathLike[str], cover: str | os.PathLike[str] | None = None, *,
                     on_notice: NoticeCallback | None = None) -> CancelOutcome:
        """Abort and forget a saved (paused or interrupted) upload of these files.

        PARTS_LEFT when the saved upload is forgotten but its parts could not be deleted (VOD no longer
        knows the session, or COS refused): `on_notice` hears why. Raises, keeping the saved upload for
        another try, when VOD or the signature endpoint refuses or cannot be reached for another reason.
        """
        outcome = self.upload(video, cover, on_notice=on_notice)._cancel_idle_or_stop()
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
        return checkpoint_name(self.options.endpoint, str(sources[0].path), cover)

    def _keeper(self, applied: Applied, session_key: str, on_refresh: Callable[[str], None]) -> CredentialKeeper:
        def make(current: Applied) -> object:
            return cos.make_client(current, self._cos_endpoint, self._session, self.options.timeout)

        return CredentialKeeper(applied, lambda: self.vod.apply_resume(session_key), make, clock=self._clock,
                                margin=self.options.credential_margin, on_refresh=on_refresh)

    def _now(self) -> float:
        return self._clock()


class UploadTask:
    """One upload (a video and its optional cover), from apply to commit; thread-safe controls."""

    def __init__(self, uploader: Uploader, sources: list[_Source], on_progress: ProgressCallback | None,
                 on_state: StateCallback | None, on_notice: NoticeCallback | None) -> None:
        self._up = uploader
        self._sources = sources
        self._on_state = on_state
        self._on_notice = on_notice
        self.checkpoint_name = uploader._name_for(sources)
        # The sizes now, until a run identifies the files (they may change before it starts).
        self._meter = ProgressMeter(sum(s.path.stat().st_size for s in sources), on_progress)
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._state = UploadState.CREATED
        self._halt = threading.Event()
        self._stop_reason: UploadState | None = None  # PAUSED or CANCELLED, when asked
        self._thread: threading.Thread | None = None
        self._result: UploadResult | None = None
        self._error: VodUploadError | None = None
        self._resumed = False  # this run continues a saved session

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
            self._state = UploadState.APPLYING
            self._thread = threading.Thread(target=self._run, name="vodupload-task", daemon=True)
        self._emit_state(UploadState.APPLYING)  # before the thread can report a later state
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
        """Abort the COS uploads and delete the checkpoint: at once if idle, else after the parts in flight.
        Too late once committing: the upload then completes."""
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
            saved = self._up.checkpoints.load(self.checkpoint_name)
            if saved is None:
                outcome = CancelOutcome.NOTHING_SAVED
            elif self._discard(saved, abort=True):
                outcome = CancelOutcome.DISCARDED
            else:
                outcome = CancelOutcome.PARTS_LEFT
        except BaseException:
            self._settle(previous)  # e.g. the token was refused: nothing was given up, cancel can be retried
            raise
        self._settle(UploadState.CANCELLED)
        return outcome

    def wait(self, timeout: float | None = None) -> UploadState:
        """Block until the task is not running (done, paused, cancelled, failed) or `timeout` passes."""
        with self._settled:
            self._settled.wait_for(lambda: self._state in _SETTLED, timeout)
            return self._state

    def result(self, timeout: float | None = None) -> UploadResult:
        """Wait, then the result; raises the failure, UploadPaused or UploadCancelled otherwise."""
        state = self.wait(timeout)
        with self._lock:
            if self._result is not None:
                return self._result
            if self._error is not None:
                raise self._error
        if state is UploadState.PAUSED:
            raise UploadPaused("the upload is paused; its progress is saved")
        if state is UploadState.CANCELLED:
            raise UploadCancelled("the upload was cancelled")
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
        except OSError as exc:  # the file went away or became unreadable
            self._fail(VodUploadError(f"cannot read {exc.filename or 'the file'}: {exc.strerror or exc}"))
        except Exception as exc:  # a bug or an unexpected library error: report it, do not lose the thread
            log.exception("upload failed unexpectedly")
            self._fail(VodUploadError(f"unexpected error: {type(exc).__name__}: {exc}"))

    def _drive(self) -> None:
        identities = {s.role: identify(s.path) for s in self._sources}
        checkpoint, applied = self._open_session(identities)
        transfers: list[ObjectTransfer] = []
        finished = True
        if applied is not None:
            transfers, finished = self._transfer(checkpoint, applied, self._total(identities))
        stop = self._enter_commit(finished)
        if stop is not None:
            self._stop(stop, checkpoint, transfers)
            return
        self._emit_state(UploadState.COMMITTING)
        committed = self._up.vod.commit(checkpoint.session_key)
        self._up.checkpoints.delete(checkpoint.name)
        with self._lock:
            self._result = UploadResult(committed.file_id, committed.video_url, committed.cover_url)
        self._settle(UploadState.DONE)

    def _enter_commit(self, finished: bool) -> UploadState | None:
        """Move to COMMITTING, unless a pause or cancel was asked for (even after the last part): then
        that (PAUSED or CANCELLED). Decided under the lock, so no stop request is lost."""
        with self._lock:
            if self._stop_reason is not None:
                return self._stop_reason
            if not finished:  # halted without a stop request: cannot happen, but never commit then
                return UploadState.PAUSED
            self._state = UploadState.COMMITTING
            return None

    def _stop(self, reason: UploadState, checkpoint: Checkpoint, transfers: list[ObjectTransfer]) -> None:
        if reason is UploadState.CANCELLED:
            for transfer in transfers:
                transfer.abort()
            self._up.checkpoints.delete(checkpoint.name)
        self._settle(reason)

    def _transfer(self, checkpoint: Checkpoint, applied: Applied,
                  total: int) -> tuple[list[ObjectTransfer], bool]:
        """Upload every object: the transfers, and whether they all finished (False: halted)."""
        ledger = Ledger(checkpoint, self._up.checkpoints, self._meter)
        keeper = self._up._keeper(applied, checkpoint.session_key, self._credentials_refreshed)
        options = self._up.options
        context = TransferContext(keeper, ledger, RetryPolicy(options.part_attempts, options.retry_backoff),
                                  options.parallel, self._halt)
        transfers = [ObjectTransfer(obj, context) for obj in checkpoint.objects]
        self._set_state(UploadState.UPLOADING)
        try:
            if self._resumed:
                stored = sum(transfer.stored_bytes() for transfer in transfers)
                self._notice(NoticeKind.RESUMING, f"resuming the saved upload: {_mib(stored)} of "
                                                  f"{_mib(total)} MiB already uploaded")
                self._meter.restart(stored, total)
            else:
                self._meter.restart(0, total)
            finished = all(transfer.run() for transfer in transfers)
        except Halted:
            finished = False
        finally:
            ledger.flush()
        return transfers, finished

    # -- sessions and checkpoints ------------------------------------------------------------------

    def _open_session(self, identities: dict[str, FileIdentity]) -> tuple[Checkpoint, Applied | None]:
        """The checkpoint to continue (or a new one) and fresh credentials for it (None: all uploaded)."""
        self._resumed = False
        saved = self._usable_checkpoint(identities)
        if saved is not None and saved.uploaded:
            self._notice(NoticeKind.RESUMING, "resuming the saved upload: everything is uploaded, committing")
            total = self._total(identities)
            self._meter.restart(total, total)
            return saved, None
        if saved is not None:
            try:
                applied = self._up.vod.apply_resume(saved.session_key)
            except VodApiError as exc:
                if not exc.session_gone:
                    # Not an answer about the session (e.g. a signature refused for clock skew): it may
                    # well be alive. The task fails and the checkpoint stays for another try; starting
                    # over would orphan the multipart upload in COS.
                    raise
                self._notice(NoticeKind.SESSION_REFUSED,
                             f"VOD refused to continue the saved upload ({exc.detail}); starting over")
                self._up.checkpoints.delete(saved.name)
            else:
                self._resumed = True
                return saved, applied
        applied = self._up.vod.apply_new(*self._media(identities), storage_region=self._up.options.storage_region)
        checkpoint = self._new_checkpoint(identities, applied)
        self._up.checkpoints.save(checkpoint)
        return checkpoint, applied

    @staticmethod
    def _total(identities: dict[str, FileIdentity]) -> int:
        return sum(identity.size for identity in identities.values())

    def _media(self, identities: dict[str, FileIdentity]) -> tuple[MediaInfo, MediaInfo | None]:
        video, *cover = (source.media(identities[source.role]) for source in self._sources)
        return video, (cover[0] if cover else None)

    def _usable_checkpoint(self, identities: dict[str, FileIdentity]) -> Checkpoint | None:
        saved = self._up.checkpoints.load(self.checkpoint_name)
        if saved is None:
            return None
        age = self._up._now() - saved.created_at
        if age >= self._up.options.resume_window:
            self._notice(NoticeKind.CHECKPOINT_EXPIRED,
                         f"the saved upload is {age / 3600:.1f} hours old, past VOD's "
                         f"{self._up.options.resume_window / 3600:.0f}-hour resume window; starting over")
            self._up.checkpoints.delete(saved.name)
            return None
        # The checkpoint's name covers which files (paths); whether they are still the same files is this.
        changes = [f"{obj.role}: {change}" for obj in saved.objects
                   if (change := _change(identities.get(obj.role), obj)) is not None]
        if changes:
            self._notice(NoticeKind.FILE_CHANGED,
                         f"the file changed since the upload was saved ({'; '.join(changes)}); starting over")
            self._discard(saved, abort=True)
            return None
        return saved

    def _new_checkpoint(self, identities: dict[str, FileIdentity], applied: Applied) -> Checkpoint:
        objects = []
        for source in self._sources:
            key = applied.video_key if source.role == "video" else applied.cover_key
            if key is None:
                raise VodUploadError(f"VOD gave no storage path for the {source.role}")
            part_size = fit_part_size(identities[source.role].size, self._up.options.part_size)
            objects.append(ObjectProgress(source.role, identities[source.role], key, part_size))
        return Checkpoint(self.checkpoint_name, applied.session_key, self._up._now(), applied.bucket,
                          applied.region, objects)

    def _discard(self, saved: Checkpoint, *, abort: bool) -> bool:
        """Forget a saved upload, first aborting its multipart uploads if asked. True when nothing is
        left to abort; False when the parts could not be aborted because VOD no longer knows the session
        or COS refused (a CLEANUP_FAILED notice says why). Any other failure (VOD or the signature endpoint
        refusing for another reason, or unreachable) propagates and keeps the checkpoint for another try."""
        cleaned = True
        if abort and any(obj.upload_id for obj in saved.objects):
            try:
                applied = self._up.vod.apply_resume(saved.session_key)
                keeper = self._up._keeper(applied, saved.session_key, self._credentials_refreshed)
                ledger = Ledger(saved, self._up.checkpoints, self._meter)
                context = TransferContext(keeper, ledger, RetryPolicy(self._up.options.part_attempts,
                                                                      self._up.options.retry_backoff),
                                          1, threading.Event())
                for obj in saved.objects:
                    ObjectTransfer(obj, context).abort()
            except (VodApiError, StorageError) as exc:
                if isinstance(exc, VodApiError) and not exc.session_gone:
                    raise
                self._notice(NoticeKind.CLEANUP_FAILED,
                             f"could not abort the abandoned upload's parts ({exc.message}); COS expires them later")
                cleaned = False
        self._up.checkpoints.delete(saved.name)
        return cleaned

    # -- state and callbacks -----------------------------------------------------------------------

    def _credentials_refreshed(self, reason: str) -> None:
        self._notice(NoticeKind.CREDENTIALS_REFRESHED, f"{reason}: renewed them with the upload session")

    def _notice(self, kind: NoticeKind, message: str) -> None:
        log.log(logging.INFO if kind is NoticeKind.CREDENTIALS_REFRESHED else logging.WARNING, "%s", message)
        if self._on_notice is not None:
            self._on_notice(Notice(kind, message))

    def _set_state(self, state: UploadState) -> None:
        with self._lock:
            self._state = state
        self._emit_state(state)

    def _settle(self, state: UploadState) -> None:
        with self._lock:
            self._state = state
            self._settled.notify_all()
        self._emit_state(state)

    def _fail(self, error: VodUploadError) -> None:
        with self._lock:
            self._error = error
        log.warning("upload failed: %s", error.message)
        self._settle(UploadState.FAILED)

    def _emit_state(self, state: UploadState) -> None:
        log.debug("upload %s", state.value)
        if self._on_state is not None:
            self._on_state(state)


def _mib(count: int) -> str:
    return f"{count / 2**20:.1f}"


def _change(current: FileIdentity | None, saved: ObjectProgress) -> str | None:
    if current is None:
        return "it is no longer part of the upload"
    return current.change_from(saved.source)
