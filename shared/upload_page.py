"""The upload page: one HTML page and its assets, served by functions/upload_page.

Everything the page needs ships in the function's bundle (no CDN, nothing external at run time): the page
script and style from static/, and Tencent's browser SDK (vod-js-sdk-v6) vendored by scripts/vendor-sdk with
its npm integrity checked. Assets are served gzip-compressed under content-hashed names with year-long
immutable caching (the SDK is ~4 MB, ~0.5 MB gzipped, and SCF answers at most 6 MB); the page itself is
asked again on every visit (no-cache), so a new deployment is picked up at once. The page and the SDK run
under a strict Content-Security-Policy: scripts and styles from this origin only, connections only to the
signature and status URLs and to VOD's and COS's upload hosts.
"""

import functools
import gzip
import hashlib
import html
import json
from pathlib import Path
from urllib.parse import quote, urlsplit

from shared.config import UploadPageSettings
from shared.errors import NotFound
from shared.http.model import Endpoint, Request, Response, matches
from shared.records import Record

# The hosts vod-js-sdk-v6 talks to (hard-coded in the SDK): VOD's upload API and its backup, and COS,
# whose scheme follows the page's (no scheme here: an https page reaches https only).
VOD_UPLOAD_HOSTS = ("https://vod2.qcloud.com", "https://vod2.dnsv1.com", "*.myqcloud.com", "*.tencentcos.cn")
SDK_FILE = "vod-js-sdk-v6.js.gz"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_IMMUTABLE = "public, max-age=31536000, immutable"


class Asset(Record):
    url_name: str  # e.g. upload.3f2a9c0d1e2b.js: changes whenever the content does
    content_type: str
    gzipped: bytes


class Page(Record):
    html_gzipped: bytes
    assets: dict[str, Asset]  # by url_name
    csp: str


class AssetsMissing(Exception):
    """The bundle lacks a file the page needs (e.g. the SDK was not vendored: run scripts/vendor-sdk)."""


def _asset(name: str, content: bytes, *, already_gzipped: bool = False) -> Asset:
    stem, suffix = name.split(".", 1)[0], Path(name.removesuffix(".gz")).suffix
    # The name follows the bytes as stored (the vendored SDK is gzipped deterministically, mtime 0):
    # no 4 MB decompression on a cold start just to name it.
    digest = hashlib.sha256(content).hexdigest()[:16]
    packed = content if already_gzipped else gzip.compress(content, compresslevel=9, mtime=0)
    return Asset(f"{stem}.{digest}{suffix}", _TYPES[suffix], packed)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise AssetsMissing(f"{path.name} is missing from {path.parent} (run scripts/vendor-sdk, then build)") from None


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme else None


def content_security_policy(settings: UploadPageSettings) -> str:
    api = [o for o in dict.fromkeys(_origin(u) for u in (settings.signature_url, settings.status_url) if u) if o]
    ancestors = " ".join(settings.frame_ancestors) or "'none'"
    connect = " ".join(["'self'", *api, *VOD_UPLOAD_HOSTS])
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",  # data: for the empty favicon; no image is made in the page
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'none'",
            f"frame-ancestors {ancestors}",
        )
    )


def build_page(settings: UploadPageSettings, static_dir: Path, vendor_dir: Path) -> Page:
    """Read the assets once (per container) and render the page that names them."""
    assets = [
        _asset("upload.js", _read(static_dir / "upload.js")),
        _asset("upload.css", _read(static_dir / "upload.css")),
        _asset(SDK_FILE, _read(vendor_dir / SDK_FILE), already_gzipped=True),
    ]
    script, style, sdk = (a.url_name for a in assets)
    config = {
        "signatureUrl": settings.signature_url,
        "statusUrl": settings.status_url,
        "tokenOrigins": list(settings.frame_ancestors),
        "userClaim": settings.user_claim,
    }
    page = _read(static_dir / "page.html").decode("utf-8")
    for key, value in {
        "SDK_URL": f"assets/{sdk}",
        "SCRIPT_URL": f"assets/{script}",
        "STYLE_URL": f"assets/{style}",
        "CONFIG": html.escape(json.dumps(config, separators=(",", ":")), quote=True),
    }.items():
        page = page.replace("{{" + key + "}}", value)
    return Page(
        html_gzipped=gzip.compress(page.encode("utf-8"), compresslevel=9, mtime=0),
        assets={a.url_name: a for a in assets},
        csp=content_security_policy(settings),
    )


def _accepts_gzip(request: Request) -> bool:
    """Whether Accept-Encoding takes gzip (RFC 9110 12.5.3): named, or by `*`, with a weight above 0; an
    unreadable weight counts as a refusal (the plain bytes are always safe)."""
    weights: dict[str, float] = {}
    for item in request.headers.get("accept-encoding", "").lower().split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value) if value.strip()[:1].isdigit() else 0.0
                except ValueError:
                    weight = 0.0
        if coding:
            weights[coding] = weight
    chosen = next((weights[c] for c in ("gzip", "x-gzip", "*") if c in weights), 0.0)
    return chosen > 0


# The plain bytes of the page and its assets, made at the first request that needs them and kept (~5 MB, most of
# it the SDK): decompressing the SDK costs ~10 ms of CPU, on every request of a client that takes no gzip.
_plain = functools.lru_cache(maxsize=16)(gzip.decompress)


def _send(request: Request, gzipped: bytes, headers: dict[str, str]) -> Response:
    headers = {"Vary": "Accept-Encoding", "X-Content-Type-Options": "nosniff", **headers}
    if _accepts_gzip(request):
        return Response(200, headers={**headers, "Content-Encoding": "gzip"}, content=gzipped)
    return Response(200, headers=headers, content=_plain(gzipped))


# What crawlers, and browsers on any other URL than the page (it names its own icon), fetch from a site's root by
# themselves: at a function URL's root, the page's base
_ASKED_AT_THE_ROOT = frozenset({"favicon.ico", "robots.txt"})


def make_page_endpoint(page: Page) -> Endpoint:
    """GET <base>/ is the page, GET <base>/assets/<name> an asset; <base> is wherever the gateway mounts it."""

    def endpoint(request: Request) -> Response:
        head, _, name = request.path.rpartition("/")
        if head.endswith("/assets"):
            asset = page.assets.get(name)
            if asset is None:
                raise NotFound(f"no asset {name[:80]!r} (asset names change with every release)")
            # One ETag per encoding (the gzip and the plain bytes are different representations).
            etag = f'"{name}.gz"' if _accepts_gzip(request) else f'"{name}"'
            if matches(request.headers.get("if-none-match"), etag):
                return Response(304, headers={"ETag": etag, "Cache-Control": _IMMUTABLE, "Vary": "Accept-Encoding"})
            headers = {"Content-Type": asset.content_type, "Cache-Control": _IMMUTABLE, "ETag": etag}
            return _send(request, asset.gzipped, headers)
        if name in _ASKED_AT_THE_ROOT and not head:  # not the page: not worth its 308 and HTML
            raise NotFound(f"no {name} here")
        if name:  # the page's relative asset URLs need the trailing slash
            # Relative to the request, and percent-encoded: a path like //evil.example must not redirect away.
            return Response(308, headers={"Location": f"{quote(name, safe='', errors='replace')}/"})
        headers = {
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-cache",
            "Content-Security-Policy": page.csp,
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Opener-Policy": "same-origin",
        }
        return _send(request, page.html_gzipped, headers)

    return endpoint
