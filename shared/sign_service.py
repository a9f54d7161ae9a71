"""Issuing upload signatures: parse the client's choices, apply the server's policy, sign."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from shared import source_context
from shared.auth import authenticate, check_key
from shared.config import SigningPolicy, SignSettings
from shared.errors import BadRequest, Forbidden
from shared.http.body import json_object
from shared.http.model import Endpoint, Request, Response
from shared.records import Record
from shared.signing import SignatureParams, build_signature
from shared.vod_limits import MAX_SESSION_CONTEXT, text_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class SignatureRequest(Record):
    """What a client may ask for; None = take the server's default."""

    procedure: str | None = None
    storage_region: str | None = None
    class_id: int | None = None
    one_time_valid: bool | None = None
    session_context: str | None = None


# wire name -> (field, accepted type)
_FIELDS: dict[str, tuple[str, type]] = {
    "procedure": ("procedure", str),
    "storageRegion": ("storage_region", str),
    "classId": ("class_id", int),
    "oneTimeValid": ("one_time_valid", bool),
    "sessionContext": ("session_context", str),
}
_KIND_NAMES = {str: "a string", int: "an integer", bool: "a boolean"}
_SERVER_ONLY = (
    "sourceContext",
    "secretId",
    "vodSubAppId",
    "expireTime",
    "currentTimeStamp",
    "random",
    "taskPriority",
    "taskNotifyMode",
)


def parse_signature_request(body: Mapping[str, Any] | None) -> SignatureRequest:
    values: dict[str, Any] = {}
    for wire, value in (body or {}).items():
        if wire in _SERVER_ONLY:
            raise BadRequest(f"{wire} is set by the server and cannot be sent", code="field_not_allowed")
        if wire not in _FIELDS:
            raise BadRequest(f"unknown field {wire!r}; allowed: {', '.join(_FIELDS)}", code="unknown_field")
        name, kind = _FIELDS[wire]
        if value is None:
            continue
        # bool is an int in Python: classId: true must not pass as 1.
        if type(value) is not kind:
            raise BadRequest(f"{wire} must be {_KIND_NAMES[kind]}", code="invalid_field")
        values[name] = value
    if text_size(values.get("session_context") or "") > MAX_SESSION_CONTEXT:
        raise BadRequest(
            f"sessionContext must be at most {MAX_SESSION_CONTEXT} bytes in UTF-8 (fewer characters outside ASCII)",
            code="invalid_field",
        )
    return SignatureRequest(**values)


def _choose(wire: str, chosen: Any, default: Any, allowed: frozenset[Any]) -> Any:
    if chosen is None or chosen == default:
        return default
    if chosen not in allowed:
        raise Forbidden(f"{wire} {chosen!r} is not allowed by the server's policy", code="policy_violation")
    return chosen


def _one_time(chosen: bool | None, policy: SigningPolicy) -> bool:
    # A client may ask for a stricter signature, never a looser one.
    if chosen is False and policy.one_time:
        raise Forbidden("oneTimeValid false is not allowed by the server's policy", code="policy_violation")
    return policy.one_time if chosen is None else chosen


def signature_params(
    request: SignatureRequest,
    policy: SigningPolicy,
    *,
    user_id: str,
    request_id: str,
    context_key: str,
    now: float,
    random_u32: int,
    until: int | None = None,
) -> SignatureParams:
    """The parameters to sign; they expire after the policy's validity, or at `until` (the caller's credential
    ends: Principal.until) if that comes first."""
    # UserIdTooLong, SignatureParamError (e.g. a sessionContext VOD could not carry): shared.errors maps them.
    expire_time = int(now) + policy.ttl_seconds
    return SignatureParams(
        secret_id=policy.secret_id,
        current_time_stamp=int(now),
        expire_time=expire_time if until is None else min(expire_time, until),
        random=random_u32,
        class_id=_choose("classId", request.class_id, policy.class_id, policy.allowed_class_ids),
        procedure=_choose("procedure", request.procedure, policy.procedure, policy.allowed_procedures),
        task_priority=policy.task_priority,
        task_notify_mode=policy.task_notify_mode,
        source_context=source_context.seal(user_id, request_id, context_key),
        session_context=request.session_context,
        one_time_valid=_one_time(request.one_time_valid, policy),
        vod_sub_app_id=policy.sub_app_id,
        storage_region=_choose(
            "storageRegion", request.storage_region, policy.storage_region, policy.allowed_storage_regions
        ),
    )


def signature_response(signature: str, params: SignatureParams, request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "signature": signature,
        "expireTime": params.expire_time,
        "currentTimeStamp": params.current_time_stamp,
        "oneTimeValid": bool(params.one_time_valid),
        "requestId": request_id,
    }
    optional = {
        "procedure": params.procedure,
        "storageRegion": params.storage_region,
        "classId": params.class_id,
        "vodSubAppId": params.vod_sub_app_id,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


# Unsigned 32-bit numbers from os.urandom (what secrets.randbits(32) returns), read 4 KiB at a time: a system call
# is ~1 µs, as much as a signature's HMAC-SHA256. A forked child reads its own, never its parent's next ones.
_RANDOM_WORDS: list[int] = []
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_RANDOM_WORDS.clear)


def urandom_u32() -> int:
    while True:
        try:
            return _RANDOM_WORDS.pop()
        except IndexError:  # used up (or taken by another thread since): read more
            _RANDOM_WORDS.extend(memoryview(os.urandom(4096)).cast("I"))


def make_sign_endpoint(
    settings: SignSettings, *, now: Callable[[], float] = time.time, random_u32: Callable[[], int] = urandom_u32
) -> Endpoint:
    check_key(settings.auth)
    secret_key = settings.policy.secret_key.reveal()
    context_key = settings.context_key.reveal()

    def endpoint(request: Request) -> Response:
        # One reading of the clock: the token is valid at the moment signed, so its end (an int) is after it.
        moment = now()
        principal = authenticate(request, settings.auth, lambda: moment)
        request.notes["user"] = principal.user_id
        wanted = parse_signature_request(json_object(request))
        params = signature_params(
            wanted,
            settings.policy,
            user_id=principal.user_id,
            request_id=request.request_id,
            context_key=context_key,
            now=moment,
            random_u32=random_u32(),
            until=principal.until,
        )
        signature = build_signature(params, secret_key)
        request.notes["expire_time"] = params.expire_time
        return Response(200, signature_response(signature, params, request.request_id))

    return endpoint
