"""Limits VOD documents for upload signatures (客户端上传签名, https://cloud.tencent.com/document/product/266/9221),
in one place for the code that builds signatures, the settings that feed them, and the sourceContext format."""

MAX_VALIDITY_SECONDS = 90 * 24 * 3600  # expireTime - currentTimeStamp
MAX_SOURCE_CONTEXT = 250  # characters of sourceContext
MAX_SESSION_CONTEXT = 1000  # characters of sessionContext
TASK_NOTIFY_MODES = ("Finish", "Change", "None")
