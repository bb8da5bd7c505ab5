"""Citations that hold: each cited claim of an answer checked against the passage it cites (pure functions).

An answer is cut into sentences (rag.text.sentences) and each sentence at its [n] markers into claims: the
words a marker follows, back to the previous marker or the start of the sentence. A marker that opens a
sentence ("... 3-5 business days. [1] Express ...", as the extractive generator writes them) belongs to the
sentence before it. Passages support a claim when

- every number in the claim (prices, times, quantities) occurs in them: a wrong number is the costliest
  mistake a support bot makes, and the one a customer acts on; and
- at least half of the claim's content terms (rag.text.lexical.terms: English stems, Chinese character
  bigrams) occur in them, 40% for a mostly Chinese claim: a paraphrase keeps the words but rarely the bigrams
  that straddle two words ("申请退货" and "退货申请" share one of three).

A claim citing several passages is checked against them together (a sentence may join two facts); a passage
that supports it alone stays cited, and so does one that holds something of it the others do not. A marker whose
passage does not support its claim moves to the retrieved passage that supports it best, or is dropped. The
markers left are renumbered [1], [2], ... in order of first use. A sentence with a number that no retrieved
passage holds is reported as unsupported; the caller decides (`drop_unsupported` removes it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.core.types import Citation, Passage
from rag.generation.citations import make_citation, parse_citations
from rag.text.language import CJK_CHAR, cjk_share
from rag.text.lexical import terms
from rag.text.sentences import Span, sentence_spans

TERM_SHARE = 0.5
TERM_SHARE_ZH = 0.4

# as parse_citations leaves them: [n], n of 1 to 3 digits
_GROUP = re.compile(r"\[\d{1,3}\](?:[ \t]*\[\d{1,3}\])*")
_MARKER = re.compile(r"\[(\d{1,3})\]")
_SPACED_MARKER = re.compile(r"[ \t]*\[\d{1,3}\]")
# "1,000" is one number, "2:30" a time; "3-5" two numbers
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+|:\d{2})?")
# a list item's ordinal ("1. ", "2) ", "3、") is layout, not a fact to find in a passage
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]\s+|\d{1,2}(?:[.)](?=\s|$)|、))")
_EN_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())
} | {"fifteen": "15", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "ninety": "90"}
_EN_WORD = re.compile(r"\b(" + "|".join(_EN_NUMBER_WORDS) + r")\b", re.IGNORECASE)
_ZH_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
_ZH_NUMERAL = re.compile("[零〇一二两三四五六七八九十百千]+")


@dataclass(frozen=True)
class MarkerChange:
    """A marker the check moved or dropped: `marker` as the model wrote it and `moved_to` (None: dropped) are
    passage numbers (1-based, in the order the passages were given); `claim` is the text it was attached to."""

    marker: int
    moved_to: int | None
    claim: str
    reason: str


@dataclass(frozen=True)
class GroundedText:
    """The checked answer: `text` cites [1]..[n], marker [i] pointing at `cited[i - 1]`; `renumbered` maps each
    cited passage number (1-based, as given) to its marker in `text`."""

    text: str
    cited: list[Passage]
    renumbered: dict[int, int]
    changes: list[MarkerChange]
    unsupported: list[str]  # sentences with a number that no passage holds (removed if asked to)

    def citations(self) -> list[Citation]:
        return [make_citation(marker, passage) for marker, passage in enumerate(self.cited, 1)]


@dataclass(frozen=True)
class _Evidence:
    terms: frozenset[str]
    numbers: frozenset[str]


@dataclass(frozen=True)
class _Group:
    """Adjacent markers: where they are, the passage numbers written, whose sentence they are and what they
    vouch for."""

    span: Span
    written: tuple[int, ...]
    owner: int
    claim: str


def numbers(text: str) -> set[str]:
    """The numbers written in digits, canonical: thousands separators, leading zeros, ":00" and trailing
    decimal zeros go.

    >>> sorted(numbers("$1,250.00 by 09:00, or 3-5 days at 12.50 each; 2:30 pm"))
    ['12.5', '1250', '2:30', '3', '5', '9']
    """
    return {_canonical(m.group()) for m in _NUMBER.finditer(text)}


def _canonical(number: str) -> str:
    plain = number.replace(",", "")
    if ":" in plain:
        hours, minutes = plain.split(":")
        return str(int(hours)) if minutes == "00" else f"{int(hours)}:{minutes}"
    whole, _, decimals = plain.partition(".")
    decimals = decimals.rstrip("0")
    return f"{int(whole)}.{decimals}" if decimals else str(int(whole))


def spelled_numbers(text: str) -> set[str]:
    """Numbers written in words, English up to twelve and the tens, Chinese numerals: a passage's "two years" or
    "三十天" supports an answer's "2 years" or "30天".

    >>> sorted(spelled_numbers("Two years, 三十天, 两个工作日, 十五分钟"), key=int)
    ['2', '15', '30']
    """
    found = {_EN_NUMBER_WORDS[m.group(1).lower()] for m in _EN_WORD.finditer(text)}
    return found | {str(_zh_value(m.group())) for m in _ZH_NUMERAL.finditer(text)}


def _zh_value(numeral: str) -> int:
    """一百零五 -> 105, 十五 -> 15, 二〇二四 -> 2024 (digits alone read as a digit string)."""
    if not any(c in _ZH_UNITS for c in numeral):
        return int("".join(str(_ZH_DIGITS[c]) for c in numeral))
    total, current = 0, 0
    for c in numeral:
        if c in _ZH_UNITS:
            total += (current or 1) * _ZH_UNITS[c]
            current = 0
        else:
            current = _ZH_DIGITS[c]
    return total + current


def _evidence(passage: Passage) -> _Evidence:
    # the title and headings are in the prompt too, and may hold the claim's subject
    text = passage.chunk.embedding_text()
    # a claim's one-character Chinese term (the 天 of "30天") matches that character anywhere in the passage
    return _Evidence(
        frozenset(terms(text) | set(CJK_CHAR.findall(text))), frozenset(numbers(text) | spelled_numbers(text))
    )


def _plain(text: str) -> str:
    """A claim's words without its markers or list ordinal."""
    return _LIST_ITEM.sub("", _SPACED_MARKER.sub("", text)).strip()


