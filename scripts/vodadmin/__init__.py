"""Operator commands over a deployment: what the callback recorded, VOD's event settings."""

import signal


def stop_on_sigterm() -> None:
    """From now on SIGTERM (`timeout`, cron, a service manager) stops a command as Ctrl-C does: what it did is
    recorded and said, and it exits 130 (by default Python would end at once, without a word)."""

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
