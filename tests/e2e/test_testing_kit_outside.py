"""The testing kit as an app team uses it: a project of their own, outside this repository, with only the
installed bundle (`pip install ".[testing]"`, not editable) and pytest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.checkout import scratch_copy
from vodlocal.localstack import LOOPBACK_HOSTS

HOOKS = '''
CALLS = []


def on_upload(committed):
    """The app's after-commit hook (AFTER_COMMIT_HOOK=myapp.hooks:on_upload), with a bug for one user."""
    if committed.upload.user_id == "mallory":
        raise RuntimeError("app hook bug")
    CALLS.append(committed)
'''

UPLOADING = """
from pathlib import Path

from vodupload import SignatureClient, UploadInProgress, Uploader


def upload(path: Path, token: str) -> str | None:
    try:
        with SignatureClient("https://api.example.com/signature", token) as signer, Uploader(signer) as uploader:
            return uploader.upload(path).run().file_id
    except UploadInProgress:  # another of the app's threads is uploading it
        return None
"""

APP_TESTS = """
import gc
import os

import pytest

from myapp import hooks
from vodtesting import HookFailed, http_event, sample_video, signed, signed_parameters, vod_event

gc.disable()  # what the kit leaves open stays open, to be seen by the last test

SIGN_KEY = "AppSignKey0123"


def test_the_hook_sees_the_user_who_got_the_signature(vod_stack, vod_function, tmp_path):
    signature = vod_stack.signature("carol")
    context = signed_parameters(signature)["sourceContext"]
    callback = vod_function("callback", env={"VOD_CALLBACK_SIGN_KEY": SIGN_KEY,
                                             "VOD_CONTEXT_KEY": vod_stack.settings["VOD_CONTEXT_KEY"],
                                             "DATABASE_URL": f"sqlite:///{tmp_path}/vod.sqlite3",
                                             "AFTER_COMMIT_HOOK": "myapp.hooks:on_upload"})
    event = signed(vod_event("NewFileUpload", FileId="app-file-1", SourceContext=context), SIGN_KEY)
    result = callback(http_event("POST", "/vod-events", body=event), {})
    assert result["statusCode"] == 200
    [committed] = hooks.CALLS
    assert (committed.upload.user_id, committed.upload.file_id) == ("carol", "app-file-1")


def test_a_client_upload_is_recorded_for_its_user(vod_stack, tmp_path):
    committed = vod_stack.upload(sample_video(tmp_path / "clip.mp4", size=300_000), user="dave")
    assert vod_stack.record(committed["fileId"]).user_id == "dave"
    vod_stack.delete(committed["fileId"])  # DeleteMedia through the SDK the kit installs
    assert vod_stack.record(committed["fileId"], until=lambda r: r.deleted).user_id == "dave"


def test_the_callback_confirms_by_fetch_and_events_pull_loads(vod_stack, vod_function, tmp_path):
    committed = vod_stack.upload(sample_video(tmp_path / "e.mp4", size=100_000), user="erin")
    names = ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "VOD_SUB_APP_ID", "VOD_CONTEXT_KEY")
    env = {**{n: vod_stack.settings[n] for n in names}, "VOD_API_ENDPOINT": vod_stack.emulator_url,
           "DATABASE_URL": f"sqlite:///{tmp_path}/fetch.sqlite3"}
    callback = vod_function("callback", env={**env, "VOD_CALLBACK_SIGN_KEY": SIGN_KEY, "VOD_CALLBACK_CONFIRM": "fetch"})
    event = signed(vod_event("NewFileUpload", FileId=committed["fileId"]), SIGN_KEY)
    assert callback(http_event("POST", "/vod-events", body=event), {})["statusCode"] == 200
    assert vod_function("events_pull", env=env) is not None


@pytest.fixture
def app_hook(monkeypatch):
    monkeypatch.setenv("AFTER_COMMIT_HOOK", "myapp.hooks:on_upload")


def test_a_hook_that_raises_fails_the_wait_for_its_record(app_hook, vod_stack, tmp_path):
    committed = vod_stack.upload(sample_video(tmp_path / "m.mp4", size=100_000), user="mallory")
    with pytest.raises(HookFailed, match="NewFileUpload: RuntimeError: app hook bug"):
        vod_stack.record(committed["fileId"])


def test_the_app_changes_its_environment_while_the_stack_runs(monkeypatch, vod_stack):
    monkeypatch.setenv("DATABASE_URL", "sqlite:///app.sqlite3")
    monkeypatch.delenv("AUTH_JWT_SECRET")


def test_then_neither_the_apps_changes_nor_the_stacks_are_left():
    assert {"DATABASE_URL", "AUTH_JWT_SECRET", "VOD_API_ENDPOINT"}.isdisjoint(os.environ)
    # nor a database the functions opened (the stack's, and those of vod_function's handlers)
    files = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            files.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, closed since
            pass
    assert [name for name in files if ".sqlite3" in name] == []
"""


def _run(
    venv: Path, args: list[str], *, env: dict[str, str], timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The virtualenv's python with `args`, to the end, its output as text."""
    python = str(venv / "bin" / "python")
    return subprocess.run(
        [python, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.slow
def test_an_app_outside_the_repository_tests_its_hook_and_client(tmp_path: Path) -> None:
    # GIVEN the bundle installed from a copy of this checkout into a fresh virtualenv, with its testing extra
    source = scratch_copy(tmp_path / "bundle")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    quiet = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    install = _run(venv, ["-m", "pip", "install", "--quiet", f"{source}[testing]"], env=quiet, timeout=900)
    assert install.returncode == 0, install.stdout + install.stderr
    # (vod-bench comes with it, and says it measures a checkout, not what is installed)
    bench = subprocess.run([venv / "bin" / "vod-bench", "sign"], capture_output=True, text=True, check=False)
    assert (bench.returncode, bench.stdout) == (2, ""), bench.stdout + bench.stderr
    assert "vod-bench measures a checkout of the bundle" in bench.stderr
    # ...and an app of its own elsewhere: a hook module and tests that use the kit's fixtures
    app = tmp_path / "app"
    (app / "myapp").mkdir(parents=True)
    (app / "myapp" / "__init__.py").write_text("")
    (app / "myapp" / "hooks.py").write_text(HOOKS)
    (app / "myapp" / "uploading.py").write_text(UPLOADING)
    (app / "tests").mkdir()
    (app / "tests" / "test_app.py").write_text(APP_TESTS)
    (app / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    # WHEN the app's tests run with the venv's pytest
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "NO_PROXY": LOOPBACK_HOSTS}
    run = _run(venv, ["-m", "pytest", "-q", "-p", "no:cacheprovider"], env=env, timeout=600, cwd=app)
    # THEN they pass, on the kit found through its pytest11 entry point, away from this repository
    assert run.returncode == 0, run.stdout + run.stderr
    assert "6 passed" in run.stdout
    assert str(Path(__file__).resolve().parents[2]) not in run.stdout + run.stderr
    # AND its type checker reads the installed libraries' hints (their names, the exceptions an app catches)
    typed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--python-executable",
            str(venv / "bin" / "python"),
            "myapp/uploading.py",
        ],
        cwd=app,
        capture_output=True,
        text=True,
        check=False,
    )
    assert typed.returncode == 0, typed.stdout + typed.stderr
    # AND WHEN the app has a top-level package named `shared` too, as the bundle's core is named
    (app / "shared").mkdir()
    (app / "shared" / "__init__.py").write_text("")
    clash = _run(venv, ["-m", "pytest", "-q", "-p", "no:cacheprovider"], env=env, timeout=600, cwd=app)
    # THEN each test that uses the kit's fixtures stops, saying which package hides the core
    assert clash.returncode == 1, clash.stdout + clash.stderr
    assert f"the `shared` found first is not it ({app / 'shared'})" in clash.stdout
    assert "1 passed, 5 errors" in clash.stdout, clash.stdout
