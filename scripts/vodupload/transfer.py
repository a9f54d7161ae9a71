"""Putting one file (the video or the cover) into COS: a single PUT, or a multipart upload sent part by
part with the SDK's calls, so that a pause or cancel takes effect between parts.

Resuming is the SDK's own resume check (`CosS3Client.upload_file`, qcloud_cos/cos_client.py): the parts
kept are those ListParts reports for the saved uploadId, provided every listed part has the size and the
MD5 ETag of the local bytes (`_check_all_upload_parts`); otherwise a new multipart upload replaces it.
Nothing is saved per part: COS is the record. The uploadId is saved as soon as COS gives it, before any
part is sent (the SDK, which saves nothing, looks it up with ListMultipartUploads instead); that an object
is stored whole is saved once COS says so, since the credentials may not be allowed to ask it later.

Every part (and a whole object sent in one PUT) is checked once stored: COS answers with the CRC64 of what
it stored, which must be that of the bytes sent (`check_stored`); if not, the part is sent again.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastcrc import crc64
from qcloud_cos.cos_exception import CosClientError

from vodupload.checkpoint import SavedObject
from vodupload.cos import RetryPolicy, call_cos
from vodupload.credentials import SessionCredentials
from vodupload.errors import SourceChanged, StorageError
from vodupload.halting import Halted
from vodupload.progress import ProgressMeter

T = TypeVar("T")

MIN_PART_SIZE = 1024 * 1024  # COS: every part but the last is at least 1 MiB
MAX_PART_SIZE = 5 * 1024**3
MAX_PARTS = 10000
CRC64_HEADER = "x-cos-hash-crc64ecma"


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
    return [
        PartSpec(index + 1, offset, min(part_size, size - offset))
        for index, offset in enumerate(range(0, size, part_size))
    ]


def _headers(answer: Mapping[str, Any]) -> dict[str, str]:
    return {name.lower(): str(value) for name, value in answer.items()}


def _reported(headers: Mapping[str, str]) -> tuple[str, str]:
    """What COS says of the bytes it stored: ("CRC64", decimal), else ("MD5", its ETag's hex).

    COS reports the CRC64 (ECMA-182, the xz variant) of every part and object it stores, for clients to
    compare with their own ("CRC64 Check", https://www.tencentcloud.com/document/product/436/43320). That
    costs ~1/20 of the MD5 a Content-MD5 header needs. Without it, the ETag: the MD5 of a part or of an
    object PUT whole (not of an object completed from parts, whose ETag ends in "-<parts>")."""
    reported = headers.get(CRC64_HEADER)
    if reported is not None:
        return "CRC64", reported.strip()
    return "MD5", headers.get("etag", "").strip().strip('"').lower()


def _digest(kind: str, chunks: Iterable[bytes]) -> str:
    if kind == "CRC64":
        value = 0
        for chunk in chunks:
            value = crc64.xz(chunk, value)
        return str(value)
    md5 = hashlib.md5(usedforsecurity=False)
    for chunk in chunks:
        md5.update(chunk)
    return md5.hexdigest()


def check_stored(answer: Mapping[str, Any], data: bytes) -> str:
    """The ETag COS answered for storing `data`, once what it stored is known to be `data` (`_reported`).
    A mismatch raises CosClientError, a failure `call_cos` retries: the part is sent again, replacing the
    one stored."""
    headers = _headers(answer)
    kind, stored = _reported(headers)
    sent = _digest(kind, [data])
    if stored != sent:
        raise CosClientError(f"COS stored other bytes than were sent ({kind} {stored or 'missing'}, sent {sent})")
    return headers.get("etag", "")


def _file_chunks(path: Path, size: int = 8 * 1024 * 1024) -> Iterator[bytes]:
    with open(path, "rb") as file:
        while chunk := file.read(size):
            yield chunk


def _read(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(offset)
        data = file.read(size)
    if len(data) != size:
        raise SourceChanged(f"{path} is shorter than when the upload started")
    return data


@dataclass(frozen=True)
class TransferContext:
    """What every object transfer of one upload shares."""

    client: Any  # qcloud_cos.CosS3Client signing with `credentials`
    credentials: SessionCredentials
    policy: RetryPolicy
    parallel: int
    halt: threading.Event  # set on pause, cancel, or a failure elsewhere
    meter: ProgressMeter
    save: Callable[[], None]  # writes the checkpoint (an uploadId changed)

    def cos(
        self, operation: Callable[[Any], T], what: str, *, halt: threading.Event | None = None, renew: bool = True
    ) -> T:
        halt = self.halt if halt is None else halt
        return call_cos(self.credentials, lambda: operation(self.client), what, self.policy, halt, renew=renew)


class ObjectTransfer:
    def __init__(self, obj: SavedObject, key: str, part_size: int, context: TransferContext) -> None:
        self.obj = obj
        self._key = key
        self._part_size = part_size
        self._ctx = context
        self._path = Path(obj.source.path)
        self._bucket = context.credentials.applied.bucket
        self._parts = plan_parts(obj.source.size, part_size)
        self._etags: dict[int, str] = {}  # the parts COS holds for obj.upload_id
        self._lock = threading.Lock()
        self.done = False  # the object is stored in COS, complete

    @property
    def multipart(self) -> bool:
        return self.obj.source.size > self._part_size

    # -- resuming ----------------------------------------------------------------------------------

    def resume(self) -> int:
        """Learn from COS what a saved upload already stored; returns how many bytes of this file."""
        if self.obj.stored:
            self.done = True
            return self.obj.source.size
        upload_id = self.obj.upload_id
        parts = self._stored_parts(upload_id) if upload_id is not None else None
        if parts is not None:
            self._etags = parts
            return sum(spec.size for spec in self._parts if spec.number in parts)
        if upload_id is not None:
            self.obj.upload_id = None
            self._ctx.save()
        # Stored by a run killed before it could save so: COS is asked (if it will not say: sent again, the same bytes)
        self.done = self._object_stored() is True
        return self.obj.source.size if self.done else 0

    def _stored_parts(self, upload_id: str) -> dict[int, str] | None:
        """The parts COS holds for the upload (number -> ETag) if every listed part matches the file; None
        if COS no longer has the upload (completed or aborted), or if they do not match (another part
        size?): then it is aborted, and this object starts anew."""

        def check(client: Any) -> dict[int, str] | None:
            found: dict[int, str] = {}
            matches = client._check_all_upload_parts(
                self._bucket,
                self._key,
                upload_id,
                str(self._path),
                len(self._parts),
                self._part_size,
                self._parts[-1].size,
                found,
            )
            return found if matches else None

        try:
            parts = self._ctx.cos(check, f"list the {self.obj.role}'s uploaded parts")
        except StorageError as exc:
            if exc.code != "NoSuchUpload":
                raise
            return None
        if parts is None:
            self.abort(upload_id)
        return parts

    # -- uploading ---------------------------------------------------------------------------------

    def run(self) -> bool:
        """Upload what is missing; False if halted before the object was complete."""
        if self.done:
            return True
        if self._ctx.halt.is_set():
            return False
        if not self.multipart:
            return self._put_whole()
        if self.obj.upload_id is None:
            answer = self._ctx.cos(
                lambda c: c.create_multipart_upload(Bucket=self._bucket, Key=self._key),
                f"start the {self.obj.role}'s multipart upload",
            )
            self.obj.upload_id, self.obj.part_size, self._etags = str(answer["UploadId"]), self._part_size, {}
            self._ctx.save()
        missing = [spec for spec in self._parts if spec.number not in self._etags]
        if missing and not self._send_parts(missing):
            return False
        if self._ctx.halt.is_set():
            # Paused or cancelled while the last parts were in flight: they are stored, but the object is
            # not completed, so a cancel can still abort it and a resume completes it.
            return False
        self._check_source()
        self._complete()
        return True

    def _put_whole(self) -> bool:
        data = _read(self._path, 0, self.obj.source.size)
        self._check_source()  # one read: what it got is the file as identified, unless it changed since
        try:
            self._ctx.cos(
                lambda c: check_stored(c.put_object(Bucket=self._bucket, Key=self._key, Body=data), data),
                f"upload the {self.obj.role}",
            )
        except Halted:
            return False
        self._stored()
        self._ctx.meter.add(len(data))
        return True

    def _send_parts(self, missing: list[PartSpec]) -> bool:
        with ThreadPoolExecutor(
            max_workers=min(self._ctx.parallel, len(missing)), thread_name_prefix=f"vodupload-{self.obj.role}"
        ) as pool:
            # Each part in the task's context: a pause (halting()) also ends the waits of its threads, a credential
            # renewal's wait to ask the signature endpoint again, say
            futures = [pool.submit(contextvars.copy_context().run, self._send_part, spec) for spec in missing]
            errors = [error for error in _errors(futures) if not isinstance(error, Halted)]
        if errors:
            raise errors[0]
        return all(spec.number in self._etags for spec in missing)

    def _send_part(self, spec: PartSpec) -> None:
        if self._ctx.halt.is_set():
            return
        try:
            data = _read(self._path, spec.offset, spec.size)
            self._check_source()  # each part: a file still being written stops the upload now, not after all of it
            upload_id = self.obj.upload_id
            etag = self._ctx.cos(
                lambda c: check_stored(
                    c.upload_part(
                        Bucket=self._bucket, Key=self._key, Body=data, PartNumber=spec.number, UploadId=upload_id
                    ),
                    data,
                ),
                f"upload part {spec.number} of the {self.obj.role}",
            )
        except BaseException:
            self._ctx.halt.set()  # siblings stop starting new parts
            raise
        with self._lock:
            self._etags[spec.number] = etag
        self._ctx.meter.add(spec.size)

    def _check_source(self) -> None:
        info = os.stat(self._path)
        if (info.st_size, info.st_mtime_ns) != (self.obj.source.size, self.obj.source.mtime_ns):
            raise SourceChanged(f"{self._path} changed during the upload; run the upload again to start over")

    def _complete(self) -> None:
        parts = [{"PartNumber": number, "ETag": self._etags[number]} for number in sorted(self._etags)]

        def complete(client: Any) -> Any:
            return client.complete_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self.obj.upload_id, MultipartUpload={"Part": parts}
            )

        try:
            self._ctx.cos(complete, f"complete the {self.obj.role}'s multipart upload")
        except StorageError as exc:
            # A retried complete whose first try succeeded (the answer was lost) finds no upload.
            if exc.code != "NoSuchUpload" or self._object_stored() is False:
                raise
        self.obj.upload_id = None  # nothing left to abort, or to resume
        self._stored()

    def _stored(self) -> None:
        self.done = self.obj.stored = True
        self._ctx.save()

    def _object_stored(self) -> bool | None:
        """Whether COS holds the whole object, with the file's bytes; None when these credentials may not ask
        (VOD's may only write, it seems: its policy is not published): then CommitUploadUGC, which checks
        it, will tell. Its bytes are checked as a PUT's are (a run stopped after COS stored a PUT changed on
        the way, before it was sent again, leaves the object at its size), unless COS gives no CRC64 of an
        object completed from parts: those parts were checked as they were sent."""
        try:
            # A 403 is the answer expected of credentials that may only write: not one to renew them for
            head = self._ctx.cos(
                lambda c: c.head_object(Bucket=self._bucket, Key=self._key), f"look up the {self.obj.role}", renew=False
            )
        except StorageError as exc:
            if exc.status in (404, 403):
                return None if exc.status == 403 else False
            raise
        if int(head.get("Content-Length") or -1) != self.obj.source.size:
            return False
        kind, stored = _reported(_headers(head))
        if kind == "MD5" and "-" in stored:
            return True
        return stored == _digest(kind, _file_chunks(self._path))

    def abort(self, upload_id: str | None = None) -> None:
        """Drop a multipart upload (by default this object's) and every part COS holds for it."""
        upload_id = upload_id or self.obj.upload_id
        if upload_id is None:
            return
        try:
            self._ctx.cos(
                lambda c: c.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=upload_id),
                f"abort the {self.obj.role}'s multipart upload",
                halt=threading.Event(),  # a cancel's clean-up: retried to the end, though the cancel halted the task
            )
        except StorageError as exc:
            if exc.code != "NoSuchUpload":
                raise


def _errors(futures: list[Future[None]]) -> Iterator[BaseException]:
    for future in futures:
        error = future.exception()
        if error is not None:
            yield error
