"""The README's run command: the local stack comes up and the `curl` it prints gets a signature."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.conftest import closed_loopback_port, command, run_command, user_env
from vodemu.app import build_emulator
from vodemu.cli import port_default
from vodemu.signature import signed_parameters
from vodlocal import localstack, tls
from vodtesting import sample_video, vod_event
from vodtesting.pgserver import PostgresServer

ROOT = Path(__file__).resolve().parents[2]


def _serve_args(state_dir: Path, **ports: int | str) -> list[str]:
    """vod-serve's options: free ports (0: the printed commands name the real ones) but for `ports`
    (option name without its dashes, `_` for `-`: emulator_port=8081)."""
    chosen = {"port": 0, "emulator_port": 0, "tls_port": 0, **ports}
    options = [part for name, value in chosen.items() for part in (f"--{name.replace('_', '-')}", str(value))]
    return [*options, "--state-dir", str(state_dir)]


# A shell set up for deploying: README "Deploy" exports every setting serverless.yml passes, blank for a default.
DEPLOY_SHELL = {
    name: ""
    for name in ("AUTH_MODE", "AUTH_JWT_SECRET", "AUTH_JWT_PUBLIC_KEY", "VOD_CONTEXT_KEY", "VOD_CALLBACK_SIGN_KEY")
} | {"DATABASE_URL": ""}


# A shell with the app's own token check: its secret, audience, issuer and algorithm.
APP_SHELL = {
    "AUTH_JWT_SECRET": "the-apps-own-secret-" + "0123456789abcdef" * 4,
    "AUTH_JWT_AUDIENCE": "the-apps-api",
    "AUTH_JWT_ISSUER": "https://id.example.com",
    "AUTH_JWT_ALGORITHMS": "HS512",
}


@contextmanager
def _serving(tmp_path: Path, env: dict[str, str], args: list[str], how: list[str] | None = None) -> Iterator[list[str]]:
    """vod-serve (or `how`) running with `args`: what it printed up to "Ctrl-C to stop" (all it printed, if it
    stopped)."""
    proc = subprocess.Popen(
        [*(how or [command("vod-serve")]), *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C to stop" in line:
            break
    try:
        yield lines
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        assert proc.returncode == 0, "".join(lines)
        # A Ctrl-C is how it stops: it says so, and nothing stopping interrupts (a PULL run) logs an error.
        stopping = proc.stdout.read()
        assert stopping.endswith("stopped.\n"), stopping
        assert '"level": "ERROR"' not in stopping, stopping


@pytest.fixture
def serve_output(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """What vod-serve prints up to "Ctrl-C to stop", with `request.param`: (environment, options) or the
    environment alone."""
    param = getattr(request, "param", {})
    shell, options = param if isinstance(param, tuple) else (param, ())
    with _serving(tmp_path, {**user_env(), **shell}, [*_serve_args(tmp_path / "state"), *options]) as lines:
        yield lines


@pytest.mark.parametrize(
    "serve_output", [{}, DEPLOY_SHELL, APP_SHELL], ids=["plain-shell", "deploy-shell", "app-shell"], indirect=True
)
def test_printed_curl_gets_a_signature(serve_output: list[str]) -> None:
    curl_line = next((line.strip() for line in serve_output if line.strip().startswith("curl ")), None)
    assert curl_line is not None, "".join(serve_output)
    argv = shlex.split(curl_line)
    if shutil.which("curl"):
        body = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    else:  # the same request the printed command makes
        url = next(a for a in argv if a.startswith("http://"))
        headers = dict(h.split(": ", 1) for h in (argv[i + 1] for i, a in enumerate(argv) if a == "-H"))
        body = requests.post(url, headers=headers, data="{}", timeout=30).text
    signature = json.loads(body)["signature"]
    identity = str(signed_parameters(signature).get("sourceContext", ""))
    assert identity.endswith(":dev-user")


def _printed(lines: list[str], label: str) -> str:
    """The URL printed after `label` ("gateway", "emulator") or, for "bearer token", the token below it."""
    at = next(i for i, line in enumerate(lines) if line.startswith(label))
    return lines[at + 1].strip() if label == "bearer token" else lines[at].split()[1]


@pytest.mark.parametrize("as_module", [False, True], ids=["vod-serve", "python -m vodlocal.serve"])
def test_the_printed_record_command_works_pasted_for_a_state_directory_with_a_space(
    tmp_path: Path, as_module: bool
) -> None:
    how = [sys.executable, "-m", "vodlocal.serve"] if as_module else None
    with _serving(tmp_path, user_env(), _serve_args(tmp_path / "my state"), how) as lines:
        line = next(line for line in lines if line.startswith("see its record:"))
        pasted = subprocess.run(
            ["bash", "-c", line.removeprefix("see its record:")],
            cwd=tmp_path,
            env=user_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert (pasted.returncode, pasted.stdout.strip()) == (0, "no uploads recorded for user 'dev-user'"), pasted.stderr


def test_the_printed_upload_command_keeps_to_loopback_whatever_proxy_the_shell_sets(tmp_path: Path) -> None:
    video = sample_video(tmp_path / "clip.mp4", size=100_000)
    # A shell behind a proxy (here one that answers nothing), its own lowercase no_proxy naming other hosts
    proxied = {**user_env(), "http_proxy": f"http://127.0.0.1:{closed_loopback_port()}", "no_proxy": "example.com"}
    with _serving(tmp_path, user_env(), _serve_args(tmp_path / "state")) as lines:
        line = next(line for line in lines if line.startswith("upload a file:")).removeprefix("upload a file:")
        pasted = line.replace(" FILE ", f" {shlex.quote(str(video))} ")  # the token filled in, as printed
        run = subprocess.run(
            ["bash", "-c", pasted], env=proxied, capture_output=True, text=True, timeout=120, check=False
        )
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("where", ["shell", "settings file"])
def test_a_database_url_with_a_password_is_named_where_it_came_from(
    tmp_path: Path, postgres_server: PostgresServer, where: str
) -> None:
    url = postgres_server.create_database().replace("postgres@", "postgres:S3cret@", 1)  # trust: any password
    state = tmp_path / "state"
    if where == "settings file":
        localstack.dev_settings(state)
        settings = json.loads((state / "dev-settings.json").read_text())
        (state / "dev-settings.json").write_text(json.dumps({**settings, "DATABASE_URL": url}))
    shell = {**user_env(), **({"DATABASE_URL": url} if where == "shell" else {})}
    with _serving(tmp_path, shell, _serve_args(state)) as lines:
        line = next(line for line in lines if line.startswith("see its record:"))
    source = "your shell's DATABASE_URL" if where == "shell" else f"DATABASE_URL as in {state / 'dev-settings.json'}"
    assert line.rstrip().endswith(f"(with {source})") and "S3cret" not in "".join(lines), line


def test_an_event_pending_from_a_last_run_goes_only_to_the_new_callback(tmp_path: Path, restore_environ: None) -> None:
    # GIVEN a state whose emulator still has an event to push, to where the last run's gateway was
    state = tmp_path / "state"
    settings = localstack.dev_settings(state)
    last = build_emulator(
        state / "vod-emulator",
        secret_id=settings["TENCENTCLOUD_SECRET_ID"],
        secret_key=settings["TENCENTCLOUD_SECRET_KEY"],
    )
    last.configure_events(
        mode="PUSH",
        notification_url=f"http://127.0.0.1:{closed_loopback_port()}/vod-events",
        sign_key=settings["VOD_CALLBACK_SIGN_KEY"],
    )
    last.close()
    with sqlite3.connect(state / "vod-emulator" / "vodemu.sqlite3") as db:  # as a commit queues one
        db.execute(
            "INSERT INTO events (created_at, delivery, body, push_status) VALUES (?, 'PUSH', ?, 'pending')",
            (time.time(), json.dumps(vod_event("NewFileUpload"))),
        )
    # WHEN the stack starts again on it THEN the event's one attempt goes to the new gateway, and is recorded
    stack = localstack.start_stack(state, own_settings=True)
    try:
        deadline = time.monotonic() + 30
        while stack.emulator.state.push_status()[0][1] == "pending" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(status, attempts) for _, status, attempts, _ in stack.emulator.state.push_status()] == [
            ("delivered", 1)
        ]
    finally:
        stack.stop()


@pytest.mark.parametrize("serve_output", [({}, ("--pull",))], ids=["pull"], indirect=True)
def test_with_pull_the_printed_upload_is_recorded_by_events_pull(serve_output: list[str], tmp_path: Path) -> None:
    # The events go to VOD's queue; the stack runs events_pull on its timer, as a deployment would.
    upload = run_command(
        "vod-upload",
        str(sample_video(tmp_path / "v.mp4", size=100_000)),
        "--gateway",
        _printed(serve_output, "gateway"),
        "--vod-endpoint",
        _printed(serve_output, "emulator"),
        "--wait",
        "--wait-timeout",
        "60",
        "--json",
        base={**user_env(), "VOD_UPLOAD_TOKEN": _printed(serve_output, "bearer token")},
        cwd=tmp_path,
    )
    assert upload.returncode == 0, upload.stderr
    settled = json.loads(upload.stdout.splitlines()[-1])  # after the upload's own line: its record, as recorded
    assert (settled["status"], settled["upload"]["status"]) == ("settled", "uploaded")
    # ...and it got there through VOD's queue: pulled and confirmed, never pushed
    with sqlite3.connect(tmp_path / "state" / "vod-emulator" / "vodemu.sqlite3") as emulator_state:
        deliveries = emulator_state.execute("SELECT delivery, pulled_at IS NOT NULL, confirmed FROM events").fetchall()
    assert deliveries == [("PULL", 1, 1)]


@pytest.mark.parametrize(
    ("taken", "option", "setting"),
    [
        ("gateway", "--port", "GATEWAY_PORT"),
        ("emulator", "--emulator-port", "VOD_EMULATOR_PORT"),
        ("emulator over TLS", "--tls-port", "VOD_EMULATOR_TLS_PORT"),
    ],
)
def test_a_taken_port_is_named_with_its_setting(tmp_path: Path, taken: str, option: str, setting: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        args = _serve_args(tmp_path / "state", **{option.lstrip("-").replace("-", "_"): busy})  # others free: no race
        proc = run_command("vod-serve", *args, base=user_env(), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{busy} (the {taken}: {setting}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_port_a_stopped_stack_served_a_moment_ago_is_used_again(tmp_path: Path) -> None:
    # GIVEN a port whose last connection waits out TIME_WAIT, as a stack's do right after Ctrl-C
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as every server here binds
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            accepted.close()  # the server closes first: its end waits in TIME_WAIT
            client.recv(1)
    # WHEN the stack is started on it THEN it starts
    with _serving(tmp_path, user_env(), _serve_args(tmp_path / "state", port=port)) as lines:
        assert "Ctrl-C to stop" in lines[-1], "".join(lines)


def test_printed_page_link_serves_the_upload_page(serve_output: list[str]) -> None:
    lines = [line.strip() for line in serve_output]
    link = next(line for line in lines if line.startswith("http://") and "/upload/#token=" in line)
    page = requests.get(link.split("#", 1)[0], timeout=30)
    assert page.status_code == 200 and "<h1>Upload a video</h1>" in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    browser = next(line for line in lines if line.startswith("chromium "))
    argv = shlex.split(browser)
    assert argv[-1] == link and "--ignore-certificate-errors" in argv
    assert any(a.startswith("--host-resolver-rules=MAP vod2.qcloud.com 127.0.0.1:") for a in argv)


@pytest.mark.parametrize(
    ("tool", "variable"),
    [("vod-serve", "GATEWAY_PORT"), ("vod-serve", "VOD_EMULATOR_TLS_PORT"), ("vod-emulator", "VOD_EMULATOR_PORT")],
)
def test_a_bad_port_variable_is_a_usage_error(tmp_path: Path, tool: str, variable: str) -> None:
    proc = run_command(tool, base=user_env(), env={variable: "80a"}, cwd=tmp_path)
    assert proc.returncode == 2 and f"not a port number: '80a' (from {variable})" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("value", "expected"), [(None, "9000"), ("", "9000"), (" ", "9000"), (" 9001", "9001")])
def test_a_blank_port_variable_means_the_default(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: str
) -> None:
    # As the functions read settings; "not a port number: ''" would be the only thing the blank could mean.
    if value is None:
        monkeypatch.delenv("VOD_EMULATOR_PORT", raising=False)
    else:
        monkeypatch.setenv("VOD_EMULATOR_PORT", value)
    assert port_default("VOD_EMULATOR_PORT", "9000") == expected


@pytest.mark.parametrize(
    ("state", "setting", "said"),
    [
        ("state", {"VOD_SUB_APP_ID": "-1"}, "VOD_SUB_APP_ID must be a whole number"),  # (0: the primary application)
        ("state", {"VOD_APP_ID": "0"}, "VOD_APP_ID must be a positive integer"),  # "-1" was refused before
        ("state", {"VOD_SUB_APP_ID": "\u00b2"}, "VOD_SUB_APP_ID must be a whole number"),  # a digit to isdigit()
        ("afile", {}, "cannot start:"),  # a state directory that is a file
    ],
    ids=["sub-app-id", "app-id", "superscript-digit", "state-dir"],
)
def test_the_emulator_names_a_setting_it_cannot_use(
    tmp_path: Path, state: str, setting: dict[str, str], said: str
) -> None:
    (tmp_path / "afile").write_text("")
    keys = {"TENCENTCLOUD_SECRET_ID": "AKIDtest", "TENCENTCLOUD_SECRET_KEY": "test-key", **setting}
    args = ["--port", "0", "--state-dir", str(tmp_path / state)]
    proc = run_command("vod-emulator", *args, base=user_env(), env=keys, cwd=tmp_path)
    assert proc.returncode != 0 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_one_port_for_two_servers_is_named(tmp_path: Path) -> None:
    port = str(closed_loopback_port())
    args = _serve_args(tmp_path / "state", port=port, emulator_port=port)
    proc = run_command("vod-serve", *args, base=user_env(), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{port} (the gateway: GATEWAY_PORT" in proc.stderr
    assert f"{port} (the emulator: VOD_EMULATOR_PORT" in proc.stderr


def _a_file(state: Path) -> None:
    state.write_text("")


def _settings(text: str) -> Callable[[Path], None]:
    def write(state: Path) -> None:
        state.mkdir()
        (state / "dev-settings.json").write_text(text)

    return write


@pytest.mark.parametrize(
    ("name", "make", "said"),
    [
        ("state", _a_file, "File exists"),
        ("state", _settings('{"VOD_SUB_APP_ID": 1500000001}'), "is not the local stack's settings (an object of"),
        ("state", _settings("[]"), "is not the local stack's settings"),
        ("state", _settings("{"), "Expecting property name"),
        # sqlite:/// takes no query string: its database could not be named (it blamed the shell's settings)
        ("st?te", lambda state: None, "a path holding '?' cannot name the stack's SQLite database"),
    ],
    ids=["a-file", "a-number-set-by-hand", "not-an-object", "not-json", "a-question-mark"],
)
def test_a_state_directory_that_cannot_be_used_is_a_usage_error(
    tmp_path: Path, name: str, make: Callable[[Path], None], said: str
) -> None:
    make(tmp_path / name)
    proc = run_command("vod-serve", *_serve_args(tmp_path / name), base=user_env(), cwd=tmp_path)
    assert proc.returncode == 2 and "cannot start with --state-dir" in proc.stderr and said in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_state_directory_holding_a_question_mark_serves_a_database_named_elsewhere(tmp_path: Path) -> None:
    # (its own database there could not be named: refused, above; the shell's is elsewhere)
    shell = {**user_env(), "DATABASE_URL": f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}"}
    with _serving(tmp_path, shell, _serve_args(tmp_path / "st?te")) as lines:
        assert any("Ctrl-C to stop" in line for line in lines), "".join(lines)


def test_a_second_stack_on_the_same_state_is_refused_and_the_first_keeps_its_events(
    tmp_path: Path, restore_environ: None
) -> None:
    # GIVEN a stack running on a state directory
    first = localstack.start_stack(tmp_path / "state", own_settings=True)
    try:
        url = first.emulator.state.get_event_config().notification_url
        # WHEN another is started on it (on other ports) THEN it is refused, and the first's events still go to it
        proc = run_command("vod-serve", *_serve_args(tmp_path / "state"), base=user_env(), cwd=tmp_path)
        assert proc.returncode == 2 and "another local stack is running on" in proc.stderr, proc.stderr
        assert first.emulator.state.get_event_config().notification_url == url
        # AND on the first's ports too (the usual case: make serve run twice), what it says to do is a command
        # that works: state of its own, not only free ports
        taken = {"port": first.gateway.server.server_port, "emulator_port": first.emulator.port}
        proc = run_command("vod-serve", *_serve_args(tmp_path / "state", **taken), base=user_env(), cwd=tmp_path)
        said = f'VOD_EMULATOR_TLS_PORT=0 make serve ARGS="--state-dir {tmp_path / "state"}/second"'
        assert proc.returncode == 2 and said in proc.stderr and "port already in use" not in proc.stderr, proc.stderr
    finally:
        first.stop()
    # AND once the first has stopped, the state can be used again
    localstack.start_stack(tmp_path / "state", own_settings=True).stop()


def test_the_database_is_in_the_state_directory_however_it_is_named(tmp_path: Path) -> None:
    # GIVEN state made from one directory (its settings file naming the database as seen from there)
    state = tmp_path / "project" / ".local"
    state.mkdir(parents=True)
    (state / "dev-settings.json").write_text(json.dumps({"DATABASE_URL": "sqlite:///.local/vod.sqlite3"}))
    # WHEN it is used from another directory THEN the database is the one in that state directory
    assert localstack.dev_settings(state)["DATABASE_URL"] == f"sqlite:///{state / 'vod.sqlite3'}"
    # AND one set in the file by hand is kept
    (state / "dev-settings.json").write_text(json.dumps({"DATABASE_URL": "postgresql://me@127.0.0.1/vodlocal"}))
    assert localstack.dev_settings(state)["DATABASE_URL"] == "postgresql://me@127.0.0.1/vodlocal"


def test_the_state_directory_is_ignored_by_git_wherever_it_is_made(tmp_path: Path) -> None:
    # vod-serve run in an app's repository makes its .local/ there: its dev keys must not be committed
    repo = tmp_path / "app"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    localstack.check_state_dir(repo / ".local")
    localstack.dev_settings(repo / ".local")
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True)
    assert (repo / ".local" / "dev-settings.json").exists() and status.stdout == ""


def test_the_states_keys_are_readable_by_their_owner_alone(tmp_path: Path) -> None:
    # GIVEN a state directory's dev settings and the emulator's TLS key, made as a stack's start makes them
    state = tmp_path / "state"
    localstack.dev_settings(state)
    _, key = tls.self_signed(state / "tls")
    # THEN only their owner may read them: the dev keys and secrets, the certificate's private key
    made = (state / "dev-settings.json", key)
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in made} == dict.fromkeys(
        ["dev-settings.json", "key.pem"], 0o600
    )


@pytest.mark.parametrize(("python", "found"), [("/nonexistent/python3", False), (sys.executable, True)])
def test_a_python_named_for_the_venv_is_the_only_one_tried(python: str, found: bool) -> None:
    env = {**user_env(), "PYTHON": python}
    result = subprocess.run(
        [str(ROOT / "scripts" / "find-python")], env=env, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout.strip()) == ((0, python) if found else (1, ""))
    assert found or f"at PYTHON={python}" in result.stderr


@pytest.mark.parametrize(
    ("env", "options", "named"),
    [
        ({"VOD_SIGNATURE_TTL": "ten", "AUTH_JWT_ALGORITHMS": "none"}, (), ("VOD_SIGNATURE_TTL", "AUTH_JWT_ALGORITHMS")),
        ({"AFTER_COMMIT_HOOK": "myapp.nothere:run"}, (), ("AFTER_COMMIT_HOOK",)),  # else every event is a 500
        ({"VOD_PULL_RESERVE_SECONDS": "5"}, ("--pull",), ("VOD_PULL_RESERVE_SECONDS",)),  # events_pull's own
        ({"UPLOAD_PAGE_STATUS_URL": "javascript:x"}, (), ("UPLOAD_PAGE_STATUS_URL",)),  # else the page is a 500
    ],
    ids=["sign", "hook", "pull", "page"],
)
def test_exported_settings_the_functions_would_refuse_are_named(
    tmp_path: Path, env: dict[str, str], options: tuple[str, ...], named: tuple[str, ...]
) -> None:
    # GIVEN a shell that exports a setting no function accepts (or keys that can't go together)
    args = [*_serve_args(tmp_path / "state"), *options]
    proc = run_command("vod-serve", *args, base=user_env(), env=env, cwd=tmp_path)
    # THEN vod-serve names them and does not start, rather than printing a ready stack that answers 500
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert all(name in proc.stderr for name in named)
    assert "Ctrl-C to stop" not in proc.stdout


@pytest.mark.parametrize(
    ("query", "code", "said"),
    [
        ("?password=S3cret", 1, "serve: the store is unavailable"),  # no server there
        ("?password=S3cr%t!", 2, "has a % that starts no escape"),  # libpq would quote the bad part
    ],
)
def test_an_exported_database_that_cannot_be_used_is_said_without_its_password(
    tmp_path: Path, query: str, code: int, said: str
) -> None:
    url = f"postgresql://vod@127.0.0.1:{closed_loopback_port()}/vod{query}"
    args = _serve_args(tmp_path / "state")
    proc = run_command("vod-serve", *args, base=user_env(), env={"DATABASE_URL": url}, cwd=tmp_path)
    assert proc.returncode == code and said in proc.stderr, proc.stderr
    assert "S3cr" not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


# vod-serve, its process interrupted (as by Ctrl-C) the moment it first imports the module $INTERRUPT_AT.
_INTERRUPTED_AT_IMPORT = """
import importlib.abc, os, signal, sys

class Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == os.environ["INTERRUPT_AT"]:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, Interrupt())
from vodlocal.serve import main
sys.exit(main())
"""


@pytest.mark.parametrize(
    "module",
    ["vodemu.app", "functions_framework"],  # while vod-serve is loaded; while the stack starts (the gateway)
    ids=["importing", "starting"],
)
def test_a_ctrl_c_before_the_stack_is_up_stops_it_without_a_traceback(tmp_path: Path, module: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED_AT_IMPORT, *_serve_args(tmp_path / "state")],
        env={**user_env(), "INTERRUPT_AT": module},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout.splitlines()[-1:], proc.stderr) == (130, ["stopped."], "")
