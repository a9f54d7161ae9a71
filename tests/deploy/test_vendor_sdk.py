"""scripts/vendor-sdk ships exactly the pinned npm release: a tarball whose integrity differs is refused, and a
vendored file changed afterwards is replaced, never served. (A synthetic release: tests make no network calls.)"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy.scripts import load_script


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, bytes, Path]:
    vendor = load_script("vendor-sdk")
    tarball = _tarball({"package/dist/sdk.js": b"console.log('sdk');", "package/LICENSE": b"MIT"})
    pin = {
        "package": "sdk",
        "version": "1.0.0",
        "tarball": (tmp_path / "not-downloaded.tgz").as_uri(),  # fails without any network
        "integrity": vendor.integrity(tarball),
        "file": "package/dist/sdk.js",
        "license": "package/LICENSE",
    }
    (tmp_path / "vendor.json").write_text(json.dumps(pin))
    monkeypatch.setattr(vendor, "PIN", tmp_path / "vendor.json")
    return vendor, tarball, tmp_path / "out"


def test_the_pinned_release_is_vendored_gzipped(release: tuple[ModuleType, bytes, Path]) -> None:
    vendor, tarball, out = release
    target = vendor.vendor(tarball, out)
    assert gzip.decompress(target.read_bytes()) == b"console.log('sdk');"
    assert (out / "LICENSE.vod-js-sdk-v6").read_bytes() == b"MIT"
    assert vendor.vendor(None, out) == target  # up to date: no download


@pytest.mark.parametrize(
    "tampered",
    [
        pytest.param(lambda t: t[:-1] + bytes([t[-1] ^ 1]), id="one-bit-changed"),
        pytest.param(lambda t: _tarball({"package/dist/sdk.js": b"evil()", "package/LICENSE": b"MIT"}), id="other"),
    ],
)
def test_a_tarball_that_is_not_the_pinned_one_is_refused(
    release: tuple[ModuleType, bytes, Path], tampered: Callable[[bytes], bytes]
) -> None:
    vendor, tarball, out = release
    with pytest.raises(vendor.VendorError, match="integrity"):
        vendor.vendor(tampered(tarball), out)
    assert not out.exists()


def test_a_vendored_file_changed_afterwards_is_replaced(release: tuple[ModuleType, bytes, Path]) -> None:
    vendor, tarball, out = release
    target = vendor.vendor(tarball, out)
    target.write_bytes(gzip.compress(b"evil()"))
    with pytest.raises(vendor.VendorError, match="cannot download"):
        vendor.vendor(None, out)  # not trusted as is: it would fetch the release again (here: no network)
    assert gzip.decompress(vendor.vendor(tarball, out).read_bytes()) == b"console.log('sdk');"
