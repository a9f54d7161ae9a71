"""The uploader library against the real emulator and the real signature function, in-process."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import localstack
import pytest
from vodupload import (
    AuthenticationFailed,
    CancelOutcome,
    NoticeKind,
    Progress,
    SignatureRefused,
    UploadCancelled,
    UploadPaused,
    UploadState,
    UploadTask,
    VodApiError,
    VodClient,
)
from vodupload.vod_api import MediaInfo

from shared.signing import decode_signature
from tests.client.conftest import MIB, Stack, content, write_file
from tests.clocks import OffsetClock


def pause_after(parts: int, action: Callable[[UploadTask], None]) -> tuple[Callable[[Progress], None],
                                                                           list[UploadTask]]:
    """A progress callback that calls `action(task)` once `parts` MiB are stored (tasks go in the list)."""
    tasks: list[UploadTask] = []
    fired = threading.Event()

    def on_progress(progress: Progress) -> None:
        if progress.bytes_done >= parts * MIB and not fired.is_set():
            fired.set()
            action(tasks[0])

    return on_progress, tasks


def start_and_stop_early(stack: Stack, video: Path, *, parts: int = 2, stop: str = "pause",
                         uploader: Any = None) -> UploadTask:
    """Start an upload of `video` and pause (or cancel) it from the progress callback after `parts` parts."""
    on_progress, tasks = pause_after(parts, lambda task: getattr(task, stop)())
    task = (uploader or stack.uploader()).upload(video, on_progress=on_progress)
    tasks.append(task)
    task.start()
    return task


@pytest.mark.parametrize(("video_size", "cover_size"), [
    (0, None),  # empty: one PUT of nothing
    (300 * 1024, None),  # smaller than a part: one PUT
    (4 * MIB, None),  # whole parts only
    (5 * MIB + 123, 2000),  # a short last part, and a cover
])
def test_upload_stores_the_exact_bytes_with_one_time_signatures(stack: Stack, tmp_path: Path, video_size: int,
                                                                cover_size: int | None) -> None:
    video = write_file(tmp_path / "holiday.mp4", video_size)
    cover = write_file(tmp_path / "holiday.jpg", cover_size, seed=2) if cover_size else None
    states: list[UploadState] = []
    progress: list[Progress] = []

    result = stack.uploader().upload(video, cover, on_state=states.append, on_progress=progress.append).run()

    assert result.file_id.isdigit() and len(result.file_id) == 19
    assert stack.served(result.video_url or "") == video.read_bytes()
    if cover is None:
        assert result.cover_url is None
    else:
        assert stack.served(result.cover_url or "") == cover.read_bytes()
    total = video_size + (cover_size or 0)
    assert stack.emulator.store.bytes_received == total  # nothing sent twice
    assert progress[-1].bytes_done == progress[-1].bytes_total == total
    assert states == [UploadState.APPLYING, UploadState.UPLOADING, UploadState.COMMITTING, UploadState.DONE]
    assert stack.traffic.actions() == ["ApplyUploadUGC", "CommitUploadUGC"]
    signatures = [call.request["signature"] for call in stack.traffic.calls]
    assert len(set(signatures)) == len(signatures)
    assert all(decode_signature(s).params.one_time_valid for s in signatures)
    assert stack.saved() == [] and stack.open_uploads() == []


def test_pause_keeps_the_checkpoint_and_resume_sends_only_the_rest(stack: Stack, tmp_path: Path) -> None:
    video = write_file(tmp_path / "talk.mp4", 8 * MIB)
    notices: list[Any] = []
    on_progress, tasks = pause_after(2, lambda task: task.pause())
    task = stack.uploader().upload(video, on_progress=on_progress, on_notice=notices.append)
    tasks.append(task)

    assert task.start().wait(60) is UploadState.PAUSED
    with pytest.raises(UploadPaused):
        task.result()
    stored_while_paused = stack.emulator.store.bytes_received
    assert 2 * MIB <= stored_while_paused < 8 * MIB  # the parts in flight finished, nothing new started
    assert len(stack.saved()) == 1 and len(stack.open_uploads()) == 1
    saved = stack.saved()[0].read_text()
    cert = stack.traffic.calls[0].answer["data"]["tempCertificate"]
    assert cert["secretKey"] not in saved and cert["token"] not in saved  # credentials are never stored

    result = task.resume().result(60)

    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.emulator.store.bytes_received == 8 * MIB
    assert [n.kind for n in notices] == [NoticeKind.RESUMING]
    assert stack.traffic.actions() == ["ApplyUploadUGC", "ApplyUploadUGC (resume)", "CommitUploadUGC"]
    assert stack.saved() == [] and stack.open_uploads() == []


@pytest.mark.parametrize("when", ["while uploading", "while paused", "saved by an earlier process"])
def test_cancel_leaves_no_parts_and_no_checkpoint(stack: Stack, tmp_path: Path, when: str) -> None:
    video = write_file(tmp_path / "draft.mp4", 6 * MIB)
    task = start_and_stop_early(stack, video, stop="cancel" if when == "while uploading" else "pause")
    task.wait(60)
    if when == "while paused":
        task.cancel()
    elif when == "saved by an earlier process":
        assert stack.uploader().cancel_saved(video) is CancelOutcome.DISCARDED

    if when != "saved by an earlier process":
        assert task.state is UploadState.CANCELLED
        with pytest.raises(UploadCancelled):
            task.result()
    assert stack.open_uploads() == []
    assert stack.saved() == []
    assert stack.uploader().cancel_saved(video) is CancelOutcome.NOTHING_SAVED


@pytest.mark.parametrize(("uploader_shares_the_clock", "advance", "denied"), [
    (True, 500, False),  # the uploader sees expiredTime coming (margin 120 s) and renews first
    (False, 700, True),  # the credentials expired unnoticed: COS says 403, the uploader renews and retries
])
def test_expiring_credentials_are_renewed_mid_upload(start_stack: Callable[..., Stack], tmp_path: Path,
                                                     uploader_shares_the_clock: bool, advance: int,
                                                     denied: bool) -> None:
    stack = start_stack(credential_ttl_seconds=600)
    video = write_file(tmp_path / "long.mp4", 6 * MIB)
    notices: list[Any] = []
    on_progress, tasks = pause_after(1, lambda task: stack.clock.advance(advance))
    uploader = stack.uploader(clock=stack.clock if uploader_shares_the_clock else OffsetClock(),
                              credential_margin=120)
    task = uploader.upload(video, on_progress=on_progress, on_notice=notices.append)
    tasks.append(task)

    result = task.run()

    assert stack.served(result.video_url or "") == video.read_bytes()
    assert "ApplyUploadUGC (resume)" in stack.traffic.actions()
    assert NoticeKind.CREDENTIALS_REFRESHED in [n.kind for n in notices]
    assert (403 in stack.traffic.cos_statuses) is denied


def _rewrite(video: Path, stack: Stack, clock: OffsetClock) -> None:
    video.write_bytes(content(video.stat().st_size, seed=9))


def _grow(video: Path, stack: Stack, clock: OffsetClock) -> None:
    with open(video, "ab") as out:
        out.write(b"more")


def _a_day_later(video: Path, stack: Stack, clock: OffsetClock) -> None:
    clock.advance(24 * 3600)


def _session_expires_at_vod(video: Path, stack: Stack, clock: OffsetClock) -> None:
    stack.clock.advance(301)


@pytest.mark.parametrize(("change", "emulator_settings", "notice"), [
    (_rewrite, {}, NoticeKind.FILE_CHANGED),
    (_grow, {}, NoticeKind.FILE_CHANGED),
    (_a_day_later, {}, NoticeKind.CHECKPOINT_EXPIRED),
    (_session_expires_at_vod, {"session_ttl_seconds": 300}, NoticeKind.SESSION_REFUSED),
])
def test_a_saved_upload_that_cannot_continue_starts_over(start_stack: Callable[..., Stack], tmp_path: Path,
                                                         change: Callable[[Path, Stack, OffsetClock], None],
                                                         emulator_settings: dict[str, int],
                                                         notice: NoticeKind) -> None:
    stack = start_stack(**emulator_settings)
    clock = OffsetClock()
    video = write_file(tmp_path / "edit.mp4", 5 * MIB)
    start_and_stop_early(stack, video, uploader=stack.uploader(clock=clock)).wait(60)
    change(video, stack, clock)
    before = stack.emulator.store.bytes_received
    notices: list[Any] = []

    result = stack.uploader(clock=clock).upload(video, on_notice=notices.append).run()

    assert [n.kind for n in notices] == [notice]
    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.emulator.store.bytes_received - before == video.stat().st_size  # all of it, again
    assert stack.traffic.actions()[-2:] == ["ApplyUploadUGC", "CommitUploadUGC"]  # a new session
    assert stack.saved() == []


@pytest.mark.parametrize(("token", "procedure", "error", "status", "code"), [
    ("not-a-jwt", None, AuthenticationFailed, 401, "invalid_token"),
    (None, "not-allowed", SignatureRefused, 403, "policy_violation"),
])
def test_gateway_refusals_fail_the_upload_with_the_gateways_code(stack: Stack, tmp_path: Path, token: str | None,
                                                                 procedure: str | None, error: type[Exception],
                                                                 status: int, code: str) -> None:
    from vodupload import SignatureClient, SignatureRequest, Uploader, UploadOptions

    signer = SignatureClient(stack.signature_url, token or stack.token, SignatureRequest(procedure=procedure))
    task = Uploader(signer, UploadOptions(endpoint=stack.url)).upload(write_file(tmp_path / "x.mp4", 1000))

    with pytest.raises(error) as raised:
        task.run()

    assert task.state is UploadState.FAILED
    assert (raised.value.status, raised.value.code) == (status, code)  # type: ignore[attr-defined]
    assert (token or stack.token) not in str(raised.value)
    assert stack.traffic.calls == []  # VOD never saw a request


def test_vod_client_switches_to_the_backup_host_after_a_5xx(stack: Stack) -> None:
    from werkzeug.wrappers import Response

    hits: list[str] = []

    def broken(environ: dict[str, Any], start_response: Any) -> Any:
        hits.append(environ["PATH_INFO"])
        return Response("down", status=502)(environ, start_response)

    server = localstack.serve_wsgi("broken", broken)
    try:
        client = VodClient(stack.signer(), hosts=(server.url, stack.url), retry_delay=0)
        applied = client.apply_new(MediaInfo("clip", "mp4", 10))
        with pytest.raises(VodApiError) as refused:
            client.apply_resume("no-such-session")
    finally:
        server.stop()

    assert hits == ["/v3/index.php"]
    assert applied.video_key and applied.bucket.endswith("-1250000000")
    assert refused.value.code == 10030 and refused.value.action == "ApplyUploadUGC"
    # The 502 was retried (on the other host); the refusal was not: a retry spends a one-time signature
    # on the same answer.
    assert stack.traffic.actions() == ["ApplyUploadUGC", "ApplyUploadUGC (resume)"]


# -- stopping at the last moment ----------------------------------------------------------------


@pytest.mark.parametrize("stop", ["cancel", "pause"])
@pytest.mark.parametrize(("video_size", "cover_size"), [
    (2 * MIB, None),  # the last part of a multipart upload lands: the object is not completed yet
    (300 * 1024, None),  # a single PUT lands: the object is stored, only the commit is left
    (2 * MIB, 2000),  # the cover's PUT lands after the video was completed
], ids=["last-part", "single-put", "cover-after-video"])
def test_a_stop_asked_for_as_the_last_bytes_land_is_not_committed(stack: Stack, tmp_path: Path, stop: str,
                                                                  video_size: int, cover_size: int | None) -> None:
    video = write_file(tmp_path / "late.mp4", video_size)
    cover = write_file(tmp_path / "late.jpg", cover_size, seed=2) if cover_size else None
    total = video_size + (cover_size or 0)
    tasks: list[UploadTask] = []

    def on_progress(progress: Progress) -> None:
        if progress.bytes_done == progress.bytes_total and tasks:  # the user clicks as the last bytes land
            getattr(tasks[0], stop)()

    task = stack.uploader().upload(video, cover, on_progress=on_progress)
    tasks.append(task)

    state = task.start().wait(60)

    assert "CommitUploadUGC" not in stack.traffic.actions()
    assert stack.emulator.store.bytes_received == total
    if stop == "cancel":
        assert state is UploadState.CANCELLED
        with pytest.raises(UploadCancelled):
            task.result()
        assert stack.saved() == [] and stack.open_uploads() == []
        return
    assert state is UploadState.PAUSED
    assert len(stack.saved()) == 1
    tasks.clear()
    result = task.resume().result(60)
    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.emulator.store.bytes_received == total  # nothing sent again
    assert stack.saved() == [] and stack.open_uploads() == []


def test_a_cancel_while_resuming_a_fully_uploaded_upload_is_not_committed(stack: Stack, tmp_path: Path) -> None:
    video = write_file(tmp_path / "ready.mp4", 300 * 1024)
    first: list[UploadTask] = []

    def pause_once_stored(progress: Progress) -> None:
        if progress.bytes_done:
            first[0].pause()

    paused = stack.uploader().upload(video, on_progress=pause_once_stored)
    first.append(paused)
    assert paused.start().wait(60) is UploadState.PAUSED  # paused once the single PUT is stored
    assert len(stack.saved()) == 1
    tasks: list[UploadTask] = []
    task = stack.uploader().upload(video, on_notice=lambda notice: tasks[0].cancel())  # at "resuming ... committing"
    tasks.append(task)

    assert task.start().wait(60) is UploadState.CANCELLED
    assert "CommitUploadUGC" not in stack.traffic.actions()
    assert stack.saved() == []


# -- resuming refused ---------------------------------------------------------------------------


@pytest.mark.parametrize(("emulator_settings", "clock_change", "code", "kept"), [
    ({}, -3600, 10010, True),  # the signatures look an hour early to VOD (a skewed signing clock)
    ({}, 7200 + 60, 10009, True),  # ... or expired
    ({"session_ttl_seconds": 300}, 301, 10031, False),  # the session itself expired: start over
], ids=["signature-not-yet-valid", "signature-expired", "session-expired"])
def test_only_a_session_vod_no_longer_knows_makes_a_resume_start_over(start_stack: Callable[..., Stack],
                                                                      tmp_path: Path,
                                                                      emulator_settings: dict[str, int],
                                                                      clock_change: int, code: int,
                                                                      kept: bool) -> None:
    stack = start_stack(**emulator_settings)
    video = write_file(tmp_path / "trip.mp4", 5 * MIB)
    start_and_stop_early(stack, video).wait(60)
    stored = stack.emulator.store.bytes_received
    stack.clock.advance(clock_change)
    notices: list[Any] = []
    task = stack.uploader().upload(video, on_notice=notices.append)

    if not kept:
        result = task.run()
        assert [n.kind for n in notices] == [NoticeKind.SESSION_REFUSED]
        assert stack.traffic.calls[-3].answer["code"] == code  # the refused resume, then apply and commit
        assert stack.served(result.video_url or "") == video.read_bytes()
        assert stack.emulator.store.bytes_received - stored == 5 * MIB  # all of it, in a new session
        return
    with pytest.raises(VodApiError) as refused:
        task.run()
    assert refused.value.code == code and task.state is UploadState.FAILED
    assert notices == []
    assert stack.traffic.actions().count("ApplyUploadUGC (resume)") == 1  # refused once, not retried
    assert len(stack.saved()) == 1 and len(stack.open_uploads()) == 1  # nothing orphaned

    stack.clock.advance(-clock_change)  # the signing clock is fixed: the same task continues
    result = task.start().result(60)
    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.emulator.store.bytes_received == 5 * MIB  # only the missing parts were sent
    assert [n.kind for n in notices] == [NoticeKind.RESUMING]
    assert stack.saved() == [] and stack.open_uploads() == []


# -- files that change before the run ---------------------------------------------------------


def _grow_file(video: Path) -> None:
    with open(video, "ab") as out:
        out.write(b"appended later")


def _shrink_file(video: Path) -> None:
    video.write_bytes(content(3 * MIB + 10, seed=5))


@pytest.mark.parametrize("change", [_grow_file, _shrink_file], ids=["grown", "shrunk"])
@pytest.mark.parametrize("when", ["before start", "while paused"])
def test_the_run_announces_the_file_as_it_is_then(stack: Stack, tmp_path: Path, when: str,
                                                  change: Callable[[Path], None]) -> None:
    video = write_file(tmp_path / "live.mp4", 4 * MIB)
    notices: list[Any] = []
    reports: list[Progress] = []
    on_pause, tasks = pause_after(2, lambda task: task.pause())

    def on_progress(progress: Progress) -> None:
        reports.append(progress)
        if when == "while paused":
            on_pause(progress)

    task = stack.uploader().upload(video, on_progress=on_progress, on_notice=notices.append)
    tasks.append(task)
    if when == "while paused":
        assert task.start().wait(60) is UploadState.PAUSED
    change(video)

    result = (task.resume() if when == "while paused" else task.start()).result(60)

    size = video.stat().st_size
    assert stack.served(result.video_url or "") == video.read_bytes()
    assert (reports[-1].bytes_done, reports[-1].bytes_total) == (size, size)
    assert [n.kind for n in notices] == ([NoticeKind.FILE_CHANGED] if when == "while paused" else [])
    assert stack.saved() == [] and stack.open_uploads() == []


# -- cancel and start at once -----------------------------------------------------------------


class GapLock:
    """A lock that, once armed, runs a hook right after its next release: whatever another thread
    could do in that instant, done deterministically."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hook: Callable[[], None] | None = None

    def arm(self, hook: Callable[[], None]) -> None:
        self._hook = hook

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()
        hook, self._hook = self._hook, None
        if hook is not None:
            hook()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@pytest.mark.parametrize("idle", ["created", "paused"])
