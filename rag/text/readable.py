"""Chunk text (Markdown, or the plain text the loaders make of HTML, Word and PDF files) as prose a customer can
read: table rows become sentences that pair each value with its column's header, list items lose their bullets
and numbers and end like sentences, emphasis, code and heading markers go, links keep their text (pure functions).

Line structure is kept (one table row or list item per line, blank lines between paragraphs), so
`rag.text.sentences.sentence_spans` still sees each row and item as a sentence of its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_OR_MARK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef“”‘’]")
_FENCE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_QUOTE = re.compile(r"^[ \t]*(?:>[ \t]?)+")
_BULLET = re.compile(
    r"^[ \t]*(?:(?:[-*+•·‣⁃▪◦]|\d{1,3}[.)]|[a-z][.)]|[(（]\d{1,3}[)）])[ \t]+"
    r"|\d{1,3}[、．][ \t]*|[一二三四五六七八九十]{1,3}、[ \t]*|[(（][一二三四五六七八九十]{1,3}[)）][ \t]*)"
)
_TABLE_SEPARATOR = re.compile(r"^[ \t]*\|?[ \t]*:?-{2,}:?[ \t]*(?:\|[ \t]*:?-{2,}:?[ \t]*)*\|?[ \t]*$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_HEADER_UNLIKELY = re.compile(r"[\d$¥€£,，、;；.。:：!?！？]")
_HEADER_CELL_CHARS = 40
_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # image: its alt text
    (re.compile(r"\[([^\]]+)\]\((?:[^()\s]|\([^()\s]*\))*(?:[ \t]+(?:\"[^\"]*\"|'[^']*'))?\)"), r"\1"),  # link
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # reference link
    (re.compile(r"<((?:https?://|mailto:)[^>\s]+|[^>\s@]+@[^>\s@]+)>"), r"\1"),  # autolink
    (re.compile(r"(`+)(.+?)\1"), r"\2"),  # code
    (re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"), r"\1"),  # bold
    (re.compile(r"(?<![\w.])__(?=[^\s_])(.+?)(?<=[^\s_])__(?![\w.])"), r"\1"),  # bold __x__, not __dunder__ code
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),  # strikethrough
    (re.compile(r"(?<![\w*\\])\*(?=[^\s*])(.+?)(?<=[^\s*\\])\*(?![\w*])"), r"\1"),  # italic *x*
    (re.compile(r"(?<![\w\\])_(?=[^\s_])(.+?)(?<=[^\s_\\])_(?!\w)"), r"\1"),  # italic _x_, not snake_case
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])"), r"\1"),  # backslash escapes
]
_SENTENCE_END = ".!?。！？…"
_SOFT_END = ";,；，、"


def readable_text(text: str) -> str:
    """`text` as readable prose, one sentence-like line per table row or list item.

    >>> print(readable_text("| Method | Delivery time | Cost |\\n|---|---|---|\\n| Express | 1-2 days | $12.95 |"))
    Express — Delivery time: 1-2 days; Cost: $12.95.
    >>> print(readable_text("## Gift cards\\n- **Never** expire\\n- See [our FAQ](https://example.com/faq)"))
    Gift cards
    Never expire.
    See our FAQ.
    """
    lines = text.split("\n")
    out: list[str] = []
    fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            fence = not fence
        elif fence:
            out.append(line)
        elif _is_table_row(line):
            end = _table_end(lines, i)
            out.extend(_table_lines(lines[i:end]))
            i = end
            continue
        else:
            out.append(readable_line(line, standalone=_ends_paragraph(lines, i)))
        i += 1
    return _tidy_blank_lines(out)


def readable_line(line: str, standalone: bool = True) -> str:
    """One line as readable text: no heading, quote, bullet or emphasis markers; a list item (or, when
    `standalone`, a line ending in a comma or semicolon, as Word and HTML lists arrive) ends like a sentence.

    >>> readable_line("### Returns"), readable_line("1. **open** My Orders"), readable_line("- 礼品卡；")
    ('Returns', 'Open My Orders.', '礼品卡。')
    >>> readable_line("the card has expired;"), readable_line("the card has expired,", standalone=False)
    ('The card has expired.', 'the card has expired,')
    >>> readable_line("US store | US dollars (USD) | Visa, PayPal")
    'US store: US dollars (USD); Visa, PayPal.'
    """
    if _RULE.match(line) or _FENCE.match(line):
        return ""
    heading = _HEADING.match(line)
    if heading:
        return plain_inline(heading.group(1))
    line = _QUOTE.sub("", line)
    if _is_table_row(line):
        return "" if _TABLE_SEPARATOR.match(line) else row_sentence(table_cells(line))
    bullet = _BULLET.match(line)
    text = tidy_spaces(plain_inline(line[bullet.end() :] if bullet else line)).strip()
    if bullet or (standalone and text.endswith(tuple(_SOFT_END))):
        return as_sentence(text)
    return text


_SPACE_BEFORE_MARK = re.compile(r"(?<=[\w)\]”’\"'])[ \t]+(?=[.,;:!?](?:\s|$))")
_CJK_TEXT = r"[\u3000-\u303f\uff00-\uffef\u3400-\u4dbf\u4e00-\u9fff]"  # Chinese characters and punctuation
_SPACE_BY_CJK = re.compile(rf"(?<={_CJK_TEXT})[ \t]+(?={_CJK_TEXT})")


def tidy_spaces(text: str) -> str:
    """No space before a closing punctuation mark, nor between Chinese characters and punctuation (text
    extracted from HTML often has them where inline elements met).

    >>> tidy_spaces("the same product . For example, open My Orders , then Exchange .")
    'the same product. For example, open My Orders, then Exchange.'
    >>> tidy_spaces("商品由美国仓发出， 我们无法开具发票 （包括普通发票）。 Version 2.5 stays")
    '商品由美国仓发出，我们无法开具发票（包括普通发票）。 Version 2.5 stays'
    """
    return _SPACE_BY_CJK.sub("", _SPACE_BEFORE_MARK.sub("", text))


def plain_inline(text: str) -> str:
    """`text` without Markdown emphasis, code and link markup.

    >>> plain_inline("Open **My Orders** (see [help](https://x.example/help \\"Help\\")); run `rag ask`, *now*.")
    'Open My Orders (see help); run rag ask, now.'
    >>> plain_inline("snake_case_name and 2 * 3 * 4 stay")
    'snake_case_name and 2 * 3 * 4 stay'
    """
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text


def as_sentence(text: str) -> str:
    """`text` ending like a sentence (a trailing comma or semicolon replaced), its first word capitalised
    when all lowercase; Chinese text gets Chinese punctuation.

    >>> as_sentence("standard shipping is free"), as_sentence("iPhone cases,"), as_sentence("礼品卡；")
    ('Standard shipping is free.', 'iPhone cases.', '礼品卡。')
    >>> as_sentence("Need help?"), as_sentence("Steps:"), as_sentence("")
    ('Need help?', 'Steps:', '')
    """
    text = text.strip()
    if not text or text[-1] in _SENTENCE_END or text[-1] in ":：":
        return text
    text = text.rstrip(_SOFT_END).rstrip()
    first = re.match(r"[a-z]+\b", text)
    if first:
        text = text[0].upper() + text[1:]
    return text + _end_mark(text)


def table_cells(line: str) -> list[str]:
    """The cells of a table row (`| a | b |` or the loaders' `a | b`), their markup removed.

    >>> table_cells("| **Standard** | 3-5 days | $5.95 |"), table_cells("Store | Currency")
    (['Standard', '3-5 days', '$5.95'], ['Store', 'Currency'])
    """
    inner = line.strip()
    if inner.startswith("|"):
        inner = inner[1:]
    if inner.endswith("|") and not inner.endswith("\\|"):
        inner = inner[:-1]
    return [plain_inline(cell.strip()).replace("\\|", "|") for cell in _CELL_SPLIT.split(inner)]


def row_sentence(cells: Sequence[str], header: Sequence[str] | None = None) -> str:
    """A table row as one sentence: the first cell names the row, each other value follows its header.

    >>> row_sentence(["Standard", "3-5 business days", "$5.95"], ["Method", "Delivery time", "Cost"])
    'Standard — Delivery time: 3-5 business days; Cost: $5.95.'
    >>> row_sentence(["加急配送", "顺丰速运", "¥198"], ["配送方式", "承运商", "运费"])
    '加急配送——承运商：顺丰速运，运费：¥198。'
    >>> row_sentence(["开箱品和翻新品", "所有品类", "90天"]), row_sentence(["Express", "", "$12.95"])
    ('开箱品和翻新品：所有品类，90天。', 'Express: $12.95.')
    """
    chinese = any(_CJK.search(cell) for cell in cells)
    label, rest = (cells[0].strip(), cells[1:]) if cells else ("", [])
    names = list(header[1:]) if header else []
    parts = []
    for i, value in enumerate(v.strip() for v in rest):
        name = names[i].strip() if i < len(names) else ""
        if value:
            parts.append(f"{name}{'：' if chinese else ': '}{value}" if name else value)
    body = ("，" if chinese else "; ").join(parts)
    if not body:
        return as_sentence(label)
    if not label:
        return as_sentence(body)
    if header:
        return as_sentence(f"{label}{'——' if chinese else ' — '}{body}")
    return as_sentence(f"{label}{'：' if chinese else ': '}{body}")


def flat_text(text: str) -> str:
    """`text` as readable prose on one line: lines joined by a space, or by nothing between Chinese ones.

    >>> flat_text("- Free returns\\n- 30 days\\n\\n退货免费\\n\\n三十天内")
    'Free returns. 30 days. 退货免费三十天内'
    """
    lines = [" ".join(line.split()) for line in readable_text(text).split("\n")]
    out = ""
    for line in filter(None, lines):
        glue = "" if not out or (_CJK_OR_MARK.match(out[-1]) and _CJK_OR_MARK.match(line[0])) else " "
        out += glue + line
    return out


def cut_at_word(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start cut at a word boundary (between Chinese
    characters any boundary is one), ending in "…", `limit` characters at most.

    >>> cut_at_word("Returns are free within 30 days.", 24), cut_at_word("退货政策适用于所有订单", 6)
    ('Returns are free within…', '退货政策适…')
    """
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    inside_word = not text[limit - 1].isspace() and not _CJK.match(text[limit - 1]) and not _CJK.match(cut[-1])
    space = cut.rfind(" ")
    if inside_word and space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:，；：、—-") + "…"


def heading_trail(title: str, heading_path: Sequence[str]) -> str:
    """The headings of a passage for a citation, without the leading ones that only repeat the title.

    >>> heading_trail("Shipping Policy", ["Shipping Policy", "Canada"])
    'Canada'
    >>> heading_trail("Shipping  policy", ["shipping POLICY"]), heading_trail("FAQ", ["Returns", "FAQ"])
    ('', 'Returns > FAQ')
    """
    key = _heading_key(title)
    trail = list(heading_path)
    while trail and _heading_key(trail[0]) == key:
        trail.pop(0)
    return " > ".join(h.strip() for h in trail)


def _heading_key(heading: str) -> str:
    return " ".join(heading.split()).casefold()


def _end_mark(text: str) -> str:
    """The full stop of the language of the last word: "。" after Chinese, "." after anything else."""
    for char in reversed(text):
        if _CJK.match(char):
            return "。"
        if char.isascii() and char.isalpha():
            return "."
    return "."


def _is_table_row(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith("|") or " | " in stripped


def _table_end(lines: list[str], start: int) -> int:
    """Index after the table starting at `start`; Word and HTML tables have blank lines between rows."""
    end = i = start + 1
    while i < len(lines):
        if _is_table_row(lines[i]):
            end = i + 1
        elif lines[i].strip():
            break
        i += 1
    return end


def _table_lines(lines: list[str]) -> list[str]:
    """A table's lines as sentences (blank lines between rows kept); the header row is folded into each row."""
    rows = [(i, table_cells(line)) for i, line in enumerate(lines) if _is_table_row(line)]
    separators = {i for i, line in enumerate(lines) if _TABLE_SEPARATOR.match(line)}
    data = [(i, cells) for i, cells in rows if i not in separators]
    header: list[str] | None = None
    if data and (set(range(data[0][0] + 1, len(lines))) & separators or _looks_like_header(data)):
        header = data[0][1]
        data = data[1:]
        if not data:  # a header without rows, as a chunk may end: keep its words
            return [as_sentence(", ".join(c for c in header if c))]
    sentences = {i: row_sentence(cells, header) for i, cells in data}
    return [sentences.get(i, "") for i, line in enumerate(lines) if i in sentences or not line.strip()]


def _looks_like_header(rows: list[tuple[int, list[str]]]) -> bool:
    """Tables from HTML and Word have no separator row: a first row of short labels, as wide as the next,
    is taken for the header."""
    if len(rows) < 2 or len(rows[0][1]) != len(rows[1][1]) or len(rows[0][1]) < 2:
        return False
    return all(c and len(c) <= _HEADER_CELL_CHARS and not _HEADER_UNLIKELY.search(c) for c in rows[0][1])


def _ends_paragraph(lines: list[str], i: int) -> bool:
    """Whether line `i` stands on its own (a blank line, a list item or the end follows), rather than being
    one of the wrapped lines of a paragraph."""
    nxt = lines[i + 1] if i + 1 < len(lines) else ""
    return not nxt.strip() or bool(_BULLET.match(nxt)) or _is_table_row(nxt)


def _tidy_blank_lines(lines: list[str]) -> str:
    """Lines joined, dropped lines not leaving runs of blank lines behind."""
    text = "\n".join(lines)
    return re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text).strip()
