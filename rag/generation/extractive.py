"""Answers without a language model: the few sentences of the top passages that best match the question.

Each sentence is scored by how much of the question's weighted vocabulary it covers (English words with
light stemming, Chinese character bigrams; weights are inverse document frequencies over the candidate
sentences), its similarity in meaning to the question (the knowledge base's embedding model, for the languages
it covers, when one is given) and its passage's retrieval score. The best few, without near-duplicates, are returned in
reading order, each group followed by its [n] citation. (Curated FAQ rows that match the question closely
are answered verbatim before any generator runs: see rag.chat.service and rag.decline.faq_match.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from rag.core.types import Chunk, Passage, Usage
from rag.generation.protocol import GenerationRequest
from rag.generation.safety import contradicts, looks_like_injection, strip_injections
from rag.store.embedders import Embedder
from rag.text.language import detect_language
from rag.text.lexical import terms
from rag.text.readable import flat_text, readable_text
from rag.text.sentences import sentence_spans
from rag.text.similarity import jaccard

# What kind of answer a question asks for, and what such an answer looks like in a sentence. Questions
# rarely share words with the fact that answers them ("how long" vs "3-5 business days"), so a matching
# answer type earns a sentence a bonus.
_ANSWER_TYPES = [
    (
        re.compile(
            r"\bhow (long|soon|many days|many hours|many weeks)\b|\bwhen\b|\bwhat time\b|\bhours\b|\b(open|close)\b"
            r"|多久|多长时间|几天|什么时候|何时|时效|多快|几点",
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
        re.compile(r"\bhow much\b|\bcost\b|\bprice\b|\bfee\b|\bcharge\b|多少钱|价格|收费|几块|几元|贵不贵|要钱", re.I),
        re.compile(r"[$¥€£]\s?\d|\d+(\.\d+)?\s*(usd|dollars?|cad|元|块)|\bfree\b|免费|包邮", re.I),
    ),
    (re.compile(r"\bhow many\b|\bhow much\b|多少|几个|几次", re.I), re.compile(r"\d")),
    (
        re.compile(r"\bwho\b|\bwhich (country|team|company|city|person|player|club|film|movie|band)\b|谁", re.I),
        re.compile(r"\b[A-Z][a-z]+(\s+[A-Z][a-z]+)*"),
    ),
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


# Words a follow-up's rewrite carried over from earlier turns count, all together, this much of the customer's own.
_CARRIED_WEIGHT = 0.3
# A curated FAQ answer is returned whole when its row holds the best sentence, up to this many characters.
_FAQ_WHOLE_CHARS = 700
# Sentences below this share of the best sentence's score are not relevant enough to add.
_RELEVANCE_FLOOR = 0.5
# A further sentence must bring at least this share of the question's weight not covered yet.
_NEW_COVERAGE = 0.05
# Weight of cross-passage agreement: the words a sentence adds to the question (names, numbers) found in other
# retrieved passages too - the answer tends to be repeated, a distractor's detail does not.
_CONSENSUS = 0.25
# A sentence that only restates the question (a heading, a title) holds no answer: up to this much for new words.
_NOVELTY = 0.15
# Weight of the embedding model's question-to-sentence similarity (languages the model covers): customers'
# words rarely match the documents' ("When does the money come off my card?" / "We charge ... when the order
# ships"). Chosen on the customer dev set, rgb-en and ClapNQ: dev 73/73/73/72/71 right at 0/0.5/1/2/4, rgb-en
# citation precision best at 1-2 (benchmarks/customer_questions.py, rag eval).
_MEANING = 1.0
_ANSWER_WORD = re.compile(r"\b(?:[A-Z][\w'’-]+|\$?\d[\d,.:]*%?)")


class ExtractiveGenerator:
    name = "extractive"
    needs_prompt = False

    def __init__(
        self,
        max_sentences: int = 3,
        max_passages: int = 5,
        embedder: Embedder | None = None,
        dense_languages: tuple[str, ...] = ("en",),
    ):
        if max_sentences <= 0:
            raise ValueError(f"max_sentences must be greater than 0. Currently, the max_sentences is {max_sentences}")
        self.max_sentences = max_sentences
        self.max_passages = max_passages
        self.embedder = embedder
        self.dense_languages = dense_languages

    def stream(self, request: GenerationRequest) -> Iterator[str | Usage]:
        yield from self.compose(request.question, request.passages, request.language, request.own_words)
        yield Usage()

    def compose(self, question: str, passages: list[Passage], language: str, own_words: str | None = None) -> list[str]:
        """The answer as pieces (one per cited group), ready to stream. `own_words`: the customer's question when
        `question` is its standalone rewrite: the words the rewrite carried over from earlier turns then weigh
        less, so "那退货呢？" after a shipping question is answered about returns, not shipping again."""
        passages = passages[: self.max_passages]
        candidates = self._candidates(passages, language)
        if not candidates:
            return []
        own = terms(own_words) if own_words else terms(question)
        parts = question_parts(own_words or question)
        idf = self._idf(candidates)
        unseen = self._unseen_idf(len(candidates))
        weight = _term_weights(own, terms(question) - own, idf, unseen)
        # a follow-up's sentences are judged on the customer's own words as much as on the standalone rewrite
        wordings = [question] + ([own_words] if own_words and own_words != question else [])
        meaning = self._meaning(wordings, candidates, language)
        candidates = self._scored(question, parts, weight, passages, candidates, meaning)
        # a further sentence must say something new about the customer's own words, not the carried-over ones
        chosen = self._choose(candidates, parts, {t: w for t, w in weight.items() if t in own})
        shapes = [shape for asks, shape in _ANSWER_TYPES if any(asks.search(part) for part in parts)]
        chosen = _with_answer_nearby(chosen, candidates, shapes, terms(question))
        whole = self._faq_whole(chosen, passages, language)
        if whole is not None:
            return whole
        chosen = _with_continuations(chosen, candidates)
        chosen.sort(key=lambda c: (c.passage_index, c.start))
        return self._pieces(chosen, language)

    def _scored(
        self,
        question: str,
        parts: list[str],
        weight: dict[str, float],
        passages: list[Passage],
        candidates: list[_Candidate],
        meaning: dict[int, float],
    ) -> list[_Candidate]:
        total = sum(weight.values()) or 1.0
        best_passage = max(p.score for p in passages) or 1.0
        shapes = [shape for asks, shape in _ANSWER_TYPES if any(asks.search(part) for part in parts)]
        years = set(_YEAR.findall(question))
        if years and any(years & set(_YEAR.findall(c.text)) for c in candidates):
            candidates = [c for c in candidates if not _YEAR.search(c.text) or years & set(_YEAR.findall(c.text))]
        consensus = _consensus(question, candidates)
        asked = terms(question)
        for c in candidates:
            covered = sum(w for t, w in weight.items() if t in c.terms) / total
            typed = _TYPE_BONUS if _answers_type(c.text, shapes, asked) else 0.0
            novelty = _NOVELTY * min(1.0, len(c.terms - asked) / 3)
            mentioned = set(_YEAR.findall(c.text))
            off_year = _OTHER_YEAR_PENALTY if years and mentioned and not (years & mentioned) else 0.0
            c.score = (
                covered
                + typed
                - off_year
                + novelty
                + _CONSENSUS * consensus[id(c)]
                + _MEANING * meaning.get(id(c), 0.0)
                + 0.35 * max(passages[c.passage_index].score, 0) / best_passage
                - 0.03 * c.passage_index
            )
        return sorted(candidates, key=lambda c: c.score, reverse=True)

    def _choose(self, ranked: list[_Candidate], parts: list[str], weight: dict[str, float]) -> list[_Candidate]:
        """The best sentence, then the best for each other part of the question, then sentences that cover
        what is still missing - each above the relevance floor and none repeating a chosen one."""
        floor = _RELEVANCE_FLOOR * ranked[0].score
        chosen = [ranked[0]]
        for part in parts[1:]:
            part_terms = terms(part)
            shapes = [shape for asks, shape in _ANSWER_TYPES if asks.search(part)]
            best = max(
                (c for c in ranked if c.score >= floor and not self._repeats(c, chosen)),
                key=lambda c: len(part_terms & c.terms) + (1 if any(s.search(c.text) for s in shapes) else 0),
                default=None,
            )
            if best is not None and (part_terms & best.terms or any(s.search(best.text) for s in shapes)):
                chosen.append(best)
        total = sum(weight.values()) or 1.0
        for c in ranked[1:]:
            if len(chosen) >= self.max_sentences or c.score < floor:
                break
            covered = set().union(*(o.terms for o in chosen))
            new = sum(w for t, w in weight.items() if t in c.terms and t not in covered) / total
            if new >= _NEW_COVERAGE and not self._repeats(c, chosen):
                chosen.append(c)
        return chosen[: self.max_sentences]

    def _meaning(self, questions: list[str], candidates: list[_Candidate], language: str) -> dict[int, float]:
        """Per candidate: the embedding model's similarity of the sentence to the question (the mean over
        `questions`, its wordings), for the languages the model covers: "how much will you charge me to ship it
        the normal way?" shares no word with "Standard shipping costs $5.95", but the two mean the same."""
        if self.embedder is None or language not in self.dense_languages or not _MEANING:
            return {}
        vectors = self.embedder.embed(questions + [c.text for c in candidates])
        asked = vectors[: len(questions)]
        sims = (vectors[len(questions) :] @ asked.T).mean(axis=1)
        return {id(c): max(0.0, float(s)) for c, s in zip(candidates, sims, strict=True)}

    @staticmethod
    def _repeats(c: _Candidate, chosen: list[_Candidate]) -> bool:
        return any(c is o or _similar(c.terms, o.terms) for o in chosen)

    @staticmethod
    def _faq_whole(chosen: list[_Candidate], passages: list[Passage], language: str) -> list[str] | None:
        """A curated FAQ row holding the best sentence answers with its whole text (its author's words)."""
        best = chosen[0]
        chunk = passages[best.passage_index].chunk
        if chunk.row is None or len(chunk.text) > _FAQ_WHOLE_CHARS:
            return None
        text = faq_answer(chunk)
        if not text or any(c.passage_index != best.passage_index for c in chosen):
            return None
        return [cite(text, best.passage_index + 1, language)]

    def _pieces(self, chosen: list[_Candidate], language: str) -> list[str]:
        pieces: list[str] = []
        group: list[str] = []
        for i, c in enumerate(chosen):
            group.append(c.text)
            last_of_group = i + 1 == len(chosen) or chosen[i + 1].passage_index != c.passage_index
            if last_of_group:
                joiner = "" if language == "zh" else " "
                pieces.append(cite(joiner.join(group), c.passage_index + 1, language, leading=bool(pieces)))
                group = []
        return pieces

    @staticmethod
    def _candidates(passages: list[Passage], language: str) -> list[_Candidate]:
        out = []
        texts = [p.chunk.text for p in passages]
        for i, p in enumerate(passages):
            # instructions to the assistant cut first (a "Note for the AI:" takes the line it introduces along);
            # table rows and list items become sentences of their own
            text = readable_text(strip_injections(p.chunk.text))
            others = texts[:i] + texts[i + 1 :]
            row_question = _topic_terms(p.chunk.title) if p.chunk.row is not None else set()
            for span in sentence_spans(text):
                sentence = clean_markup(text[span.start : span.end])
                sentence_terms = terms(sentence)
                # fragments such as "..." or a lone heading word carry no answer; the question's language only
                if len(sentence) < 4 or not sentence_terms or looks_like_injection(sentence):
                    continue
                if contradicts(sentence, others):  # "free on every order" against a stated price
                    continue
                if detect_language(sentence) != language:
                    continue
                # an FAQ answer answers its row's question: the question's words count for its sentences
                out.append(_Candidate(i, span.start, sentence, sentence_terms | row_question))
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


