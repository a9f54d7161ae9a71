"""Upload sessions: apply (new, resume, cover change) and commit, shared by both upload APIs.

The client API (signatures, upload_api.py) and the server API (TC3, cloud_api.py) differ only in how
they authenticate and spell fields; the session rules live here once and fail with UploadError,
which each API maps to its own error codes.

A commit publishes the session's objects for good: it checks them and records the file in one step
(ObjectStore.publish), after which the store refuses to replace them and the session's temporary
credentials are revoked.
"""

from __future__ import annotations

import enum
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

from vodemu.credentials import CredentialRegistry, TempCredential
from vodemu.delivery import EventSignal
from vodemu.events import COVER_TYPES, MEDIA_TYPES, UrlFor, upload_events
from vodemu.objects import ObjectInfo, ObjectStore, normalize_etag
from vodemu.settings import EmulatorSettings
from vodemu.state import EmulatorState, FileSpec, MediaFile, UploadOptions, UploadSession

_TYPE_RE = re.compile(r"^[A-Za-z0-9]{1,16}$")
_MAX_NAME = 1000
_FORBIDDEN_NAME_CHARS = set('\\/:*?"<>|') | {chr(c) for c in range(32)}


class UploadErrorKind(enum.Enum):
    BAD_FIELD = "bad_field"
    STORAGE_REGION = "storage_region"
    MEDIA_TYPE = "media_type"
    COVER_TYPE = "cover_type"
    SESSION_NOT_FOUND = "session_not_found"
    SESSION_EXPIRED = "session_expired"
    SESSION_COMMITTED = "session_committed"
    FILE_NOT_FOUND = "file_not_found"
    NOT_UPLOADED = "not_uploaded"
    SIZE_MISMATCH = "size_mismatch"


