"""Helpers shared by the loaders: reading text safely, normalising whitespace."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from ingest.errors import LoaderError

_BINARY_SNIFF = 8192
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")


def read_text(path: Path) -> str:
    """Decode a text file: UTF-8 (BOM or not), UTF-16 with BOM, then GB18030 for legacy Chinese files."""
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    if b"\x00" in data[:_BINARY_SNIFF]:
        raise LoaderError(path, "binary content where text was expected (is the extension right?)")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise LoaderError(path, "text is neither UTF-8 nor GB18030 - re-save the file as UTF-8")


def clean_inline(text: str) -> str:
    """Collapse runs of spaces inside a line; keep line breaks."""
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.splitlines()).strip()
