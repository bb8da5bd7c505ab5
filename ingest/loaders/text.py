"""Plain text and Markdown. Markdown headings (ATX `#` and setext underlines) start sections."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.limits import DEFAULT_LIMITS, FileLimits, check_count
from ingest.loaders._common import read_text
from rag.core.types import Document, Section

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def load_text(path: Path, source: str, limits: FileLimits = DEFAULT_LIMITS) -> list[Document]:
    """One section, whatever the length: there is no per-line work to bound (the file's size is the cost)."""
    text = read_text(path).strip()
    return [Document(source=source, title=path.stem, sections=[Section(text=text)])]


def load_markdown(path: Path, source: str, limits: FileLimits = DEFAULT_LIMITS) -> list[Document]:
    text = read_text(path)
    check_count(path, text.count("\n"), limits.max_elements, "lines")  # each line can start a section
    title, sections = parse_markdown(text)
    return [Document(source=source, title=title or path.stem, sections=sections)]


def parse_markdown(text: str) -> tuple[str, list[Section]]:
    """Split Markdown into sections by heading; returns (first level-1 heading or "", sections)."""
    text = _strip_front_matter(text)
    lines = text.splitlines()
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []  # (level, heading)
    buf: list[str] = []
    title = ""
    fence: str | None = None

    def flush() -> None:
        body = "\n".join(buf).strip()
        if body:
            sections.append(Section(text=body, heading_path=tuple(h for _, h in stack)))
        buf.clear()

    def open_heading(level: int, heading: str) -> None:
        nonlocal title
        flush()
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, heading))
        if level == 1 and not title:
            title = heading

    for i, line in enumerate(lines):
        fm = _FENCE.match(line)
        if fm:
            marker = fm.group(1)[0]
            fence = None if fence == marker else (fence or marker)
            buf.append(line)
            continue
        if fence:
            buf.append(line)
            continue
        m = _ATX.match(line)
        if m and m.group(2):
            open_heading(len(m.group(1)), m.group(2).strip())
            continue
        # setext: a non-blank paragraph line followed by === or ---
        if _SETEXT.match(line) and buf and buf[-1].strip() and (i < 2 or not lines[i - 2].strip()):
            heading = buf.pop().strip()
            open_heading(1 if line.strip().startswith("=") else 2, heading)
            continue
        buf.append(line)
    flush()
    return title, sections


def _strip_front_matter(text: str) -> str:
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            return text[end + 4 :]
    return text
