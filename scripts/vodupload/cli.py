"""Upload a video (and its cover) to Tencent Cloud VOD, signed by your app's signature endpoint.

    vod-upload FILE [--cover IMAGE] [--gateway URL] [--token TOKEN] [--procedure NAME] [--json] [--cancel] [--wait]

Ctrl-C pauses: the parts in flight finish, the progress is saved, and running the same command again
resumes (VOD keeps an upload resumable for a day). If VOD refuses to continue the saved upload, for
whatever reason, or it asked for other settings, the command says so and starts over (unless VOD refuses the new
upload too: then the saved one is kept; after a refused commit, the next run asks for it once more, and starts over
if refused again).
--cancel discards a saved upload of FILE and deletes its unfinished parts (if VOD refuses to continue the
upload, they cannot be deleted: it says so; after a run stopped while committing, it asks VOD for that commit
again: too late if VOD confirms it).

Settings: a flag wins over its environment variable:
  --gateway        VOD_UPLOAD_GATEWAY         signature endpoint (a bare http://host:port gets /signature)
  --token          VOD_UPLOAD_TOKEN           bearer token for it (prefer the variable: flags show in `ps`)
  --vod-endpoint   VOD_UPLOAD_ENDPOINT        a local VOD emulator (upload API and COS); unset = Tencent
  --checkpoint-dir VOD_UPLOAD_CHECKPOINT_DIR  where progress is saved; default: the user cache directory
  --status-url     VOD_UPLOAD_STATUS_URL      the uploads function, for --wait; default: beside the gateway

Exit status: 0 uploaded (or --cancel done), 1 failed (or --cancel too late: already uploaded), 2 bad usage,
3 authentication failed (401), 4 refused (by the signature endpoint's policy or by VOD), 5 uploaded but
--wait could not follow it, 6 uploaded but its task flow failed (--wait), 130 interrupted with the progress
saved (or, during --wait, the waiting only: the upload is done). Exits 5 and 6 are not failures to retry:
the upload is done, and another run would upload a second copy.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from tqdm import tqdm

from vodadmin import stop_on_sigterm
from vodupload import (
    AlreadyCommitted,
    AuthenticationFailed,
    CancelOutcome,
    CheckpointStore,
    CheckpointUnavailable,
    GatewayRefusal,
    Notice,
    Progress,
    SignatureClient,
    SignatureRequest,
    Uploader,
    UploadOptions,
    UploadResult,
    UploadState,
    UploadTask,
    VodApiError,
    VodUploadError,
)
from vodupload.errors import SourceChanged, UploadInProgress, shown
from vodupload.status import StatusClient
from vodupload.transfer import MAX_PART_SIZE, MIN_PART_SIZE

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_AUTH, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
# Uploaded, but --wait could not follow it, or VOD's task flow failed: not failures to retry (a second copy).
EXIT_WAIT_FAILED, EXIT_PROCESSING_FAILED = 5, 6
MIB = 1024 * 1024
_RUNNING = {UploadState.APPLYING, UploadState.UPLOADING, UploadState.COMMITTING}


class UsageError(Exception):
    pass


def usage_failure(message: str) -> dict[str, Any]:
    """--json's line for a usage error (exit 2), as for any other failure: a wrapper reads stdout as JSON."""
    return {"status": "failed", "error": {"kind": "usage", "message": message}}