def share(claim_terms: set[str], evidence: _Evidence) -> float:
    """How much of a claim's content terms the evidence holds (1 for a claim without any)."""
    return len(claim_terms & evidence.terms) / len(claim_terms) if claim_terms else 1.0


def supports(claim: str, evidence: _Evidence) -> bool:
    """Whether the evidence holds all of the claim's numbers and enough of its terms."""
    needed = TERM_SHARE_ZH if cjk_share(claim) > 0.5 else TERM_SHARE
    return numbers(claim) <= evidence.numbers and share(terms(claim), evidence) >= needed


def _union(evidence: Sequence[_Evidence]) -> _Evidence:
    return _Evidence(frozenset().union(*(e.terms for e in evidence)), frozenset().union(*(e.numbers for e in evidence)))


def _why(passage_number: int, claim: str, evidence: _Evidence) -> str:
    missing = numbers(claim) - evidence.numbers
    if missing:
        return f"passage {passage_number} does not mention {', '.join(sorted(missing))}"
    claim_terms = terms(claim)
    held = len(claim_terms & evidence.terms)
    return f"passage {passage_number} holds {held} of the claim's {len(claim_terms)} content terms"


def _verdict(
    claim: str, written: tuple[int, ...], evidence: Sequence[_Evidence]
) -> tuple[list[int], list[MarkerChange]]:
    """The passage numbers a group of markers should cite, and what changed."""
    if not terms(claim) and not numbers(claim):
        return list(written), []  # "Yes [1]." holds nothing to check
    if supports(claim, _union([evidence[n - 1] for n in written])):
        kept = _members(claim, written, evidence)
        why = "adds nothing to the cited passages that support it"
        return kept, [MarkerChange(n, None, claim, f"passage {n} {why}") for n in written if n not in kept]
    best = _best_support(claim, evidence)
    changes = [MarkerChange(n, best, claim, _why(n, claim, evidence[n - 1])) for n in written]
    return ([best] if best else []), changes


def _members(claim: str, written: tuple[int, ...], evidence: Sequence[_Evidence]) -> list[int]:
    """Which of several passages that support a claim together stay cited: each that supports it alone, then,
    best first, each that holds some of its terms or numbers that those kept do not."""
    claim_terms = terms(claim)
    best_first = sorted(written, key=lambda n: -share(claim_terms, evidence[n - 1]))
    kept = [n for n in best_first if supports(claim, evidence[n - 1])]
    wanted = claim_terms | numbers(claim)
    for n in best_first:
        held = _union([evidence[k - 1] for k in kept])
        if n not in kept and wanted & _everything(evidence[n - 1]) - _everything(held):
            kept.append(n)
    return [n for n in written if n in kept]


def _everything(evidence: _Evidence) -> frozenset[str]:
    return evidence.terms | evidence.numbers


def _best_support(claim: str, evidence: Sequence[_Evidence]) -> int | None:
    """The passage number that supports the claim with most of its terms (the better-ranked on a tie)."""
    claim_terms = terms(claim)
    ranked = sorted(
        (n for n, e in enumerate(evidence, 1) if supports(claim, e)), key=lambda n: -share(claim_terms, evidence[n - 1])
    )
    return ranked[0] if ranked else None


def _groups(text: str, sentences: list[Span], count: int) -> list[_Group]:
    """The marker groups of a normalised answer (pointing at `count` passages), each with its owning sentence
    and claim."""
    out: list[_Group] = []
    last_end: dict[int, int] = {}  # sentence -> end of the last marker group inside it
    for m in _GROUP.finditer(text):
        written = tuple(int(n) for n in _MARKER.findall(m.group()))
        if not all(1 <= n <= count for n in written):
            continue  # text that only looks like markers ("[[9]1]" once [9] was dropped)
        inside = max((i for i, s in enumerate(sentences) if s.start <= m.start()), default=0)
        sentence = sentences[inside]
        opens = not text[sentence.start : m.start()].strip()
        owner = inside - 1 if opens and inside > 0 else inside
        start = last_end.get(owner, sentences[owner].start)
        claim = _plain(text[start : sentences[owner].end if owner != inside else m.start()])
        if not terms(claim) and not numbers(claim):
            claim = _plain(text[sentences[owner].start : sentences[owner].end])
        out.append(_Group(Span(m.start(), m.end()), written, owner, claim))
        last_end[inside] = m.end()
    return out


