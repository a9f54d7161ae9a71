"""The benchmarks (scripts/benchmarks/) keep their loopback traffic off any proxy, and restore the environment."""

from __future__ import annotations

import os

import pytest
import requests

from vodbench.common import environment


def test_the_benchmarks_strip_proxies_for_their_run_and_restore_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("https_proxy", "http://proxy.invalid:3128")
    monkeypatch.setenv("ALL_PROXY", "socks5://proxy.invalid:1080")
    monkeypatch.setenv("NO_PROXY", "example.com")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    assert requests.utils.get_environ_proxies("http://127.0.0.1:9000/") != {}  # what the SDK would use

    with environment({"VOD_SUB_APP_ID": "1"}):
        assert os.environ["VOD_SUB_APP_ID"] == "1"
        assert requests.utils.get_environ_proxies("http://127.0.0.1:9000/") == {}
        assert requests.utils.get_environ_proxies("http://localhost:9000/") == {}
        assert not {"HTTP_PROXY", "https_proxy", "ALL_PROXY"} & set(os.environ)

    assert os.environ["HTTP_PROXY"] == "http://proxy.invalid:3128"
    assert os.environ["https_proxy"] == "http://proxy.invalid:3128"
    assert os.environ["ALL_PROXY"] == "socks5://proxy.invalid:1080"
    assert os.environ["NO_PROXY"] == "example.com"
    assert "no_proxy" not in os.environ
    assert "http_proxy" not in os.environ
    assert "VOD_SUB_APP_ID" not in os.environ
