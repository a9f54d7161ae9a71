"""Injected clocks for tests: exact, and never a sleep."""

from __future__ import annotations

import time


class OffsetClock:
    """Real time plus an offset that moves only when told. For tests that drive Tencent's SDKs: they
    stamp their signatures with `time.time()`, so the server's clock must follow real time; tests
    jump the offset (e.g. past a credential's expiry) instead of waiting."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def move_past(self, instant: float) -> None:
        """From now on the clock reads at least one second later than `instant`."""
        self.advance(max(0.0, instant - self() + 1))


class FrozenClock:
    """Reads one instant (by default the real time, whole seconds, when made) until told to move."""

    def __init__(self, start: float | None = None) -> None:
        self.now = float(int(time.time())) if start is None else float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
