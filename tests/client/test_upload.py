"""The uploader library against the real emulator and the real signature function, in-process."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.wrappers import Response

from tests.client.conftest import (
    CHECKPOINT_FIELDS,
    MIB,
    PART,
    BusyGateway,
    Stack,
    closed_port_url,
    content,
    write_file,
)
from tests.clocks import OffsetClock
from tests.conftest import JWT_SECRET
from vodlocal import localstack
from vodtesting import signed_parameters
from vodupload import (
    AlreadyCommitted,
    AuthenticationFailed,
    CancelOutcome,
    CheckpointStore,
    NoticeKind,
    Progress,
    SignatureClient,
    SignatureRefused,
    SignatureUnavailable,
    SourceChanged,
    StorageError,
    UploadCancelled,
    Uploader,
    UploadOptions,
    UploadPaused,
    UploadState,
    UploadTask,
    VodApiError,
    VodClient,
    VodUnavailable,
    VodUploadError,
)
from vodupload.vod_api import MediaInfo


def pause_after(
    parts: int, action: Callable[[UploadTask], None]
) -> tuple[Callable[[Progress], None], list[UploadTask]]:
    """A progress callback that calls `action(task)` once `parts` MiB are stored (tasks go in the list)."""
    tasks: list[UploadTask] = []
    fired = threading.Event()

    def on_progress(progress: Progress) -> None:
        if progress.bytes_done >= parts * MIB and not fired.is_set():
            fired.set()
            action(tasks[0])

    return on_progress, tasks


def start_and_stop_early(
    stack: Stack,
    video: Path,
    *,
    parts: int = 2,
    stop: str = "pause",
    uploader: Any = None,
    on_notice: Callable[[Any], None] | None = None,
    cover: Path | None = None,
) -> UploadTask:
    """Start an upload of `video` and pause (or cancel) it from the progress callback after `parts` parts."""
    on_progress, tasks = pause_after(parts, lambda task: getattr(task, stop)())
    task = (uploader or stack.uploader()).upload(video, cover, on_progress=on_progress, on_notice=on_notice)
    tasks.append(task)
    task.start()
    return task


def pause_once_stored(stack: Stack, video: Path, uploader: Uploader | None = None) -> UploadTask:
    """Upload a file small enough for one PUT, pausing as it is stored: only the commit is left."""
    tasks: list[UploadTask] = []

    def on_progress(progress: Progress) -> None:
        if progress.bytes_done:
            tasks[0].pause()

    task = (uploader or stack.uploader()).upload(video, on_progress=on_progress)
    tasks.append(task)
    assert task.start().wait(60) is UploadState.PAUSED
    return task


@pytest.mark.parametrize(
    ("video_size", "cover_size"),
    [
        (0, None),  # empty: one PUT of nothing
        (300 * 1024, None),  # smaller than a part: one PUT
        (4 * MIB, None),  # whole parts only
        (5 * MIB + 123, 2000),  # a short last part, and a cover
    ],
)
def test_upload_stores_the_exact_bytes_with_one_time_signatures(
    stack: Stack, tmp_path: Path, video_size: int, cover_size: int | None
) -> None:
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
    assert all(signed_parameters(s)["oneTimeValid"] == 1 for s in signatures)
    assert stack.saved() == [] and stack.open_uploads() == []


def test_a_plain_signers_saved_uploads_are_kept_per_owner(stack: Stack, tmp_path: Path) -> None:
    # A signer that is a plain function (no SignatureClient to name the user) says whose uploads these are.
    client = stack.signer()

    def sign() -> str:
        return client()

    def uploader(owner: str) -> Uploader:
        options = UploadOptions(endpoint=stack.url, part_size=PART, parallel=2)
        return Uploader(sign, options, checkpoints=CheckpointStore(stack.checkpoints), owner=lambda: owner)

    video = write_file(tmp_path / "talk.mp4", 8 * MIB)
    assert start_and_stop_early(stack, video, uploader=uploader("alice")).wait(60) is UploadState.PAUSED
    assert uploader("bob").cancel_saved(video) is CancelOutcome.NOTHING_SAVED  # not bob's to resume or cancel
    assert uploader("alice").cancel_saved(video) is CancelOutcome.DISCARDED


@pytest.mark.parametrize("callback", ["on_state", "on_progress", "on_notice"])
def test_an_apps_callback_that_raises_changes_nothing_of_the_upload(
    stack: Stack, tmp_path: Path, callback: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The app's code raising (on every call): logged; the upload goes on. Before, an on_state raising at DONE
    made the done upload failed (started again: a second copy), and at APPLYING left the task stuck there."""
    video = write_file(tmp_path / "clip.mp4", 300 * 1024)
    calls: list[Any] = []

    def raising(value: Any) -> None:
        calls.append(value)
        raise ValueError("the app's bug")

    callbacks: dict[str, Any] = {callback: raising}
    task = stack.uploader().upload(video, **callbacks)
    if callback == "on_notice":  # a notice to hear: the file changed since its upload was saved
        pause_once_stored(stack, video)
        write_file(video, 300 * 1024, seed=2)
    result = task.start().result(60)

    assert task.state is UploadState.DONE and stack.served(result.video_url or "") == video.read_bytes()
    assert calls and f"the app's {callback} callback raised" in caplog.text
    assert stack.saved() == []


def test_the_result_of_a_task_never_started_says_so(stack: Stack, tmp_path: Path) -> None:
    task = stack.uploader().upload(write_file(tmp_path / "clip.mp4", 1000))
    with pytest.raises(RuntimeError, match="has not been started"):  # not a TimeoutError: no wait could end it
        task.result()


def test_pause_keeps_the_checkpoint_and_resume_sends_only_the_rest(stack: Stack, tmp_path: Path) -> None:
    video = write_file(tmp_path / "talk.mp4", 8 * MIB)
    notices: list[Any] = []
    task = start_and_stop_early(stack, video, on_notice=notices.append)
    assert task.wait(60) is UploadState.PAUSED
    with pytest.raises(UploadPaused):
        task.result()
    stored_while_paused = stack.emulator.store.bytes_received
    assert 2 * MIB <= stored_while_paused < 8 * MIB  # the parts in flight finished, nothing new started
    assert len(stack.saved()) == 1 and len(stack.open_uploads()) == 1
    saved = stack.saved()[0].read_text()
    cert = stack.traffic.calls[0].answer["data"]["tempCertificate"]
    assert cert["secretKey"] not in saved and cert["token"] not in saved  # credentials are never stored

    # What COS can tell is not saved: no parts, no storage location.
    session = stack.saved_session()
    assert set(session) == CHECKPOINT_FIELDS
    assert [set(obj) for obj in session["objects"]] == [{"role", "source", "upload_id", "part_size", "stored"}]
    before = stack.traffic.parts_sent()

    result = task.resume().result(60)

    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.emulator.store.bytes_received == 8 * MIB
    assert [n.kind for n in notices] == [NoticeKind.RESUMING]
    assert stack.traffic.actions() == ["ApplyUploadUGC", "ApplyUploadUGC (resume)", "CommitUploadUGC"]
    # The resume listed the parts and sent only the others, into the same multipart upload.
    resumed = stack.traffic.parts_sent()[len(before) :]
    assert {upload for upload, _ in before + resumed} == {session["objects"][0]["upload_id"]}
    assert sorted(number for _, number in before + resumed) == list(range(1, 9))
    assert stack.saved() == [] and stack.open_uploads() == []


