"""A real browser against the local stack: Debian's Chromium, driven by playwright (never a downloaded
browser). Three origins, as deployed: the upload page (its own functions-framework server), the gateway
(sign + uploads), and VOD/COS (the emulator, reached as vod2.qcloud.com and *.myqcloud.com)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.conftest import LeakGuard
from vodlocal import harness, localstack
from vodtesting.ci import missing
from vodtesting.stack import VodStack

ARTIFACTS = Path(os.environ.get("VOD_TEST_ARTIFACTS", ".artifacts"))


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:  # .ci/run installs Debian's chromium
        missing("chromium", "no chromium on this machine (apt-get install chromium)")
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A maker of browser contexts (the emulator's certificate accepted) in a language (`locale`: its
    Accept-Language and navigator.language): each its own browser process, since the host rules differ per stack
    (free ports); with `preferences`, a profile of its own holding them."""
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:

        def context(args: list[str], profile: Path, locale: str, preferences: dict[str, Any] | None = None) -> Any:
            if preferences is None:
                launched = playwright.chromium.launch(executable_path=executable, args=args)
                return launched.new_context(ignore_https_errors=True, locale=locale)
            (profile / "Default").mkdir(parents=True)
            (profile / "Default" / "Preferences").write_text(json.dumps(preferences))
            return playwright.chromium.launch_persistent_context(
                str(profile), executable_path=executable, args=args, ignore_https_errors=True, locale=locale
            )

        yield context


def part_number(request: Any) -> int | None:
    """The part a COS multipart PUT carries, or None for any other request."""
    if request.method != "PUT":
        return None
    numbers = parse_qs(urlsplit(request.url).query).get("partNumber")
    return int(numbers[0]) if numbers else None


@dataclass
class Traffic:
    """What the page sent (every request, in order) and how each ended: answered, or failed (aborted)."""

    requests: list[Any] = field(default_factory=list)
    finished: list[Any] = field(default_factory=list)
    failed: list[Any] = field(default_factory=list)

    def pending(self) -> list[Any]:
        ended = {id(r) for r in (*self.finished, *self.failed)}
        return [r for r in self.requests if id(r) not in ended]

    def parts_stored(self) -> set[int]:
        """Parts COS answered 200: safely stored."""
        return {
            number
            for r in self.finished
            if (number := part_number(r)) is not None and (response := r.response()) and response.status == 200
        }

    def vod_calls(self) -> list[tuple[str, dict[str, Any]]]:
        calls = []
        for request in self.requests:
            if request.url.startswith("https://vod2.qcloud.com/") and request.method == "POST":
                calls.append((parse_qs(urlsplit(request.url).query)["Action"][0], json.loads(request.post_data)))
        return calls

    def applies(self) -> list[dict[str, Any]]:
        """The page's ApplyUploadUGC request bodies, in order."""
        return [body for action, body in self.vod_calls() if action == "ApplyUploadUGC"]

    def secrets(self) -> list[str]:
        """What the page handled that no log may show: its signatures and the temporary keys VOD gave it."""
        found = [str(body.get("signature", "")) for _, body in self.vod_calls()]
        for request in self.finished:
            if request.url.startswith("https://vod2.qcloud.com/") and "ApplyUploadUGC" in request.url:
                # The browser keeps a response's body only until the page reloads: the keys handed out before a
                # reload are not checked (the signatures always are: they are in the requests).
                with contextlib.suppress(PlaywrightError):
                    response = request.response()
                    data = (response.json().get("data") or {}) if response is not None else {}
                    found.append(str((data.get("tempCertificate") or {}).get("secretKey", "")))
        return [secret for secret in found if secret]

    def signature_requests(self, gateway: str) -> int:
        return sum(1 for r in self.requests if r.method == "POST" and r.url == f"{gateway}/signature")

    def part_puts(self, key_suffix: str) -> list[int]:
        return [
            number
            for r in self.requests
            if (number := part_number(r)) is not None and urlsplit(r.url).path.endswith(key_suffix)
        ]


