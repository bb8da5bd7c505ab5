"""Word .docx: heading styles start sections; paragraphs and table rows are kept in document order."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.limits import DEFAULT_LIMITS, ElementBudget, FileLimits
from ingest.loaders._package import WORD, check_package
from rag.core.types import Document, Section

_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d)$", re.IGNORECASE)
_ELEMENTS = "paragraphs and table rows"


def load_docx(path: Path, source: str, limits: FileLimits = DEFAULT_LIMITS) -> list[Document]:
    import docx
    from docx.table import Table

    check_package(path, limits, {_ELEMENTS: (f"{WORD}p", f"{WORD}tr")})
    document = docx.Document(str(path))
    budget = ElementBudget(path, limits.max_elements, _ELEMENTS)  # a backstop; the check above counts ahead
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    paragraphs: list[str] = []
    title = (document.core_properties.title or "").strip()

    def flush() -> None:
        if paragraphs:
            sections.append(Section(text="\n\n".join(paragraphs), heading_path=tuple(h for _, h in stack)))
            paragraphs.clear()

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                budget.take()
                cells: list[str] = []
                for cell in row.cells:
                    value = cell.text.strip()
                    if value and (not cells or cells[-1] != value):  # merged cells repeat their text
                        cells.append(value)
                if cells:
                    paragraphs.append(" | ".join(cells))
            continue
        budget.take()
        text = block.text.strip()
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        if style.lower() == "title":
            title = title or text
            continue
        m = _HEADING_STYLE.match(style.strip())
        if m:
            flush()
            level = int(m.group(1))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
            if level == 1 and not title:
                title = text
            continue
        paragraphs.append(text)
    flush()
    return [Document(source=source, title=title or path.stem, sections=sections)]
