"""FAQ sheets (.csv, .xlsx): one row = one question/answer = one chunk, the question as its title.

Columns are found by header name, English or Chinese (`question`/`answer`, `问题`/`答案`, ...). Any other
non-empty column (category, product, ...) becomes row metadata usable in retrieval filters.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from ingest.errors import LoaderError
from ingest.limits import DEFAULT_LIMITS, ElementBudget, FileLimits
from ingest.loaders._common import read_text
from ingest.loaders._package import SHEET, check_package
from rag.core.types import Document, Section

QUESTION_HEADERS = {"question", "questions", "q", "query", "faq", "问题", "提问", "常见问题", "问", "问句"}
ANSWER_HEADERS = {"answer", "answers", "a", "reply", "response", "答案", "回答", "答复", "解答", "答"}

_T = TypeVar("_T")


def _norm(header: object) -> str:
    return str(header or "").strip().strip("\ufeff").lower()


def find_columns(header: Sequence[object]) -> tuple[int, int] | None:
    """Indexes of the question and answer columns in a header row, or None."""
    names = [_norm(h) for h in header]
    q = next((i for i, n in enumerate(names) if n in QUESTION_HEADERS), None)
    a = next((i for i, n in enumerate(names) if n in ANSWER_HEADERS), None)
    return (q, a) if q is not None and a is not None else None


def faq_sections(
    rows: Iterable[tuple[int, Sequence[object]]], header: Sequence[object], extra: dict | None = None
) -> list[Section]:
    """Sections for data rows given as (spreadsheet row number, cells)."""
    columns = find_columns(header)
    assert columns is not None
    q_col, a_col = columns
    names = [str(h or "").strip() for h in header]
    sections = []
    for number, cells in rows:
        cells = list(cells)
        question = str(cells[q_col]).strip() if q_col < len(cells) and cells[q_col] is not None else ""
        answer = str(cells[a_col]).strip() if a_col < len(cells) and cells[a_col] is not None else ""
        if not answer:
            continue
        metadata = dict(extra or {})
        for i, value in enumerate(cells):
            if i not in (q_col, a_col) and i < len(names) and names[i] and value not in (None, ""):
                metadata[names[i]] = value if isinstance(value, (int, float, bool)) else str(value).strip()
        sections.append(Section(text=answer, title=question or None, row=number, atomic=True, metadata=metadata))
    return sections


def _missing_columns(path: Path, header: Sequence[object], where: str = "") -> LoaderError:
    shown = ", ".join(repr(str(h)) for h in header if str(h or "").strip()) or "(empty)"
    return LoaderError(
        path,
        f"no question/answer columns in the header row{where} ({shown}) - "
        "name them 'question' and 'answer' (or '问题' and '答案')",
    )


def _counted(items: Iterable[_T], budget: ElementBudget) -> Iterator[_T]:
    for item in items:
        budget.take()
        yield item


def load_csv(path: Path, source: str, limits: FileLimits = DEFAULT_LIMITS) -> list[Document]:
    text = read_text(path)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise LoaderError(path, "CSV has no header row") from None
    if find_columns(header) is None:
        raise _missing_columns(path, header)
    try:
        rows = _counted(reader, ElementBudget(path, limits.max_elements, "rows"))
        sections = faq_sections(((i, row) for i, row in enumerate(rows, start=2)), header)
    except csv.Error as exc:
        raise LoaderError(path, f"malformed CSV: {exc}") from exc
    return [Document(source=source, title=path.stem, sections=sections)]


def load_xlsx(path: Path, source: str, limits: FileLimits = DEFAULT_LIMITS) -> list[Document]:
    import openpyxl

    check_package(path, limits, {"rows": (f"{SHEET}row",), "shared strings": (f"{SHEET}si",)})
    workbook = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    # Cells, not rows: openpyxl pads every row to the width the sheet declares (up to 16,384 columns),
    # so a tiny file can make each row cost thousands of cells.
    budget = ElementBudget(path, limits.max_elements, "cells")
    sections: list[Section] = []
    seen_headers: list[tuple[str, list]] = []
    try:
        for sheet in workbook.worksheets:
            rows = sheet.iter_rows(values_only=True)
            header: list | None = None
            data: list[tuple[int, Sequence[object]]] = []
            for number, row in enumerate(rows, start=1):
                if header is None:
                    budget.take(max(len(row), 1))
                    if any(v not in (None, "") for v in row):
                        header = _trimmed(row)
                        if find_columns(header) is None:
                            seen_headers.append((sheet.title, header))
                            break
                    continue
                row = row[: len(header)]  # cells right of the last named column are never read
                budget.take(max(len(row), 1))
                data.append((number, row))
            if header is not None and find_columns(header) is not None:
                extra = {"sheet": sheet.title} if len(workbook.worksheets) > 1 else {}
                sections.extend(faq_sections(data, header, extra))
    finally:
        workbook.close()
    if not sections and seen_headers:
        name, header = seen_headers[0]
        raise _missing_columns(path, header, f" of sheet {name!r}")
    return [Document(source=source, title=path.stem, sections=sections)]


def _trimmed(row: Sequence[object]) -> list:
    """The row without its empty cells at the end."""
    end = len(row)
    while end and row[end - 1] in (None, ""):
        end -= 1
    return list(row[:end])
