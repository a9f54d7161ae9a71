"""The uploader's parts on their own: part plans, checkpoints, file identity, progress, credentials as the
COS SDK reads them, and the retries (against scripted loopback answers)."""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from qcloud_cos.cos_exception import CosClientError, CosServiceError
from werkzeug.wrappers import Request, Response

import vodupload
from tests.checkout import ROOT
from tests.client.conftest import CHECKPOINT_FIELDS, MIB, write_file
from tests.clocks import OffsetClock
from tests.conftest import LeakGuard, Serve
from tests.emulator.cos_helpers import CRC64_HEADER, md5_etag, sdk_crc64
from vodlocal import localstack
from vodtesting import dev_token
from vodupload import (
    Checkpoint,
    CheckpointStore,
    CheckpointUnavailable,
    SavedObject,
    SessionCredentials,
    SignatureClient,
    SignatureRefused,
    SignatureUnavailable,
    StorageError,
    UploadOptions,
    VodApiError,
    VodClient,
    VodUnavailable,
    errors,
    identify,
)
from vodupload.checkpoint import checkpoint_name
from vodupload.cos import RetryPolicy, call_cos, cos_endpoint, make_client
from vodupload.errors import shown
from vodupload.halting import Halted
from vodupload.progress import ProgressMeter
from vodupload.signatures import token_subject
from vodupload.status import StatusClient
from vodupload.transfer import PartSpec, check_stored, fit_part_size, plan_parts
from vodupload.uploader import UploadState, UploadTask
from vodupload.vod_api import Applied, TempCredentials


@pytest.mark.parametrize(
    ("size", "wanted", "part_size", "plan"),
    [
        (0, MIB, MIB, []),
        (MIB, MIB, MIB, [PartSpec(1, 0, MIB)]),
        (2 * MIB + 1, MIB, MIB, [PartSpec(1, 0, MIB), PartSpec(2, MIB, MIB), PartSpec(3, 2 * MIB, 1)]),
        (10000 * MIB, MIB, MIB, None),  # exactly the 10000-part limit
        (10000 * MIB + 1, MIB, 2 * MIB, None),  # one byte more: whole MiB parts, twice as large
        (50_000 * MIB, 8 * MIB, 8 * MIB, None),
    ],
)
def test_part_plans_stay_within_cos_limits(size: int, wanted: int, part_size: int, plan: list[PartSpec] | None) -> None:
    assert fit_part_size(size, wanted) == part_size
    if plan is not None:
        assert plan_parts(size, part_size) == plan
    assert len(plan_parts(size, part_size)) <= 10000


def _checkpoint(tmp_path: Path) -> Checkpoint:
    source = identify(write_file(tmp_path / "a.mp4", 3 * MIB))
    cover = identify(write_file(tmp_path / "a.jpg", 1000))
    return Checkpoint(
        "name", "session-key", 1700000000.5, [SavedObject("video", source, "upload-1"), SavedObject("cover", cover)]
    )


def test_checkpoints_round_trip_atomically_and_privately(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "checkpoints")
    checkpoint = _checkpoint(tmp_path)

    store.save(checkpoint)

    assert store.load("name") == checkpoint
    assert [p.name for p in store.directory.iterdir()] == ["name.json"]  # no temporary file left behind
    assert stat.S_IMODE(os.stat(store.path("name")).st_mode) == 0o600
    saved = json.loads(store.path("name").read_text())
    # Only what COS cannot tell: no parts, no bucket or object keys (they come back with the session).
    assert set(saved) == CHECKPOINT_FIELDS
    assert [(obj["role"], obj["upload_id"]) for obj in saved["objects"]] == [("video", "upload-1"), ("cover", None)]
    assert "session-key" not in repr(checkpoint)
    store.delete("name")
    store.delete("name")
    assert store.load("name") is None


def test_a_checkpoint_that_cannot_be_written_or_removed_says_where(tmp_path: Path) -> None:
    write_file(tmp_path / "a-file", 1)
    with pytest.raises(CheckpointUnavailable, match=r"^cannot write the saved uploads in .*a-file/checkpoints: "):
        CheckpointStore(tmp_path / "a-file" / "checkpoints").save(_checkpoint(tmp_path))
    store = CheckpointStore(tmp_path / "checkpoints")
    store.path("name").mkdir(parents=True)  # not a file: it cannot be unlinked
    (store.path("name") / "x").touch()
    with pytest.raises(CheckpointUnavailable, match=r"^cannot remove .*name\.json: "):
        store.delete("name")


