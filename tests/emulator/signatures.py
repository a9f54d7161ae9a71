"""Upload signatures for the emulator's tests: the product's builder, at a chosen time."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from shared.signing import SignatureParams


def new_params(
    secret_id: str,
    validity_seconds: int,
    *,
    now: Callable[[], float],
    random_u32: Callable[[], int] = lambda: secrets.randbits(32),
    **options: object,
) -> SignatureParams:
    """Parameters for a signature valid from now() for validity_seconds; `options` are the optional fields."""
    current = int(now())
    return SignatureParams(
        secret_id=secret_id,
        current_time_stamp=current,
        expire_time=current + validity_seconds,
        random=random_u32(),
        **options,
    )
