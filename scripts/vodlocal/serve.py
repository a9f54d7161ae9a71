"""Run the local stack on 127.0.0.1 with embedded dev defaults (no setup, no cloud account):
the functions (sign, callback, uploads, the upload page) behind functions-framework, and the local VOD
emulator (plain, and over TLS for browsers), whose upload events are delivered to the callback."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import shutil
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vodlocal import localstack


def command_prefix() -> str:
    """Where this project's console commands are, as a prefix to print: none when they are on PATH."""
    here = Path(sys.argv[0]).resolve().parent
    if not (here / "vod-upload").exists():  # run as `python -m vodlocal.serve`: the interpreter's own commands
        here = Path(sys.executable).parent
    on_path = shutil.which("vod-upload")
    if on_path and Path(on_path).resolve().parent == here:
        return ""
    return f"{os.path.relpath(here)}/" if here.is_relative_to(Path.cwd()) else f"{here}/"


PORT_OPTIONS = (  # flag, environment variable, default, what listens there, and its help
    ("--port", "GATEWAY_PORT", "8080", "gateway", "gateway port (the functions)"),
    ("--emulator-port", "VOD_EMULATOR_PORT", "9000", "emulator", "VOD emulator port"),
    (
        "--tls-port",
        "VOD_EMULATOR_TLS_PORT",
        "9443",
        "emulator over TLS",
        "the emulator for browsers (https://vod2.qcloud.com)",
    ),
)


def _start_and_announce(stack: localstack.LocalStack, args: argparse.Namespace, shell_database: bool) -> None:
    """Start the PULL timer (with --pull) and print where everything is and how to use it."""
    from vodlocal import localstack

    gateway, emulator = stack.gateway.url, stack.emulator.url
    minted = localstack.token_for(os.environ)  # None: the shell's own identity provider issues the tokens
    token = minted or "<a token your AUTH_* settings accept>"
    if args.pull:
        stack.start_pull_timer()
    delivery = (
        "queued for PullEvents, drained by functions/events_pull each minute (its timer)"
        if args.pull
        else f"pushed to {gateway}/vod-events (signed)"
    )
    print(f"gateway    {gateway}   POST /signature (functions/sign), POST /vod-events (functions/callback),")
    print(f"           {' ' * len(gateway)}   GET /uploads, GET /uploads/{{fileId}} (functions/uploads)")
    print(f"emulator   {emulator}   VOD upload API /v3/index.php, cloud API, COS, media; events {delivery}")
    database = localstack.shown_url(os.environ["DATABASE_URL"])
    print(f"state      {args.state_dir}   dev keys, database {database}, uploads")
    if minted:
        print(f"\nbearer token for {localstack.DEV_USER!r} (24 h):\n  {token}\n")
    else:
        print("\nyour shell's AUTH_* settings check the tokens: bring one they accept\n")
    print("get an upload signature:")
    print(
        f"  curl -sS --noproxy '*' -X POST {gateway}/signature -H {shlex.quote('Authorization: Bearer ' + token)} "
        "-H 'Content-Type: application/json' -d '{}'\n"
    )
    prefix = command_prefix()
    upload, uploads, configure = (
        shlex.quote(prefix + name) for name in ("vod-upload", "vod-uploads", "vod-configure-events")
    )
    print(
        # both spellings: requests reads no_proxy before NO_PROXY, and a shell may set either
        f"upload a file:   NO_PROXY={localstack.LOOPBACK_HOSTS} no_proxy={localstack.LOOPBACK_HOSTS} "
        f"VOD_UPLOAD_TOKEN={shlex.quote(token) if minted else '<token>'} {upload} FILE "
        f"--gateway {gateway} --vod-endpoint {emulator}"
    )
    # A command to paste: the URL quoted (a path with spaces, a query's &); one with a password is not printed
    # (it shows masked): the user has it where it came from, the shell or the state's settings file.
    url = os.environ["DATABASE_URL"]
    where = f"DATABASE_URL={shlex.quote(url)} " if database == url else ""
    source = (
        "your shell's DATABASE_URL" if shell_database else f"DATABASE_URL as in {args.state_dir / 'dev-settings.json'}"
    )
    suffix = "" if where else f"   (with {source})"
    print(f"see its record:  {where}{uploads} list --user {localstack.DEV_USER}{suffix}")
    print(f"event settings:  VOD_API_ENDPOINT={emulator} {configure} --dev-keys {shlex.quote(str(args.state_dir))}")
    # vod-js-sdk-v6 calls https://vod2.qcloud.com and *.myqcloud.com: a browser started with these flags
    # (its own profile, so no everyday browsing goes through them) reaches the emulator instead.
    flags = " ".join(shlex.quote(flag) for flag in stack.chromium_flags())
    profile = shlex.quote(str(args.state_dir / "browser-profile"))
    print(
        f"\nupload page (signed in as {localstack.DEV_USER!r}; the token rides in the link's #fragment; "
        "?lang=zh-CN before it: in Chinese):"
    )
    print(f"  {stack.page_url}#token={token}")
    print(
        f"  open it in a Chromium that sends VOD's and COS's hosts to the emulator:\n"
        f"  chromium --user-data-dir={profile} {flags} '{stack.page_url}#token={token}'"
    )
    print("\nCtrl-C to stop.", flush=True)


