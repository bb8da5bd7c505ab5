"""PDF text layer, one section per page. Scanned PDFs without a text layer are reported, not guessed at."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ingest.errors import EmptyDocumentError, LoaderError
from ingest.limits import DEFAULT_LIMITS, FileLimits, check_count
from rag.core.types import Document, Section
from rag.text.language import is_unspaced

_SENTENCE_END = '.!?:;。！？；：)"”'
_BULLET = re.compile(r"[-•*◦▪]\s")
_NUMBERING = re.compile(r"^\d+(\.\d+)*\.?\s+")


def load_pdf(path: Path, source: str, limits: FileLimits = DEFAULT_LIMITS) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    # pypdf logs what it repairs or gives up on ("invalid pdf header", "EOF marker not found") straight to
    # stderr; what matters reaches the user as this loader's own error, naming the file
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception as exc:
                raise LoaderError(path, "PDF is password-protected - save an unprotected copy") from exc
        check_count(path, len(reader.pages), limits.max_elements, "pages")
        sections = []
        for number, page in enumerate(reader.pages, start=1):
            text = reflow(page.extract_text() or "")
            if text:
                sections.append(Section(text=text, page=number))
        title = ""
        if reader.metadata and reader.metadata.title:
            title = str(reader.metadata.title).strip()
    except PdfReadError as exc:
        raise LoaderError(path, f"corrupt PDF: {exc}") from exc
    if not sections:
        raise EmptyDocumentError(path, "PDF has no text layer (scanned?) - run OCR on it first")
    return [Document(source=source, title=title or path.stem, sections=sections)]


def reflow(page_text: str) -> str:
    """Join the visual lines of a PDF page back into paragraphs.

    A line ends a paragraph when it ends like a sentence and is clearly shorter than the page's full lines, or
    when it is a heading: a short line of its own, without a sentence's end, followed by a capitalised line
    ("How to make a warranty claim" / "Make a claim online ..."); other line breaks are soft wraps (joined with a
    space, or with nothing between CJK characters; a trailing hyphen is removed).
    """
    lines = [ln.strip() for ln in page_text.splitlines()]
    widest = max((len(ln) for ln in lines), default=0)
    out: list[str] = []
    current = ""
    for i, line in enumerate(lines):
        if not line:
            if current:
                out.append(current)
            current = ""
            continue
        if current and _BULLET.match(line):  # a list item starts a paragraph of its own
            out.append(current)
            current = ""
        if not current and _is_heading(line, lines[i + 1] if i + 1 < len(lines) else "", widest):
            out.append(line)
            continue
        if not current:
            current = line
        elif current.endswith("-") and not current.endswith(" -"):
            current = current[:-1] + line
        elif is_unspaced(current[-1]) and is_unspaced(line[0]):
            current += line
        else:
            current += " " + line
        if line[-1] in _SENTENCE_END and len(line) < 0.8 * widest:
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return "\n\n".join(out)


def _is_heading(line: str, following: str, widest: int) -> bool:
    """A line standing alone before a capitalised one, short and without a sentence's or a clause's end
    ("4. How to make a warranty claim" / "Make a claim online ...")."""
    words = _NUMBERING.sub("", line)
    return (
        len(line) < 0.6 * widest
        and line[-1] not in _SENTENCE_END + ",-–—"
        and words[:1].isupper()
        and following[:1].isupper()
    )