def json_line(payload: dict[str, Any]) -> str:
    """`payload` as one line of JSON that any UTF-8 output takes: a file name's bytes that are not UTF-8 (Python's
    lone surrogates, which a strict stdout refuses) written as JSON escapes, the rest of the text as it is."""
    return json.dumps(payload, ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")


class _Parser(argparse.ArgumentParser):
    json_output = False

    def error(self, message: str) -> NoReturn:
        if self.json_output:
            print(json_line(usage_failure(message)), flush=True)
        super().error(message)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    # Flags in full (no abbreviations), so that whether a usage error owes --json's line is read off the arguments
    # before parsing them (those before a "--": after it, "--json" would be a file's name).
    parser = _Parser(
        prog="vod-upload",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    given = sys.argv[1:] if argv is None else argv
    parser.json_output = "--json" in given[: given.index("--") if "--" in given else None]
    parser.add_argument("file", type=Path, help="the video (its extension tells VOD the type)")
    parser.add_argument("--cover", type=Path, help="a cover image for the video")
    parser.add_argument("--name", help="the video's name in VOD (default: the file name without extension)")
    parser.add_argument("--gateway", default=os.environ.get("VOD_UPLOAD_GATEWAY"), help="signature endpoint URL")
    parser.add_argument("--token", default=os.environ.get("VOD_UPLOAD_TOKEN"), help="bearer token")
    parser.add_argument(
        "--user-claim",
        default=os.environ.get("VOD_UPLOAD_USER_CLAIM") or "sub",
        help="the token's claim that names the user, as the functions' AUTH_JWT_USER_CLAIM (default sub)",
    )
    parser.add_argument("--procedure", help="task flow to start after the upload (if the server allows it)")
    parser.add_argument("--storage-region", help="storage region (if the server allows it)")
    parser.add_argument(
        "--vod-endpoint", default=os.environ.get("VOD_UPLOAD_ENDPOINT") or None, help="base URL of a local VOD emulator"
    )
    parser.add_argument("--checkpoint-dir", type=Path, default=os.environ.get("VOD_UPLOAD_CHECKPOINT_DIR") or None)
    parser.add_argument(
        "--part-size",
        type=_whole(" of MiB", MIN_PART_SIZE // MIB, MAX_PART_SIZE // MIB),
        default=8,
        metavar="MIB",
        help="multipart part size (default 8)",
    )
    parser.add_argument("--parallel", type=_whole("", 1), default=6, metavar="N", help="parts in flight (default 6)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--cancel", action="store_true", help="discard the saved upload of FILE (and --cover)")
    parser.add_argument("--wait", action="store_true", help="then follow the task flow until it finishes or fails")
    parser.add_argument(
        "--wait-timeout", type=_whole(" of seconds", 1), default=600, metavar="SECONDS", help="for --wait (default 600)"
    )
    parser.add_argument(
        "--status-url",
        default=os.environ.get("VOD_UPLOAD_STATUS_URL"),
        help="the uploads endpoint for --wait (default: the gateway's /uploads)",
    )
    return parser.parse_args(argv)


def _whole(unit: str, low: int, high: int | None = None) -> Callable[[str], int]:
    """An argument type: a whole number of `unit` from `low` (to `high`)."""
    bound = f"at least {low}" if high is None else f"from {low} to {high}"

    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
            raise argparse.ArgumentTypeError(f"must be a whole number{unit}, {bound} (got {text!r})")
        return int(text)

    return parse


def _http_url(url: str, flag: str) -> str:
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.netloc) and parts.port != 0
    except ValueError:  # a port that is not a number, say
        usable = False
    if not usable:
        raise UsageError(f"{flag} {shown(url)!r} is not an http(s) URL")
    return url


def signature_url(gateway: str) -> str:
    parts = urlsplit(_http_url(gateway, "--gateway (or VOD_UPLOAD_GATEWAY)"))
    return urlunsplit(parts._replace(path="/signature")) if parts.path in ("", "/") else gateway


def status_url(args: argparse.Namespace) -> str:
    if args.status_url:
        return _http_url(str(args.status_url), "--status-url (or VOD_UPLOAD_STATUS_URL)")
    # Its path's last step replaced; a query is the signature endpoint's (the uploads function refuses any other
    # than its own `wait`): --status-url for an uploads endpoint that needs one
    parts = urlsplit(signature_url(args.gateway))
    path = parts.path.rstrip("/").removesuffix("/signature") + "/uploads"
    return urlunsplit(parts._replace(path=path, query="", fragment=""))


def follow(args: argparse.Namespace, file_id: str, console: Console) -> int:
    """--wait: the record, once the task flow has finished or failed, with a spinner meanwhile."""
    spinner = Spinner(enabled=not (args.quiet or args.json) and sys.stderr.isatty())
    try:
        upload = StatusClient(status_url(args), args.token).follow(
            file_id, timeout=args.wait_timeout, on_update=lambda u: spinner.status(u["status"])
        )
    except VodUploadError as exc:
        spinner.stop()
        console.say(f"{exc.message}; the upload itself is done (file id {file_id}): only the waiting failed")
        error = {"kind": failure_kind(exc)[0], "message": exc.message}
        console.result({"status": "wait_failed", "fileId": file_id, "error": error}, "")
        return EXIT_WAIT_FAILED
    except KeyboardInterrupt:
        spinner.stop()
        console.say(f"stopped waiting; the upload itself is done (file id {file_id})")
        console.result({"status": "stopped_waiting", "fileId": file_id}, "")
        return EXIT_INTERRUPTED
    spinner.stop()
    console.result({"status": "settled", "upload": upload}, _settled_text(upload))
    return EXIT_PROCESSING_FAILED if upload["status"] == "failed" else EXIT_OK


def _settled_text(upload: dict[str, Any]) -> str:
    """The record as a person reads it: where the media is, and what each task made (and where)."""
    lines = [f"status     {upload['status']}", f"media      {upload.get('mediaUrl') or '-'}"]
    for task in upload["tasks"]:
        error = f" (error {task.get('errCode')}: {task.get('message')})" if task.get("errCode") else ""
        lines.append(f"task       {task.get('taskId')}: {task.get('status')}{error}")
        for output in task.get("outputs") or []:
            urls, count = output.get("urls") or [], output.get("urlCount")
            more = f" (+{count - len(urls)} more)" if isinstance(count, int) and count > len(urls) else ""  # capped
            lines.append(f"  {output.get('type')}  {output.get('status') or '-'}  {' '.join(urls)}{more}")
        shown, count = len(task.get("outputs") or []), task.get("outputCount")
        if isinstance(count, int) and count > shown:  # the first 100 listed
            lines.append(f"  (+{count - shown} more outputs)")
    return "\n".join(lines)


class Spinner:
    """A line on stderr that turns while the task flow runs (only on a terminal)."""

    def __init__(self, *, enabled: bool) -> None:
        self._status, self._stop = "waiting for VOD's event", threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True) if enabled else None
        if self._thread:
            self._thread.start()

    def status(self, status: str) -> None:
        self._status = status

    def _spin(self) -> None:
        for frame in itertools.cycle("|/-\\"):
            if self._stop.wait(0.1):
                return
            sys.stderr.write(f"\r{frame} {self._status}   ")
            sys.stderr.flush()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
            sys.stderr.write("\r")


def make_uploader(args: argparse.Namespace) -> Uploader:
    if not args.gateway:
        raise UsageError("no signature endpoint: give --gateway URL or set VOD_UPLOAD_GATEWAY")
    if not args.token:
        raise UsageError("no bearer token: set VOD_UPLOAD_TOKEN (or give --token)")
    if args.vod_endpoint:
        _http_url(args.vod_endpoint, "--vod-endpoint (or VOD_UPLOAD_ENDPOINT)")
    if args.wait:
        status_url(args)  # checked now: a bad one found after the upload could only fail the waiting
    signer = SignatureClient(
        signature_url(args.gateway),
        args.token,
        SignatureRequest(procedure=args.procedure, storage_region=args.storage_region),
        user_claim=args.user_claim,
    )
    try:
        options = UploadOptions(endpoint=args.vod_endpoint, part_size=args.part_size * MIB, parallel=args.parallel)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return Uploader(signer, options, checkpoints=CheckpointStore(args.checkpoint_dir))


class Console:
    """Messages and the progress bar on stderr; results on stdout."""

    def __init__(self, label: str, *, json_output: bool, quiet: bool) -> None:
        self.label = label
        self.json_output = json_output
        self.quiet = quiet
        self._bar: Any = None
        self._lock = threading.Lock()

    def say(self, message: str) -> None:
        tqdm.write(f"vod-upload: {message}", file=sys.stderr)

    def notice(self, notice: Notice) -> None:
        self.say(notice.message)

    def progress(self, progress: Progress) -> None:
        with self._lock:
            if self._bar is None:  # made on the first report, so that resumed bytes do not count as speed
                self._bar = tqdm(
                    total=progress.bytes_total,
                    initial=progress.bytes_done,
                    desc=self.label,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    file=sys.stderr,
                    dynamic_ncols=True,
                    disable=True if self.quiet else None,
                )
            if progress.bytes_done > self._bar.n:  # reports only go up; never move the bar back
                self._bar.update(progress.bytes_done - self._bar.n)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()

    def result(self, payload: dict[str, Any], text: str, *, final: bool = True) -> None:
        """`final`: the run's outcome. A Ctrl-C or SIGTERM after it is ignored: it could only turn the exit status
        into 130 (interrupted) after the line said otherwise, and a script that trusts the status would upload again."""
        if final:
            ignore_interrupts()
        try:
            if self.json_output:
                print(json_line(payload), flush=True)
            elif text:
                print(text, flush=True)
        except OSError:  # stdout gone (its reader left: `| head`): the outcome stands, and the exit status says it
            with open(os.devnull, "wb") as devnull:  # what is left in the buffer goes nowhere at exit, quietly
                os.dup2(devnull.fileno(), sys.stdout.fileno())


def ignore_interrupts() -> None:
    for sent in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sent, signal.SIG_IGN)


