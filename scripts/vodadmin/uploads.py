"""What the callback recorded: a user's uploads, or everything about one file; the after-commit hooks
that did not finish, run again.

    vod-uploads list --user USER [--json]
    vod-uploads show FILE_ID [--json]
    vod-uploads hooks [--older-than SECONDS] [--rerun] [--json]
    vod-uploads erase (--user USER | FILE_ID … | --before TIME [--deleted]) [--yes]

Reads DATABASE_URL (default sqlite:///.local/vod.sqlite3, relative to the current directory), the
same setting as the callback function, and for `hooks --rerun` AFTER_COMMIT_HOOK (its package must be
importable: in the checkout's root, where `make build` takes it from, run `PYTHONPATH=. vod-uploads …`).
`erase` lists what it would erase; with --yes it erases it (a user's data, on request, or the files no event has
come for since a time, a retention period: see the README's Personal data). Exit status: 0 ok (also a `list`, or an
`erase --before`, that finds none), 1 not found (a file `show` or `erase` names, a user `erase` names) or a hook run
again failed, 2 settings or store problem.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import re
import sys
import textwrap
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any, TextIO

from shared.config import ConfigError, after_commit_hook, load_store_settings, note_secrets
from shared.errors import MalformedEvent
from shared.events import plain
from shared.hooks import (
    INTERRUPTED,
    RERUN_CLAIM_SECONDS,
    AfterCommit,
    HookNotRecorded,
    HookTaken,
    RerunInterrupted,
    load_hook,
    rerun_hook,
)
from shared.store import (
    EraseTooLarge,
    EventStore,
    EventSummary,
    FileReport,
    Retention,
    StoreUnavailable,
    UploadRecord,
    open_store,
)
from shared.store.base import SCHEMA_VERSION
from shared.store.sqlite import SqliteStore
from vodadmin import stop_on_sigterm


class Failure(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def write_report_json(report: FileReport, payload: Callable[[str], Any], write: Callable[[str], Any]) -> None:
    """What the store holds of a file (an access request's answer), as JSON: its record, tasks, and each event with
    its content as VOD sent it (`payload`; once erased, what is left of it: its type and when it was erased).
    Written a task and an event at a time, each event read in turn: one can be megabytes (a snapshot every
    second), and a file has many."""
    head = as_json({"upload": plain(report.upload), "tasks": [], "events": []})
    write(head.removesuffix('"tasks": [],\n  "events": []\n}'))
    _write_items("tasks", map(plain, report.tasks), write)
    write(",\n  ")
    _write_items("events", ({**plain(e), "payload": payload(e.dedupe_key)} for e in report.events), write)
    write("\n}\n")


def _write_items(name: str, items: Iterable[Any], write: Callable[[str], Any]) -> None:
    """`"name": [items]` as json.dumps(indent=2) writes it in an object, an item at a time."""
    write(f'"{name}": [')
    count = 0
    for count, item in enumerate(items, start=1):
        write(("," if count > 1 else "") + "\n" + textwrap.indent(as_json(item), "    "))
    write("\n  ]" if count else "]")


def status_text(report: FileReport) -> str:
    u = report.upload
    # The uploads endpoint says `processing` here, unless VOD was asked for no task events (VOD_TASK_NOTIFY_MODE).
    if u.status == "uploaded" and u.procedure_task_id and not report.tasks:
        return "uploaded (its task flow has not reported a task event yet)"
    if u.status == "erased":
        return f"erased {when(u.last_event_at)} (vod-uploads erase): nothing of its uploader is kept"
    return u.status


# Control characters as escapes: a forged event's text must not move the cursor, clear the screen or retitle the
# operator's terminal (C0, DEL, C1; a newline too, which would fake a line); nor, with the bidi controls and the
# line and paragraph separators, show itself and the rest of its line other than it is (an uploaded file's name
# "evil\u202e4pm.exe").
_BIDI = (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_VISIBLE = str.maketrans(
    {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))} | {c: f"\\u{c:04x}" for c in _BIDI}
)


def shown(line: str) -> str:
    return line.translate(_VISIBLE)


# JSON escapes C0 itself; DEL and C1 (a UTF-8 terminal acts on U+009B as on ESC [) and the bidi controls are
# escaped here, as JSON may.
_JSON_VISIBLE = str.maketrans({c: f"\\u{c:04x}" for c in (*range(0x7F, 0xA0), *_BIDI)})


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str).translate(_JSON_VISIBLE)


def print_record(report: FileReport) -> None:
    u = report.upload
    rows = [
        ("file id", u.file_id),
        ("status", status_text(report)),
        ("user", u.user_id or f"- ({u.attribution or ('erased' if u.status == 'erased' else 'no upload event yet')})"),
        ("attribution", f"{u.attribution or '-'}{', confirmed by VOD' if u.confirmed else ''}"),
        ("signature request", u.sign_request_id or "-"),
        ("name", f"{u.name or '-'}{f' ({u.media_type})' if u.media_type else ''}"),
        ("media URL", u.media_url or "-"),
        ("cover URL", u.cover_url or "-"),
        ("storage region", u.storage_region or "-"),
        ("class id", "-" if u.class_id is None else str(u.class_id)),
        ("created", u.create_time or "-"),
        ("procedure task", u.procedure_task_id or "-"),
        ("review task", u.review_task_id or "-"),
        ("deleted", when(u.deleted_at) if u.deleted else "no"),
    ]
    if u.deleted_parts:
        rows.append(("deleted parts", ", ".join(f"{p.type}:{p.definition}" for p in u.deleted_parts)))
    for conflict in u.conflicts:  # upload events that disagree on who or what the file is
        rows.append((f"conflict: {conflict.field}", " | ".join("-" if v is None else str(v) for v in conflict.values)))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(shown(f"{label:<{width}}  {value}"))
    print("\ntasks:" if report.tasks else "\ntasks: none")
    for task in report.tasks:
        error = f"  error {task.err_code}: {task.message}" if task.err_code else ""
        print(shown(f"  {task.task_id}  {task.outcome} ({task.status}){error}"))
        for result in task.results:
            print(shown(f"    {result.type:<22} {result.status or '-':<10} {' '.join(result.urls) or '-'}"))
    print("\nevents received:")
    for event in report.events:
        print(shown(f"  {when(event.received_at)}  {event.event_type:<22} {event.dedupe_key}{_hook_state(event)}"))


def _hook_state(event: EventSummary) -> str:
    failures = f"{event.hook_failures} failure(s): {event.hook_last_error}"
    if event.hook_status == "failed":
        return f"  hook failed {event.hook_failures}x: {event.hook_last_error}"
    if event.hook_status == "rerunning":
        return f"  hook being run again since {when(event.hook_claimed_at or 0)} (vod-uploads hooks --rerun)"
    if event.hook_status == "given_up":
        return "  hook given up (vod-uploads hooks --give-up)" + (f" after {failures}" if event.hook_failures else "")
    if event.hook_status == "done" and event.hook_failures:  # run again since, and done
        return f"  hook done (after {failures})"
    return {
        "pending": "  hook pending (still running, or cut short)",
        "erased": "  no hook owed (its files erased)",
    }.get(event.hook_status or "", "")


def _media_cell(upload: UploadRecord) -> str:
    # VOD deleted the uploaded media (the whole file, or its OriginalFiles): its URL answers 404 now, and the
    # uploads endpoint offers none.
    gone = upload.deleted or any(part.type == "OriginalFiles" for part in upload.deleted_parts)
    return f"{upload.media_url or '-'}{' (deleted)' if gone else ''}"


def no_uploads(store: EventStore, user: str, why: str = "") -> str:
    """That `user` has no uploads (`why`: what that may mean), and which id composed otherwise has some."""
    said = f"no uploads recorded for user {user!r}{why}"
    other = composed_otherwise(store, user)
    return f"{said}; {other}: use that id" if other else said


def composed_otherwise(store: EventStore, user: str) -> str | None:
    """As ids are matched exactly (as the functions compare them), which id of the same letters as `user` composed
    otherwise (NFC, NFD: a pasted "é" may be either) has uploads, if one has."""
    for form in ("NFC", "NFD"):
        other = unicodedata.normalize(form, user)
        if other != user and store.files_naming(other):
            return f"{other!a}, the same letters composed otherwise ({form}), has some"
    return None


def print_table(user: str, uploads: list[UploadRecord]) -> None:
    header = ("FILE ID", "STATUS", "NAME", "CREATED", "MEDIA URL")
    # Cells as they are printed (control characters escaped), so the columns are measured as they are seen.
    rows = [
        tuple(shown(cell) for cell in (u.file_id, u.status, u.name or "-", u.create_time or "-", _media_cell(u)))
        for u in uploads
    ]
    widths = [max(_columns(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = (cell + " " * (w - _columns(cell)) for cell, w in zip(row, widths, strict=False))
        print("  ".join(cells) + "  " + row[-1])


def _columns(text: str) -> int:
    """How many columns `text` takes in a terminal: two for a wide character (Chinese, Japanese, Korean), none
    for a combining mark or a format character."""
    return sum(
        2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.category(c) in ("Mn", "Me", "Cf") else 1
        for c in text
    )


def open_configured_store(*, write: bool = False) -> EventStore:
    try:
        settings = load_store_settings()
        # Read-only unless it records hook runs, as the uploads function: the reader role works, and no schema
        # is made where there is none.
        store = open_store(
            settings.database_url.reveal(), timeout_seconds=settings.timeout_seconds, read_only=not write
        )
    except (ConfigError, ValueError) as exc:
        raise Failure(str(exc), 2) from None
    except ImportError:  # e.g. the system python3 without psycopg2, for a PostgreSQL DATABASE_URL
        raise Failure(
            "PostgreSQL needs psycopg2: run this with .venv/bin/python, or pip install psycopg2-binary", 2
        ) from None
    if isinstance(store, SqliteStore) and not os.path.exists(store.path):
        raise Failure(
            f"no database at {store.path}: nothing has been recorded yet (check DATABASE_URL "
            "and the current directory)",
            2,
        )
    # A writer would make the schema: never in a database the functions did not make it in. A reader must find
    # the schema it reads: one the functions have yet to upgrade lacks columns (an error that says nothing).
    reader = open_store(settings.database_url.reveal(), timeout_seconds=settings.timeout_seconds, read_only=True)
    with contextlib.closing(reader):
        try:
            version = reader.schema_version()
        except StoreUnavailable as exc:  # no event store there (or none reachable)
            store.close()
            raise Failure(f"the store is unavailable: {exc}", 2) from None
    if version == 0:  # a table of that name, but empty: every store has its first version recorded
        store.close()
        raise Failure("no event store in that database (its schema_version table is empty): check DATABASE_URL", 2)
    if version > SCHEMA_VERSION or (version < SCHEMA_VERSION and not write):
        store.close()
        raise Failure(
            f"the database's schema is version {version} and this vod-uploads reads version {SCHEMA_VERSION}: "
            + (
                "use the vod-uploads of the release deployed"
                if version > SCHEMA_VERSION
                else "the functions upgrade it when they next store an event (so do `hooks --rerun` and `erase --yes`)"
            ),
            2,
        )
    if write:  # a writer sees to its schema at its first statement: there a login that may only read fails
        try:
            store.schema_version()
        except StoreUnavailable as exc:
            store.close()
            if any(sign in str(exc) for sign in _NOT_WRITABLE):
                raise Failure(
                    f"this command writes, and DATABASE_URL may not ({exc}): use the functions' one", 2
                ) from None
            raise Failure(f"the store is unavailable: {exc}", 2) from None
    return store


# How a store refuses a write to a login that may not make it: PostgreSQL's (a reader's role, a standby), SQLite's
_NOT_WRITABLE = ("InsufficientPrivilege", "ReadOnlySqlTransaction", "readonly database")


def _hook_from_settings() -> AfterCommit:
    note_secrets()  # an error the hook quotes one in is masked as the functions mask it
    try:
        spec = after_commit_hook()
    except ConfigError as exc:
        raise Failure(str(exc), 2) from None
    if spec is None:
        raise Failure("set AFTER_COMMIT_HOOK to the hook the functions run (package.module:function)", 2)
    try:
        return load_hook(spec)
    except ConfigError as exc:  # its module missing, or failing as it is imported (a setting of the app's, say)
        raise Failure(str(exc), 2) from None


def _unfinished(store: EventStore, received_before: float, claimed_before: float) -> Iterator[EventSummary]:
    page = store.unfinished_hooks(received_before, claimed_before=claimed_before)
    while page:
        yield from page
        page = store.unfinished_hooks(received_before, after=page[-1], claimed_before=claimed_before)


_BEING_RERUN_SHOWN = 100  # at most, of the hooks other reruns have now


@contextlib.contextmanager
def _stdout_is_the_list() -> Iterator[TextIO]:
    """Where the list goes: stdout. What the hook module prints (at import too), the processes it starts (which
    inherit file descriptor 1: curl, say) and the functions' log lines go to stderr meanwhile."""
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", encoding=sys.stdout.encoding, errors=sys.stdout.errors)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield out
    finally:
        try:
            out.flush()
        finally:
            os.dup2(out.fileno(), 1)
            out.close()


def give_up(store: EventStore, keys: list[str]) -> None:
    refused = 0
    claims_dead_before = time.time() - RERUN_CLAIM_SECONDS  # a rerun's that died (README), as hooks --rerun takes it
    for key in keys:
        given = store.give_up_hook(key, claims_dead_before)
        refused += not given
        print(shown(f"{key}  " + ("given up: owed the hook no more" if given else "not given up")), flush=True)
    if refused:
        raise Failure(
            f"{refused} of {len(keys)} not given up: only a failed or pending hook is, or one a rerun that died took",
            1,
        )


def hooks(store: EventStore, args: argparse.Namespace) -> None:
    rows, failures = list[dict[str, Any]](), 0
    now = time.time()
    claimed_before = now - RERUN_CLAIM_SECONDS  # a claim's age, whatever --older-than says (README)
    taken: list[EventSummary] | None = None  # the hooks other reruns have: unfinished too, not theirs to run
    # The list is written as each hook is done (all of it, in JSON, also when the run stops part-way).
    with _stdout_is_the_list() as out:
        hook = _hook_from_settings() if args.rerun else None
        owed = None if args.owed_since is None else store.owe_hook(args.owed_since, dry_run=not args.yes)
        if owed is not None and not args.json:
            since = f"{owed} event(s) received since {when(args.owed_since)} while no hook was set"
            print(f"{since}: owed it now" if args.yes else f"{since} would be owed it: add --yes", file=out)
        try:
            for event in _unfinished(store, now - args.older_than, claimed_before):
                outcome, failed, stop = _rerun(hook, store, event) if hook is not None else (None, False, None)
                failures += failed
                rows.append({**plain(event), "rerun": outcome})
                if not args.json:
                    print(_hook_line(event, outcome), file=out, flush=True)
                _stop_if(stop, len(rows))
            taken = store.hooks_being_rerun(claimed_before, limit=_BEING_RERUN_SHOWN)
        finally:
            if args.json:
                listed = {
                    "hooks": rows,
                    **({} if taken is None else {"being_rerun": plain(taken)}),
                    **({} if owed is None else {"now_owed" if args.yes else "would_owe": owed}),
                }
                print(as_json(listed), file=out)
    if not args.json:
        if not rows:
            print(f"no hook failed or left pending (of events older than {args.older_than} s)")
        if taken:
            more = "+" if len(taken) == _BEING_RERUN_SHOWN else ""
            dead = f"if it died, listed {RERUN_CLAIM_SECONDS} s after it took them"
            print(f"{len(taken)}{more} hook(s) being run again by another rerun ({dead}):")
            for event in taken:
                print(_hook_line(event, None, was=f"rerun since {when(event.hook_claimed_at or 0)}"))
    if failures:
        raise Failure(f"{failures} of {len(rows)} hook(s) failed again", 1)


def _rerun(hook: AfterCommit, store: EventStore, event: EventSummary) -> tuple[str, bool, str | None]:
    """The hook run again for `event`: what came of it, whether that is a failure, and why the run stops after it
    is listed: "store" (its result could not be recorded), "interrupted" (Ctrl-C while it ran)."""
    try:
        error = rerun_hook(hook, store, event)
    except RerunInterrupted as exc:  # after the hook ran: its result recorded
        failed = exc.hook_error is not None
        return (f"failed again: {exc.hook_error}" if failed else "done"), failed, "interrupted"
    except KeyboardInterrupt:  # recorded as failed by rerun_hook
        return f"failed: {INTERRUPTED}", True, "interrupted"
    except MalformedEvent as exc:  # stored by an older, laxer version: it cannot be read back
        return f"not run: the stored event cannot be read ({exc.message})", True, None
    except HookNotRecorded as exc:
        ran = "done" if exc.hook_error is None else f"failed again: {exc.hook_error}"
        return f"{ran}, but that could not be recorded ({exc.message})", True, "store"
    except HookTaken as exc:  # another operator's run has it: not this run's failure
        return str(exc), False, None
    return ("done", False, None) if error is None else (f"failed again: {error}", True, None)


def _stop_if(why: str | None, run: int) -> None:
    if why == "interrupted":
        raise KeyboardInterrupt
    if why == "store":
        raise Failure(f"stopped: the store is unavailable ({run} hook(s) run)", 2)


def _hook_line(event: EventSummary, outcome: str | None, was: str | None = None) -> str:
    was = was or {
        "pending": "pending",
        "rerunning": f"rerun since {when(event.hook_claimed_at or 0)}, its result never recorded",
    }.get(event.hook_status or "", f"failed {event.hook_failures}x: {event.hook_last_error}")
    line = shown(f"{when(event.received_at)}  {event.event_type:<22} {event.dedupe_key}  {was}")
    return line if outcome is None else f"{line}\n  run again: {shown(outcome)}"


ERASE_BATCH = 100  # files a transaction erases (each file's lock held until it commits)
RETENTION_MIN_SECONDS = 4 * 24 * 3600  # the shortest retention period: VOD's queue keeps an event up to 4 days


_OUTPUT_FAILED = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG}  # what writing the output can fail with


