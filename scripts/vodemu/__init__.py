"""Local emulator of the Tencent Cloud VOD upload services (COS object API, VOD upload API)."""
