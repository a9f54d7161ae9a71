"""Benchmark sections for scripts/bench: each module has `run() -> list[tuple[str, str]]`."""