def wait(task: UploadTask) -> UploadState:
    # Short waits keep the main thread responsive to Ctrl-C.
    while (state := task.wait(0.2)) in _RUNNING:
        pass
    return state


def run_upload(args: argparse.Namespace, uploader: Uploader, console: Console) -> int:
    task = uploader.upload(
        args.file, args.cover, name=args.name, on_progress=console.progress, on_notice=console.notice
    )
    task.start()
    try:
        state = wait(task)
    except KeyboardInterrupt:
        try:  # a second Ctrl-C, however soon, quits at once
            console.say("pausing: letting the parts in flight finish (Ctrl-C again to quit at once)")
            task.pause()
            state = wait(task)
        except KeyboardInterrupt:
            # Committed just then (its checkpoint gone): done, said below; told "stopped", a rerun would upload a copy.
            # A third Ctrl-C meanwhile (a held-down key, a supervisor's repeated SIGTERM) quits all the same.
            try:
                committed = task.wait(0.1) is UploadState.DONE
            except KeyboardInterrupt:
                committed = task.state is UploadState.DONE
            if not committed:
                ignore_interrupts()  # quitting: the line that says so must be written
                console.close()
                console.say("stopped; the progress saved so far is kept: run the same command again to resume")
                console.result({"status": "stopped", "bytesDone": task.progress.bytes_done}, "")
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(EXIT_INTERRUPTED)  # worker threads may be mid-request: do not wait for them
            state = UploadState.DONE
    if state is UploadState.DONE and not args.wait:
        ignore_interrupts()  # the outcome is known: told "interrupted" instead, a script would upload it again
    console.close()
    if state is UploadState.DONE:
        report_done(task.result(), task, console, final=not args.wait)
        return follow(args, task.result().file_id, console) if args.wait else EXIT_OK
    if state is UploadState.PAUSED:
        done, total = task.progress.bytes_done / MIB, task.progress.bytes_total / MIB
        console.say(
            f"paused; the progress is saved ({done:.1f} of {total:.1f} MiB uploaded). "
            "Run the same command again to resume, or add --cancel to discard it."
        )
        console.result(
            {"status": "paused", "bytesDone": task.progress.bytes_done, "bytesTotal": task.progress.bytes_total}, ""
        )
        return EXIT_INTERRUPTED
    try:
        task.result()
    except VodUploadError as exc:
        # Another run's checkpoint is that run's progress, not this one's to retry; a changed file's next run
        # starts over (it says so), whatever is saved
        mine = not isinstance(exc, (UploadInProgress, SourceChanged))
        return report_failure(exc, console, saved=mine and _saved(uploader, task.checkpoint_name))
    return EXIT_FAILED


