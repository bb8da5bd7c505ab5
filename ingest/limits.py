"""How much one file may cost to load, and the checks that are cheap enough to run before parsing it.

Files arrive over HTTP from users, so a small upload must not be able to cost minutes or gigabytes:

- `check_zip_archive` reads only a .docx/.xlsx zip's central directory (no decompression) and refuses
  zip bombs: too many members, too much uncompressed content, or an absurd compression ratio;
- `ElementBudget` lets a loader stop after `max_elements` paragraphs, rows, cells, records or pages,
  before the documents it builds grow with the file;
- `timeout_s` and `memory_mb` bound whatever slips through both: `ingest.sandbox` applies them to a worker
  process, since a parser stuck inside C code cannot be interrupted from within.

    limits = FileLimits.from_settings(settings)
    load_file(path, limits=limits)
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.errors import FileTooLarge

if TYPE_CHECKING:
    from rag.core.settings import Settings

_MIB = 1024 * 1024


@dataclass(frozen=True)
class FileLimits:
    """Limits on loading one file; the defaults equal the settings' defaults (RAG_INGEST_*)."""

    max_unpacked_bytes: int = 200 * _MIB
    max_elements: int = 200_000
    timeout_s: float = 120.0
    memory_mb: int = 2048
    # Not settings: no legitimate document comes near them, so there is nothing for an operator to tune.
    max_zip_members: int = 10_000
    max_compression_ratio: float = 100.0
    ratio_checked_above_bytes: int = 4 * _MIB  # small parts of repeated XML legitimately compress 100:1 or more

    def __post_init__(self) -> None:
        for name in ("max_unpacked_bytes", "max_elements", "timeout_s", "memory_mb", "max_zip_members"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"{name} must be greater than 0. Currently, the {name} is {value}")
        if self.max_compression_ratio <= 1:
            raise ValueError(f"max_compression_ratio must be greater than 1, got {self.max_compression_ratio}")

    @classmethod
    def from_settings(cls, settings: Settings) -> FileLimits:
        return cls(
            max_unpacked_bytes=settings.ingest_max_unpacked_bytes,
            max_elements=settings.ingest_max_elements,
            timeout_s=settings.ingest_file_timeout,
            memory_mb=settings.ingest_file_memory_mb,
        )


DEFAULT_LIMITS = FileLimits()


def too_many_elements(path: Path | str, limit: int, what: str) -> FileTooLarge:
    """The error for a file holding more than `limit` of `what` ("rows", "paragraphs and table rows", ...)."""
    return FileTooLarge(
        path,
        f"holds more than {limit:,} {what} (RAG_INGEST_MAX_ELEMENTS={limit}) - split the file or raise "
        "RAG_INGEST_MAX_ELEMENTS",
    )


def check_count(path: Path | str, count: int, limit: int, what: str) -> None:
    """Refuse a file whose `count` of `what`, known before the expensive work, is over `limit`."""
    if count > limit:
        raise too_many_elements(path, limit, what)


class ElementBudget:
    """Counts what a loader has read of one file and stops it once more than `limit` were read.

    budget = ElementBudget(path, limits.max_elements, "rows")
    for row in rows:
        budget.take()
    """

    def __init__(self, path: Path | str, limit: int, what: str):
        self.path = path
        self.limit = limit
        self.what = what
        self.used = 0

    def take(self, count: int = 1) -> None:
        self.used += count
        if self.used > self.limit:
            raise too_many_elements(self.path, self.limit, self.what)


def check_zip_archive(path: Path, limits: FileLimits) -> None:
    """Refuse a zip bomb from its central directory alone; a file that is no zip at all is left to its loader,
    whose error says so in that format's words.

    The sizes in the central directory can lie, but Python's zipfile (which python-docx and openpyxl read
    through) stops each member at its declared size and then fails its CRC check, so they are upper bounds.
    """
    try:
        with path.open("rb") as handle:
            members = _declared_member_count(handle)
            if members is not None:
                _check_member_count(path, members, limits)
            with zipfile.ZipFile(handle) as archive:
                infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError):
        return
    _check_member_count(path, len(infos), limits)
    _check_unpacked_size(path, infos, limits)


def _declared_member_count(handle) -> int | None:
    """The member count in the end-of-central-directory record, read before zipfile builds an object per
    member (a small file can declare millions). Private zipfile API, unchanged since Python 2."""
    end_record = getattr(zipfile, "_EndRecData", None)
    index = getattr(zipfile, "_ECD_ENTRIES_TOTAL", None)
    if end_record is None or index is None:
        return None
    record = end_record(handle)
    return None if record is None else int(record[index])


def _check_member_count(path: Path, members: int, limits: FileLimits) -> None:
    if members > limits.max_zip_members:
        raise FileTooLarge(
            path,
            f"its zip holds {members:,} files, more than the {limits.max_zip_members:,} a document needs - "
            "re-save it from the application that made it",
        )


def _check_unpacked_size(path: Path, infos: list[zipfile.ZipInfo], limits: FileLimits) -> None:
    total = sum(info.file_size for info in infos)
    if total > limits.max_unpacked_bytes:
        raise FileTooLarge(
            path,
            f"unpacks to {total:,} bytes, more than the {limits.max_unpacked_bytes:,} allowed "
            f"(RAG_INGEST_MAX_UNPACKED_BYTES={limits.max_unpacked_bytes}) - split the file or raise "
            "RAG_INGEST_MAX_UNPACKED_BYTES",
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_checked_above_bytes and ratio > limits.max_compression_ratio:
            raise FileTooLarge(
                path,
                f"part {info.filename!r} unpacks {ratio:,.0f} times its size ({info.file_size:,} bytes), more than "
                f"the {limits.max_compression_ratio:,.0f}:1 real documents reach - a zip bomb? "
                "Re-save it from the application that made it",
            )
