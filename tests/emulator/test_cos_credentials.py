"""Temporary credentials: issue, lookup, scoping, expiry bookkeeping."""

from __future__ import annotations

import threading

import pytest

from tests.clocks import FrozenClock
from vodemu.credentials import CredentialRegistry, TempCredential

NOW = 1_700_000_000.5
BUCKET = "vodugc-1250000000"


def test_issue_scopes_a_credential_to_a_bucket_and_keys():
    registry = CredentialRegistry(FrozenClock(NOW))

    credential = registry.issue(BUCKET, ["a/video.mp4", "a/cover.jpg"], ttl_seconds=600)

    assert credential.bucket == BUCKET
    assert credential.allowed_keys == frozenset({"a/video.mp4", "a/cover.jpg"})
    assert credential.expired_time == 1_700_000_600
    assert credential.secret_id.startswith("AKID")
    assert credential.secret_id.isalnum() and credential.secret_key.isalnum()
    assert credential.allows("a/video.mp4") and not credential.allows("a/other.mp4")


def test_every_issue_is_a_fresh_random_credential():
    registry = CredentialRegistry(FrozenClock(NOW))
    issued = [registry.issue(BUCKET, ["k"], 60) for _ in range(50)]
    for field in ("secret_id", "secret_key", "token"):
        assert len({getattr(c, field) for c in issued}) == 50


def test_repr_hides_the_secret_key_and_token():
    credential = CredentialRegistry(FrozenClock(NOW)).issue(BUCKET, ["k"], 60)
    text = repr(credential)
    assert credential.secret_id in text
    assert credential.secret_key not in text
    assert credential.token not in text


def test_lookup_needs_the_matching_token():
    registry = CredentialRegistry(FrozenClock(NOW))
    credential = registry.issue(BUCKET, ["k"], 60)
    other = registry.issue(BUCKET, ["k"], 60)

    assert registry.lookup(credential.secret_id, credential.token) == credential
    assert registry.lookup(credential.secret_id, other.token) is None
    assert registry.lookup(credential.secret_id, "") is None
    assert registry.lookup("AKIDunknown", credential.token) is None
    assert registry.knows(credential.secret_id)
    assert not registry.knows("AKIDunknown")


@pytest.mark.parametrize(
    ("bucket", "keys", "ttl", "message"),
    [
        pytest.param(BUCKET, [], 60, "at least one allowed key", id="no-keys"),
        pytest.param(BUCKET, ["/leading-slash"], 60, "no leading '/'", id="leading-slash"),
        pytest.param(BUCKET, [""], 60, "non-empty", id="empty-key"),
        pytest.param(BUCKET, ["k"], 0, "ttl_seconds", id="zero-ttl"),
        pytest.param("", ["k"], 60, "bucket", id="no-bucket"),
    ],
)
def test_issue_refuses_bad_arguments(bucket: str, keys: list[str], ttl: int, message: str):
    with pytest.raises(ValueError, match=message):
        CredentialRegistry(FrozenClock(NOW)).issue(bucket, keys, ttl)


@pytest.mark.parametrize(("now", "expired"), [(NOW + 599, False), (1_700_000_600, True), (NOW + 601, True)])
def test_expiry_is_at_expired_time(now: float, expired: bool):
    credential = CredentialRegistry(FrozenClock(NOW)).issue(BUCKET, ["k"], 600)
    assert credential.is_expired(now) is expired


def test_long_expired_credentials_are_forgotten_but_recent_ones_kept():
    clock = FrozenClock(NOW)
    registry = CredentialRegistry(clock)
    old = registry.issue(BUCKET, ["k"], 60)
    clock.now += 60 + 24 * 3600 - 10
    recent = registry.issue(BUCKET, ["k"], 60)
    assert registry.knows(old.secret_id)

    clock.now += 20
    registry.issue(BUCKET, ["k"], 60)

    assert not registry.knows(old.secret_id)
    assert registry.knows(recent.secret_id)


def test_issue_and_lookup_from_many_threads():
    registry = CredentialRegistry(FrozenClock(NOW))
    issued: list[TempCredential] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(50):
            credential = registry.issue(BUCKET, ["k"], 60)
            assert registry.lookup(credential.secret_id, credential.token) == credential
            with lock:
                issued.append(credential)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(issued) == 400
    assert all(registry.lookup(c.secret_id, c.token) == c for c in issued)


@pytest.mark.parametrize(
    ("bucket", "keys", "revoked"),
    [
        pytest.param(BUCKET, ["a/video.mp4"], True, id="one of its keys"),
        pytest.param(BUCKET, ["a/cover.jpg", "a/video.mp4", "b/x.mp4"], True, id="its keys and more"),
        pytest.param(BUCKET, ["b/video.mp4"], False, id="other keys"),
        pytest.param("vodugc-1250000001", ["a/video.mp4"], False, id="same key, other bucket"),
    ],
)
def test_revoke_hits_the_credentials_that_may_touch_the_keys(bucket: str, keys: list[str], revoked: bool):
    registry = CredentialRegistry(FrozenClock(NOW))
    credential = registry.issue(BUCKET, ["a/video.mp4", "a/cover.jpg"], 600)
    bystander = registry.issue(BUCKET, ["c/video.mp4"], 600)

    assert registry.revoke(bucket, keys) == int(revoked)

    assert registry.is_revoked(credential.secret_id) is revoked
    assert not registry.is_revoked(bystander.secret_id)
    assert registry.knows(credential.secret_id)  # still known: "revoked" is told apart from "unknown key"


def test_revoked_credentials_are_counted_once_and_forgotten_with_expiry():
    clock = FrozenClock(NOW)
    registry = CredentialRegistry(clock)
    credential = registry.issue(BUCKET, ["k"], 60)
    assert registry.revoke(BUCKET, ["k"]) == 1
    assert registry.revoke(BUCKET, ["k"]) == 0

    clock.now += 60 + 24 * 3600 + 1
    registry.issue(BUCKET, ["other"], 60)

    assert not registry.knows(credential.secret_id)
    assert not registry.is_revoked(credential.secret_id)
