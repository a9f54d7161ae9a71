"""The upload page in a real browser (Chromium), with Tencent's own browser SDK (vod-js-sdk-v6), against the
sign, callback and uploads functions and the VOD emulator, each on its own origin."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from tests.conftest import Serve
from vodtesting import sample_video

from .conftest import BrowserStack, part_number

pytestmark = pytest.mark.timeout(180)
MiB = 1024 * 1024


def _cover(tmp_path: Path, name: str = "cover.png") -> Path:
    path = tmp_path / name
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    return path


def _wait_for_result(b: BrowserStack, timeout_s: float = 90) -> str:
    b.page.wait_for_selector("#processing[data-status]", timeout=timeout_s * 1000)
    return str(b.page.inner_text("#file-id"))


def _until(b: BrowserStack, done: Callable[[], object], failure: str, seconds: float = 60) -> None:
    """Wait, letting the page run, until `done()`; fail with `failure` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, failure
        b.page.wait_for_timeout(50)


def _wait_for_progress(b: BrowserStack, percent: int) -> None:
    _until(b, lambda: int(b.page.eval_on_selector("#video-progress", "e => e.value")) >= percent, "no progress")


def _start_slow_upload(b: BrowserStack, video: Path, bytes_per_second: int) -> None:
    """Start uploading `video` as page-user, slowly enough for a test to act mid-upload."""
    b.open(b.stack.token("page-user"))
    b.throttle(bytes_per_second)
    b.choose(video)
    b.page.click("#start")


@pytest.mark.parametrize(
    ("size", "with_cover", "parts"),
    [
        pytest.param(200 * 1024, True, 1, id="200KB-video-with-cover"),
        pytest.param(20 * MiB, False, 3, id="20MB-multipart"),
    ],
)
def test_an_upload_completes_and_is_recorded_for_the_pages_user(
    browser_stack: BrowserStack, tmp_path: Path, size: int, with_cover: bool, parts: int
) -> None:
    b = browser_stack
    video = sample_video(tmp_path / "clip.mp4", size)
    # What the page's Content-Security-Policy blocked (nothing it needs may be)
    b.page.add_init_script(
        "window.blocked = []; document.addEventListener('securitypolicyviolation',"
        " e => window.blocked.push(e.effectiveDirective + ' ' + e.blockedURI))"
    )
    b.open(b.stack.token("page-user"))
    b.choose(video, _cover(tmp_path) if with_cover else None)
    b.page.click("#start")
    file_id = _wait_for_result(b)
    assert b.page.evaluate("window.blocked") == []

    record = b.stack.record(file_id)
    assert record.user_id == "page-user"  # sealed into sourceContext by the sign function, for this token
    assert record.cover_url if with_cover else not record.cover_url
    assert b.page.get_attribute("#processing", "data-status") == "uploaded"
    assert sorted(set(b.traffic.part_puts(".mp4"))) == list(range(1, parts + 1))
    # Every VOD call (Prepare, Apply, Commit) carried its own one-time signature, fetched just for it.
    calls = b.traffic.vod_calls()
    assert [action for action, _ in calls] == ["PrepareUploadUGC", "ApplyUploadUGC", "CommitUploadUGC"]
    signatures = [body["signature"] for _, body in calls]
    assert len(set(signatures)) == len(calls) == b.traffic.signature_requests(b.stack.gateway_url)
    assert "Done: Uploaded" in b.page.inner_text("#status")
    if with_cover:
        assert b.screenshot("upload-page-done").stat().st_size > 0


def test_a_file_name_with_what_vod_refuses_in_names_uploads_with_them_replaced(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    b = browser_stack
    b.open(b.stack.token("page-user"))
    b.choose(sample_video(tmp_path / 'Interview: part 1 <"final"?>.mp4', 100 * 1024), _cover(tmp_path, 'a|"b".png'))
    b.page.click("#start")
    record = b.stack.record(_wait_for_result(b))
    assert record.name == "Interview_ part 1 __final___" and record.cover_url
    # The SDK sends the cover's name unchecked: the page gives it a copy under a name VOD takes.
    assert [(a["coverName"], a["coverType"]) for a in b.traffic.applies() if "coverName" in a] == [("a__b_", "png")]


@pytest.mark.parametrize("loads", [True, False], ids=["sdk-arrives", "sdk-fails"])
def test_the_token_leaves_the_address_bar_before_the_sdk_arrives_and_an_upload_waits_for_it(
    browser_stack: BrowserStack, tmp_path: Path, loads: bool
) -> None:
    # The SDK is 4 MB: on a slow link the page's own script must not wait for it to take the token out of the
    # address bar (where it can be copied, bookmarked or seen). An upload started before it arrives waits.
    b = browser_stack
    held: list[Any] = []
    b.page.route("**/assets/vod-js-sdk-v6*", lambda route: held.append(route))  # noqa: PLW0108 (tagged)
    b.page.goto(f"{b.page_origin}/#token={b.stack.token('page-user')}", wait_until="commit")  # "load" waits for it
    b.page.wait_for_selector("#signed-in:not([hidden])")  # the page's script has read the link (Upload is in the HTML)
    assert "token=" not in b.page.url and b.page.inner_text("#user") == "page-user"
    assert held and not b.page.evaluate("'TcVod' in window")
    b.choose(sample_video(tmp_path / "clip.mp4", 100 * 1024))
    b.page.click("#start")
    b.page.wait_for_timeout(300)
    assert b.traffic.vod_calls() == [] and b.page.inner_text("#error") == ""
    assert b.page.inner_text("#status") == "Loading the uploader…"
    if loads:
        held[0].continue_()
        assert b.stack.record(_wait_for_result(b)).user_id == "page-user"
    else:
        held[0].abort()
        b.page.wait_for_selector("#error:not(:empty)")
        assert "The uploader could not be loaded" in b.page.inner_text("#error")
        assert b.page.is_visible("#start") and b.traffic.vod_calls() == []


def test_cancel_leaves_no_upload(browser_stack: BrowserStack, tmp_path: Path) -> None:
    b = browser_stack
    video = sample_video(tmp_path / "clip.mp4", 20 * MiB)
    _start_slow_upload(b, video, 4 * MiB)
    _wait_for_progress(b, 5)
    assert b.screenshot("upload-page-uploading").stat().st_size > 0  # kept as a test artifact
    # While it is sent, the files chosen cannot be changed, and the meter says how much of the video is
    assert b.page.is_disabled("#video") and b.page.is_disabled("#cover")
    figures = b.page.inner_text("#video-figures")
    assert re.fullmatch(r"\d+% — [\d.]+ (B|KB|MB) of 20\.0 MB(, [\d.]+ (B|KB|MB)/s)?", figures), figures
    # Cancel asks first (what is sent is thrown away): told no, the upload goes on
    b.keep_uploading = True
    b.page.click("#cancel")
    assert b.cancel_questions == 1 and b.page.is_visible("#pause")
    sent = int(b.page.eval_on_selector("#video-progress", "e => e.value"))
    _wait_for_progress(b, sent + 5)
    b.keep_uploading = False
    b.page.click("#cancel")
    assert b.cancel_questions == 2

    assert b.page.inner_text("#status") == "Upload cancelled."
    b.page.wait_for_timeout(1500)  # anything still in flight would land now
    assert "CommitUploadUGC" not in [action for action, _ in b.traffic.vod_calls()]
    assert b.stack.records("page-user") == []
    # Nothing saved to resume: the SDK's session for this file is gone.
    assert b.page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('webugc_')).length") == 0
    assert b.page.is_visible("#start") and not b.page.is_visible("#cancel") and b.page.is_enabled("#video")


def test_a_second_tab_leaves_the_video_another_tab_uploads_to_it(browser_stack: BrowserStack, tmp_path: Path) -> None:
    # GIVEN a video uploading in one tab (its VOD session kept where every tab of the browser reads it)
    b = browser_stack
    video = sample_video(tmp_path / "clip.mp4", 20 * MiB)
    _start_slow_upload(b, video, 4 * MiB)
    _wait_for_progress(b, 5)
    # WHEN the same user starts the same video in a second tab
    other = b.context.new_page()
    other.on("request", lambda request: b.traffic.requests.append(request))  # noqa: PLW0108
    other.goto(f"{b.page_origin}/#token={b.stack.token('page-user')}")
    other.wait_for_selector("#start:not([hidden])")
    other.set_input_files("#video", str(video))
    applied = [action for action, _ in b.traffic.vod_calls()].count("ApplyUploadUGC")
    other.click("#start")
    # THEN it says where the video is being uploaded, and sends nothing (it would take over that session)
    _until(b, lambda: "being uploaded in another tab" in other.inner_text("#error"), "the second tab said nothing")
    assert other.is_visible("#start") and not other.is_visible("#cancel")
    b.throttle(-1)  # no longer slowed
    _wait_for_result(b)
    assert [action for action, _ in b.traffic.vod_calls()].count("ApplyUploadUGC") == applied
    assert len(b.stack.records("page-user")) == 1
    # and once it is uploaded there, the second tab may send it again if its user asks
    other.click("#start")
    other.wait_for_selector("#processing[data-status]", timeout=90_000)
    assert len(b.stack.records("page-user")) == 2


def _wait_for_a_stored_part(b: BrowserStack) -> None:
    _until(b, b.traffic.parts_stored, "no part finished")


def _parts_sent_since(b: BrowserStack, start: int) -> set[int]:
    return {n for r in b.traffic.requests[start:] if (n := part_number(r)) is not None}


def _cut_off_by_a_reload(b: BrowserStack, tmp_path: Path) -> tuple[Path, int]:
    """A 20 MiB upload cut off by a reload once a part is safely in COS (its session saved): the video, and how
    many requests the page had sent."""
    video = sample_video(tmp_path / "clip.mp4", 20 * MiB)
    _start_slow_upload(b, video, 6 * MiB)
    _wait_for_a_stored_part(b)
    sent = len(b.traffic.requests)
    b.page.reload()  # the token survives in sessionStorage; the files must be chosen again
    b.page.wait_for_selector("#start:not([hidden])")
    assert b.leave_prompts == 1  # the browser asked first ("Leave site?"), and the user left
    return video, sent


def test_leaving_mid_upload_asks_first_and_staying_lets_it_finish(browser_stack: BrowserStack, tmp_path: Path) -> None:
    # GIVEN an upload under way
    b = browser_stack
    _start_slow_upload(b, sample_video(tmp_path / "clip.mp4", 20 * MiB), 6 * MiB)
    _wait_for_a_stored_part(b)
    # WHEN the user closes the tab, and stays when the browser asks whether to leave
    b.stay = True
    b.page.close(run_before_unload=True)
    _until(b, lambda: b.leave_prompts == 1, "the browser did not ask before closing the tab")
    # THEN the upload goes on to its end
    b.throttle(-1)
    assert b.stack.record(_wait_for_result(b)).user_id == "page-user"
    # AND a finished upload, or none, lets the tab go without asking
    b.page.reload()
    b.page.wait_for_selector("#start:not([hidden])")
    with b.page.expect_event("close", timeout=10_000):
        b.page.close(run_before_unload=True)
    assert b.leave_prompts == 1