def _output_stopped(args: argparse.Namespace, exc: OSError) -> int:
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush fails no more
    rerun = args.command == "hooks" and args.rerun
    if isinstance(exc, BrokenPipeError):  # `uploads show X | head`: the reader left, which is fine
        if not rerun:  # but not for a rerun it stopped part-way
            return 0
        print("vod-uploads: stopped, its output closed: the hooks run so far are recorded", file=sys.stderr)
        return 1
    # A full disk, a device's error: what was shown is not all there was, which the status says
    done = ": the hooks run so far are recorded" if rerun else ""
    print(f"vod-uploads: stopped, its output failed ({exc.strerror}){done}", file=sys.stderr)
    return 1


class _Lines:
    """print() to stdout, until it fails (its reader gone, a full disk): then nothing more, and `lost` says why."""

    def __init__(self) -> None:
        self.lost: str | None = None

    def __call__(self, line: str) -> None:
        if self.lost is not None:
            return
        try:
            print(line, flush=True)
        except OSError as exc:
            self.lost = exc.strerror or type(exc).__name__
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush fails no more


def _list_erasable(store: EventStore, file_ids: list[str]) -> None:
    unknown, erased = [], 0
    for file_id in file_ids:
        upload = store.upload(file_id)
        unknown += [] if upload else [file_id]
        erased += upload is not None and upload.status == "erased"
        status = "not recorded" if upload is None else "erased already" if upload.status == "erased" else upload.status
        print(shown(f"{file_id}  {status}  {(upload and upload.name) or '-'}"))
    print(f"{len(file_ids) - len(unknown) - erased} file(s): nothing erased yet; run again with --yes to erase them")
    if unknown:
        raise Failure(shown(f"not recorded: {', '.join(unknown)}"), 1)