def test_a_resume_with_another_part_size_sends_only_the_rest_in_the_parts_begun(stack: Stack, tmp_path: Path) -> None:
    video = write_file(tmp_path / "resized.mp4", 8 * MIB)
    task = start_and_stop_early(stack, video, parts=3)  # 1 MiB parts (the stack's default here)
    assert task.wait(60) is UploadState.PAUSED
    stored = stack.emulator.store.bytes_received
    result = stack.uploader(part_size=4 * MIB).upload(video).run()  # a later run, given another part size
    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.emulator.store.bytes_received == 8 * MIB and stored >= 3 * MIB  # nothing sent twice
    assert stack.open_uploads() == []


@pytest.mark.parametrize("failing_aborts", [0, 1], ids=["", "its first abort answered 503"])
@pytest.mark.parametrize("when", ["while uploading", "while paused", "saved by an earlier process"])
def test_cancel_leaves_no_parts_and_no_checkpoint(stack: Stack, tmp_path: Path, when: str, failing_aborts: int) -> None:
    video = write_file(tmp_path / "draft.mp4", 6 * MIB)
    stack.traffic.aborts_to_fail = failing_aborts  # retried like any COS call, though the task is halted
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
    assert stack.traffic.aborts_to_fail == 0


def test_the_upload_is_free_for_a_cancel_or_resume_once_its_pause_is_reported(stack: Stack, tmp_path: Path) -> None:
    # GIVEN a task thread held right where it reports the pause (a UI's state callback, say)
    video = write_file(tmp_path / "held.mp4", 6 * MIB)
    reported, answered = threading.Event(), threading.Event()

    def on_state(state: UploadState) -> None:
        if state is UploadState.PAUSED:
            reported.set()
            answered.wait(60)

    on_progress, tasks = pause_after(2, lambda task: task.pause())
    tasks.append(stack.uploader().upload(video, on_progress=on_progress, on_state=on_state))
    tasks[0].start()
    assert reported.wait(60)
    # WHEN the caller cancels at once THEN the checkpoint is not held by the task any more
    try:
        tasks[0].cancel()
    finally:
        answered.set()
    assert tasks[0].state is UploadState.CANCELLED and stack.saved() == [] and stack.open_uploads() == []


@pytest.mark.parametrize("heads", ["allowed", "forbidden"])
def test_a_complete_whose_answer_was_lost_is_a_done_upload(stack: Stack, tmp_path: Path, heads: str) -> None:
    # COS completes the object, its answer is lost, and the retried Complete finds no such upload any more.
    # Whether the object is there is asked with HEAD when the credentials may read; VOD's upload credentials
    # may only write (its policy is not published): then CommitUploadUGC is what checks it.
    video = write_file(tmp_path / "complete.mp4", 3 * MIB)
    stack.traffic.completes_unanswered, stack.traffic.heads_forbidden = 1, heads == "forbidden"
    result = stack.uploader().upload(video).run()
    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.traffic.completes_unanswered == 0 and stack.saved() == []
    # a 403 being what such credentials answer a lookup, they are not renewed for it (a signature, and a VOD call)
    assert stack.traffic.actions() == ["ApplyUploadUGC", "CommitUploadUGC"]


@pytest.mark.parametrize(
    ("file_name", "name", "sent"),
    [
        ("Meeting 10:30 - what?.mp4", None, "Meeting 10_30 - what_"),  # legal in a file name, refused by VOD
        (b"caf\xe9 \xff.mp4", None, "caf\ufffd \ufffd"),  # not UTF-8 (Latin-1 bytes): replaced, never surrogates
        ("plain.mp4", "视频 a+b&c", "视频 a+b&c"),
    ],
    ids=["forbidden-characters", "not-utf8", "given"],
)
def test_a_name_taken_from_the_file_is_one_vod_accepts(
    stack: Stack, tmp_path: Path, file_name: str | bytes, name: str | None, sent: str
) -> None:
    path = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), os.fsencode(file_name))))
    write_file(path, 1024)
    stack.uploader().upload(path, name=name).run()
    (apply,) = [call for call in stack.traffic.calls if call.action == "ApplyUploadUGC"]
    assert apply.request["videoName"] == sent


@pytest.mark.parametrize("target", ["store/blob0001", "store/x.mov"], ids=["no-extension", "another-type"])
def test_a_linked_file_is_named_and_typed_by_the_link(stack: Stack, tmp_path: Path, target: str) -> None:
    # content-addressed stores (git-annex, DataLad) link a name a person chose to a blob named by its hash
    (tmp_path / "store").mkdir()
    write_file(tmp_path / target, 1024)
    (tmp_path / "My Holiday.mp4").symlink_to(tmp_path / target)
    stack.uploader().upload(tmp_path / "My Holiday.mp4").run()
    (apply,) = [call for call in stack.traffic.calls if call.action == "ApplyUploadUGC"]
    assert (apply.request["videoName"], apply.request["videoType"]) == ("My Holiday", "mp4")


@pytest.mark.parametrize("name", ["a/b", "what?", "tab\there", "del\x7f", "clip\udcff"])
def test_a_given_name_vod_would_refuse_is_refused_before_any_call(stack: Stack, tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="VOD refuses"):
        stack.uploader().upload(write_file(tmp_path / "clip.mp4", 1024), name=name)
    assert stack.traffic.calls == []


def test_a_cancel_naming_the_video_alone_finds_it_saved_with_its_cover(stack: Stack, tmp_path: Path) -> None:
    # GIVEN a paused upload of a video with its cover, and another user's saved upload of the same files
    video, cover = write_file(tmp_path / "talk.mp4", 6 * MIB), write_file(tmp_path / "talk.jpg", 1024)
    start_and_stop_early(stack, video, cover=cover).wait(60)
    theirs = start_and_stop_early(
        stack,
        video,
        cover=cover,
        uploader=stack.uploader(signer=stack.signer(localstack.mint_token(JWT_SECRET, "someone-else"))),
    )
    theirs.wait(60)
    assert len(stack.saved()) == 2
    # WHEN it is cancelled naming the video only (README: `vod-upload video.mp4 --cancel`)
    assert stack.uploader().cancel_saved(video) is CancelOutcome.DISCARDED
    # THEN its saved upload is gone, the other user's stays
    assert len(stack.saved()) == 1 and len(stack.open_uploads()) == 1
    assert stack.uploader().cancel_saved(video) is CancelOutcome.NOTHING_SAVED


