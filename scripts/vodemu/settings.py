"""The emulated VOD account: its ids and keys, and the knobs tests turn (TTLs, waits, retries)."""

from __future__ import annotations

from dataclasses import dataclass, field

# The storage regions VOD documents for `storageRegion` (https://cloud.tencent.com/document/product/266/9221).
DOCUMENTED_REGIONS = (
    "ap-guangzhou",
    "ap-chongqing",
    "ap-shanghai",
    "ap-beijing",
    "ap-hongkong",
    "ap-singapore",
    "eu-frankfurt",
    "na-siliconvalley",
)
SERVICE = "vod"
API_VERSION = "2018-07-17"


@dataclass(frozen=True)
class EmulatorSettings:
    secret_id: str
    secret_key: str = field(default="", repr=False)  # a credential: keep it out of logs
    # The account keys' token when they are temporary ones (an execution role's, say): the cloud API then
    # takes them only with that X-TC-Token. Empty: permanent keys (a token sent with them is not checked).
    session_token: str = field(default="", repr=False)
    app_id: int = 1250000000
    sub_app_id: int | None = None  # None = the account's primary app (no vodSubAppId expected)
    default_region: str = "ap-guangzhou"
    regions: tuple[str, ...] = DOCUMENTED_REGIONS
    credential_ttl_seconds: int = 3600  # tempCertificate lifetime
    # Resume window of an upload session, "断点续传的有效时间为1天" (https://cloud.tencent.com/document/product/266/9219).
    session_ttl_seconds: int = 24 * 3600
    signature_clock_skew: int = 60  # how far currentTimeStamp may run ahead of the emulator's clock
    tc3_tolerance_seconds: int = 300
    long_poll_seconds: float = 5.0  # PullEvents wait, in real seconds
    confirm_window_seconds: int = 30  # PullEvents -> ConfirmEvents deadline, in clock seconds
    event_retention_seconds: int = 4 * 24 * 3600
    push_retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)  # real seconds between PUSH attempts
    push_timeout_seconds: float = 5.0
    push_sign_ttl_seconds: int = 600  # T = now + this (VOD: about 10 minutes)

    def __post_init__(self) -> None:
        if self.default_region not in self.regions:
            raise ValueError(f"default_region {self.default_region!r} is not among regions")
        if self.sub_app_id is not None and self.sub_app_id <= 0:
            raise ValueError("sub_app_id must be positive")

    @property
    def vod_app_id(self) -> int:
        """The id VOD calls "the application": the sub-app when there is one."""
        return self.sub_app_id if self.sub_app_id is not None else self.app_id

    @property
    def secret_keys(self) -> dict[str, str]:
        return {self.secret_id: self.secret_key}

    def bucket_prefix(self, region: str) -> str:
        """The `storageBucket` (without the appid suffix) for a region."""
        return f"vodugc-{region}"

    def bucket(self, region: str) -> str:
        """Full COS bucket name, `{storageBucket}-{storageAppId}`, as the SDKs build it."""
        return f"{self.bucket_prefix(region)}-{self.app_id}"
