"""API keys at the HTTP edge (read by FastAPI's security schemes, so the OpenAPI document declares them), compared
in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from pydantic import SecretStr


def matches_any(given: str, keys: Iterable[SecretStr]) -> bool:
    """Whether `given` is one of `keys`. Every key is compared in constant time, so response timing reveals
    neither which key nor how much of it matched."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given.encode(), key.get_secret_value().encode())
    return bool(given) and matched
