"""VOD's cloud API through Tencent's SDK (`tencentcloud-sdk-python-vod` + `-common` only).

Imported by the PULL function and `vod-configure-events` alone: the sign path never loads the SDK, nor does the
callback (VOD_CALLBACK_CONFIRM=fetch calls VOD through shared/vod_cloud_api.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.vod.v20180717 import vod_client

from shared.config import VodApiSettings
from shared.vod_cloud_api import ExecutionRoleCredential, loaded_credentials, with_sub_app
from shared.vod_limits import API_TIMEOUT_SECONDS

# The SDK logs each request and answer whole at DEBUG: the Authorization header, a role's session token, a SignKey
# DescribeEventConfig answers. A hook (or the app around vod-configure-events) that sets DEBUG on the root logger
# must not put them in the log: the SDK's lines stay in its own logger, which writes nowhere.
logging.getLogger("tencentcloud_sdk_common").propagate = False


def make_client(settings: VodApiSettings) -> vod_client.VodClient:
    cred: credential.Credential | ExecutionRoleCredential
    if settings.renewed_role:
        cred = ExecutionRoleCredential(settings)
    else:  # the account's own key pair, or a role's keys outside SCF
        cred = credential.Credential(*loaded_credentials(settings))
    http = HttpProfile(protocol=settings.protocol, endpoint=settings.endpoint, reqTimeout=API_TIMEOUT_SECONDS)
    return vod_client.VodClient(cred, settings.region or "", ClientProfile(httpProfile=http))


class SdkEventQueue:
    """The reliable-callback queue of one VOD (sub-)application."""

    def __init__(self, client: vod_client.VodClient, sub_app_id: int | None) -> None:
        self._client = client
        self._sub_app_id = sub_app_id

    def pull(self) -> list[dict[str, Any]]:
        # The raw JSON, not the SDK's model: the model would invent a null for every field VOD did
        # not send, and the event is stored as VOD sent it.
        response = _answer(self._client, "PullEvents", with_sub_app({}, self._sub_app_id))
        events = response.get("EventSet") or []  # null (documented) or absent: none
        if not isinstance(events, list):  # not walked as events (a string's characters, an object's keys)
            raise TypeError(f"PullEvents answered an EventSet of type {type(events).__name__}")
        return events

    def confirm(self, handles: Sequence[str]) -> None:
        _answer(self._client, "ConfirmEvents", with_sub_app({"EventHandles": list(handles)}, self._sub_app_id))


def _answer(client: vod_client.VodClient, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """VOD's Response object for `action`. The SDK raises VOD's Error only from an answer labelled exactly
    application/json or text/plain (abstract_client.py, _check_error): one a proxy relabelled
    ("application/json; charset=utf-8", say) would pass as an empty queue, or as events confirmed."""
    try:
        body = client.call_json(action, params)
    except (ValueError, LookupError, TypeError) as exc:  # not JSON (a login page), or not shaped as VOD's answers
        detail = f"{type(exc).__name__}: {exc}"  # (what the SDK's typed calls say, which call_json lets through)
        raise TencentCloudSDKException("NotAnApiAnswer", f"{action} answered, not as VOD does ({detail})") from None
    answer = body.get("Response") if isinstance(body, dict) else None
    if not isinstance(answer, dict):
        raise TencentCloudSDKException("NotAnApiAnswer", f"{action} answered without a Response object")
    error = answer.get("Error")
    if error is not None:
        code, message = (error.get("Code"), error.get("Message")) if isinstance(error, dict) else (None, error)
        raise TencentCloudSDKException(str(code or "Error"), str(message or ""), answer.get("RequestId"))
    return answer


def describe_event_config(client: vod_client.VodClient, sub_app_id: int | None) -> dict[str, Any]:
    """VOD's event settings, as it sent them (through `_answer`, as every call here: a refusal is one)."""
    return _answer(client, "DescribeEventConfig", with_sub_app({}, sub_app_id))


def modify_event_config(client: vod_client.VodClient, sub_app_id: int | None, **fields: Any) -> None:
    """ModifyEventConfig with the given fields (Mode, NotificationUrl, UploadMediaCompleteEventSwitch,
    DeleteMediaCompleteEventSwitch, SignKey); fields left out keep their value."""
    _answer(client, "ModifyEventConfig", with_sub_app({k: v for k, v in fields.items() if v is not None}, sub_app_id))
