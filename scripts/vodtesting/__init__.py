"""A testing kit for applications built on the bundle: invoke the real handlers in your own tests.

    from vodtesting import http_event, vod_event, signed, load_function, dev_token, signed_parameters, sample_video

and, with pytest, the fixtures `vod_function` and `vod_stack` (README "Testing your integration").
Install with `pip install ".[testing]"`; nothing here ships in a function bundle.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vodtesting.events import FILE_ID, KINDS, http_event, signed, vod_event

__all__ = [
    "FILE_ID",
    "KINDS",
    "HookFailed",
    "SignatureRefused",
    "VodStack",
    "dev_token",
    "http_event",
    "load_function",
    "sample_video",
    "signed",
    "signed_parameters",
    "vod_event",
]


class HookFailed(AssertionError):
    """Your after-commit hook raised for an event of the upload `vod_stack.record` waited for (its error said)."""


TYPE_CHECKING = False
if TYPE_CHECKING:
    from vodtesting.stack import SignatureRefused, VodStack


def __getattr__(name: str) -> Any:
    # VodStack and SignatureRefused at their first use: the stack imports the bundle's core (require_bundle_core)
    if name in ("SignatureRefused", "VodStack"):
        require_bundle_core()
        from vodtesting import stack

        return getattr(stack, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sample_video(path: Path, size: int = 3 * 1024 * 1024 + 123) -> Path:
    """A file of `size` deterministic bytes at `path`, to upload through `vod_stack.upload` (the emulator
    stores bytes; it does not decode video)."""
    block = hashlib.sha256(path.name.encode()).digest() * 4096
    path.write_bytes((block * (size // len(block) + 1))[:size])
    return path


def dev_token(user: str, secret: str, **claims: Any) -> str:
    """An HS256 bearer token for `user`, as the local stack issues them (24 h; extra claims allowed)."""
    require_bundle_core()  # the token is made as the bundle's settings check it
    from vodlocal.localstack import mint_token

    return mint_token(secret, user, **claims)


def require_bundle_core() -> None:
    """Stop with an ImportError that says why when the top-level `shared` Python finds is not the bundle's core.

    The functions import their core as `shared` (the name their SCF bundles hold it under), and Python imports
    one package per name: an app's own `shared` on the path hides it, and would otherwise fail later, as a
    missing `shared.config` or `shared.store`, with nothing said about why."""
    spec = importlib.util.find_spec("shared")
    if spec is None:  # not installed at all: the import that follows says so
        return
    places = list(spec.submodule_search_locations or [])
    if not any((Path(place) / "sign_service.py").is_file() for place in places):
        where = ", ".join(places) or spec.origin or "a module, not a package"
        raise ImportError(
            f"the bundle's functions import their core package as `shared`, but the `shared` found first is not "
            f"it ({where}): a package of your app with that name hides it. Rename yours (or move it inside your "
            "app's own package), or keep the folder holding it off the path where the testing kit runs.",
            name="shared",
        )


def load_function(name: str, env: Mapping[str, str]) -> Any:
    """`main_handler` of functions/<name>/index.py, imported fresh with exactly `env` as its environment."""
    require_bundle_core()
    from vodtesting.functions import load_function as load

    return load(name, env)


def signed_parameters(signature: str) -> dict[str, str | int]:
    """What an upload signature carries (sourceContext, expireTime, …), read as VOD reads it; unverified."""
    from vodemu.signature import signed_parameters as read

    return read(signature)
