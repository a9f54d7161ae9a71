"""The local stack for a test: the real function handlers behind functions-framework, and the VOD
emulator, on free loopback ports, with dev settings of their own; uploads go through VOD's client protocol
(ApplyUploadUGC → COS multipart with cos-python-sdk-v5 → CommitUploadUGC), as a device would."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from qcloud_cos import CosConfig, CosS3Client

from shared.logs import set_level
from shared.store import EventStore, UploadRecord, open_store
from vodlocal import localstack
from vodtesting import HookFailed

if TYPE_CHECKING:
    import pytest


_SECRET_SETTINGS = ("TENCENTCLOUD_SECRET_KEY", "AUTH_JWT_SECRET", "VOD_CALLBACK_SIGN_KEY", "VOD_CONTEXT_KEY")


class SignatureRefused(RuntimeError):
    """The stack's sign function refused a signature: its HTTP `status`, error `code` and `message`."""

    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(f"the sign function refused ({status}) " + (f"{code}: {message}" if code else message))
        self.status, self.code, self.message = status, code, message


class VodStack:
    """Started by the `vod_stack` fixture (or by hand: `VodStack(dir)`, then `stop()`)."""

    def __init__(self, state_dir: Path, *, pull: bool = False, **emulator_options: Any) -> None:
        """`pull`: the emulator queues events for PullEvents instead of pushing them to the callback;
        `emulator_options` go to the emulator (e.g. `clock=`, `long_poll_seconds=`)."""
        self._saved_environ = dict(os.environ)
        # The functions' imports set the process's log level (LOG_LEVEL): this test's, put back as it stops
        self._saved_level = set_level("INFO")
        set_level(self._saved_level)
        # start_stack puts its dev settings into os.environ (the handlers and SDK clients read them there); its
        # keys and database replace any the shell has (an app's CI exports its own DATABASE_URL, say).
        try:
            self._stack = localstack.start_stack(state_dir, pull=pull, own_settings=True, **emulator_options)
        except BaseException:
            self._restore_environ()  # nothing is left running (start_stack stops what it started)
            raise
        # As in effect: the dev ones, but where the environment's stay (CORS_ALLOW_ORIGINS)
        self.settings = {
            name: os.environ.get(name, value) for name, value in localstack.dev_settings(state_dir).items()
        }
        self.gateway_url = self._stack.gateway.url
        self.emulator_url = self._stack.emulator.url
        self.signature_url = f"{self.gateway_url}/signature"
        self.events_url = f"{self.gateway_url}/vod-events"
        self.page_url = self._stack.page_url  # the upload page, on the gateway at /upload/
        self.store: EventStore = open_store(self.settings["DATABASE_URL"])
        # Its own keys, and every signature and temporary key it handles: what no log line may show.
        self.secrets: list[str] = [self.settings[name] for name in _SECRET_SETTINGS]

    def chromium_flags(self) -> list[str]:
        """Chromium flags that send vod-js-sdk-v6's upload traffic (VOD's https host, COS) to this stack."""
        return self._stack.chromium_flags()

    def token(self, user: str = localstack.DEV_USER, **claims: Any) -> str:
        """A bearer token the stack's sign function accepts, for `user`."""
        return localstack.mint_token(self.settings["AUTH_JWT_SECRET"], user, **claims)

    def signature(self, user: str = localstack.DEV_USER, **choices: Any) -> str:
        """An upload signature for `user`, from the sign function over HTTP (choices: procedure, …)."""
        return self._signature(self.token(user), **choices)

    def _signature(self, token: str, **choices: Any) -> str:
        response = requests.post(
            self.signature_url, json=choices, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code != 200:  # the function's own words (a policy refused, a mistyped choice)
            error = response.json().get("error", {}) if "json" in response.headers.get("Content-Type", "") else {}
            raise SignatureRefused(response.status_code, error.get("code"), error.get("message") or response.text[:200])
        signature: str = response.json()["signature"]
        self.secrets.append(signature)
        return signature

    def _vod(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(f"{self.emulator_url}/v3/index.php", params={"Action": action}, json=body, timeout=30)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        if answer["code"] != 0:
            raise RuntimeError(f"VOD refused {action}: {answer['code']} {answer['message']}")
        data: dict[str, Any] = answer["data"]
        return data

    def upload(self, path: str | os.PathLike[str], user: str = localstack.DEV_USER, **choices: Any) -> dict[str, Any]:
        """Upload a file as `user` and return CommitUploadUGC's data (`fileId`, `video.url`, …). The
        callback records it moments later: `record(file_id)` waits for that."""
        video = Path(path)
        token = self.token(user)  # one for both calls, as a signed-in client has
        applied = self._vod(
            "ApplyUploadUGC",
            {
                "signature": self._signature(token, **choices),
                "videoName": video.stem,
                "videoType": video.suffix.lstrip(".") or "mp4",
                "videoSize": video.stat().st_size,
            },
        )
        certificate = applied["tempCertificate"]
        self.secrets.append(certificate["secretKey"])
        config = CosConfig(
            IP="127.0.0.1",
            Port=urlsplit(self.emulator_url).port,
            Region=applied["storageRegionV5"],
            SecretId=certificate["secretId"],
            SecretKey=certificate["secretKey"],
            Token=certificate["token"],
            Scheme="http",
        )
        CosS3Client(config, retry=0).upload_file(
            Bucket=f"{applied['storageBucket']}-{applied['storageAppId']}",
            Key=applied["video"]["storagePath"].lstrip("/"),
            LocalFilePath=str(video),
            PartSize=1,
            MAXThread=2,
        )
        return self._vod(
            "CommitUploadUGC", {"signature": self._signature(token), "vodSessionKey": applied["vodSessionKey"]}
        )

    def delete(self, file_id: str, *parts: tuple[str, int]) -> None:
        """DeleteMedia as an app's back office calls it (the tencentcloud SDK): the whole file, or only `parts`,
        each (Type, Definition), e.g. ("TranscodeFiles", 0). The emulator then sends FileDeleted, as VOD does
        with its DeleteMediaCompleteEventSwitch on (the stack turns it on): `record(file_id, until=…)` waits for
        it."""
        from tencentcloud.common.credential import Credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.vod.v20180717 import models, vod_client

        settings = self.settings
        profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=urlsplit(self.emulator_url).netloc))
        credential = Credential(settings["TENCENTCLOUD_SECRET_ID"], settings["TENCENTCLOUD_SECRET_KEY"])
        request = models.DeleteMediaRequest()
        request.FileId, request.SubAppId = file_id, int(settings["VOD_SUB_APP_ID"])
        request.DeleteParts = [{"Type": kind, "Definition": definition} for kind, definition in parts] or None
        with warnings.catch_warnings():  # the SDK's own utcfromtimestamp (Python 3.12+): not the app's to see
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="tencentcloud")
            vod_client.VodClient(credential, "", profile).DeleteMedia(request)

    def record(
        self, file_id: str, until: Callable[[UploadRecord], bool] | None = None, *, timeout: float = 30
    ) -> UploadRecord:
        """The store's record of an upload, once the callback has it and has run its after-commit hook
        (AFTER_COMMIT_HOOK) for each of its events stored so far: the hook runs after the commit. `until`: wait
        also for the record to say so (`lambda r: r.deleted`, after `delete`). HookFailed when the hook raised
        for one of them."""
        if until is not None and not callable(until):  # record(file_id, 60): timeout= is a keyword
            raise TypeError(f"until is a function of the record (lambda r: r.deleted), not {until!r}: timeout=…")
        deadline = time.monotonic() + timeout
        while True:
            found = self.store.upload(file_id)
            events = self.store.events_for(file_id) if found is not None else []
            failed = [event for event in events if event.hook_status == "failed"]
            if failed:  # your hook raised: its error, which the callback logged and stored
                raise HookFailed(
                    f"the after-commit hook failed on {file_id}'s {failed[0].event_type}: {failed[0].hook_last_error}"
                )
            if (
                found is not None
                and all(event.hook_status != "pending" for event in events)
                and (until is None or until(found))
            ):
                return found
            if time.monotonic() > deadline:
                if found is None:
                    why = f"no record of {file_id}"
                elif any(event.hook_status == "pending" for event in events):
                    why = f"{file_id} is recorded, but an after-commit hook of its events still runs (or was cut off)"
                else:
                    why = f"{file_id} is recorded, but not as `until` asks"
                raise TimeoutError(f"{why}, after {timeout} s")
            time.sleep(0.05)

    def records(self, user: str) -> list[UploadRecord]:
        """Every upload the store ties to `user`, oldest first."""
        return self.store.user_uploads(user)[::-1]

    def stop(self) -> None:
        try:
            self.store.close()
            self._stack.stop()
        finally:  # also when stopping warned as an error (a hook still running): the next test's environment
            self._restore_environ()

    def _restore_environ(self) -> None:
        os.environ.clear()
        os.environ.update(self._saved_environ)
        set_level(self._saved_level)


def start_stack_with(monkeypatch: pytest.MonkeyPatch, state_dir: Path, **options: Any) -> VodStack:
    """A VodStack whose changes to os.environ are made through the test's `monkeypatch`, so that they and the
    test's own are undone together, last first. (Else a `monkeypatch.setenv` made while the stack runs, undone
    after the stack stopped and restored the environment, would put the stack's value back for later tests.)"""
    before = dict(os.environ)
    stack = VodStack(state_dir, **options)
    after = dict(os.environ)
    os.environ.clear()
    os.environ.update(before)
    for name, value in after.items():
        if before.get(name) != value:
            monkeypatch.setenv(name, value)
    for name in before.keys() - after.keys():
        monkeypatch.delenv(name)
    return stack
