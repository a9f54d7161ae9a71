"""Getting queued events out: the PUSH worker (HTTP callbacks with retries) and the PULL long poll.

Events are queued in EmulatorState by the commit that produced them; this module only moves them.
Waits and retry delays are in real seconds (time.monotonic) and injectable, so tests stay fast;
event times, `T` and the 30 s confirm window use the emulator's injected clock.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from vodemu.events import signed_push_body
from vodemu.state import PULL, PUSH, EmulatorState, EventConfig, PulledEvent, QueuedEvent

log = logging.getLogger("vodemu.events")

MAX_EVENTS_PER_PULL = 16

LOOPBACK_HINT = (
    "the emulator only delivers to loopback hosts (127.0.0.0/8, ::1, or localhost resolving only to "
    "those) so that it never sends traffic off this machine"
)
_SIGN_KEY_RE = re.compile(r"^[A-Za-z0-9]{0,32}$")
_SWITCHES = ("ON", "OFF")


def _resolve(host: str) -> list[str]:
    """The addresses `host` resolves to (a seam for tests)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]


def _is_loopback_address(text: str) -> bool:
    try:
        return ipaddress.ip_address(text.partition("%")[0]).is_loopback  # drop an IPv6 zone id
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """An http(s) URL whose host is a literal loopback address, or `localhost` resolving only to such."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host != "localhost":  # no other name: what it resolves to is not this process's to vouch for
        return _is_loopback_address(host)
    try:
        addresses = _resolve(host)
    except (OSError, UnicodeError):
        return False
    return bool(addresses) and all(_is_loopback_address(address) for address in addresses)


class EventConfigError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def updated_event_config(
    current: EventConfig,
    *,
    mode: str | None = None,
    notification_url: str | None = None,
    sign_key: str | None = None,
    upload_switch: str | None = None,
    delete_switch: str | None = None,
    persistence_switch: str | None = None,
) -> EventConfig:
    """`current` with the given fields changed (None = keep), each checked as ModifyEventConfig checks it.

    The one validator for event configuration: the cloud API and Emulator.configure_events both use it.
    """
    if mode is not None and mode not in (PUSH, PULL):
        raise EventConfigError("Mode", "Mode must be PUSH or PULL")
    if notification_url and not is_loopback_url(notification_url):
        raise EventConfigError("NotificationUrl", f"NotificationUrl {notification_url!r} refused: {LOOPBACK_HINT}")
    if sign_key is not None and not _SIGN_KEY_RE.match(sign_key):
        raise EventConfigError("SignKey", "SignKey must be letters and digits, at most 32")
    switches = {
        "UploadMediaCompleteEventSwitch": upload_switch,
        "DeleteMediaCompleteEventSwitch": delete_switch,
        "PersistenceCompleteEventSwitch": persistence_switch,
    }
    for name, value in switches.items():
        if value is not None and value not in _SWITCHES:
            raise EventConfigError(name, f"{name} must be ON or OFF")
    changes = {
        "mode": mode,
        "notification_url": notification_url,
        "sign_key": sign_key,
        "upload_switch": upload_switch,
        "delete_switch": delete_switch,
        "persistence_switch": persistence_switch,
    }
    return replace(current, **{name: value for name, value in changes.items() if value is not None})


class EventSignal:
    """Wakes long polls and the PUSH worker when events are queued (a version counter: no lost wake-ups)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._version = 0
        self._waiting = 0

    @property
    def version(self) -> int:
        with self._cond:
            return self._version

    @property
    def waiting(self) -> int:
        """How many threads are waiting right now (lets tests see that a long poll is parked)."""
        with self._cond:
            return self._waiting

    def notify(self) -> None:
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Return when the version moves past `seen` or after `timeout` real seconds."""
        with self._cond:
            self._waiting += 1
            try:
                self._cond.wait_for(lambda: self._version != seen, timeout=max(timeout, 0.0))
            finally:
                self._waiting -= 1


@dataclass(frozen=True)
class PullSettings:
    long_poll_seconds: float
    confirm_window_seconds: float
    retention_seconds: float


def pull_events(
    state: EmulatorState,
    signal: EventSignal,
    clock: Callable[[], float],
    settings: PullSettings,
    *,
    stopping: threading.Event | None = None,
) -> list[PulledEvent]:
    """PullEvents: answer at once if events are waiting, else hold the request until one arrives or time is up."""
    deadline = time.monotonic() + settings.long_poll_seconds
    while True:
        seen = signal.version
        events = state.pull_events(
            clock(),
            limit=MAX_EVENTS_PER_PULL,
            window=settings.confirm_window_seconds,
            retention=settings.retention_seconds,
            new_handle=lambda: secrets.token_hex(20),
        )
        remaining = deadline - time.monotonic()
        if events or remaining <= 0 or (stopping is not None and stopping.is_set()):
            return events
        signal.wait(seen, remaining)


PostJson = Callable[[str, bytes, float], int]  # (url, body, timeout) -> HTTP status; raises on network errors


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is the receiver's answer, not a place to go: its Location was never checked to be loopback
    (and following it would turn the POST into a GET). The 3xx then surfaces as an HTTPError."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post_json(url: str, body: bytes, timeout: float) -> int:
    """POST `body` to `url` and return the HTTP status: no proxies, no redirects followed.

    No proxies: NotificationUrl is a loopback address and an http_proxy variable must not reroute it.
    """
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _RefuseRedirects())
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)


@dataclass(frozen=True)
class PushSettings:
    retry_delays: tuple[float, ...]  # attempts = len(retry_delays) + 1
    timeout_seconds: float
    sign_ttl_seconds: int


class PushWorker:
    """Delivers PUSH events to the configured NotificationUrl in a background thread.

    HTTP 200 = delivered; anything else (another status, a 3xx included: redirects are not followed,
    a refused connection, a timeout) is retried after the next delay,
    and after the last one the event is marked failed. Each attempt is logged and counted in the state.
    Events wait independently, so one failing receiver-side event does not hold back the others.
    """

    def __init__(
        self,
        state: EmulatorState,
        signal: EventSignal,
        clock: Callable[[], float],
        settings: PushSettings,
        *,
        post: PostJson = post_json,
    ) -> None:
        self._state = state
        self._signal = signal
        self._clock = clock
        self._settings = settings
        self._post = post
        self._due: dict[int, float] = {}  # seq -> monotonic time of its next attempt
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="vodemu-push", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._signal.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            seen = self._signal.version
            try:
                wait = self.deliver_due()
            except Exception:  # a broken state must not kill the worker silently
                log.exception("PUSH worker iteration failed")
                wait = 1.0
            self._signal.wait(seen, wait)

    def deliver_due(self) -> float:
        """Attempt every event that is due; return how long (real s) until the next one is due (≤ 1 s)."""
        now = time.monotonic()
        next_wait = 1.0
        for event in self._state.pending_push_events():
            if self._stop.is_set():
                break
            due = self._due.get(event.seq, now)
            if due > now:
                next_wait = min(next_wait, due - now)
                continue
            delay = self._attempt(event)
            if delay is not None:
                self._due[event.seq] = time.monotonic() + delay
                next_wait = min(next_wait, delay)
            else:
                self._due.pop(event.seq, None)
        return next_wait

    def _attempt(self, event: QueuedEvent) -> float | None:
        """One delivery attempt; returns the delay before the next one, or None when done (either way)."""
        attempt = event.attempts + 1
        total = len(self._settings.retry_delays) + 1
        error = self._deliver(event.body)
        if error is None:
            log.info("PUSH event %d attempt %d/%d delivered", event.seq, attempt, total)
            self._state.record_push_attempt(event.seq, status="delivered", error=None)
            return None
        if attempt >= total:
            log.warning("PUSH event %d attempt %d/%d failed (%s); giving up", event.seq, attempt, total, error)
            self._state.record_push_attempt(event.seq, status="failed", error=error)
            return None
        delay = self._settings.retry_delays[attempt - 1]
        log.info("PUSH event %d attempt %d/%d failed (%s); retrying in %.3g s", event.seq, attempt, total, error, delay)
        self._state.record_push_attempt(event.seq, status="pending", error=error)
        return delay

    def _deliver(self, event: dict[str, Any]) -> str | None:
        """POST one event to the current NotificationUrl; None = HTTP 200, else why not."""
        config = self._state.get_event_config()
        url = config.notification_url
        if not url:
            return "no NotificationUrl configured"
        if not is_loopback_url(url):
            return f"NotificationUrl refused: {LOOPBACK_HINT}"
        body = signed_push_body(event, config.sign_key, self._clock(), self._settings.sign_ttl_seconds)
        try:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            status = self._post(url, data, self._settings.timeout_seconds)
        except (OSError, ValueError) as exc:  # URLError, timeouts and refused connections are OSErrors
            return f"{type(exc).__name__}: {exc}"
        return None if status == 200 else f"HTTP {status}"