def _users_files(store: EventStore, user: str) -> list[str]:
    file_ids = store.files_naming(user)
    if not file_ids:  # a rerun once the user's late uploads could have come, too: nothing left to erase
        raise Failure(no_uploads(store, user, " (none, or all erased already): nothing to erase"), 1)
    other = composed_otherwise(store, user)
    if other:  # the same user to a person's eye, whose files this erasure would leave
        print(f"vod-uploads: {other} too: erase that id as well", file=sys.stderr)
    return file_ids


def erase(store: EventStore, args: argparse.Namespace) -> None:
    """A user's files (as their records name them), or the files named, erased with --yes; listed without. Or those a
    retention period has ended for (--before)."""
    if args.before is not None:
        _erase_past(store, Retention(args.before, args.deleted), yes=args.yes)
        return
    file_ids = list(dict.fromkeys(args.file_ids)) if args.user is None else _users_files(store, args.user)
    if not args.yes:
        _list_erasable(store, file_ids)
        return
    erased: list[str] = []
    say = _Lines()  # an erasure goes on to its end whatever becomes of its output (`| head`, a full disk)
    try:
        _erase_batches(store, file_ids, erased, say)
        done = set(erased)
        left = [(f, store.upload(f)) for f in file_ids if f not in done]
    except StoreUnavailable as exc:  # those printed are erased; running it again erases the rest
        raise Failure(f"the store is unavailable ({len(erased)} file(s) erased): {exc}", 2) from None
    for file_id, upload in left:
        if upload is not None and upload.status == "erased":  # its erasure's time kept (a run again, say)
            say(shown(f"{file_id} erased already: left as it was"))
    _erased_said(say, erased, vod_deleted=False, users=args.user is not None)
    unknown = [file_id for file_id, upload in left if upload is None]
    if unknown:  # a mistyped id: not an erasure done (exit 1, as `show` of it)
        raise Failure(shown(f"not recorded, so nothing to erase: {', '.join(unknown)}"), 1)


