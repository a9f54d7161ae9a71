"""The upload page: one HTML page and its assets, served by functions/upload_page.

Everything the page needs ships in the function's bundle (no CDN, nothing external at run time): the page
script and style from static/, inside the page, and Tencent's browser SDK (vod-js-sdk-v6) vendored by
scripts/vendor-sdk with its npm integrity checked, served gzip-compressed under a content-hashed name with
year-long immutable caching (it is ~4 MB, ~0.5 MB gzipped, and SCF answers at most 6 MB). The page itself is
asked again on every visit (no-cache, with an ETag), so a new deployment is picked up at once; its script is in
it, not an asset of its own: during a rollout (old and new instances answering one URL), an asset named by one
release's page could reach the other's instance, which has only its own (a 404: the page would do nothing, its
link's token left in the address bar). The page and the SDK run under a strict Content-Security-Policy: the page's
own script and style by their hashes, the SDK from this origin, connections only to the signature and status URLs
and to VOD's and COS's upload hosts.

The page speaks the languages of static/messages.json (its words and its script's), one rendering each: the one
UPLOAD_PAGE_LANGUAGE names, or with "auto" the browser's (Accept-Language); a link's ?lang= chooses over both, for
an app that knows its user's language.
"""

import base64
import functools
import gzip
import hashlib
import html
import json
import re
from pathlib import Path
from urllib.parse import quote, urlsplit

from shared.config import PAGE_LANGUAGES, UploadPageSettings
from shared.errors import NotFound
from shared.http.model import Endpoint, Request, Response, matches
from shared.records import Record

# The hosts vod-js-sdk-v6 talks to (hard-coded in the SDK): VOD's upload API and its backup, and COS,
# whose scheme follows the page's (no scheme here: an https page reaches https only).
VOD_UPLOAD_HOSTS = ("https://vod2.qcloud.com", "https://vod2.dnsv1.com", "*.myqcloud.com", "*.tencentcos.cn")
SDK_FILE = "vod-js-sdk-v6.js.gz"
_JAVASCRIPT = "text/javascript; charset=utf-8"
_IMMUTABLE = "public, max-age=31536000, immutable"


class Asset(Record):
    url_name: str  # e.g. upload.3f2a9c0d1e2b.js: changes whenever the content does
    content_type: str
    gzipped: bytes


class Page(Record):
    html_gzipped: dict[str, bytes]  # by language
    etags: dict[str, str]  # by language: its rendering's digest
    assets: dict[str, Asset]  # by url_name
    csp: str
    language: str  # the setting: one of the page's languages, or "auto"


class AssetsMissing(Exception):
    """The bundle lacks a file the page needs (e.g. the SDK was not vendored: run scripts/vendor-sdk)."""


def _sdk_asset(gzipped: bytes) -> Asset:
    # The name follows the bytes as stored (the vendored SDK is gzipped deterministically, mtime 0):
    # no 4 MB decompression on a cold start just to name it.
    return Asset(f"vod-js-sdk-v6.{hashlib.sha256(gzipped).hexdigest()[:16]}.js", _JAVASCRIPT, gzipped)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise AssetsMissing(f"{path.name} is missing from {path.parent} (run scripts/vendor-sdk, then build)") from None


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme else None


def content_security_policy(settings: UploadPageSettings, *, script: str = "", style: str = "") -> str:
    """The page's policy; `script` and `style`: the code inside the page, allowed by its hash alone (no other inline
    code, no eval)."""
    api = [o for o in dict.fromkeys(_origin(u) for u in (settings.signature_url, settings.status_url) if u) if o]
    ancestors = " ".join(settings.frame_ancestors) or "'none'"
    connect = " ".join(["'self'", *api, *VOD_UPLOAD_HOSTS])
    return "; ".join(
        (
            "default-src 'none'",
            " ".join(["script-src 'self'", *_hashed(script)]),
            " ".join(["style-src", *(_hashed(style) or ["'none'"])]),
            "img-src 'self' data:",  # data: for the empty favicon; no image is made in the page
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'none'",
            f"frame-ancestors {ancestors}",
        )
    )


def _hashed(code: str) -> list[str]:
    """The CSP source that allows this inline code (CSP 3's hash-source), if any."""
    return [f"'sha256-{base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()}'"] if code else []


def _inline(path: Path, tag: str) -> str:
    # With its line breaks as the browser's parser makes them (CRLF, CR: LF) before it hashes inline code: a file
    # saved with CRLF (Git for Windows' checkout, an editor) would not match its hash, and be blocked
    code = _read(path).decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    if f"</{tag}" in code.lower():  # the page's parser would end the element there
        raise AssetsMissing(f"{path.name} holds '</{tag}': it cannot go inside the page")
    return code


def build_page(settings: UploadPageSettings, static_dir: Path, vendor_dir: Path) -> Page:
    """Read the files once (per container) and render the page, with its script and style, in each of its
    languages."""
    script, style = _inline(static_dir / "upload.js", "script"), _inline(static_dir / "upload.css", "style")
    sdk = _sdk_asset(_read(vendor_dir / SDK_FILE))
    config = {
        "signatureUrl": settings.signature_url,
        "statusUrl": settings.status_url,
        "tokenOrigins": list(settings.frame_ancestors),
        "userClaim": settings.user_claim,
    }
    template = _read(static_dir / "page.html").decode("utf-8")
    languages = json.loads(_read(static_dir / "messages.json"))
    pages, etags = {}, {}
    for language in PAGE_LANGUAGES:
        messages = languages[language]
        page = _WORDS.sub(lambda m: html.escape(messages[m.group(1)]), template)  # noqa: B023 (used at once)
        for key, value in {
            "LANG": language,
            "SDK_URL": f"assets/{sdk.url_name}",
            "CONFIG": html.escape(json.dumps({**config, "messages": messages}, separators=(",", ":")), quote=True),
        }.items():
            page = page.replace("{{" + key + "}}", value)
        rendered = page.replace("{{STYLE}}", style).replace("{{SCRIPT}}", script).encode("utf-8")  # as they are
        # Level 6, not 9: each rendering holds the script (~55 KB in all), and 9 would double its cold start's cost
        # (~3 ms a language) for 0.3 % less
        pages[language] = gzip.compress(rendered, compresslevel=6, mtime=0)
        etags[language] = f"page.{hashlib.sha256(rendered).hexdigest()[:16]}.{language}"
    return Page(
        html_gzipped=pages,
        etags=etags,
        assets={sdk.url_name: sdk},
        csp=content_security_policy(settings, script=script, style=style),
        language=settings.language,
    )


