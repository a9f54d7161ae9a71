"""The proxy the callback's VOD client goes through: shared.env_proxy against requests (the transport of the SDK it
stands in for), and the settings made of it (shared.config)."""

from __future__ import annotations

import base64
import os
import random
import re
from collections.abc import Callable

import pytest
from requests.utils import get_environ_proxies, select_proxy

from shared.config import (
    ConfigError,
    ProxySettings,
    Secret,
    VodApiSettings,
    load_vod_api_settings,
)
from shared.env_proxy import https_proxy
from tests.conftest import callback_confirm_api

_ENDPOINTS = (
    "vod.tencentcloudapi.com",
    "vod.ap-guangzhou.tencentcloudapi.com",
    "VOD.TencentCloudAPI.com",
    "vod.tencentcloudapi.com:8443",
    "10.1.2.3",
    "10.1.2.3:443",
    "172.16.9.9",
    "[2001:db8::1]:443",
)
_NAMES = (
    "https_proxy",
    "HTTPS_PROXY",
    "Https_Proxy",
    "all_proxy",
    "ALL_PROXY",
    "http_proxy",
    "ftp_proxy",
    "https://vod.tencentcloudapi.com_proxy",  # for one host (requests' select_proxy asks for it first)
    "all://vod.tencentcloudapi.com_proxy",
)
_NO_NAMES = ("no_proxy", "NO_PROXY", "No_Proxy")
_NO_ENTRIES = (
    "vod.tencentcloudapi.com",
    ".tencentcloudapi.com",
    "tencentcloudapi.com",
    "TencentCloudAPI.com",
    "apicloud.com",
    "cloudapi.com",
    "vod.tencentcloudapi.com:8443",
    "vod.tencentcloudapi.com:443",
    "tencentcloudapi.com:8443",
    "*",
    "10.1.2.3",
    "10.0.0.0/8",
    "10.1.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "10.1/8",
    "10.0.0.0/33",
    "2001:db8::1",
    "[2001:db8::1]",
    "localhost",
    "",
)
_PROXIES = ("http://proxy.internal:3128", "http://u:p@10.0.0.1:8080", "proxy.internal:3128", "")


def _environment(rng: random.Random) -> dict[str, str]:
    environ = {name: rng.choice(_PROXIES) for name in rng.sample(_NAMES, rng.randint(0, 3))}
    for name in rng.sample(_NO_NAMES, rng.randint(0, 2)):
        entries = rng.sample(_NO_ENTRIES, rng.randint(0, 3))
        environ[name] = rng.choice((",", ", ", " ,")).join(entries)
    return environ


def test_the_proxy_is_the_one_requests_would_take_on_generated_environments(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    for name in [name for name in os.environ if name.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    chosen = set()
    for _ in range(4000):
        environ, endpoint = _environment(rng), rng.choice(_ENDPOINTS)
        with monkeypatch.context() as patch:
            for name, value in environ.items():
                patch.setenv(name, value)
            url = f"https://{endpoint}/"
            theirs = select_proxy(url, get_environ_proxies(url))
        assert https_proxy(environ, endpoint) == theirs, (environ, endpoint)
        chosen.add(theirs)
    assert None in chosen and len(chosen) > 2  # both ways were taken, and every proxy named


@pytest.mark.parametrize(
    ("endpoint", "no_proxy"),
    [
        ("10.200.0.1", "10.0.0.0/8"),  # in the network, past its first half
        ("10.1.2.3", "10.1.2.3/32"),  # one address
        ("10.1.2.4", "10.1.2.3/32"),
        ("10.1.2.3", "10.0.0.0/0"),  # no network to requests: not a CIDR, nor this host's name
        ("172.31.255.254", "172.16.0.0/12"),
        ("172.32.0.1", "172.16.0.0/12"),
    ],
)
def test_a_cidr_in_no_proxy_is_read_as_requests_reads_it(
    monkeypatch: pytest.MonkeyPatch, endpoint: str, no_proxy: str
) -> None:
    for name in [name for name in os.environ if name.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    environ = {"HTTPS_PROXY": "http://proxy.internal:3128", "NO_PROXY": no_proxy}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    url = f"https://{endpoint}/"
    assert https_proxy(environ, endpoint) == select_proxy(url, get_environ_proxies(url))


def _basic(pair: bytes) -> Secret:
    return Secret("Basic " + base64.b64encode(pair).decode())


@pytest.mark.parametrize(
    ("environ", "proxy"),
    [
        ({"HTTPS_PROXY": "http://proxy.internal:3128"}, ProxySettings("proxy.internal", 3128, None)),
        ({"https_proxy": "proxy.internal:3128"}, ProxySettings("proxy.internal", 3128, None)),  # bare: http://
        ({"https_proxy": "proxy.internal:3128/"}, ProxySettings("proxy.internal", 3128, None)),  # and a slash
        ({"ALL_PROXY": "http://Proxy.Internal"}, ProxySettings("proxy.internal", 80, None)),
        ({"HTTPS_PROXY": "http://[fd00::1]:3128"}, ProxySettings("fd00::1", 3128, None)),
        # percent-decoded, then Latin-1 (as requests sends them); a user without a password sends none
        (
            {"HTTPS_PROXY": "http://app%20user:p%40ss%3Aw%C3%B6rd@proxy.internal:3128"},
            ProxySettings("proxy.internal", 3128, _basic(b"app user:p@ss:w\xf6rd")),
        ),
        ({"HTTPS_PROXY": "http://app@proxy.internal:3128"}, ProxySettings("proxy.internal", 3128, None)),
        ({"HTTPS_PROXY": "http://app:@proxy.internal:3128"}, ProxySettings("proxy.internal", 3128, _basic(b"app:"))),
        ({"HTTP_PROXY": "http://proxy.internal:3128"}, None),  # for http:// only; VOD's API is https
        ({"HTTPS_PROXY": "http://proxy.internal:3128", "NO_PROXY": ".tencentcloudapi.com"}, None),
        ({"HTTPS_PROXY": "http://proxy.internal:3128", "no_proxy": "*"}, None),
        ({"HTTPS_PROXY": "http://proxy.internal:3128", "https_proxy": ""}, None),  # cleared, as urllib reads it
    ],
)
def test_the_proxy_is_read_as_requests_reads_it(environ: dict[str, str], proxy: ProxySettings | None) -> None:
    assert callback_confirm_api(environ).proxy == proxy


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:9000", "https://127.0.0.1:9443", "https://localhost:9443", "https://[::1]:9443"]
)
def test_a_loopback_api_is_never_reached_through_a_proxy(endpoint: str) -> None:
    # (a proxy elsewhere cannot reach this machine's loopback, and each call carries keys)
    assert callback_confirm_api({"VOD_API_ENDPOINT": endpoint, "ALL_PROXY": "http://proxy.internal:3128"}).proxy is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://proxy.internal:3128", "must be an http:// proxy .*not https://"),
        ("socks5://app:hunter2-proxy@proxy.internal:1080", "must be an http:// proxy .*not socks5://"),
        ("http://app:hunter2-proxy@proxy.internal:31x8", "must be http://"),
        ("http://app:hunter2-proxy@proxy.internal:99999", "must be http://"),
        ("http://app:hunter2-proxy@:3128", "must be http://"),
        ("http:/app:hunter2-proxy@proxy.internal:3128", "must be http://"),  # a slash missing: not a host "http"
        ("http://app:hunter2-%E6%BC%A2@proxy.internal:3128", ".*Latin-1"),
    ],
)
@pytest.mark.parametrize("name", ["HTTPS_PROXY", "all_proxy"])
def test_a_proxy_that_cannot_be_used_is_a_setting_refused(url: str, why: str, name: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}: {why}") as refused:
        callback_confirm_api({name: url})
    assert "hunter2" not in str(refused.value)  # nor its password, nor the URL that holds it


