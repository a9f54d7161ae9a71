"""Operator commands over a deployment: what the callback recorded, VOD's event settings."""

import signal


def stop_on_sigterm() -> None:
    """From now on SIGTERM (`timeout`, cron, a service manager) stops a command as Ctrl-C does, as a
    KeyboardInterrupt: the command's own Ctrl-C handling runs (by default Python would end at once, without a word).
    Every command of this project that stops cleanly uses it (vod-serve, vod-demo, vod-upload, vod-uploads,
    vod-configure-events)."""

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
