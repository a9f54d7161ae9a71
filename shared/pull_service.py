"""Reliable callback (PULL): drain VOD's event queue into the store, confirming only what is committed.

PullEvents → `ingest_event` for each event (the same idempotent path as the PUSH callback, keyed
on the event's content) → ConfirmEvents for the committed ones. A crash between commit and
confirm only means VOD hands the event out again after 30 s, and the store ignores the duplicate.
This module never imports the Tencent SDK: the queue is anything with `pull` and `confirm`.
"""

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from shared.config import PullSettings, known_secrets
from shared.errors import MalformedEvent, StoreUnavailable
from shared.events import named_in, pulled_form
from shared.hooks import AfterCommit, no_hook
from shared.ingest import ingest_event, logged_fields
from shared.logs import ERROR, INFO, REQUEST_ID, WARNING, context_value, invocation_id, log_event
from shared.records import Record
from shared.store import EventStore
from shared.vod_limits import API_TIMEOUT_SECONDS, CONFIRM_HANDLES, PULL_REDELIVERY_SECONDS

_LAST_EVENT_SECONDS = 5  # allowed the last event a batch takes (its after-commit hook included), at least
# VOD holds an empty PullEvents up to 5 s (its long poll). One answered empty sooner (a proxy, a change on VOD's side)
# is not asked again at once, which would call VOD hundreds of times a second, into its rate limit.
_EMPTY_PULL_SECONDS = 1.0


class EventQueue(Protocol):
    def pull(self) -> list[dict[str, Any]]:
        """Up to 16 events (PullEvents long-polls up to 5 s); [] when there are none."""

    def confirm(self, handles: Sequence[str]) -> None:
        """ConfirmEvents: VOD forgets these events."""


class DrainReport(Record):
    rounds: int
    pulled: int
    recorded: int
    duplicates: int
    confirmed: int
    unreadable: int  # left unconfirmed on purpose: VOD hands them out again, until a fixed parser reads them
    late: int  # stored too late for their ConfirmEvents to beat VOD's 30 s: handed out again, then duplicates
    left: int  # not stored before the run's end (slow hooks, a late pull): VOD hands them out again
    stopped: str  # "deadline", "empty", "batch_cut", "store_unavailable", "queue_error" or "crash"


class _Tally:
    """DrainReport's counts while the run goes on."""

    def __init__(self) -> None:
        self.rounds = self.pulled = self.recorded = self.duplicates = self.confirmed = 0
        self.unreadable = self.late = self.left = 0
        self.slowest = 0.0  # the longest an event of the run took to store, its hook included (not reported)

    def report(self, stopped: str) -> DrainReport:
        return DrainReport(stopped=stopped, **{k: v for k, v in vars(self).items() if k != "slowest"})


def _receipt_times(wall: Callable[[], float]) -> Callable[[], float]:
    """Each event's receipt time, in VOD's order for the whole run: later than the one before it, even where the time
    of day reads the same (a coarse clock) or is set back (NTP) between two events, or two batches. A delete and a
    task made again after it may come one after the other, and the records compare their times."""
    last = 0.0

    def stamp() -> float:
        nonlocal last
        last = max(wall(), last + 1e-6)
        return last

    return stamp