def _erase_past(store: EventStore, retention: Retention, *, yes: bool) -> None:
    """The files `retention` has ended for, a page of records at a time (however large the store): erased with
    `yes`, listed without."""
    say, erased, found = _Lines(), list[str](), 0
    after: str | None = ""
    try:
        while after is not None:
            page, after = store.files_past(retention, after=after)
            found += len(page)
            if yes:
                _erase_batches(store, [idle.file_id for idle in page], erased, say, retention)
            for idle in () if yes else page:
                say(shown(f"{idle.file_id}  {idle.status}  last event {when(idle.last_event_at)}  {idle.name or '-'}"))
    except StoreUnavailable as exc:
        raise Failure(f"the store is unavailable ({len(erased)} file(s) erased): {exc}", 2) from None
    if not found:  # a scheduled run with nothing to do: not a failure
        which = " VOD deleted" if retention.deleted_only else ""
        say(f"nothing to erase: no file{which} had its last event before {when(retention.before)} (erased ones aside)")
    elif not yes:
        say(f"{found} file(s): nothing erased yet; run again with --yes to erase them")
    else:
        if found > len(erased):  # listed, then an event came (its period starts again), or another erase was first
            say(f"{found - len(erased)} file(s) not erased: an event came meanwhile, or another erase took it first")
        _erased_said(say, erased, vod_deleted=retention.deleted_only, users=False)


