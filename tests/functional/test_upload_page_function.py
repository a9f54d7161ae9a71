"""The upload page function without a browser: what it serves, how it may be cached, and the policy it sets."""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import pytest

from shared import upload_page
from shared.config import PAGE_LANGUAGES, load_upload_page_settings
from shared.store.projection import Status, TaskOutcome
from shared.upload_page import content_security_policy
from vodtesting import http_event

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "functions" / "upload_page" / "vendor" / "vod-js-sdk-v6.js.gz"
STATIC = ROOT / "functions" / "upload_page" / "static"
MESSAGES = json.loads((STATIC / "messages.json").read_text())
ENV = {
    "UPLOAD_PAGE_SIGNATURE_URL": "https://api.example.com/signature",
    "UPLOAD_PAGE_STATUS_URL": "https://api.example.com/uploads",
    "UPLOAD_PAGE_FRAME_ANCESTORS": "https://app.example.com",
    "AUTH_JWT_USER_CLAIM": "oid",  # the sign and uploads functions' too: the page tells users apart as they do
}
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@pytest.fixture
def page_function(vod_function: Callable[..., Handler]) -> Handler:
    return vod_function("upload_page", env=ENV)


def _get(handler: Handler, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    result = handler(http_event(method="GET", path=path, headers=headers, shape="function_url"), None)
    body = base64.b64decode(result["body"]) if result["isBase64Encoded"] else result["body"].encode()
    return result["statusCode"], result["headers"], body


def _config(page: str) -> dict[str, Any]:
    return json.loads(html.unescape(re.search(r'data-config="([^"]+)"', page).group(1)))  # type: ignore[no-any-return,union-attr]


def _page(handler: Handler) -> str:
    status, headers, body = _get(handler, "/", **{"Accept-Encoding": "gzip, br"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    return gzip.decompress(body).decode()


def _sdk_name(handler: Handler) -> str:
    return str(re.findall(r'src="assets/(vod-js-sdk-v6\.[^"]+)"', _page(handler))[0])


def _inline(page: str, tag: str) -> str:
    """The code of the page's one <tag> element."""
    [code] = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.DOTALL)
    return str(code)


def test_the_page_holds_its_code_names_the_sdk_by_content_and_carries_its_settings(page_function: Handler) -> None:
    page = _page(page_function)
    names = re.findall(r'(?:src|href)="assets/([^"]+)"', page)
    assert len(names) == 1  # the SDK: the page's own script and style are in it (one release's, whichever answers)
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", page)
    assert (
        _inline(page, "script") == (STATIC / "upload.js").read_text()
        and _inline(page, "style") == (STATIC / "upload.css").read_text()
    )
    config = _config(page)
    assert config.pop("messages") == MESSAGES["en"]  # the words of its script, in the page's language
    assert config == {
        "signatureUrl": ENV["UPLOAD_PAGE_SIGNATURE_URL"],
        "statusUrl": ENV["UPLOAD_PAGE_STATUS_URL"],
        "tokenOrigins": ["https://app.example.com"],
        "userClaim": "oid",
    }
    sdk = next(n for n in names if n.startswith("vod-js-sdk-v6."))
    status, headers, body = _get(page_function, f"/assets/{sdk}", **{"Accept-Encoding": "gzip"})
    assert status == 200 and body == SDK.read_bytes()  # the vendored, integrity-checked release, as is
    assert sdk.split(".")[1] == hashlib.sha256(body).hexdigest()[:16]  # a new release, a new name
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert headers["Content-Type"].startswith("text/javascript")
    # Under SCF's 6 MB answer limit, base64 included.
    assert len(base64.b64encode(body)) < 6 * 1024 * 1024


def test_code_saved_with_crlf_is_inlined_as_the_browser_hashes_it(tmp_path: Path) -> None:
    # (Git for Windows' checkout, an editor: the HTML parser makes each CRLF and CR a LF before it hashes inline code)
    static = tmp_path / "static"
    shutil.copytree(STATIC, static)
    for name in ("upload.js", "upload.css"):
        (static / name).write_bytes((STATIC / name).read_bytes().replace(b"\n", b"\r\n"))
    page = upload_page.build_page(load_upload_page_settings(ENV), static, SDK.parent)
    html_text = gzip.decompress(page.html_gzipped["en"]).decode()
    for tag, name in (("script", "upload.js"), ("style", "upload.css")):
        code = _inline(html_text, tag)
        assert code == (STATIC / name).read_text()  # as the parser reads it: LF only
        assert f"'sha256-{base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()}'" in page.csp


def test_the_page_has_a_strict_content_security_policy(page_function: Handler) -> None:
    _, headers, _ = _get(page_function, "/")
    policy = dict(part.split(" ", 1) for part in headers["Content-Security-Policy"].split("; "))
    assert policy["default-src"] == "'none'"
    # The page's own script and style by their hashes: no other inline code, no eval
    page = _page(page_function)
    hashed = {
        tag: base64.b64encode(hashlib.sha256(_inline(page, tag).encode()).digest()).decode()
        for tag in ("script", "style")
    }
    assert policy["script-src"] == f"'self' 'sha256-{hashed['script']}'"
    assert policy["style-src"] == f"'sha256-{hashed['style']}'"
    assert policy["connect-src"].split() == [
        "'self'",
        "https://api.example.com",
        "https://vod2.qcloud.com",
        "https://vod2.dnsv1.com",
        "*.myqcloud.com",
        "*.tencentcos.cn",
    ]
    assert policy["frame-ancestors"] == "https://app.example.com"
    assert (policy["base-uri"], policy["form-action"]) == ("'none'", "'none'")
    assert policy["img-src"] == "'self' data:"  # the empty favicon
    assert headers["Cache-Control"] == "no-cache" and headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"  # no window that opened it keeps a handle on it


@pytest.mark.parametrize(
    ("env", "ancestors", "api"),
    [
        ({}, "'none'", []),  # by default no site may frame it (clickjacking a signed-in user)
        (
            {
                "UPLOAD_PAGE_SIGNATURE_URL": "https://sign.example.com/signature",
                "UPLOAD_PAGE_STATUS_URL": "https://status.example.com:8443/uploads",
            },
            "'none'",
            ["https://sign.example.com", "https://status.example.com:8443"],  # each API's host, its own
        ),
        (
            {"UPLOAD_PAGE_FRAME_ANCESTORS": "https://a.example,https://b.example"},
            "https://a.example https://b.example",
            [],
        ),
    ],
)
def test_the_policy_names_who_may_frame_it_and_every_api_it_calls(
    env: dict[str, str], ancestors: str, api: list[str]
) -> None:
    policy = dict(part.split(" ", 1) for part in content_security_policy(load_upload_page_settings(env)).split("; "))
    assert policy["frame-ancestors"] == ancestors
    assert policy["connect-src"].split()[: 1 + len(api)] == ["'self'", *api]


@pytest.mark.parametrize(
    ("path", "headers", "status", "check"),
    [
        ("/assets/upload.0000000000000000.js", {}, 404, "not_found"),  # an old release's name
        ("/gw/upload", {}, 308, "upload/"),  # relative asset URLs need the slash
        ("/favicon.ico", {}, 404, "not_found"),  # a browser's own fetch, at a function URL's root
        ("/robots.txt", {}, 404, "not_found"),
        ("/gw/favicon.ico", {}, 308, "favicon.ico/"),  # below the root: the page's base, whatever its name
        ("//evil.example", {}, 308, "evil.example/"),  # stays on this host: no open redirect
        ("/gw/assets/x/upload", {}, 308, "upload/"),  # a base below a folder named assets: still the page
        ("/javascript:alert(1)", {}, 308, "javascript%3Aalert%281%29/"),
        ("/x\udc80", {}, 308, "x%3F/"),  # a lone surrogate: still an answer, not a crash
        ("/", {}, 200, "<!doctype html>"),  # a client that takes no gzip gets plain bytes
    ],
)
def test_other_requests(page_function: Handler, path: str, headers: dict[str, str], status: int, check: str) -> None:
    got, answer_headers, body = _get(page_function, path, **headers)
    assert got == status
    assert answer_headers.get("Location", check) == check and check in (answer_headers.get("Location") or body.decode())


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [
        ("gzip", True),
        ("GZIP;Q=0.5, identity", True),
        ("x-gzip", True),
        ("*", True),
        ("br, *;q=0.1", True),
        ("", False),
        ("identity", False),
        ("gzip;q=0, identity", False),  # RFC 9110: a weight of 0 refuses the coding
        ("gzip;q=0.000", False),
        ("*;q=1, gzip;q=0", False),  # the coding named outranks *
        ("gzip;q=oops", False),  # an unreadable weight: the plain bytes are always safe
        ("gzip;q=nan", False),
        ("gzip;q=+1", False),  # not a qvalue (RFC 9110 12.4.2), though float() reads it
        ("gzip;q=1.0000", False),  # nor more than three decimals
        ("gzip;q=1e0", False),
        ("gzip ; q = 0.5", True),  # spaces around the parts: still read
        ("gzipped", False),
    ],
)
def test_gzip_is_sent_only_to_a_client_that_takes_it(page_function: Handler, accept: str, gzipped: bool) -> None:
    for path in ("/", f"/assets/{_sdk_name(page_function)}"):
        status, headers, body = _get(page_function, path, **{"Accept-Encoding": accept})
        assert (status, headers.get("Content-Encoding")) == (200, "gzip" if gzipped else None)
        assert (body[:2] == b"\x1f\x8b") == gzipped


@pytest.mark.parametrize(
    ("written", "status"),
    [
        ("{tag}", 304),
        ("W/{tag}", 304),  # a proxy that compresses answers may weaken the tag it passed on
        ('"other", {tag} , W/"more"', 304),
        ("*", 304),
        ('"other"', 200),
    ],
)
@pytest.mark.parametrize("what", ["page", "asset"])
def test_what_is_asked_again_is_not_modified(page_function: Handler, written: str, status: int, what: str) -> None:
    name = _sdk_name(page_function)
    path = "/" if what == "page" else f"/assets/{name}"
    for encoding in ("gzip", "identity"):
        tag = _get(page_function, path, **{"Accept-Encoding": encoding})[1]["ETag"]
        if what == "asset":  # its name's: a new release's SDK is another
            assert tag == (f'"{name}.gz"' if encoding == "gzip" else f'"{name}"')
        asked = {"If-None-Match": written.format(tag=tag), "Accept-Encoding": encoding}
        answered, headers, body = _get(page_function, path, **asked)
        assert (answered, headers["ETag"], body == b"") == (status, tag, status == 304)
        # a 304 too (RFC 9110 15.4.5): a cache keeps the two apart
        assert headers["Vary"].startswith("Accept-Encoding")
    assert _get(page_function, path, **{"Accept-Encoding": "gzip"})[1]["ETag"] != tag  # the two encodings: two tags


@pytest.mark.parametrize("method", ["POST", "OPTIONS"])
def test_only_reads_are_answered(page_function: Handler, method: str) -> None:
    # No preflight: the page's own script asks it, from its origin; its other calls go to the API's origin.
    result = page_function(http_event(method=method, path="/", headers={"Origin": "https://app.example.com"}), None)
    assert (result["statusCode"], result["headers"]["Allow"]) == (405, "GET, HEAD")
    assert "CORS_ALLOW_ORIGINS" not in result["body"]


@pytest.mark.parametrize("path", ["/", "/gw/upload", "/assets/{asset}", "/assets/upload.0000000000000000.js"])
def test_a_head_is_answered_as_a_get(page_function: Handler, path: str) -> None:
    # Uptime monitors and link checkers ask with HEAD (RFC 9110: a server that has GET has HEAD). The whole
    # answer goes back: the HTTP server in front drops the body and so announces GET's Content-Length.
    path = path.format(asset=_sdk_name(page_function))
    headers = {"Accept-Encoding": "gzip"}
    get = page_function(http_event(method="GET", path=path, headers=headers, shape="function_url"), None)
    head = page_function(http_event(method="HEAD", path=path, headers=headers, shape="function_url"), None)
    drop = ("X-Request-Id",)  # each answer has its own
    assert get["statusCode"] == (404 if "0000" in path else 308 if path == "/gw/upload" else 200)
    assert {k: v for k, v in head.items() if k != "headers"} == {k: v for k, v in get.items() if k != "headers"}
    assert {k: v for k, v in head["headers"].items() if k not in drop} == {
        k: v for k, v in get["headers"].items() if k not in drop
    }


def test_frame_ancestors_are_written_as_browsers_write_origins() -> None:
    settings = load_upload_page_settings(
        {"UPLOAD_PAGE_FRAME_ANCESTORS": "https://App.Example.com:443,http://a.test:80"}
    )
    assert settings.frame_ancestors == ("https://app.example.com", "http://a.test")


def test_defaults_are_the_same_gateway() -> None:
    settings = load_upload_page_settings({})
    assert (settings.signature_url, settings.status_url, settings.frame_ancestors) == ("/signature", "/uploads", ())
    assert load_upload_page_settings({"UPLOAD_PAGE_STATUS_URL": "none"}).status_url == ""
    assert settings.language == "auto"  # the browser's
    assert load_upload_page_settings({"UPLOAD_PAGE_LANGUAGE": "ZH-cn"}).language == "zh-CN"


@pytest.mark.parametrize("url", ["https://1250000000-abc.gz.tencentscf.com", "https://api.example.com:8443/v1/sign"])
def test_a_function_url_is_accepted_with_or_without_a_path(url: str) -> None:
    settings = load_upload_page_settings({"UPLOAD_PAGE_SIGNATURE_URL": url, "UPLOAD_PAGE_STATUS_URL": url})
    assert (settings.signature_url, settings.status_url) == (url, url)
    origin = "/".join(url.split("/")[:3])
    assert f" {origin} " in content_security_policy(settings).split("connect-src", 1)[1]


def test_the_sdk_for_a_client_without_gzip_is_decompressed_once_per_container(page_function: Handler) -> None:
    # ~10 ms of CPU for the 4 MB SDK: anyone may ask for it again and again without Accept-Encoding
    sdk = _sdk_name(page_function)
    assert _get(page_function, f"/assets/{sdk}")[2] == gzip.decompress(SDK.read_bytes())
    before = upload_page._plain.cache_info()
    for _ in range(3):
        assert _get(page_function, f"/assets/{sdk}")[2] == gzip.decompress(SDK.read_bytes())
    after = upload_page._plain.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (3, 0)


# --- its languages ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "accept_language", "lang", "language"),
    [
        (None, None, None, "en"),
        (None, "zh-CN,zh;q=0.9,en;q=0.8", None, "zh-CN"),  # Chrome's, set to Chinese
        (None, "en-US,en;q=0.9,zh-CN;q=0.8", None, "en"),
        (None, "ZH-cn", None, "zh-CN"),  # tags are case-insensitive
        (None, "zh-Hans-SG", None, "zh-CN"),
        (None, "zh-TW,zh;q=0.9,en-US;q=0.8,en;q=0.7", None, "en"),  # Traditional Chinese (Chrome adds the bare
        (None, "zh-HK,zh;q=0.9", None, "en"),  # zh): the page has none, English rather
        (None, "zh-Hant-HK", None, "en"),
        (None, "zh-Hans-HK", None, "zh-CN"),  # the script said: Simplified, wherever its reader lives
        (None, "zh-TW, zh-CN;q=0.8", None, "zh-CN"),  # Simplified named, after Traditional
        (None, "zh_CN", None, "zh-CN"),  # as some WebViews write it
        (None, "en;q=5, zh", None, "zh-CN"),  # not a qvalue (RFC 9110 12.4.2): a refusal
        (None, "fr-FR, zh;q=0.7, en;q=0.3", None, "zh-CN"),  # the first the page speaks, by weight
        (None, "en;q=0.2, zh;q=0.9", None, "zh-CN"),  # weight before order
        (None, "zh;q=0, en;q=0.1", None, "en"),  # a weight of 0 refuses the language
        (None, "zh;q=oops, en", None, "en"),  # an unreadable weight too
        (None, "fr, de", None, "en"),
        (None, "*", None, "en"),
        ("zh-CN", "en-US", None, "zh-CN"),  # the setting: whatever the browser says
        ("en", "zh-CN", None, "en"),
        (None, "en-US", "zh-CN", "zh-CN"),  # the link's choice: the app knows its user's language
        ("en", None, "zh-cn", "zh-CN"),
        (None, "zh-CN", "xx", "zh-CN"),  # one the page does not speak: as if none were named
    ],
)
def test_the_page_speaks_the_language_chosen_for_it(
    vod_function: Callable[..., Handler],
    setting: str | None,
    accept_language: str | None,
    lang: str | None,
    language: str,
) -> None:
    handler = vod_function("upload_page", env={**ENV, **({"UPLOAD_PAGE_LANGUAGE": setting} if setting else {})})
    headers = {"Accept-Encoding": "gzip", **({"Accept-Language": accept_language} if accept_language else {})}
    event = http_event(
        method="GET", path="/", headers=headers, query={"lang": lang} if lang else {}, shape="function_url"
    )
    result = handler(event, None)
    page = gzip.decompress(base64.b64decode(result["body"])).decode()
    assert result["headers"]["Content-Language"] == language
    # A cache keeps each language apart, when the browser's decides it
    assert result["headers"]["Vary"] == "Accept-Encoding" + ("" if setting else ", Accept-Language")
    assert f'<html lang="{language}">' in page
    assert f"<h1>{html.escape(MESSAGES[language]['pageTitle'])}</h1>" in page
    assert _config(page)["messages"] == MESSAGES[language]
    assert "{{" not in page  # every word of the template filled in


