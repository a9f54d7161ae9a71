"""Resumable client uploads to Tencent Cloud VOD, the Python counterpart of vod-js-sdk-v6.

from vodupload import SignatureClient, Uploader

with SignatureClient("https://api.example.com/signature", token) as signatures, Uploader(signatures) as uploader:
    result = uploader.upload("clip.mp4", cover="clip.jpg").run()
print(result.file_id, result.video_url)
"""

import logging

from vodupload.checkpoint import Checkpoint, CheckpointStore, FileIdentity, SavedObject, default_directory, identify
from vodupload.credentials import SessionCredentials
from vodupload.errors import (
    AlreadyCommitted,
    AuthenticationFailed,
    CheckpointUnavailable,
    GatewayRefusal,
    MalformedToken,
    SignatureError,
    SignatureRefused,
    SignatureUnavailable,
    SourceChanged,
    StorageError,
    UploadCancelled,
    UploadInProgress,
    UploadPaused,
    VodApiError,
    VodUnavailable,
    VodUploadError,
)
from vodupload.notices import Notice, NoticeKind
from vodupload.progress import Progress
from vodupload.signatures import Signature, SignatureClient, SignatureRequest
from vodupload.status import SETTLED, StatusClient, StatusUnavailable
from vodupload.uploader import (
    CancelOutcome,
    Uploader,
    UploadOptions,
    UploadResult,
    UploadState,
    UploadTask,
)
from vodupload.vod_api import DEFAULT_HOSTS, Applied, Committed, MediaInfo, TempCredentials, VodClient

# A library logs, the application decides where it goes (no "last resort" lines on stderr).
logging.getLogger("vodupload").addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_HOSTS",
    "SETTLED",
    "AlreadyCommitted",
    "Applied",
    "AuthenticationFailed",
    "CancelOutcome",
    "Checkpoint",
    "CheckpointStore",
    "CheckpointUnavailable",
    "Committed",
    "FileIdentity",
    "GatewayRefusal",
    "MalformedToken",
    "MediaInfo",
    "Notice",
    "NoticeKind",
    "Progress",
    "SavedObject",
    "SessionCredentials",
    "Signature",
    "SignatureClient",
    "SignatureError",
    "SignatureRefused",
    "SignatureRequest",
    "SignatureUnavailable",
    "SourceChanged",
    "StatusClient",
    "StatusUnavailable",
    "StorageError",
    "TempCredentials",
    "UploadCancelled",
    "UploadInProgress",
    "UploadOptions",
    "UploadPaused",
    "UploadResult",
    "UploadState",
    "UploadTask",
    "Uploader",
    "VodApiError",
    "VodClient",
    "VodUnavailable",
    "VodUploadError",
    "default_directory",
    "identify",
]
