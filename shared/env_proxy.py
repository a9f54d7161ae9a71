"""Which proxy the environment names for an https host: HTTPS_PROXY (or ALL_PROXY) unless NO_PROXY names the host,
read as `requests` reads them, the common reading (curl's is close). tests/unit/test_env_proxy.py checks this
against requests' own get_environ_proxies + select_proxy on generated environments.

The Tencent SDK, which the callback's VOD client stands in for, reads HTTPS_PROXY itself before requests does, and
keeps it unless NO_PROXY holds the host's name written out (README, settings): `.tencentcloudapi.com` or `*` in
NO_PROXY, or an empty https_proxy beside HTTPS_PROXY, send the SDK through the proxy and this reading direct.
"""

from __future__ import annotations

import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


def _proxies_named(environ: Mapping[str, str]) -> dict[str, str]:
    """Scheme ("https", "all", "no", ...) -> value, as urllib.request.getproxies_environment() reads os.environ
    (which requests asks): NAME_proxy in any case, a lower-case one winning, and clearing it when set but empty."""
    proxies: dict[str, str] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            proxies[name.lower()[:-6]] = value
    for name, value in environ.items():
        if name.endswith("_proxy"):
            if value:
                proxies[name.lower()[:-6]] = value
            else:
                proxies.pop(name.lower()[:-6], None)
    return proxies


def https_proxy(environ: Mapping[str, str], endpoint: str) -> str | None:
    """The proxy URL for https://`endpoint` (host[:port]), or None: direct."""
    if not any(name.lower().endswith("_proxy") for name in environ):  # the common case: nothing more to read
        return None
    proxies = _proxies_named(environ)
    if set(proxies) <= {"no"}:
        return None
    from urllib.parse import urlsplit  # here: only with a proxy set

    url = urlsplit(f"https://{endpoint}")
    hostname = url.hostname or ""
    # requests' select_proxy: a variable for this host before one for every host
    chosen = next(
        (proxies[k] for k in (f"https://{hostname}", "https", f"all://{hostname}", "all") if k in proxies), None
    )
    return None if chosen is None or _bypassed(environ, proxies, hostname, url.port) else chosen


def _bypassed(environ: Mapping[str, str], proxies: dict[str, str], hostname: str, port: int | None) -> bool:
    # requests' should_bypass_proxies: its own reading of no_proxy (or NO_PROXY), with CIDRs for an IPv4 host,
    # then urllib's proxy_bypass_environment with the no_proxy of any case ("*" for every host).
    entries = [e for e in (environ.get("no_proxy") or environ.get("NO_PROXY") or "").replace(" ", "").split(",") if e]
    ipv4 = _ipv4(hostname)
    if ipv4 is not None:
        if any(_in_network(ipv4, e) if _is_cidr(e) else hostname == e for e in entries):
            return True
    else:
        with_port = f"{hostname}:{port}" if port else hostname
        for entry in (e.lstrip(".") for e in entries):
            if entry in (hostname, with_port) or hostname.endswith("." + entry) or with_port.endswith("." + entry):
                return True
    if "no" not in proxies:
        return False
    from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]  # (not in typeshed)

    return bool(proxy_bypass_environment(hostname, proxies))


def _ipv4(text: str) -> int | None:
    """The address, as requests tells an IPv4 host (inet_aton: also "10.1", "0x7f.1")."""
    try:
        return int.from_bytes(socket.inet_aton(text), "big")
    except (OSError, ValueError):
        return None


def _is_cidr(entry: str) -> bool:
    address, slash, bits = entry.partition("/")
    if not slash or "/" in bits:
        return False
    try:
        mask = int(bits)
    except ValueError:
        return False
    return 1 <= mask <= 32 and _ipv4(address) is not None


def _in_network(address: int, cidr: str) -> bool:
    network, _, bits = cidr.partition("/")
    mask = (0xFFFFFFFF << (32 - int(bits))) & 0xFFFFFFFF
    return address & mask == (_ipv4(network) or 0) & mask
