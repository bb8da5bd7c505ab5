"""Which language a text is in, as far as the bot needs to know: Chinese or not."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

LANGUAGE_NAMES = {"en": "English", "zh": "Chinese (简体中文)"}


def cjk_share(text: str) -> float:
    """How much of the text is Chinese, counting a Chinese character and an English word alike (0..1)."""
    cjk = len(_CJK.findall(text))
    words = len(re.findall(r"[A-Za-z]+", text))
    return cjk / (cjk + words) if cjk + words else 0.0


def detect_language(text: str) -> str:
    """'zh' when Chinese characters make up a fair share of the letters, else 'en'.

    >>> detect_language("退货政策是什么？"), detect_language("What is the return policy?"), detect_language("iPhone 怎么退货")
    ('zh', 'en', 'zh')
    """
    cjk = len(_CJK.findall(text))
    latin_words = len(re.findall(r"[A-Za-z]+", text))
    # one Chinese character carries about as much as one English word
    return "zh" if cjk and cjk >= latin_words * 0.5 else "en"
