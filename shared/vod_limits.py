"""Limits VOD documents for upload signatures (客户端上传签名, https://cloud.tencent.com/document/product/266/9221),
in one place for the code that builds signatures, the settings that feed them, and the sourceContext format;
and the times of its reliable-callback queue."""

MAX_VALIDITY_SECONDS = 90 * 24 * 3600  # expireTime - currentTimeStamp
MAX_SOURCE_CONTEXT = 250  # of sourceContext, by text_size
MAX_SESSION_CONTEXT = 1000  # of sessionContext, by text_size
TASK_NOTIFY_MODES = ("Finish", "Change", "None")


def text_size(value: str) -> int:
    """A text's length against those limits: its UTF-8 bytes. VOD's page says "characters" without saying
    which; bytes are never fewer than code points or UTF-16 units, so a text within a limit in bytes is
    within it however VOD counts (a user id in CJK or emoji included)."""
    return len(value.encode("utf-8", "surrogatepass"))


# The reliable callback (PullEvents, https://cloud.tencent.com/document/api/266/33433): an event handed out
# and not confirmed within 30 s is handed out again (its handle then expired). PullEvents holds a request up
# to 5 s, and Tencent advises a 10 s client timeout: every call to VOD's API may take that long.
PULL_REDELIVERY_SECONDS = 30
API_TIMEOUT_SECONDS = 10
# ConfirmEvents (https://www.tencentcloud.com/document/api/266/34184): at most 16 EventHandles a call, as many as
# PullEvents hands out at a time.
CONFIRM_HANDLES = 16
