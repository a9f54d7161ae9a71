"""The extension point: application code that runs after an event is committed.

Write a function taking one `CommittedEvent` and name it in the setting
`AFTER_COMMIT_HOOK=package.module:function` (or pass it as `after_commit=` to
`make_callback_endpoint` / `ingest_event`). It runs once per new event, after the commit and
before VOD gets its 200; never for a duplicate delivery. If it raises, the event stays recorded
(it was committed first), the failure is logged with the dedupe key and kept on the event row
(`hook_status` failed, `hook_failures`, `hook_last_error`; shown by `vod-uploads show`).

Delivery by the functions is at most once: the event is committed as `hook_status = pending` and marked
done or failed afterwards, so a hook cut short (function timeout, container killed), or never started
because the commit's answer was lost, stays `pending` and visible, but is not retried (VOD's retry is a
duplicate). `vod-uploads hooks --rerun` runs the hook again for those and for failed ones (`rerun_hook`:
each is claimed first, so that two operators' runs never run one twice), which makes it at least once.
Keep hooks quick and idempotent: the function's timeout covers them (in PULL, a run begins an event only while
it has time left for the slowest of its events so far, 5 s at least: shared.pull_service).

Hooks of one file's events can run at once (two instances, two deliveries) and end in either order: of two
records of one file, the one with the higher `revision` is the newer (it counts the commits that wrote it).
"""

import contextlib  # (loaded on the functions' cold path by the stdlib already)
import functools
import importlib
import time
from collections.abc import Callable
from types import AsyncGeneratorType, CoroutineType, GeneratorType

from shared.config import ConfigError, Secret, known_secrets
from shared.errors import MalformedEvent, StoreUnavailable
from shared.events import OtherEvent, VodEvent, parse_event
from shared.events import plain as plain  # noqa: PLC0414 - re-exported for hook code
from shared.logs import ERROR, log_event
from shared.records import Record
from shared.store import EventStore, EventSummary, UploadRecord

# A rerun's claim on a hook is taken for that of a run that died once it is this old (by the clock of the
# machine running the later rerun), whatever `--older-than` that run is given: a shorter age would let it run
# a hook that another still runs. A rerun (not in SCF: nothing ends it) whose hook takes longer loses its claim.
RERUN_CLAIM_SECONDS = 900


class HookNotRecorded(StoreUnavailable):
    """The hook ran again (`hook_error`: None, or how it failed), but its result could not be recorded."""

    def __init__(self, message: str, hook_error: str | None) -> None:
        super().__init__(message)
        self.hook_error = hook_error


class RerunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) as a rerun recorded the hook's result: the hook ran (`hook_error`: None, or how it
    failed), and that result is recorded unless the store was out."""

    def __init__(self, hook_error: str | None) -> None:
        super().__init__()
        self.hook_error = hook_error


class HookTaken(Exception):
    """Not this rerun's to run: another `vod-uploads hooks --rerun` has the event's hook (each is claimed before it
    is run), or a file of the event was erased since it was listed."""


class CommittedEvent(Record):
    dedupe_key: str
    event: VodEvent
    received_at: float
    # The record of every file the event names, as committed (on a rerun by vod-uploads: as they are now).
    uploads: tuple[UploadRecord, ...]

    @property
    def upload(self) -> UploadRecord | None:
        """The upload record when the event names exactly one file; None when it names several (a delete of
        many files, an edit naming its inputs) or none (an event type that names no file)."""
        # By the files the event names: an erased one is left out of `uploads`, and must not make a delete of two
        # files look like one of a single file.
        return self.uploads[0] if len(self.event.file_ids) == 1 and self.uploads else None


# What it returns is not used, but for a coroutine or a generator: its work would not have run (HookNotRun)
AfterCommit = Callable[[CommittedEvent], object]


def no_hook(committed: CommittedEvent) -> None:
    """The default: nothing to do after a commit."""


def keep_secret(value: str) -> str:
    """`value` (a secret of the app's: a webhook URL, a password), which from now on is masked wherever the
    bundle masks its own secrets: a hook's error on the event row and in the log. Returned, so that the hook's
    module reads it once: `WEBHOOK = keep_secret(os.environ["SLACK_WEBHOOK_URL"])`. Of a URL, its path and query
    too (what `requests` quotes of a URL it could not reach), and its password. (Each at least 6 characters:
    shorter ones would mask common words.)"""
    if not isinstance(value, str):  # at the hook module's import: its cold start fails, naming it
        raise TypeError(f"keep_secret takes text, not {type(value).__name__}")
    Secret(value)
    if "://" in value:
        from urllib.parse import urlsplit  # here: called only by hook modules that keep a secret

        parts: tuple[str | None, ...] = ()
        with contextlib.suppress(ValueError):  # not a URL after all: masked whole, as any other text
            url = urlsplit(value)
            parts = (url.path + (f"?{url.query}" if url.query else ""), url.query, url.password)
        for part in parts:
            if part and part != "/":
                Secret(part)
    return value


# inspect's CO_GENERATOR | CO_COROUTINE | CO_ITERABLE_COROUTINE | CO_ASYNC_GENERATOR: calling such a function only
# makes an object, whose body nobody would run (and the hook would count as done)
_NOT_RUN_BY_A_CALL = 0x20 | 0x80 | 0x100 | 0x200


def load_hook(spec: str | None) -> AfterCommit:
    """Resolve `package.module:function` (the AFTER_COMMIT_HOOK setting) once per container."""
    if spec is None:
        return no_hook
    module_name, _, attribute = spec.partition(":")
    try:
        hook = getattr(importlib.import_module(module_name), attribute)
    # No such module or name, or the module failed as it was imported (an app setting), sys.exit() in it included
    except (Exception, SystemExit) as exc:
        from shared.redaction import redact  # the app's message may quote a URL with its password, as a hook's may

        why = redact(f"cannot load {spec!r}: {type(exc).__name__}: {_message(exc)}"[:100_000], known_secrets())[:2000]
        raise ConfigError([("AFTER_COMMIT_HOOK", why)]) from None  # its traceback would show the message again
    if not callable(hook):
        raise ConfigError([("AFTER_COMMIT_HOOK", f"{spec!r} is not callable")])
    called = hook
    while isinstance(called, functools.partial):  # what a partial calls, to know what it makes
        called = called.func
    if getattr(getattr(called, "__code__", None), "co_flags", 0) & _NOT_RUN_BY_A_CALL:
        raise ConfigError([("AFTER_COMMIT_HOOK", f"{spec!r} is async or a generator: a hook must be a plain function")])
    loaded: AfterCommit = hook
    return loaded


def run_hook(hook: AfterCommit, committed: CommittedEvent, store: EventStore) -> str | None:
    """Call the hook and record how it went on the event row; return the error text if it raised. A result
    that cannot be recorded is logged (the event is safe, its row stays "pending")."""
    error = _call(hook, committed)
    try:
        store.record_hook_result(committed.dedupe_key, error)
    except StoreUnavailable as store_error:
        log_event(
            ERROR,
            "hook.result_not_recorded",
            dedupe_key=committed.dedupe_key,
            event_type=committed.event.event_type,
            file_ids=list(committed.event.file_ids),
            store_error=store_error.message,
        )
    return error


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except BaseException:  # an app's exception whose __str__ itself fails (sys.exit() too): still recorded
        return "<its message could not be read>"


INTERRUPTED = "KeyboardInterrupt: the rerun was interrupted"
ERASED_MEANWHILE = "a file of its event was erased while it was being claimed"


class HookNotRun(TypeError):
    """The hook returned a coroutine or a generator: its body did not run."""


def _call(hook: AfterCommit, committed: CommittedEvent) -> str | None:
    error = None
    try:
        returned = hook(committed)
        # An object whose __call__ is async (load_hook refuses async functions): its body did not run.
        if isinstance(returned, (CoroutineType, GeneratorType, AsyncGeneratorType)):
            if not isinstance(returned, AsyncGeneratorType):
                returned.close()  # no "never awaited" warning: the failure says it
            made = type(returned).__name__.replace("_", " ")  # a coroutine, a generator, an async generator
            article = "an" if made.startswith("a") else "a"
            raise HookNotRun(f"it returned {article} {made}, whose body did not run: make it synchronous")
    except KeyboardInterrupt:  # an operator's Ctrl-C (vod-uploads hooks --rerun): stop
        raise
    except BaseException as exc:  # sys.exit(), asyncio.CancelledError…: must not end the function's invocation
        error, trace = _described(exc)
        log_event(
            ERROR,
            "hook.failed",
            error_detail=error,  # as the event row keeps it: the exception's name and message, whatever its trace
            exception=trace,
            dedupe_key=committed.dedupe_key,
            event_type=committed.event.event_type,
            file_ids=list(committed.event.file_ids),
        )
    return error


def _described(exc: BaseException) -> tuple[str, str]:
    """The hook's failure as it is kept on the event row, and its traceback for the log, both with what may be
    secret masked (see shared.redaction)."""
    import traceback  # rare: not on the cold path

    from shared.redaction import redact

    secrets = known_secrets()
    # Masked, then cut (a value cut in two would not be known for one): the row keeps 500 characters, the log
    # 20,000 of the trace (its first and last 10,000). Bounded first, 100,000 characters of each (an error may
    # quote a whole response body): the masking's time grows with the length.
    text = redact(f"{type(exc).__name__}: {_message(exc)}"[:100_000], secrets)[:500]
    # Kept as text both stores take: an exception may quote event fields with a NUL or a lone surrogate.
    error = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if len(trace) > 100_000:
        trace = f"{trace[:50_000]}\n…\n{trace[-50_000:]}"
    trace = redact(trace, secrets)
    return error, trace if len(trace) <= 20_000 else f"{trace[:10_000]}\n…\n{trace[-10_000:]}"


def _as_told_now(
    store: EventStore, file_ids: tuple[str, ...], event: VodEvent
) -> tuple[VodEvent, tuple[UploadRecord, ...]]:
    """The event and its files' records as a rerun tells a hook of them now: no erased file's, and no payload of an
    unparsed event that names one (an event of erased files and others keeps its content, for the others)."""
    records = [record for file_id in file_ids if (record := store.upload(file_id)) is not None]
    uploads = tuple(record for record in records if record.status != "erased")
    if isinstance(event, OtherEvent) and len(uploads) < len(records):
        event = event._replace(payload=None)
    return event, uploads


def rerun_hook(
    hook: AfterCommit, store: EventStore, event: EventSummary, *, now: Callable[[], float] = time.time
) -> str | None:
    """Run the hook again for a stored event (one `EventStore.unfinished_hooks` lists), with the records of
    its files as they are now (not as committed), and record the result; the error text if it raised.
    The hook is claimed first: HookTaken when another rerun has it. HookNotRecorded when the hook ran but its
    result could not be recorded."""
    payload = store.payload(event.dedupe_key)
    if payload is None:
        raise LookupError(f"no event {event.dedupe_key!r} is stored")
    try:
        committed_event = parse_event(payload)  # before the claim: an event that cannot be read is left as it is
    except MalformedEvent:
        stored = store.event(event.dedupe_key)
        if stored is not None and stored.hook_status == "erased":  # an erase since it was listed: its tombstone
            raise HookTaken("not run: its files were erased since it was listed") from None
        raise
    claimed_at = now()
    try:  # the claim too: a Ctrl-C as its COMMIT is answered must let go of it, as it lets go of one taken before
        if not store.claim_hook(event, claimed_at):
            raise HookTaken("not run: another rerun has taken it, or recorded it, since it was listed")
        committed_event, uploads = _as_told_now(store, event.file_ids, committed_event)
        # Read again now that it is claimed: an erase committed since the first read has removed what the event
        # said of its uploader, which no hook may hear of.
        if store.payload(event.dedupe_key) != payload:
            store.record_hook_result(event.dedupe_key, ERASED_MEANWHILE, claimed_at=claimed_at)  # the claim let go
            raise HookTaken(f"not run: {ERASED_MEANWHILE}")
        error = _call(hook, CommittedEvent(event.dedupe_key, committed_event, event.received_at, uploads))
    except KeyboardInterrupt:
        # The operator's Ctrl-C (mid-hook, or before it began): recorded as a failure (it may have done part of its
        # work), which lets the claim go now, not RERUN_CLAIM_SECONDS later; the next rerun runs it again. (A claim
        # that never committed is not this one's: nothing is recorded.)
        with contextlib.suppress(StoreUnavailable):  # else the claim ends RERUN_CLAIM_SECONDS after it was taken
            store.record_hook_result(event.dedupe_key, INTERRUPTED, claimed_at=claimed_at)
        raise
    try:
        recorded = store.record_hook_result(event.dedupe_key, error, claimed_at=claimed_at)
    except StoreUnavailable as exc:
        raise HookNotRecorded(exc.message, error) from exc
    except KeyboardInterrupt:
        # The hook ran: its own result is recorded, not the interruption, and its claim let go now (if the first
        # try had committed, the claim is gone already and this one changes nothing)
        with contextlib.suppress(StoreUnavailable):
            store.record_hook_result(event.dedupe_key, error, claimed_at=claimed_at)
        raise RerunInterrupted(error) from None
    if not recorded:  # this run took longer than --older-than, and another took the hook over (its result stands),
        # or the event's files were erased meanwhile (it owes no hook any more)
        raise HookTaken("run, but another rerun took it over, or its files were erased, meanwhile: not recorded")
    return error