@dataclass
class BrowserStack:
    stack: VodStack
    page_origin: str
    page: Any
    traffic: Traffic
    context: Any
    page_app: list[Any]  # the page function's app, behind the page's server
    devtools: Any = None  # the session network conditions are emulated through, once one is
    network: dict[str, Any] = field(
        default_factory=lambda: {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    )  # as last emulated
    leave_prompts: int = 0  # how many times the browser asked the user whether to leave the page
    stay: bool = False  # the user's answer: stay (else leave, as every test that reloads mid-upload does)
    cancel_questions: int = 0  # how many times Cancel asked whether to throw the upload away
    keep_uploading: bool = False  # the user's answer to it: no (else yes, as every test that cancels does)
    other_dialogs: list[str] = field(default_factory=list)  # the page opens no other (checked after each test)

    def answer(self, dialog: Any) -> None:
        """The user's answer to a dialog: the browser's "Leave site?" (the page asks it mid-upload), and Cancel's
        question."""
        leaving = dialog.type == "beforeunload"
        cancelling = dialog.type == "confirm" and dialog.message.startswith("Cancel this upload?")
        self.leave_prompts += leaving
        self.cancel_questions += cancelling
        if not (leaving or cancelling):
            self.other_dialogs.append(f"{dialog.type}: {dialog.message}")
        if (leaving and not self.stay) or (cancelling and not self.keep_uploading):
            dialog.accept()
        else:
            dialog.dismiss()

    def open(self, token: str | None) -> None:
        self.page.goto(f"{self.page_origin}/" + (f"#token={token}" if token else ""))
        self.page.wait_for_selector("#start:not([hidden])")

    def redeploy_page(self, **settings: str) -> None:
        """The page function started anew with these settings too, as a deploy with them would."""
        os.environ.update(settings)  # the fixture restores the environment
        self.page_app[0] = harness.create_app("upload_page")

    def choose(self, video: Path, cover: Path | None = None) -> None:
        self.page.set_input_files("#video", str(video))
        if cover is not None:
            self.page.set_input_files("#cover", str(cover))

    def throttle(self, bytes_per_second: int) -> None:
        """Slow the page's uploads (DevTools network emulation), so a test can act mid-upload."""
        self._emulate(uploadThroughput=bytes_per_second)

    def go_offline(self, offline: bool = True) -> None:
        """The device loses its connection (the browser says so: navigator.onLine, online/offline events)."""
        self._emulate(offline=offline)

    def _emulate(self, **conditions: Any) -> None:
        if self.devtools is None:
            self.devtools = self.context.new_cdp_session(self.page)
            self.devtools.send("Network.enable")
        self.network.update(conditions)
        self.devtools.send("Network.emulateNetworkConditions", self.network)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browser_stack(
    browser: Any, tmp_path: Path, leak_guard: LeakGuard, request: pytest.FixtureRequest
) -> Iterator[BrowserStack]:
    """The stack and the page on its own origin; `indirect` parameters are the emulator's options, `preferences`
    the browser profile's (Chromium's Preferences file), and `locale` the browser's language (English: whatever
    the machine's)."""
    saved = dict(os.environ)
    options = dict(getattr(request, "param", {}))
    preferences = options.pop("preferences", None)
    locale = options.pop("locale", "en-US")
    # The page's origin must be known to the stack (CORS), and the stack's URLs to the page: its server listens
    # first, and its function starts once the stack runs.
    page_app: list[Any] = []
    late = lambda environ, respond: page_app[0](environ, respond)  # noqa: E731, PLW0108 (made after it listens)
    page_server = localstack.serve_wsgi("upload-page", late)
    os.environ["CORS_ALLOW_ORIGINS"] = page_server.url  # the gateway answers the page's origin only
    stack = VodStack(tmp_path / "stack", **options)
    # The page's API is on another origin: absolute URLs.
    os.environ["UPLOAD_PAGE_SIGNATURE_URL"] = stack.signature_url
    os.environ["UPLOAD_PAGE_STATUS_URL"] = f"{stack.gateway_url}/uploads"
    page_app.append(harness.create_app("upload_page"))
    context = browser(stack.chromium_flags(), tmp_path / "profile", locale, preferences)
    page = context.new_page()
    traffic = Traffic()
    # Lambdas, not bound methods (PLW0108): playwright tags the callables it is given.
    page.on("request", lambda request: traffic.requests.append(request))  # noqa: PLW0108
    page.on("requestfinished", lambda request: traffic.finished.append(request))  # noqa: PLW0108
    page.on("requestfailed", lambda request: traffic.failed.append(request))  # noqa: PLW0108
    b = BrowserStack(stack, page_server.url, page, traffic, context, page_app)
    page.on("dialog", lambda dialog: b.answer(dialog))  # noqa: PLW0108
    try:
        yield b
        assert not b.other_dialogs, b.other_dialogs
    finally:
        # As start_vod_stack does (this stack needs the page's origin first), with what the page itself handled.
        leak_guard.values.update([*stack.secrets, *traffic.secrets()])
        (context.browser or context).close()  # a profile's context is its browser
        stack.stop()
        page_server.stop()
        os.environ.clear()
        os.environ.update(saved)
