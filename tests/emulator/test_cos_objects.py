"""The on-disk object store: objects, multipart uploads, key safety, counters."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from vodemu import objects
from vodemu.objects import ObjectStore, PartInfo

from .cos_helpers import sdk_crc64

BUCKET = "vodugc-1250000000"
MIB = 1024 * 1024
BIG = 1 << 40
NOW = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "cos", clock=lambda: NOW)


def etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


def read(store: ObjectStore, key: str) -> bytes:
    opened = store.open_read(BUCKET, key)
    assert opened is not None
    with opened[1] as file:
        return file.read()


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


def upload_parts(
    store: ObjectStore, key: str, chunks: Sequence[bytes], *, hinted: bool = True, order: Sequence[int] | None = None
) -> tuple[str, list[tuple[int, str]]]:
    upload = store.initiate_upload(BUCKET, key, content_type="video/mp4")
    listed = {}
    for index in order or range(len(chunks)):
        chunk = chunks[index]
        part = store.upload_part(
            BUCKET,
            key,
            upload.upload_id,
            index + 1,
            io.BytesIO(chunk),
            max_size=BIG,
            size_hint=len(chunk) if hinted else None,
        )
        listed[index + 1] = part.etag
    return upload.upload_id, sorted(listed.items())


def test_put_stat_and_read_back(store: ObjectStore):
    info = store.put_object(BUCKET, "a/b.mp4", io.BytesIO(b"hello"), max_size=BIG, content_type="video/mp4")

    assert info == objects.ObjectInfo(BUCKET, "a/b.mp4", 5, etag(b"hello"), "video/mp4", NOW, sdk_crc64(b"hello"))
    assert store.stat(BUCKET, "a/b.mp4") == info
    assert read(store, "a/b.mp4") == b"hello"
    assert store.object_path(BUCKET, "a/b.mp4") is not None
    assert store.stat(BUCKET, "a/other.mp4") is None
    assert store.open_read(BUCKET, "a/other.mp4") is None
    assert store.object_path(BUCKET, "a/other.mp4") is None


def test_empty_object_and_overwrite(store: ObjectStore):
    store.put_object(BUCKET, "k", io.BytesIO(b"first version"), max_size=BIG)
    info = store.put_object(BUCKET, "k", io.BytesIO(b""), max_size=BIG)
    assert info.size == 0
    assert info.etag == etag(b"")
    assert info.content_type == "application/octet-stream"
    assert read(store, "k") == b""


class ReadOnly:
    """A body without readinto (the store must fall back to read())."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    def read(self, size: int = -1, /) -> bytes:
        return self._stream.read(size)


def test_bodies_without_readinto_are_read_in_chunks(tmp_path: Path):
    store = ObjectStore(tmp_path, chunk_size=7)
    data = os.urandom(100)
    assert store.put_object(BUCKET, "k", ReadOnly(data), max_size=BIG).etag == etag(data)
    assert read(store, "k") == data


@pytest.mark.parametrize(
    "key",
    [
        "../../../escape",
        "/leading/slash",
        "a/../../b",
        "..",
        "./.",
        "\\..\\windows",
        "nul\x00byte",
        "中文 目录/带 空格 & symbols?#%.mp4",
        "x" * 850,
        "é" * 425,
    ],
)
def test_any_key_maps_inside_the_root(tmp_path: Path, key: str):
    root = tmp_path / "cos"
    store = ObjectStore(root)
    store.put_object(BUCKET, key, io.BytesIO(b"data"), max_size=BIG)

    assert read(store, key) == b"data"
    assert files_under(tmp_path) == files_under(root)
    assert all(path.resolve().is_relative_to(root.resolve()) for path in files_under(root))


def test_keys_longer_than_cos_allows_are_refused(store: ObjectStore):
    with pytest.raises(objects.KeyTooLongError):
        store.put_object(BUCKET, "é" * 426, io.BytesIO(b""), max_size=BIG)


