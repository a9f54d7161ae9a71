"""The client side of VOD's upload protocol, done by hand with the real COS SDK (no project client code)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from qcloud_cos import CosConfig, CosS3Client

from tests.conftest import LeakGuard


def signature(gateway: str, token: str, guard: LeakGuard, **choices: Any) -> str:
    response = requests.post(f"{gateway}/signature", json=choices, timeout=10,
                             headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    return guard.add(response.json()["signature"])


def vod_call(emulator: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{emulator}/v3/index.php", params={"Action": action}, json=body, timeout=30)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    assert answer["code"] == 0, answer
    data: dict[str, Any] = answer["data"]
    return data


def upload(gateway: str, emulator: str, token: str, video: Path, guard: LeakGuard, **choices: Any) -> dict[str, Any]:
    """Apply → COS multipart upload → Commit, each VOD call with a fresh (one-time) signature."""
    applied = vod_call(emulator, "ApplyUploadUGC", {
        "signature": signature(gateway, token, guard, **choices), "videoName": video.stem,
        "videoType": video.suffix.lstrip("."), "videoSize": video.stat().st_size})
    cert = applied["tempCertificate"]
    guard.add(cert["secretKey"])
    port = urlparse(emulator).port
    client = CosS3Client(CosConfig(IP="127.0.0.1", Port=port, Region=applied["storageRegionV5"],
                                   SecretId=cert["secretId"], SecretKey=cert["secretKey"], Token=cert["token"],
                                   Scheme="http"), retry=0)
    client.upload_file(Bucket=f"{applied['storageBucket']}-{applied['storageAppId']}",
                       Key=applied["video"]["storagePath"].lstrip("/"), LocalFilePath=str(video),
                       PartSize=1, MAXThread=2)
    return vod_call(emulator, "CommitUploadUGC", {"signature": signature(gateway, token, guard),
                                                  "vodSessionKey": applied["vodSessionKey"]})


def sample_video(path: Path, size: int = 3 * 1024 * 1024 + 123) -> Path:
    block = hashlib.sha256(path.name.encode()).digest() * 4096
    path.write_bytes((block * (size // len(block) + 1))[:size])
    return path