def test_a_reload_mid_upload_resumes_and_sends_only_the_missing_parts(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    b = browser_stack
    video, sent_before = _cut_off_by_a_reload(b, tmp_path)
    stored_before = b.traffic.parts_stored()
    b.choose(video)
    b.page.click("#start")
    file_id = _wait_for_result(b)

    apply_after = b.traffic.applies()[-1]
    assert "vodSessionKey" in apply_after  # the SDK's resume: the same VOD upload session
    resent = _parts_sent_since(b, sent_before)
    # Only missing parts (a part COS kept just as the reload cut it off needs no resend; the file is whole
    # all the same: _wait_for_result waits for the commit, and the emulator refuses one of the wrong size).
    assert resent and not resent & stored_before
    record = b.stack.record(file_id)
    assert record.user_id == "page-user"


def test_a_file_changed_since_its_upload_was_cut_off_is_uploaded_anew_not_stitched(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    # GIVEN an upload cut off mid-way, its session saved (the SDK knows it by the file's name and size)
    b = browser_stack
    video, _ = _cut_off_by_a_reload(b, tmp_path)
    # WHEN the file is edited in place, keeping its name, size and time (a tool that keeps times, say)
    times = video.stat()
    content = bytes(reversed(video.read_bytes()))
    video.write_bytes(content)
    os.utime(video, ns=(times.st_atime_ns, times.st_mtime_ns))
    before = len(b.traffic.applies())
    b.choose(video)
    b.page.click("#start")
    file_id = _wait_for_result(b)
    # THEN a new session, and VOD holds the file as it is now, not parts of both versions
    assert "vodSessionKey" not in b.traffic.applies()[before]
    media_url = b.stack.record(file_id).media_url
    assert media_url is not None and requests.get(media_url, timeout=30).content == content


def _held_by_a_silent_storage_service(
    b: BrowserStack, tmp_path: Path, size: int = 200 * 1024
) -> tuple[list[Any], list[bool]]:
    """An upload of a `size` video started against a COS that takes the page's requests and answers none (a proxy
    or firewall that holds them), once the page has said so: the requests held, and whether it still holds them."""
    held: list[Any] = []
    holding = [True]
    b.page.route(
        lambda url: ".myqcloud.com" in url, lambda route: held.append(route) if holding[0] else route.continue_()
    )
    b.open(b.stack.token("page-user"))
    b.choose(sample_video(tmp_path / "clip.mp4", size))
    b.page.click("#start")
    _until(b, lambda: held, "no COS request")
    _until(b, lambda: "not answering. Wait, or cancel" in b.page.inner_text("#error"), "nothing said", 30)
    return held, holding


def _let_go(held: list[Any], holding: list[bool]) -> None:
    holding[0] = False
    for route in held:
        with contextlib.suppress(Exception):  # the page may have given up on it: nothing left to answer
            route.continue_()


def test_a_storage_service_that_never_answers_is_said_and_its_answer_clears_it(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    # GIVEN an upload whose COS answers nothing for a while: the user is told, and may cancel
    b = browser_stack
    held, holding = _held_by_a_silent_storage_service(b, tmp_path, 8 * MiB)
    assert b.page.is_visible("#cancel") and not b.page.is_visible("#pause")
    assert b.page.evaluate("document.activeElement.id") == "cancel"  # Upload's focus, as it was hidden
    # WHEN it answers after all (slowly enough to see the upload under way)
    b.throttle(2 * MiB)
    _let_go(held, holding)
    # THEN the upload goes on, the word goes at once, and it can be paused again
    _until(b, lambda: b.page.is_visible("#pause"), "no Pause once the storage service answered")
    assert b.page.inner_text("#error") == "" and b.page.is_visible("#cancel")
    b.throttle(-1)
    _wait_for_result(b)
    assert b.page.inner_text("#error") == ""


def test_an_upload_whose_storage_service_never_answers_can_be_cancelled(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    # GIVEN an upload whose COS answers nothing
    b = browser_stack
    held, holding = _held_by_a_silent_storage_service(b, tmp_path)
    # WHEN the user cancels it (not asked: nothing was sent), and COS answers later after all
    b.page.click("#cancel")
    assert (b.page.inner_text("#status"), b.page.inner_text("#error"), b.cancel_questions) == (
        "Upload cancelled.",
        "",
        0,
    )
    _let_go(held, holding)
    b.page.wait_for_timeout(1500)  # anything still in flight would land now
    # THEN nothing was committed, nothing is left to resume, and a new upload can start
    assert "CommitUploadUGC" not in [action for action, _ in b.traffic.vod_calls()]
    assert b.stack.records("page-user") == []
    assert b.page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('webugc_')).length") == 0
    assert b.page.is_visible("#start") and not b.page.is_visible("#cancel")


def test_another_user_of_the_browser_does_not_resume_someone_elses_upload(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    b = browser_stack
    video = sample_video(tmp_path / "clip.mp4", 20 * MiB)
    _start_slow_upload(b, video, 6 * MiB)  # page-user's upload: its VOD session is saved in localStorage
    _wait_for_a_stored_part(b)

    b.page.reload()  # cut off mid-upload: page-user's session stays saved
    b.open(b.stack.token("other-user"))  # then the app's link for another user, in the same browser
    b.page.reload()
    b.page.wait_for_selector("#start:not([hidden])")
    b.choose(video)

    before = len(b.traffic.applies())
    b.page.click("#start")
    _until(b, lambda: len(b.traffic.applies()) > before, "no ApplyUploadUGC after the start")
    assert "vodSessionKey" not in b.traffic.applies()[before]  # a new session, not page-user's
    assert b.stack.record(_wait_for_result(b)).user_id == "other-user"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not-a-token", "Your sign-in was refused"),
        (None, "You are not signed in"),
        # no header can carry these: a link damaged on its way (a mail client's line break, a zero-width space)
        ("ab%0Acd", "Your sign-in link is damaged"),
        ("%E2%80%8Babc", "Your sign-in link is damaged"),
    ],
)
def test_a_bad_token_shows_a_clear_message(
    browser_stack: BrowserStack, tmp_path: Path, token: str | None, message: str
) -> None:
    b = browser_stack
    b.open(token)
    b.choose(sample_video(tmp_path / "clip.mp4", 100 * 1024))
    b.page.click("#start")
    b.page.wait_for_selector("#error:not(:empty)")
    assert message in b.page.inner_text("#error")
    assert b.traffic.vod_calls() == []  # no signature, no VOD call
    assert b.stack.records("page-user") == []


@pytest.mark.parametrize(
    ("video_name", "video_size", "cover_name", "message"),
    [
        ("clip", 1000, None, "clip has no extension"),
        ("clip.", 1000, None, "clip. has no extension"),
        ("clip.mp4 ", 1000, None, '"clip.mp4 " does not end in a file type'),  # a trailing space: VOD's type "mp4 "
        ("empty.mp4", 0, None, "empty.mp4 is empty"),
        ("clip.mp4", 1000, "cover", "cover has no extension"),
        ("clip.mp4", 1000, "cover.png", "cover.png is empty"),
    ],
)
def test_a_file_vod_would_refuse_on_every_try_is_said_before_anything_is_sent(
    browser_stack: BrowserStack, tmp_path: Path, video_name: str, video_size: int, cover_name: str | None, message: str
) -> None:
    b = browser_stack
    b.open(b.stack.token("page-user"))
    video = tmp_path / video_name
    video.write_bytes(b"v" * video_size)
    cover = None if cover_name is None else tmp_path / cover_name
    if cover is not None:
        cover.write_bytes(b"" if cover_name == "cover.png" else b"c" * 100)
    b.choose(video, cover)
    b.page.click("#start")
    b.page.wait_for_selector("#error:not(:empty)")
    assert message in b.page.inner_text("#error")
    assert b.traffic.vod_calls() == [] and not [r for r in b.traffic.requests if "/signature" in r.url]


def test_the_page_says_whom_it_uploads_for_and_takes_a_new_link_in_the_same_tab(browser_stack: BrowserStack) -> None:
    # A link can carry anyone's token, so the page names its user; and a second link opened in the same
    # tab (only the fragment changes: no page load) is taken, not left in the address bar.
    b = browser_stack
    b.open(b.stack.token("page-user"))
    assert b.page.inner_text("#signed-in") == "Uploading as page-user" and "token=" not in b.page.url
    other = b.stack.token("zoë@example.com")
    b.page.goto(f"{b.page_origin}/#token={other}")
    _until(b, lambda: b.page.inner_text("#user") == "zoë@example.com", "the second link's token was not taken")
    assert "token=" not in b.page.url
    assert b.page.evaluate("sessionStorage.getItem('vod-upload-token')") == other


@pytest.mark.parametrize(
    ("written", "token"),
    [("ab+cd/ef==", "ab+cd/ef=="), ("ab%2Bcd%2Fef%3D%3D", "ab+cd/ef=="), ("a%zz+b", "a%zz+b")],
    ids=["as-is", "percent-encoded", "stray-percent"],
)
def test_a_links_token_is_taken_as_the_app_wrote_it(browser_stack: BrowserStack, written: str, token: str) -> None:
    # An opaque token (not a JWT: AUTH_MODE=gateway) may hold "+", "/" and "=", written into the link as is or
    # percent-encoded: the page keeps it exactly ("+" is no space here), and the link's other parts stay.
    b = browser_stack
    b.page.goto(f"{b.page_origin}/#token={written}&from=app")
    _until(b, lambda: b.page.evaluate("sessionStorage.getItem('vod-upload-token')") is not None, "no token taken")
    assert b.page.evaluate("sessionStorage.getItem('vod-upload-token')") == token
    assert b.page.url.endswith("/#from=app")


def _held_signature(b: BrowserStack, number: int) -> tuple[list[Any], list[bool]]:
    """The page's `number`-th signature request (1: Prepare's, 2: Apply's, 3: Commit's) held until let go: the
    requests held, and whether it still holds them."""
    held: list[Any] = []
    holding = [True]
    asked: list[str] = []

    def signature(route: Any) -> None:
        asked.append(route.request.url)
        if len(asked) == number and holding[0]:
            held.append(route)
        else:
            route.continue_()

    b.page.route(b.stack.signature_url, lambda route: signature(route))  # noqa: PLW0108
    return held, holding


@pytest.mark.parametrize(
    ("moment", "signature"),
    [("starting", 1), ("uploading", None), ("stalled", None), ("finishing", 3)],
    ids=["starting: Prepare's signature asked", "uploading", "stalled", "finishing: Commit's signature asked"],
)
def test_another_users_link_during_an_upload_changes_nothing(
    browser_stack: BrowserStack, tmp_path: Path, moment: str, signature: int | None
) -> None:
    # GIVEN page-user's upload under way, at each moment of it
    b = browser_stack
    held: list[Any] = []
    holding = [False]
    if signature is not None:  # the signature for a VOD call asked and not yet given
        held, holding = _held_signature(b, signature)
        b.open(b.stack.token("page-user"))
        b.choose(sample_video(tmp_path / "clip.mp4", 200 * 1024))
        b.page.click("#start")
        _until(b, lambda: held, "the signature was not asked")
    elif moment == "uploading":
        _start_slow_upload(b, sample_video(tmp_path / "clip.mp4", 8 * MiB), 2 * MiB)
        _wait_for_progress(b, 5)
    else:  # COS silent for a while: the upload goes on when it answers after all
        held, holding = _held_by_a_silent_storage_service(b, tmp_path)
    # WHEN another user's link is opened in the tab
    b.page.goto(f"{b.page_origin}/#token={b.stack.token('someone-else')}")
    # THEN it is refused, and the upload ends as page-user's
    _until(b, lambda: "Another sign-in arrived during this upload" in b.page.inner_text("#error"), "not refused")
    assert b.page.inner_text("#user") == "page-user" and "token=" not in b.page.url
    _let_go(held, holding)
    file_id = _wait_for_result(b)
    assert b.stack.record(file_id).user_id == "page-user"
    assert b.page.get_attribute("#processing", "data-status") == "uploaded"  # still followed, as its user
    assert b.page.inner_text("#error") == ""  # the notice ended with the upload it was about


@pytest.mark.parametrize("web_crypto", [True, False], ids=["secure-context", "no-web-crypto"])
def test_pause_stops_sending_and_resume_finishes_with_the_missing_parts(
    browser_stack: BrowserStack, tmp_path: Path, web_crypto: bool
) -> None:
    b = browser_stack
    if not web_crypto:  # a page served over http from another host than loopback: no crypto.subtle
        b.page.add_init_script("Object.defineProperty(Crypto.prototype, 'subtle', {get: () => undefined})")
    # 3 parts of 8 MiB at most, all in flight at once (the SDK sends 6 in parallel): a pause must abort the
    # ones still going, not merely start no new ones.
    video = sample_video(tmp_path / "clip.mp4", 20 * MiB)
    _start_slow_upload(b, video, 3 * MiB)
    _wait_for_a_stored_part(b)
    bar = "document.getElementById('video-progress')"
    b.page.evaluate(
        f"() => {{ window.bar = []; new MutationObserver(() => window.bar.push({bar}.value))"
        f".observe({bar}, {{attributes: true}}) }}"
    )
    b.page.click("#pause")
    at_pause = b.page.evaluate(f"{bar}.value")
    assert b.page.inner_text("#status") == "Paused." and at_pause > 0
    # A paused transfer ends at once (aborted), well within 10 s.
    _until(b, lambda: not b.traffic.pending(), "still sending while paused", seconds=10)
    stored = b.traffic.parts_stored()
    aborted = {n for r in b.traffic.failed if (n := part_number(r)) is not None}
    assert aborted and not aborted & stored and aborted | stored == {1, 2, 3}
    sent_when_paused = len(b.traffic.requests)
    b.page.wait_for_timeout(1500)
    assert len(b.traffic.requests) == sent_when_paused  # nothing new goes out while paused
    assert b.stack.records("page-user") == []

    b.page.click("#resume")
    file_id = _wait_for_result(b)
    # What COS had stays counted: the bar never went back to 0 (a paused transfer's late report, and a resumed
    # one's first, say 0 bytes); it goes back only by what the pause aborted
    assert min(b.page.evaluate("window.bar"), default=at_pause) > 0
    # The missing parts, and only those (a part COS kept just as it was aborted needs no resend: the commit,
    # which the emulator refuses for a file of the wrong size, proves the file whole).
    resent = _parts_sent_since(b, sent_when_paused)
    assert resent and resent <= aborted
    assert b.stack.record(file_id).user_id == "page-user"
    applies = b.traffic.applies()
    assert len(applies) == 2 and "vodSessionKey" in applies[1]  # the same VOD session, resumed
    # and, the upload done, the browser keeps nothing of it: no session, no fingerprint, no file name
    kept = b.page.evaluate("JSON.stringify(Object.entries(localStorage))")
    assert "clip" not in kept and "webugc_" not in kept, kept


def _framed_by_an_app(b: BrowserStack, loopback_http: Serve, token: str | None, *, another_site: bool = False) -> Any:
    """The upload page framed by the app's own page, from a server of its own (a fourth origin; `another_site`:
    of another site too, as a deployed app's), which hands it `token` (None: nothing) when it is ready and again
    each time it says the token was refused (as the README suggests)."""
    parent = f"""<!doctype html><iframe id="f" title="Upload a video" src="{b.page_origin}/"></iframe><script>
      window.busy = [];  // what the page said of its upload being unfinished, in order
      window.uploads = [];  // and of its uploads
      addEventListener("message", (e) => {{
        if (e.origin === "{b.page_origin}" && e.data.type === "vod-upload-busy") busy.push(e.data.busy);
        if (e.origin === "{b.page_origin}" && e.data.fileId) uploads.push(e.data);
        if ({json.dumps(token)} !== null && e.origin === "{b.page_origin}"
            && ["vod-upload-ready", "vod-upload-token-refused"].includes(e.data.type))
          document.getElementById("f").contentWindow.postMessage(
            {{type: "vod-upload-token", token: "{token}"}}, "{b.page_origin}");
      }});</script>""".encode()

    def app_page(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()
        handler.wfile.write(parent)

    app = loopback_http(app_page)
    if another_site:  # 127.0.0.1 and localhost are two sites to a browser (ports are not)
        app = app.replace("//127.0.0.1:", "//localhost:")
    b.redeploy_page(UPLOAD_PAGE_FRAME_ANCESTORS=app)
    b.page.goto(f"{app}/")
    frame = b.page.frame_locator("#f")
    frame.locator("#start:not([hidden])").wait_for()
    return frame


def test_an_embedding_app_hands_the_token_over_by_post_message(
    browser_stack: BrowserStack, loopback_http: Serve, tmp_path: Path
) -> None:
    b = browser_stack
    frame = _framed_by_an_app(b, loopback_http, b.stack.token("embedded-user"))
    frame.locator("#video").set_input_files(str(sample_video(tmp_path / "clip.mp4", 100 * 1024)))
    frame.locator("#start").click()
    frame.locator("#processing[data-status]").wait_for(timeout=60000)
    file_id = frame.locator("#file-id").inner_text()
    assert b.stack.record(file_id).user_id == "embedded-user"
    assert not frame.locator("#signed-out").is_visible()
    # and the app heard that an upload was unfinished while it was, so that it could ask before removing the frame
    assert b.page.evaluate("busy") == [True, False]
    # and of the upload: its FileId at once (to attach it to what the user is writing, say), then its status
    _until(b, lambda: len(b.page.evaluate("uploads")) == 2, "the app did not hear of the upload's status")
    assert b.page.evaluate("uploads") == [
        {"type": "vod-upload-done", "fileId": file_id, "user": "embedded-user"},
        {"type": "vod-upload-status", "fileId": file_id, "user": "embedded-user", "status": "uploaded"},
    ]


@pytest.mark.parametrize("followed", [True, False], ids=["status-followed", "status-url-none"])
def test_an_embedding_app_hears_of_each_change_of_an_uploads_status_once(
    task_flow: None, browser_stack: BrowserStack, loopback_http: Serve, tmp_path: Path, followed: bool
) -> None:
    b = browser_stack
    if not followed:
        os.environ["UPLOAD_PAGE_STATUS_URL"] = "none"  # (the fixture restores the environment)
    frame = _framed_by_an_app(b, loopback_http, b.stack.token("embedded-user"))
    frame.locator("#video").set_input_files(str(sample_video(tmp_path / "clip.mp4", 100 * 1024)))
    frame.locator("#start").click()
    frame.locator("#result:not([hidden])").wait_for(timeout=60000)
    file_id = frame.locator("#file-id").inner_text()
    done = {"type": "vod-upload-done", "fileId": file_id, "user": "embedded-user"}
    if not followed:  # nothing followed: nothing more to say
        b.page.wait_for_timeout(3000)
        assert b.page.evaluate("uploads") == [done]
        return
    # The task flow's states as the uploads function answers them, each once (the emulator ends a flow at once:
    # processing may be over before the page first asks)
    _until(b, lambda: b.page.evaluate("uploads")[-1].get("status") == "finished", "the app never heard it finish")
    heard = b.page.evaluate("uploads")
    assert heard[0] == done
    assert [m["status"] for m in heard[1:]] in (["finished"], ["processing", "finished"])
    assert all(m == {**done, "type": "vod-upload-status", "status": m["status"]} for m in heard[1:])


def test_framed_by_an_app_that_sent_no_token_the_page_says_to_sign_in_in_the_app(
    browser_stack: BrowserStack, loopback_http: Serve, tmp_path: Path
) -> None:
    b = browser_stack
    frame = _framed_by_an_app(b, loopback_http, None)
    frame.locator("#video").set_input_files(str(sample_video(tmp_path / "clip.mp4", 100 * 1024)))
    frame.locator("#start").click()
    frame.locator("#error:not(:empty)").wait_for()
    said = frame.locator("#error").inner_text()
    assert "the app has not sent your sign-in" in said and "open this page" not in said  # no link to open here
    assert b.traffic.vod_calls() == []


@pytest.mark.parametrize(
    "browser_stack", [{"preferences": {"profile": {"block_third_party_cookies": True}}}], indirect=True
)
def test_framed_by_another_site_where_the_browser_refuses_it_storage_the_page_still_uploads(
    browser_stack: BrowserStack, loopback_http: Serve, tmp_path: Path
) -> None:
    # Third-party cookies blocked (Chrome's incognito default; Safari): a framed page's storage throws, and its
    # Web Locks are refused
    b = browser_stack
    frame = _framed_by_an_app(b, loopback_http, b.stack.token("embedded-user"), another_site=True)
    refused = "() => { try { sessionStorage.length; return false } catch (error) { return true } }"
    assert frame.locator("body").evaluate(refused)  # the browser does refuse it here
    assert frame.locator("#user").inner_text() == "embedded-user"
    frame.locator("#video").set_input_files(str(sample_video(tmp_path / "clip.mp4", 100 * 1024)))
    frame.locator("#start").click()
    frame.locator("#processing[data-status]").wait_for(timeout=60000)
    assert b.stack.record(frame.locator("#file-id").inner_text()).user_id == "embedded-user"


def test_an_app_that_answers_a_refusal_with_a_refused_token_gets_one_try_of_it_not_a_loop(
    browser_stack: BrowserStack, loopback_http: Serve, tmp_path: Path
) -> None:
    # A token the sign function refuses whatever the app does (its audience or key not the deployment's, say)
    b = browser_stack
    refused = jwt.encode({"sub": "embedded-user", "exp": int(time.time()) + 600}, "not-the-key" * 4, algorithm="HS256")
    frame = _framed_by_an_app(b, loopback_http, refused)
    frame.locator("#video").set_input_files(str(sample_video(tmp_path / "clip.mp4", 100 * 1024)))
    frame.locator("#start").click()
    frame.locator("#error:not(:empty)").wait_for()
    b.page.wait_for_timeout(2000)
    # The user's try, and the page's one try of the token the app sent back: then it waits for the user
    assert b.traffic.signature_requests(b.stack.gateway_url) == 2
    assert frame.locator("#error").inner_text().endswith("Sign in again in the app. Then press Upload.")  # no link
    assert b.traffic.vod_calls() == []


def _framed_upload_refused(
    b: BrowserStack, loopback_http: Serve, tmp_path: Path, url: str, first_refused: int
) -> tuple[Any, list[Any]]:
    """An upload started in a frame whose app answers each refusal with another token, while the functions refuse
    the token at `url` from its `first_refused`th request on (as they refuse an expired one). Returns the frame and
    the requests to `url`, as they come."""
    asked: list[Any] = []
    body = json.dumps({"error": {"code": "invalid_token", "message": "invalid token: token has expired"}})
    headers = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}

    def answer(route: Any) -> None:
        asked.append(route.request)
        if len(asked) >= first_refused:
            route.fulfill(status=401, body=body, headers=headers)
        else:
            route.continue_()

    b.page.route(url, answer)
    frame = _framed_by_an_app(b, loopback_http, b.stack.token("embedded-user"))
    frame.locator("#video").set_input_files(str(sample_video(tmp_path / "clip.mp4", 100 * 1024)))
    frame.locator("#start").click()
    return frame, asked


def test_an_app_that_answers_a_refusal_at_commit_with_refused_tokens_gets_one_try_not_a_loop(
    browser_stack: BrowserStack, loopback_http: Serve, tmp_path: Path
) -> None:
    # GIVEN an upload in a frame whose token expires while the video is sent: Commit's signature (the third) and every
    # one after are refused, and the app answers each refusal with another token the functions refuse
    b = browser_stack
    frame, asked = _framed_upload_refused(b, loopback_http, tmp_path, b.stack.signature_url, 3)
    frame.locator("#error:not(:empty)").wait_for(timeout=60_000)
    b.page.wait_for_timeout(2000)
    # THEN the page tried the token the app sent back once (Commit's fourth request), then waits for the user
    assert len(asked) == 4
    assert "The video is uploaded: Upload saves it, without sending it again." in frame.locator("#error").inner_text()
    assert [action for action, _ in b.traffic.vod_calls()] == ["PrepareUploadUGC", "ApplyUploadUGC"]


def test_an_app_that_answers_a_refusal_of_the_status_with_refused_tokens_gets_one_try_not_a_loop(
    browser_stack: BrowserStack, loopback_http: Serve, tmp_path: Path
) -> None:
    # GIVEN an upload in a frame whose token the uploads function refuses (expired as the upload ends), and an app
    # that answers each refusal with another token it refuses
    b = browser_stack
    frame, asked = _framed_upload_refused(b, loopback_http, tmp_path, f"{b.stack.gateway_url}/uploads/**", 1)
    frame.locator("#file-id:not(:empty)").wait_for(timeout=60_000)
    _until(b, lambda: "sign-in was refused" in frame.locator("#processing").inner_text(), "no refusal shown")
    b.page.wait_for_timeout(2000)
    # THEN the status was asked for the upload, and once more with the token the app sent back: then no more
    assert len(asked) == 2
    said = frame.locator("#processing").inner_text()
    assert "sign-in was refused" in said and said.endswith(
        "(no longer followed here: your app finds it by its File ID)"
    )


def test_a_new_upload_shows_no_figures_of_the_last_one(browser_stack: BrowserStack, tmp_path: Path) -> None:
    # GIVEN an upload done (its meter at 100 %), and a sign function slow to answer the next (a cold start)
    b = browser_stack
    b.open(b.stack.token("page-user"))
    b.choose(sample_video(tmp_path / "first.mp4", 300 * 1024))
    b.page.click("#start")
    _wait_for_result(b)
    assert b.page.eval_on_selector("#video-progress", "e => e.value") == 100

    def slowly(route: Any) -> None:
        time.sleep(2)
        route.continue_()

    b.page.route(b.stack.signature_url, slowly)
    # WHEN another is started
    b.choose(sample_video(tmp_path / "second.mp4", 5 * MiB))
    b.page.click("#start")
    b.page.wait_for_timeout(300)
    # THEN its meter starts from nothing, not at the last one's 100 %
    assert b.page.is_visible("#progress") and b.page.inner_text("#status").startswith("Uploading second.mp4")
    assert b.page.eval_on_selector("#video-progress", "e => e.value") == 0
    assert b.page.inner_text("#video-figures") == ""
    _wait_for_result(b)


@pytest.mark.parametrize("apps_origin", [False, True], ids=["another-origin", "the-apps-own-origin"])
def test_a_token_posted_by_another_frame_than_the_embedding_app_is_ignored(
    browser_stack: BrowserStack, loopback_http: Serve, apps_origin: bool
) -> None:
    b = browser_stack
    token = b.stack.token("mallory")
    # The app frames the upload page beside a frame of another origin (an ad, say), or of its own (a widget whose
    # script is not the app's), which posts it a token: only the embedding window's are taken.
    other_page = f"""<!doctype html><script>
      let posted = 0;
      setInterval(() => {{
        parent.frames[0].postMessage({{type: "vod-upload-token", token: "{token}"}}, "*");
        document.title = "posted " + ++posted;
      }}, 100);</script>""".encode()

    def serving(body: bytes) -> Callable[[BaseHTTPRequestHandler], None]:
        def handle(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/html")
            handler.end_headers()
            handler.wfile.write(body)

        return handle

    other = "" if apps_origin else loopback_http(serving(other_page))
    parent = serving(f'<iframe src="{b.page_origin}/"></iframe><iframe src="{other}/other"></iframe>'.encode())
    app = loopback_http(lambda h: (serving(other_page) if h.path == "/other" else parent)(h))
    b.redeploy_page(UPLOAD_PAGE_FRAME_ANCESTORS=app)
    b.page.goto(f"{app}/")
    poster = next(f for f in b.page.frames if f.url.endswith("/other"))
    _until(b, lambda: poster.title().removeprefix("posted ") in {"10", "11", "12"}, "the other frame never posted")
    upload_page = b.page.frame_locator("iframe >> nth=0")
    assert upload_page.locator("#signed-in").is_hidden() and upload_page.locator("#user").inner_text() == ""


def test_the_page_is_labelled_keyboard_usable_and_fits_a_phone(browser_stack: BrowserStack, tmp_path: Path) -> None:
    b = browser_stack
    b.page.set_viewport_size({"width": 360, "height": 740})
    b.open(b.stack.token("page-user"))
    # Every control has a label; progress is announced politely, errors at once.
    assert b.page.evaluate("[...document.querySelectorAll('input, progress')].every(e => e.labels.length > 0)")
    assert b.page.get_attribute("#status", "aria-live") == "polite"
    assert b.page.get_attribute("#error", "role") == "alert"
    # Keyboard alone: Tab reaches the video input, the cover input, then the Upload button.
    focused = []
    for _ in range(3):
        b.page.keyboard.press("Tab")
        focused.append(b.page.evaluate("document.activeElement.id"))
    assert focused == ["video", "cover", "start"]
    b.page.keyboard.press("Enter")  # Upload with no file: told so, and focus goes back to the video input
    assert b.page.inner_text("#error") == "Choose a video first."
    assert b.page.evaluate("document.activeElement.id") == "video"
    # One column on a phone: nothing wider than the screen, also when a message quotes a long file name.
    assert b.page.evaluate("document.documentElement.scrollWidth") <= 360
    long_name = tmp_path / ("holiday_" * 20 + ".mp4")
    long_name.write_bytes(b"")  # an empty file: refused by name before anything is sent
    b.choose(long_name)
    b.page.click("#start")
    b.page.wait_for_selector("#error:not(:empty)")
    assert long_name.name in b.page.inner_text("#error")
    assert b.page.evaluate("document.documentElement.scrollWidth") <= 360


@pytest.fixture
def task_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOD_PROCEDURE", "LongVideoPreset")  # every upload starts a task flow (read by the stack)


def test_the_page_shows_the_task_flows_outcome(task_flow: None, browser_stack: BrowserStack, tmp_path: Path) -> None:
    b = browser_stack
    b.open(b.stack.token("page-user"))
    b.choose(sample_video(tmp_path / "clip.mp4", 200 * 1024))
    b.page.click("#start")
    # Not "uploaded": the page asks the uploads function until the task flow has an outcome.
    b.page.wait_for_selector('#processing[data-status="finished"]', timeout=90_000)
    file_id = str(b.page.inner_text("#file-id"))
    assert b.stack.record(file_id).status == "finished"
    assert "Done: Finished." in b.page.inner_text("#status")
    tasks = b.page.inner_text("#tasks")
    assert ": finished" in tasks and "processing" not in tasks
    # From the uploads function (the emulator ends its flows at once, so one answer may already be the last).
    assert any(r.url.startswith(f"{b.stack.gateway_url}/uploads/{file_id}") for r in b.traffic.requests)


@pytest.mark.parametrize("browser_stack", [{"locale": "zh-CN"}], indirect=True)
def test_a_browser_in_chinese_gets_the_page_in_chinese(
    task_flow: None, browser_stack: BrowserStack, tmp_path: Path
) -> None:
    b = browser_stack
    b.open(jwt.encode({"sub": "page-user", "exp": int(time.time()) + 600}, "not-the-key" * 4, algorithm="HS256"))
    assert b.page.evaluate("[document.documentElement.lang, document.title]") == ["zh-CN", "上传视频"]
    assert (b.page.inner_text("#start"), b.page.inner_text("label[for=cover]")) == ("上传", "封面图片（可选）")
    b.choose(sample_video(tmp_path / "clip", 1000))  # its script's words too, with what it quotes in place
    b.page.click("#start")
    assert b.page.inner_text("#error").startswith(
        "clip 没有扩展名，而视频服务需要知道文件类型：请重命名（例如 clip.mp4）"
    )
    b.choose(sample_video(tmp_path / "clip.mp4", 200 * 1024))
    b.page.click("#start")  # a refusal: the API's own reason and the request id, inside the page's words
    b.page.wait_for_selector("#error:has-text('你的登录被拒绝')")
    assert re.fullmatch(
        r"你的登录被拒绝（invalid token: [^（）；]+；请求 ID [0-9a-f-]+）。"
        r"请在应用中重新登录，然后在此标签页打开应用给出的链接。之后上传会自动继续。",
        b.page.inner_text("#error"),
    )
    b.page.goto(f"{b.page_origin}/#token={b.stack.token('page-user')}")  # the user's new link: as it said, it goes on
    b.page.wait_for_selector('#processing[data-status="finished"]', timeout=90_000)
    assert (b.page.inner_text("#status"), b.page.inner_text("#processing")) == ("最终状态：已完成。", "已完成。")
    assert re.fullmatch(r"(\S+: 已完成\n?)+", b.page.inner_text("#tasks"))  # each task's outcome in words
    assert b.page.inner_text("#error") == ""
    assert b.stack.record(str(b.page.inner_text("#file-id"))).user_id == "page-user"


def test_a_policy_refusal_is_not_taken_for_a_refused_sign_in(browser_stack: BrowserStack, tmp_path: Path) -> None:
    # A 403 of the server's policy (here: a user id too long to seal into sourceContext) is shown as such:
    # signing in again would not help, so the page does not say so (nor ask an embedding app for a new token).
    b = browser_stack
    b.open(b.stack.token("u" * 190))
    b.choose(sample_video(tmp_path / "clip.mp4", 100 * 1024))
    b.page.click("#start")
    b.page.wait_for_selector("#error:not(:empty)")
    error = b.page.inner_text("#error")
    assert "does not allow this (user id is too long" in error and "sign-in" not in error
    assert error.endswith(f"; request {_last_signature_request_id(b)}).")  # the sign function's, on its line too
    assert b.traffic.vod_calls() == []


@pytest.mark.parametrize(
    ("status", "body", "request_id", "message"),
    [
        # a 403 that is not one of the server's policy codes (an API gateway's, say): the sign-in was refused
        (
            403,
            {"error": {"code": "forbidden", "message": "not allowed"}},
            None,
            "Your sign-in was refused (not allowed).",
        ),
        # an answer with no signature in it: said, and nothing handed to the SDK
        (200, {"signature": 42}, None, "No upload signature: HTTP 200."),
        # the request id of a refusal, for the user to quote; but only one of the form the functions give
        (503, {"error": {"message": "busy"}}, "a1-b.2:c_3", "No upload signature: busy; request a1-b.2:c_3."),
        (401, {"error": {"message": "no"}}, "<b>x</b>", "Your sign-in was refused (no)."),
        (401, {"error": {"message": "no"}}, "x" * 129, "Your sign-in was refused (no)."),
    ],
    ids=["a-403-not-of-policy", "no-signature-in-the-answer", "its-request-id", "not-an-id", "too-long-an-id"],
)
def test_a_signature_answer_the_page_cannot_use_is_said_and_nothing_is_sent(
    browser_stack: BrowserStack, tmp_path: Path, status: int, body: dict[str, Any], request_id: str | None, message: str
) -> None:
    # GIVEN a sign function that answers Prepare's signature request so
    b = browser_stack
    headers = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}
    if request_id is not None:  # as the functions expose it to a page of another origin
        headers.update({"X-Request-Id": request_id, "Access-Control-Expose-Headers": "X-Request-Id"})
    b.page.route(
        b.stack.signature_url, lambda route: route.fulfill(status=status, body=json.dumps(body), headers=headers)
    )
    b.open(b.stack.token("page-user"))
    # WHEN an upload is started
    b.choose(sample_video(tmp_path / "clip.mp4", 100 * 1024))
    b.page.click("#start")
    # THEN the page says why, in its own words, and VOD is asked nothing
    b.page.wait_for_selector("#error:not(:empty)")
    assert message in b.page.inner_text("#error")
    assert b.traffic.vod_calls() == []


def test_the_page_tells_users_apart_by_the_claim_the_api_reads(browser_stack: BrowserStack) -> None:
    # Tokens an app's back end mints for its users (one sub, the app's; the user in uid): as AUTH_JWT_USER_CLAIM says
    b = browser_stack
    b.redeploy_page(AUTH_JWT_USER_CLAIM="uid")
    b.open(b.stack.token("the-app", uid="ann"))
    assert b.page.inner_text("#user") == "ann"
    b.open(b.stack.token("the-app", uid="bob"))
    assert b.page.inner_text("#user") == "bob"
    b.open(b.stack.token("carol"))  # no uid: no user the page can name
    assert b.page.is_hidden("#signed-in")


def test_without_a_status_url_the_page_shows_no_processing_it_does_not_follow(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    b = browser_stack
    b.redeploy_page(UPLOAD_PAGE_STATUS_URL="none")
    b.open(b.stack.token("page-user"))
    assert "statusUrl" in b.page.get_attribute("body", "data-config")  # the setting reached the page
    b.choose(sample_video(tmp_path / "clip.mp4", 100 * 1024))
    b.page.click("#start")
    b.page.wait_for_selector("#result:not([hidden])")
    assert b.page.inner_text("#status") == "Upload complete."
    assert b.page.is_hidden("#processing") and b.page.is_visible("#file-id")  # the row, label and value
    assert not any("/uploads" in r.url for r in b.traffic.requests)


def test_a_new_upload_stops_following_the_previous_one(browser_stack: BrowserStack, tmp_path: Path) -> None:
    # GIVEN a first upload done, its status request still on its way (held here)
    b = browser_stack
    held: list[Any] = []
    b.page.route(f"{b.stack.gateway_url}/uploads/**", lambda route: held.append(route))  # noqa: PLW0108
    b.open(b.stack.token("page-user"))
    b.choose(sample_video(tmp_path / "first.mp4", 100 * 1024))
    b.page.click("#start")
    _until(b, lambda: held, "the page did not ask for the first upload's status")
    # WHEN a second upload is under way and the first one's status then arrives ("uploaded": final)
    b.throttle(2 * MiB)
    b.choose(sample_video(tmp_path / "second.mp4", 20 * MiB))
    b.page.click("#start")
    _wait_for_progress(b, 5)
    held[0].continue_()
    b.page.wait_for_timeout(1000)
    # THEN the page still says the second one is uploading, not that something is done
    assert b.page.inner_text("#status").startswith("Uploading second.mp4") and b.page.is_visible("#pause")
    assert b.page.is_hidden("#result")


def test_a_resume_whose_sign_in_is_refused_goes_on_with_the_users_next_link(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    # GIVEN a paused upload, and the user back once the token has expired (the app's link of then, say)
    b = browser_stack
    _start_slow_upload(b, sample_video(tmp_path / "clip.mp4", 20 * MiB), 3 * MiB)
    _wait_for_a_stored_part(b)
    b.page.click("#pause")
    _until(b, lambda: not b.traffic.pending(), "still sending while paused", seconds=10)
    b.page.goto(f"{b.page_origin}/#token={b.stack.token('page-user', ttl_seconds=-3600)}")
    stored, sent = b.traffic.parts_stored(), len(b.traffic.requests)
    # WHEN Resume is refused a signature
    b.page.click("#resume")
    b.page.wait_for_selector("#error:not(:empty)")
    error = b.page.inner_text("#error")
    # THEN the page says what to do, in words that keep the upload: the app's new link in this tab
    assert (
        f"Your sign-in was refused (invalid token: token has expired; request {_last_signature_request_id(b)})" in error
    )
    assert "Sign in again in the app, then open its link in this tab. The upload then goes on" in error
    assert "reopen" not in error
    # AND the link, when it comes, goes on with the upload: only the parts COS lacks
    b.page.goto(f"{b.page_origin}/#token={b.stack.token('page-user')}")
    file_id = _wait_for_result(b)
    assert b.stack.record(file_id).user_id == "page-user" and b.page.inner_text("#error") == ""
    resent = _parts_sent_since(b, sent)
    assert resent and not resent & stored


def _last_signature_request_id(b: BrowserStack) -> str:
    """The X-Request-Id of the sign function's last answer to the page."""
    answered = [r for r in b.traffic.finished if r.url == b.stack.signature_url and r.method == "POST"]
    request_id = answered[-1].response().headers["x-request-id"]
    assert request_id
    return str(request_id)


def _cut_off_mid_upload(b: BrowserStack, video: Path) -> None:
    """Upload `video` as page-user until COS has a part, then the device goes offline; once the page says so."""
    _start_slow_upload(b, video, 3 * MiB)
    _wait_for_a_stored_part(b)
    b.go_offline()
    b.page.wait_for_selector("#error:not(:empty)", timeout=90_000)


def test_an_upload_cut_off_by_a_lost_connection_goes_on_when_it_is_back(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    b = browser_stack
    _cut_off_mid_upload(b, sample_video(tmp_path / "clip.mp4", 20 * MiB))
    assert b.page.inner_text("#error") == (
        "The connection was lost: the upload goes on from where it stopped once it is back."
    )
    b.page.wait_for_timeout(1000)
    stored, sent = b.traffic.parts_stored(), len(b.traffic.requests)
    b.go_offline(False)
    file_id = _wait_for_result(b)  # with no click
    assert b.stack.record(file_id).user_id == "page-user"
    assert "vodSessionKey" in b.traffic.applies()[-1]
    assert stored and not _parts_sent_since(b, sent) & stored  # what COS had is not sent again


def test_another_file_chosen_after_a_lost_connection_is_not_dropped_when_it_is_back(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    b = browser_stack
    _cut_off_mid_upload(b, sample_video(tmp_path / "first.mp4", 20 * MiB))
    b.choose(sample_video(tmp_path / "second.mp4", 100 * 1024))
    calls = len(b.traffic.vod_calls())
    b.go_offline(False)
    b.page.wait_for_timeout(1500)
    # The choice stands: nothing goes on by itself, and Upload sends the file chosen
    assert len(b.traffic.vod_calls()) == calls and b.page.evaluate("document.getElementById('video').files.length") == 1
    b.page.click("#start")
    assert b.stack.record(_wait_for_result(b)).name == "second"


@pytest.mark.parametrize("first_retry", ["succeeds", "fails at Apply", "loses one Apply"])
def test_a_failed_upload_never_says_all_was_sent_and_trying_again_goes_on(
    browser_stack: BrowserStack, tmp_path: Path, first_retry: str
) -> None:
    # GIVEN an upload under way, every word of the live region kept; 8 parts, of which a browser sends 6 at
    # once (its limit of connections to one host): the last two are still to go
    b = browser_stack
    video = sample_video(tmp_path / "cut.mp4", 60 * MiB)
    _start_slow_upload(b, video, 8 * MiB)
    b.page.evaluate(
        """window.said = [];
        for (const id of ["status", "progress-said"]) {  // what the page says, and its spoken progress
          const region = document.getElementById(id);
          new MutationObserver(() => window.said.push(region.textContent)).observe(region, {childList: true});
        }"""
    )
    _wait_for_progress(b, 5)
    # WHEN COS can no longer be reached (the parts under way end; the rest, and the SDK's retries, fail)
    cos = re.compile(r"https?://[^/]*\.cos\.[^/]*/.*")
    b.page.route(cos, lambda route: route.abort())
    b.page.wait_for_selector("#error:not(:empty)", timeout=150_000)
    # THEN the page said it failed, never that the video was all sent, and shows no meter at "100%"
    said = b.page.evaluate("window.said")
    assert "The upload failed" in b.page.inner_text("#error")
    assert "goes on from where it stopped" in b.page.inner_text("#error")
    assert not any("100%" in text or "Video uploaded" in text for text in said), said
    assert b.page.is_hidden("#progress")
    # AND WHEN COS is back and the user tries again (the same file, still chosen), maybe while VOD's upload
    # API cannot be reached for a moment (that retry fails before any part is sent)
    b.page.unroute(cos)
    if first_retry == "fails at Apply":
        vod = re.compile(r"https://vod2\.(qcloud|dnsv1)\.com/.*")
        b.page.route(vod, lambda route: route.abort())
        b.page.click("#start")  # clears the message at once
        b.page.wait_for_selector("#error:not(:empty)", timeout=60_000)
        assert "goes on from where it stopped" in b.page.inner_text("#error")
        b.page.unroute(vod)
    elif first_retry == "loses one Apply":  # a blip: the SDK's second try of Apply gets through
        lost: list[str] = []

        def lose_first_apply(route: Any) -> None:
            if "ApplyUploadUGC" in route.request.url and not lost:
                lost.append(route.request.url)
                route.abort()
            else:
                route.continue_()

        b.page.route(re.compile(r"https://vod2\.(qcloud|dnsv1)\.com/.*"), lose_first_apply)
    stored_before = b.traffic.parts_stored()
    sent_before = len(b.traffic.requests)
    b.page.click("#start")
    file_id = _wait_for_result(b)
    # THEN the same VOD session goes on, and the parts COS had are not sent again
    assert "vodSessionKey" in b.traffic.applies()[-1]
    resent = _parts_sent_since(b, sent_before)
    assert stored_before and resent and not resent & stored_before
    assert b.stack.record(file_id).user_id == "page-user"


def _commit_signature_fails(
    b: BrowserStack, tmp_path: Path, status: int, code: str, message: str, times: int = 1
) -> list[str]:
    """Upload a 20 MB video as page-user while the sign function answers `status` to Commit's signature request
    (the third, after Prepare's and Apply's) and the `times - 1` after it; returns the requests, once the page
    has said why it stopped."""
    asked: list[str] = []

    def signature(route: Any) -> None:
        asked.append(route.request.url)
        if 3 <= len(asked) < 3 + times:
            body = json.dumps({"error": {"code": code, "message": message}})
            route.fulfill(status=status, body=body, headers={"Content-Type": "application/json"})
        else:
            route.continue_()

    b.page.route(b.stack.signature_url, lambda route: signature(route))  # noqa: PLW0108
    b.open(b.stack.token("page-user"))
    b.choose(sample_video(tmp_path / "clip.mp4", 20 * MiB))
    b.page.click("#start")
    b.page.wait_for_selector("#error:not(:empty)", timeout=90_000)
    return asked


@pytest.mark.parametrize("refused", [1, 2], ids=["once", "again with an old link"])
def test_a_sign_in_refused_at_commit_is_committed_with_the_next_token_not_sent_again(
    browser_stack: BrowserStack, tmp_path: Path, refused: int
) -> None:
    # GIVEN an upload whose token expires while the video is sent: Commit's signature (the third) is refused
    b = browser_stack
    asked = _commit_signature_fails(b, tmp_path, 401, "invalid_token", "invalid token: expired", times=refused)
    assert "sign-in was refused" in b.page.inner_text("#error")
    assert "The video is uploaded" in b.page.inner_text("#error")
    sent = len(b.traffic.part_puts(".mp4"))
    if refused == 2:  # a link that is refused too: the upload still waits for the next
        b.page.goto(f"{b.page_origin}/#token={b.stack.token('page-user')}")
        _until(b, lambda: len(asked) == 4 and "The video is uploaded" in b.page.inner_text("#error"), "not kept")
    # WHEN the same user's new link is opened in the tab (what the message asks for)
    b.page.goto(f"{b.page_origin}/#token={b.stack.token('page-user')}")
    # THEN the upload is committed, as that user, and nothing of the video is sent again
    file_id = _wait_for_result(b)
    assert b.stack.record(file_id).user_id == "page-user" and b.page.inner_text("#error") == ""
    assert len(b.traffic.part_puts(".mp4")) == sent
    assert [action for action, _ in b.traffic.vod_calls()] == ["PrepareUploadUGC", "ApplyUploadUGC", "CommitUploadUGC"]


def test_a_signature_that_fails_at_commit_is_committed_by_upload_not_sent_again(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    # GIVEN an upload whose Commit gets no signature: the sign function is down for a moment (a 503)
    b = browser_stack
    _commit_signature_fails(b, tmp_path, 503, "store_unavailable", "temporarily unavailable")
    assert "The video is uploaded: Upload saves it, without sending it again" in b.page.inner_text("#error")
    sent = len(b.traffic.part_puts(".mp4"))
    # WHEN the user clicks Upload again, the same file still chosen (what the message asks for)
    b.page.click("#start")
    # THEN the upload is committed, and nothing of the video is sent again
    file_id = _wait_for_result(b)
    assert b.stack.record(file_id).user_id == "page-user" and b.page.inner_text("#error") == ""
    assert len(b.traffic.part_puts(".mp4")) == sent
    assert [action for action, _ in b.traffic.vod_calls()] == ["PrepareUploadUGC", "ApplyUploadUGC", "CommitUploadUGC"]


@pytest.mark.parametrize(
    ("offline", "message"),
    [
        (False, "The video is uploaded: Upload saves it, without sending it again."),
        (True, "The connection was lost. The video is uploaded: it is saved once the connection is back."),
    ],
    ids=["VOD unreachable: Upload commits it", "the device offline: being back commits it"],
)
def test_a_commit_that_cannot_reach_vod_is_committed_later_not_sent_again(
    browser_stack: BrowserStack, tmp_path: Path, offline: bool, message: str
) -> None:
    # GIVEN an upload all in COS whose Commit cannot reach VOD (the SDK's retries, on both hosts, fail too), or
    # whose device goes offline as Commit is sent
    b = browser_stack
    commit = re.compile(r"https://vod2\.(qcloud|dnsv1)\.com/.*CommitUploadUGC.*")

    def cut_off(route: Any) -> None:
        if offline:
            b.go_offline()
        route.abort("internetdisconnected" if offline else "failed")

    b.page.route(commit, cut_off)
    b.open(b.stack.token("page-user"))
    b.choose(sample_video(tmp_path / "clip.mp4", 20 * MiB))
    b.page.click("#start")
    b.page.wait_for_selector("#error:not(:empty)", timeout=90_000)
    assert message in b.page.inner_text("#error")
    sent = len(b.traffic.part_puts(".mp4"))
    # WHEN VOD can be reached again: the user clicks Upload, the same file still chosen; or the device is back
    b.page.unroute(commit)
    if offline:
        b.go_offline(False)  # and nothing more
    else:
        b.page.click("#start")
    # THEN the upload is committed, and nothing of the video is sent again (no new Apply either)
    file_id = _wait_for_result(b)
    assert b.stack.record(file_id).user_id == "page-user" and b.page.inner_text("#error") == ""
    assert len(b.traffic.part_puts(".mp4")) == sent
    assert [action for action, _ in b.traffic.vod_calls() if action != "CommitUploadUGC"] == [
        "PrepareUploadUGC",
        "ApplyUploadUGC",
    ]


def _status_answers(b: BrowserStack, answers: list[tuple[int, str]]) -> list[Any]:
    """The uploads function's answers to the page's status requests, in turn (the last again and again): a
    status (200: that upload status, no tasks) and an ETag. Returns the requests, as they come."""
    asked: list[Any] = []

    def answer(route: Any) -> None:
        asked.append(route.request)
        code, status = answers[min(len(asked), len(answers)) - 1]
        file_id = route.request.url.split("?")[0].rsplit("/", 1)[-1]
        body = {"fileId": file_id, "status": status, "tasks": []} if code == 200 else {"error": {"code": "x"}}
        headers = {"Content-Type": "application/json", "ETag": '"e1"', "Access-Control-Allow-Origin": "*"}
        route.fulfill(status=code, body="" if code == 304 else json.dumps(body), headers=headers)

    b.page.route(f"{b.stack.gateway_url}/uploads/**", lambda route: answer(route))  # noqa: PLW0108
    return asked


def test_the_status_shown_again_after_an_outage_of_the_status_service(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    # GIVEN an upload being processed, whose status service is down for one answer, then has nothing new (304)
    b = browser_stack
    asked = _status_answers(b, [(200, "processing"), (503, ""), (304, "")])
    b.open(b.stack.token("page-user"))
    b.choose(sample_video(tmp_path / "clip.mp4", 100 * 1024))
    b.page.click("#start")
    _until(b, lambda: len(asked) >= 2, "the page did not ask again")
    # THEN once the service answers again, the page says the upload's status, not the outage
    _until(b, lambda: len(asked) >= 4, "the page stopped asking")
    assert b.page.inner_text("#processing") == "Processing…"


@pytest.mark.parametrize(("code", "retry_after"), [(503, None), (404, None), (429, "7")])
def test_status_answers_that_are_not_a_status_are_asked_again_ever_more_slowly(
    browser_stack: BrowserStack, tmp_path: Path, code: int, retry_after: str | None
) -> None:
    # GIVEN a status service that is down, throttling (saying when to come back), or has no record (a callback
    # not set up): the same answer every time
    b = browser_stack
    times: list[float] = []

    def answer(route: Any) -> None:
        times.append(time.monotonic())
        headers = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}
        if retry_after:
            headers |= {"Retry-After": retry_after, "Access-Control-Expose-Headers": "Retry-After"}
        route.fulfill(status=code, body=json.dumps({"error": {"code": "x"}}), headers=headers)

    b.page.route(f"{b.stack.gateway_url}/uploads/**", answer)
    b.open(b.stack.token("page-user"))
    b.choose(sample_video(tmp_path / "clip.mp4", 100 * 1024))
    b.page.click("#start")
    # THEN the page asks again after longer and longer waits (or after the one asked for), never every 2 s
    _until(b, lambda: len(times) >= (2 if retry_after else 4), "the page stopped asking", seconds=90)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    if retry_after:
        assert gaps[0] >= float(retry_after) - 0.5, gaps
    else:
        assert gaps[2] >= 1.8 * gaps[0] and gaps[2] >= 6, gaps


@pytest.mark.parametrize(
    "first", ["<html>Sign in to the Wi-Fi first</html>", '{"fileId": "f"}'], ids=["a-portals-page", "not-an-upload"]
)
def test_a_200_that_is_not_the_status_services_answer_is_asked_again(
    browser_stack: BrowserStack, tmp_path: Path, first: str
) -> None:
    # GIVEN a status request answered 200 by something else (a captive portal, a proxy), then by the service
    b = browser_stack
    asked: list[Any] = []

    def answer(route: Any) -> None:
        asked.append(route.request)
        file_id = route.request.url.split("?")[0].rsplit("/", 1)[-1]
        body = first if len(asked) == 1 else json.dumps({"fileId": file_id, "status": "processing", "tasks": []})
        headers = {"Content-Type": "text/html", "ETag": '"e1"', "Access-Control-Allow-Origin": "*"}
        route.fulfill(status=200, body=body, headers=headers)

    b.page.route(f"{b.stack.gateway_url}/uploads/**", answer)
    b.open(b.stack.token("page-user"))
    b.choose(sample_video(tmp_path / "clip.mp4", 100 * 1024))
    b.page.click("#start")
    # THEN the page asks again, as after an outage, and shows the status
    _until(b, lambda: b.page.inner_text("#processing") == "Processing…", b.page.inner_text("#processing"))
    assert len(asked) >= 2


def test_another_users_link_after_an_upload_stops_following_it(browser_stack: BrowserStack, tmp_path: Path) -> None:
    # GIVEN page-user's upload done, its task flow followed (still processing)
    b = browser_stack
    asked = _status_answers(b, [(200, "processing")])
    b.open(b.stack.token("page-user"))
    b.choose(sample_video(tmp_path / "clip.mp4", 100 * 1024))
    b.page.click("#start")
    _until(b, lambda: asked, "the page did not follow the upload")
    # WHEN another user's link is opened in the tab
    b.page.goto(f"{b.page_origin}/#token={b.stack.token('someone-else')}")
    b.page.wait_for_timeout(3000)
    # THEN the first user's upload is neither shown nor asked after with the other user's token
    assert b.page.is_hidden("#result")
    askers = [jwt.decode(r.headers["authorization"].split()[1], options={"verify_signature": False}) for r in asked]
    assert {claims["sub"] for claims in askers} == {"page-user"}


def _stopped_by_a_refused_sign_in(b: BrowserStack, tmp_path: Path, refused: str) -> None:
    """page-user's upload stopped where the same user's next link would take it up again: its `refused` request
    ("signature": Prepare's, the token expired; "commit": Commit's signature; "status": the status of the upload
    done), once the page has said so."""
    if refused == "signature":
        b.open(b.stack.token("page-user", ttl_seconds=-3600))
        b.choose(sample_video(tmp_path / "clip.mp4", 100 * 1024))
        b.page.click("#start")
        _until(b, lambda: "The upload then goes on" in b.page.inner_text("#error"), "not refused")
    elif refused == "commit":
        _commit_signature_fails(b, tmp_path, 401, "invalid_token", "invalid token: expired")
        assert "a new sign-in in this tab saves it" in b.page.inner_text("#error")
    else:
        _status_first_refused(b, tmp_path)


def _status_first_refused(b: BrowserStack, tmp_path: Path) -> list[str]:
    """An upload done, whose first status request is refused (page-user's token expired meanwhile), once the page
    has said so; the status requests asked, as they come."""
    asked: list[str] = []

    def status(route: Any) -> None:
        asked.append(route.request.url)
        if len(asked) == 1:
            body = '{"error": {"code": "invalid_token", "message": "invalid token: expired"}}'
            route.fulfill(status=401, body=body, headers={"Content-Type": "application/json"})
        else:
            route.continue_()

    b.page.route(f"{b.stack.gateway_url}/uploads/**", lambda route: status(route))  # noqa: PLW0108
    b.open(b.stack.token("page-user"))
    b.choose(sample_video(tmp_path / "clip.mp4", 100 * 1024))
    b.page.click("#start")
    _until(b, lambda: "sign-in was refused" in b.page.inner_text("#processing"), "the refusal was not shown")
    return asked


@pytest.mark.parametrize("refused", ["signature", "commit", "status"])
def test_another_users_link_does_not_take_up_what_the_previous_users_refused_sign_in_stopped(
    browser_stack: BrowserStack, tmp_path: Path, refused: str
) -> None:
    # GIVEN page-user's upload stopped by a refused sign-in (an expired token), waiting for page-user's next link
    b = browser_stack
    _stopped_by_a_refused_sign_in(b, tmp_path, refused)
    since = len(b.traffic.requests)
    # WHEN another user's link is opened in the tab instead
    b.page.goto(f"{b.page_origin}/#token={b.stack.token('someone-else')}")
    _until(b, lambda: b.page.inner_text("#user") == "someone-else", "the link was not taken")
    b.page.wait_for_timeout(2000)  # what the link set going would be asked now
    # THEN nothing of page-user's upload goes on with that user's token: no signature, no VOD call, no status
    later = [r.url for r in b.traffic.requests[since:] if r.url.startswith(b.stack.gateway_url) or "UGC" in r.url]
    assert later == []
    assert b.stack.records("someone-else") == []
    assert b.page.is_hidden("#result")


@pytest.mark.parametrize("final", ["uploaded", "finished", "failed", "deleted"])
def test_a_final_status_is_not_asked_again(browser_stack: BrowserStack, tmp_path: Path, final: str) -> None:
    # GIVEN an upload whose status the uploads function says is final at once
    b = browser_stack
    asked = _status_answers(b, [(200, final)])
    b.open(b.stack.token("page-user"))
    b.choose(sample_video(tmp_path / "clip.mp4", 100 * 1024))
    b.page.click("#start")
    _until(b, lambda: asked, "the page did not follow the upload")
    # WHEN the page has had time to ask again (an answer that came at once is asked again after 2 s)
    b.page.wait_for_timeout(3000)
    # THEN it said the outcome, and asked once only
    assert b.page.get_attribute("#processing", "data-status") == final
    assert b.page.inner_text("#status").startswith("Done: ")
    assert len(asked) == 1, [r.url for r in asked]


_MARKUP = '<img src=x onerror="window.injected=1"><b>bold</b>'


@pytest.mark.parametrize("where", ["the token's user", "the upload's status", "a task's message"])
def test_words_from_the_link_and_the_status_service_are_shown_as_text_never_as_markup(
    browser_stack: BrowserStack, tmp_path: Path, where: str
) -> None:
    # GIVEN markup where the page shows words it did not write: a link can carry anyone's token (its `sub` is
    # shown), and the status service's words come from VOD's task flow
    b = browser_stack
    if where == "the token's user":
        b.open(b.stack.token(_MARKUP))
        shown = "#user"
    else:
        status = _MARKUP if where == "the upload's status" else "failed"
        task = {"taskId": "t1", "status": "failed", "message": _MARKUP}

        def answer(route: Any) -> None:
            file_id = route.request.url.split("?")[0].rsplit("/", 1)[-1]
            body = {"fileId": file_id, "status": status, "tasks": [task]}
            headers = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}
            route.fulfill(status=200, body=json.dumps(body), headers=headers)

        b.page.route(f"{b.stack.gateway_url}/uploads/**", answer)
        b.open(b.stack.token("page-user"))
        b.choose(sample_video(tmp_path / "clip.mp4", 100 * 1024))
        b.page.click("#start")
        b.page.wait_for_selector("#processing[data-status]", timeout=90_000)
        shown = "#processing" if where == "the upload's status" else "#tasks"
    b.page.wait_for_timeout(500)  # an image's error handler would have run
    # THEN the words are shown as written, and none of them became an element or ran
    assert _MARKUP in b.page.inner_text(shown)
    assert b.page.eval_on_selector(shown, "e => e.querySelectorAll('img, b').length") == 0
    assert b.page.evaluate("window.injected") is None


@pytest.mark.parametrize("browser_stack", [{"credential_ttl_seconds": 20}], indirect=True)  # renewed at ~18 s
@pytest.mark.parametrize("failure", ["refused", "unreachable", "apply-lost", "apply-unreachable"])
def test_an_upload_whose_cos_keys_cannot_be_renewed_pauses_and_goes_on(
    browser_stack: BrowserStack, tmp_path: Path, failure: str
) -> None:
    # GIVEN an upload that outlives its COS keys, and the signature for new ones refused (the token expired) or
    # unreachable (a network blip), or the renewal's ApplyUploadUGC lost and then the signature unreachable
    # (the SDK then forgets its session), or VOD unreachable for every try of that Apply: the SDK would wait for
    # them for ever
    b = browser_stack
    asked: list[str] = []
    applies: list[str] = []
    failing = [True]

    def signature(route: Any) -> None:
        asked.append(route.request.url)
        # after Prepare's and Apply's: the renewal's (after the renewal's, for apply-lost)
        if len(asked) >= (4 if failure == "apply-lost" else 3) and failing[0] and failure != "apply-unreachable":
            if failure != "refused":
                route.abort()
                return
            body = '{"error": {"code": "invalid_token", "message": "invalid token: expired"}}'
            route.fulfill(status=401, body=body, headers={"Content-Type": "application/json"})
        else:
            route.continue_()

    def vod(route: Any) -> None:
        if "ApplyUploadUGC" in route.request.url:
            applies.append(route.request.url)
            renewal = len(applies) >= 2
            if renewal and (
                (failure == "apply-lost" and len(applies) == 2) or (failure == "apply-unreachable" and failing[0])
            ):
                route.abort()
                return
        route.continue_()

    b.page.route(b.stack.signature_url, lambda route: signature(route))  # noqa: PLW0108
    b.page.route(re.compile(r"https://vod2\.(qcloud|dnsv1)\.com/.*"), lambda route: vod(route))  # noqa: PLW0108
    b.open(b.stack.token("page-user"))
    b.throttle(1 * MiB)
    b.choose(sample_video(tmp_path / "clip.mp4", 24 * MiB))
    b.page.click("#start")
    # THEN it is paused, saying why and what goes on with it
    b.page.wait_for_selector("#resume:not([hidden])", timeout=90_000)
    error = b.page.inner_text("#error")
    said = "sign-in was refused" if failure == "refused" else "cannot be reached"
    assert said in error and "The upload is paused" in error, error
    stored = b.traffic.parts_stored()
    # WHEN the same user's new link arrives, or Resume is pressed
    failing[0] = False
    b.throttle(-1)
    if failure == "refused":
        b.page.goto(f"{b.page_origin}/#token={b.stack.token('page-user')}")
    else:
        b.page.click("#resume")
    # THEN it finishes, as that user, without sending again what COS had
    file_id = _wait_for_result(b)
    assert b.stack.record(file_id).user_id == "page-user" and b.page.inner_text("#error") == ""
    puts = b.traffic.part_puts(".mp4")
    assert stored and all(puts.count(number) == 1 for number in stored), (sorted(stored), puts)


@pytest.mark.parametrize("browser_stack", [{"credential_ttl_seconds": 20}], indirect=True)  # renewed at ~18 s
def test_another_users_link_does_not_resume_an_upload_paused_for_a_refused_renewal(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    # GIVEN page-user's upload paused: the signature for its new COS keys was refused (the token expired)
    b = browser_stack
    asked: list[str] = []

    def signature(route: Any) -> None:
        asked.append(route.request.headers.get("authorization", ""))
        if len(asked) >= 3:  # after Prepare's and Apply's: the renewal's, and any after it
            body = '{"error": {"code": "invalid_token", "message": "invalid token: expired"}}'
            route.fulfill(status=401, body=body, headers={"Content-Type": "application/json"})
        else:
            route.continue_()

    b.page.route(b.stack.signature_url, lambda route: signature(route))  # noqa: PLW0108
    b.open(b.stack.token("page-user"))
    b.throttle(1 * MiB)
    b.choose(sample_video(tmp_path / "clip.mp4", 24 * MiB))
    b.page.click("#start")
    b.page.wait_for_selector("#resume:not([hidden])", timeout=90_000)
    before = len(asked)
    # WHEN another user's link is opened in the tab
    b.page.goto(f"{b.page_origin}/#token={b.stack.token('someone-else')}")
    _until(b, lambda: b.page.inner_text("#user") == "someone-else", "the link was not taken")
    b.page.wait_for_timeout(2000)
    # THEN the upload stays paused: nothing of it is signed for that user (VOD would credit it to page-user)
    assert len(asked) == before and b.page.is_visible("#resume")


@pytest.mark.parametrize("browser_stack", [{"credential_ttl_seconds": 20}], indirect=True)  # renewed at ~18 s
def test_a_blip_during_parallel_renewals_does_not_pause(browser_stack: BrowserStack, tmp_path: Path) -> None:
    # GIVEN an upload whose parts ask for new COS keys at once (each its own Apply, with its own tries), and VOD
    # unreachable for 2.5 s from the first of them: more failures in all than one Apply's tries, none used up
    b = browser_stack
    blip: list[float] = []
    applies: list[bool] = []

    def vod(route: Any) -> None:
        if "ApplyUploadUGC" in route.request.url:
            if applies and not blip:
                blip.append(time.monotonic())
            lost = bool(blip) and time.monotonic() - blip[0] < 2.5
            applies.append(lost)
            if lost:
                route.abort()
                return
        route.continue_()

    b.page.route(re.compile(r"https://vod2\.(qcloud|dnsv1)\.com/.*"), lambda route: vod(route))  # noqa: PLW0108
    b.open(b.stack.token("page-user"))
    b.throttle(2 * MiB)
    b.choose(sample_video(tmp_path / "clip.mp4", 80 * MiB))
    b.page.click("#start")
    _until(b, lambda: blip, "no renewal", seconds=90)
    b.page.wait_for_timeout(6000)
    # THEN the upload goes on by itself: no pause, no message
    assert b.page.is_hidden("#resume") and b.page.inner_text("#error") == "", b.page.inner_text("#error")
    b.throttle(-1)
    file_id = _wait_for_result(b)
    # (lost: three or more; in a quiet run more than one Apply's four tries, as several renewals run at once)
    assert b.stack.record(file_id).user_id == "page-user" and applies.count(True) >= 3


def _upload_until_renewal(
    b: BrowserStack, video: Path, lose: Callable[[int], str | None]
) -> tuple[list[str], list[Any]]:
    """Upload `video` as page-user at 1 MiB/s (COS keys of 20 s: renewed mid-upload) until the renewal's
    ApplyUploadUGC (the second) is asked. `lose(n)` says what becomes of the n-th Apply: "abort", "hold" (kept
    until the test lets it go on), or None (through). Returns the Apply bodies, as they come, and those held."""
    bodies: list[str] = []
    held: list[Any] = []

    def vod(route: Any) -> None:
        if "ApplyUploadUGC" in route.request.url:
            bodies.append(route.request.post_data or "")
            fate = lose(len(bodies))
            if fate == "abort":
                route.abort()
                return
            if fate == "hold":
                held.append(route)
                return
        route.continue_()

    b.page.route(re.compile(r"https://vod2\.(qcloud|dnsv1)\.com/.*"), lambda route: vod(route))  # noqa: PLW0108
    b.open(b.stack.token("page-user"))
    b.throttle(1 * MiB)
    b.choose(video)
    b.page.click("#start")
    _until(b, lambda: len(bodies) >= 2, "no renewal", seconds=60)
    return bodies, held


@pytest.mark.parametrize("browser_stack", [{"credential_ttl_seconds": 20}], indirect=True)  # renewed at ~18 s
def test_cancel_while_the_sdk_retries_a_renewal_leaves_nothing_to_resume(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    # GIVEN an upload whose renewal's ApplyUploadUGC (the second Apply) is lost: the SDK tries it again in a second
    b = browser_stack
    applies, _ = _upload_until_renewal(
        b, sample_video(tmp_path / "clip.mp4", 24 * MiB), lambda n: "abort" if n == 2 else None
    )
    # WHEN the user cancels before that retry, which then succeeds
    b.page.click("#cancel")
    _until(b, lambda: len(applies) >= 3, "no retry")
    b.page.wait_for_timeout(1000)
    # THEN no session is left saved: the next upload of that file starts afresh, as Cancel promised
    saved = "Object.keys(localStorage).filter((key) => key.startsWith('webugc_'))"
    assert b.page.evaluate(saved) == []


@pytest.mark.parametrize("browser_stack", [{"credential_ttl_seconds": 20}], indirect=True)  # renewed at ~18 s
def test_a_cancelled_uploads_late_apply_leaves_a_new_upload_of_the_file_its_session(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    # GIVEN an upload cancelled while the SDK retries its renewal's Apply (the retry held back), and the same
    # file uploaded again (its session saved under the same name: the file's name and size)
    b = browser_stack
    video = sample_video(tmp_path / "clip.mp4", 24 * MiB)
    bodies, held = _upload_until_renewal(b, video, {2: "abort", 3: "hold"}.get)
    b.page.click("#cancel")
    _until(b, lambda: held, "no retry", seconds=10)
    b.choose(video)
    b.page.click("#start")
    _until(b, lambda: b.page.is_visible("#pause"), "the new upload is not under way", seconds=10)
    # WHEN the cancelled upload's retry then succeeds (saving its session), and the new upload is paused and resumed
    held[0].continue_()
    b.page.wait_for_timeout(1000)
    b.page.click("#pause")
    b.page.click("#resume")
    # THEN the new upload goes on in its own session, not a new one
    _until(b, lambda: len(bodies) >= 5, "no Apply for the resume", seconds=10)
    assert "vodSessionKey" in bodies[-1]


@pytest.mark.parametrize("browser_stack", [{"credential_ttl_seconds": 20}], indirect=True)  # renewed at ~18 s
def test_another_users_resume_is_not_given_the_paused_uploads_session_by_its_late_apply(
    browser_stack: BrowserStack, tmp_path: Path
) -> None:
    # GIVEN page-user's upload paused while the SDK retries its renewal's Apply (the retry held back), then another
    # user's link opened in the tab, who presses Resume (their signature held back a while)
    b = browser_stack
    held_signatures: list[Any] = []

    def signature(route: Any) -> None:
        bearer = (route.request.headers.get("authorization") or "").removeprefix("Bearer ")
        user = jwt.decode(bearer, options={"verify_signature": False})["sub"] if bearer else None
        if user == "someone-else" and not released:
            held_signatures.append(route)
        else:
            route.continue_()

    released = False
    b.page.route(b.stack.signature_url, signature)
    bodies, held = _upload_until_renewal(b, sample_video(tmp_path / "clip.mp4", 24 * MiB), {2: "abort", 3: "hold"}.get)
    _until(b, lambda: held, "no retry", seconds=10)
    b.page.click("#pause")
    b.page.goto(f"{b.page_origin}/#token={b.stack.token('someone-else')}")
    _until(b, lambda: b.page.inner_text("#user") == "someone-else", "the link was not taken")
    b.page.click("#resume")
    _until(b, lambda: held_signatures, "no signature asked for someone-else", seconds=10)
    # WHEN page-user's late Apply succeeds (the SDK saves its session under the file's name) before theirs
    held[0].continue_()
    b.page.wait_for_timeout(500)
    released = True
    for route in held_signatures:
        route.continue_()
    b.throttle(-1)
    # THEN someone-else's upload is a session of their own: the file is theirs
    file_id = _wait_for_result(b)
    assert b.stack.record(file_id).user_id == "someone-else"
    assert "vodSessionKey" not in json.loads(bodies[-1])


def test_another_users_sign_in_forgets_the_saved_sessions_at_once(browser_stack: BrowserStack) -> None:
    # GIVEN a browser holding alice's paused upload (its VOD session, the COS SDK's record of its parts: digests of
    # her file and the multipart upload's id, and whose it is)
    b = browser_stack
    b.open(b.stack.token("alice"))
    b.page.evaluate(
        "() => { localStorage.setItem('vod-upload-owner', 'sub:alice'); localStorage.setItem('webugc_1', 'k');"
        " localStorage.setItem('cos_sdk_upload_cache', JSON.stringify([['digest', 'upload-id', 1796655333]])) }"
    )
    # WHEN bob's link is opened THEN neither stays, at once: not only once bob starts an upload
    b.page.goto(f"{b.page_origin}/#token={b.stack.token('bob')}")
    saved = "() => JSON.stringify(Object.entries(localStorage).sort())"
    _until(b, lambda: b.page.evaluate(saved) == '[["vod-upload-owner","sub:bob"]]', b.page.evaluate(saved), seconds=10)


@pytest.mark.parametrize("browser_stack", [{"credential_ttl_seconds": 20}], indirect=True)  # renewed at ~18 s
def test_pause_while_the_sdk_retries_a_renewal_keeps_the_session(browser_stack: BrowserStack, tmp_path: Path) -> None:
    # GIVEN an upload whose renewal's ApplyUploadUGC cannot reach VOD (each of the SDK's tries forgets the session)
    b = browser_stack
    failing = [True]
    video = sample_video(tmp_path / "clip.mp4", 24 * MiB)
    applies, _ = _upload_until_renewal(b, video, lambda n: "abort" if n >= 2 and failing[0] else None)
    # WHEN the user pauses it while the SDK still tries, and resumes once VOD is back
    b.page.click("#pause")
    _until(b, lambda: len(applies) >= 5, "the SDK stopped trying")
    b.page.wait_for_timeout(500)
    failing[0] = False
    b.throttle(-1)
    stored = b.traffic.parts_stored()
    b.page.click("#resume")
    # THEN it goes on in the same VOD session, without sending again what COS had
    file_id = _wait_for_result(b)
    assert b.stack.record(file_id).user_id == "page-user"
    assert "vodSessionKey" in b.traffic.applies()[-1]
    puts = b.traffic.part_puts(".mp4")
    assert stored and all(puts.count(number) == 1 for number in stored), (sorted(stored), puts)


@pytest.mark.parametrize("meanwhile", ["nothing", "another upload"])
def test_following_resumes_when_a_new_token_of_the_same_user_arrives(
    task_flow: None, browser_stack: BrowserStack, tmp_path: Path, meanwhile: str
) -> None:
    # GIVEN an upload whose status the uploads function refuses: the page's token has expired meanwhile
    b = browser_stack
    asked = _status_first_refused(b, tmp_path)
    refused = str(b.page.inner_text("#file-id"))
    if meanwhile == "another upload":  # followed to its end: the refused one is no longer the page's
        b.choose(sample_video(tmp_path / "next.mp4", 100 * 1024))
        b.page.click("#start")
        _until(b, lambda: b.page.inner_text("#file-id") != refused, "the second upload did not finish")
        b.page.wait_for_selector('#processing[data-status="finished"]', timeout=60_000)
    shown = str(b.page.inner_text("#file-id"))
    # WHEN the same user's new link is opened in the tab (what the message asks for)
    b.page.goto(f"{b.page_origin}/#token={b.stack.token('page-user')}")
    # THEN the page follows the upload it shows to its outcome, and only that one
    b.page.wait_for_selector('#processing[data-status="finished"]', timeout=60_000)
    b.page.wait_for_timeout(1000)
    assert str(b.page.inner_text("#file-id")) == shown
    assert [url for url in asked if refused in url][1:] == ([] if meanwhile == "another upload" else asked[1:])


def test_keyboard_focus_follows_the_controls(browser_stack: BrowserStack, tmp_path: Path) -> None:
    # Each button hides as the state changes: its focus goes to the control that replaces it, not to the page.
    b = browser_stack
    _start_slow_upload(b, sample_video(tmp_path / "clip.mp4", 20 * MiB), 2 * MiB)
    b.page.wait_for_selector("#pause:not([hidden])")
    focused = [b.page.evaluate("document.activeElement.id")]
    for key_on, then in (("pause", "#resume"), ("resume", "#pause")):
        b.page.focus(f"#{key_on}")
        b.page.keyboard.press("Enter")
        b.page.wait_for_selector(f"{then}:not([hidden])")
        _until(b, lambda: b.page.evaluate("document.activeElement.tagName") == "BUTTON", "focus left the buttons")
        focused.append(b.page.evaluate("document.activeElement.id"))
    assert focused == ["pause", "resume", "pause"]