def test_a_cover_is_found_past_a_checkpoint_that_cannot_be_read(tmp_path: Path) -> None:
    # GIVEN a directory shared by OS users: one's checkpoint, and another's this one cannot read (here a directory,
    # as unreadable as a 0600 file of someone else's)
    store = CheckpointStore(tmp_path / "checkpoints")
    checkpoint = _checkpoint(tmp_path)
    store.save(checkpoint)
    store.path("0-someone-elses").mkdir()
    store.path("1-damaged").write_text("[" * 100_000)  # (nested past the JSON decoder's depth)
    # WHEN a cancel that names only the video looks for its cover THEN the unreadable one does not end the search
    assert store.covers_saved_with(checkpoint.objects[0].source.path) == [checkpoint.objects[1].source.path]


def test_a_checkpoint_saved_by_the_previous_version_still_resumes(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    expected = _checkpoint(tmp_path)
    old = {**expected.to_json(), "version": 1, "bucket": "vodugc-1250000000", "region": "ap-guangzhou"}
    old["objects"] = [
        {
            **obj,
            "key": f"1/abc/{obj['role']}",
            "part_size": MIB,
            "completed": obj["upload_id"] is None,
            "parts": [{"number": 1, "size": MIB, "etag": '"aa"'}],
        }
        for obj in old["objects"]
    ]
    store.path("name").write_text(json.dumps(old))

    # The parts and the storage are asked from COS and VOD now; the part size the upload began with is kept.
    assert store.load("name") == replace(expected, objects=[replace(o, part_size=MIB) for o in expected.objects])


@pytest.mark.parametrize("text", ["{not json", '{"version": 99}', '{"version": 1}', "[]"])
def test_an_unreadable_checkpoint_counts_as_none(tmp_path: Path, text: str) -> None:
    store = CheckpointStore(tmp_path)
    store.path("x").write_text(text)
    assert store.load("x") is None and store.path("x").read_text() == text  # looked up: left as it is
    heard: list[str] = []
    # A run's load: set aside (not overwritten by the run's own checkpoint, nor a newer version's lost), and said
    assert store.load("x", heard.append) is None and not store.path("x").exists()
    assert (tmp_path / "x.json.unreadable").read_text() == text
    assert len(heard) == 1 and "x.json cannot be read" in heard[0] and "set aside as x.json.unreadable" in heard[0]


def _same_bytes_other_time(path: Path) -> None:
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))


def _other_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    _same_bytes_other_time(path)


@pytest.mark.parametrize(
    ("change", "described"),
    [
        (lambda path: None, None),
        (_same_bytes_other_time, "it was modified"),
        (_other_middle, "its content changed"),
        (lambda path: path.write_bytes(path.read_bytes() + b"!"), "its size changed (2097152 -> 2097153 bytes)"),
    ],
)
def test_file_identity_notices_changes(tmp_path: Path, change: Any, described: str | None) -> None:
    path = write_file(tmp_path / "clip.mp4", 2 * MIB)
    before = identify(path)
    change(path)
    assert identify(path).change_from(before) == described


def test_progress_reports_speed_over_this_run_only() -> None:
    now = [100.0]
    reports: list[Any] = []
    meter = ProgressMeter(10 * MIB, reports.append, monotonic=lambda: now[0])

    meter.restart(4 * MIB)  # resumed: 4 MiB were uploaded before and are no speed
    now[0] += 2
    meter.add(MIB)
    now[0] += 2
    meter.add(MIB)

    assert reports[0].bytes_per_second == 0.0
    last = reports[-1]
    assert (last.bytes_done, last.bytes_total, last.bytes_resumed) == (6 * MIB, 10 * MIB, 4 * MIB)
    assert last.bytes_per_second == MIB / 2 and last.fraction == 0.6


