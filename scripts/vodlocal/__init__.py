"""The local stack: the real handlers behind functions-framework, the VOD emulator, dev settings and tokens."""
