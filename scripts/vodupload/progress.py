"""Progress reports: bytes stored so far, the total, and the current speed."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

SPEED_WINDOW_SECONDS = 10.0  # long enough to smooth out whole-part steps, short enough to follow changes


@dataclass(frozen=True)
class Progress:
    bytes_done: int  # stored in COS, including parts uploaded by an earlier run
    bytes_total: int  # video + cover
    bytes_per_second: float  # this run's recent speed; 0.0 until there is something to measure
    bytes_resumed: int = 0  # of bytes_done, what an earlier run had already uploaded

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.bytes_total if self.bytes_total else 1.0


ProgressCallback = Callable[[Progress], None]


class ProgressMeter:
    """Counts stored bytes (updated once per finished part, from any thread) and measures speed.

    Reports are delivered one at a time, each with the count as it is when the report is made, so that
    a callback never sees the count go down within a run (a report is not overtaken by an older one).
    """

    def __init__(
        self, total: int, callback: ProgressCallback | None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._total = total
        self._callback = callback
        self._monotonic = monotonic
        self._lock = threading.Lock()  # the counts
        self._reporting = threading.Lock()  # snapshot + callback, one report at a time
        self._done = 0
        self._resumed = 0
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def restart(self, already_done: int, total: int | None = None) -> None:
        """A new run begins with `already_done` bytes stored by earlier runs (of `total`, if it changed)."""
        with self._lock:
            if total is not None:
                self._total = total
            self._done = self._resumed = already_done
            self._samples.clear()
            self._samples.append((self._monotonic(), already_done))
        self._report()

    def add(self, count: int) -> None:
        with self._lock:
            self._done += count
            self._samples.append((self._monotonic(), self._done))
        self._report()

    def snapshot(self) -> Progress:
        with self._lock:
            now = self._monotonic()
            while len(self._samples) > 2 and now - self._samples[1][0] > SPEED_WINDOW_SECONDS:
                self._samples.popleft()
            speed = 0.0
            if len(self._samples) >= 2:
                (first_time, first_done), (last_time, last_done) = self._samples[0], self._samples[-1]
                if last_time > first_time:
                    speed = (last_done - first_done) / (last_time - first_time)
            return Progress(self._done, self._total, speed, self._resumed)

    def _report(self) -> None:
        if self._callback is None:
            return
        # The snapshot is taken once this report's turn has come: a report that waited for its turn
        # carries the latest count, never the older one it was started for. The callback may read
        # `snapshot()` (a different lock) but must not wait for other reports.
        with self._reporting:
            self._callback(self.snapshot())
