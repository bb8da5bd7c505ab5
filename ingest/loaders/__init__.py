"""One loader per file format; each turns a file into `Document`s or raises a `LoaderError` saying why not.

    load_file(path, source) -> list[Document]
    load_file(path, source, FileLimits.from_settings(settings))   # bounded by the RAG_INGEST_* limits

The extension picks the loader (`LOADERS`); add a format by adding an entry. Every loader takes the
`FileLimits` and stops with `FileTooLarge` where a file would cost more than they allow; time and memory are
bounded from outside, by `ingest.sandbox`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ingest.errors import EmptyDocumentError, LoaderError, LoadOutOfMemory, UnsupportedFileType
from ingest.limits import DEFAULT_LIMITS, FileLimits
from ingest.loaders.docx import load_docx
from ingest.loaders.html import load_html
from ingest.loaders.pdf import load_pdf
from ingest.loaders.records import load_json, load_jsonl
from ingest.loaders.sheets import load_csv, load_xlsx
from ingest.loaders.text import load_markdown, load_text
from rag.core.types import Document

Loader = Callable[[Path, str, FileLimits], list[Document]]

LOADERS: dict[str, Loader] = {
    ".txt": load_text,
    ".text": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".csv": load_csv,
    ".xlsx": load_xlsx,
    ".json": load_json,
    ".jsonl": load_jsonl,
}


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in LOADERS


def load_file(path: Path, source: str | None = None, limits: FileLimits | None = None) -> list[Document]:
    """Load one file into documents; raises `LoaderError` (with the path and the reason) when it can't,
    `FileTooLarge` when it holds more than `limits` (default: `FileLimits()`) allow."""
    source = source or path.as_posix()
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise UnsupportedFileType(
            path, f"unsupported file type {path.suffix or '(no extension)'!r}; supported: {', '.join(sorted(LOADERS))}"
        )
    if not path.is_file():
        raise LoaderError(path, "not a regular file (broken link or directory?)")
    try:
        if path.stat().st_size == 0:
            raise EmptyDocumentError(path, "file is empty")
        documents = loader(path, source, limits or DEFAULT_LIMITS)
    except LoaderError:
        raise
    except MemoryError as exc:  # not "corrupt": the same file may load with more memory
        raise LoadOutOfMemory(
            path, "ran out of memory while loading - split the file or raise RAG_INGEST_FILE_MEMORY_MB"
        ) from exc
    except (OSError, UnicodeError, ValueError) as exc:
        raise LoaderError(path, f"could not be read: {exc}") from exc
    except Exception as exc:  # parsers of binary formats raise many kinds of errors on corrupt input
        raise LoaderError(
            path, f"corrupt or unreadable {path.suffix.lower()} file: {type(exc).__name__}: {exc}"
        ) from exc
    documents = [d for d in documents if any(s.text.strip() for s in d.sections)]
    if not documents:
        raise EmptyDocumentError(path, "no text found in the file")
    return documents


def import_parsers() -> None:
    """Import the parsers the loaders import lazily (to keep start-up fast), for a process that will load many
    files: `ingest.sandbox` does it before it measures the memory a file may use."""
    import docx  # noqa: F401
    import lxml.etree  # noqa: F401
    import openpyxl  # noqa: F401
    import pypdf  # noqa: F401


__all__ = ["LOADERS", "Loader", "import_parsers", "is_supported", "load_file"]