def test_a_clock_far_off_is_named_when_cos_refuses_the_requests_it_signs(
    start_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    # GIVEN COS's time (the emulator's) ten minutes before this computer's: every request the SDK signs is too early
    # (VOD's upload API, here, lets the signature's time run ahead: only COS's check is meant)
    stack = start_stack(signature_clock_skew=3600)
    stack.clock.advance(-600)
    video = write_file(tmp_path / "late.mp4", 3 * MIB)
    # WHEN it is uploaded THEN it fails once renewed credentials did not help, saying what to fix
    with pytest.raises(StorageError, match=r"RequestTimeTooSkewed: .* \(this computer's clock is off: set it right"):
        stack.uploader().upload(video).run()
    assert stack.traffic.cos_statuses.count(403) == 2  # the first try and the one with renewed credentials


@pytest.mark.parametrize(
    ("uploader_shares_the_clock", "advance", "denied"),
    [
        (True, 500, False),  # the uploader sees expiredTime coming (margin 120 s) and renews first
        (False, 700, True),  # the credentials expired unnoticed: COS says 403, the uploader renews and retries
    ],
)
def test_expiring_credentials_are_renewed_mid_upload(
    start_stack: Callable[..., Stack], tmp_path: Path, uploader_shares_the_clock: bool, advance: int, denied: bool
) -> None:
    stack = start_stack(credential_ttl_seconds=600)
    video = write_file(tmp_path / "long.mp4", 6 * MIB)
    notices: list[Any] = []
    on_progress, tasks = pause_after(1, lambda task: stack.clock.advance(advance))
    uploader = stack.uploader(clock=stack.clock if uploader_shares_the_clock else OffsetClock(), credential_margin=120)
    task = uploader.upload(video, on_progress=on_progress, on_notice=notices.append)
    tasks.append(task)

    result = task.run()

    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.traffic.actions() == ["ApplyUploadUGC", "ApplyUploadUGC (resume)", "CommitUploadUGC"]
    assert [n.kind for n in notices] == [NoticeKind.CREDENTIALS_REFRESHED]
    assert (403 in stack.traffic.cos_statuses) is denied
    # The COS SDK asked the credential object on every request: the parts before the renewal were signed
    # with the first credentials, the last with the renewed ones (and their token, or COS would refuse).
    handed_out = [call.answer["data"]["tempCertificate"]["secretId"] for call in stack.traffic.calls[:2]]
    signers = [request.secret_id for request in stack.traffic.cos_requests if request.part]
    assert (signers[0], signers[-1]) == tuple(handed_out) and set(signers) == set(handed_out)


def _rewrite(video: Path, stack: Stack, clock: OffsetClock) -> None:
    video.write_bytes(content(video.stat().st_size, seed=9))


def _grow(video: Path, stack: Stack, clock: OffsetClock) -> None:
    with open(video, "ab") as out:
        out.write(b"more")


def _a_day_later(video: Path, stack: Stack, clock: OffsetClock) -> None:
    clock.advance(24 * 3600)


@pytest.mark.parametrize(
    ("change", "notices", "asks_vod", "old_upload_left"),
    [
        # the session is alive: fresh credentials for it delete its parts
        (_rewrite, [NoticeKind.FILE_CHANGED], True, False),
        (_grow, [NoticeKind.FILE_CHANGED], True, False),
        # past the 1-day window by the uploader's clock: dropped without asking VOD
        (_a_day_later, [NoticeKind.CHECKPOINT_EXPIRED], False, True),
        # (a session VOD refuses: test_a_session_vod_refuses_starts_over_aborting_its_parts_if_it_can)
    ],
)
def test_a_saved_upload_that_cannot_continue_starts_over(
    start_stack: Callable[..., Stack],
    tmp_path: Path,
    change: Callable[[Path, Stack, OffsetClock], None],
    notices: list[NoticeKind],
    asks_vod: bool,
    old_upload_left: bool,
) -> None:
    stack = start_stack()
    clock = OffsetClock()
    video = write_file(tmp_path / "edit.mp4", 5 * MIB)
    start_and_stop_early(stack, video, uploader=stack.uploader(clock=clock)).wait(60)
    old_upload = stack.saved_session()["objects"][0]["upload_id"]
    change(video, stack, clock)
    before, calls = stack.emulator.store.bytes_received, len(stack.traffic.calls)
    heard: list[Any] = []

    result = stack.uploader(clock=clock).upload(video, on_notice=heard.append).run()

    assert [n.kind for n in heard] == notices
    assert ("parts stay in VOD's storage" in heard[0].message) is old_upload_left  # said when they do
    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.emulator.store.bytes_received - before == video.stat().st_size  # all of it, again
    asked = ["ApplyUploadUGC (resume)"] if asks_vod else []
    assert stack.traffic.actions()[calls:] == [*asked, "ApplyUploadUGC", "CommitUploadUGC"]  # a new session
    assert stack.open_upload_ids() == ({old_upload} if old_upload_left else set())
    assert stack.saved() == []


def test_an_unreadable_saved_upload_is_set_aside_and_said(stack: Stack, tmp_path: Path) -> None:
    # GIVEN a paused upload whose checkpoint was then damaged
    video = write_file(tmp_path / "trip.mp4", 5 * MIB)
    assert start_and_stop_early(stack, video).wait(60) is UploadState.PAUSED
    (path,) = stack.saved()
    path.write_text(path.read_text()[:40])
    heard: list[Any] = []
    # WHEN it is run again THEN it starts over, says why, and keeps the damaged file for whoever wants to look
    result = stack.uploader().upload(video, on_notice=heard.append).run()
    assert stack.served(result.video_url or "") == video.read_bytes()
    assert [n.kind for n in heard] == [NoticeKind.CHECKPOINT_UNREADABLE]
    assert path.with_name(path.name + ".unreadable").exists() and stack.saved() == []


@pytest.mark.parametrize(
    ("name", "saved_by", "notices"),
    [
        ("holiday", "this version", []),  # asked for the same: continued
        ("a new name", "this version", [NoticeKind.REQUEST_CHANGED]),  # VOD would keep the old one: starting over
        ("a new name", "a version that kept no request", []),  # nothing to compare: continued, as before
    ],
)
def test_a_saved_upload_that_asked_for_something_else_starts_over(
    start_stack: Callable[..., Stack], tmp_path: Path, name: str, saved_by: str, notices: list[NoticeKind]
) -> None:
    # GIVEN an upload named "holiday", paused with its session saved
    stack = start_stack()
    video = write_file(tmp_path / "trip.mp4", 5 * MIB)
    on_progress, tasks = pause_after(2, lambda task: task.pause())
    tasks.append(stack.uploader().upload(video, name="holiday", on_progress=on_progress))
    assert tasks[0].start().wait(60) is UploadState.PAUSED
    old_upload, sent = stack.saved_session()["objects"][0]["upload_id"], len(stack.traffic.parts_sent())
    if saved_by != "this version":
        (path,) = stack.saved()
        path.write_text(json.dumps({k: v for k, v in stack.saved_session().items() if k != "asked"}))
    heard: list[Any] = []

    # WHEN it is run again under this name
    result = stack.uploader().upload(video, name=name, on_notice=heard.append).run()

    # THEN it continues when it asks for the same; when it asks for another, it starts over (the old parts
    # deleted) and VOD keeps what it asks for now
    assert [n.kind for n in heard if n.kind is not NoticeKind.RESUMING] == notices
    if notices:
        assert "'holiday' then, 'a new name' now" in heard[0].message
    assert (NoticeKind.RESUMING in [n.kind for n in heard]) is not bool(notices)
    media = stack.emulator.state.get_media(result.file_id)
    assert media is not None and media.name == (name if notices else "holiday")
    assert stack.open_upload_ids() == set() and stack.saved() == []  # the old multipart upload: aborted or done
    resumed = {upload for upload, _ in stack.traffic.parts_sent()[sent:]}
    assert (old_upload in resumed) is not bool(notices)


def test_a_saved_upload_is_kept_when_vod_refuses_what_a_rerun_asks_for_instead(stack: Stack, tmp_path: Path) -> None:
    """A rerun asks for something else (a mistyped storage region) and VOD refuses it: the saved upload, which that
    run would have replaced, is kept as it was (deleted only once VOD gives the new one), and a run asking for what
    it asked for continues it."""
    video = write_file(tmp_path / "trip.mp4", 6 * MIB)
    assert start_and_stop_early(stack, video, parts=3).wait(60) is UploadState.PAUSED
    saved, sent = stack.saved_session(), len(stack.traffic.parts_sent())
    heard: list[Any] = []

    with pytest.raises(VodApiError) as refused:
        stack.uploader(storage_region="ap-typo").upload(video, on_notice=heard.append).run()

    assert refused.value.action == "ApplyUploadUGC"
    assert [n.kind for n in heard] == [NoticeKind.REQUEST_CHANGED] and "kept for a later run" in heard[0].message
    old_upload = saved["objects"][0]["upload_id"]
    assert stack.saved_session() == saved and stack.open_upload_ids() == {old_upload}
    result = stack.uploader().upload(video).run()
    assert {upload for upload, _ in stack.traffic.parts_sent()[sent:]} == {old_upload}  # continued
    assert stack.served(result.video_url or "") == video.read_bytes() and stack.saved() == []


@pytest.mark.parametrize(
    ("resumer", "notices", "old_upload_aborted"),
    [
        # the paused task still holds the session's credentials: the old multipart upload is aborted with them
        ("the same task", [NoticeKind.SESSION_REFUSED], True),
        # a new process holds none, and VOD gives none for a session it refuses: the parts stay, and it says so
        ("a new uploader", [NoticeKind.SESSION_REFUSED, NoticeKind.CLEANUP_FAILED], False),
    ],
)
def test_a_session_vod_refuses_starts_over_aborting_its_parts_if_it_can(
    start_stack: Callable[..., Stack], tmp_path: Path, resumer: str, notices: list[NoticeKind], old_upload_aborted: bool
) -> None:
    stack = start_stack(session_ttl_seconds=300)
    video = write_file(tmp_path / "trip.mp4", 5 * MIB)
    heard: list[Any] = []
    task = start_and_stop_early(stack, video, on_notice=heard.append)
    assert task.wait(60) is UploadState.PAUSED
    old_upload = stack.saved_session()["objects"][0]["upload_id"]
    stored, calls = stack.emulator.store.bytes_received, len(stack.traffic.calls)
    stack.clock.advance(301)  # VOD's resume window for the session passes; the uploader's clock does not move

    again = task if resumer == "the same task" else stack.uploader().upload(video, on_notice=heard.append)
    result = again.start().result(60)

    refused = stack.traffic.calls[calls]
    assert (refused.action, "vodSessionKey" in refused.request) == ("ApplyUploadUGC", True)
    assert refused.answer["code"] != 0  # whatever the code: VOD does not publish what each means
    assert stack.traffic.actions()[calls:] == ["ApplyUploadUGC (resume)", "ApplyUploadUGC", "CommitUploadUGC"]
    assert [n.kind for n in heard] == notices
    assert "starting over" in heard[0].message and str(refused.answer["code"]) in heard[0].message
    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.emulator.store.bytes_received - stored == 5 * MIB  # all of it, in the new session
    aborts = [r.status for r in stack.traffic.cos_requests if r.is_abort and r.query["uploadId"] == old_upload]
    assert aborts == ([204] if old_upload_aborted else [])
    assert stack.open_upload_ids() == (set() if old_upload_aborted else {old_upload})
    assert stack.saved() == []


def test_a_session_committed_before_its_checkpoint_was_deleted_starts_over(stack: Stack, tmp_path: Path) -> None:
    """The saved session was committed by another client (a run of this checkpoint would have marked it as
    committing): VOD refuses it, and the upload starts a new one (as vod-js-sdk-v6 would), leaving the
    committed file as it is."""
    video = write_file(tmp_path / "clip.mp4", 300 * 1024)
    pause_once_stored(stack, video)  # the single PUT is stored, the commit not sent
    earlier = VodClient(stack.signer(), endpoint=stack.url).commit(stack.saved_session()["session_key"])
    heard: list[Any] = []

    result = stack.uploader().upload(video, on_notice=heard.append).run()

    assert [n.kind for n in heard] == [NoticeKind.SESSION_REFUSED]  # nothing to abort: the object was complete
    assert result.file_id != earlier.file_id
    assert stack.served(result.video_url or "") == stack.served(earlier.video_url or "") == video.read_bytes()
    assert stack.saved() == []


def _replace_stored_video(stack: Stack, data: bytes) -> None:
    """What the session's credentials may do too: put other bytes where the video was stored."""
    applied = next(call.answer["data"] for call in stack.traffic.calls if call.action == "ApplyUploadUGC")
    key = applied["video"]["storagePath"].lstrip("/")
    store = stack.emulator.store
    (bucket,) = [path.name for path in store.root.iterdir() if path.is_dir() and store.stat(path.name, key)]
    store.put_object(bucket, key, io.BytesIO(data), max_size=len(data))


def test_a_commit_vod_refuses_is_asked_once_more_by_the_next_run_then_starts_over(stack: Stack, tmp_path: Path) -> None:
    """VOD refuses that session's commit whatever the run (here: the stored object is not the size applied for).
    The refusal may be the signature's alone, so the session stays saved as committing; the next run asks once more,
    and refused again, drops it and uploads a new one."""
    video = write_file(tmp_path / "clip.mp4", 300 * 1024)
    pause_once_stored(stack, video)  # the single PUT is stored, the commit not sent
    _replace_stored_video(stack, b"other bytes")

    with pytest.raises(VodApiError) as refused:
        stack.uploader().upload(video).run()

    assert refused.value.action == "CommitUploadUGC" and stack.saved_session()["committing"] is True
    calls = len(stack.traffic.calls)
    result = stack.uploader().upload(video).run()
    assert stack.traffic.actions()[calls:] == ["CommitUploadUGC", "ApplyUploadUGC", "CommitUploadUGC"]
    assert stack.served(result.video_url or "") == video.read_bytes() and stack.saved() == []


@pytest.mark.parametrize(
    ("then", "actions"),
    [
        # its signatures good again: committed without sending a byte
        ("run again", ["CommitUploadUGC"]),
        # a cancel asks VOD for no commit: one refused at its first try was never made (asking would publish it)
        ("cancel", []),
        # refused again, and VOD refuses a new session too (the signatures still are): the stored upload is kept,
        # and committed by a run with good signatures
        ("run again, still refused", ["CommitUploadUGC", "ApplyUploadUGC", "CommitUploadUGC"]),
        # asked again, but the answer lost: it may have been made, so the cancel asks VOD, which says it was
        ("run again, unanswered, then cancel", ["CommitUploadUGC"] * 5),
    ],
)
def test_a_commit_refused_for_its_signature_alone_is_committed_by_the_next_run_or_discarded_by_a_cancel(
    stack: Stack, tmp_path: Path, then: str, actions: list[str]
) -> None:
    """The commit's signature is refused at its first try (the signature endpoint's clock, say): the stored upload is
    kept, and the next run, its signatures good again, commits it without sending a byte; a cancel discards it."""
    good, left = stack.signer(), [-1]  # good signatures left (-1: no end)

    def signer() -> str:
        if left[0] == 0:
            return base64.b64encode(b"no signature").decode()
        left[0] -= left[0] > 0
        return good()

    uploader = stack.uploader(signer=signer)
    video = write_file(tmp_path / "clip.mp4", 300 * 1024)
    pause_once_stored(stack, video, uploader)  # the single PUT is stored, the commit not sent
    left[0] = 1  # the resume's signature good, the commit's not
    with pytest.raises(VodApiError) as refused:
        uploader.upload(video).run()
    assert refused.value.action == "CommitUploadUGC"
    assert (stack.saved_session()["committing"], stack.saved_session()["commit_refused"]) == (True, True)
    sent, calls = len(stack.traffic.cos_requests), len(stack.traffic.calls)
    left[0] = 0 if then == "run again, still refused" else -1

    if then.startswith("run again, "):
        stack.traffic.commits_unanswered = 4 if "unanswered" in then else 0  # the first try and three retries
        heard: list[Any] = []
        with pytest.raises(VodApiError if "refused" in then else VodUnavailable):
            uploader.upload(video, on_notice=heard.append).run()
        assert stack.saved_session()["commit_refused"] is ("refused" in then)
        if "refused" in then:
            assert [n.kind for n in heard] == [NoticeKind.SESSION_REFUSED]
            assert "kept for a later run" in heard[0].message
            left[0] = -1  # and a run with good signatures commits it after all
    if then.endswith("cancel"):
        if then == "cancel":
            assert uploader.cancel_saved(video) is CancelOutcome.DISCARDED
        else:
            with pytest.raises(AlreadyCommitted) as done:
                uploader.cancel_saved(video)
            assert stack.served(done.value.committed.video_url or "") == video.read_bytes()
        assert stack.traffic.actions()[calls:] == actions and stack.saved() == []
        return
    result = uploader.upload(video).run()

    assert stack.traffic.actions()[calls:] == actions and len(stack.traffic.cos_requests) == sent
    assert stack.served(result.video_url or "") == video.read_bytes() and stack.saved() == []


def test_a_commit_vod_refuses_when_asked_again_starts_over_at_once(stack: Stack, tmp_path: Path) -> None:
    """A run stopped before VOD's answer to its commit; asked again, VOD refuses it: the session is dropped
    and a new one uploaded, in that run (before, it was resumed, sending nothing, into the same refusal)."""
    video = write_file(tmp_path / "clip.mp4", 300 * 1024)
    pause_once_stored(stack, video)
    _replace_stored_video(stack, b"other bytes")
    stack.traffic.commits_unanswered = 4  # the first try and the uploader's three retries
    with pytest.raises(VodUnavailable):
        stack.uploader().upload(video).run()
    calls = len(stack.traffic.calls)
    heard: list[Any] = []

    result = stack.uploader().upload(video, on_notice=heard.append).run()

    assert stack.traffic.actions()[calls:] == ["CommitUploadUGC", "ApplyUploadUGC", "CommitUploadUGC"]
    assert [n.kind for n in heard] == [NoticeKind.SESSION_REFUSED] and "refused to commit" in heard[0].message
    assert stack.served(result.video_url or "") == video.read_bytes() and stack.saved() == []


@pytest.mark.parametrize(
    ("name", "notice"),
    [(None, NoticeKind.RESUMING), ("a new name", NoticeKind.REQUEST_CHANGED)],  # done as asked then: said so
    ids=["same settings", "other settings"],
)
@pytest.mark.parametrize("later", [0.0, 2 * 86400.0], ids=["at once", "past the resume window"])
def test_a_commit_whose_answer_the_run_never_heard_is_asked_again_not_uploaded_twice(
    stack: Stack, tmp_path: Path, later: float, name: str | None, notice: NoticeKind
) -> None:
    """VOD committed the upload, but the run stopped before hearing so (killed; here: every answer lost): the
    next run asks for that commit again, as vod-js-sdk-v6 retries one, and gets the same file, sending nothing
    (whatever the checkpoint's age: the resume window is for sending the rest, and VOD says if it still knows it)."""
    video = write_file(tmp_path / "clip.mp4", 3 * MIB)
    stack.traffic.commits_unanswered = 4  # the first try and the uploader's three retries
    with pytest.raises(VodUnavailable):
        stack.uploader().upload(video).run()
    sent, asked = len(stack.traffic.cos_requests), len(stack.traffic.actions())
    heard: list[Any] = []

    uploader = stack.uploader(clock=lambda: time.time() + later)
    result = uploader.upload(video, name=name, on_notice=heard.append).run()

    file_ids = {call.answer["data"]["fileId"] for call in stack.traffic.calls if call.action == "CommitUploadUGC"}
    assert file_ids == {result.file_id}
    assert stack.traffic.actions()[asked:] == ["CommitUploadUGC"]  # asked again, and nothing else: no new session
    assert len(stack.traffic.cos_requests) == sent and [n.kind for n in heard] == [notice]
    assert stack.served(result.video_url or "") == video.read_bytes() and stack.saved() == []


def test_a_saved_session_is_kept_when_vod_refuses_a_new_one_too(stack: Stack, tmp_path: Path) -> None:
    """No refusal code is special, but VOD refusing the new session as well refuses the signature itself (a broken
    signature source), not the saved session: the upload fails, the saved one is kept as it was (its parts too),
    and a later run, its signatures good again, continues it."""
    good = stack.signer()
    broken = threading.Event()
    video = write_file(tmp_path / "garbled.mp4", 4 * MIB)
    heard: list[Any] = []
    uploader = stack.uploader(signer=lambda: base64.b64encode(b"no signature").decode() if broken.is_set() else good())
    task = start_and_stop_early(stack, video, uploader=uploader, on_notice=heard.append)
    assert task.wait(60) is UploadState.PAUSED
    saved = stack.saved_session()
    calls = len(stack.traffic.calls)
    broken.set()

    with pytest.raises(VodApiError):
        task.resume().result(60)

    assert task.state is UploadState.FAILED
    assert stack.traffic.actions()[calls:] == ["ApplyUploadUGC (resume)", "ApplyUploadUGC"]
    assert all(call.answer["code"] != 0 for call in stack.traffic.calls[calls:])
    assert [n.kind for n in heard] == [NoticeKind.SESSION_REFUSED] and "kept for a later run" in heard[0].message
    assert stack.saved_session() == saved and stack.open_upload_ids() == {saved["objects"][0]["upload_id"]}
    calls = len(stack.traffic.calls)
    broken.clear()
    result = uploader.upload(video).run()
    assert stack.traffic.actions()[calls:] == ["ApplyUploadUGC (resume)", "CommitUploadUGC"]  # continued
    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.saved() == [] and stack.open_uploads() == []


def _vod_unreachable(stack: Stack) -> Callable[[], str]:
    stack.traffic.vod_down = True  # the upload API answers 502, on every try
    return stack.signer()


def _signature_endpoint_unreachable(stack: Stack) -> Callable[[], str]:
    return SignatureClient(closed_port_url(), stack.token, backoff=0)


@pytest.mark.parametrize(
    ("outage", "error"),
    [
        (_vod_unreachable, VodUnavailable),
        (_signature_endpoint_unreachable, SignatureUnavailable),
    ],
)
def test_a_saved_session_outlives_an_outage_and_resumes_with_the_missing_parts(
    stack: Stack, tmp_path: Path, outage: Callable[[Stack], Callable[[], str]], error: type[VodUploadError]
) -> None:
    video = write_file(tmp_path / "field.mp4", 5 * MIB)
    start_and_stop_early(stack, video).wait(60)
    saved = stack.saved()[0].read_text()
    upload_id = stack.saved_session()["objects"][0]["upload_id"]
    before = stack.traffic.parts_sent()
    heard: list[Any] = []

    with pytest.raises(error):
        stack.uploader(signer=outage(stack)).upload(video, on_notice=heard.append).run()

    assert heard == []  # not a refusal: nothing to tell, nothing given up
    assert stack.saved()[0].read_text() == saved and stack.open_upload_ids() == {upload_id}
    stack.traffic.vod_down = False
    result = stack.uploader().upload(video).run()
    assert stack.served(result.video_url or "") == video.read_bytes()
    resumed = stack.traffic.parts_sent()[len(before) :]
    assert {upload for upload, _ in resumed} == {upload_id}
    assert sorted(number for _, number in before + resumed) == [1, 2, 3, 4, 5]  # each part sent once
    assert stack.saved() == [] and stack.open_uploads() == []


@pytest.mark.parametrize(
    ("token", "procedure", "error", "status", "code"),
    [
        ("not-a-jwt", None, AuthenticationFailed, 401, "invalid_token"),
        (None, "not-allowed", SignatureRefused, 403, "policy_violation"),
    ],
)
def test_gateway_refusals_fail_the_upload_with_the_gateways_code(
    stack: Stack,
    tmp_path: Path,
    token: str | None,
    procedure: str | None,
    error: type[Exception],
    status: int,
    code: str,
) -> None:
    from vodupload import SignatureClient, SignatureRequest, Uploader, UploadOptions

    signer = SignatureClient(stack.signature_url, token or stack.token, SignatureRequest(procedure=procedure))
    task = Uploader(signer, UploadOptions(endpoint=stack.url)).upload(write_file(tmp_path / "x.mp4", 1000))

    with pytest.raises(error) as raised:
        task.run()

    assert task.state is UploadState.FAILED
    assert (raised.value.status, raised.value.code) == (status, code)  # type: ignore[attr-defined]
    assert (token or stack.token) not in str(raised.value)
    # The function's id of the request, which finds its log line: what the person uploading can quote to support
    rid = raised.value.request_id  # type: ignore[attr-defined]
    assert re.fullmatch(r"[0-9a-f-]{32,36}", rid) and str(raised.value).endswith(f" (request {rid})")
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
    assert refused.value.code != 0 and refused.value.action == "ApplyUploadUGC"
    # The 502 was retried (on the other host); the refusal was not: a retry spends a one-time signature
    # on the same answer.
    assert stack.traffic.actions() == ["ApplyUploadUGC", "ApplyUploadUGC (resume)"]


def test_uploads_at_once_switch_to_the_backup_host_together(stack: Stack) -> None:
    """Two uploads of one Uploader (one VodClient) fail on the main host at once: each switch is away from the host
    that failed (two turns of a shared counter brought both back to it, every retry to the dead host)."""
    from werkzeug.wrappers import Response

    both_in_flight = threading.Barrier(2)
    hits: list[str] = []

    def broken(environ: dict[str, Any], start_response: Any) -> Any:
        hits.append(environ["PATH_INFO"])
        with contextlib.suppress(threading.BrokenBarrierError):
            both_in_flight.wait(timeout=10)  # the two first tries fail together
        return Response("down", status=502)(environ, start_response)

    server = localstack.serve_wsgi("broken", broken)
    client = VodClient(stack.signer(), hosts=(server.url, stack.url), retry_delay=0)
    outcomes: list[object] = []

    def apply() -> None:
        try:
            outcomes.append(client.apply_new(MediaInfo("clip", "mp4", 10)))
        except Exception as exc:  # the outcome is the test's
            outcomes.append(exc)

    try:
        threads = [threading.Thread(target=apply) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        server.stop()

    assert [type(outcome).__name__ for outcome in outcomes] == ["Applied", "Applied"]
    assert len(hits) == 2 and stack.traffic.actions() == ["ApplyUploadUGC", "ApplyUploadUGC"]


@pytest.mark.parametrize("then", ["resume", "cancel"])
def test_a_runs_late_report_never_follows_a_later_state(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    """An app's wait() returns once the run has settled, maybe before its thread has reported that state: resumed or
    cancelled at once, the run's late "paused" must not reach on_state after the states that follow it (a UI showing
    the last it heard would say "paused"), and the resume must not wait for it (the app's callback may wait for the
    thread that resumes)."""
    emit, late = UploadTask._emit_state, threading.Event()

    def slow_to_report_a_pause(task: UploadTask, state: UploadState, change: int) -> None:
        if state is UploadState.PAUSED:
            time.sleep(0.5)  # the task's thread descheduled between settling and reporting
        emit(task, state, change)
        late.set() if state is UploadState.PAUSED else None

    monkeypatch.setattr(UploadTask, "_emit_state", slow_to_report_a_pause)
    video = write_file(tmp_path / "trip.mp4", 4 * MIB)
    states: list[UploadState] = []
    heard_last = threading.Event()

    def on_state(state: UploadState) -> None:
        states.append(state)
        if state in (UploadState.DONE, UploadState.CANCELLED):
            heard_last.set()

    on_progress, tasks = pause_after(1, lambda task: task.pause())
    tasks.append(stack.uploader().upload(video, on_state=on_state, on_progress=on_progress))
    assert tasks[0].start().wait(60) is UploadState.PAUSED

    if then == "resume":
        tasks[0].resume().result(60)
    else:
        tasks[0].cancel()

    assert late.wait(10) and heard_last.wait(10)
    assert states[-1] is (UploadState.DONE if then == "resume" else UploadState.CANCELLED)


def test_a_resume_does_not_wait_for_the_runs_report_that_waits_for_it(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's on_state takes a lock its UI thread holds while it resumes the task (a view-model's): the resume must
    not wait for the run's late "paused" report, which waits for that lock."""
    emit = UploadTask._emit_state

    def slow_to_report_a_pause(task: UploadTask, state: UploadState, change: int) -> None:
        if state is UploadState.PAUSED:
            time.sleep(0.3)  # so that the UI thread holds its lock first
        emit(task, state, change)

    monkeypatch.setattr(UploadTask, "_emit_state", slow_to_report_a_pause)
    ui, states = threading.RLock(), list[UploadState]()

    def on_state(state: UploadState) -> None:
        with ui:
            states.append(state)

    on_progress, tasks = pause_after(1, lambda task: task.pause())
    video = write_file(tmp_path / "v.mp4", 4 * MIB)
    tasks.append(stack.uploader().upload(video, on_state=on_state, on_progress=on_progress))

    def resume_clicked() -> None:  # the UI thread's handler
        assert tasks[0].wait(60) is UploadState.PAUSED
        with ui:
            tasks[0].resume()

    ui_thread = threading.Thread(target=resume_clicked, daemon=True)
    tasks[0].start()
    ui_thread.start()
    ui_thread.join(30)
    assert not ui_thread.is_alive()  # (it waited for the report, which waited for it)
    assert tasks[0].result(60).file_id


# -- stopping at the last moment ----------------------------------------------------------------


@pytest.mark.parametrize("stop", ["cancel", "pause"])
@pytest.mark.parametrize(
    ("video_size", "cover_size"),
    [
        (2 * MIB, None),  # the last part of a multipart upload lands: the object is not completed yet
        (300 * 1024, None),  # a single PUT lands: the object is stored, only the commit is left
        (2 * MIB, 2000),  # the cover's PUT lands after the video was completed
    ],
    ids=["last-part", "single-put", "cover-after-video"],
)
def test_a_stop_asked_for_as_the_last_bytes_land_is_not_committed(
    stack: Stack, tmp_path: Path, stop: str, video_size: int, cover_size: int | None
) -> None:
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


class HeldAfterRelease(CheckpointStore):
    """The real checkpoints and lock; a run that lets its lock go waits there (before its task reports how it
    ended) until the test has acted."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.released, self.proceed = threading.Event(), threading.Event()

    @contextlib.contextmanager
    def claimed(self, name: str) -> Iterator[None]:
        with super().claimed(name):
            yield
        self.released.set()
        self.proceed.wait(30)


def test_a_cancel_asked_as_the_run_stops_for_a_pause_is_done(stack: Stack, tmp_path: Path) -> None:
    # GIVEN a run that has decided to pause and let its checkpoint go, its task not yet reporting it
    video = write_file(tmp_path / "late.mp4", 6 * MIB)
    checkpoints = HeldAfterRelease(stack.checkpoints)
    task = start_and_stop_early(stack, video, uploader=stack.uploader(checkpoints=checkpoints))
    assert checkpoints.released.wait(60) and task.state is UploadState.UPLOADING
    # WHEN the caller cancels then
    task.cancel()
    checkpoints.proceed.set()
    # THEN the task ends cancelled, nothing left behind (the cancel is not lost to the pause)
    assert task.wait(60) is UploadState.CANCELLED
    assert stack.saved() == [] and stack.open_uploads() == []


def test_a_pause_asked_after_a_cancel_does_not_undo_it(stack: Stack, tmp_path: Path) -> None:
    # GIVEN an upload under way, its parts after the second held at COS
    video = write_file(tmp_path / "draft.mp4", 6 * MIB)
    stack.traffic.hold_parts_after(2)
    task = stack.uploader().upload(video).start()
    stack.traffic.wait_until(lambda t: t.parts_stored == 2 and t.held >= 1)
    # WHEN the caller cancels, then pauses before the run has stopped (a UI's two buttons, pressed in turn)
    task.cancel()
    task.pause()
    stack.traffic.release(let_through=True)
    # THEN the cancel stands: the task ends cancelled, nothing left behind
    assert task.wait(60) is UploadState.CANCELLED
    assert stack.saved() == [] and stack.open_uploads() == []


def test_a_cancel_after_a_commit_whose_answer_was_never_heard_says_it_is_uploaded(stack: Stack, tmp_path: Path) -> None:
    # GIVEN a run that sent the commit and stopped before hearing VOD's answer (VOD committed it)
    video = write_file(tmp_path / "clip.mp4", 3 * MIB)
    stack.traffic.commits_unanswered = 4  # the first try and the uploader's three retries
    with pytest.raises(VodUnavailable):
        stack.uploader().upload(video).run()
    # WHEN the user cancels THEN VOD, asked again, confirms the upload: too late, and its file id is said
    with pytest.raises(AlreadyCommitted) as caught:
        stack.uploader().cancel_saved(video)
    file_ids = {call.answer["data"]["fileId"] for call in stack.traffic.calls if call.action == "CommitUploadUGC"}
    assert file_ids == {caught.value.committed.file_id} and "too late to cancel" in caught.value.message
    assert stack.served(caught.value.committed.video_url or "") == video.read_bytes() and stack.saved() == []


@pytest.mark.parametrize(
    ("refusing", "error"),
    [
        (lambda stack: stack.signer(localstack.mint_token(JWT_SECRET, ttl_seconds=-3600)), AuthenticationFailed),
        (lambda stack: SignatureClient(closed_port_url(), stack.token, backoff=0), SignatureUnavailable),
    ],
    ids=["its sign-in expired", "the sign function down"],
)
def test_a_commit_that_got_no_signature_was_not_sent_and_is_cancelled(
    stack: Stack, tmp_path: Path, refusing: Callable[[Stack], Callable[[], str]], error: type[Exception]
) -> None:
    # GIVEN an upload all in COS whose Commit gets no signature (every one after Apply's fails)
    video = write_file(tmp_path / "clip.mp4", 3 * MIB)
    good, bad, asked = stack.signer(), refusing(stack), []

    def signer() -> str:
        asked.append(1)
        return good() if len(asked) == 1 else bad()

    with pytest.raises(error):
        stack.uploader(signer=signer, owner=good.owner).upload(video).run()
    assert stack.saved_session()["committing"] is False  # no commit was sent
    # WHEN the user cancels THEN it is cancelled: nothing committed, nothing left behind
    assert stack.uploader().cancel_saved(video) is CancelOutcome.DISCARDED
    assert "CommitUploadUGC" not in stack.traffic.actions()
    assert stack.saved() == [] and stack.open_uploads() == []


@pytest.mark.parametrize(("stop", "ended"), [("pause", UploadState.PAUSED), ("cancel", UploadState.CANCELLED)])
def test_a_stop_while_waiting_to_ask_again_for_commits_signature_ends_the_wait(
    stack: Stack, busy_gateway: BusyGateway, tmp_path: Path, stop: str, ended: UploadState
) -> None:
    # GIVEN an upload all in COS whose Commit's signature the gateway answers with "busy, ask again in 30 s"
    good, waiting, calls = stack.signer(), SignatureClient(busy_gateway.url, stack.token), []

    def signer() -> str:
        calls.append(1)
        return good() if len(calls) == 1 else waiting()

    video = write_file(tmp_path / "clip.mp4", 3 * MIB)
    task = stack.uploader(signer=signer, owner=good.owner).upload(video).start()
    assert busy_gateway.asked.wait(30)
    # WHEN the user pauses or cancels while the client waits
    getattr(task, stop)()
    # THEN the task ends now, not after the wait, with no commit sent
    assert task.wait(15) is ended
    assert "CommitUploadUGC" not in stack.traffic.actions()
    if ended is UploadState.CANCELLED:
        assert stack.saved() == [] and stack.open_uploads() == []
        return
    # AND a paused one is committed by the next run, with nothing sent again
    assert stack.saved_session()["committing"] is False
    result = stack.uploader().upload(video).run()
    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.emulator.store.bytes_received == 3 * MIB and stack.saved() == []


def _renewal_asks(stack: Stack, gateway_url: str) -> tuple[Callable[[], str], Callable[[], str]]:
    """A signer whose first signature (the upload's Apply) is good, and the rest (renewals) from `gateway_url`;
    the owner its signatures name."""
    good, renewals, calls = stack.signer(), SignatureClient(gateway_url, stack.token, backoff=0), []

    def signer() -> str:
        calls.append(1)
        return good() if len(calls) == 1 else renewals()

    return signer, good.owner


def test_a_pause_while_parts_wait_to_renew_their_credentials_ends_the_wait(
    start_stack: Callable[..., Stack], busy_gateway: BusyGateway, tmp_path: Path
) -> None:
    # GIVEN parts in flight (in the upload's threads) whose credentials come due, and a renewal the signature
    # function answers with "busy, ask again in 30 s"
    stack = start_stack(credential_ttl_seconds=600)
    signer, owner = _renewal_asks(stack, busy_gateway.url)
    on_progress, tasks = pause_after(1, lambda task: stack.clock.advance(500))
    uploader = stack.uploader(clock=stack.clock, credential_margin=120, signer=signer, owner=owner)
    tasks.append(task := uploader.upload(write_file(tmp_path / "long.mp4", 6 * MIB), on_progress=on_progress))
    task.start()
    assert busy_gateway.asked.wait(30)
    # WHEN the user pauses THEN the upload pauses now, not after the wait (a cancel would then need the busy
    # function too: deleting the parts takes credentials)
    task.pause()
    assert task.wait(10) is UploadState.PAUSED


def test_a_renewal_that_failed_is_not_asked_again_by_each_part(
    start_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    # GIVEN four parts in flight whose credentials come due, and a signature function that refuses the renewal
    stack = start_stack(credential_ttl_seconds=600)
    refused: list[int] = []

    def refuse(environ: Any, start_response: Any) -> Any:
        refused.append(1)
        body = json.dumps({"error": {"code": "invalid_token", "message": "token expired"}})
        return Response(body, 401, content_type="application/json")(environ, start_response)

    gateway = localstack.serve_wsgi("refusing-gateway", refuse)
    try:
        signer, owner = _renewal_asks(stack, gateway.url)
        on_progress, tasks = pause_after(1, lambda task: stack.clock.advance(500))
        uploader = stack.uploader(clock=stack.clock, credential_margin=120, signer=signer, owner=owner, parallel=4)
        tasks.append(task := uploader.upload(write_file(tmp_path / "long.mp4", 12 * MIB), on_progress=on_progress))
        # WHEN the upload runs THEN it fails on that refusal, asked once, not once per part waiting for it
        with pytest.raises(AuthenticationFailed):
            task.run()
    finally:
        gateway.stop()
    assert len(refused) == 1


def test_a_cancel_while_waiting_to_send_a_sent_commit_again_ends_done(stack: Stack, tmp_path: Path) -> None:
    # GIVEN an upload whose commit VOD did, its answer lost, and that waits to send it again (30 s)
    video = write_file(tmp_path / "clip.mp4", 3 * MIB)
    stack.traffic.commits_unanswered = 1
    task = stack.uploader(api_retry_delay=30).upload(video).start()
    stack.traffic.wait_until(lambda traffic: "CommitUploadUGC" in traffic.actions())
    # WHEN the user cancels meanwhile
    task.cancel()
    # THEN the wait ends, VOD asked again confirms the upload: too late to cancel, the task is done with it
    assert task.wait(15) is UploadState.DONE
    result = task.result()
    file_ids = {call.answer["data"]["fileId"] for call in stack.traffic.calls if call.action == "CommitUploadUGC"}
    assert file_ids == {result.file_id} and stack.saved() == []
    assert stack.served(result.video_url or "") == video.read_bytes()


def test_cancelling_what_was_never_saved_leaves_no_trace(stack: Stack, tmp_path: Path) -> None:
    video = write_file(tmp_path / "never.mp4", 1000)
    assert stack.uploader().cancel_saved(video) is CancelOutcome.NOTHING_SAVED
    assert not stack.checkpoints.exists()  # no directory, no lock file made for it


@pytest.mark.parametrize(
    ("video_size", "cover_size"),
    [(300 * 1024, None), (3 * MIB, 3 * MIB)],
    ids=["single-put", "multipart-video-paused-in-its-cover"],
)
def test_a_stored_object_is_not_sent_again_though_the_credentials_may_not_look_it_up(
    stack: Stack, tmp_path: Path, video_size: int, cover_size: int | None
) -> None:
    # GIVEN a paused upload whose video COS holds whole (its PUT, or its multipart upload completed)
    video = write_file(tmp_path / "again.mp4", video_size)
    cover = write_file(tmp_path / "again.jpg", cover_size, seed=2) if cover_size else None
    if cover is None:
        pause_once_stored(stack, video)
    else:
        assert start_and_stop_early(stack, video, parts=4, cover=cover).wait(60) is UploadState.PAUSED
    # WHEN it is resumed with credentials that may only write (VOD's policy is not published)
    stack.traffic.heads_forbidden = True
    result = stack.uploader().upload(video, cover).run()
    # THEN the video is not sent again: the checkpoint says it is stored
    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.emulator.store.bytes_received == video_size + (cover_size or 0) and stack.saved() == []


def test_a_cancel_while_resuming_a_fully_uploaded_upload_is_not_committed(stack: Stack, tmp_path: Path) -> None:
    video = write_file(tmp_path / "ready.mp4", 300 * 1024)
    pause_once_stored(stack, video)
    assert len(stack.saved()) == 1
    tasks: list[UploadTask] = []
    task = stack.uploader().upload(video, on_notice=lambda notice: tasks[0].cancel())  # at "resuming ... committing"
    tasks.append(task)

    assert task.start().wait(60) is UploadState.CANCELLED
    assert "CommitUploadUGC" not in stack.traffic.actions()
    assert stack.saved() == []


# -- files that change before the run ---------------------------------------------------------


def _grow_file(video: Path) -> None:
    with open(video, "ab") as out:
        out.write(b"appended later")


def _shrink_file(video: Path) -> None:
    video.write_bytes(content(3 * MIB + 10, seed=5))


@pytest.mark.parametrize("change", [_grow_file, _shrink_file], ids=["grown", "shrunk"])
@pytest.mark.parametrize("when", ["before start", "while paused"])
def test_the_run_announces_the_file_as_it_is_then(
    stack: Stack, tmp_path: Path, when: str, change: Callable[[Path], None]
) -> None:
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


@pytest.mark.parametrize("code", ["RequestTimeout", "IncompleteBody", "EntitySizeNotMatch"])
@pytest.mark.parametrize("size", [PART // 2, 3 * MIB], ids=["one PUT", "multipart"])
def test_a_body_cut_short_on_the_way_is_sent_again(stack: Stack, tmp_path: Path, size: int, code: str) -> None:
    """COS's 400s for a body that did not arrive whole (too slow, shorter than its Content-Length): the network's
    doing, as a 5xx is, so sent again (cos-js-sdk-v5, under vod-js-sdk-v6, retries a part on any error)."""
    video = write_file(tmp_path / "holiday.mp4", size)
    stack.traffic.puts_refused_as = [code]

    result = stack.uploader().upload(video).run()

    assert [r.status for r in stack.traffic.cos_requests if r.method == "PUT"].count(400) == 1
    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.saved() == [] and stack.open_uploads() == []


@pytest.mark.parametrize("code", ["InternalError", "SlowDown", "AnErrorOfNoKnownName"])  # a 200: retried whatever
def test_a_complete_that_fails_after_cos_began_answering_is_asked_again(
    stack: Stack, tmp_path: Path, code: str
) -> None:
    """CompleteMultipartUpload answered "200 OK" with an error in its body (COS failed after it began to answer):
    asked again, as S3 and COS say, not a failed run."""
    video = write_file(tmp_path / "holiday.mp4", 3 * MIB)
    stack.traffic.completes_failed_in_200 = [code]

    result = stack.uploader().upload(video).run()

    completes = [r.status for r in stack.traffic.cos_requests if r.method == "POST" and "uploadId" in r.query]
    assert completes == [200, 200]
    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.saved() == [] and stack.open_uploads() == []


@pytest.mark.parametrize("crc64", [True, False], ids=["COS answers its CRC64", "COS answers no CRC64: the ETag"])
@pytest.mark.parametrize("size", [PART // 2, 3 * MIB], ids=["one PUT", "multipart"])
def test_bytes_changed_on_the_way_to_cos_are_sent_again(stack: Stack, tmp_path: Path, size: int, crc64: bool) -> None:
    video = write_file(tmp_path / "holiday.mp4", size)
    stack.traffic.bodies_to_change = 1
    stack.traffic.crc64_hidden = not crc64

    result = stack.uploader().upload(video).run()

    assert stack.traffic.bodies_changed == 1
    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.emulator.store.bytes_received == size + min(size, PART)  # the changed body, then sent again
    assert stack.saved() == [] and stack.open_uploads() == []


@pytest.mark.parametrize(
    ("size", "what"),
    [(PART // 2, "upload the video"), (3 * MIB, "upload part [123] of the video")],
    ids=["one PUT", "multipart"],
)
def test_bytes_changed_on_every_try_fail_the_run_and_the_next_sends_them_again(
    stack: Stack, tmp_path: Path, size: int, what: str
) -> None:
    video = write_file(tmp_path / "holiday.mp4", size)
    stack.traffic.bodies_to_change = 99

    with pytest.raises(StorageError, match=f"{what} failed after 6 attempts: .*COS stored other bytes"):
        stack.uploader().upload(video).run()
    assert stack.traffic.actions() == ["ApplyUploadUGC"]  # nothing committed
    assert len(stack.saved()) == 1
    stack.traffic.bodies_to_change = 0
    # What COS kept of the run, the right size but other bytes, is not taken for the file.
    result = stack.uploader().upload(video).run()

    assert stack.served(result.video_url or "") == video.read_bytes()
    assert stack.traffic.actions() == ["ApplyUploadUGC", "ApplyUploadUGC (resume)", "CommitUploadUGC"]


@pytest.mark.parametrize(
    ("change", "said"),
    [(_grow_file, "changed during the upload"), (Path.unlink, "was deleted during the upload")],
    ids=["grown", "deleted"],  # a recorder still writing it; a file cleaned up from under the upload
)
@pytest.mark.parametrize("size", [PART // 2, 3 * MIB], ids=["one PUT", "multipart"])
def test_a_file_that_changes_while_it_is_sent_is_not_committed(
    stack: Stack, tmp_path: Path, size: int, change: Callable[[Path], object], said: str
) -> None:
    video = write_file(tmp_path / "recording.mp4", size)

    def on_state(state: UploadState) -> None:
        if state is UploadState.UPLOADING:
            change(video)

    task = stack.uploader().upload(video, on_state=on_state).start()
    depths = []
    for _ in range(3):  # asked again and again: the same failure, not one whose traceback grows with each ask
        with pytest.raises(SourceChanged, match=said) as raised:
            task.result()
        depths.append(len(traceback.extract_tb(raised.value.__traceback__)))
    assert depths[0] == depths[-1]
    assert "CommitUploadUGC" not in stack.traffic.actions()
    assert stack.traffic.parts_sent() == []  # each part checks the file: none of it sent to be thrown away


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
