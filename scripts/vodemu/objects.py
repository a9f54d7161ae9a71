"""COS objects and multipart uploads kept on local disk.

Layout under `root` (only validated bucket names, hashes and generated ids become path components, so
no object key can escape the root, and any UTF-8 key up to COS's 850 bytes fits a file name):

    <bucket>/objects/<sha256(key)[:2]>/<sha256(key)>.data|.json   object bytes and metadata
    <bucket>/uploads/<upload id>/upload.json                      multipart upload metadata
    <bucket>/uploads/<upload id>/layout.json                      stride of the shared data file
    <bucket>/uploads/<upload id>/data                             parts written in place (see below)
    <bucket>/uploads/<upload id>/part-NNNNN.json|.data            part metadata; bytes of a part not in `data`
    <bucket>/tmp/                                                 bodies being received; trash

Whole objects stream into `tmp/` and are renamed into place, so a failed or concurrent request never
leaves a half-written object visible. Renames and metadata writes happen under one lock; streaming
does not.

Sealed objects: the owner may pass a `sealed(bucket, key)` predicate (the emulator: "is a committed VOD
file"). A sealed object can no longer be replaced, by a PUT or a multipart upload; the check is made
under the lock, at the moment the new bytes would become the object. `publish()` runs a caller's
check-and-record step under the same lock, so nothing can replace the objects between the two.

Parts: clients upload equal-sized parts (only the last is shorter), so the first part of at least the
minimum size fixes a stride and part N is written straight into the shared `data` file at (N-1)*stride.
Completing such an upload then needs no copy at all: `data` is truncated and renamed into place. A part
that cannot go there (unknown length, larger than the stride, a retry of a part already stored) gets a
file of its own, and completion falls back to an in-kernel copy.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

from fastcrc.crc64 import xz as crc64_xz

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MIN_PART_SIZE = 1024 * 1024  # COS: every part but the last must be at least 1 MiB
MAX_PART_NUMBER = 10000
MAX_KEY_BYTES = 850
DEFAULT_CHUNK_SIZE = 1024 * 1024
# COS bucket names are "<name>-<APPID>", lowercase letters, digits and "-", name at most 50 characters.
_BUCKET_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?-[0-9]{1,20}$")
_UPLOAD_ID_RE = re.compile(r"^[0-9a-f]{40}$")
_UPLOAD_META = "upload.json"
_LAYOUT_META = "layout.json"
_SHARED_DATA = "data"
# Far below what common filesystems allow in one (sparse) file; parts beyond it get files of their own.
_MAX_SHARED_FILE_SIZE = 2**40
# Errors after which copy_file_range cannot work here (old kernel, cross-device, odd filesystem) and a
# plain read/write copy should be used instead.
_COPY_UNSUPPORTED = {errno.ENOSYS, errno.EXDEV, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM}

T = TypeVar("T")


class StoreError(Exception):
    """A request the store refuses; the subclass says why (the API layer maps it to a COS code)."""


class KeyTooLongError(StoreError):
    pass


class NoSuchUploadError(StoreError):
    pass


class InvalidPartNumberError(StoreError):
    pass


class InvalidPartError(StoreError):
    pass


class InvalidPartOrderError(StoreError):
    pass


class EntityTooSmallError(StoreError):
    pass


class EntityTooLargeError(StoreError):
    pass


class BadDigestError(StoreError):
    pass


class ObjectSealedError(StoreError):
    pass


class ByteSource(Protocol):
    """A request body. If it also has `readinto`, that is used to avoid a copy per chunk."""

    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str  # quoted, exactly as sent in the ETag header
    content_type: str
    last_modified: float  # Unix seconds
    crc64: int | None = None  # CRC-64/XZ (COS's "crc64ecma") of the object; None in objects stored before it was kept


@dataclass(frozen=True)
class PartInfo:
    part_number: int
    size: int
    etag: str  # quoted md5 hex of the part
    last_modified: float
    crc64: int | None = None  # None in parts stored before the emulator kept it


@dataclass(frozen=True)
class UploadInfo:
    bucket: str
    key: str
    upload_id: str
    content_type: str
    initiated: float  # Unix seconds
    sequence: int  # orders uploads initiated within the same clock tick


@dataclass(frozen=True)
class _StoredPart:
    info: PartInfo
    offset: int | None  # where the bytes start in the shared data file; None: in the part's own file


@dataclass(frozen=True)
class _Received:
    path: Path
    size: int
    md5: bytes
    crc64: int


def _crc64_of(path: Path, size: int) -> int:
    """CRC-64/XZ of a file's first `size` bytes."""
    crc64 = 0
    with open(path, "rb", buffering=0) as source:
        while size > 0 and (chunk := source.read(min(size, 1 << 20))):
            crc64 = crc64_xz(chunk, crc64)
            size -= len(chunk)
    return crc64


