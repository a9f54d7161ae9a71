"""The Tencent SDK's connection to VOD's cloud API, from VodApiSettings: credentials, region, profile.

Only tencentcloud-sdk-python-common, so the callback's confirm-by-fetch (shared/vod_confirm.py) and the
PULL function's client (shared/vod_api.py) share it without the callback shipping the VOD models.
"""

from __future__ import annotations

import os
from typing import Any

from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from shared.config import VodApiSettings, note_secrets


class ExecutionRoleCredential:
    """An SCF execution role's temporary keys, read from the environment at every request: they expire, and a
    warm container outlives them (Tencent's own SCF client, tencentserverless, reads them at each call too).
    The ones the settings were loaded with stand in while the environment has none. Only inside SCF: elsewhere
    (a test, a laptop) the environment at call time is not the function's."""

    _NAMES = ("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN")

    def __init__(self, settings: VodApiSettings) -> None:
        token = settings.session_token.reveal() if settings.session_token else ""
        self._loaded = (settings.secret_id, settings.secret_key.reveal(), token)

    def get_credential_info(self) -> tuple[str, str, str]:  # what the SDK asks for before each request
        secret_id, secret_key, token = (os.environ.get(name) or "" for name in self._NAMES)
        note_secrets({"TENCENTCLOUD_SECRETKEY": secret_key, "TENCENTCLOUD_SESSIONTOKEN": token})  # renewed: masked too
        return (secret_id, secret_key, token) if secret_id and secret_key and token else self._loaded

    def __repr__(self) -> str:
        return "ExecutionRoleCredential(***)"


def client_arguments(
    settings: VodApiSettings, timeout_seconds: int
) -> tuple[credential.Credential | ExecutionRoleCredential, str, ClientProfile]:
    """(credential, region, profile): what every SDK client of VOD is built from."""
    cred: credential.Credential | ExecutionRoleCredential
    if settings.renewed_role:
        cred = ExecutionRoleCredential(settings)
    else:  # the account's own key pair, or a role's keys outside SCF
        token = settings.session_token.reveal() if settings.session_token else None
        cred = credential.Credential(settings.secret_id, settings.secret_key.reveal(), token)
    http = HttpProfile(protocol=settings.protocol, endpoint=settings.endpoint, reqTimeout=timeout_seconds)
    return cred, settings.region or "", ClientProfile(httpProfile=http)


def with_sub_app(params: dict[str, Any], sub_app_id: int | None) -> dict[str, Any]:
    return {**params, "SubAppId": sub_app_id} if sub_app_id is not None else params