_PART_SPLIT = re.compile(
    r"(?<=[?？])\s*(?=\S)"
    r"|[,;，；]?\s+(?:and|also|plus)\s+(?=(?:how|what|when|where|which|who|why|can|could|do|does|is|are|will|should)\b)"
    r"|[,，；;]\s*(?=(?:还有|另外|以及|并且|那|怎么|多少|多久|是否|能不能|可以|可不可以|有没有))",
    re.IGNORECASE,
)


_CONDITION = re.compile(r"^(?:if|when|once|in case)\b|^(?:如果|若|一旦|当)", re.IGNORECASE)
_NEARBY = 2


def _with_answer_nearby(
    chosen: list[_Candidate], candidates: list[_Candidate], shapes: list[re.Pattern[str]], asked: set[str]
) -> list[_Candidate]:
    """The best sentence often names the situation and the next one gives the answer ("…is refused. We then
    reship it…"): when the best sentence lacks the kind of answer asked for (a time, a price), or only states a
    condition, the nearest following sentence of its passage that has it comes along."""
    best = chosen[0]
    needs_type = bool(shapes) and not _answers_type(best.text, shapes, asked)
    if not needs_type and not _CONDITION.search(best.text):
        return chosen
    following = sorted(
        (c for c in candidates if c.passage_index == best.passage_index and c.start > best.start),
        key=lambda c: c.start,
    )[:_NEARBY]
    for c in following:
        if c in chosen:
            return chosen
        if not needs_type or _answers_type(c.text, shapes, asked):
            return [*chosen, c]
    return chosen


