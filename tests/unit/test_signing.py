"""Upload signatures: what shared.signing builds, checked by two verifiers written without it (the
emulator's, and a few lines here), and every domain boundary; then the emulator's verifier itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import SignatureParamError
from shared.signing import SignatureParams, build_signature, encode_value, query_template, signer, to_query
from shared.vod_limits import MAX_SESSION_CONTEXT, MAX_SOURCE_CONTEXT, MAX_VALIDITY_SECONDS, text_size
from tests.conftest import SECRET_ID, SECRET_KEY
from tests.emulator.signatures import new_params
from vodemu.signature import Refused, SignatureRefused, verify

NOW = 1_700_000_000
# Any Unicode except NUL and lone surrogates (which have no UTF-8 form, so no signature can carry them).
text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))


def base(**changes: Any) -> SignatureParams:
    fields: dict[str, Any] = {
        "secret_id": SECRET_ID,
        "current_time_stamp": NOW,
        "expire_time": NOW + 600,
        "random": 12345,
    }
    return SignatureParams(**{**fields, **changes})


def independent_verify(signature: str, secret_key: str) -> dict[str, list[str]]:
    """What VOD does (https://cloud.tencent.com/document/product/266/9221), in the fewest lines."""
    raw = base64.b64decode(signature, validate=True)
    mac, original = raw[:20], raw[20:]
    assert hmac.compare_digest(mac, hmac.new(secret_key.encode(), original, hashlib.sha1).digest())
    return parse_qs(original.decode("utf-8"), keep_blank_values=True, strict_parsing=True)


@settings(max_examples=200, deadline=None)
@given(
    source=st.none() | text.filter(lambda s: text_size(s) <= MAX_SOURCE_CONTEXT),  # bytes, as VOD counts
    session=st.none() | text.filter(lambda s: text_size(s) <= MAX_SESSION_CONTEXT),
    procedure=st.none() | text,
    region=st.none() | text,
    class_id=st.none() | st.integers(0, 2**31),
    priority=st.none() | st.integers(-10, 10),
    mode=st.none() | st.sampled_from(["Finish", "Change", "None"]),
    one_time=st.none() | st.booleans(),
    sub_app=st.none() | st.integers(1, 2**40),
    random=st.integers(0, 2**32 - 1),
    validity=st.integers(1, MAX_VALIDITY_SECONDS),
)
def test_build_then_decode_round_trips_and_an_independent_verifier_agrees(
    source: str | None,
    session: str | None,
    procedure: str | None,
    region: str | None,
    class_id: int | None,
    priority: int | None,
    mode: str | None,
    one_time: bool | None,
    sub_app: int | None,
    random: int,
    validity: int,
) -> None:
    params = base(
        source_context=source,
        session_context=session,
        procedure=procedure,
        storage_region=region,
        class_id=class_id,
        task_priority=priority,
        task_notify_mode=mode,
        one_time_valid=one_time,
        vod_sub_app_id=sub_app,
        random=random,
        expire_time=NOW + validity,
    )
    signature = build_signature(params, SECRET_KEY)

    wire = {
        "secretId": SECRET_ID,
        "currentTimeStamp": NOW,
        "expireTime": NOW + validity,
        "random": random,
        "classId": class_id,
        "procedure": procedure,
        "taskPriority": priority,
        "taskNotifyMode": mode,
        "sourceContext": source,
        "sessionContext": session,
        "vodSubAppId": sub_app,
        "storageRegion": region,
        "oneTimeValid": None if one_time is None else int(one_time),
    }
    sent = {name: value for name, value in wire.items() if value is not None}
    assert verify(signature, {SECRET_ID: SECRET_KEY}, now=NOW).values == sent
    parsed = independent_verify(signature, SECRET_KEY)
    assert parsed["secretId"] == [SECRET_ID]
    assert parsed["expireTime"] == [str(NOW + validity)]
    if source is not None:
        assert parsed["sourceContext"] == [source]
    if session is not None:
        assert parsed["sessionContext"] == [session]
    if procedure is not None:
        assert parsed["procedure"] == [procedure]
    if source is not None:  # the express lane's way to the same signature: the policy's part signed once
        prefix, rest = query_template(params)
        filled = rest % (NOW, NOW + validity, random, encode_value(source))
        assert signer(SECRET_KEY, prefix)(filled.encode()) == signature


@pytest.mark.parametrize(
    "session", ["a&sourceContext=u2:r:forged:mallory", "x=1", "a&b", "%41", "a+b", "a b", "=&="], ids=repr
)
def test_a_value_with_query_syntax_stays_one_value_of_its_own(session: str) -> None:
    # The caller chooses sessionContext: its text must never add a parameter (a second sourceContext) to the signed one
    params = base(source_context="sealed", session_context=session)
    parsed = independent_verify(build_signature(params, SECRET_KEY), SECRET_KEY)
    assert (parsed["sessionContext"], parsed["sourceContext"]) == ([session], ["sealed"])
    assert sorted(parsed) == sorted(
        ["secretId", "currentTimeStamp", "expireTime", "random", "sourceContext", "sessionContext"]
    )


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("u2:req-1:mac_-:ann", "u2%3Areq-1%3Amac_-%3Aann"),  # the common case: its ':' only
        ("A-z_0.9~", "A-z_0.9~"),  # as it is
        ("a b/c+d", "a+b%2Fc%2Bd"),  # as urlencode (Tencent's demo) writes it: space +, the rest %XX
        ("a b:c", "a+b%3Ac"),
        ("&=%?#", "%26%3D%25%3F%23"),
        ("张", "%E5%BC%A0"),  # UTF-8
    ],
    ids=repr,
)
def test_a_value_is_written_in_the_signed_text_url_encoded(value: str, written: str) -> None:
    assert encode_value(value) == written == urlencode({"v": value})[2:]  # as Tencent's Python demo writes it
    assert f"&sessionContext={written}" in to_query(base(source_context="s", session_context=value))