class UploadError(Exception):
    def __init__(self, kind: UploadErrorKind, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.field = field


@dataclass(frozen=True)
class NewFile:
    """A file the uploader announces: name without extension, type = extension, size in bytes (if known)."""

    name: str
    type: str
    size: int | None


@dataclass(frozen=True)
class Applied:
    session: UploadSession
    credential: TempCredential


@dataclass(frozen=True)
class Committed:
    media: MediaFile
    session: UploadSession
    first: bool  # False when this commit repeated an earlier one


def _check_file(file: NewFile, role: str, allowed_types: frozenset[str], kind: UploadErrorKind) -> NewFile:
    if len(file.name) > _MAX_NAME or _FORBIDDEN_NAME_CHARS & set(file.name):
        message = f'{role}Name: at most {_MAX_NAME} characters, none of \\ / : * ? " < > | or control characters'
        raise UploadError(UploadErrorKind.BAD_FIELD, message, field=f"{role}Name")
    if not _TYPE_RE.match(file.type) or file.type.lower() not in allowed_types:
        raise UploadError(kind, f"{role}Type {file.type!r} is not a supported type", field=f"{role}Type")
    if file.size is not None and file.size < 0:
        raise UploadError(UploadErrorKind.BAD_FIELD, f"{role}Size must not be negative", field=f"{role}Size")
    return replace(file, type=file.type.lower())


def _specs(session: UploadSession) -> list[FileSpec]:
    return [spec for spec in (session.video, session.cover) if spec is not None]


def _keys(session: UploadSession) -> list[str]:
    return [spec.key for spec in _specs(session)]


def _uploaded_size(spec: FileSpec, info: ObjectInfo | None) -> int:
    if info is None:
        raise UploadError(UploadErrorKind.NOT_UPLOADED, f"/{spec.key} has not been uploaded to COS yet")
    if spec.size is not None and info.size != spec.size:
        raise UploadError(
            UploadErrorKind.SIZE_MISMATCH,
            f"/{spec.key} has {info.size} bytes but {spec.size} were applied for",
        )
    return info.size


def _already_committed() -> UploadError:
    return UploadError(UploadErrorKind.SESSION_COMMITTED, "vodSessionKey: this upload was committed already")


class UploadService:
    def __init__(
        self,
        settings: EmulatorSettings,
        state: EmulatorState,
        store: ObjectStore,
        credentials: CredentialRegistry,
        signal: EventSignal,
        clock: Callable[[], float],
        url_for: UrlFor,
    ) -> None:
        self._settings = settings
        self._state = state
        self._store = store
        self._credentials = credentials
        self._signal = signal
        self._clock = clock
        self.url_for = url_for  # (bucket, key) -> the URL the emulator serves a published object at

    # -- apply -------------------------------------------------------------------------------

    def new_upload(self, options: UploadOptions, video: NewFile, cover: NewFile | None = None) -> Applied:
        self._check_region(options.storage_region)
        video = _check_file(video, "video", MEDIA_TYPES, UploadErrorKind.MEDIA_TYPE)
        cover = _check_file(cover, "cover", COVER_TYPES, UploadErrorKind.COVER_TYPE) if cover else None
        folder = self._new_folder()
        session = UploadSession(
            session_key=self._new_session_key(),
            created_at=self._clock(),
            bucket=self._settings.bucket(options.storage_region),
            options=options,
            video=FileSpec(video.name, video.type, f"{folder}/f0.{video.type}", video.size),
            cover=FileSpec(cover.name, cover.type, f"{folder}/cover.{cover.type}", cover.size) if cover else None,
        )
        self._state.add_session(session)
        return Applied(session, self._issue(session))

    def change_cover(self, options: UploadOptions, file_id: str, cover: NewFile) -> Applied:
        media = self._state.get_media(file_id)
        if media is None:
            raise UploadError(UploadErrorKind.FILE_NOT_FOUND, f"fileId {file_id} does not exist", field="fileId")
        cover = _check_file(cover, "cover", COVER_TYPES, UploadErrorKind.COVER_TYPE)
        # The cover joins the file's own bucket and region, whatever the new signature says.
        session = UploadSession(
            session_key=self._new_session_key(),
            created_at=self._clock(),
            bucket=media.bucket,
            options=replace(options, storage_region=media.options.storage_region),
            video=None,
            cover=FileSpec(cover.name, cover.type, f"{self._new_folder()}/cover.{cover.type}", cover.size),
            target_file_id=file_id,
        )
        self._state.add_session(session)
        return Applied(session, self._issue(session))

    def resume(self, session_key: str) -> Applied:
        """Same session, same paths, fresh temporary credentials (how the client SDKs resume)."""
        session = self._live_session(session_key)
        if session.file_id is not None:
            raise _already_committed()
        credential = self._issue(session)
        # A commit that ran between the check above and the issue revoked the credentials it knew of,
        # which may not have included this one.
        if self._committed_file_id(session_key) is not None:
            self._credentials.revoke(session.bucket, _keys(session))
            raise _already_committed()
        return Applied(session, credential)

    # -- commit ------------------------------------------------------------------------------

    def commit(self, session_key: str) -> Committed:
        session = self._state.get_session(session_key)
        if session is not None and session.file_id is not None:
            return self._repeated(session, session.file_id)  # idempotent, even after the resume window
        session = self._live_session(session_key)
        now = self._clock()

        def check_and_record(objects: dict[str, ObjectInfo | None]) -> tuple[MediaFile, bool, str]:
            # Runs while no write can replace the objects: what is checked here is what gets published.
            sizes = {spec.key: _uploaded_size(spec, objects[spec.key]) for spec in _specs(session)}
            media = self._committed_media(session, sizes, now)
            config = self._state.get_event_config()
            events = [] if session.target_file_id else upload_events(media, config, self.url_for)
            return media, bool(events), self._state.commit_session(session_key, media, events, now)

        media, queued, winner = self._store.publish(session.bucket, _keys(session), check_and_record)
        # The objects are sealed now; the credentials handed out to write them have no use left.
        self._credentials.revoke(session.bucket, _keys(session))
        if winner != media.file_id:
            return self._repeated(session, winner)  # a concurrent commit got there first
        if queued:
            self._signal.notify()
        return Committed(media, replace(session, file_id=winner), first=True)

    def verify_content(self, bucket: str, key: str) -> str:
        """What VOD returns as `verify_content`: here, the object's MD5 ETag (a content fingerprint)."""
        info = self._store.stat(bucket, key)
        return normalize_etag(info.etag) if info else ""

    # -- helpers -----------------------------------------------------------------------------

    def _committed_media(self, session: UploadSession, sizes: dict[str, int], now: float) -> MediaFile:
        if session.target_file_id is not None:
            existing = self._state.get_media(session.target_file_id)
            if existing is None or session.cover is None:
                raise UploadError(UploadErrorKind.FILE_NOT_FOUND, f"fileId {session.target_file_id} no longer exists")
            return replace(existing, cover_key=session.cover.key, updated_at=now)
        assert session.video is not None  # every non-cover session has a video
        options = session.options
        return MediaFile(
            file_id=self._new_file_id(),
            name=session.video.name,
            type=session.video.type,
            bucket=session.bucket,
            media_key=session.video.key,
            size=sizes[session.video.key],
            options=options,
            created_at=now,
            updated_at=now,
            cover_key=session.cover.key if session.cover else None,
            procedure_task_id=self._new_task_id() if options.procedure else None,
        )

    def _repeated(self, session: UploadSession, file_id: str) -> Committed:
        media = self._state.get_media(file_id)
        if media is None:  # deleted since (DeleteMedia), or the state file edited by hand
            raise UploadError(UploadErrorKind.FILE_NOT_FOUND, f"fileId {file_id} no longer exists")
        return Committed(media, replace(session, file_id=file_id), first=False)

    def _live_session(self, session_key: str) -> UploadSession:
        session = self._state.get_session(session_key) if session_key else None
        if session is None:
            raise UploadError(UploadErrorKind.SESSION_NOT_FOUND, "vodSessionKey: no such upload session")
        if self._clock() - session.created_at >= self._settings.session_ttl_seconds:
            raise UploadError(
                UploadErrorKind.SESSION_EXPIRED,
                f"vodSessionKey: the session is older than {self._settings.session_ttl_seconds} s; start a new upload",
            )
        return session

    def _committed_file_id(self, session_key: str) -> str | None:
        session = self._state.get_session(session_key)
        return None if session is None else session.file_id

    def _check_region(self, region: str) -> None:
        if region not in self._settings.regions:
            raise UploadError(
                UploadErrorKind.STORAGE_REGION,
                f"storageRegion {region!r} is not enabled (enabled: {', '.join(self._settings.regions)})",
                field="storageRegion",
            )

    def _issue(self, session: UploadSession) -> TempCredential:
        return self._credentials.issue(
            session.bucket, _keys(session), self._settings.credential_ttl_seconds, session.options.storage_region
        )

    def _new_folder(self) -> str:
        return f"{self._settings.vod_app_id}/{secrets.token_hex(12)}"

    def _new_session_key(self) -> str:
        return secrets.token_urlsafe(48)

    def _new_file_id(self) -> str:
        while True:  # 19 digits, like VOD's FileIds; collisions are astronomically rare but cheap to rule out
            file_id = str(10**18 + secrets.randbelow(9 * 10**18))
            if not self._state.file_id_exists(file_id):
                return file_id

    def _new_task_id(self) -> str:
        return f"{self._settings.vod_app_id}-procedurev2-{secrets.token_hex(16)}"
