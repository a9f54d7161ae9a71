"""Show or change VOD's event notification settings (ModifyEventConfig / DescribeEventConfig).

Works against the real VOD and the local emulator alike (VOD_API_ENDPOINT), with the same settings
as the functions: TENCENTCLOUD_SECRET_ID/KEY, VOD_SUB_APP_ID, and VOD_CALLBACK_SIGN_KEY as the SignKey.
Against `make serve`'s emulator, --dev-keys takes them from the dev settings it generated (.local/).

  vod-configure-events                                   # show the current settings
  vod-configure-events --mode PUSH --url https://…/vod-events
  vod-configure-events --mode PULL
  VOD_API_ENDPOINT=http://127.0.0.1:9000 vod-configure-events --dev-keys
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from shared.config import ConfigError, callback_sign_key, load_vod_api_settings
from shared.vod_api import describe_event_config, make_client, modify_event_config

DEV_STATE = Path(".local")  # where `make serve` keeps them, relative to the checkout it runs in


def _switch(value: str) -> str:
    upper = value.upper()
    if upper not in ("ON", "OFF"):
        raise argparse.ArgumentTypeError("use on or off")
    return upper


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["PUSH", "PULL"], help="PUSH = HTTP callback, PULL = reliable callback")
    parser.add_argument("--url", help="NotificationUrl for PUSH mode (the callback function's /vod-events URL)")
    parser.add_argument("--upload-events", type=_switch, help="on/off: UploadMediaCompleteEventSwitch")
    parser.add_argument("--delete-events", type=_switch, help="on/off: DeleteMediaCompleteEventSwitch")
    parser.add_argument("--no-sign-key", action="store_true", help="do not send VOD_CALLBACK_SIGN_KEY as SignKey")
    parser.add_argument("--json", action="store_true", help="print the resulting settings as JSON")
    parser.add_argument(
        "--dev-keys",
        nargs="?",
        const=DEV_STATE,
        type=Path,
        metavar="STATE_DIR",
        help="use the local stack's dev keys (default: .local/, where `make serve` keeps them)",
    )
    args = parser.parse_args()
    if args.dev_keys:
        settings_file = args.dev_keys / "dev-settings.json"
        if not settings_file.exists():
            print(f"vod-configure-events: no {settings_file}: start the local stack once (make serve)", file=sys.stderr)
            return 2
        for name, value in json.loads(settings_file.read_text()).items():
            os.environ[name] = os.environ.get(name) or value  # what the user set wins; empty = unset
    try:
        settings = load_vod_api_settings()
        callback_sign_key()  # validated now: a bad key is a usage error, not VOD's refusal
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    client = make_client(settings)
    sign_key = None if args.no_sign_key else callback_sign_key()
    changes = {
        "Mode": args.mode,
        "NotificationUrl": args.url,
        "UploadMediaCompleteEventSwitch": args.upload_events,
        "DeleteMediaCompleteEventSwitch": args.delete_events,
    }
    try:
        if any(v is not None for v in changes.values()):
            modify_event_config(client, settings.sub_app_id, SignKey=sign_key.reveal() if sign_key else None, **changes)
        config = describe_event_config(client, settings.sub_app_id)
    except TencentCloudSDKException as exc:
        if exc.get_code() == "ClientNetworkError":  # raised by the SDK itself: VOD never answered
            print(
                f"could not reach VOD at {settings.protocol}://{settings.endpoint}: {exc.get_message()}",
                file=sys.stderr,
            )
        else:
            print(f"VOD refused: {exc.get_code()}: {exc.get_message()}", file=sys.stderr)
        return 1
    shown = {k: ("********" if k == "SignKey" and v else v) for k, v in config.items() if k != "RequestId"}
    if args.json:
        print(json.dumps(shown, ensure_ascii=False))
    else:
        for key, value in shown.items():
            print(f"{key:34s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
