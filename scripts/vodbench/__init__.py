"""Benchmark sections for `vod-bench` (make bench): each module has `run() -> list[tuple[str, str]]`."""