class _EnterSignal:
    """A lock that calls `on_enter` before it blocks to acquire (`with` only)."""

    def __init__(self, on_enter: Any) -> None:
        self._lock = threading.Lock()
        self._on_enter = on_enter

    def __enter__(self) -> None:
        self._on_enter()
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def test_a_progress_report_is_never_overtaken_by_an_older_one() -> None:
    """Two parts finish at once: the first part's report is still in its callback when the second part is
    counted and reported. The reports must arrive in order (a progress bar must not go back)."""
    delivered: list[int] = []
    other_progressed = threading.Event()  # the other part's add() reported, or waits for its turn to

    def other_part_finishes() -> None:
        meter.add(MIB)
        other_progressed.set()

    other = threading.Thread(target=other_part_finishes)

    def on_report(progress: Any) -> None:
        if threading.current_thread() is not other and other.ident is None:
            other.start()  # the other part finishes while this report is being delivered
            assert other_progressed.wait(30)
        delivered.append(progress.bytes_done)

    def entering_a_report() -> None:
        if threading.current_thread() is other:
            other_progressed.set()

    meter = ProgressMeter(2 * MIB, on_report, monotonic=lambda: 0.0)
    meter._reporting = _EnterSignal(entering_a_report)  # type: ignore[assignment]  # see when it waits
    meter.add(MIB)
    other.join(30)

    assert not other.is_alive()
    assert delivered == [MIB, 2 * MIB]
    assert meter.snapshot().bytes_done == 2 * MIB


def _applied(server_time: int, lifetime: int, n: int = 1) -> Applied:
    return Applied(
        "key",
        "bucket-1250000000",
        "ap-guangzhou",
        "v.mp4",
        None,
        TempCredentials(f"AKID{n}", f"secret{n}", f"token{n}", server_time + lifetime),
        server_time,
    )


def _renewing(
    clock: Any, lifetime: int, *, skew: int = 0, margin: float = 60
) -> tuple[SessionCredentials, list[Applied]]:
    """Credentials that re-apply (numbering each new set) on `clock`, VOD's clock running `skew` s ahead."""
    reapplied: list[Applied] = []

    def reapply() -> Applied:
        reapplied.append(_applied(int(clock()) + skew, lifetime, len(reapplied) + 2))
        return reapplied[-1]

    return SessionCredentials(_applied(int(clock()) + skew, lifetime), reapply, clock=clock, margin=margin), reapplied


@pytest.mark.parametrize(
    ("lifetime", "margin", "renews_after"),
    [
        (600, 300, 300),  # renew 300 s ahead of expiry
        (60, 300, 30),  # short-lived credentials: margin capped at half their life
    ],
)
def test_credentials_are_renewed_ahead_of_expiry_on_vods_clock(lifetime: int, margin: int, renews_after: int) -> None:
    clock = OffsetClock()
    # VOD's clock runs 5000 s ahead of ours: only the lifetime it states matters.
    credentials, reapplied = _renewing(clock, lifetime, skew=5000, margin=margin)
    clock.advance(renews_after - 2)
    first = (credentials.secret_id, credentials.secret_key, credentials.token)
    clock.advance(2)
    second = (credentials.secret_id, credentials.secret_key, credentials.token)

    assert (first, second) == (("AKID1", "secret1", "token1"), ("AKID2", "secret2", "token2"))
    assert len(reapplied) == 1


def test_a_request_signs_with_one_set_of_credentials_even_if_another_thread_renews() -> None:
    clock = OffsetClock()
    credentials, _ = _renewing(clock, 600)
    assert credentials.secret_id == "AKID1"  # a request in this thread starts signing
    clock.advance(600)

    renewing = threading.Thread(target=lambda: credentials.secret_id)  # another request renews meanwhile
    renewing.start()
    renewing.join(30)

    assert (credentials.secret_key, credentials.token) == ("secret1", "token1")  # still this request's set
    assert (credentials.secret_id, credentials.secret_key, credentials.token) == ("AKID2", "secret2", "token2")
    credentials.renew_after_denial()  # COS refused AKID2: renew once more
    assert credentials.secret_id == "AKID3"