@pytest.mark.parametrize("bucket", ["", "UPPER-125", "no-appid", "../x-1", "a" * 51 + "-1"])
def test_invalid_bucket_names_never_become_paths(store: ObjectStore, bucket: str):
    with pytest.raises(ValueError, match="invalid bucket name"):
        store.put_object(bucket, "k", io.BytesIO(b""), max_size=BIG)


def test_a_body_over_the_limit_is_refused_and_leaves_nothing(store: ObjectStore):
    with pytest.raises(objects.EntityTooLargeError):
        store.put_object(BUCKET, "k", io.BytesIO(b"x" * 101), max_size=100)
    assert store.stat(BUCKET, "k") is None
    assert files_under(store.root) == []


def test_content_md5_mismatch_is_refused(store: ObjectStore):
    with pytest.raises(objects.BadDigestError):
        store.put_object(BUCKET, "k", io.BytesIO(b"abc"), max_size=BIG, expected_md5=hashlib.md5(b"abd").digest())
    assert store.stat(BUCKET, "k") is None
    info = store.put_object(BUCKET, "k", io.BytesIO(b"abc"), max_size=BIG, expected_md5=hashlib.md5(b"abc").digest())
    assert info.size == 3


def test_bytes_received_counts_every_body_byte_written(store: ObjectStore):
    store.put_object(BUCKET, "a", io.BytesIO(b"x" * 10), max_size=BIG)
    upload_parts(store, "b", [b"y" * MIB, b"z" * 5], hinted=True)
    upload_parts(store, "c", [b"w" * 3], hinted=False)
    with pytest.raises(objects.EntityTooLargeError):
        store.put_object(BUCKET, "d", io.BytesIO(b"v" * 50), max_size=20)

    # The refused body's single chunk was over the limit before anything of it was written.
    assert store.bytes_received == 10 + MIB + 5 + 3


# ---- multipart ---------------------------------------------------------------------------------

