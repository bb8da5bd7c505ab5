"""Follow-up questions: "What about express?" after "How long does shipping take?" means nothing on its own.

`needs_context` spots questions that lean on earlier turns; `rewrite_heuristic` makes them standalone
without a model by carrying the previous standalone question along (retrieval sees both, so "express" is
searched in the context of "shipping"). A generator with the `QueryRewriter` capability does it properly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.text.language import cjk_count

_EN_FOLLOWUP = re.compile(
    r"^\s*(and|also|what about|how about|what if|and if|same for|then|so|ok(ay)?|but)\b"
    r"|\b(it|its|it's|that|this|those|these|them|they|there|one|ones|same)\b",
    re.IGNORECASE,
)
_ZH_FOLLOWUP = re.compile(
    r"^(那|那么|还有|另外|然后|如果)"
    r"|(呢|那个|这个|它|他们|它们|这些|那些|同样)[？?]?\s*$"
    r"|^(那|这)(个|些)?"
)
_SHORT_WORDS = 4
_SHORT_CJK = 6


def needs_context(question: str) -> bool:
    """Whether the question likely depends on earlier turns (short, or starts/ends like a follow-up)."""
    q = question.strip()
    cjk = cjk_count(q)
    if cjk:
        return bool(_ZH_FOLLOWUP.search(q)) or cjk <= _SHORT_CJK
    words = re.findall(r"[A-Za-z0-9']+", q)
    return bool(_EN_FOLLOWUP.search(q)) or len(words) <= _SHORT_WORDS


def rewrite_heuristic(question: str, previous_queries: Sequence[str], force: bool = False) -> str:
    """The follow-up joined to the latest standalone query before it (`force`: even if it looks standalone).

    >>> rewrite_heuristic("What about express?", ["How long does shipping take?"])
    'What about express? (How long does shipping take?)'
    >>> rewrite_heuristic("How do I reset my password?", ["How long does shipping take?"])
    'How do I reset my password?'
    """
    if not previous_queries or not (force or needs_context(question)):
        return question
    return f"{question.strip()} ({previous_queries[-1].strip()})"
