"""Putting one file (the video or the cover) into COS: a single PUT, or a resumable multipart upload.

Multipart is driven part by part with the SDK's low-level calls, so that pausing and cancelling take
effect between parts and a resumed upload sends only what COS does not have. What COS has is read
from ListParts (the server is the truth; the checkpoint may lag behind a killed process): a listed
part is kept when its size is right and its ETag is the MD5 of the local bytes (taken from the
checkpoint when it recorded that ETag, else computed from the file).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vodupload.checkpoint import Checkpoint, CheckpointStore, ObjectProgress, PartRecord
from vodupload.cos import CredentialKeeper, Halted, RetryPolicy, call_cos
from vodupload.errors import SourceChanged, StorageError
from vodupload.progress import ProgressMeter

MIN_PART_SIZE = 1024 * 1024  # COS: every part but the last is at least 1 MiB
MAX_PART_SIZE = 5 * 1024**3
MAX_PARTS = 10000
SAVE_INTERVAL_SECONDS = 1.0  # part records are a hint (ListParts is the truth): no fsync per part


@dataclass(frozen=True)
class PartSpec:
    number: int
    offset: int
    size: int


def fit_part_size(file_size: int, wanted: int) -> int:
    """`wanted`, or the smallest whole number of MiB that keeps the file within COS's 10000 parts."""
    needed = -(-file_size // MAX_PARTS)
    if needed <= wanted:
        return wanted
    return -(-needed // MIN_PART_SIZE) * MIN_PART_SIZE


def plan_parts(size: int, part_size: int) -> list[PartSpec]:
    return [PartSpec(index + 1, offset, min(part_size, size - offset))
            for index, offset in enumerate(range(0, size, part_size))]


def _bare_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


def _read(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(offset)
        data = file.read(size)
    if len(data) != size:
        raise SourceChanged(f"{path} is shorter than when the upload started")
    return data


class Ledger:
    """The running upload's checkpoint: updated as parts finish (from worker threads) and saved."""

    def __init__(self, checkpoint: Checkpoint, store: CheckpointStore, meter: ProgressMeter,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.checkpoint = checkpoint
        self._store = store
        self._meter = meter
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._saved_at = monotonic()

    def set_upload(self, obj: ObjectProgress, upload_id: str | None, parts: dict[int, PartRecord]) -> None:
        with self._lock:
            obj.upload_id, obj.parts = upload_id, dict(parts)
            self._save()

    def add_part(self, obj: ObjectProgress, part: PartRecord) -> None:
        with self._lock:
            obj.parts[part.number] = part
            if self._monotonic() - self._saved_at >= SAVE_INTERVAL_SECONDS:
                self._save()
        self._meter.add(part.size)

    def complete(self, obj: ObjectProgress, *, counted: int) -> None:
        with self._lock:
            obj.completed, obj.upload_id, obj.parts = True, None, {}
            self._save()
        if counted:
            self._meter.add(counted)

    def flush(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        self._store.save(self.checkpoint)
        self._saved_at = self._monotonic()


@dataclass(frozen=True)
class TransferContext:
    """What every object transfer of one upload shares."""

    keeper: CredentialKeeper
    ledger: Ledger
    policy: RetryPolicy
    parallel: int
    halt: threading.Event  # set on pause, cancel, or a failure elsewhere

    def cos(self, operation: Callable[[Any], Any], what: str) -> Any:
        return call_cos(self.keeper, operation, what, self.policy, self.halt)


class ObjectTransfer:
    def __init__(self, obj: ObjectProgress, context: TransferContext) -> None:
        self.obj = obj
        self._ctx = context
        self._path = Path(obj.source.path)
        self._bucket = context.ledger.checkpoint.bucket
        self._parts = plan_parts(obj.source.size, obj.part_size)

    @property
    def multipart(self) -> bool:
        return self.obj.source.size > self.obj.part_size

    # -- resuming ----------------------------------------------------------------------------------

    def stored_bytes(self) -> int:
        """How much of this file COS already holds; brings the checkpoint in line with COS."""
        obj = self.obj
        if obj.completed:
            return obj.source.size
        if not self.multipart:
            return 0
        upload_id, listed = self._existing_upload()
        if upload_id is None and self._object_stored():  # completed, but the checkpoint did not hear of it
            self._ctx.ledger.complete(obj, counted=0)
            return obj.source.size
        kept = {spec.number: PartRecord(spec.number, spec.size, listed[spec.number].etag)
                for spec in self._parts
                if spec.number in listed and self._is_local_part(spec, listed[spec.number])}
        self._ctx.ledger.set_upload(obj, upload_id, kept)
        return sum(part.size for part in kept.values())

    def _existing_upload(self) -> tuple[str | None, dict[int, PartRecord]]:
        upload_id = self.obj.upload_id
        if upload_id is not None:
            try:
                return upload_id, self._list_parts(upload_id)
            except StorageError as exc:
                if exc.code != "NoSuchUpload":
                    raise
        # No upload id saved (killed right after creating it?) or it is gone: COS may still have one for
        # this key, and the key is this session's alone.
        listing = self._ctx.cos(lambda c: c.list_multipart_uploads(Bucket=self._bucket, Prefix=self.obj.key),
                                f"list the {self.obj.role}'s multipart uploads")
        ids = [upload["UploadId"] for upload in listing.get("Upload") or [] if upload.get("Key") == self.obj.key]
        if not ids:
            return None, {}
        return ids[-1], self._list_parts(ids[-1])

    def _list_parts(self, upload_id: str) -> dict[int, PartRecord]:
        parts: dict[int, PartRecord] = {}
        marker = "0"
        while True:
            page = self._ctx.cos(functools.partial(_list_page, bucket=self._bucket, key=self.obj.key,
                                                   upload_id=upload_id, marker=marker),
                                 f"list the {self.obj.role}'s uploaded parts")
            for item in page.get("Part") or []:
                number = int(item["PartNumber"])
                parts[number] = PartRecord(number, int(item["Size"]), str(item["ETag"]))
            if page.get("IsTruncated") != "true":
                return parts
            marker = str(page["NextPartNumberMarker"])

    def _is_local_part(self, spec: PartSpec, listed: PartRecord) -> bool:
        if listed.size != spec.size:
            return False
        recorded = self.obj.parts.get(spec.number)
        if recorded is not None and _bare_etag(recorded.etag) == _bare_etag(listed.etag):
            return True
        digest = hashlib.md5(_read(self._path, spec.offset, spec.size), usedforsecurity=False).hexdigest()
        return digest == _bare_etag(listed.etag)

    # -- uploading ---------------------------------------------------------------------------------

    def run(self) -> bool:
        """Upload what is missing; False if halted before the object was complete."""
        if self.obj.completed:
            return True
        if self._ctx.halt.is_set():
            return False
        if not self.multipart:
            return self._put_whole()
        if self.obj.upload_id is None:
            answer = self._ctx.cos(lambda c: c.create_multipart_upload(Bucket=self._bucket, Key=self.obj.key),
                                   f"start the {self.obj.role}'s multipart upload")
            self._ctx.ledger.set_upload(self.obj, str(answer["UploadId"]), {})
        missing = [spec for spec in self._parts if spec.number not in self.obj.parts]
        if missing and not self._send_parts(missing):
            return False
        if self._ctx.halt.is_set():
            # Paused or cancelled while the last parts were in flight: they are stored (and recorded),
            # but the object is not completed, so a cancel can still abort it and a resume completes it.
            return False
        self._check_source()
        self._complete()
        return True

    def _put_whole(self) -> bool:
        data = _read(self._path, 0, self.obj.source.size)
        md5 = hashlib.md5(data, usedforsecurity=False)
        try:
            answer = self._ctx.cos(lambda c: c.put_object(Bucket=self._bucket, Key=self.obj.key, Body=data,
                                                          ContentMD5=base64.b64encode(md5.digest()).decode()),
                                   f"upload the {self.obj.role}")
        except Halted:
            return False
        _check_etag(answer, md5.hexdigest(), f"the {self.obj.role}")
        self._ctx.ledger.complete(self.obj, counted=len(data))
        return True

    def _send_parts(self, missing: list[PartSpec]) -> bool:
        with ThreadPoolExecutor(max_workers=min(self._ctx.parallel, len(missing)),
                                thread_name_prefix=f"vodupload-{self.obj.role}") as pool:
            futures = [pool.submit(self._send_part, spec) for spec in missing]
            errors = [error for error in _errors(futures) if not isinstance(error, Halted)]
        if errors:
            raise errors[0]
        return all(spec.number in self.obj.parts for spec in missing)

    def _send_part(self, spec: PartSpec) -> None:
        if self._ctx.halt.is_set():
            return
        try:
            data = _read(self._path, spec.offset, spec.size)
            md5 = hashlib.md5(data, usedforsecurity=False)
            upload_id = self.obj.upload_id
            answer = self._ctx.cos(
                lambda c: c.upload_part(Bucket=self._bucket, Key=self.obj.key, Body=data, PartNumber=spec.number,
                                        UploadId=upload_id, ContentMD5=base64.b64encode(md5.digest()).decode()),
                f"upload part {spec.number} of the {self.obj.role}")
            etag = _check_etag(answer, md5.hexdigest(), f"part {spec.number}")
        except BaseException:
            self._ctx.halt.set()  # siblings stop starting new parts
            raise
        self._ctx.ledger.add_part(self.obj, PartRecord(spec.number, spec.size, etag))

    def _check_source(self) -> None:
        info = os.stat(self._path)
        if (info.st_size, info.st_mtime_ns) != (self.obj.source.size, self.obj.source.mtime_ns):
            raise SourceChanged(f"{self._path} changed during the upload; run the upload again to start over")

    def _complete(self) -> None:
        parts = [{"PartNumber": number, "ETag": self.obj.parts[number].etag} for number in sorted(self.obj.parts)]

        def complete(client: Any) -> Any:
            return client.complete_multipart_upload(Bucket=self._bucket, Key=self.obj.key,
                                                    UploadId=self.obj.upload_id, MultipartUpload={"Part": parts})

        try:
            self._ctx.cos(complete, f"complete the {self.obj.role}'s multipart upload")
        except StorageError as exc:
            # A retried complete whose first try succeeded (the answer was lost) finds no upload.
            if exc.code != "NoSuchUpload" or not self._object_stored():
                raise
        self._ctx.ledger.complete(self.obj, counted=0)

    def _object_stored(self) -> bool:
        try:
            head = self._ctx.cos(lambda c: c.head_object(Bucket=self._bucket, Key=self.obj.key),
                                 f"look up the {self.obj.role}")
        except StorageError as exc:
            if exc.status == 404:
                return False
            raise
        return int(head.get("Content-Length") or -1) == self.obj.source.size

    def abort(self) -> None:
        """Drop the multipart upload and every part COS holds for it (cancel)."""
        upload_id = self.obj.upload_id
        if upload_id is None or self.obj.completed:
            return
        try:
            self._ctx.cos(lambda c: c.abort_multipart_upload(Bucket=self._bucket, Key=self.obj.key,
                                                             UploadId=upload_id),
                          f"abort the {self.obj.role}'s multipart upload")
        except StorageError as exc:
            if exc.code != "NoSuchUpload":
                raise


def _list_page(client: Any, *, bucket: str, key: str, upload_id: str, marker: str) -> Any:
    return client.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker)


def _check_etag(answer: dict[str, Any], md5_hex: str, what: str) -> str:
    etag = str(answer.get("ETag") or answer.get("Etag") or "")
    if _bare_etag(etag) != md5_hex:
        raise StorageError(f"COS stored {what} with ETag {etag or 'missing'}, not the MD5 of the bytes sent")
    return etag


def _errors(futures: list[Future[None]]) -> Iterator[BaseException]:
    for future in futures:
        error = future.exception()
        if error is not None:
            yield error