def _saved(uploader: Uploader, name: str) -> bool:
    try:
        return uploader.checkpoints.load(name) is not None
    except CheckpointUnavailable:  # the failure being reported already says so
        return False


def report_done(result: UploadResult, task: UploadTask, console: Console, *, final: bool) -> None:
    progress = task.progress
    payload = {
        "status": "done",
        "fileId": result.file_id,
        "videoUrl": result.video_url,
        "coverUrl": result.cover_url,
        "bytes": progress.bytes_total,
        "bytesResumed": progress.bytes_resumed,
    }
    lines = [f"file id    {result.file_id}", f"video url  {result.video_url}"]
    if result.cover_url:
        lines.append(f"cover url  {result.cover_url}")
    console.result(payload, "\n".join(lines), final=final)


def failure_kind(error: VodUploadError) -> tuple[str, int]:
    if isinstance(error, AuthenticationFailed):
        return "authentication_failed", EXIT_AUTH
    if isinstance(error, (GatewayRefusal, VodApiError)):
        return "refused", EXIT_REFUSED
    return "failed", EXIT_FAILED


def report_failure(
    error: VodUploadError,
    console: Console,
    *,
    saved: bool = False,
    saved_note: str = "the progress is saved: run the same command again to retry",
) -> int:
    kind, status = failure_kind(error)
    hint = {EXIT_AUTH: " (check VOD_UPLOAD_TOKEN / --token)"}.get(status, "")
    console.say(f"{error.message}{hint}")
    if saved:
        console.say(saved_note)
    detail: dict[str, Any] = {"kind": kind, "message": error.message}
    if isinstance(error, (GatewayRefusal, VodApiError)):
        detail["code"] = error.code
    console.result({"status": "failed", "error": detail}, "")
    return status