def _erase_batches(
    store: EventStore, file_ids: list[str], erased: list[str], say: _Lines, retention: Retention | None = None
) -> None:
    """`file_ids` erased ERASE_BATCH a transaction (fewer where their events name too many files to lock at once),
    each added to `erased` and said."""
    batches = [file_ids[start : start + ERASE_BATCH] for start in range(0, len(file_ids), ERASE_BATCH)]
    while batches:
        batch = batches.pop(0)
        try:
            done = store.erase(batch, erased_at=time.time(), retention=retention)
        except EraseTooLarge:  # in halves
            batches[:0] = [batch[: len(batch) // 2], batch[len(batch) // 2 :]]
            continue
        erased += done
        for file_id in done:
            say(shown(f"erased {file_id}"))


def _erased_said(say: _Lines, erased: list[str], *, vod_deleted: bool, users: bool) -> None:
    """How many were erased, and what this store cannot reach: said each time, as the README's Personal data says it."""
    vod = (
        ""
        if vod_deleted
        else "VOD still holds each file and its sourceContext (with the user id) until it is deleted there "
        "(DeleteMedia), and "
    )
    later = (
        " Uploads the user made before whose events have not arrived yet are recorded when they come: run this "
        "again once they no longer can (README, Personal data)."
        if users
        else ""
    )
    say(
        f"{len(erased)} file(s) erased from the event store. {vod}CLS keeps the functions' log lines (with the user "
        f"id) until its retention ends.{later}"
    )
    if say.lost is not None:
        print(
            f"vod-uploads: its output stopped ({say.lost}); the erasure went on: {len(erased)} file(s) erased",
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> None:
    store = open_configured_store(
        write=(args.command == "hooks" and (args.rerun or args.yes or bool(args.give_up)))
        or (args.command == "erase" and args.yes)
    )
    try:
        if args.command == "hooks" and args.give_up:
            give_up(store, args.give_up)
            return
        if args.command == "hooks":
            hooks(store, args)
            return
        if args.command == "erase":
            erase(store, args)
            return
        if args.command == "list":
            uploads = store.user_uploads(args.user)[::-1]  # oldest first, as they came
            if args.json:
                listed = {"user": args.user, "uploads": plain(uploads)}
                print(as_json(listed))
            elif uploads:
                print_table(args.user, uploads)
            else:
                print(no_uploads(store, args.user))
            return
        report = store.file_report(args.file_id)
        if report is None:
            raise Failure(f"no upload with file id {args.file_id!r} has been recorded", 1)
        if args.json:
            write_report_json(report, store.payload, sys.stdout.write)
        else:
            print_record(report)
    except StoreUnavailable as exc:
        raise Failure(f"the store is unavailable: {exc}", 2) from None
    finally:
        store.close()


def _text(text: str) -> str:
    try:  # bytes that are not UTF-8 reach argv as lone surrogates: no store can be asked for them
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"not UTF-8 text: {text!r}") from None
    return text


def _seconds(text: str) -> int:
    # A negative age would take hooks that may still be running; a century is as old as any event.
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        raise argparse.ArgumentTypeError(f"not a number of seconds up to 10 digits: {text!r}")
    return int(text)


# What every Python from 3.10 reads alike (3.11's fromisoformat takes more): a date, or a time with Z or an offset
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:\d{2}))?")