CHUNKS = [os.urandom(MIB), os.urandom(MIB), os.urandom(MIB // 2)]
DATA = b"".join(CHUNKS)


def expected_etag(chunks: Sequence[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(c).digest() for c in chunks)).hexdigest()
    return f'"{digest}-{len(chunks)}"'


@pytest.mark.parametrize(
    ("hinted", "order", "copies"),
    [
        pytest.param(True, [0, 1, 2], False, id="in-order-in-place"),
        pytest.param(True, [1, 2, 0], False, id="out-of-order-in-place"),
        pytest.param(True, [2, 0, 1], True, id="short-last-part-first-copy"),
        pytest.param(False, [0, 1, 2], True, id="unknown-lengths-copy"),
    ],
)
def test_complete_assembles_the_parts(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch, hinted: bool, order: list[int], copies: bool
):
    copied: list[int] = []
    real_copy = objects._copy_fd

    def counting_copy(src: int, dst: int, size: int) -> None:
        copied.append(size)
        real_copy(src, dst, size)

    monkeypatch.setattr(objects, "_copy_fd", counting_copy)
    upload_id, parts = upload_parts(store, "video.mp4", CHUNKS, hinted=hinted, order=order)

    info = store.complete_upload(BUCKET, "video.mp4", upload_id, parts, max_size=BIG)

    assert read(store, "video.mp4") == DATA
    assert info.etag == expected_etag(CHUNKS)
    assert (info.size, info.content_type) == (len(DATA), "video/mp4")
    assert bool(copied) is copies
    assert store.list_uploads(BUCKET) == []
    assert not (store.root / BUCKET / "uploads" / upload_id).exists()


def test_complete_with_fewer_parts_than_uploaded(store: ObjectStore):
    upload_id, parts = upload_parts(store, "k", CHUNKS)
    store.complete_upload(BUCKET, "k", upload_id, parts[:2], max_size=BIG)
    assert read(store, "k") == CHUNKS[0] + CHUNKS[1]


def test_a_part_uploaded_again_replaces_the_first(store: ObjectStore):
    upload_id, _ = upload_parts(store, "k", CHUNKS)
    replacement = os.urandom(MIB)
    store.upload_part(BUCKET, "k", upload_id, 2, io.BytesIO(replacement), max_size=BIG, size_hint=MIB)
    parts = [(p.part_number, p.etag) for p in store.list_parts(BUCKET, "k", upload_id)]

    store.complete_upload(BUCKET, "k", upload_id, parts, max_size=BIG)

    assert read(store, "k") == CHUNKS[0] + replacement + CHUNKS[2]


@pytest.mark.parametrize("hinted", [True, False], ids=["in the shared file", "in files of their own"])
def test_list_parts_reports_sizes_etags_and_crc64s(store: ObjectStore, hinted: bool):
    upload_id, _ = upload_parts(store, "k", CHUNKS, order=[1, 0], hinted=hinted)
    assert store.list_parts(BUCKET, "k", upload_id) == [
        PartInfo(1, MIB, etag(CHUNKS[0]), NOW, sdk_crc64(CHUNKS[0])),
        PartInfo(2, MIB, etag(CHUNKS[1]), NOW, sdk_crc64(CHUNKS[1])),
    ]


def test_list_uploads_by_prefix_oldest_first(tmp_path: Path):
    times = iter([1.0, 2.0, 3.0, 4.0])
    store = ObjectStore(tmp_path, clock=lambda: next(times))
    first = store.initiate_upload(BUCKET, "a/video.mp4")
    store.initiate_upload(BUCKET, "b/video.mp4")
    second = store.initiate_upload(BUCKET, "a/video.mp4")
    longer = store.initiate_upload(BUCKET, "a/video.mp4.bak")

    listed = store.list_uploads(BUCKET, "a/video.mp4")

    assert [u.upload_id for u in listed] == [first.upload_id, second.upload_id, longer.upload_id]
    assert [u.initiated for u in listed] == [1.0, 3.0, 4.0]


def _swap(parts: list[tuple[int, str]]) -> list[tuple[int, str]]:
    return [parts[1], parts[0], parts[2]]


def _wrong_etag(parts: list[tuple[int, str]]) -> list[tuple[int, str]]:
    return [parts[0], (2, etag(b"something else")), parts[2]]


COMPLETE_REFUSALS = [
    ("no-parts", lambda parts: [], objects.InvalidPartError),
    ("wrong-etag", _wrong_etag, objects.InvalidPartError),
    ("unknown-part", lambda parts: [*parts, (4, parts[0][1])], objects.InvalidPartError),
    ("descending", _swap, objects.InvalidPartOrderError),
    ("duplicate", lambda parts: [parts[0], parts[0]], objects.InvalidPartOrderError),
    ("small-middle-part", lambda parts: [parts[0], parts[2], (5, parts[1][1])], objects.EntityTooSmallError),
    ("small-first-part", lambda parts: [parts[2], (5, parts[1][1])], objects.EntityTooSmallError),
]


@pytest.mark.parametrize(("choose", "error"), [pytest.param(*row[1:], id=row[0]) for row in COMPLETE_REFUSALS])
def test_complete_refusals_leave_the_upload_usable(store: ObjectStore, choose, error: type[Exception]):
    upload_id, parts = upload_parts(store, "k", CHUNKS)
    store.upload_part(BUCKET, "k", upload_id, 5, io.BytesIO(CHUNKS[1]), max_size=BIG)

    with pytest.raises(error):
        store.complete_upload(BUCKET, "k", upload_id, choose(parts), max_size=BIG)

    assert store.stat(BUCKET, "k") is None
    store.complete_upload(BUCKET, "k", upload_id, parts, max_size=BIG)
    assert read(store, "k") == DATA


@pytest.mark.parametrize(
    ("size", "error"), [(MIB - 1, objects.EntityTooSmallError), (MIB, None)], ids=["1 MiB - 1 byte", "1 MiB"]
)
def test_every_part_but_the_last_is_at_least_1_mib(store: ObjectStore, size: int, error: type[Exception] | None):
    chunks = [os.urandom(size), b"last"]
    upload_id, parts = upload_parts(store, "k", chunks)
    if error is None:
        store.complete_upload(BUCKET, "k", upload_id, parts, max_size=BIG)
        assert read(store, "k") == b"".join(chunks)
    else:
        with pytest.raises(error):
            store.complete_upload(BUCKET, "k", upload_id, parts, max_size=BIG)


def test_complete_refuses_an_object_over_the_limit(store: ObjectStore):
    upload_id, parts = upload_parts(store, "k", CHUNKS)
    with pytest.raises(objects.EntityTooLargeError):
        store.complete_upload(BUCKET, "k", upload_id, parts, max_size=len(DATA) - 1)


def test_etags_are_compared_without_quotes_or_case(store: ObjectStore):
    upload_id, parts = upload_parts(store, "k", CHUNKS[:1])
    store.complete_upload(BUCKET, "k", upload_id, [(1, parts[0][1].strip('"').upper())], max_size=BIG)
    assert read(store, "k") == CHUNKS[0]


def test_abort_removes_every_part_from_disk(store: ObjectStore):
    upload_id, parts = upload_parts(store, "k", CHUNKS)
    upload_parts(store, "k", CHUNKS[:1], hinted=False)

    store.abort_upload(BUCKET, "k", upload_id)

    assert not (store.root / BUCKET / "uploads" / upload_id).exists()
    assert [path.name for path in files_under(store.root) if path.suffix == ".data"] == ["part-00001.data"]
    assert [u.upload_id for u in store.list_uploads(BUCKET)] != [upload_id]
    with pytest.raises(objects.NoSuchUploadError):
        store.list_parts(BUCKET, "k", upload_id)
    with pytest.raises(objects.NoSuchUploadError):
        store.complete_upload(BUCKET, "k", upload_id, parts, max_size=BIG)
    with pytest.raises(objects.NoSuchUploadError):
        store.upload_part(BUCKET, "k", upload_id, 1, io.BytesIO(b"x"), max_size=BIG)


@pytest.mark.parametrize(
    ("key", "upload_id"),
    [
        pytest.param("other-key", None, id="upload-of-another-key"),
        pytest.param("k", "0" * 40, id="unknown-id"),
        pytest.param("k", "../../objects", id="path-in-id"),
        pytest.param("k", "", id="empty-id"),
    ],
)
def test_uploads_are_found_only_by_their_id_and_key(store: ObjectStore, key: str, upload_id: str | None):
    real = store.initiate_upload(BUCKET, "k")
    upload_id = real.upload_id if upload_id is None else upload_id
    with pytest.raises(objects.NoSuchUploadError):
        store.upload_part(BUCKET, key, upload_id, 1, io.BytesIO(b"x"), max_size=BIG)
    with pytest.raises(objects.NoSuchUploadError):
        store.abort_upload(BUCKET, key, upload_id)


@pytest.mark.parametrize("number", [0, 10001])
def test_part_numbers_run_from_1_to_10000(store: ObjectStore, number: int):
    upload = store.initiate_upload(BUCKET, "k")
    with pytest.raises(objects.InvalidPartNumberError):
        store.upload_part(BUCKET, "k", upload.upload_id, number, io.BytesIO(b"x"), max_size=BIG)


def test_a_refused_part_is_not_recorded(store: ObjectStore):
    upload = store.initiate_upload(BUCKET, "k")
    with pytest.raises(objects.BadDigestError):
        store.upload_part(
            BUCKET,
            "k",
            upload.upload_id,
            1,
            io.BytesIO(b"x" * MIB),
            max_size=BIG,
            size_hint=MIB,
            expected_md5=b"0" * 16,
        )
    with pytest.raises(objects.EntityTooLargeError):
        store.upload_part(BUCKET, "k", upload.upload_id, 2, io.BytesIO(b"x" * 10), max_size=5)
    assert store.list_parts(BUCKET, "k", upload.upload_id) == []


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(OSError(errno.EXDEV, "cross-device"), id="copy_file_range-unsupported"),
        pytest.param(None, id="no-copy_file_range"),
    ],
)
def test_assembly_falls_back_to_a_plain_copy(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch, breakage: OSError | None
):
    if breakage is None:
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    else:

        def unsupported(*args: object) -> int:
            raise breakage

        monkeypatch.setattr(os, "copy_file_range", unsupported)
    upload_id, parts = upload_parts(store, "k", CHUNKS, hinted=False)

    store.complete_upload(BUCKET, "k", upload_id, parts, max_size=BIG)

    assert read(store, "k") == DATA


