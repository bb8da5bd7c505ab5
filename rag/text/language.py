"""Which language a text is in, as far as the bot needs to know: Chinese or not.

`CJK` is the one definition of a Chinese character in the project; every other module builds on it.
"""

from __future__ import annotations

import re

# CJK unified ideographs: extension A, the basic block, compatibility ideographs
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_CHAR = re.compile(f"[{CJK}]")
CJK_RUN = re.compile(f"[{CJK}]+")
# Characters written without spaces between them: ideographs, CJK punctuation, kana, full-width forms
_UNSPACED = re.compile(f"[{CJK}\u3000-\u30ff\uff00-\uffef]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")

LANGUAGE_NAMES = {"en": "English", "zh": "Chinese (简体中文)"}


def cjk_count(text: str) -> int:
    """How many Chinese characters the text holds."""
    return len(CJK_CHAR.findall(text))


def is_unspaced(char: str) -> bool:
    """Whether `char` is written without spaces around it (so a line break next to it joins with none).

    >>> is_unspaced("退"), is_unspaced("。"), is_unspaced("a")
    (True, True, False)
    """
    return bool(_UNSPACED.match(char))


def cjk_share(text: str) -> float:
    """How much of the text is Chinese, counting a Chinese character and an English word alike (0..1)."""
    cjk = cjk_count(text)
    words = len(_LATIN_WORD.findall(text))
    return cjk / (cjk + words) if cjk + words else 0.0


def detect_language(text: str) -> str:
    """'zh' when Chinese characters make up a fair share of the letters, else 'en'.

    >>> (detect_language("退货政策是什么？"), detect_language("What is the return policy?"),
    ...  detect_language("iPhone 怎么退货"))
    ('zh', 'en', 'zh')
    """
    cjk = cjk_count(text)
    latin_words = len(_LATIN_WORD.findall(text))
    # one Chinese character carries about as much as one English word
    return "zh" if cjk and cjk >= latin_words * 0.5 else "en"