def _utc_time(text: str) -> float:
    """A time as `when` writes it (a T instead of the space too), with Z or an offset (a time without one would be
    read in a zone the operator did not mean), or a date, from its start in UTC; not in the future."""
    moment = None
    if _TIME.fullmatch(text):
        with contextlib.suppress(ValueError):  # 2026-02-30, 25:00
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment is None:
        raise argparse.ArgumentTypeError(
            f"not a time such as 2026-12-01T08:30:00Z (Z or an offset such as +08:00), or a date: {text!r}"
        )
    seconds = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    if seconds > time.time():
        raise argparse.ArgumentTypeError(f"in the future: {text!r}")
    return seconds


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vod-uploads", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = p.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="a user's uploads")
    listing.add_argument("--user", required=True, type=_text, help="user id (as the signature function saw it)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = commands.add_parser("show", help="everything recorded about one file")
    show.add_argument("file_id", metavar="FILE_ID", type=_text)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    hooks_ = commands.add_parser("hooks", help="events whose after-commit hook failed or never finished")
    hooks_.add_argument(
        "--older-than",
        type=_seconds,
        default=900,
        metavar="SECONDS",
        help="pending hooks of events at least this old (default 900: SCF's longest timeout, so none is running)",
    )
    hooks_.add_argument("--rerun", action="store_true", help="run AFTER_COMMIT_HOOK again for each")
    hooks_.add_argument(
        "--owed-since",
        type=_utc_time,
        metavar="TIME",
        help="first, owe the hook the events received since TIME (2026-12-01T08:30:00Z, with Z or an offset, or a "
        "date: from its start in UTC) while none was set: a hook turned on since (its rollout's, or the history's "
        "events); listed once --older-than old. Without --yes: how many, nothing changed",
    )
    hooks_.add_argument("--yes", action="store_true", help="with --owed-since: owe them the hook")
    hooks_.add_argument(
        "--give-up",
        nargs="+",
        type=_text,
        metavar="DEDUPE_KEY",
        help="instead, owe these events' failed or pending hooks no more (events the hook can never take, which the "
        "app has dealt with otherwise): listed and rerun no more",
    )
    hooks_.add_argument("--json", action="store_true", help="machine-readable output")
    erase_ = commands.add_parser(
        "erase", help="erase what is kept of a user's uploads, of files, or of those a retention period has ended for"
    )
    whose = erase_.add_mutually_exclusive_group(required=True)
    whose.add_argument(
        "--user",
        type=_text,
        help="every file whose record names this user (as its user, in an unproven seal, a conflict)",
    )
    whose.add_argument("file_ids", metavar="FILE_ID", nargs="*", default=[], type=_text, help="these files")
    whose.add_argument(
        "--before",
        type=_utc_time,
        metavar="TIME",
        help="every file no event has come for since TIME (2026-12-01T08:30:00Z, with Z or an offset, or a date: from "
        "its start in UTC): a retention period, run on a schedule",
    )
    erase_.add_argument("--deleted", action="store_true", help="with --before: only the files VOD deleted")
    erase_.add_argument("--yes", action="store_true", help="erase (without it: list what would be erased)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command == "hooks" and args.give_up and (args.rerun or args.owed_since is not None or args.json):
        p.error("--give-up goes alone (not with --rerun, --owed-since or --json)")
    if args.command == "hooks" and args.yes and args.owed_since is None:
        p.error("--yes goes with --owed-since")
    if args.command == "erase" and args.deleted and args.before is None:
        p.error("--deleted goes with --before")
    if args.command == "erase" and args.before is not None and args.before > time.time() - RETENTION_MIN_SECONDS:
        p.error(
            "--before: at least 4 days ago (VOD keeps an event in its queue that long: a file erased sooner may have "
            "events still to come, which find it erased and reach no hook)"
        )
    stop_on_sigterm()
    try:
        run(args)
    except Failure as failure:
        print(f"vod-uploads: {failure}", file=sys.stderr)
        return failure.status
    except OSError as exc:  # its output's: the reader gone (`| head`), a full disk (`> out.txt`)
        if not isinstance(exc, BrokenPipeError) and exc.errno not in _OUTPUT_FAILED:
            raise
        return _output_stopped(args, exc)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: what was done is recorded (and listed, for hooks --rerun)
        print("vod-uploads: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
