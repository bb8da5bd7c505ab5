"""Retrieved text is data, not instructions.

Two layers: the prompt delimits every passage and tells the model to ignore instructions inside them
(`rag.generation.prompting`), and sentences that address the assistant itself ("ignore previous instructions",
"you are now ...", "忽略之前的指令") are cut from passages before any model or extract sees them.
Documents a company writes for its customers have no reason to contain such sentences.
"""

from __future__ import annotations

import re

from rag.text.sentences import sentence_spans

_INJECTION = re.compile(
    r"""(
        \b(ignore|disregard|forget|override)\b[^.!?\n]{0,40}\b(previous|prior|above|earlier|all|any|your|the)\b[^.!?\n]{0,30}\b(instructions?|rules?|prompts?|directions?|guidelines?)\b
      | \byou\s+are\s+now\s+(a|an|in|the|my)\b[^.!?\n]{0,30}\b(assistant|bot|ai|model|mode|persona|character|dan)\b
      | \b(new|updated)\s+(system\s+)?instructions?\s*:
      | \bsystem\s+prompt\b
      | \bact\s+as\s+(an?\s+)?(unrestricted|different|new)\b
      | \bfrom\s+now\s+on,?\s+(you|respond|reply|answer)\b
      | \b(reply|respond|answer)\s+(only\s+)?with\s+["'“]
      | 忽略(之前|以上|上面|前面|所有)?的?(所有)?(指令|指示|规则|提示)
      | 无视(之前|以上|上面|前面|所有)?的?(指令|指示|规则|提示)
      | 你现在是
      | 系统提示
    )""",
    re.IGNORECASE | re.VERBOSE,
)


def looks_like_injection(sentence: str) -> bool:
    return bool(_INJECTION.search(sentence))


def strip_injections(text: str) -> str:
    """`text` without the sentences that try to instruct the assistant."""
    if not _INJECTION.search(text):
        return text
    pos = 0
    out: list[str] = []
    for span in sentence_spans(text):
        if looks_like_injection(text[span.start : span.end]):
            out.append(text[pos : span.start])
            pos = span.end
    out.append(text[pos:])
    kept = "".join(out)
    return re.sub(r"[ \t]{2,}", " ", kept).strip()