def run_cancel(args: argparse.Namespace, uploader: Uploader, console: Console) -> int:
    """Exit 0 when the saved upload is gone; still 0 (with a warning, and "partsDeleted": false) when its
    parts could not be deleted, since running --cancel again cannot change that. A failure that another
    try may fix (VOD or the signature endpoint refusing or unreachable) keeps the saved upload: exit != 0."""
    try:
        outcome = uploader.cancel_saved(args.file, args.cover, on_notice=console.notice)
    except KeyboardInterrupt:  # the saved upload goes last, so it is there until the cancel is done
        console.say("stopped; the cancel is not finished: run the same command again to finish it")
        console.result({"status": "cancel_stopped"}, "")
        return EXIT_INTERRUPTED
    except AlreadyCommitted as exc:
        console.say(f"{exc.message}: the previous run had sent its commit, and VOD confirms it")
        committed = exc.committed
        urls = {"videoUrl": committed.video_url, "coverUrl": committed.cover_url}
        console.result({"status": "already_uploaded", "fileId": committed.file_id, **urls}, "")
        return EXIT_FAILED
    except VodUploadError as exc:
        return report_failure(
            exc,
            console,
            saved=not isinstance(exc, CheckpointUnavailable),
            saved_note="nothing was discarded: the saved upload is kept; run the same command again to retry",
        )
    if outcome is CancelOutcome.NOTHING_SAVED:
        console.say(f"there is no saved upload of {args.file} to cancel")
        console.result({"status": "nothing_to_cancel"}, "")
        return EXIT_OK
    deleted = outcome is CancelOutcome.DISCARDED
    if deleted:
        console.say(
            f"cancelled the saved upload of {args.file}; its unfinished parts were deleted (a video or cover "
            "already stored whole stays in VOD's storage, uncommitted, until VOD removes it)"
        )
    else:
        console.say(
            f"warning: cancelled the saved upload of {args.file}, but its uploaded parts could NOT be "
            "deleted (see above); they stay in VOD's storage until it expires them"
        )
    console.result({"status": "cancelled", "partsDeleted": deleted}, "")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(args.file.name, json_output=args.json, quiet=args.quiet)
    try:
        uploader = make_uploader(args)
        try:
            return (run_cancel if args.cancel else run_upload)(args, uploader, console)
        finally:
            uploader.close()
    except (UsageError, OSError, ValueError) as exc:  # OSError, ValueError: the file (missing, unreadable, its type)
        console.say(str(exc))
        console.result(usage_failure(str(exc)), "")
        return EXIT_USAGE
    except VodUploadError as exc:
        return report_failure(exc, console)


def command() -> int:
    """The vod-upload command: main(), with SIGTERM (`timeout`, a service manager) taken as Ctrl-C is: the parts in
    flight finish, the progress is saved, and --json still prints its line."""
    stop_on_sigterm()
    return main()


if __name__ == "__main__":
    sys.exit(command())