_LEAD_IN = re.compile(r"[:：]\s*$")
_LIST_ITEMS = 6


def _with_continuations(chosen: list[_Candidate], candidates: list[_Candidate]) -> list[_Candidate]:
    """A chosen sentence that introduces a list ("Available amounts are:") brings the list's items with it."""
    out = list(chosen)
    for c in chosen:
        if not _LEAD_IN.search(c.text):
            continue
        following = sorted(
            (o for o in candidates if o.passage_index == c.passage_index and o.start > c.start),
            key=lambda o: o.start,
        )
        out.extend(o for o in following[:_LIST_ITEMS] if o not in out)
    return out


# "much" in "how much", "many" in "how many": the kind of answer asked for (see _ANSWER_TYPES), not its topic - an
# FAQ row titled "How much does standard shipping cost?" must not lend it to its sentences and win "How much does
# express shipping cost?" on it
_QUESTION_PHRASE = re.compile(r"\bhow\s+(much|many|long|often|soon|far|old)\b", re.IGNORECASE)


def _topic_terms(question: str) -> set[str]:
    """A question's content terms without the words of its "how much"-style phrase."""
    phrase = set().union(*(terms(m.group(1)) for m in _QUESTION_PHRASE.finditer(question)))
    return terms(question) - phrase


def _term_weights(own: set[str], carried: set[str], idf: dict[str, float], unseen: float) -> dict[str, float]:
    """Each question term's weight (its idf among the candidate sentences); the terms carried over from earlier
    turns weigh _CARRIED_WEIGHT of the customer's own words *together*, however many there are."""
    weight = {t: idf.get(t, unseen) for t in own}
    carried_weight = {t: idf.get(t, unseen) for t in carried}
    own_total, carried_total = sum(weight.values()), sum(carried_weight.values())
    if carried_total:
        scale = _CARRIED_WEIGHT * (own_total or carried_total) / carried_total
        weight.update({t: w * scale for t, w in carried_weight.items()})
    return weight