@pytest.mark.parametrize(
    ("lang", "location"),
    [
        ("zh-CN", "upload/?lang=zh-CN"),
        ("zh_cn", "upload/?lang=zh-CN"),  # as the page names it
        ("fr", "upload/"),  # one the page does not have: not carried along
        ("zh-CN\r\nSet-Cookie: a=b", "upload/?lang=zh-CN"),  # only ever the page's own name for it
        ("//evil.example", "upload/"),
    ],
)
def test_a_redirect_to_the_page_keeps_the_language_the_link_chose(
    page_function: Handler, lang: str, location: str
) -> None:
    event = http_event(method="GET", path="/gw/upload", query={"lang": lang}, shape="function_url")
    result = page_function(event, None)
    assert (result["statusCode"], result["headers"]["Location"]) == (308, location)


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


def test_every_language_has_every_message_with_the_same_placeholders() -> None:
    assert tuple(MESSAGES) == PAGE_LANGUAGES  # the settings take exactly the languages the page has
    english = MESSAGES["en"]
    for language, messages in MESSAGES.items():
        assert messages.keys() == english.keys(), language
        for key, text in messages.items():
            # Spaces at an end only where the text joins others (in languages that need them there)
            joins = {"noLongerFollowed", "speed", "requestId", "uploadingAs", "optional"}
            assert text.strip() == text or key in joins, (language, key)
            assert _placeholders(text) == _placeholders(english[key]), (language, key)


