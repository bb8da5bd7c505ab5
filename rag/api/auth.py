"""API keys at the HTTP edge: read from the request, compared in constant time."""

from __future__ import annotations

import hmac
from typing import Iterable

from fastapi import Request
from pydantic import SecretStr


def bearer_token(request: Request) -> str:
    """The token of an `Authorization: Bearer <token>` header, or ""."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def matches_any(given: str, keys: Iterable[SecretStr]) -> bool:
    """Whether `given` is one of `keys`. Every key is compared in constant time, so response timing reveals
    neither which key nor how much of it matched."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given.encode(), key.get_secret_value().encode())
    return bool(given) and matched
