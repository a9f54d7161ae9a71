"""vod-configure-events drives ModifyEventConfig/DescribeEventConfig through the SDK (here: the emulator)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.conftest import Serve, closed_loopback_port, command, run_command
from vodlocal import localstack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack(tmp_path: Path, restore_environ: None) -> Iterator[localstack.LocalStack]:
    running = localstack.start_stack(tmp_path / "state")
    yield running
    running.stop()


def configure(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_command("vod-configure-events", *args, env=env)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--mode", "pull"), {"Mode": "PULL"}),  # as the switches, in either case
        (
            # Not the URL the local stack configured: the option itself must change it.
            ("--mode", "PUSH", "--url", "{gateway}/elsewhere", "--delete-events", "on"),
            {"Mode": "PUSH", "NotificationUrl": "{gateway}/elsewhere", "DeleteMediaCompleteEventSwitch": "ON"},
        ),
        ((), {"Mode": "PUSH", "UploadMediaCompleteEventSwitch": "ON"}),
    ],
)
def test_configure_then_describe(stack: localstack.LocalStack, args: tuple[str, ...], expected: dict[str, str]) -> None:
    gateway = stack.gateway.url
    proc = configure(*(a.format(gateway=gateway) for a in args), "--json")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    for key, value in expected.items():
        assert shown[key] == value.format(gateway=gateway)
    assert os.environ["VOD_CALLBACK_SIGN_KEY"] not in proc.stdout


def test_an_endpoint_written_in_capitals_is_signed_as_vod_checks(stack: localstack.LocalStack) -> None:
    # Host names know no case, VOD's signature rule lowercases the Host it signs, the SDK signs it as given.
    endpoint = os.environ["VOD_API_ENDPOINT"].replace("127.0.0.1", "LocalHost")
    proc = configure("--mode", "PULL", VOD_API_ENDPOINT=endpoint)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TENCENTCLOUD_SECRET_KEY": "wrong-key-000000000000"}, "AuthFailure.SignatureFailure"),
        ({"TENCENTCLOUD_SECRET_ID": "", "TENCENTCLOUD_SECRET_KEY": ""}, "TENCENTCLOUD_SECRET_ID"),
    ],
)
def test_refusals_are_clear(stack: localstack.LocalStack, env: dict[str, str], message: str) -> None:
    proc = configure("--mode", "PULL", **env)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_dev_keys_come_from_the_local_stacks_state(stack: localstack.LocalStack, tmp_path: Path) -> None:
    # A second shell beside `make serve`: only the emulator's address, no keys in its environment.
    unset = {
        name: ""
        for name in ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "VOD_SUB_APP_ID", "VOD_CALLBACK_SIGN_KEY")
    }
    assert "TENCENTCLOUD_SECRET_ID" in configure("--mode", "PULL", **unset).stderr
    proc = configure("--mode", "PULL", "--dev-keys", str(tmp_path / "state"), "--json", **unset)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["Mode"] == "PULL"
    missing = configure("--dev-keys", str(tmp_path / "nowhere"), **unset)
    assert missing.returncode == 2 and "make serve" in missing.stderr


def test_an_unreachable_vod_is_not_called_a_refusal(stack: localstack.LocalStack) -> None:
    url = f"http://127.0.0.1:{closed_loopback_port()}"
    proc = configure("--mode", "PULL", VOD_API_ENDPOINT=url)
    assert proc.returncode == 1
    assert f"could not reach VOD at {url}" in proc.stderr
    assert "Connection refused" in proc.stderr  # the cause, however long what comes before it
    assert "refused" not in proc.stderr.replace("Connection refused", "")


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        # changing settings without a SignKey would leave VOD without one (or an old one) for the callback
        (("--mode", "PUSH"), {"VOD_CALLBACK_SIGN_KEY": ""}, 2, "VOD_CALLBACK_SIGN_KEY is not set"),
        (("--mode", "PUSH", "--no-sign-key"), {"VOD_CALLBACK_SIGN_KEY": ""}, 0, ""),
        (("--no-sign-key", "--mode", "PULL"), {"VOD_CALLBACK_SIGN_KEY": "bad key!"}, 0, ""),  # not sent: not checked
        # one the deployed callback would refuse (shorter keys are found by trying, from one signed delivery)
        (("--mode", "PUSH"), {"VOD_CALLBACK_SIGN_KEY": "Key123abc012345"}, 2, "at least 16 characters"),
        ((), {"VOD_CALLBACK_SIGN_KEY": "bad key!"}, 0, ""),  # only showing: nothing is sent
        (("--mode", "PUSH"), {"VOD_CALLBACK_SIGN_KEY": "Key123abc0123456"}, 0, ""),  # 16: the shortest taken
        (("--sign-key",), {"VOD_CALLBACK_SIGN_KEY": "Key123abc0123456"}, 0, ""),  # a rotation's new key alone
        (("--sign-key",), {"VOD_CALLBACK_SIGN_KEY": ""}, 2, "VOD_CALLBACK_SIGN_KEY is not set"),
        (("--sign-key", "--no-sign-key"), {}, 2, "not allowed with argument"),
    ],
    ids=[
        "no-key",
        "no-key-kept",
        "bad-key-not-sent",
        "short-key",
        "show-only",
        "shortest-key",
        "key-alone",
        "key-alone-unset",
        "key-and-no-key",
    ],
)
def test_the_sign_key_is_required_only_when_sent(
    stack: localstack.LocalStack, args: tuple[str, ...], env: dict[str, str], code: int, message: str
) -> None:
    proc = configure(*args, **env)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("content", "env", "message"),
    [
        ("{bad", {}, "cannot read"),
        ('{"VOD_SUB_APP_ID": 1500000001}', {}, "is not the local stack's settings"),
        (None, {"VOD_API_ENDPOINT": "https://vod.tencentcloudapi.com"}, "--dev-keys is for the local emulator"),
        # else the shell's own keys (perhaps real ones) would sign the calls
        ("{}", {}, "has no TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY, VOD_SUB_APP_ID, VOD_CALLBACK_SIGN_KEY"),
    ],
    ids=["not-json", "not-strings", "not-loopback", "no-keys"],
)
def test_dev_keys_that_cannot_be_used_are_usage_errors(
    stack: localstack.LocalStack, tmp_path: Path, content: str | None, env: dict[str, str], message: str
) -> None:
    state = tmp_path / "state" if content is None else tmp_path / "other"
    if content is not None:
        state.mkdir()
        (state / "dev-settings.json").write_text(content)
    proc = configure("--mode", "PULL", "--dev-keys", str(state), **env)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [(), ("--json",), ("--mode", "PULL")])
def test_output_closed_early_is_no_failure(stack: localstack.LocalStack, tmp_path: Path, args: tuple[str, ...]) -> None:
    # `vod-configure-events | head -1`: the reader leaves; what was asked for is done, and no traceback
    state = str(tmp_path / "state")
    with subprocess.Popen(
        [command("vod-configure-events"), *args, "--dev-keys", state], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # before it writes: its first write finds the pipe closed
        errors = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 0 and "Traceback" not in errors, errors


def test_dev_keys_replace_the_shells_own(stack: localstack.LocalStack, tmp_path: Path) -> None:
    # Real keys exported in this shell never sign a call to the emulator: the dev ones are used instead.
    env = {"TENCENTCLOUD_SECRET_ID": "AKIDreal", "TENCENTCLOUD_SECRET_KEY": "real-key-0123456789abcdef"}
    proc = configure("--mode", "PULL", "--dev-keys", str(tmp_path / "state"), "--json", **env)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("here", [True, False], ids=["exported here too", "not exported here"])
def test_dev_keys_are_the_stacks_own_where_it_took_its_shells(
    tmp_path: Path, restore_environ: None, monkeypatch: pytest.MonkeyPatch, here: bool
) -> None:
    # GIVEN a stack started from a shell exporting its own SignKey (the stack uses it, the generated one not)
    monkeypatch.setenv("VOD_CALLBACK_SIGN_KEY", "ShellSignKey1234567890")
    running = localstack.start_stack(tmp_path / "state")
    try:
        env = {"VOD_CALLBACK_SIGN_KEY": "ShellSignKey1234567890"} if here else {"VOD_CALLBACK_SIGN_KEY": ""}
        # WHEN VOD's settings are changed with --dev-keys
        proc = configure("--mode", "PULL", "--dev-keys", str(tmp_path / "state"), **env)
        # THEN the emulator gets the SignKey the stack's callback checks (else every event: 401), or none is sent
        if here:
            assert proc.returncode == 0, proc.stderr
            assert running.emulator.state.get_event_config().sign_key == "ShellSignKey1234567890"
        else:
            assert proc.returncode == 2 and "runs with its shell's own VOD_CALLBACK_SIGN_KEY" in proc.stderr
            # Sending none (--no-sign-key), or showing the settings, needs none
            for args in (("--mode", "PULL", "--no-sign-key"), ()):
                shown = configure(*args, "--dev-keys", str(tmp_path / "state"), **env)
                assert shown.returncode == 0, shown.stderr
    finally:
        running.stop()


def test_an_endpoint_that_is_not_vod_is_said_so(stack: localstack.LocalStack) -> None:
    proc = configure("--mode", "PULL", VOD_API_ENDPOINT=stack.gateway.url)  # the functions, not VOD
    assert proc.returncode == 1 and "no VOD API answer at" in proc.stderr and "VOD refused" not in proc.stderr


_KEYS = {  # an execution role's keys, as SCF gives them, and the SignKey sent to VOD
    "TENCENTCLOUD_SECRETID": "AKIDtest",
    "TENCENTCLOUD_SECRETKEY": "test-key-0123456789",
    "TENCENTCLOUD_SESSIONTOKEN": "session-token-0123456789",
    "VOD_CALLBACK_SIGN_KEY": "Key123abc0123456789",
}


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (200, b"<html>not an API</html>", "no VOD API answer at"),  # a 200 that is not an API answer: not a refusal
        (200, b"{}", "no VOD API answer at"),
        # An API that quotes the request back: the SignKey is not shown
        (
            200,
            json.dumps(
                {
                    "Response": {
                        "Error": {"Code": "InvalidParameter", "Message": "SignKey Key123abc0123456789"},
                        "RequestId": "r",
                    }
                }
            ).encode(),
            "VOD refused: InvalidParameter: SignKey ********",
        ),
        # A proxy's error page that quotes the request's headers, and the keys under names of its own
        (
            502,
            b"<pre>X-TC-Token: session-token-0123456789\nAuthorization: TC3-HMAC-SHA256 Credential=AKIDtest/x, "
            b"Signature=abc\nkey test-key-0123456789</pre>",
            "no VOD API answer at",
        ),
    ],
    ids=["html", "empty-object", "echoed-key", "echoed-headers"],
)
def test_an_answer_that_is_not_vods_is_not_a_refusal(loopback_http: Serve, status: int, body: bytes, said: str) -> None:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers["Content-Length"]))
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json" if body.startswith(b"{") else "text/html")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    proc = configure("--mode", "PULL", **_KEYS, VOD_API_ENDPOINT=loopback_http(answer))
    assert proc.returncode == 1 and said in proc.stderr, proc.stderr
    assert not [value for name, value in _KEYS.items() if name != "TENCENTCLOUD_SECRETID" and value in proc.stderr]
    assert ("may or may not have been made" in proc.stderr) == said.startswith("no VOD API answer")


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "text/json"])
@pytest.mark.parametrize("action", ["ModifyEventConfig", "DescribeEventConfig"])
def test_a_refusal_is_one_however_its_answer_is_labelled(loopback_http: Serve, content_type: str, action: str) -> None:
    # The SDK's typed calls raise VOD's Error only from an answer labelled exactly application/json (or text/plain):
    # under another label a refused change was said to be made, and exit 0.
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers["Content-Length"]))
        refused = handler.headers["X-TC-Action"] == action
        error = {"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}}
        body = json.dumps({"Response": {**(error if refused else {"Mode": "PUSH"}), "RequestId": "r"}}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    proc = configure("--mode", "PULL", **_KEYS, VOD_API_ENDPOINT=loopback_http(answer))
    assert proc.returncode == 1 and "VOD refused: UnauthorizedOperation: not allowed" in proc.stderr, proc.stderr


@pytest.mark.parametrize("url", ["", " http://127.0.0.1:9/vod-events", "127.0.0.1/vod-events", "ftp://host/x"])
def test_a_push_address_vod_could_not_call_is_refused(stack: localstack.LocalStack, url: str) -> None:
    # VOD stores what it is given: an empty address clears its own, and PUSH events then go nowhere.
    proc = configure("--mode", "PUSH", "--url", url)
    assert proc.returncode == 2 and "not an http(s) URL" in proc.stderr and "Traceback" not in proc.stderr
    assert json.loads(configure("--json").stdout)["NotificationUrl"].startswith(stack.gateway.url)


@pytest.mark.parametrize("args", [("--mode", "PUSH"), ("--upload-events", "on")])
def test_push_with_no_address_anywhere_is_refused_before_anything_changes(
    loopback_http: Serve, args: tuple[str, ...]
) -> None:
    # GIVEN an account whose VOD has no NotificationUrl yet (in PUSH mode for the second case)
    actions: list[str] = []

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers["Content-Length"]))
        actions.append(handler.headers["X-TC-Action"])
        mode = "PULL" if args[0] == "--mode" else "PUSH"
        body = json.dumps({"Response": {"Mode": mode, "NotificationUrl": "", "RequestId": "r"}}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    env = {**_KEYS, "VOD_API_ENDPOINT": loopback_http(answer), "VOD_CALLBACK_SIGN_KEY": "Key123abc0123456789"}
    # WHEN PUSH events are asked for with no --url THEN nothing is changed: they would go nowhere
    proc = configure(*args, **env)
    assert proc.returncode == 2 and "PUSH needs --url" in proc.stderr, proc.stderr
    assert actions == ["DescribeEventConfig"]
    # AND a new SignKey alone changes nothing else: sent as it is, whatever the mode's address (a rotation's step)
    actions.clear()
    proc = configure("--sign-key", **env)
    assert proc.returncode == 0 and actions == ["ModifyEventConfig", "DescribeEventConfig"], proc.stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])  # Ctrl-C; `timeout`, a script's kill
def test_stopped_while_vod_is_asked_it_says_what_may_have_happened(tmp_path: Path, stop: signal.Signals) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes the connection, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        env = {**os.environ, "VOD_API_ENDPOINT": url, "VOD_CALLBACK_SIGN_KEY": "Key123abc0123456789"}
        proc = subprocess.Popen(
            [command("vod-configure-events"), "--mode", "PULL"],
            env={**env, **_KEYS},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        connection, _ = silent.accept()  # the change is on its way
        with connection:
            proc.send_signal(stop)
            _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in stderr
    assert "interrupted: the change may or may not have been made" in stderr


@pytest.mark.parametrize(
    ("args", "changes"), [(("--mode", "PULL"), {"Mode": "PULL"}), (("--sign-key",), {})], ids=["mode", "sign-key"]
)
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_only_the_settings_given_are_sent_and_the_sign_key_is_never_shown(
    loopback_http: Serve, as_json: bool, args: tuple[str, ...], changes: dict[str, str]
) -> None:
    # GIVEN a VOD that answers DescribeEventConfig with its SignKey
    sent: list[dict[str, object]] = []

    def answer(handler: BaseHTTPRequestHandler) -> None:
        request = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        if handler.headers["X-TC-Action"] == "ModifyEventConfig":
            sent.append(request)
        config = {"Mode": "PULL", "NotificationUrl": "", "SignKey": _KEYS["VOD_CALLBACK_SIGN_KEY"], "RequestId": "r"}
        body = json.dumps({"Response": config}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    # WHEN one setting is changed (or the SignKey alone: a rotation's)
    proc = configure(*args, *(["--json"] if as_json else []), **_KEYS, VOD_API_ENDPOINT=loopback_http(answer))
    # THEN that one and the SignKey are sent, no other (left out, VOD keeps it), and the SignKey shown is masked
    assert proc.returncode == 0, proc.stderr
    assert sent == [{**changes, "SignKey": _KEYS["VOD_CALLBACK_SIGN_KEY"]}]
    assert _KEYS["VOD_CALLBACK_SIGN_KEY"] not in proc.stdout and "********" in proc.stdout
