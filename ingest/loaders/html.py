"""HTML: visible text only (no scripts, styles, navigation); h1-h6 start sections."""

from __future__ import annotations

from pathlib import Path

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

from ingest.limits import DEFAULT_LIMITS, FileLimits, check_count
from ingest.loaders._common import clean_inline, read_text
from rag.core.types import Document, Section

_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_SKIP = {"script", "style", "noscript", "template", "nav", "footer", "aside", "form", "svg", "iframe", "head", "button"}
_BLOCKS = {"p", "li", "pre", "blockquote", "dt", "dd", "figcaption", "caption", "address", "tr"}


def load_html(path: Path, source: str, limits: FileLimits = DEFAULT_LIMITS) -> list[Document]:
    html = read_text(path)
    # Start tags (with a few comments and stray "<"), counted before BeautifulSoup spends ~1 KB on each element
    check_count(path, html.count("<") - html.count("</"), limits.max_elements, "elements")
    title, url, sections = parse_html(html)
    return [Document(source=source, title=title or path.stem, url=url, sections=sections)]


def parse_html(html: str) -> tuple[str, str | None, list[Section]]:
    """Returns (title, canonical URL or None, sections)."""
    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    url = None
    canonical = soup.find("link", rel="canonical")
    if isinstance(canonical, Tag) and canonical.get("href"):
        url = str(canonical["href"])
    walker = _Walker()
    walker.walk(soup.body or soup)
    walker.flush_section()
    if not title:
        h1 = soup.find("h1")
        title = h1.get_text(" ", strip=True) if h1 else ""
    return title, url, walker.sections


def _holds_block(tag: Tag) -> bool:
    """Whether a block or heading element is inside `tag`. Not bs4's find(): it first walks to the last
    descendant, which makes it quadratic on deep nesting; this stops at the first match."""
    pending = [iter(tag.children)]
    while pending:
        node = next(pending[-1], None)
        if node is None:
            pending.pop()
        elif isinstance(node, Tag):
            if node.name in _BLOCKS or node.name in _HEADINGS:
                return True
            pending.append(iter(node.children))
    return False


class _Walker:
    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.stack: list[tuple[int, str]] = []
        self.paragraphs: list[str] = []
        self.inline: list[str] = []

    def flush_inline(self) -> None:
        text = clean_inline("".join(self.inline))
        if text:
            self.paragraphs.append(text)
        self.inline.clear()

    def flush_section(self) -> None:
        self.flush_inline()
        if self.paragraphs:
            self.sections.append(
                Section(text="\n\n".join(self.paragraphs), heading_path=tuple(h for _, h in self.stack))
            )
        self.paragraphs = []

    def walk(self, root: Tag) -> None:
        """Depth first with an explicit stack, not recursion: valid HTML may nest deeper than Python's recursion
        limit (~1,000 levels), and each node is visited once, so hostile nesting costs linear time too."""
        open_elements = [iter(root.children)]
        while open_elements:
            child = next(open_elements[-1], None)
            if child is None:
                open_elements.pop()
                if open_elements:  # leaving a container element
                    self.flush_inline()
                continue
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                self.inline.append(str(child))
                continue
            if not isinstance(child, Tag) or child.name in _SKIP:
                continue
            name = child.name
            if name in _HEADINGS:
                self.flush_section()
                level = _HEADINGS[name]
                while self.stack and self.stack[-1][0] >= level:
                    self.stack.pop()
                heading = child.get_text(" ", strip=True)
                if heading:
                    self.stack.append((level, heading))
            elif name == "br":
                self.inline.append("\n")
            elif name in _BLOCKS and not _holds_block(child):
                self.flush_inline()
                separator = " | " if name == "tr" else " "
                cells = child.find_all(["td", "th"]) if name == "tr" else None
                text = (
                    separator.join(c.get_text(" ", strip=True) for c in cells)
                    if cells
                    else child.get_text(" " if name != "pre" else "", strip=name != "pre")
                )
                text = clean_inline(text)
                if text:
                    self.paragraphs.append(text)
            elif name in {
                "a",
                "span",
                "b",
                "strong",
                "i",
                "em",
                "code",
                "small",
                "sup",
                "sub",
                "mark",
                "abbr",
                "u",
                "s",
                "time",
                "label",
                "q",
                "cite",
            }:
                self.inline.append(child.get_text(""))
            else:
                self.flush_inline()
                open_elements.append(iter(child.children))