@given(st.text(alphabet=st.sampled_from("aZ09_.-~: +/&=%?#\u5f20\U0001f600")) | st.text())
@settings(max_examples=500)
def test_every_value_is_written_as_tencents_python_demo_writes_it(value: str) -> None:
    assert encode_value(value) == urlencode({"v": value})[2:]


def test_any_correct_url_encoding_is_accepted() -> None:
    # VOD parses the query string, so %20 instead of + (Tencent's PHP demo) must verify too.
    original = (
        f"secretId={SECRET_ID}&currentTimeStamp={NOW}&expireTime={NOW + 60}&random=7&sourceContext={quote('a b')}"
    )
    mac = hmac.new(SECRET_KEY.encode(), original.encode(), hashlib.sha1).digest()
    signature = base64.b64encode(mac + original.encode()).decode()
    assert verify(signature, {SECRET_ID: SECRET_KEY}, now=NOW).text("sourceContext") == "a b"


def test_random_comes_from_the_injected_source_and_clock() -> None:
    params = new_params(SECRET_ID, 600, now=lambda: NOW + 0.9, random_u32=lambda: 42, procedure="p")
    assert (params.current_time_stamp, params.expire_time, params.random, params.procedure) == (NOW, NOW + 600, 42, "p")
    assert "procedure=p" in to_query(params)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"source_context": "x" * (MAX_SOURCE_CONTEXT + 1)}, "sourceContext"),
        ({"session_context": "x" * (MAX_SESSION_CONTEXT + 1)}, "sessionContext"),
        # Bytes in UTF-8, as VOD counts them, not characters
        ({"source_context": "é" * (MAX_SOURCE_CONTEXT // 2 + 1)}, "sourceContext"),
        ({"session_context": "é" * (MAX_SESSION_CONTEXT // 2 + 1)}, "sessionContext"),
        ({"task_priority": 11}, "taskPriority"),
        ({"task_priority": -11}, "taskPriority"),
        ({"expire_time": NOW}, "expireTime"),
        ({"expire_time": NOW + MAX_VALIDITY_SECONDS + 1}, "expireTime"),
        ({"random": -1}, "random"),
        ({"random": 2**32}, "random"),
        ({"task_notify_mode": "finish"}, "taskNotifyMode"),
        ({"class_id": -1}, "classId"),
        ({"vod_sub_app_id": 0}, "vodSubAppId"),
        ({"class_id": True}, "classId"),
        ({"one_time_valid": 1}, "oneTimeValid"),
        ({"secret_id": ""}, "secretId"),
        ({"procedure": "a\x00b"}, "procedure"),
    ],
)
def test_each_limit_is_rejected_just_past_its_boundary(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(SignatureParamError) as caught:
        base(**changes)
    assert caught.value.field == field
    assert field in str(caught.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"source_context": "x" * MAX_SOURCE_CONTEXT},
        {"session_context": "x" * MAX_SESSION_CONTEXT},
        {"source_context": "é" * (MAX_SOURCE_CONTEXT // 2)},
        {"task_priority": 10},
        {"task_priority": -10},
        {"expire_time": NOW + 1},
        {"expire_time": NOW + MAX_VALIDITY_SECONDS},
        {"random": 0},
        {"random": 2**32 - 1},
    ],
)
def test_each_limit_itself_is_accepted(changes: dict[str, Any]) -> None:
    params = base(**changes)
    assert {name: getattr(params, name) for name in changes} == changes


def _resign(original: str, key: str = SECRET_KEY) -> str:
    mac = hmac.new(key.encode(), original.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac + original.encode()).decode()


GOOD = build_signature(base(), SECRET_KEY)


def _tampered(at: int) -> str:
    raw = bytearray(base64.b64decode(GOOD))
    raw[at] ^= 1
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("signature", "now", "kind"),
    [
        (GOOD, NOW + 600, Refused.EXPIRED),
        (GOOD, NOW - 1, Refused.NOT_YET_VALID),
        (build_signature(base(), "another-key"), NOW, Refused.MISMATCH),
        (_tampered(-1), NOW, Refused.MISMATCH),  # the signed text
        (_tampered(19), NOW, Refused.MISMATCH),  # the HMAC's last byte
        (build_signature(base(secret_id="AKIDother"), SECRET_KEY), NOW, Refused.UNKNOWN_SECRET_ID),
        ("not base64!", NOW, Refused.MALFORMED),
        ("签名", NOW, Refused.MALFORMED),
        (base64.b64encode(b"short").decode(), NOW, Refused.MALFORMED),
        (_resign(f"secretId={SECRET_ID}&currentTimeStamp={NOW}&random=1"), NOW, Refused.MALFORMED),
        (_resign(f"secretId={SECRET_ID}&currentTimeStamp={NOW}&expireTime=1e9&random=1"), NOW, Refused.MALFORMED),
        (
            _resign(f"secretId={SECRET_ID}&secretId=x&currentTimeStamp={NOW}&expireTime={NOW + 5}&random=1"),
            NOW,
            Refused.MALFORMED,
        ),
        (
            _resign(f"secretId={SECRET_ID}&currentTimeStamp={NOW}&expireTime={NOW + 5}&random=1&oneTimeValid=2"),
            NOW,
            Refused.MALFORMED,
        ),
        (
            _resign(f"secretId={SECRET_ID}&currentTimeStamp={NOW}&expireTime={NOW + 99999999}&random=1"),
            NOW,
            Refused.VALIDITY,
        ),
        (
            _resign(f"secretId={SECRET_ID}&currentTimeStamp={NOW}&expireTime={NOW + 5}&random=1&taskPriority=11"),
            NOW,
            Refused.BAD_PARAMETER,
        ),
        (
            _resign(
                f"secretId={SECRET_ID}&currentTimeStamp={NOW}&expireTime={NOW + 5}&random=1"
                f"&sourceContext={'x' * (MAX_SOURCE_CONTEXT + 1)}"
            ),
            NOW,
            Refused.BAD_PARAMETER,
        ),
    ],
)
def test_the_emulator_refuses_what_vod_refuses(signature: str, now: int, kind: Refused) -> None:
    with pytest.raises(SignatureRefused) as caught:
        verify(signature, {SECRET_ID: SECRET_KEY}, now=now)
    assert caught.value.kind is kind


def test_clock_skew_allowance_is_explicit() -> None:
    assert verify(GOOD, {SECRET_ID: SECRET_KEY}, now=NOW - 5, clock_skew=5).expire_time == NOW + 600


def test_a_verified_signature_keeps_the_credential_out_of_its_repr() -> None:
    assert GOOD not in repr(verify(GOOD, {SECRET_ID: SECRET_KEY}, now=NOW))


@pytest.mark.parametrize("make", [lambda p: p._replace(random=-1), lambda p: type(p)._make([*p[:3], -1, *p[4:]])])
def test_params_built_any_way_are_validated(make: Any) -> None:
    with pytest.raises(SignatureParamError):
        make(base())
