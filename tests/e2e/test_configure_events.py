"""scripts/configure-events drives ModifyEventConfig/DescribeEventConfig through the SDK (here: the emulator)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import closed_loopback_port, run_command
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
        (("--mode", "PULL"), {"Mode": "PULL"}),
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
    assert "refused" not in proc.stderr.replace("Connection refused", "")
