"""Saved upload sessions: one JSON file per upload, in the user's cache directory.

Like vod-js-sdk-v6, which keeps the vodSessionKey in localStorage under a name made of the files' names and
sizes (src/uploader.ts, `sessionName`/`setStorage`), a checkpoint lets a later run, in this process or
another, continue a paused, interrupted or killed upload. It keeps only what COS cannot tell: the session key,
each object's multipart uploadId or that it is stored whole (VOD's credentials may not be allowed to ask COS:
a stored video is not sent again for that), what the files looked like (path, size, mtime, a hash of a content
sample: a changed file starts over instead of being stitched together from two versions), when the session
began, and whether its commit was sent. Which parts are stored is asked from COS when resuming, and where the
objects go comes back with the session's fresh credentials. Writes are atomic (temporary file, fsync, rename).
Files are private (0600): the session key lets a signature holder continue the upload. A run holds its
checkpoint's lock file (`<name>.lock`, filelock's: flock, or Windows' own) while it uses the checkpoint, so
that a second run of the same files at the same time is refused instead of replacing or deleting the first
one's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import filelock
import platformdirs

from vodupload.errors import CheckpointUnavailable, UploadInProgress

log = logging.getLogger("vodupload")

VERSION = 2
READABLE = {1, 2}  # version 1 also listed the parts and the storage: that is now asked from COS
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


@dataclass
class SavedObject:
    """One COS object of the upload (the video or the cover)."""

    role: str  # "video" or "cover"
    source: FileIdentity
    upload_id: str | None = None  # its multipart upload while one is open; None: single PUT, not started, completed
    part_size: int | None = None  # that upload's part size: a resume sends the rest in the same parts
    stored: bool = False  # COS holds it whole (its PUT or its multipart upload's complete answered)


@dataclass
class Checkpoint:
    name: str  # the file name stem in the checkpoint directory
    session_key: str = field(repr=False)
    created_at: float  # when VOD opened the session: the resume window counts from here
    objects: list[SavedObject]
    # CommitUploadUGC was sent (every object stored): a run stopped before its answer leaves this set, and the
    # next run asks for the same commit again (which VOD answers with the same file) instead of starting over.
    committing: bool = False
    # VOD refused that commit at its first try (none before it unanswered): never committed. The next run asks once
    # more (the refusal may be the signature's); a cancel discards it without asking.
    commit_refused: bool = False
    # What the upload asked for (the signature request, storage region, names): a run that asks for something
    # else starts over. None: saved by a version that did not keep it (then the saved upload continues).
    asked: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "version": VERSION}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        if data.get("version") not in READABLE:
            raise ValueError(f"unsupported checkpoint version {data.get('version')!r}")
        objects = [
            SavedObject(
                obj["role"],
                FileIdentity(**obj["source"]),
                obj["upload_id"],
                obj.get("part_size"),
                obj.get("stored") is True,
            )
            for obj in data["objects"]
        ]
        return cls(
            name=data["name"],
            session_key=data["session_key"],
            created_at=float(data["created_at"]),
            objects=objects,
            committing=data.get("committing") is True,
            commit_refused=data.get("commit_refused") is True,
            asked=data["asked"] if isinstance(data.get("asked"), dict) else None,
        )


def checkpoint_name(endpoint: str | None, video: str, cover: str | None, owner: str = "") -> str:
    """Which checkpoint belongs to an upload: the same files (paths, not contents) to the same VOD, for the
    same owner (`Uploader`'s: another user on this machine must not resume, and so own, someone's upload)."""
    material = "\0".join((endpoint or "vod", video, cover or "", *([owner] if owner else [])))  # "": as before owners
    return hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()[:32]


class CheckpointStore:
    """Checkpoint files in one directory; safe to share between threads (writes are whole-file renames)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_directory()

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def load(self, name: str, on_unreadable: Callable[[str], None] | None = None) -> Checkpoint | None:
        """The saved checkpoint, or None (none saved, or unreadable: such a file is not worth a crash). A run
        passes `on_unreadable`: an unreadable one (damaged, or a newer version's) is then set aside, not
        overwritten by the run's own, and `on_unreadable` hears what happened."""
        path = self.path(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            return Checkpoint.from_json(data)
        except FileNotFoundError:
            return None
        except OSError as exc:  # the directory is a file, say, or cannot be read
            raise CheckpointUnavailable(f"cannot read the saved uploads in {self.directory}: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError, RecursionError) as exc:  # Recursion: JSON nested past its depth
            log.warning("ignoring the unreadable checkpoint %s (%s)", path, type(exc).__name__)
            if on_unreadable is not None:
                aside = path.with_name(path.name + ".unreadable")
                try:
                    os.replace(path, aside)
                except OSError as moved:
                    raise CheckpointUnavailable(f"cannot set aside {path}: {moved.strerror}") from None
                on_unreadable(
                    f"the saved upload {path} cannot be read ({type(exc).__name__}: {exc}), so it cannot be "
                    f"continued; set aside as {aside.name} (parts it sent stay in VOD's storage until VOD removes them)"
                )
            return None

    def covers_saved_with(self, video: str) -> list[str]:
        """The covers of the saved uploads of `video` (an absolute path): the names to try when only the video
        is known (its checkpoint's name is made of both)."""
        try:
            names = sorted(p.stem for p in self.directory.glob("*.json"))
        except OSError:
            return []  # no directory: nothing saved (load says why, where it matters)
        found = (self._readable(name) for name in names)
        return [
            obj.source.path
            for checkpoint in found
            if checkpoint is not None and any(o.role == "video" and o.source.path == video for o in checkpoint.objects)
            for obj in checkpoint.objects
            if obj.role == "cover"
        ]

    def _readable(self, name: str) -> Checkpoint | None:
        """The checkpoint, or None also when it cannot be read: another OS user's (0600) in a shared directory."""
        try:
            return self.load(name)
        except CheckpointUnavailable:
            return None

    def lock_made(self, name: str) -> bool:
        """Whether a run ever held (or holds) the checkpoint `name`: its lock file is there."""
        return (self.directory / f"{name}.lock").exists()

    @contextlib.contextmanager
    def claimed(self, name: str) -> Iterator[None]:
        """Hold the checkpoint `name` for one run. UploadInProgress when another run holds it. The lock file
        stays (empty, one per set of files uploaded): removing it would let two runs lock different files of
        one name."""
        if self.directory.exists() and not self.directory.is_dir():  # in the words load() uses for it
            raise CheckpointUnavailable(f"cannot read the saved uploads in {self.directory}: Not a directory")
        lock = filelock.FileLock(self.directory / f"{name}.lock", mode=0o600, thread_local=False)
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock.acquire(timeout=0)
        except filelock.Timeout:
            raise UploadInProgress(
                "these files are being uploaded by another run (another vod-upload, or another task) right now; "
                "wait for it to finish or stop it, then try again"
            ) from None
        except OSError as exc:
            raise CheckpointUnavailable(f"cannot write the saved uploads in {self.directory}: {exc.strerror}") from None
        try:
            yield
        finally:
            lock.release()

    def save(self, checkpoint: Checkpoint) -> None:
        try:
            self._write(checkpoint)
        except OSError as exc:
            raise CheckpointUnavailable(f"cannot write the saved uploads in {self.directory}: {exc.strerror}") from None

    def _write(self, checkpoint: Checkpoint) -> None:
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
        try:
            self.path(name).unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise CheckpointUnavailable(f"cannot remove {self.path(name)}: {exc.strerror}") from None
        self._sync_directory()

    def _sync_directory(self) -> None:
        # The rename (or unlink) itself must reach the disk, not just the file's bytes.
        with contextlib.suppress(OSError):
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