def is_valid_bucket(bucket: str) -> bool:
    return _BUCKET_RE.fullmatch(bucket) is not None


def quote_etag(md5_hex: str) -> str:
    return f'"{md5_hex}"'


def normalize_etag(etag: str) -> str:
    """The bare lowercase hex of an ETag as clients echo it back (quoted or not)."""
    return etag.strip().strip('"').lower()


def multipart_etag(parts: Sequence[PartInfo]) -> str:
    """COS/S3 form: md5 of the concatenated binary part md5s, then "-<number of parts>"."""
    digests = b"".join(bytes.fromhex(normalize_etag(part.etag)) for part in parts)
    return quote_etag(f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}")


def _check_key(key: str) -> None:
    if not key:
        raise ValueError("object key must not be empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise KeyTooLongError(f"object keys are limited to {MAX_KEY_BYTES} bytes")


def _write_all(out: BinaryIO, view: memoryview) -> None:
    # Raw (unbuffered) file writes may be partial; loop until the chunk is on its way to disk.
    while view:
        written = out.write(view)
        view = view[written or 0 :]


def _plain_copy(src: int, dst: int, size: int) -> int:
    """Fallback for _copy_fd: a user-space copy with one large reusable buffer."""
    buffer = memoryview(bytearray(8 * 1024 * 1024))
    copied = 0
    with open(src, "rb", buffering=0, closefd=False) as reader, open(dst, "wb", buffering=0, closefd=False) as writer:
        while copied < size:
            count = reader.readinto(buffer[: min(len(buffer), size - copied)])
            if not count:
                break
            _write_all(writer, buffer[:count])
            copied += count
    return copied


def _copy_fd(src: int, dst: int, size: int) -> None:
    """Append `size` bytes of `src` to `dst` (both at their current offsets), in the kernel if possible."""
    remaining = size
    copy_file_range = getattr(os, "copy_file_range", None)
    if copy_file_range is not None:
        try:
            while remaining > 0:
                count = copy_file_range(src, dst, remaining)
                if count == 0:
                    break
                remaining -= count
        except OSError as exc:
            if exc.errno not in _COPY_UNSUPPORTED or remaining != size:
                raise
    if remaining > 0:
        remaining -= _plain_copy(src, dst, remaining)
    if remaining > 0:
        raise OSError(errno.EIO, "a part's data is shorter than recorded")


def _is_in_place(parts: Sequence[_StoredPart]) -> bool:
    """Whether the shared data file already holds exactly these parts back to back from offset 0."""
    expected = 0
    for part in parts:
        if part.offset != expected:
            return False
        expected += part.info.size
    return True


class ObjectStore:
    """Objects and multipart uploads of any number of buckets under `root`; thread-safe."""

    def __init__(
        self,
        root: Path,
        *,
        clock: Callable[[], float] = time.time,
        min_part_size: int = MIN_PART_SIZE,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        sealed: Callable[[str, str], bool] | None = None,
    ) -> None:
        """`sealed(bucket, key)`: True for objects that must never be replaced (called under the lock)."""
        self._root = Path(root)
        self._sealed = sealed
        self._clock = clock
        self._min_part_size = min_part_size
        self._chunk_size = chunk_size
        self._lock = threading.Lock()
        self._counter_lock = threading.Lock()
        self._bytes_received = 0
        # Uploads being completed: invisible to listing, closed to new parts and aborts meanwhile.
        self._completing: set[tuple[str, str]] = set()
        # Part numbers being streamed into an upload's shared data file right now.
        self._shared_writers: dict[tuple[str, str], set[int]] = {}
        self._sequence = itertools.count(time.time_ns())

    @property
    def root(self) -> Path:
        return self._root

    @property
    def bytes_received(self) -> int:
        """Body bytes written to disk by put_object and upload_part (including later-refused bodies)."""
        with self._counter_lock:
            return self._bytes_received

    # ---- objects -------------------------------------------------------------------------------

    def put_object(
        self,
        bucket: str,
        key: str,
        body: ByteSource,
        *,
        max_size: int,
        content_type: str = DEFAULT_CONTENT_TYPE,
        expected_md5: bytes | None = None,
    ) -> ObjectInfo:
        _check_key(key)
        with self._lock:
            self._check_writable(bucket, key)  # refuse before receiving a useless body
        received = self._receive(bucket, body, max_size)
        try:
            _check_digest(received.md5, expected_md5)
            info = ObjectInfo(
                bucket, key, received.size, quote_etag(received.md5.hex()), content_type, self._clock(), received.crc64
            )
            with self._lock:
                self._check_writable(bucket, key)  # the object may have been sealed while the body streamed in
                self._commit_object(received.path, info)
        finally:
            received.path.unlink(missing_ok=True)
        return info

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        with self._lock:
            return self._read_object_meta(bucket, key)

    def open_read(self, bucket: str, key: str) -> tuple[ObjectInfo, BinaryIO] | None:
        """Metadata and an open binary file of the same version of the object (caller closes it)."""
        with self._lock:
            info = self._read_object_meta(bucket, key)
            if info is None:
                return None
            try:
                return info, open(self._object_paths(bucket, key)[0], "rb")
            except FileNotFoundError:
                return None

    def publish(self, bucket: str, keys: Iterable[str], record: Callable[[dict[str, ObjectInfo | None]], T]) -> T:
        """`record(metadata of keys)`, run while no write can replace those objects; returns its result.

        A commit checks the objects it publishes and records them as published (so that `sealed` holds
        for them) in one step: no write can land between the check and the record.
        """
        with self._lock:
            return record({key: self._read_object_meta(bucket, key) for key in keys})

    def object_path(self, bucket: str, key: str) -> Path | None:
        """Where the object's bytes live, for serving by path (a later PUT replaces the file)."""
        with self._lock:
            if self._read_object_meta(bucket, key) is None:
                return None
        return self._object_paths(bucket, key)[0]

    # ---- multipart uploads ---------------------------------------------------------------------

    def initiate_upload(self, bucket: str, key: str, *, content_type: str = DEFAULT_CONTENT_TYPE) -> UploadInfo:
        _check_key(key)
        upload = UploadInfo(
            bucket=bucket,
            key=key,
            upload_id=secrets.token_hex(20),
            content_type=content_type,
            initiated=self._clock(),
            sequence=next(self._sequence),
        )
        with self._lock:
            self._check_writable(bucket, key)
            upload_dir = self._upload_dir(bucket, upload.upload_id)
            upload_dir.mkdir(parents=True)
            self._write_json(bucket, upload_dir / _UPLOAD_META, asdict(upload))
        return upload

    def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: ByteSource,
        *,
        max_size: int,
        size_hint: int | None = None,
        expected_md5: bytes | None = None,
    ) -> PartInfo:
        """Store one part; `size_hint` is the declared body length (Content-Length), if any."""
        if not 1 <= part_number <= MAX_PART_NUMBER:
            raise InvalidPartNumberError(f"part numbers run from 1 to {MAX_PART_NUMBER}")
        with self._lock:
            self._load_upload(bucket, key, upload_id)  # refuse before receiving a useless body
            self._check_writable(bucket, key)
            slot = self._reserve_shared_slot(bucket, upload_id, part_number, size_hint)
        if slot is None:
            return self._store_part_file(bucket, key, upload_id, part_number, body, max_size, expected_md5)
        offset, stride = slot
        try:
            # A body longer than it declared cannot happen through HTTP; the cap keeps neighbours intact.
            limit = min(max_size, stride)
            return self._store_part_shared(bucket, key, upload_id, part_number, offset, body, limit, expected_md5)
        finally:
            with self._lock:
                self._release_shared_slot(bucket, upload_id, part_number)

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]:
        with self._lock:
            self._load_upload(bucket, key, upload_id)
            return [part.info for part in self._read_parts(bucket, upload_id)]

    def list_uploads(self, bucket: str, prefix: str = "") -> list[UploadInfo]:
        """Uploads in progress whose key starts with `prefix`, by key, then oldest first."""
        uploads = []
        with self._lock:
            for meta_path in self._bucket_dir(bucket).joinpath("uploads").glob(f"*/{_UPLOAD_META}"):
                upload = _upload_from_json(_read_json(meta_path))
                if upload is None or (bucket, upload.upload_id) in self._completing:
                    continue
                if upload.key.startswith(prefix):
                    uploads.append(upload)
        return sorted(uploads, key=lambda u: (u.key, u.initiated, u.sequence))

    def complete_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[tuple[int, str]], *, max_size: int
    ) -> ObjectInfo:
        """Assemble the listed parts (number, ETag as echoed by the client) into the object."""
        with self._lock:
            upload = self._load_upload(bucket, key, upload_id)
            self._check_writable(bucket, key)
            chosen = self._select_parts(parts, self._read_parts(bucket, upload_id))
            if sum(part.info.size for part in chosen) > max_size:
                raise EntityTooLargeError("the assembled object would exceed the maximum object size")
            # With a part still streaming into the shared file, that file cannot become the object.
            in_place = _is_in_place(chosen) and not self._shared_writers.get((bucket, upload_id))
            self._completing.add((bucket, upload_id))
        try:
            info, trash = self._assemble_and_commit(upload, chosen, in_place)
        finally:
            with self._lock:
                self._completing.discard((bucket, upload_id))
        shutil.rmtree(trash, ignore_errors=True)
        return info

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        with self._lock:
            self._load_upload(bucket, key, upload_id)
            trash = self._move_to_trash(bucket, self._upload_dir(bucket, upload_id))
        shutil.rmtree(trash, ignore_errors=True)

    # ---- receiving bodies ----------------------------------------------------------------------

    def _receive(self, bucket: str, body: ByteSource, max_size: int) -> _Received:
        """Stream a body into a new temporary file."""
        tmp_dir = self._tmp_dir(bucket)
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="recv-")
        path = Path(name)
        try:
            with open(fd, "wb", buffering=0) as out:
                size, md5, crc64 = self._stream_to(body, out, max_size)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return _Received(path, size, md5, crc64)

    def _receive_at(self, path: Path, offset: int, body: ByteSource, max_size: int) -> tuple[int, bytes, int]:
        """Stream a body into an existing (or new) file at `offset`, leaving the rest of it alone."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        except FileNotFoundError as exc:  # the upload directory went away (aborted)
            raise NoSuchUploadError("the specified upload does not exist") from exc
        with open(fd, "wb", buffering=0) as out:  # an already-open fd: "wb" does not truncate
            out.seek(offset)
            return self._stream_to(body, out, max_size)

    def _stream_to(self, body: ByteSource, out: BinaryIO, max_size: int) -> tuple[int, bytes, int]:
        """(size, MD5, CRC64) of the body, written to `out`."""
        digest = hashlib.md5(usedforsecurity=False)
        crc64 = size = 0
        for chunk in self._chunks(body):
            size += len(chunk)
            if size > max_size:
                raise EntityTooLargeError("the body exceeds the maximum allowed size")
            digest.update(chunk)
            crc64 = crc64_xz(chunk, crc64)
            _write_all(out, chunk)
            self._count_received(len(chunk))
        return size, digest.digest(), crc64

    def _chunks(self, body: ByteSource) -> Iterator[memoryview]:
        # One reusable buffer filled with readinto: no per-chunk allocation on the hot path. Each
        # yielded view is only valid until the next iteration, which is how _stream_to uses it.
        readinto: Callable[[memoryview], int | None] | None = getattr(body, "readinto", None)
        if readinto is None:
            while data := body.read(self._chunk_size):
                yield memoryview(data)
            return
        view = memoryview(bytearray(self._chunk_size))
        while count := readinto(view):
            yield view[:count]

    def _count_received(self, count: int) -> None:
        with self._counter_lock:
            self._bytes_received += count

    # ---- multipart helpers ---------------------------------------------------------------------

    def _load_upload(self, bucket: str, key: str, upload_id: str) -> UploadInfo:
        """The upload if it exists for this key and is open; caller holds the lock."""
        if _UPLOAD_ID_RE.fullmatch(upload_id) is None or (bucket, upload_id) in self._completing:
            raise NoSuchUploadError("the specified upload does not exist")
        upload = _upload_from_json(_read_json(self._upload_dir(bucket, upload_id) / _UPLOAD_META))
        if upload is None or upload.key != key:
            raise NoSuchUploadError("the specified upload does not exist")
        return upload

    def _reserve_shared_slot(
        self, bucket: str, upload_id: str, part_number: int, size_hint: int | None
    ) -> tuple[int, int] | None:
        """(offset, stride) for writing the part into the shared data file, or None for its own file.

        Caller holds the lock. A part already stored, or being streamed in there by another request,
        must not be overwritten in place: its recorded ETag would no longer describe the bytes.
        """
        if size_hint is None:
            return None
        stride = self._stride(bucket, upload_id, size_hint)
        if stride is None or size_hint > stride or part_number * stride > _MAX_SHARED_FILE_SIZE:
            return None
        writers = self._shared_writers.setdefault((bucket, upload_id), set())
        if part_number in writers or self._part_paths(bucket, upload_id, part_number)[1].exists():
            return None
        writers.add(part_number)
        return (part_number - 1) * stride, stride

    def _release_shared_slot(self, bucket: str, upload_id: str, part_number: int) -> None:
        writers = self._shared_writers.get((bucket, upload_id), set())
        writers.discard(part_number)
        if not writers:
            self._shared_writers.pop((bucket, upload_id), None)

    def _stride(self, bucket: str, upload_id: str, size_hint: int) -> int | None:
        """The upload's part stride, fixed by the first part of at least the minimum part size."""
        layout_path = self._upload_dir(bucket, upload_id) / _LAYOUT_META
        layout = _read_json(layout_path)
        if layout is not None:
            return int(layout["stride"])
        if size_hint < self._min_part_size:
            return None
        self._write_json(bucket, layout_path, {"stride": size_hint})
        return size_hint

    def _store_part_file(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: ByteSource,
        max_size: int,
        expected_md5: bytes | None,
    ) -> PartInfo:
        received = self._receive(bucket, body, max_size)
        try:
            _check_digest(received.md5, expected_md5)
            part = PartInfo(part_number, received.size, quote_etag(received.md5.hex()), self._clock(), received.crc64)
            with self._lock:
                # The upload may have been aborted or completed while the body streamed in.
                self._load_upload(bucket, key, upload_id)
                data_path, meta_path = self._part_paths(bucket, upload_id, part_number)
                os.replace(received.path, data_path)
                self._write_json(bucket, meta_path, {**asdict(part), "offset": None})
        finally:
            received.path.unlink(missing_ok=True)
        return part

    def _store_part_shared(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        offset: int,
        body: ByteSource,
        max_size: int,
        expected_md5: bytes | None,
    ) -> PartInfo:
        shared_path = self._upload_dir(bucket, upload_id) / _SHARED_DATA
        size, md5, crc64 = self._receive_at(shared_path, offset, body, max_size)
        _check_digest(md5, expected_md5)
        part = PartInfo(part_number, size, quote_etag(md5.hex()), self._clock(), crc64)
        with self._lock:
            self._load_upload(bucket, key, upload_id)
            meta_path = self._part_paths(bucket, upload_id, part_number)[1]
            self._write_json(bucket, meta_path, {**asdict(part), "offset": offset})
        return part

    def _read_parts(self, bucket: str, upload_id: str) -> list[_StoredPart]:
        parts = []
        for meta_path in self._upload_dir(bucket, upload_id).glob("part-*.json"):
            data = _read_json(meta_path)
            if data is not None:
                offset = data.pop("offset", None)
                parts.append(_StoredPart(PartInfo(**data), offset))
        return sorted(parts, key=lambda part: part.info.part_number)

    def _select_parts(self, requested: Sequence[tuple[int, str]], stored: Sequence[_StoredPart]) -> list[_StoredPart]:
        if not requested:
            raise InvalidPartError("at least one part must be specified")
        numbers = [number for number, _ in requested]
        if any(later <= earlier for earlier, later in itertools.pairwise(numbers)):
            raise InvalidPartOrderError("the list of parts was not in ascending order")
        by_number = {part.info.part_number: part for part in stored}
        chosen = []
        for number, etag in requested:
            part = by_number.get(number)
            if part is None or normalize_etag(part.info.etag) != normalize_etag(etag):
                raise InvalidPartError(f"part {number} could not be found or its ETag does not match")
            chosen.append(part)
        if any(part.info.size < self._min_part_size for part in chosen[:-1]):
            raise EntityTooSmallError("a part other than the last is smaller than the minimum part size")
        return chosen

    def _assemble_and_commit(
        self, upload: UploadInfo, parts: Sequence[_StoredPart], in_place: bool
    ) -> tuple[ObjectInfo, Path]:
        """Make the parts the object (slow copying outside the lock); returns the upload's trash dir."""
        upload_dir = self._upload_dir(upload.bucket, upload.upload_id)
        source = upload_dir / _SHARED_DATA if in_place else self._assemble(upload.bucket, upload_dir, parts)
        try:
            size = sum(part.info.size for part in parts)
            info = ObjectInfo(
                upload.bucket,
                upload.key,
                size,
                multipart_etag([part.info for part in parts]),
                upload.content_type,
                self._clock(),
                _crc64_of(source, size),  # COS reports it for an object completed from parts too
            )
            with self._lock:
                self._check_writable(upload.bucket, upload.key)  # sealed while the parts were assembled?
                if in_place:
                    os.truncate(source, info.size)  # drop parts uploaded but not listed
                self._commit_object(source, info)
                trash = self._move_to_trash(upload.bucket, upload_dir)
        finally:
            if not in_place:
                source.unlink(missing_ok=True)
        return info, trash

    def _assemble(self, bucket: str, upload_dir: Path, parts: Sequence[_StoredPart]) -> Path:
        fd, name = tempfile.mkstemp(dir=self._tmp_dir(bucket), prefix="assemble-")
        path = Path(name)
        try:
            with open(fd, "wb", buffering=0) as out:
                for part in parts:
                    self._append_part(upload_dir, part, out.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def _append_part(self, upload_dir: Path, part: _StoredPart, out: int) -> None:
        if part.offset is None:
            source = upload_dir / f"part-{part.info.part_number:05d}.data"
        else:
            source = upload_dir / _SHARED_DATA
        with open(source, "rb", buffering=0) as src:
            src.seek(part.offset or 0)
            _copy_fd(src.fileno(), out, part.info.size)

    # ---- paths and metadata --------------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> Path:
        if not is_valid_bucket(bucket):
            raise ValueError(f"invalid bucket name {bucket!r}")
        return self._root / bucket

    def _tmp_dir(self, bucket: str) -> Path:
        return self._bucket_dir(bucket) / "tmp"

    def _object_paths(self, bucket: str, key: str) -> tuple[Path, Path]:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        base = self._bucket_dir(bucket) / "objects" / digest[:2] / digest
        return base.with_suffix(".data"), base.with_suffix(".json")

    def _upload_dir(self, bucket: str, upload_id: str) -> Path:
        if _UPLOAD_ID_RE.fullmatch(upload_id) is None:
            raise ValueError(f"invalid upload id {upload_id!r}")
        return self._bucket_dir(bucket) / "uploads" / upload_id

    def _part_paths(self, bucket: str, upload_id: str, part_number: int) -> tuple[Path, Path]:
        base = self._upload_dir(bucket, upload_id) / f"part-{part_number:05d}"
        return base.with_suffix(".data"), base.with_suffix(".json")

    def _read_object_meta(self, bucket: str, key: str) -> ObjectInfo | None:
        data = _read_json(self._object_paths(bucket, key)[1])
        return None if data is None else ObjectInfo(**data)

    def _check_writable(self, bucket: str, key: str) -> None:
        """Refuse to replace a sealed object; caller holds the lock."""
        if self._sealed is not None and self._sealed(bucket, key):
            raise ObjectSealedError("the object is a committed file and can no longer be written")

    def _commit_object(self, data_source: Path, info: ObjectInfo) -> None:
        """Make `data_source` the object's bytes and record `info`; caller holds the lock and checked
        `_check_writable`."""
        data_path, meta_path = self._object_paths(info.bucket, info.key)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(data_source, data_path)
        self._write_json(info.bucket, meta_path, asdict(info))

    def _write_json(self, bucket: str, path: Path, data: dict[str, Any]) -> None:
        tmp_dir = self._tmp_dir(bucket)
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="meta-")
        try:
            with open(fd, "w", encoding="utf-8") as out:
                json.dump(data, out)
            os.replace(name, path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    def _move_to_trash(self, bucket: str, path: Path) -> Path:
        """Atomically take a directory out of view; the slow delete happens outside the lock."""
        trash = self._tmp_dir(bucket) / f"trash-{secrets.token_hex(8)}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, trash)
        return trash


def _check_digest(md5: bytes, expected_md5: bytes | None) -> None:
    if expected_md5 is not None and expected_md5 != md5:
        raise BadDigestError("the Content-MD5 you specified did not match what was received")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as src:
            data = json.load(src)
    except FileNotFoundError:
        return None
    return data if isinstance(data, dict) else None


def _upload_from_json(data: dict[str, Any] | None) -> UploadInfo | None:
    return None if data is None else UploadInfo(**data)