def test_a_start_right_after_cancel_looks_is_refused(stack: Stack, tmp_path: Path, idle: str) -> None:
    video = write_file(tmp_path / "race.mp4", 4 * MIB)
    on_progress, tasks = pause_after(2, lambda task: task.pause())
    task = stack.uploader().upload(video, on_progress=on_progress if idle == "paused" else None)
    tasks.append(task)
    lock = GapLock()
    task._lock = lock  # type: ignore[assignment]
    task._settled = threading.Condition(lock)  # type: ignore[arg-type]
    if idle == "paused":
        assert task.start().wait(60) is UploadState.PAUSED
    calls_before = len(stack.traffic.calls)
    refused: list[str] = []

    def start_in_the_gap() -> None:
        try:
            task.start()
        except RuntimeError as exc:
            refused.append(str(exc))

    lock.arm(start_in_the_gap)  # a start() the instant cancel() first lets go of the lock
    task.cancel()

    assert task.wait(60) is UploadState.CANCELLED
    assert len(refused) == 1 and "cannot start" in refused[0]
    # Only the cleanup talked to VOD (to abort the paused upload's parts): nothing was uploaded or committed.
    assert stack.traffic.actions()[calls_before:] == ([] if idle == "created" else ["ApplyUploadUGC (resume)"])
    assert stack.saved() == [] and stack.open_uploads() == []
