"""The sign function's handler: an express lane for the request an uploader sends before each VOD call, the
general path (shared.http.serve around shared.sign_service's endpoint) for everything else.

The express lane answers a POST with no body or `{}`, from a bearer token this container has verified before,
in one pass: the same answer, headers and log line as the general path, which stays the definition. Anything
else, or anything in doubt, goes the general way. tests/functional/test_sign_express_lane.py compares the two on
generated requests; every other sign test runs through this handler.

Why: issue 12 asks a request with a known token to cost at most half of Tencent's demo (12–26 µs on the bench
machine, with no authentication at all). The general path's layers (the request record and its headers, the
parameters' record and checks, the encoders, one function per step) cost ~40–90 µs; what is left of them for a
known token, with the policy's part of the query and of the answer made once, is a fraction (`make bench`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shared import source_context
from shared.auth import token_window
from shared.config import HttpSettings, SignSettings
from shared.http.cors import cors_headers
from shared.http.serve import BODY_JSON, serve
from shared.http.triggers import gateway_request_id
from shared.logs import INFO, as_json, enabled, invocation_id, write_line
from shared.sign_service import (
    SignatureRequest,
    make_sign_endpoint,
    signature_params,
    signature_response,
    urandom_u32,
)
from shared.signing import encode_value, query_template, signer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    Key = TypeVar("Key")
    Value = TypeVar("Value")
    # since, until (the token is valid from, and before: what is signed expires then at the latest), the user's
    # seal (its separators written %3A when the user id needs no URL encoding), the user as logged, whether none
    Identity = tuple[float, int, Callable[[str], str], str, bool]
    Spelt = tuple[str | None, str | None, str | None]  # Authorization, Origin, Content-Type (None: not sent)

    Handler = Callable[[object, object], dict[str, Any]]

NONE = type(None)
# Tokens, header layouts and paths the express lane keeps what it learnt of, per container: forgotten all at once
# when full.
MAX_KNOWN = 1024
# The header names whose layout the lane keeps: at most as many, and as many characters (~5 KB an entry, all told)
MAX_LAYOUT_NAMES, MAX_LAYOUT_CHARS = 64, 1024


def make_sign_handler(
    settings: SignSettings,
    *,
    now: Callable[[], float] = time.time,
    random_u32: Callable[[], int] = urandom_u32,
    timer: Callable[[], float] = time.perf_counter,
) -> Handler:
    endpoint = make_sign_endpoint(settings, now=now, random_u32=random_u32)
    http = settings.http

    def general(event: object, context: object) -> dict[str, Any]:
        return serve(event, context, endpoint, http, timer=timer)

    return _with_express_lane(settings, general, now, random_u32, timer) or general


def _with_express_lane(
    settings: SignSettings,
    general: Handler,
    now: Callable[[], float],
    random_u32: Callable[[], int],
    timer: Callable[[], float],
) -> Handler | None:
    """None where no request can take the lane: no bearer tokens, or a policy the general path refuses to sign."""
    parts = _policy_parts(settings) if settings.auth.mode == "jwt" else None
    if parts is None:
        return None
    sign, query, ttl, one_time, after_request_id = parts
    read_event = _event_reader(settings.http)
    known, learn = _identities(settings)
    http = settings.http
    without_origin = cors_headers(None, http)
    logged_paths: dict[str, str] = {}

    def handler(event: object, context: object) -> dict[str, Any]:
        started = timer()
        try:
            read = read_event(event, context)
            if read is None:
                return general(event, context)
            request_id, path, authorization, origin = read
            identity = known.get(authorization)
            if identity is None:  # a token not seen yet (or refused): verified the general way, once
                return learn(authorization, general(event, context))
            moment = now()  # one reading, as the general path's
            if not identity[0] <= moment < identity[1]:
                return general(event, context)
            stamp = int(moment)
            expire_time = min(stamp + ttl, identity[1])  # never past the token's end, as the general path's
            sealed = identity[2](request_id)  # as the signed text writes it, for a user id with nothing to encode
            signature = sign(
                (query % (stamp, expire_time, random_u32(), sealed if identity[4] else encode_value(sealed))).encode()
            )
        except Exception:  # whatever the general path makes of it
            return general(event, context)
        if enabled(INFO):  # the general path's line, its parts that do not change made once
            after_path = logged_paths.get(path) or _remember(
                logged_paths, path, f', "method": "POST", "path": {as_json(path)}, "status": 200, "outcome": "ok"'
            )
            latency = (timer() - started) * 1000  # to three places (0.120, where round() writes 0.12)
            write_line(
                f'{{"level": "INFO", "event": "request", "request_id": "{request_id}"{after_path}, '
                f'"latency_ms": {latency:.3f}, "user": {identity[3]}, "expire_time": {expire_time}}}'
            )
        headers = {"Cache-Control": "no-store", "X-Request-Id": request_id}
        headers.update(cors_headers(origin, http) if origin else without_origin)
        headers["Content-Type"] = "application/json; charset=utf-8"
        headers["X-Content-Type-Options"] = "nosniff"
        return {
            "isBase64Encoded": False,
            "statusCode": 200,
            "headers": headers,
            # Request ids hold no character JSON escapes (shared.http.triggers, shared.logs), nor does Base64.
            "body": f'{{"signature":"{signature}","expireTime":{expire_time},"currentTimeStamp":{stamp},'
            f'"oneTimeValid":{one_time},"requestId":"{request_id}"{after_request_id}}}',
        }

    return handler


def _remember(cache: dict[Key, Value], key: Key, value: Value) -> Value:
    if len(cache) >= MAX_KNOWN:
        cache.clear()
    cache[key] = value
    return value


def _policy_parts(settings: SignSettings) -> tuple[Callable[[bytes], str], str, int, str, str] | None:
    """What every request without choices is signed and answered with, checked once (the general path: each time):
    the signer of the query's start, the rest's template, the validity, the answer's oneTimeValid and its fields
    after requestId (in signature_response's order). None: a policy the general path refuses to sign with."""
    policy = settings.policy
    try:
        params = signature_params(
            SignatureRequest(), policy, user_id="-", request_id="-", context_key="-", now=0, random_u32=0
        )
    except Exception:
        return None
    prefix, query = query_template(params)
    answer = signature_response("", params, "")
    after_request_id = "".join(f",{BODY_JSON.encode({k: v})[1:-1]}" for k, v in list(answer.items())[5:])
    sign = signer(policy.secret_key.reveal(), prefix)
    return sign, query, policy.ttl_seconds, BODY_JSON.encode(answer["oneTimeValid"]), after_request_id


def _identities(
    settings: SignSettings,
) -> tuple[dict[str, Identity], Callable[[object, dict[str, Any]], dict[str, Any]]]:
    """The Authorization headers the lane has seen valid tokens in, and what learns one from the general path's
    answer to its first request (a token it refused is not verified twice, nor kept)."""
    auth, sealer = settings.auth, source_context.sealer(settings.context_key.reveal())
    known: dict[str, Identity] = {}

    def learn(authorization: object, answer: dict[str, Any]) -> dict[str, Any]:
        if answer["statusCode"] != 200 or type(authorization) is not str or authorization[:7] != "Bearer ":
            return answer
        window = token_window(authorization[7:], auth)  # verified already: the general path's cache
        if window is None:
            return answer
        user, since, until = window
        try:  # the general path sealed for this user, so it fits; but its answer stands whatever happens here
            # All but the user in a sealed sourceContext is plain but for its ':' separators (its format): a user id
            # with nothing to encode is sealed with them written %3A, as encode_value would; any other, encoded whole.
            plain = encode_value(user) == user
            identity = (since, until, sealer(user, "%3A") if plain else sealer(user), as_json(user), plain)
        except Exception:
            return answer
        _remember(known, authorization, identity)
        return answer

    return known, learn


def _event_reader(http: HttpSettings) -> Callable[[object, object], tuple[str, str, Any, str | None] | None]:
    """(request id, path, Authorization, Origin) of an event the lane takes (as shared.http.triggers reads it);
    None for the rest."""
    # Header names, in order -> how Authorization, Origin and Content-Type are spelt there (None: not sent)
    layouts: dict[tuple[str, ...], Spelt | None] = {}
    empty_object_fits = len("{}") <= http.max_body_bytes

    def read(event: object, context: object) -> tuple[str, str, Any, str | None] | None:
        if type(event) is not dict or event.get("httpMethod") != "POST":
            return None
        gateway = event.get("requestContext")
        if type(gateway) is dict:  # the API gateway's event, else a function URL's
            request_id = gateway_request_id(gateway.get("requestId")) or invocation_id(context)
            path = event.get("path") or gateway.get("path") or "/"
            query = event.get("queryString")
            query = event.get("queryStringParameters") if query is None else query
        elif "requestContext" not in event:
            request_id, path, query = invocation_id(context), event.get("path") or "/", event.get("queryString")
        else:
            return None
        body, marked, headers = event.get("body"), event.get("isBase64Encoded"), event.get("headers")
        has_body = body == "{}" and (marked is None or marked is False) and empty_object_fits
        if (
            not (has_body or body is None or body == "")
            or type(path) is not str
            or (query is not None and type(query) is not dict)
            or type(headers) is not dict
        ):
            return None
        names = tuple(headers)
        spelt = layouts.get(names, names)  # the names themselves: not seen yet (a layout is a tuple of three)
        if spelt is names:
            spelt = _layout(names, layouts)
        if spelt is None:
            return None
        authorization, origin, content_type = headers.get(spelt[0]), headers.get(spelt[1]), headers.get(spelt[2])
        if type(origin) not in (str, NONE) or (
            has_body and content_type != "application/json" and not _json_type(content_type)
        ):
            return None
        return request_id, path[:1000], authorization, origin

    return read


def _layout(names: tuple[str, ...], layouts: dict[tuple[str, ...], Spelt | None]) -> Spelt | None:
    """How a request's header names spell Authorization, Origin and Content-Type (None: a name sent twice, in two
    cases, where the general path decides which counts), kept in `layouts` for a browser's or a client's usual
    headers: anyone may send names, as many and as long as a gateway lets by."""
    lowered = {name.lower(): name for name in names}
    spelt: Spelt | None = None
    if len(lowered) == len(names):
        spelt = (lowered.get("authorization"), lowered.get("origin"), lowered.get("content-type"))
    if len(names) <= MAX_LAYOUT_NAMES and sum(map(len, names)) <= MAX_LAYOUT_CHARS:
        _remember(layouts, names, spelt)
    return spelt


def _json_type(content_type: object) -> bool:
    # shared.http.body.json_object's test (for spellings other than the common one)
    return type(content_type) is str and content_type.split(";")[0].strip().lower() == "application/json"