def main() -> int:
    try:
        return _serve()
    except KeyboardInterrupt:  # a Ctrl-C before the stack was up: in the imports, or in its start (which stops
        print("stopped.")  # what it started)
        return 130


def _serve() -> int:
    # Imported here, not above: a Ctrl-C during these imports (a few tenths of a second) is a stop, not a traceback.
    from shared.config import ConfigError
    from shared.errors import StoreUnavailable
    from vodadmin import stop_on_sigterm
    from vodemu.cli import port_default, port_in_use, port_number
    from vodlocal import localstack

    parser = argparse.ArgumentParser(description=__doc__)
    for flag, variable, default, _, what in PORT_OPTIONS:
        help_text = f"{what}, default {default} ({variable})"
        parser.add_argument(flag, type=port_number, default=port_default(variable, default), help=help_text)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=localstack.DEFAULT_STATE_DIR,
        help="where dev keys, the database, the emulator's files and events live (default .local/)",
    )
    parser.add_argument(
        "--pull", action="store_true", help="queue events for PullEvents (reliable callback) instead of pushing them"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    free = " ".join(f"{variable}=0" for _, variable, _, _, _ in PORT_OPTIONS)
    with contextlib.suppress(OSError):  # a state directory that cannot be used: start_stack says why
        try:  # first: the stack running on it holds the ports too, and another state is what a second one needs
            localstack.check_state_dir(args.state_dir)
        except localstack.StateDirInUse:
            print(
                f"serve: another local stack is running on {args.state_dir}: stop it, or start a second one beside "
                f'it, with state and ports of its own: {free} make serve ARGS="--state-dir {args.state_dir}/second" '
                f"(or vod-serve --state-dir {args.state_dir}/second --port 0 …)",
                file=sys.stderr,
            )
            return 2
    # Checked up front: the servers would exit with a message that names neither setting.
    ports = {flag: getattr(args, flag.removeprefix("--").replace("-", "_")) for flag, *_ in PORT_OPTIONS}
    chosen = [port for port in ports.values() if port]
    busy = [
        f"{ports[flag]} (the {name}: {variable} or {flag})"
        for flag, variable, _, name, _ in PORT_OPTIONS
        if ports[flag] and (port_in_use(ports[flag]) or chosen.count(ports[flag]) > 1)
    ]
    if busy:
        print(
            f"serve: port already in use (or given twice): {', '.join(busy)}; choose others, or 0 for a free one: "
            f"{free} make serve (or vod-serve --port 0 …)",
            file=sys.stderr,
        )
        return 2
    shell_database = bool(os.environ.get("DATABASE_URL"))  # else the state's settings file names it
    try:
        stack = localstack.start_stack(
            args.state_dir, args.port, args.emulator_port, tls_port=args.tls_port, pull=args.pull
        )
    except (OSError, ValueError, localstack.StateDirInUse) as exc:  # a state directory that is a file, in use…
        print(f"serve: cannot start with --state-dir {args.state_dir}: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:  # an exported DATABASE_URL that cannot be used (its password hidden)
        print(f"serve: the store is unavailable: {exc.message}", file=sys.stderr)
        return 1
    except ConfigError as exc:  # settings exported in the shell that the functions would refuse
        print(f"serve: the settings cannot be used (your shell's, or dev-settings.json's): {exc}", file=sys.stderr)
        return 2
    stop_on_sigterm()  # what the stack started is stopped, as after a Ctrl-C
    try:  # from here a Ctrl-C (or SIGTERM) stops the stack, whenever it comes
        _start_and_announce(stack, args, shell_database)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        print("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