def _answers_type(text: str, shapes: list[re.Pattern[str]], asked: set[str]) -> bool:
    """Whether the sentence holds something of the asked kind that the question does not already say."""
    for shape in shapes:
        for match in shape.finditer(text):
            if match.start() == 0 and match.group(0)[:1].isupper() and " " not in match.group(0):
                continue  # a capital at the start of a sentence is not a name
            found = terms(match.group(0))
            if not found or found - asked:
                return True
    return False


def question_parts(question: str) -> list[str]:
    """The parts of a multi-part question (one part for most questions).

    >>> question_parts("How much is express shipping and how long does it take?")
    ['How much is express shipping', 'how long does it take?']
    >>> question_parts("运费多少？多久能到？")
    ['运费多少？', '多久能到？']
    """
    parts = [p.strip() for p in _PART_SPLIT.split(question) if p and p.strip()]
    return parts or [question]


def _consensus(question: str, candidates: list[_Candidate]) -> dict[int, float]:
    """Per candidate: the share of other passages that repeat one of the words it adds to the question."""
    asked = {w.lower() for w in _ANSWER_WORD.findall(question)}
    passages = {c.passage_index for c in candidates}
    texts: dict[int, str] = {}
    for c in candidates:
        texts[c.passage_index] = texts.get(c.passage_index, "") + " " + c.text.lower()
    out: dict[int, float] = {}
    for c in candidates:
        words = {w.lower().rstrip(".,:") for w in _ANSWER_WORD.findall(c.text)} - asked
        words = {w for w in words if len(w) > 1}
        best = 0
        for w in words:
            best = max(best, sum(1 for i in passages if i != c.passage_index and w in texts[i]))
        out[id(c)] = best / max(1, len(passages) - 1)
    return out


def faq_answer(chunk: Chunk) -> str:
    """A curated FAQ row's answer as a customer should read it: readable text on one line, without any
    sentence that instructs the assistant."""
    return flat_text(readable_text(strip_injections(chunk.text)))


def cite(text: str, marker: int, language: str, leading: bool = False) -> str:
    """`text` followed by its [n] marker (no space before it in Chinese; `leading`: a piece after another).

    >>> cite("Gift cards never expire.", 1, "en"), cite("礼品卡永不过期。", 2, "zh", leading=True)
    ('Gift cards never expire. [1]', '礼品卡永不过期。[2]')
    """
    sep = "" if language == "zh" else " "
    return (sep if leading else "") + f"{text}{sep}[{marker}]"


def clean_markup(sentence: str) -> str:
    """A sentence as a customer should read it: no list bullets, bold markers or table pipes."""
    line = _MARKUP.sub("", " ".join(sentence.split()))
    if line.startswith("|") or line.count(" | ") >= 1:
        cells = [c.strip() for c in line.strip("|").split("|") if c.strip()]
        line = " - ".join(cells)
    return line.replace("**", "").strip()


def _similar(a: set[str], b: set[str]) -> bool:
    return jaccard(a, b) >= 0.8