def _calls_of_t(script: str) -> list[tuple[str, str]]:
    """Each t(…) call in the script: its key argument and its values argument, as written."""
    calls = []
    for match in re.finditer(r"\bt\(", script):
        depth, at = 1, match.end()
        while depth:  # to the call's closing parenthesis (no message key or value holds one in a string)
            depth += {"(": 1, ")": -1}.get(script[at], 0)
            at += 1
        key, _, values = script[match.end() : at - 1].partition(", ")
        calls.append((key, values))
    return calls


def test_each_call_of_a_message_gives_the_placeholders_it_has() -> None:
    script = (STATIC / "upload.js").read_text()
    # Keys chosen ahead, as `const [a, b] = resumable ? ["aLonger", "bLonger"] : ["a", "b"]`
    chosen: dict[str, set[str]] = {}
    for names, first, second in re.findall(r"const \[([\w, ]+)\] = \w+\s*\? \[([^\]]*)\]\s*: \[([^\]]*)\]", script):
        for name, *branches in zip(
            names.split(", "), re.findall(r'"(\w+)"', first), re.findall(r'"(\w+)"', second), strict=True
        ):
            chosen[name] = set(branches)
    checked = 0
    for key, values in _calls_of_t(script):
        keys = set(re.findall(r'"([\w.]+)"', key)) or chosen.get(key, set())
        if values.startswith("{"):
            given = set(re.findall(r"(?:\{|,)\s*(\w+)\s*(?=[:,}])", values))
        elif values:  # a record made beforehand: `const named = {…}`
            given = set(re.findall(r"(\w+):", re.search(rf"const {values} = (\{{[^}}]*\}})", script).group(1)))  # type: ignore[union-attr]
        else:
            given = set()
        for one in keys:
            assert _placeholders(MESSAGES["en"][one]) <= given, (one, values)
            checked += 1
    assert checked > 50  # the calls were found: not a pattern that matches none
    assert set(chosen) == {"goesOn", "press", "offline", "again"}


def test_every_message_is_used_and_every_one_used_exists() -> None:
    script, template = (STATIC / "upload.js").read_text(), (STATIC / "page.html").read_text()
    in_page = set(re.findall(r"\{\{t:([\w.]+)\}\}", template))
    # Its script names them as literals: in t("…"), or as the branches of a choice that t() is given
    named = set(re.findall(r'\bt\("([\w.]+)"', script)) | set(re.findall(r'"([a-z]+[A-Z]\w*)"', script))
    # and the statuses in words as "status.<status>" and "task.<outcome>", where it has words for them
    statuses = {f"status.{s}" for s in get_args(Status)} | {f"task.{s}" for s in get_args(TaskOutcome)}
    keys = MESSAGES["en"].keys()
    assert in_page <= keys and named <= keys
    literals = set(re.findall(r'"([\w.]+)"', script))
    assert {key for key in keys if key not in in_page | literals} <= statuses
