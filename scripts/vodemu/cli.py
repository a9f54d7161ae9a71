"""Run the local VOD emulator (COS object API, client upload API, cloud API, media) on one loopback port.

Keys come from the environment, the same variables the project's functions read:
  TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY (required), VOD_SUB_APP_ID (optional), VOD_APP_ID (optional).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from vodemu.app import Emulator, build_emulator
from vodemu.state import PULL, PUSH
from vodemu.wsgi import is_decimal

DEFAULT_STATE_DIR = Path(".local") / "vod-emulator"  # relative to the current directory


def _int_env(name: str, *, zero_unset: bool = False) -> int | None:
    """`zero_unset`: 0 reads as unset (VOD_SUB_APP_ID=0, the primary application, as the functions read it)."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not is_decimal(value) or int(value) < (0 if zero_unset else 1):
        raise ValueError(f"{name} must be a {'whole number' if zero_unset else 'positive integer'}, got {value!r}")
    return int(value) or None


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether the port is taken, checked before a server binds it (werkzeug would exit with its own words, which
    name no option or variable). Bound as the servers bind (SO_REUSEADDR): a port whose last connections wait out
    TIME_WAIT (a server stopped a moment ago) is free for them, and so for this probe."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


class _FromVariable(str):
    """A default read from an environment variable, which an error names (argparse's names only the option)."""

    variable = ""


def port_number(text: str) -> int:
    """An argparse type for a TCP port (0: any free one); argparse also applies it to a default taken from
    the environment, so a bad variable is a usage error, not a traceback."""
    if not is_decimal(text.strip()) or int(text) > 65535:
        origin = f" (from {text.variable})" if isinstance(text, _FromVariable) else ""
        raise argparse.ArgumentTypeError(f"not a port number: {str(text)!r}{origin}")
    return int(text)


def port_default(variable: str, default: str) -> str:
    """A port option's default: the environment variable's, unless it is unset or blank (as the functions read
    their settings: `VOD_EMULATOR_PORT= make serve` means the default, not a usage error)."""
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    given = _FromVariable(value)
    given.variable = variable
    return given


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"where sessions, files and events are kept (default {DEFAULT_STATE_DIR})",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; keep it loopback)")
    parser.add_argument(
        "--port",
        type=port_number,
        default=port_default("VOD_EMULATOR_PORT", "9000"),
        help="port (default 9000, or VOD_EMULATOR_PORT; 0 = any free port)",
    )
    parser.add_argument(
        "--notification-url",
        default="",
        help="preconfigure PUSH event delivery to this loopback URL (upload events ON)",
    )
    parser.add_argument("--sign-key", default="", help="SignKey for PUSH callbacks (letters and digits, <= 32)")
    parser.add_argument("--pull", action="store_true", help="preconfigure PULL (reliable) event delivery instead")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request")
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    secret_id = os.environ.get("TENCENTCLOUD_SECRET_ID", "")
    secret_key = os.environ.get("TENCENTCLOUD_SECRET_KEY", "")
    if not secret_id or not secret_key:
        print(
            "set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY (any values: they are the emulated "
            "account's keys, and your signature service must use the same ones)",
            file=sys.stderr,
        )
        return 2
    if args.port and port_in_use(args.port, args.host):
        print(
            f"cannot start: port {args.port} is in use by another program: choose another with --port or "
            "VOD_EMULATOR_PORT (0: any free port)",
            file=sys.stderr,
        )
        return 2
    try:
        sub_app_id = _int_env("VOD_SUB_APP_ID", zero_unset=True)
        emulator = build_emulator(
            args.state_dir,
            secret_id=secret_id,
            secret_key=secret_key,
            app_id=_int_env("VOD_APP_ID") or 1250000000,
            sub_app_id=sub_app_id,
        )
    except (OSError, ValueError) as exc:  # a state directory that is a file; an id that is not positive
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        if args.pull:
            emulator.configure_events(mode=PULL)
        elif args.notification_url:
            emulator.configure_events(mode=PUSH, notification_url=args.notification_url, sign_key=args.sign_key)
    except ValueError as exc:
        print(f"cannot configure events: {exc}", file=sys.stderr)
        return 2
    # Before it says it is serving: a SIGTERM sent once it has said so closes it as any other.
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    emulator.start(args.host, args.port)
    _describe(emulator, secret_id, sub_app_id)
    stopped.wait()
    emulator.close()
    print("stopped.")
    return 0


def _describe(emulator: Emulator, secret_id: str, sub_app_id: int | None) -> None:
    base = emulator.url
    address = base.removeprefix("http://")  # host:port
    host = address.rpartition(":")[0]
    config = emulator.event_config()
    events = f"{config.mode}" + (f" -> {config.notification_url}" if config.notification_url else "")
    if config.mode == PUSH and config.notification_url:
        # As VOD with no callback key: no Sign or T, which a callback holding a SignKey refuses (401).
        events += ", signed with the SignKey" if config.sign_key else ", unsigned (no --sign-key)"
    print(f"VOD emulator on {base}   (state: {emulator.state.path.parent})")
    print(f"  account         SecretId {secret_id}, vodSubAppId {sub_app_id or '(none: primary app)'}")
    print(f"  client upload   POST {base}/v3/index.php?Action=PrepareUploadUGC|ApplyUploadUGC|CommitUploadUGC")
    print(f"  cloud API       HttpProfile(protocol='http', endpoint='{address}')  (TC3, version 2018-07-17)")
    print(
        f"  COS             CosConfig(IP='{host}', Port={emulator.port}, Scheme='http', Region=<storageRegionV5>, ...)"
    )
    print(f"  media           {base}/vod-media/<bucket>/<key>  (MediaUrl/CoverUrl of committed files)")
    switches = f"upload events {config.upload_switch}, delete events {config.delete_switch}"
    print(f"  events          {events}, {switches}  (change with ModifyEventConfig)")
    print("Ctrl-C to stop.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
