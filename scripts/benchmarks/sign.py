"""Signature function: per-call cost over the raw HMAC floor, cold import, bundle size."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import os
import tempfile
import time
import zipfile
from pathlib import Path

import jwt

from benchmarks.common import ROOT, build_bundle, per_call, process_seconds

SECRET_ID = "AKIDbench000000000000000000000000000"
SECRET_KEY = "benchSecretKey0123456789abcdefABCD"
JWT_SECRET = "bench-jwt-secret-0123456789-abcdefghijklmnop"
ENV = {"TENCENTCLOUD_SECRET_ID": SECRET_ID, "TENCENTCLOUD_SECRET_KEY": SECRET_KEY, "VOD_SUB_APP_ID": "1500000001",
       "AUTH_JWT_SECRET": JWT_SECRET}


def _handler(env: dict[str, str]):  # type: ignore[no-untyped-def]
    from harness import load_handler

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return load_handler("sign", ROOT / "functions" / "sign" / "index.py")
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run() -> list[tuple[str, str]]:
    event = json.loads((ROOT / "tests" / "events" / "apigw_post.json").read_text())
    context = {"request_id": "bench"}
    # The log line is formatted and written as in SCF, into memory instead of the terminal.
    logger = logging.getLogger("vod")
    logger.handlers[:] = [logging.StreamHandler(io.StringIO())]
    logger.propagate = False

    open_handler = _handler({**ENV, "AUTH_MODE": "none"})
    result = open_handler(event, context)
    signature = json.loads(result["body"])["signature"]
    original = base64.b64decode(signature)[20:]
    key = SECRET_KEY.encode()

    def floor() -> bytes:
        return base64.b64encode(hmac.new(key, original, hashlib.sha1).digest() + original)

    raw = per_call(floor, number=50_000)
    off = per_call(lambda: open_handler(event, context))
    jwt_handler = _handler({**ENV, "AUTH_MODE": "jwt"})
    token = jwt.encode({"sub": "bench-user", "exp": int(time.time()) + 3600}, JWT_SECRET, algorithm="HS256")
    jwt_event = {**event, "headers": {**event["headers"], "Authorization": f"Bearer {token}"}}
    assert jwt_handler(jwt_event, context)["statusCode"] == 200
    hs256 = per_call(lambda: jwt_handler(jwt_event, context))

    with tempfile.TemporaryDirectory() as tmp:
        bundle = build_bundle("sign", Path(tmp))
        code_dir = Path(tmp) / "code"
        zipfile.ZipFile(bundle).extractall(code_dir)
        env = {**ENV, "PATH": os.environ.get("PATH", "")}
        bare = process_seconds("import sys", env)
        cold = process_seconds(f"import sys; sys.path.insert(0, {str(code_dir)!r}); import index", env)
        size = bundle.stat().st_size

    return [
        ("raw HMAC-SHA1 + Base64 of one signature (floor)", f"{raw * 1e6:8.2f} µs"),
        ("sign handler, auth off", f"{off * 1e6:8.2f} µs  = {off / raw:5.1f}× floor  (target ≤ 4×)"),
        ("sign handler, HS256 JWT auth", f"{hs256 * 1e6:8.2f} µs  = {hs256 / raw:5.1f}× floor"),
        ("bare interpreter start (python -I -S)", f"{bare * 1e3:8.1f} ms"),
        ("cold import of the sign bundle over bare", f"{(cold - bare) * 1e3:8.1f} ms  "
                                                     f"(×{cold / bare:.2f} of bare; target ≤ 25 ms)"),
        ("sign bundle, zipped", f"{size / 1024:8.1f} KiB  (target ≤ 200 KiB)"),
    ]
