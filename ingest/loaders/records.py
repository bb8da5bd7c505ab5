"""JSON and JSON Lines records: `text` (required), optional `_id`, `title`, `url`, `metadata`.

A BEIR `corpus.jsonl` ingests as it is. Each record is its own document, so re-ingesting a file re-embeds
only the records that changed. A record that breaks these rules fails the whole file (with its line
number), so a half-valid file never replaces a good one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ingest.errors import LoaderError
from ingest.limits import DEFAULT_LIMITS, ElementBudget, FileLimits, check_count
from ingest.loaders._common import read_text
from rag.core.types import Document, Section


def load_jsonl(path: Path, source: str, limits: FileLimits = DEFAULT_LIMITS) -> list[Document]:
    text = read_text(path)
    check_count(path, text.count("\n"), limits.max_elements, "lines")  # before splitlines() makes a list of them
    budget = ElementBudget(path, limits.max_elements, "records")
    documents = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        budget.take()
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LoaderError(path, f"line {number}: invalid JSON ({exc.msg}) - one JSON object per line") from exc
        documents.append(record_document(record, path, source, f"line {number}", default_key=str(number)))
    return _unique(documents, path)


def load_json(path: Path, source: str, limits: FileLimits = DEFAULT_LIMITS) -> list[Document]:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise LoaderError(path, f"invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if isinstance(data, dict) and "text" not in data:
        for key in ("records", "documents", "data", "items"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    records = data if isinstance(data, list) else [data]
    check_count(path, len(records), limits.max_elements, "records")
    documents = [
        record_document(r, path, source, f"record {i}", default_key=str(i)) for i, r in enumerate(records, start=1)
    ]
    return _unique(documents, path)


def record_document(record: Any, path: Path, source: str, where: str, default_key: str) -> Document:
    if not isinstance(record, dict):
        raise LoaderError(path, f"{where}: expected a JSON object with a 'text' field, got {type(record).__name__}")
    text = record.get("text")
    if not isinstance(text, str):
        raise LoaderError(
            path,
            f"{where}: field 'text' is {'missing' if text is None else 'not a string'} - every record needs 'text'",
        )
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise LoaderError(path, f"{where}: field 'metadata' must be an object")
    key = record.get("_id", record.get("id"))
    title = record.get("title") or ""
    url = record.get("url")
    return Document(
        source=source,
        key=str(key) if key not in (None, "") else default_key,
        title=str(title),
        url=str(url) if url else None,
        metadata=metadata,
        sections=[Section(text=text.strip())],
    )


def _unique(documents: list[Document], path: Path) -> list[Document]:
    seen: set[str] = set()
    for d in documents:
        if d.key in seen:
            raise LoaderError(path, f"duplicate record id {d.key!r} - '_id' values must be unique within a file")
        seen.add(d.key)
    return documents
