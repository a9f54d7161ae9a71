"""Saved upload progress: one JSON file per upload, in the user's cache directory.

A checkpoint remembers the VOD session (vodSessionKey), each object's COS multipart upload id and the
parts known to be stored, so that a new process can continue where a paused, interrupted or killed
one stopped. It also remembers what the file looked like (path, size, mtime, a hash of a content
sample): a file that changed since is uploaded from scratch instead of being stitched together from
two versions. Writes are atomic (temporary file, fsync, rename), so a crash leaves the old or the new
checkpoint, never half of one. Files are private (0600): the session key lets a signature holder
continue the upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

log = logging.getLogger("vodupload")

VERSION = 1
SAMPLE_BYTES = 64 * 1024  # read at the head, the middle and the tail of the file


def default_directory() -> Path:
    return Path(platformdirs.user_cache_dir("vod-upload")) / "checkpoints"


@dataclass(frozen=True)
class FileIdentity:
    path: str  # absolute
    size: int
    mtime_ns: int
    sample_sha256: str

    def change_from(self, saved: FileIdentity) -> str | None:
        """How this file differs from the saved one, in words; None if it looks the same."""
        if self.size != saved.size:
            return f"its size changed ({saved.size} -> {self.size} bytes)"
        if self.sample_sha256 != saved.sample_sha256:
            return "its content changed"
        if self.mtime_ns != saved.mtime_ns:
            return "it was modified"
        return None


def identify(path: str | os.PathLike[str]) -> FileIdentity:
    resolved = Path(path).resolve()
    with open(resolved, "rb") as file:
        info = os.fstat(file.fileno())
        digest = hashlib.sha256(str(info.st_size).encode())
        for offset in sorted({0, max(0, info.st_size // 2 - SAMPLE_BYTES // 2), max(0, info.st_size - SAMPLE_BYTES)}):
            file.seek(offset)
            digest.update(file.read(SAMPLE_BYTES))
    return FileIdentity(str(resolved), info.st_size, info.st_mtime_ns, digest.hexdigest())


@dataclass(frozen=True)
class PartRecord:
    number: int
    size: int
    etag: str  # as COS returned it (quoted md5 hex)


@dataclass
class ObjectProgress:
    """One COS object of the upload (the video or the cover)."""

    role: str  # "video" or "cover"
    source: FileIdentity
    key: str  # COS object key
    part_size: int
    upload_id: str | None = None  # None: single PUT, or multipart not started yet
    parts: dict[int, PartRecord] = field(default_factory=dict)
    completed: bool = False

    @property
    def bytes_recorded(self) -> int:
        return self.source.size if self.completed else sum(part.size for part in self.parts.values())


@dataclass
class Checkpoint:
    name: str  # the file name stem in the checkpoint directory
    session_key: str = field(repr=False)
    created_at: float  # when VOD opened the session: the resume window counts from here
    bucket: str
    region: str
    objects: list[ObjectProgress]

    @property
    def uploaded(self) -> bool:
        return all(obj.completed for obj in self.objects)

    @property
    def bytes_recorded(self) -> int:
        return sum(obj.bytes_recorded for obj in self.objects)

    def object(self, role: str) -> ObjectProgress | None:
        return next((obj for obj in self.objects if obj.role == role), None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["version"] = VERSION
        for obj in data["objects"]:
            obj["parts"] = sorted(obj["parts"].values(), key=lambda part: part["number"])
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        if data.get("version") != VERSION:
            raise ValueError(f"unsupported checkpoint version {data.get('version')!r}")
        objects = [
            ObjectProgress(
                role=obj["role"], source=FileIdentity(**obj["source"]), key=obj["key"], part_size=obj["part_size"],
                upload_id=obj["upload_id"], completed=obj["completed"],
                parts={part["number"]: PartRecord(**part) for part in obj["parts"]},
            )
            for obj in data["objects"]
        ]
        return cls(name=data["name"], session_key=data["session_key"], created_at=float(data["created_at"]),
                   bucket=data["bucket"], region=data["region"], objects=objects)


def checkpoint_name(endpoint: str | None, video: str, cover: str | None) -> str:
    """Which checkpoint belongs to an upload: the same files to the same VOD (paths, not contents)."""
    material = "\0".join((endpoint or "vod", video, cover or ""))
    return hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()[:32]


class CheckpointStore:
    """Checkpoint files in one directory; safe to share between threads (writes are whole-file renames)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_directory()

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def load(self, name: str) -> Checkpoint | None:
        """The saved checkpoint, or None (none saved, or unreadable: such a file is not worth a crash)."""
        path = self.path(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            return Checkpoint.from_json(data)
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the unreadable checkpoint %s (%s)", path, type(exc).__name__)
            return None

    def save(self, checkpoint: Checkpoint) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        payload = json.dumps(checkpoint.to_json(), indent=1).encode("utf-8")
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{checkpoint.name}.", suffix=".tmp")  # 0600
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path(checkpoint.name))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._sync_directory()

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(name).unlink()
            self._sync_directory()

    def _sync_directory(self) -> None:
        # The rename (or unlink) itself must reach the disk, not just the file's bytes.
        with contextlib.suppress(OSError):
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
