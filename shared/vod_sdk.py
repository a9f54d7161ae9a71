"""The Tencent SDK's connection to VOD's cloud API, from VodApiSettings: credentials, region, profile.

Only tencentcloud-sdk-python-common, so the callback's confirm-by-fetch (shared/vod_confirm.py) and the
PULL function's client (shared/vod_api.py) share it without the callback shipping the VOD models.
"""

from __future__ import annotations

from typing import Any

from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from shared.config import VodApiSettings


def client_arguments(
    settings: VodApiSettings, timeout_seconds: int
) -> tuple[credential.Credential, str, ClientProfile]:
    """(credential, region, profile): what every SDK client of VOD is built from."""
    token = settings.session_token.reveal() if settings.session_token else None
    cred = credential.Credential(settings.secret_id, settings.secret_key.reveal(), token)
    http = HttpProfile(protocol=settings.protocol, endpoint=settings.endpoint, reqTimeout=timeout_seconds)
    return cred, settings.region or "", ClientProfile(httpProfile=http)


def with_sub_app(params: dict[str, Any], sub_app_id: int | None) -> dict[str, Any]:
    return {**params, "SubAppId": sub_app_id} if sub_app_id is not None else params