def _unsupported(text: str, sentences: list[Span], evidence: Sequence[_Evidence]) -> list[int]:
    """Indexes of the sentences holding a number that no passage holds."""
    everything = _union(evidence).numbers
    return [i for i, s in enumerate(sentences) if numbers(_plain(text[s.start : s.end])) - everything]


def _edits(
    text: str, sentences: list[Span], groups: list[_Group], cite: list[list[int]], dropped: set[int]
) -> list[tuple[int, int, str]]:
    """(start, end, replacement) edits, in text order and not overlapping."""
    edits = [(*_with_trailing_space(text, sentences[i]), "") for i in sorted(dropped)]
    for group, numbers_ in zip(groups, cite, strict=True):
        inside_dropped = any(sentences[i].start <= group.span.start < sentences[i].end for i in dropped)
        if inside_dropped:
            continue
        markers = "" if group.owner in dropped else "".join(f"[{n}]" for n in dict.fromkeys(numbers_))
        if markers == text[group.span.start : group.span.end]:
            continue
        start = group.span.start
        if (
            not markers and group.owner not in dropped
        ):  # the space before a dropped marker goes with it: "days [7]." -> "days."
            while start > 0 and text[start - 1] in " \t":
                start -= 1
        edits.append((start, group.span.end, markers))
    return sorted(edits)


def _with_trailing_space(text: str, span: Span) -> tuple[int, int]:
    end = span.end
    while end < len(text) and text[end] in " \t":
        end += 1
    return span.start, end


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, replacement in reversed(edits):
        text = text[:start] + replacement + text[end:]
    if edits:
        text = re.sub(r"[ \t]+([.,;:!?。，；：！？]|\n)", r"\1", text)
        text = re.sub(r"(?<=\S)[ \t]{2,}", " ", text)
    return text.strip()


def renumber(text: str, count: int) -> tuple[str, dict[int, int]]:
    """Markers [1]..[count] renumbered 1, 2, 3 ... in order of first use, and the mapping old -> new.

    >>> renumber("Free [3]. Thirty days [1][3]. Ten [4] of [40].", count=4)
    ('Free [1]. Thirty days [2][1]. Ten [3] of [40].', {3: 1, 1: 2, 4: 3})
    """
    mapping: dict[int, int] = {}
    for n in map(int, _MARKER.findall(text)):
        if 1 <= n <= count:
            mapping.setdefault(n, len(mapping) + 1)
    return _MARKER.sub(lambda m: f"[{mapping.get(int(m.group(1)), m.group(1))}]", text), mapping


def check_citations(answer_text: str, passages: Sequence[Passage], *, drop_unsupported: bool = False) -> GroundedText:
    """Check every cited claim against its passage(s), move or drop the markers that do not hold, renumber.

    >>> from rag.core.types import Chunk
    >>> ps = [Passage(Chunk(doc_id=str(i), source="faq.md", text=t, position=0), 0.9) for i, t in enumerate([
    ...     "Gift cards never expire.", "Standard shipping takes 3-5 business days."])]
    >>> g = check_citations("Standard shipping takes 3-5 business days [1]. Gift cards never expire [1].", ps)
    >>> g.text, [p.chunk.doc_id for p in g.cited]
    ('Standard shipping takes 3-5 business days [1]. Gift cards never expire [2].', ['1', '0'])
    """
    text, _ = parse_citations(answer_text, passages)  # same forms accepted, markers to nowhere already gone
    sentences = sentence_spans(text) or [Span(0, len(text))]
    evidence = [_evidence(p) for p in passages]
    groups = _groups(text, sentences, len(passages))
    verdicts = [_verdict(g.claim, g.written, evidence) for g in groups]
    unsupported = _unsupported(text, sentences, evidence)
    dropped = set(unsupported) if drop_unsupported else set()
    edits = _edits(text, sentences, groups, [kept for kept, _ in verdicts], dropped)
    final, mapping = renumber(_apply(text, edits), len(passages))
    return GroundedText(
        text=final,
        cited=[passages[n - 1] for n in mapping],
        renumbered=mapping,
        changes=[change for _, changes in verdicts for change in changes],
        unsupported=[_plain(text[sentences[i].start : sentences[i].end]) for i in unsupported],
    )


def grounded_citations(
    answer: str, passages: Sequence[Passage], *, drop_unsupported: bool = False
) -> tuple[str, list[Citation]]:
    """`parse_citations` with the checks: (answer citing [1]..[n] consecutively, citations in marker order)."""
    grounded = check_citations(answer, passages, drop_unsupported=drop_unsupported)
    return grounded.text, grounded.citations()