class _Batch:
    """One batch's events, stored in VOD's order by `store_until`, each with its own receipt time."""

    def __init__(
        self,
        events: list[dict[str, Any]],
        store: EventStore,
        tally: _Tally,
        clocks: tuple[Callable[[], float], Callable[[], float]],
        after_commit: AfterCommit,
        keys: Sequence[str],
    ) -> None:
        self.rest = events
        self._store, self._tally, (self._clock, self._received_at) = store, tally, clocks
        self._after_commit, self._keys = after_commit, keys

    def store_until(self, until: float) -> tuple[list[str], bool]:
        """Ingest events begun before `until` (on the run's clock; it allows an event _LAST_EVENT_SECONDS), or,
        once an event of the run took longer (a slow hook), as long before it: an event cut off by SCF at the
        run's end would leave its hook half run (`pending`, for `hooks --rerun`). The handles of those
        committed, and False when the store failed (the rest are then left for VOD to hand out again)."""
        handles: list[str] = []
        while self.rest and (began := self._clock()) + max(0.0, self._tally.slowest - _LAST_EVENT_SECONDS) < until:
            raw = self.rest[0]
            handle = raw.get("EventHandle") if isinstance(raw, dict) else None  # what confirms this delivery
            try:
                payload = pulled_form(raw)
                result = ingest_event(
                    self._store,
                    payload,
                    received_at=self._received_at(),
                    after_commit=self._after_commit,
                    keys=self._keys,
                )
            except MalformedEvent as exc:
                self.rest = self.rest[1:]
                self._tally.unreadable += 1
                log_event(
                    ERROR, "pull.unreadable_event", event_handle=handle, error_detail=exc.message, **named_in(raw)
                )
                continue
            except StoreUnavailable as exc:  # left for VOD to hand out again: the event named, as its retry will be
                named = {**named_in(raw), "dedupe_key": exc.dedupe_key, "event_handle": handle}
                log_event(WARNING, "store.unavailable", store_error=exc.message, **named)
                return handles, False
            self._tally.slowest = max(self._tally.slowest, self._clock() - began)
            log_event(INFO, "pull.event", **logged_fields(result), event_handle=handle)
            self.rest = self.rest[1:]
            self._tally.duplicates += result.duplicate
            self._tally.recorded += not result.duplicate
            if isinstance(handle, str) and handle:
                handles.append(handle)
        return handles, True


def _take(batch: _Batch, queue: EventQueue, tally: _Tally, confirm_by: float, store_by: float) -> str | None:
    """Store a batch in VOD's order, confirming the events begun before `confirm_by`; the rest stored all the same
    until `store_by`, unconfirmed. Why the run must stop after it ("queue_error", "store_unavailable", "batch_cut"),
    or None."""
    handles, stored = batch.store_until(confirm_by)
    unconfirmed = None
    # In calls of at most 16, should VOD ever hand out more at a time: one call would be refused every time.
    try:
        for start in range(0, len(handles), CONFIRM_HANDLES):
            chunk = handles[start : start + CONFIRM_HANDLES]
            queue.confirm(chunk)
            tally.confirmed += len(chunk)
    except Exception as exc:  # committed but unconfirmed: redelivered in 30 s, then deduplicated
        unconfirmed = exc
    if stored and batch.rest:
        # The batch's tail, too late to confirm in time (or VOD refusing confirms): stored all the same, in VOD's
        # order, until the run's end (the last event's time allowed for). Left to a later pull, it would come
        # after newer events: a task's FINISH stored after the delete of its outputs that followed it, say.
        late, stored = batch.store_until(store_by)
        tally.late += len(late)
    tally.left += len(batch.rest)
    if unconfirmed is not None:
        return _queue_failed("confirm", unconfirmed)
    if not stored:
        return "store_unavailable"
    if batch.rest:
        log_event(WARNING, "pull.batch_cut", left=len(batch.rest))
        return "batch_cut"
    return None


def _queue_failed(call: str, exc: Exception) -> str:
    from shared.redaction import redact  # here: only a failed call needs it

    # The SDK's message for an answer that is not VOD's is its body: a proxy's may quote the request's headers.
    detail = redact(f"{type(exc).__name__}: {str(exc)[:100_000]}", known_secrets())[:300]
    log_event(ERROR, f"pull.{call}_failed", error_detail=detail)
    return "queue_error"


def time_limit_seconds(context: object, default: float) -> float:
    """The invocation's time limit from SCF's context (`time_limit_in_ms`), else `default`."""
    limit = context_value(context, "time_limit_in_ms")
    return limit / 1000 if isinstance(limit, int | float) and limit > 0 else default


