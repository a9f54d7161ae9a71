"""VOD emulator: a 256 MiB multipart upload with cos-python-sdk-v5, next to a raw copy of the
same file on the same disk in the same run (no target: the emulator stays simple)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from qcloud_cos import CosConfig, CosS3Client

from vodbench.common import Figure, Section, environment
from vodemu.app import build_emulator

SIZE = 256 * 1024 * 1024
BUCKET = "vodbench-1250000000"
KEY = "bench/video.mp4"


def _write_sample(path: Path) -> None:
    block = os.urandom(4 * 1024 * 1024)  # incompressible, and cheap to make
    with path.open("wb") as handle:
        for _ in range(SIZE // len(block)):
            handle.write(block)


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def run() -> Section:
    for noisy in ("qcloud_cos", "werkzeug", "vodemu"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with environment(), tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMPDIR")) as tmp:
        root = Path(tmp)
        source = root / "sample.bin"
        _write_sample(source)
        raw = min(_timed(lambda: shutil.copyfile(source, root / "copy.bin")) for _ in range(3))
        emulator = build_emulator(root / "emulator", secret_id="AKIDbench", secret_key="bench-secret-key")
        port = emulator.start()
        try:
            cred = emulator.credentials.issue(BUCKET, [KEY], 3600)
            client = CosS3Client(
                CosConfig(
                    IP="127.0.0.1",
                    Port=port,
                    Region="ap-guangzhou",
                    Scheme="http",
                    SecretId=cred.secret_id,
                    SecretKey=cred.secret_key,
                    Token=cred.token,
                )
            )
            # The web SDK's defaults: 8 MiB parts, 6 in parallel.
            upload = _timed(
                lambda: client.upload_file(Bucket=BUCKET, Key=KEY, LocalFilePath=str(source), PartSize=8, MAXThread=6)
            )
            stored = emulator.store.stat(BUCKET, KEY)
        finally:
            emulator.close()
    assert stored is not None and stored.size == SIZE
    mib = SIZE / 1024 / 1024
    lines = [
        ("raw copy of 256 MiB on the same disk (baseline)", f"{mib / raw:8.0f} MiB/s"),
        (
            "multipart upload through the emulator (SDK)",
            f"{mib / upload:8.0f} MiB/s  = {raw / upload * 100:5.1f} % of raw",
        ),
    ]
    figure = Figure(
        "256 MiB multipart upload into the emulator (SDK)",
        f"{mib / upload:.0f} MiB/s",
        f"{raw / upload * 100:.0f} % of a raw copy",
        "— (retired)",
    )
    return Section(lines, [figure])
