"""The emulator benchmark (scripts/benchmarks/emulator.py) keeps its loopback traffic off any proxy."""

from __future__ import annotations

import os

import pytest
import requests
from benchmarks import emulator as bench


def test_the_benchmark_strips_proxies_for_its_run_and_restores_them(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("https_proxy", "http://proxy.invalid:3128")
    monkeypatch.setenv("ALL_PROXY", "socks5://proxy.invalid:1080")
    monkeypatch.setenv("NO_PROXY", "example.com")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    assert requests.utils.get_environ_proxies("http://127.0.0.1:9000/") != {}  # what the SDK would use

    with bench._without_proxies():
        assert requests.utils.get_environ_proxies("http://127.0.0.1:9000/") == {}
        assert requests.utils.get_environ_proxies("http://localhost:9000/") == {}
        assert not {"HTTP_PROXY", "https_proxy", "ALL_PROXY"} & set(os.environ)

    assert os.environ["HTTP_PROXY"] == "http://proxy.invalid:3128"
    assert os.environ["https_proxy"] == "http://proxy.invalid:3128"
    assert os.environ["ALL_PROXY"] == "socks5://proxy.invalid:1080"
    assert os.environ["NO_PROXY"] == "example.com"
    assert "no_proxy" not in os.environ
    assert "http_proxy" not in os.environ
