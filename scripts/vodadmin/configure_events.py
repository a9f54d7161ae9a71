"""Show or change VOD's event notification settings (ModifyEventConfig / DescribeEventConfig).

Works against the real VOD and the local emulator alike (VOD_API_ENDPOINT), with the same settings
as the functions: TENCENTCLOUD_SECRET_ID/KEY, VOD_SUB_APP_ID, and VOD_CALLBACK_SIGN_KEY as the SignKey.
Against `make serve`'s emulator, --dev-keys takes them from the dev settings it generated (.local/), in place
of any this shell has (but those the stack took from its own shell: export the same here), and needs
VOD_API_ENDPOINT on loopback. Changing settings sends the SignKey: without
VOD_CALLBACK_SIGN_KEY, pass --no-sign-key to leave VOD's as it is; --sign-key sends it alone (a rotation).

  vod-configure-events                                   # show the current settings
  vod-configure-events --mode PUSH --url https://…/vod-events
  vod-configure-events --mode PULL --upload-events on --delete-events on
  VOD_CALLBACK_SIGN_KEY=… vod-configure-events --sign-key   # a new SignKey, nothing else changed
  VOD_API_ENDPOINT=http://127.0.0.1:9000 vod-configure-events --dev-keys
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from shared.config import (
    MIN_DEPLOYED_SIGN_KEY,
    ConfigError,
    Secret,
    VodApiSettings,
    callback_sign_key,
    known_secrets,
    load_vod_api_settings,
)
from shared.redaction import redact
from shared.vod_api import describe_event_config, make_client, modify_event_config
from vodadmin import stop_on_sigterm

DEV_STATE = Path(".local")  # where `make serve` keeps them, relative to the checkout it runs in


def _switch(value: str) -> str:
    upper = value.upper()
    if upper not in ("ON", "OFF"):
        raise argparse.ArgumentTypeError("use on or off")
    return upper


def _notification_url(value: str) -> str:
    # VOD takes an empty or odd URL as given (an empty one clears the address): PUSH events would go nowhere.
    parts = urlsplit(value)
    if value != value.strip() or parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {value!r}")
    return value


_DEV_KEYS = ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "VOD_SUB_APP_ID", "VOD_CALLBACK_SIGN_KEY")


def _use_dev_keys(state_dir: Path, *, sends_key: bool) -> str | None:
    """The local stack's keys in place of this shell's (so real ones never sign a call to the emulator), loopback
    traffic kept off any proxy; but those the stack took from its own shell, as it does; why not, if it cannot."""
    from vodlocal.localstack import FROM_SHELL, apply_settings  # the local stack's tools: only for the local stack

    settings_file = state_dir / "dev-settings.json"
    try:
        dev = json.loads(settings_file.read_text())
        from_shell = json.loads((state_dir / FROM_SHELL).read_text()) if (state_dir / FROM_SHELL).exists() else []
    except FileNotFoundError:
        return f"no {settings_file}: start the local stack once (make serve)"
    except (OSError, ValueError) as exc:
        return f"cannot read {exc.filename if isinstance(exc, OSError) else settings_file}: {exc}"
    if not isinstance(dev, dict) or not all(isinstance(v, str) for v in dev.values()):
        return f"{settings_file} is not the local stack's settings (an object of strings)"
    missing = [name for name in _DEV_KEYS if not dev.get(name)]
    if missing:  # else the shell's own (perhaps real) keys would sign the calls
        return f"{settings_file} has no {', '.join(missing)}: start the local stack once (make serve)"
    # (The SignKey only when it is sent: showing the settings, or --no-sign-key, needs none.)
    shells = [name for name in _DEV_KEYS if name in from_shell and (sends_key or name != "VOD_CALLBACK_SIGN_KEY")]
    unset = [name for name in shells if not os.environ.get(name, "").strip()]
    if unset:
        return f"the local stack at {state_dir} runs with its shell's own {', '.join(unset)}: export the same here"
    apply_settings({**dev, **{name: os.environ[name] for name in shells}}, override=frozenset(dev))
    return None


def _is_loopback(url: str) -> bool:
    from vodemu.delivery import is_loopback_url  # the local stack's own test: only for --dev-keys

    return is_loopback_url(url)


def _failure(exc: TencentCloudSDKException, where: str, changing: bool) -> str:
    code = exc.get_code()
    # An answer that quotes the request back (a proxy's error page) must not show the SignKey or the credentials.
    message = redact(str(exc.get_message())[:100_000], known_secrets())
    if len(message) > 300:  # a connection error's cause (Connection refused) comes last
        message = f"{message[:150]}…{message[-150:]}"
    maybe = "; the change may or may not have been made: run without options to see" if changing else ""
    if code == "ClientNetworkError":  # raised by the SDK itself: no answer
        return f"could not reach VOD at {where}: {message}{maybe}"
    # An answer, but not VOD's API's (a wrong VOD_API_ENDPOINT?): an HTTP error, or a 200 that is not an API
    # answer (the SDK then names the JSON error). Every answer of VOD's, refusals too, names its request.
    if code == "ServerNetworkError" or not exc.get_request_id():
        return f"no VOD API answer at {where} (check VOD_API_ENDPOINT): {code}: {message}{maybe}"
    return f"VOD refused: {code}: {message}"


class _Usage(Exception):
    """A usage or settings problem: said on stderr, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--mode", type=str.upper, choices=["PUSH", "PULL"], help="PUSH = HTTP callback, PULL = reliable callback"
    )
    parser.add_argument(
        "--url", type=_notification_url, help="NotificationUrl for PUSH mode (the callback function's /vod-events URL)"
    )
    parser.add_argument("--upload-events", type=_switch, help="on/off: UploadMediaCompleteEventSwitch")
    parser.add_argument("--delete-events", type=_switch, help="on/off: DeleteMediaCompleteEventSwitch")
    key = parser.add_mutually_exclusive_group()
    key.add_argument("--no-sign-key", action="store_true", help="do not send VOD_CALLBACK_SIGN_KEY as SignKey")
    key.add_argument(
        "--sign-key", action="store_true", help="send VOD_CALLBACK_SIGN_KEY as SignKey, alone if nothing else is asked"
    )
    parser.add_argument("--json", action="store_true", help="print the resulting settings as JSON")
    parser.add_argument(
        "--dev-keys",
        nargs="?",
        const=DEV_STATE,
        type=Path,
        metavar="STATE_DIR",
        help="use the local stack's dev keys (default: .local/, where `make serve` keeps them)",
    )
    return parser


