"""Paragraph and sentence boundaries as character spans, English and Chinese alike (pure functions).

Shared by the chunker (ingest) and the extractive answerer (rag), so both cut text the same way.

A sentence ends at a line break (list items, table rows), after Chinese end punctuation (。！？；, no space
needed), before an inline "; - " bullet, or after `.`, `!`, `?` or an ellipsis followed by a space, unless
what follows shows the sentence goes on: a lowercase word, a number after "No." or "p.", a time zone after
"a.m."/"p.m.", a name after "Mr." or an initial. Dots inside a token (decimals, versions, URLs, e-mail
addresses) are never candidates. An English semicolon does not end a sentence (a Chinese one does).
One regular-expression scan plus a constant-time check per candidate keeps it fast enough for ingest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_CLOSERS = "\"'”’)\\]*_"  # may follow a Western end mark: quotes, brackets, Markdown emphasis
_CJK_CLOSERS = "”’」』）)】〕》〉"
_OPENERS = "\"'“‘(（[「『*_"
_BOUNDARY = re.compile(
    r"(?P<line>\n)"
    rf"|[。！？；]+[{_CJK_CLOSERS}]*"
    rf"|(?<=[{_CJK}])[!?;]+[{_CJK_CLOSERS}]*"  # ASCII marks inside Chinese text
    r"|;(?=[ \t]+[-•‣⁃][ \t])"  # list items run into one line (PDF text): "outfitter; - water damage"
    rf"|(?P<mark>[.!?…]+)[{_CLOSERS}]*(?=\s|[{_CJK}])"
)
_LIST_MARKER = re.compile(r"\d{1,3}|[A-Za-z]|[ivxIVX]{1,4}")
_LINE_LEAD = re.compile(r"[\s\-*+•·‣⁃>]*")
_LATIN_WORD = re.compile(r"[A-Za-z']+")
_INITIALS = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]|[A-Za-z]")

# Abbreviations by how they behave before a capitalised word (after a lowercase word no sentence ends).
_ALWAYS_INSIDE = frozenset(
    "mr mrs ms mx dr prof rev hon gen capt lt col sgt sen rep gov pres messrs mme mlle st mt ft"
    " e.g eg i.e ie vs v cf viz approx appr incl excl esp ca al resp".split()
)
_BEFORE_NUMBERS = frozenset(
    "no nos nr n° nº fig figs vol vols pp art sec sect ch chap ref tel ph ext apt ste rm op par para"
    " jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri sat sun".split()
)
_COMPANIES = frozenset("co inc ltd corp llc plc bros pty lp llp".split())
_MERIDIEM = frozenset(("a.m", "p.m"))
_ZONE_AFTER_TIME = re.compile(
    r"\(?(?:[ECMP][SD]?T|AK[SD]?T|H[SD]?T|[AN][SD]T|UTC|GMT|BST|CET|CEST|JST|KST|IST|AEST"
    r"|(?:Eastern|Central|Mountain|Pacific|Atlantic|Alaska|Hawaii|Beijing|China|Greenwich|Local)"
    r"(?:\s+(?:[Ss]tandard|[Dd]aylight))?(?:\s+[Tt]ime)?"
    r"|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*\.?\s*(?:[-–—&]|to\b|through\b|thru\b|and\b))(?![A-Za-z])"
)
# Words that start a sentence after an initial or "U.S." ("... the U.S. How about ..."), where a name
# or a noun would go on ("J. Smith", "U.S. Government").
_STARTERS = frozenset(
    "a an the this that these those it its i we you he she they our your my his her their there here how what"
    " when where why who which if in on at for but and or so then please do does did is are was were can could"
    " will would should may might must have has had not no yes also however note see each every all some most"
    " any after before once while since".split()
)


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def paragraph_spans(text: str) -> list[Span]:
    """Spans of paragraphs (separated by blank lines), leading/trailing whitespace excluded."""
    spans, pos = [], 0
    for m in _PARAGRAPH_BREAK.finditer(text):
        spans.append(Span(pos, m.start()))
        pos = m.end()
    spans.append(Span(pos, len(text)))
    return [s for s in (strip_span(text, s) for s in spans) if s.end > s.start]


def sentence_spans(text: str, within: Span | None = None) -> list[Span]:
    """Spans of sentences inside `within` (default: the whole text).

    >>> text = "Hi there. 你好。好的"
    >>> [text[s.start : s.end] for s in sentence_spans(text)]
    ['Hi there.', '你好。', '好的']
    >>> text = "We open at 9 a.m. ET and close at 5 p.m. Orders ship from Pinecrest Supply Co. in Reno."
    >>> [text[s.start : s.end] for s in sentence_spans(text)]
    ['We open at 9 a.m. ET and close at 5 p.m.', 'Orders ship from Pinecrest Supply Co. in Reno.']
    """
    within = within or Span(0, len(text))
    spans, pos = [], within.start
    for m in _BOUNDARY.finditer(text, within.start, within.end):
        if m.group("mark") is None or _ends_sentence(text, m, within):
            spans.append(Span(pos, m.end()))
            pos = m.end()
    spans.append(Span(pos, within.end))
    return [s for s in (strip_span(text, s) for s in spans) if s.end > s.start]


def strip_span(text: str, span: Span) -> Span:
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end)


def _ends_sentence(text: str, m: re.Match[str], within: Span) -> bool:
    """Whether a Western end mark (`m`, followed by a space or a Chinese character) ends its sentence."""
    after = _next_word(text, m.end(), within.end)
    if not after:
        return True
    first, mark = after[0], m.group("mark")
    if first.islower() or first in ".…":  # "etc. are", "Yahoo! in", spaced ellipsis ". . ."
        return False
    if mark != ".":  # "!", "?!", or an ellipsis, which runs on into Chinese text: "等……都在"
        return not ("…" in mark or ".." in mark) or text[m.end()].isspace()
    word_start = _word_start(text, m.start(), max(within.start, m.start() - 64))
    word = text[word_start : m.start()]
    if _LIST_MARKER.fullmatch(word) and _at_line_start(text, word_start, within.start):
        return False  # "1. Open My Orders", "b. Pack the item": a list item's number
    return _period_ends(word, after)


def _period_ends(word: str, after: str) -> bool:
    """Whether "`word`." ends a sentence, given the text after it starts with `after` (not lowercase).

    >>> _period_ends("Mr", "Smith"), _period_ends("No", "5 applies"), _period_ends("No", "Returns are free")
    (False, False, True)
    >>> _period_ends("p.m", "ET and Saturday"), _period_ends("a.m", "Orders placed later")
    (False, True)
    >>> _period_ends("U.S", "Government"), _period_ends("U.S", "How about you?"), _period_ends("J", "Smith")
    (False, True, False)
    """
    key = word.lower()
    first = after[0]
    if key in _ALWAYS_INSIDE:
        return False
    if key in _BEFORE_NUMBERS:
        return not (first.isdigit() or first in "#+-–(")
    if key in _MERIDIEM:
        return not _ZONE_AFTER_TIME.match(after)
    cjk = bool(_CJK_CHAR.match(first))
    if key in _COMPANIES:
        return not (cjk or first.isdigit())
    if _INITIALS.fullmatch(word):
        return first.isupper() and _first_word(after).lower() in _STARTERS
    return True


def _next_word(text: str, pos: int, end: int) -> str:
    """A short look at what follows `pos`: spaces and opening quotes/brackets skipped."""
    while pos < end and (text[pos].isspace() or text[pos] in _OPENERS):
        pos += 1
    return text[pos : min(end, pos + 40)]


def _word_start(text: str, end: int, floor: int) -> int:
    """Where the word ending at `end` starts (opening quotes and brackets are not part of it)."""
    start = end
    while start > floor and not text[start - 1].isspace() and text[start - 1] not in _OPENERS:
        start -= 1
    return start


def _first_word(text: str) -> str:
    m = _LATIN_WORD.match(text)
    return m.group(0) if m else ""


def _at_line_start(text: str, pos: int, floor: int) -> bool:
    """Whether only spaces and bullets come between the line's start and `pos`."""
    line_start = max(text.rfind("\n", floor, pos) + 1, floor)
    return _LINE_LEAD.fullmatch(text, line_start, pos) is not None