def run_invocation(
    context: object,
    settings: PullSettings,
    queue: EventQueue,
    store: EventStore,
    after_commit: AfterCommit = no_hook,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> DrainReport:
    """One timer invocation: drain until the reserve before the invocation's own time limit (or, with
    `until_empty`, until VOD answers with no event)."""
    return drain(
        queue,
        store,
        deadline=clock() + time_limit_seconds(context, settings.budget_seconds),
        clock=clock,
        wall=wall,
        reserve_seconds=settings.reserve_seconds,
        keys=settings.context_keys.all(),
        after_commit=after_commit,
        stop_when_empty=settings.until_empty,
        run_id=invocation_id(context),
    )


def drain(
    queue: EventQueue,
    store: EventStore,
    *,
    deadline: float,
    clock: Callable[[], float],
    reserve_seconds: float,
    keys: Sequence[str],
    after_commit: AfterCommit = no_hook,
    stop_when_empty: bool = False,
    run_id: str | None = None,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> DrainReport:
    """Pull, store and confirm until `reserve_seconds` before `deadline` (or the queue is empty,
    when `stop_when_empty`), on `clock`, which never steps back (time.monotonic), and `sleep` (between pulls answered
    empty at once); `wall` (the time of day) stamps each event's receipt. Stops early, confirming what was
    committed, when the store fails. `keys`: the context keys that prove uploads' users (PULL is authenticated end
    to end: what VOD's API returns is VOD's word). `run_id` (the invocation's request id) is on every log line of
    the run."""
    token = REQUEST_ID.set(run_id) if run_id is not None else None
    tally = _Tally()
    try:
        return _drain(
            queue, store, deadline, (clock, wall, sleep), reserve_seconds, after_commit, stop_when_empty, keys, tally
        )
    except Exception as exc:  # a bug, or an app's store or queue that failed otherwise
        # One line, and the run ends as any other: a failed invocation SCF would run again twice (its default for
        # a timer's), a minute apart, beside the next runs, which pull anyway. What it left unconfirmed comes again.
        log_event(ERROR, "pull.crash", error=exc)
        return tally.report("crash")
    finally:
        if token is not None:
            REQUEST_ID.reset(token)


def _drain(
    queue: EventQueue,
    store: EventStore,
    deadline: float,
    clocks: tuple[Callable[[], float], Callable[[], float], Callable[[float], None]],
    reserve_seconds: float,
    after_commit: AfterCommit,
    stop_when_empty: bool,
    keys: Sequence[str],
    tally: _Tally,
) -> DrainReport:
    clock, wall, sleep = clocks
    stopped, received_at = "deadline", _receipt_times(wall)
    while (began := clock()) + reserve_seconds <= deadline:
        # Events begun before confirm_by are confirmed in time: their ConfirmEvents (one API call) comes, the
        # event's own time allowed for, before VOD hands the batch out again and before the invocation's end.
        confirm_by = min(clock() + PULL_REDELIVERY_SECONDS, deadline) - _LAST_EVENT_SECONDS - API_TIMEOUT_SECONDS
        try:
            events = queue.pull()
        except Exception as exc:  # network, credentials, throttling: the events wait in VOD's queue
            stopped = _queue_failed("pull", exc)
            break
        tally.rounds += 1
        tally.pulled += len(events)
        if not events and stop_when_empty:
            stopped = "empty"
            break
        if not events:
            if began + _EMPTY_PULL_SECONDS + reserve_seconds > deadline:  # no next pull would begin in time
                break
            sleep(max(0.0, began + _EMPTY_PULL_SECONDS - clock()))
            continue
        batch = _Batch(events, store, tally, (clock, received_at), after_commit, keys)
        stop = _take(batch, queue, tally, confirm_by, store_by=deadline - _LAST_EVENT_SECONDS)
        if stop is not None:
            stopped = stop
            break
    report = tally.report(stopped)
    # A run cut short by an outage is summed up where LOG_LEVEL=WARNING still shows it (with what it left)
    log_event(WARNING if stopped in ("store_unavailable", "queue_error") else INFO, "pull.drained", **report._asdict())
    if not tally.rounds and stopped == "deadline":  # every run alike: the queue is never drained
        log_event(
            WARNING,
            "pull.no_time",
            reserve_seconds=reserve_seconds,
            message="the time limit leaves no time to pull: raise the timeout or lower VOD_PULL_RESERVE_SECONDS",
        )
    return report