def _settings(args: argparse.Namespace, sends_key: bool) -> tuple[VodApiSettings, Secret | None]:
    if args.dev_keys:
        problem = _use_dev_keys(args.dev_keys, sends_key=sends_key)
        if problem:
            raise _Usage(f"vod-configure-events: {problem}")
    try:
        settings = load_vod_api_settings()
        # Validated now (a bad key is a usage error, not VOD's refusal), and only when it is sent.
        sign_key = callback_sign_key() if sends_key else None
    except ConfigError as exc:
        raise _Usage(str(exc)) from None
    if args.dev_keys and not _is_loopback(f"{settings.protocol}://{settings.endpoint}"):
        raise _Usage(
            "vod-configure-events: --dev-keys is for the local emulator: set VOD_API_ENDPOINT to its "
            "loopback address (http://127.0.0.1:…)"
        )
    if sign_key is not None and len(sign_key.reveal()) < MIN_DEPLOYED_SIGN_KEY:
        raise _Usage(
            f"vod-configure-events: VOD_CALLBACK_SIGN_KEY: at least {MIN_DEPLOYED_SIGN_KEY} characters, as the "
            "deployed callback requires (from one signed delivery, a shorter key is found by trying)"
        )
    if sends_key and sign_key is None:
        raise _Usage(
            "vod-configure-events: VOD_CALLBACK_SIGN_KEY is not set, and the callback refuses events without the "
            "SignKey it names: set it, or pass --no-sign-key to leave VOD's SignKey as it is"
        )
    return settings, sign_key


def main() -> int:
    args = _parser().parse_args()
    stop_on_sigterm()
    changes = {
        "Mode": args.mode,
        "NotificationUrl": args.url,
        "UploadMediaCompleteEventSwitch": args.upload_events,
        "DeleteMediaCompleteEventSwitch": args.delete_events,
    }
    changes_settings = any(v is not None for v in changes.values())
    changing = changes_settings or args.sign_key
    try:
        settings, sign_key = _settings(args, sends_key=changing and not args.no_sign_key)
    except _Usage as problem:
        print(problem, file=sys.stderr)
        return 2
    client = make_client(settings)
    try:
        if changes_settings and args.url is None and (args.mode or "").upper() != "PULL":
            current = describe_event_config(client, settings.sub_app_id)
            if (args.mode or current.get("Mode", "")).upper() == "PUSH" and not current.get("NotificationUrl"):
                print("vod-configure-events: PUSH needs --url: VOD has no NotificationUrl yet", file=sys.stderr)
                return 2
        if changing:
            modify_event_config(client, settings.sub_app_id, SignKey=sign_key.reveal() if sign_key else None, **changes)
        config = describe_event_config(client, settings.sub_app_id)
    except TencentCloudSDKException as exc:
        print(_failure(exc, f"{settings.protocol}://{settings.endpoint}", changing), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        maybe = ": the change may or may not have been made, run without options to see" if changing else ""
        print(f"vod-configure-events: interrupted{maybe}", file=sys.stderr)
        return 130
    shown = {k: ("********" if k == "SignKey" and v else v) for k, v in config.items() if k != "RequestId"}
    try:
        if args.json:
            print(json.dumps(shown, ensure_ascii=False))
        else:
            for key, value in shown.items():
                print(f"{key:34s} {value}")
        sys.stdout.flush()
    except BrokenPipeError:  # `… | head`: the reader left; whatever was asked for is done
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