_WORDS = re.compile(r"\{\{t:([\w.]+)\}\}")  # {{t:key}} in page.html: messages.json's words for that key


def _language(page: Page, request: Request) -> str:
    """The link's ?lang=, else the setting, else (auto) the first of the browser's languages (Accept-Language, by
    weight) the page speaks, else English."""
    asked = _ours(request.query.get("lang", "").lower())
    if asked:
        return asked
    if page.language != "auto":
        return page.language
    ranked = sorted(_ranges(request.headers.get("accept-language", "")), key=lambda item: -item[1])  # stable
    traditional = False
    for tag, weight in ranked:
        found = _ours(tag, after_traditional=traditional) if weight > 0 else None
        if found:
            return found
        traditional = traditional or (weight > 0 and _traditional(tag))
    return "en"


_TRADITIONAL_REGIONS = frozenset({"tw", "hk", "mo"})


def _traditional(tag: str) -> bool:
    """Chinese in Traditional script: said (Hant), or as its regions write it unless the tag says Simplified."""
    parts = tag.replace("_", "-").split("-")
    script = "hant" in parts or (bool(_TRADITIONAL_REGIONS & set(parts)) and "hans" not in parts)
    return parts[0] == "zh" and script


def _ours(tag: str, *, after_traditional: bool = False) -> str | None:
    """The page's language for a (lowercased) language tag: zh is Simplified Chinese unless it is Traditional, which
    the page does not have; so is a bare zh after a Traditional tag (Chrome adds it after a user's zh-TW)."""
    parts = tag.replace("_", "-").split("-")  # zh_CN: as some WebViews and clients write it
    if parts[0] == "en" or parts == ["*"]:
        return "en"
    if parts[0] == "zh" and not _traditional(tag) and not (parts == ["zh"] and after_traditional):
        return "zh-CN"
    return None


# An RFC 9110 qvalue (12.4.2): 0 to 1, at most three decimals
_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")


def _ranges(header: str) -> list[tuple[str, float]]:
    """An Accept-* header's items and their weights, lowercased, in the header's order; a weight that is not a
    qvalue counts as a refusal."""
    ranges = []
    for item in header.lower().split(","):
        name, *params = (part.strip() for part in item.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                weight = float(value) if _QVALUE.fullmatch(value := value.strip()) else 0.0
        if name:
            ranges.append((name, weight))
    return ranges


def _accepts_gzip(request: Request) -> bool:
    """Whether Accept-Encoding takes gzip (RFC 9110 12.5.3): named, or by `*`, with a weight above 0 (the plain
    bytes are always safe)."""
    weights = dict(_ranges(request.headers.get("accept-encoding", "")))
    return next((weights[c] for c in ("gzip", "x-gzip", "*") if c in weights), 0.0) > 0


# The plain bytes of the page and its assets, made at the first request that needs them and kept (~5 MB, most of
# it the SDK): decompressing the SDK costs ~10 ms of CPU, on every request of a client that takes no gzip.
_plain = functools.lru_cache(maxsize=16)(gzip.decompress)


def _send(request: Request, gzipped: bytes, headers: dict[str, str], *, etag: str) -> Response:
    """The gzip or the plain bytes, as the client takes; a 304 when it has them (one ETag per encoding: they are
    different representations)."""
    gzip_taken = _accepts_gzip(request)
    tag = f'"{etag}.gz"' if gzip_taken else f'"{etag}"'
    headers = {"Vary": "Accept-Encoding", "X-Content-Type-Options": "nosniff", **headers, "ETag": tag}
    if matches(request.headers.get("if-none-match"), tag):
        return Response(304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
    if gzip_taken:
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
            headers = {"Content-Type": asset.content_type, "Cache-Control": _IMMUTABLE}
            return _send(request, asset.gzipped, headers, etag=name)
        if name in _ASKED_AT_THE_ROOT and not head:  # not the page: not worth its 308 and HTML
            raise NotFound(f"no {name} here")
        if name:  # the page's relative asset URLs need the trailing slash
            # Relative to the request, and percent-encoded: a path like //evil.example must not redirect away.
            lang = _ours(request.query.get("lang", "").lower())
            chosen = f"?lang={lang}" if lang else ""  # the link's choice goes along
            return Response(308, headers={"Location": f"{quote(name, safe='', errors='replace')}/{chosen}"})
        language = _language(page, request)
        headers = {
            "Content-Language": language,
            # Which rendering depends on Accept-Language only when the page follows the browser's
            **({"Vary": "Accept-Encoding, Accept-Language"} if page.language == "auto" else {}),
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-cache",
            "Content-Security-Policy": page.csp,
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Opener-Policy": "same-origin",
        }
        return _send(request, page.html_gzipped[language], headers, etag=page.etags[language])

    return endpoint
