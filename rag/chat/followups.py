"""Follow-up questions: "What about express?" after "How long does shipping take?" means nothing on its own.

`needs_context` spots questions that lean on earlier turns; `rewrite_heuristic` makes them standalone
without a model by carrying the conversation's latest standalone question along (retrieval sees both, so
"express" is searched in the context of "shipping"). A generator with the `QueryRewriter` capability does it
properly, and is asked only when `needs_context` says so.

A question leans on earlier turns only when it shows it (short is not enough: "Do gift cards expire?",
"restocking fee?" and "能开发票吗？" are whole questions):

- a lead that continues the last turn: "And express?", "What about Canada?", "how about for gift cards",
  "Same for returns?", or a fragment that starts with a preposition and has no verb of a question: "For Canada?";
- a pronoun or demonstrative with nothing in the question to point to: "Does it come in blue?", "How much is
  that?", "this one", "How long is that link valid?", "Do you ship there?" - but not the dummy "it" of "Is it
  free to return?" / "How long does it take to get a refund?", the "there" of "Is there a restocking fee?",
  the "that" of "an item that I bought", nor an "it" whose thing the question names ("If my tent arrives
  damaged, can I return it?", "Can I return it if I opened the box?");
- nothing of its own to search for: "How much?", "Why?", "多少钱？";
- Chinese: a "那…"/"还有…" lead, a "…呢" fragment without a question word ("那换货呢？", "顺丰呢？", "还有呢"),
  它, a 这个/那个 standing for a thing ("那个多少钱"), "…也一样吗".

Rewrites never nest: the context is always the customer's own earlier wording (see `context_questions`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.text.language import cjk_count
from rag.text.lexical import terms

# ---- English ------------------------------------------------------------------------------------------------
_PREPOSITIONS = "for|in|to|with|on|at|by|from|via|without|during|outside|inside|into|of|about|under|over"
_QUESTION_WORDS = (
    "what|which|who|whom|whose|when|where|why|how|is|are|was|were|am|do|does|did|can|could|will|would|should|"
    "shall|may|might|must|have|has|had"
)
# "And express?", "So what about Canada?", "how about for gift cards", "Also for Canada?"
_EN_LEAD = re.compile(r"^(?:(?:but|so|then|ok|okay|also|well|oh|hmm)\b[\s,]*)*(?:and|what about|how about|what of)\b")
# a fragment: "For Canada?", "In Chinese stores?" - not "In which countries ...", "At checkout, can I ...?"
_EN_FRAGMENT = re.compile(rf"^(?:(?:but|so|then|ok|okay|also)\b[\s,]*)*(?:{_PREPOSITIONS})\b")
_CLAUSE = re.compile(rf"\b(?:{_QUESTION_WORDS})\b")
# "Same for returns?", "Is it the same for Canada?", "Is the price the same?" - not "same day delivery"
_EN_SAME = re.compile(r"\bsame\b(?=\s*(?:for|with|here|there|too|again|[?.!]|$))|\bsame\s+(?:goes|applies|thing)\b")
_PRONOUN = re.compile(r"\b(?:it|its|itself|they|them|their|theirs|themselves)\b")
# "it" standing for nothing: "Is it free to return?", "It is possible to ...", "How long does it take to ...?"
_DUMMY_IT = re.compile(
    r"\bit(?=\s+(?:is\s+|was\s+|will\s+be\s+|would\s+be\s+)?(?:(?:still|too|really|also|even|very|any|more|less)\s+)*"
    r"(?:possible|ok|okay|free|safe|true|necessary|required|mandatory|worth\w*|allowed|permitted|hard|easy|"
    r"difficult|late|early|cheaper|faster|better|normal|common|usual|legal|fine|quicker|likely|expensive|cheap|"
    r"best|enough)\b(?:\s+\w+)?\s+(?:to|if|that|whether|for)\b)"
    r"|\bit(?=\s+(?:usually\s+|normally\s+|typically\s+)?(?:take|takes|took|cost|costs)\b[^,;?]*\b(?:to|for)\b)"
)
# a thing the question names itself, which its "it"/"them" can stand for
_NAMED_THING = re.compile(r"\b(?:a|an|the|my|our|your|his|her)\s+[a-z0-9]")
_SUBORDINATE = re.compile(r"\b(?:if|when|whenever|because|although|though|unless|once)\b([^,;]*)")
_AFTER_PREPOSITION = re.compile(rf"\b(?:{_PREPOSITIONS})\s+$")
# "this weekend" is a time, not a thing from the conversation
_THIS = re.compile(
    r"\bthis\b(?!\s+(?:year|week|weekend|month|morning|afternoon|evening|time|season|summer|winter|spring|fall|"
    r"autumn|christmas|holiday|holidays|sale)\b)|\b(?:these|those)\b"
)
# "that" pointing back ("Is that free?", "that link", "Can I do that?"), not joining a clause ("an item that ...")
_THAT = re.compile(
    rf"(?:^|\b(?:{_QUESTION_WORDS}|{_PREPOSITIONS}|than|like|and|or|but|if|buy|return|order|get|use|do|cancel|"
    r"change|exchange|ship|send|track|keep|pay|need|want)\s+)that\b|\bthat\s*[?.!]*$"
)
# "there" as a place ("Do you ship there?"), not "Is there ...?" / "There is ..."
_THERE = re.compile(
    r"(?<!\bis )(?<!\bare )(?<!\bwas )(?<!\bwere )(?<!\bwill )(?<!\bbe )"
    r"\bthere\b(?!\s+(?:is|are|was|were|be|been|any|a|an|no|will|would)\b)"
)
# "this one", "a cheaper one", "Do you have one in blue?" - not "one coupon", "more than one order"
_ONE = re.compile(
    r"(?<!\bthan )(?<!\bonly )(?<!\bjust )(?<!\bno )\bones?\b(?![-'])"
    r"(?=\s*(?:[?.!,]|$|(?:in|for|with|on|is|are|does|do|cost|costs|instead|that|which|too|available|you|i)\b))"
)
_CONTRACTION = re.compile(r"\b(it|that|there|what|here|who|where|how)['’]s\b")
# words that carry no topic: a question made only of these ("How much?", "Why?") has nothing to search for
_VAGUE = re.compile(
    r"\b(?:much|many|long|cost|costs|price|take|takes|ok|okay|really|else|anything|something|possible|available|"
    r"fine|sure|right|thanks|thank|true|work|works|happen|happens|mean|means|like|way|kind|sort|thing|things|"
    r"one|ones|same)\b"
)


def _english(q: str) -> str:
    """Lower case, contractions of "is" spelled out, so the patterns see one form."""
    return _CONTRACTION.sub(r"\1 is", q.lower().replace("’", "'")).strip()


def _names_its_thing(q: str, pronoun: re.Match) -> bool:
    """Whether the question names what its pronoun stands for: in an if/when clause, or before the pronoun
    ("My order arrived damaged, can I return it?"); a pronoun hanging off a preposition ("the warranty on it")
    needs a second thing named before it."""
    if any(_NAMED_THING.search(clause) for clause in _SUBORDINATE.findall(q)):
        return True
    before = q[: pronoun.start()]
    named = len(_NAMED_THING.findall(before))
    # "the warranty on it": the thing named is what the preposition belongs to, so "it" is something else;
    # "an invoice with my company name on it": a second thing named earlier is what "it" stands for
    return named >= 2 if _AFTER_PREPOSITION.search(before) else named >= 1


def _unresolved_pronoun(q: str) -> bool:
    """An "it"/"they"/"them" that nothing in the question stands for (the dummy "it" removed first)."""
    q = _DUMMY_IT.sub(" ", q)
    return any(not _names_its_thing(q, m) for m in _PRONOUN.finditer(q))


def _points_back(q: str) -> bool:
    """A demonstrative, place or "one" that points at something said before."""
    return any(p.search(q) for p in (_THIS, _THAT, _THERE, _ONE))


def _continues(q: str) -> bool:
    """A lead that continues the last turn, or a verbless fragment ("For Canada?")."""
    if _EN_LEAD.search(q) or _EN_SAME.search(q):
        return True
    return bool(_EN_FRAGMENT.search(q)) and not _CLAUSE.search(q)


def _english_follow_up(question: str) -> bool:
    q = _english(question)
    if not re.search(r"[a-z0-9]", q):
        return False
    return _continues(q) or _unresolved_pronoun(q) or _points_back(q) or not terms(_VAGUE.sub(" ", q))


# ---- Chinese ------------------------------------------------------------------------------------------------
_ZH_LEAD = re.compile(r"^(?:那|那么|还有|那如果|那要是)")
_ZH_QUESTION = re.compile(
    r"什么|怎么|为什么|为何|如何|哪|几|多少|多久|谁|吗|么|是否|能不能|可不可以|有没有|会不会|是不是|要不要"
)
_ZH_PRONOUN = re.compile(r"(?<!其)它")
# 这个/那个 standing for a thing; not "这个月" (a time) nor 这里 ("here": the shop itself)
_ZH_DEMONSTRATIVE = re.compile(r"[这那](?:个|些|款|件|种|样)(?!月|星期|礼拜|周)|那(?:边|里|儿)")
_ZH_SAME = re.compile(r"(?:一样|同样|相同)(?:吗|么|呢)?$|同样")
_ZH_VAGUE = re.compile(
    r"请问|多少钱|多少|多久|几天|怎么样|怎么办|怎么|什么|为什么|可以|能|行|吗|呢|吧|啊|呀|嘛|要|是|有|还|也|都|的|了|么|好"
)
_ZH_END = "？?！!。.，,～~ \t"


def _zh_fragment(q: str) -> bool:
    """A "…呢" question with no question word of its own: "那顺丰呢", "换货呢", "还有呢" (not "为什么还没发货呢")."""
    if not q.endswith("呢"):
        return False
    body = _ZH_LEAD.sub("", q[:-1])
    return not _ZH_QUESTION.search(body)


def _chinese_follow_up(question: str) -> bool:
    q = question.strip().rstrip(_ZH_END)
    signals = (_ZH_LEAD, _ZH_PRONOUN, _ZH_DEMONSTRATIVE, _ZH_SAME)
    return any(p.search(q) for p in signals) or _zh_fragment(q) or not terms(_ZH_VAGUE.sub(" ", q))


def needs_context(question: str) -> bool:
    """Whether the question leans on earlier turns (see the module docstring for what shows it).

    >>> [needs_context(q) for q in ("What about express?", "Does it come in blue?", "那换货呢？", "还有呢")]
    [True, True, True, True]
    >>> [needs_context(q) for q in ("Is there a restocking fee?", "Is it free to return?", "能开发票吗？")]
    [False, False, False]
    """
    return _chinese_follow_up(question) if cjk_count(question) else _english_follow_up(question)


# ---- rewriting ----------------------------------------------------------------------------------------------
_CONTEXT_CHARS = 200  # per earlier question: the rewrite stays a search query, not a transcript


@dataclass(frozen=True)
class PastQuestion:
    """An earlier question as the customer asked it; `follow_up`: it leaned on the turns before it (the
    service knows from its stored turn having been rewritten)."""

    text: str
    follow_up: bool = False


def context_questions(past: Sequence[PastQuestion]) -> list[str]:
    """What a follow-up is read with: the latest standalone question, and the last question too when that
    was itself a follow-up. Always the customer's own words, so a rewrite never carries an earlier rewrite.

    >>> context_questions([PastQuestion("Do gift cards expire?"), PastQuestion("How long does shipping take?"),
    ...                    PastQuestion("What about express?", True), PastQuestion("And to Canada?", True)])
    ['How long does shipping take?', 'And to Canada?']
    """
    if not past:
        return []
    last = past[-1]
    anchor = next((p for p in reversed(past) if not p.follow_up), None)
    if anchor is None:  # the standalone question is older than the turns at hand: the last one is all there is
        return [last.text.strip()]
    return [anchor.text.strip()] + ([last.text.strip()] if last is not anchor else [])


def _clip(text: str) -> str:
    return text if len(text) <= _CONTEXT_CHARS else text[: _CONTEXT_CHARS - 1].rstrip() + "…"


def rewrite_heuristic(question: str, past: Sequence[PastQuestion], force: bool = False) -> str:
    """The follow-up joined to its context (`context_questions`; `force`: even if it looks standalone).

    >>> rewrite_heuristic("What about express?", [PastQuestion("How long does shipping take?")])
    'What about express? (How long does shipping take?)'
    >>> rewrite_heuristic("How do I reset my password?", [PastQuestion("How long does shipping take?")])
    'How do I reset my password?'
    """
    context = context_questions(past)
    if not context or not (force or needs_context(question)):
        return question
    return f"{question.strip()} ({' '.join(_clip(q) for q in context)})"