def test_concurrent_part_uploads_and_retries(store: ObjectStore):
    chunks = [os.urandom(MIB) for _ in range(12)] + [os.urandom(1000)]
    upload = store.initiate_upload(BUCKET, "k")
    errors: list[BaseException] = []

    def send(number: int) -> None:
        chunk = chunks[number - 1]
        try:
            for _ in range(2):  # every part twice, racing with itself and the others
                store.upload_part(
                    BUCKET, "k", upload.upload_id, number, io.BytesIO(chunk), max_size=BIG, size_hint=len(chunk)
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(1, 14) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    parts = [(p.part_number, p.etag) for p in store.list_parts(BUCKET, "k", upload.upload_id)]
    assert [number for number, _ in parts] == list(range(1, 14))
    store.complete_upload(BUCKET, "k", upload.upload_id, parts, max_size=BIG)
    assert read(store, "k") == b"".join(chunks)
    assert store.bytes_received == 4 * sum(len(c) for c in chunks)


# ---- sealed objects (committed files) ---------------------------------------------------------------

SEALED_KEY = "1/session/f0.mp4"
SMALL_PARTS = [b"abcd", b"ef"]  # with min_part_size=4: part 1 fixes a stride of 4, part 2 fits in place


class Seals:
    """A `sealed` predicate the test controls: the keys it holds are committed files."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def __call__(self, bucket: str, key: str) -> bool:
        return bucket == BUCKET and key in self.keys


class SealingBody:
    """A body that seals its key when first read: the object is committed while the body streams in."""

    def __init__(self, seals: Seals, data: bytes) -> None:
        self._seals = seals
        self._data = data

    def read(self, size: int = -1) -> bytes:
        data, self._data = self._data, b""
        self._seals.keys.add(SEALED_KEY)
        return data


@pytest.fixture
def seals() -> Seals:
    return Seals()


@pytest.fixture
def sealing_store(tmp_path: Path, seals: Seals) -> ObjectStore:
    store = ObjectStore(tmp_path / "cos", clock=lambda: NOW, min_part_size=4, sealed=seals)
    store.put_object(BUCKET, SEALED_KEY, io.BytesIO(b"original"), max_size=BIG)
    return store


def _put_after_sealing(store: ObjectStore, seals: Seals, monkeypatch: pytest.MonkeyPatch) -> None:
    seals.keys.add(SEALED_KEY)
    store.put_object(BUCKET, SEALED_KEY, io.BytesIO(b"new"), max_size=BIG)


def _put_sealed_while_streaming(store: ObjectStore, seals: Seals, monkeypatch: pytest.MonkeyPatch) -> None:
    store.put_object(BUCKET, SEALED_KEY, SealingBody(seals, b"new"), max_size=BIG)


def _initiate_after_sealing(store: ObjectStore, seals: Seals, monkeypatch: pytest.MonkeyPatch) -> None:
    seals.keys.add(SEALED_KEY)
    store.initiate_upload(BUCKET, SEALED_KEY)


def _part_after_sealing(store: ObjectStore, seals: Seals, monkeypatch: pytest.MonkeyPatch) -> None:
    upload = store.initiate_upload(BUCKET, SEALED_KEY)
    seals.keys.add(SEALED_KEY)
    store.upload_part(BUCKET, SEALED_KEY, upload.upload_id, 1, io.BytesIO(b"abcd"), max_size=BIG, size_hint=4)


def _complete_after_sealing(store: ObjectStore, seals: Seals, monkeypatch: pytest.MonkeyPatch) -> None:
    upload_id, parts = upload_parts(store, SEALED_KEY, SMALL_PARTS)
    seals.keys.add(SEALED_KEY)
    store.complete_upload(BUCKET, SEALED_KEY, upload_id, parts, max_size=BIG)


def _complete_sealed_while_assembling(hinted: bool):
    def case(store: ObjectStore, seals: Seals, monkeypatch: pytest.MonkeyPatch) -> None:
        upload_id, parts = upload_parts(store, SEALED_KEY, SMALL_PARTS, hinted=hinted)
        etag_of = objects.multipart_etag

        def seal_then_etag(listed: Sequence[PartInfo]) -> str:
            # Called after the parts are assembled, outside the lock: the commit happens right here.
            seals.keys.add(SEALED_KEY)
            return etag_of(listed)

        monkeypatch.setattr(objects, "multipart_etag", seal_then_etag)
        store.complete_upload(BUCKET, SEALED_KEY, upload_id, parts, max_size=BIG)

    return case


SEALED_WRITES = {
    "put after sealing": _put_after_sealing,
    "put sealed while its body streams": _put_sealed_while_streaming,
    "initiate after sealing": _initiate_after_sealing,
    "part after sealing": _part_after_sealing,
    "complete after sealing": _complete_after_sealing,
    "complete sealed while assembling, parts in place": _complete_sealed_while_assembling(hinted=True),
    "complete sealed while assembling, parts copied": _complete_sealed_while_assembling(hinted=False),
}


@pytest.mark.parametrize("write", SEALED_WRITES.values(), ids=SEALED_WRITES.keys())
def test_a_sealed_object_cannot_be_replaced(
    sealing_store: ObjectStore, seals: Seals, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write
):
    with pytest.raises(objects.ObjectSealedError):
        write(sealing_store, seals, monkeypatch)
    assert read(sealing_store, SEALED_KEY) == b"original"
    for upload in sealing_store.list_uploads(BUCKET):  # a refused multipart upload can still be aborted
        sealing_store.abort_upload(BUCKET, upload.key, upload.upload_id)
    assert files_under(tmp_path / "cos" / BUCKET / "tmp") == []


def test_other_objects_stay_writable(sealing_store: ObjectStore, seals: Seals):
    seals.keys.add(SEALED_KEY)
    sealing_store.put_object(BUCKET, "1/other/f0.mp4", io.BytesIO(b"x"), max_size=BIG)
    upload_id, parts = upload_parts(sealing_store, "1/other/f0.mp4", SMALL_PARTS)
    sealing_store.complete_upload(BUCKET, "1/other/f0.mp4", upload_id, parts, max_size=BIG)
    assert read(sealing_store, "1/other/f0.mp4") == b"abcdef"


def test_publish_checks_and_records_with_writes_excluded(sealing_store: ObjectStore, seals: Seals):
    def record(found: dict[str, objects.ObjectInfo | None]) -> dict[str, objects.ObjectInfo | None]:
        # The store's lock is held: no write can land between what this step sees and what it records.
        free = sealing_store._lock.acquire(blocking=False)
        if free:
            sealing_store._lock.release()
        assert not free
        seals.keys.add(SEALED_KEY)
        return found

    found = sealing_store.publish(BUCKET, [SEALED_KEY, "1/missing/f0.mp4"], record)
    info = found[SEALED_KEY]
    assert info is not None and info.etag == etag(b"original") and info.size == 8
    assert found["1/missing/f0.mp4"] is None
    with pytest.raises(objects.ObjectSealedError):
        sealing_store.put_object(BUCKET, SEALED_KEY, io.BytesIO(b"new"), max_size=BIG)
