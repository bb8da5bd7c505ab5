"""Answers without a language model: the few sentences of the top passages that best match the question.

Each sentence is scored by how much of the question's weighted vocabulary it covers (English words with
light stemming, Chinese character bigrams; weights are inverse document frequencies over the candidate
sentences) plus its passage's retrieval score. The best few, without near-duplicates, are returned in
reading order, each group followed by its [n] citation. (Curated FAQ rows that match the question closely
are answered verbatim before any generator runs: see rag.chat.service and rag.decline.faq_match.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from rag.core.types import Passage, Usage
from rag.generation.protocol import GenerationRequest
from rag.generation.safety import looks_like_injection
from rag.text.lexical import terms
from rag.text.sentences import sentence_spans
from rag.text.similarity import jaccard

# What kind of answer a question asks for, and what such an answer looks like in a sentence. Questions
# rarely share words with the fact that answers them ("how long" vs "3-5 business days"), so a matching
# answer type earns a sentence a bonus.
_ANSWER_TYPES = [
    (
        re.compile(
            r"\bhow (long|soon|many days|many hours|many weeks)\b|\bwhen\b|\bwhat time\b"
            r"|多久|多长时间|几天|什么时候|何时|时效|多快",
            re.I,
        ),
        re.compile(
            r"\d+\s*(-|–|to)?\s*\d*\s*(business\s+|working\s+|calendar\s+)?(days?|hours?|weeks?|months?|years?|minutes?)\b"
            r"|\b(today|tomorrow|same day|next day|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b"
            r"|\d{1,2}(:\d{2})?\s*(a\.?m\.?|p\.?m\.?)|\d+\s*(个)?(工作日|天|小时|周|个月|年)|当天|次日|\b(19|20)\d{2}\b",
            re.I,
        ),
    ),
    (
        re.compile(r"\bhow much\b|\bcost\b|\bprice\b|\bfee\b|\bcharge\b|多少钱|费用|价格|运费|收费", re.I),
        re.compile(r"[$¥€£]\s?\d|\d+(\.\d+)?\s*(usd|dollars?|cad|元|块)|\bfree\b|免费|包邮", re.I),
    ),
    (re.compile(r"\bhow many\b|\bhow much\b|多少|几个|几次", re.I), re.compile(r"\d")),
    (re.compile(r"\bwho\b|谁", re.I), re.compile(r"\b[A-Z][a-z]+(\s+[A-Z][a-z]+)+")),
    (
        re.compile(r"\bwhere\b|哪里|在哪|什么地方", re.I),
        re.compile(r"\b(in|at|from|to)\s+[A-Z][a-z]+|省|市|地址|address", re.I),
    ),
]
_TYPE_BONUS = 0.3
# A sentence about another year than the one asked about is usually the distractor ("won in 2019" for a
# question about 2021): it is left out when some sentence names the year asked about, else it loses this much.
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
_OTHER_YEAR_PENALTY = 0.3
_MARKUP = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+|\*\*|__|`")


@dataclass
class _Candidate:
    passage_index: int  # 0-based; cited as passage_index + 1
    start: int
    text: str
    terms: set[str]
    score: float = 0.0


class ExtractiveGenerator:
    name = "extractive"
    needs_prompt = False

    def __init__(self, max_sentences: int = 3, max_passages: int = 5):
        if max_sentences <= 0:
            raise ValueError(f"max_sentences must be greater than 0. Currently, the max_sentences is {max_sentences}")
        self.max_sentences = max_sentences
        self.max_passages = max_passages

    def stream(self, request: GenerationRequest) -> Iterator[str | Usage]:
        yield from self.compose(request.question, request.passages, request.language)
        yield Usage()

    def compose(self, question: str, passages: list[Passage], language: str) -> list[str]:
        """The answer as pieces (one per cited group), ready to stream."""
        passages = passages[: self.max_passages]
        if not passages:
            return []
        candidates = self._candidates(passages)
        if not candidates:
            return []
        q_terms = terms(question)
        idf = self._idf(candidates)
        q_weight = sum(idf.get(t, self._unseen_idf(len(candidates))) for t in q_terms) or 1.0
        best_passage = max(p.score for p in passages) or 1.0
        shapes = [shape for asks, shape in _ANSWER_TYPES if asks.search(question)]
        years = set(_YEAR.findall(question))
        if years and any(years & set(_YEAR.findall(c.text)) for c in candidates):
            candidates = [c for c in candidates if not _YEAR.search(c.text) or years & set(_YEAR.findall(c.text))]
        for c in candidates:
            coverage = sum(idf[t] for t in q_terms & c.terms) / q_weight
            typed = _TYPE_BONUS if any(shape.search(c.text) for shape in shapes) else 0.0
            mentioned = set(_YEAR.findall(c.text))
            off_year = _OTHER_YEAR_PENALTY if years and mentioned and not (years & mentioned) else 0.0
            c.score = (
                coverage
                + typed
                - off_year
                + 0.35 * max(passages[c.passage_index].score, 0) / best_passage
                - 0.03 * c.passage_index
            )

        ranked = sorted(candidates, key=lambda c: c.score, reverse=True)
        chosen: list[_Candidate] = []
        for c in ranked:
            if len(chosen) == self.max_sentences or c.score < 0.6 * ranked[0].score:
                break
            if any(_similar(c.terms, o.terms) for o in chosen):
                continue
            chosen.append(c)
        chosen.sort(key=lambda c: (c.passage_index, c.start))

        pieces: list[str] = []
        group: list[str] = []
        for i, c in enumerate(chosen):
            group.append(c.text)
            last_of_group = i + 1 == len(chosen) or chosen[i + 1].passage_index != c.passage_index
            if last_of_group:
                joiner = "" if language == "zh" else " "
                pieces.append(self._cite(joiner.join(group), c.passage_index + 1, language, leading=bool(pieces)))
                group = []
        return pieces

    @staticmethod
    def _cite(text: str, marker: int, language: str, leading: bool = False) -> str:
        sep = "" if language == "zh" else " "
        return (sep if leading else "") + f"{text}{sep}[{marker}]"

    @staticmethod
    def _candidates(passages: list[Passage]) -> list[_Candidate]:
        out = []
        for i, p in enumerate(passages):
            text = p.chunk.text
            for span in sentence_spans(text):
                sentence = clean_markup(text[span.start : span.end])
                sentence_terms = terms(sentence)
                # fragments such as "..." or a lone heading word carry no answer
                if len(sentence) < 4 or not sentence_terms or looks_like_injection(sentence):
                    continue
                out.append(_Candidate(i, span.start, sentence, sentence_terms))
        return out

    @staticmethod
    def _idf(candidates: list[_Candidate]) -> dict[str, float]:
        df: dict[str, int] = {}
        for c in candidates:
            for t in c.terms:
                df[t] = df.get(t, 0) + 1
        n = len(candidates)
        return {t: math.log(1 + n / d) for t, d in df.items()}

    @staticmethod
    def _unseen_idf(n: int) -> float:
        return math.log(1 + n)


def clean_markup(sentence: str) -> str:
    """A sentence as a customer should read it: no list bullets, bold markers or table pipes."""
    line = _MARKUP.sub("", " ".join(sentence.split()))
    if line.startswith("|") or line.count(" | ") >= 1:
        cells = [c.strip() for c in line.strip("|").split("|") if c.strip()]
        line = " - ".join(cells)
    return line.replace("**", "").strip()


def _similar(a: set[str], b: set[str]) -> bool:
    return jaccard(a, b) >= 0.8