def test_a_bad_proxy_is_named_beside_the_other_bad_settings() -> None:
    with pytest.raises(ConfigError) as refused:
        callback_confirm_api({"HTTPS_PROXY": "socks5://proxy.internal:1080", "VOD_SUB_APP_ID": "abc"})
    assert {name for name, _ in refused.value.problems} == {"HTTPS_PROXY", "VOD_SUB_APP_ID"}


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("vod.tencentcloudapi.com:99999", "VOD_API_ENDPOINT: must be host"),  # the endpoint's own, and only it
        ("[2001:db8::1]:443", "HTTPS_PROXY: VOD_API_ENDPOINT is an IPv6 address"),
    ],
)
def test_an_endpoint_a_proxy_cannot_take_is_a_setting_refused(endpoint: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)) as refused:
        callback_confirm_api({"VOD_API_ENDPOINT": endpoint, "HTTPS_PROXY": "http://proxy.internal:3128"})
    assert len(refused.value.problems) == 1


_SDK_KEYS = {"VOD_SECRET_ID": "AKIDv", "VOD_SECRET_KEY": "kv"}


@pytest.mark.parametrize(
    "environ",
    [
        {"HTTPS_PROXY": "https://proxy.internal:3128"},  # requests takes an https:// proxy
        {"ALL_PROXY": "socks5h://proxy.internal:1080"},  # and a SOCKS one, where PySocks is installed
        # NO_PROXY names the host, so neither the SDK nor requests takes the proxy, unusable as it is
        {"HTTPS_PROXY": "http://app:hunter2/x@proxy.internal:3128", "NO_PROXY": "vod.tencentcloudapi.com"},
    ],
)
def test_the_sdks_settings_carry_no_proxy_it_reads_the_environment_itself(environ: dict[str, str]) -> None:
    # (events_pull, vod-configure-events)
    assert load_vod_api_settings({**_SDK_KEYS, **environ}).proxy is None


@pytest.mark.parametrize("name", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"])
@pytest.mark.parametrize("cut", ["/", "#", "?"])
def test_a_proxy_the_sdk_could_not_parse_is_refused_without_its_password(name: str, cut: str) -> None:
    # Each call would fail quoting the URL up to the cut ("'app:hunter2' is not a valid host or port")
    with pytest.raises(ConfigError) as refused:
        load_vod_api_settings({**_SDK_KEYS, name: f"http://app:hunter2{cut}tail@proxy.internal:3128"})
    [(named, why)] = refused.value.problems
    assert named == name and why.startswith("must be http://host[:port], with user:password@ before the host")
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    ("load", "password"),
    [(callback_confirm_api, "hunter2-lib"), (lambda env: load_vod_api_settings({**_SDK_KEYS, **env}), "hunter2-sdk")],
    ids=["callback", "sdk"],
)
def test_the_proxys_password_is_a_secret(load: Callable[[dict[str, str]], VodApiSettings], password: str) -> None:
    settings = load({"HTTPS_PROXY": f"http://app:{password}%21@proxy.internal:3128"})
    assert "hunter2" not in repr(settings)
    assert settings.proxy is None or settings.proxy.authorization is not None
    # masked wherever it is quoted (shared.redaction), as written and as sent
    assert {f"{password}%21", f"{password}!"} <= Secret._known