def test_the_cos_sdk_signs_each_request_with_the_current_credentials() -> None:
    """CosConfig(CredentialInstance=...) as the SDK really uses it: secret id and security token are read per
    request, so renewed credentials take effect at once, token included."""
    seen: list[tuple[str, str | None]] = []

    def cos(environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        access_key = dict(pair.split("=", 1) for pair in request.headers["Authorization"].split("&"))["q-ak"]
        seen.append((access_key, request.headers.get("x-cos-security-token")))
        return Response(b"", 200, headers={"ETag": '"d41d8cd98f00b204e9800998ecf8427e"'})(environ, start_response)

    server = localstack.serve_wsgi("scripted-cos", cos)
    clock = OffsetClock()
    credentials, _ = _renewing(clock, 600)
    try:
        client = make_client(credentials, cos_endpoint(server.url), requests.Session(), 10)
        client.put_object(Bucket="bucket-1250000000", Key="v.mp4", Body=b"")
        clock.advance(600)  # expired: the next request re-applies first
        client.put_object(Bucket="bucket-1250000000", Key="v.mp4", Body=b"")
    finally:
        server.stop()

    assert seen == [("AKID1", "token1"), ("AKID2", "token2")]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"], ids=["ipv4", "ipv6"])
def test_an_endpoint_on_either_loopback_address_is_where_cos_requests_go(host: str) -> None:
    paths: list[str] = []

    def cos(environ: Any, start_response: Any) -> Any:
        paths.append(environ["PATH_INFO"])
        return Response(b"", 200, headers={"ETag": '"d41d8cd98f00b204e9800998ecf8427e"'})(environ, start_response)

    server = localstack.serve_wsgi("scripted-cos", cos, host=host)
    try:
        client = make_client(_renewing(OffsetClock(), 600)[0], cos_endpoint(server.url), requests.Session(), 10)
        client.put_object(Bucket="bucket-1250000000", Key="v.mp4", Body=b"")
    finally:
        server.stop()

    assert paths == ["/v.mp4"]


@pytest.mark.parametrize(
    "options",
    [
        {"part_size": MIB - 1},
        {"part_size": 6 * 1024**3},
        {"parallel": 0},
        {"part_attempts": 0},
        {"api_retries": -1},
        # (each upload would spend a signature, then fail as an "unexpected error")
        {"timeout": 0},
        {"timeout": float("nan")},
        {"timeout": float("inf")},
        {"retry_backoff": -1},
        {"api_retry_delay": float("nan")},
        {"api_retry_delay": float("inf")},
    ],
)
def test_upload_options_refuse_impossible_values(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the setting; any ValueError will do
        UploadOptions(**options)


@pytest.mark.parametrize(
    "options",
    [
        {"part_size": MIB},  # COS's least part
        {"part_size": 5 * 1024**3},  # and its largest
        {"parallel": 1},
        {"part_attempts": 1},  # the first try, no retry
        {"api_retries": 0},
    ],
    ids=["least-part", "largest-part", "one-at-a-time", "no-retry-of-a-part", "no-retry-of-an-api-call"],
)
def test_upload_options_take_the_bounds_they_allow(options: dict[str, Any]) -> None:
    settings = UploadOptions(**options)  # no ValueError
    assert {name: getattr(settings, name) for name in options} == options


class _SwitchingLock:
    """A lock whose `nth` release by the thread named "first" runs `then` to its end first (a thread switch there)."""

    def __init__(self, nth: int, then: Callable[[], object]) -> None:
        self._lock, self._releases, self._nth, self._then = threading.Lock(), 0, nth, then

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
        if threading.current_thread().name == "first":
            self._releases += 1
            if self._releases == self._nth:
                self._then()


def _reporting_task(on_state: Callable[[UploadState], None]) -> UploadTask:
    """A task with only its state reporting set up (as UploadTask.__init__ sets it)."""
    task = UploadTask.__new__(UploadTask)
    task._on_state, task._reported, task._reports, task._reporting = on_state, 0, collections.deque(), False
    task._report_lock = threading.Lock()
    return task


def _in_thread(target: Callable[[], object], name: str) -> None:
    thread = threading.Thread(target=target, name=name)
    thread.start()
    thread.join(10)


@pytest.mark.parametrize("when", ["as the first finds nothing left", "while the first's callback raises SystemExit"])
def test_a_state_reported_while_another_thread_delivers_is_delivered(when: str) -> None:
    # GIVEN a task whose run's thread reports PAUSED while another settles it CANCELLED (an idle cancel)
    heard: list[UploadState] = []

    def cancelled() -> None:
        _in_thread(lambda: task._emit_state(UploadState.CANCELLED, 2), "second")

    def on_state(state: UploadState) -> None:
        heard.append(state)
        if "SystemExit" in when and state is UploadState.PAUSED:
            cancelled()
            raise SystemExit  # (not an Exception: _guarded lets it through)

    task = _reporting_task(on_state)
    if "nothing left" in when:  # the second comes between the first's last look at the queue and its end
        task._report_lock = _SwitchingLock(3, cancelled)  # type: ignore[assignment]

    def paused() -> None:  # the run's thread
        with contextlib.suppress(SystemExit):
            task._emit_state(UploadState.PAUSED, 1)

    _in_thread(paused, "first")

    # THEN the final state is heard, after the pause, and nothing is left queued for nobody
    assert heard == [UploadState.PAUSED, UploadState.CANCELLED] and not task._reports


def test_the_cos_sdks_debug_lines_are_dropped(caplog: pytest.LogCaptureFixture, leak_guard: LeakGuard) -> None:
    import vodupload.cos  # noqa: F401 - installs the filter

    logging.getLogger("qcloud_cos.cos_auth").debug("sign_key: %s", leak_guard.add("derived-signing-key"))
    logging.getLogger("qcloud_cos.cos_client").info("put object, url=:...")

    assert [record.name for record in caplog.records] == ["qcloud_cos.cos_client"]


def test_the_signature_client_retries_5xx_and_reports_a_malformed_answer() -> None:
    malformed = ["{}", '{"signature": null}', '{"signature": ""}', '{"signature": 5}']  # null must not reach VOD
    malformed.append('{"signature": "c2ln", "expireTime": 1e999}')
    malformed.append("[" * 100_000)  # nested past the JSON decoder's depth (RecursionError)
    answers = [
        Response("busy", 503),
        Response(json.dumps({"signature": "c2ln"}), 200, mimetype="application/json"),
        *(Response(text, 200, mimetype="application/json") for text in malformed),
    ]
    seen: list[tuple[str | None, Any]] = []

    def app(environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        seen.append((request.headers.get("Authorization"), request.get_json()))
        return answers.pop(0)(environ, start_response)

    server = localstack.serve_wsgi("scripted-gateway", app)
    try:
        tokens = (f"t{i}" for i in itertools.count(1))
        client = SignatureClient(server.url, lambda: next(tokens), backoff=0)
        assert client() == "c2ln"
        for _ in malformed:
            with pytest.raises(SignatureUnavailable, match="has no signature"):
                client.fetch()
    finally:
        server.stop()

    assert seen == [(f"Bearer t{i}", {}) for i in range(1, 3 + len(malformed))]  # a fresh token per request


@pytest.mark.parametrize(("asked", "waited"), [("7", 7.0), ("86400", 30.0)])  # a day's wait: not a hung client
def test_the_signature_client_waits_out_a_busy_gateway(asked: str, waited: float) -> None:
    # A throttling gateway (429, Retry-After) or a timed-out request (408) is busy, not a refusal.
    answers = [
        Response("slow down", 429, headers={"Retry-After": asked}),
        Response("timeout", 408),
        Response(json.dumps({"signature": "c2ln"}), 200, mimetype="application/json"),
    ]

    def app(environ: Any, start_response: Any) -> Any:
        return answers.pop(0)(environ, start_response)

    server = localstack.serve_wsgi("scripted-gateway", app)
    slept: list[float] = []
    try:
        assert SignatureClient(server.url, "t", backoff=0.5, sleep=slept.append)() == "c2ln"
    finally:
        server.stop()
    assert slept == [waited, 1.0]  # as the gateway asked (up to a bound), then the backoff


def _vod_answer(code: int, data: dict[str, Any] | None = None) -> Response:
    return Response(
        json.dumps({"code": code, "message": "test answer", "data": data or {}}), 200, mimetype="application/json"
    )


_PREPARED = {"appId": 1250000000, "cosRegionList": [{"region": "ap-guangzhou"}]}


@pytest.mark.parametrize(
    ("answers", "outcome", "posts"),
    [
        ([_vod_answer(0, _PREPARED)], "ok", 1),
        ([_vod_answer(10010)], "code 10010", 1),  # a refusal is definite: retrying would spend another signature
        ([Response("bad gateway", 502), _vod_answer(0, _PREPARED)], "ok", 2),  # 5xx: retried
        ([Response("<html>proxy</html>", 200), _vod_answer(0, _PREPARED)], "ok", 2),  # not the envelope: retried
        ([Response("[" * 100_000, 200), _vod_answer(0, _PREPARED)], "ok", 2),  # nor JSON nested past the decoder
        ([Response("", 500)] * 3 + [_vod_answer(10010)], "code 10010", 4),
        ([Response("", 503)] * 4, "after 4 attempts (the last: HTTP 503 from http://127.0.0.1:", 4),
        # Another server where VOD's should be (a wrong endpoint): said so, with where.
        ([Response("<html>not found</html>", 404)] * 4, ", not VOD's answer); check the VOD endpoint", 4),
    ],
    ids=[
        "ok",
        "refused",
        "5xx-then-ok",
        "not-json-then-ok",
        "deep-json-then-ok",
        "5xx-then-refused",
        "5xx-always",
        "not-vod-always",
    ],
)
def test_the_vod_client_retries_failures_to_answer_but_not_refusals(
    answers: list[Response], outcome: str, posts: int
) -> None:
    signatures: list[str] = []

    def app(environ: Any, start_response: Any) -> Any:
        signatures.append(Request(environ).get_json()["signature"])
        return answers.pop(0)(environ, start_response)

    server = localstack.serve_wsgi("scripted-vod", app)
    fresh = iter(f"signature-{n}" for n in range(10))
    try:
        client = VodClient(lambda: next(fresh), endpoint=server.url, retries=3, retry_delay=0)
        if outcome == "ok":
            assert client.prepare().regions == ("ap-guangzhou",)
        else:
            with pytest.raises((VodApiError, VodUnavailable), match=re.escape(outcome)):
                client.prepare()
    finally:
        server.stop()

    assert signatures == [f"signature-{n}" for n in range(posts)]  # a fresh one-time signature per request


def _cos_error(status: int, code: str) -> CosServiceError:
    return CosServiceError(
        "PUT", {"code": code, "message": f"{code} (test)", "resource": "/k", "requestid": "r", "traceid": "t"}, status
    )


@pytest.mark.parametrize(
    ("failures", "outcome", "renewals"),
    [
        ([], "ok", 0),
        ([_cos_error(503, "ServiceUnavailable"), CosClientError("connection reset")], "ok", 0),
        ([_cos_error(429, "SlowDown"), _cos_error(409, "OperationAborted")], "ok", 0),  # throttled, or busy
        ([_cos_error(403, "AccessDenied")], "ok", 1),  # expired unnoticed: renewed, then it works
        ([_cos_error(403, "AccessDenied")] * 2, "COS 403 AccessDenied", 1),  # refused with fresh ones too: real
        ([_cos_error(404, "NoSuchUpload")], "COS 404 NoSuchUpload", 0),  # not retried
        ([_cos_error(500, "InternalError")] * 3, "failed after 3 attempts", 0),
    ],
)
def test_cos_calls_retry_transient_failures_and_renew_refused_credentials(
    failures: list[Exception], outcome: str, renewals: int
) -> None:
    credentials, reapplied = _renewing(time.time, 3600)
    pending = list(failures)

    def operation() -> str:
        assert credentials.secret_id  # signs, as the SDK would
        if pending:
            raise pending.pop(0)
        return "ok"

    policy = RetryPolicy(attempts=3, backoff=0)
    if outcome == "ok":
        assert call_cos(credentials, operation, "upload part 1", policy, threading.Event()) == "ok"
    else:
        with pytest.raises(StorageError, match=re.escape(outcome)):
            call_cos(credentials, operation, "upload part 1", policy, threading.Event())
    assert len(reapplied) == renewals


class _Halt(threading.Event):
    """A halt event that notes each wait and never blocks: a backoff spent waiting on it shows, with no timer."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(0)


def test_a_pause_during_a_retry_backoff_halts_the_call() -> None:
    credentials, reapplied = _renewing(time.time, 3600)
    halt = _Halt()
    attempts: list[int] = []

    def operation() -> None:
        attempts.append(1)
        halt.set()  # paused while this request was failing
        raise _cos_error(503, "ServiceUnavailable")

    policy = RetryPolicy(attempts=5, backoff=30)
    with pytest.raises(Halted):
        call_cos(credentials, operation, "upload part 1", policy, halt)
    # The backoff was waited on the halt event (which was set, so it ended at once), then nothing more.
    assert halt.waits == [policy.delay(1)]
    assert (len(attempts), reapplied) == (1, [])  # no second attempt, no renewal


def test_every_error_the_library_raises_is_exported() -> None:
    # An app handles failures by type, imported from the package (not from its modules)
    raised = {name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, Exception)}
    assert raised <= set(vodupload.__all__) and all(
        getattr(vodupload, name) is getattr(errors, name) for name in raised
    )


def test_a_signature_client_closes_the_connections_it_opened(loopback_http: Serve) -> None:
    # GIVEN an endpoint that keeps a connection open for the next request, as gateways do
    hung_up = threading.Event()

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.protocol_version = "HTTP/1.1"
        handler.rfile.read(int(handler.headers["Content-Length"]))
        body = b'{"error": {"code": "forbidden", "message": "not yours"}}'
        handler.send_response(403)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        if handler.rfile.read(1) == b"":  # the client hung up (a next request would be read here)
            hung_up.set()
        handler.close_connection = True

    with SignatureClient(f"{loopback_http(answer)}/signature", "token") as client:
        with pytest.raises(SignatureRefused):
            client.fetch()
        assert not hung_up.is_set()  # kept for the next signature
    # THEN leaving the block closes it (an app making a client per user would otherwise keep one each)
    assert hung_up.wait(10)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("c6af9ac6-7b61-11e6-9a41-93e8deadbeef", True),
        ("1234.5678-abcd", True),  # as SCF's ids may be written
        ("a" * 128, True),
        ("a" * 129, False),  # longer than an id: whatever it is, not printed
        ("abc\x1b[2Jdef", False),  # a terminal's escape, from whatever stands between
        ("abc def", False),
        ("", False),
    ],
)
@pytest.mark.parametrize("endpoint", ["signature", "uploads"])
def test_a_refusal_says_the_functions_request_id_when_it_is_one(
    loopback_http: Serve, sent: str, kept: bool, endpoint: str
) -> None:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        body = b'{"error": {"code": "invalid_token", "message": "invalid token: token has expired"}}'
        handler.send_response(401)
        handler.send_header("X-Request-Id", sent)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    url = f"{loopback_http(answer)}/{endpoint}"

    def ask() -> object:
        if endpoint == "signature":
            return SignatureClient(url, "token").fetch()
        return StatusClient(url, "token").get("5285890784273533167")

    with pytest.raises(errors.AuthenticationFailed) as raised:
        ask()
    assert raised.value.request_id == (sent if kept else None)
    assert str(raised.value).endswith(f" (request {sent})" if kept else "invalid token: token has expired")


# The codes of the sign function's 401s, read from its source: one added there must be known here too
_SIGN_401_CODES = sorted(set(re.findall(r'code="([a-z_]+)"', (ROOT / "shared" / "auth.py").read_text())))


@pytest.mark.parametrize(
    ("status", "body", "refusal", "code"),
    [
        *(
            (401, json.dumps({"error": {"code": c, "message": "m"}}), errors.AuthenticationFailed, c)
            for c in _SIGN_401_CODES
        ),
        (401, "[" * 100_000, errors.AuthenticationFailed, "http_401"),  # nested past the JSON decoder's depth
        (403, "[" * 100_000, SignatureRefused, "http_403"),
    ],
)
def test_a_refusal_is_read_whatever_its_body(
    loopback_http: Serve, status: int, body: str, refusal: type[Exception], code: str
) -> None:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body.encode())

    with pytest.raises(refusal) as raised:
        SignatureClient(f"{loopback_http(answer)}/signature", "token").fetch()
    assert raised.value.code == code  # type: ignore[attr-defined]
    # (a 401 with a code the function gives is not blamed on the URL)
    assert ("not an answer the signature function gives" in str(raised.value)) is (code == "http_401")


def test_a_token_no_header_can_carry_is_refused_as_any_other_authentication_failure() -> None:
    with pytest.raises(errors.AuthenticationFailed) as raised:
        SignatureClient("http://127.0.0.1:9/signature", "abc\n").fetch()  # nothing is sent
    assert (raised.value.code, raised.value.request_id) == ("malformed_token", None)


def _signed(user: str, **claims: Any) -> str:
    return dev_token(user, "k" * 32, **claims)


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        (_signed("alice", exp=1), _signed("alice", exp=2), True),  # a refreshed token
        (_signed("alice", exp=1), _signed("bob", exp=1), False),
        (_signed("x", sub=7), _signed("x", sub=8), False),  # no string sub: the token itself
        ("opaque-1", "opaque-1", True),
        ("opaque-1", "opaque-2", False),
        (_signed("x", sub="\ud800"), _signed("x", sub="\ud800", exp=2), False),  # no text: the token itself
    ],
    ids=["refreshed", "other-user", "non-string-sub", "same-opaque", "other-opaque", "sub-not-text"],
)
def test_saved_uploads_belong_to_the_tokens_subject(first: str, second: str, same: bool) -> None:
    assert (token_subject(first) == token_subject(second)) is same
    for token in (first, second):  # a token is never kept as it is: its subject, else its digest
        owner = token_subject(token)
        assert re.fullmatch(r"sub:[a-z]+|token:[0-9a-f]{64}", owner) and token not in owner
        assert re.fullmatch(r"[0-9a-f]{32}", checkpoint_name(None, "clip.mp4", None, owner))


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        (_signed("app", uid="ann"), _signed("app", uid="bob"), False),  # one sub (an app's back end's), two users
        (_signed("app-1", uid="ann"), _signed("app-2", uid="ann", exp=2), True),
        (_signed("app", uid=7), _signed("app", uid=7, exp=2), False),  # no user named: the token itself
    ],
    ids=["other-user", "same-user", "no-user"],
)
def test_saved_uploads_belong_to_the_user_the_claim_names(first: str, second: str, same: bool) -> None:
    # As the functions' AUTH_JWT_USER_CLAIM=uid reads them (vod-upload --user-claim uid)
    assert (token_subject(first, "uid") == token_subject(second, "uid")) is same
    assert SignatureClient("https://api.example.com/signature", first, user_claim="uid").owner() == (
        f"https://api.example.com/signature {token_subject(first, 'uid')}"
    )


PART_BYTES = os.urandom(MIB + 3)


@pytest.mark.parametrize(
    ("answer", "stored"),
    [
        ({"ETag": md5_etag(PART_BYTES), CRC64_HEADER: str(sdk_crc64(PART_BYTES))}, True),
        ({"etag": md5_etag(PART_BYTES), "X-Cos-Hash-Crc64ecma": f" {sdk_crc64(PART_BYTES)} "}, True),
        ({"ETag": md5_etag(PART_BYTES), CRC64_HEADER: str(sdk_crc64(PART_BYTES[1:]))}, False),
        ({"ETag": md5_etag(b"other"), CRC64_HEADER: str(sdk_crc64(PART_BYTES))}, True),  # the CRC64 decides
        ({"ETag": md5_etag(PART_BYTES).upper()}, True),  # no CRC64: the ETag, an MD5 hex
        ({"ETag": md5_etag(PART_BYTES[1:])}, False),
        ({}, False),
    ],
    ids=["crc64", "header-case", "crc64-differs", "crc64-decides", "etag", "etag-differs", "neither"],
)
def test_what_cos_stored_is_checked_against_the_bytes_sent(answer: dict[str, str], stored: bool) -> None:
    if stored:
        assert check_stored(answer, PART_BYTES) == answer.get("ETag", answer.get("etag"))
    else:
        with pytest.raises(CosClientError, match="COS stored other bytes than were sent"):
            check_stored(answer, PART_BYTES)


@given(st.binary(max_size=4096), st.integers(min_value=0))
def test_the_crc64_checked_is_the_cos_sdks(data: bytes, flip: int) -> None:
    """The uploader's CRC64 (fastcrc) agrees with the COS SDK's (crcmod), and one changed byte is caught."""
    check_stored({CRC64_HEADER: str(sdk_crc64(data))}, data)
    if data:
        changed = bytearray(data)
        changed[flip % len(data)] ^= 0x01
        with pytest.raises(CosClientError):
            check_stored({CRC64_HEADER: str(sdk_crc64(bytes(changed)))}, data)


@pytest.mark.parametrize(
    ("url", "quoted"),
    [
        ("http://alice:Pw0rd@127.0.0.1:1/signature?api_key=K3y#f", "http://127.0.0.1:1/signature?…"),
        # a password holding "/", "?" or "#" not percent-encoded: it ends the host early
        *((f"http://alice:Pw0rd{cut}x@127.0.0.1:1/signature", "the URL given") for cut in "/?#"),
        ("http://alice:1234/x@127.0.0.1:1/signature", "the URL given"),  # "alice:1234" reads as a host and port
        # an "@" further on, in a URL with no password: the host it names
        (
            "https://gw.example.com/release/signature?email=ann@example.com",
            "https://gw.example.com/release/signature?…",
        ),
        ("https://gw.example.com/release/@team/signature", "https://gw.example.com/release/@team/signature"),
        ("https://vod2.qcloud.com", "https://vod2.qcloud.com"),
        ("http://[::1/signature", "the URL given"),
    ],
)
def test_a_url_is_quoted_without_what_it_carries(url: str, quoted: str) -> None:
    # (messages go to stderr, --json and CI logs; the password's "/", "?" or "#" not percent-encoded, too)
    assert shown(url) == quoted
