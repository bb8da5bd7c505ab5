"""Requests for a person: "talk to a human", "转人工". The bot hands off at once instead of answering."""

from __future__ import annotations

import re

_HUMAN = re.compile(
    r"\b(talk|speak|chat|connect me|put me through|transfer me)\b[^.?!]{0,25}"
    r"\b(human|person|agent|someone|somebody|representative|operator|staff|real person)\b"
    r"|\b(human|live|real)\s+(agent|person|support|representative|operator)\b"
    r"|^\s*(agent|human|representative|operator)\s*[.!?]*\s*$"
    r"|转人工|人工客服|人工服务|找人工|接人工|真人客服|人工坐席|转接客服",
    re.IGNORECASE,
)


def asks_for_human(question: str) -> bool:
    """
    >>> (asks_for_human("Can I talk to a human please?"), asks_for_human("转人工"),
    ...  asks_for_human("Is the tent waterproof?"))
    (True, True, False)
    """
    return bool(_HUMAN.search(question))
