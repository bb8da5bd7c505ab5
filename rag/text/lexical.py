"""Light lexical analysis shared by the extractive answerer and the decline decision (pure functions):
content terms of a text, English and Chinese alike."""

from __future__ import annotations

import re

from rag.text.language import CJK, CJK_RUN

_WORD = re.compile(r"[a-z0-9]+(?:[.'’][a-z0-9]+)*")
_STOPWORDS = frozenset(
    """a an the and or but if then so of to in on at by for with from about as into over after before is are was were
    be been being am do does did doing have has had having i me my we our you your he she it its they them their this
    that these those what which who whom whose when where why how can could should would will shall may might must not
    no yes there here any some all more most other such only own same than too very just also please tell know want
    get got up out again further once s t don isn aren""".split()
)
_CJK_STOP = frozenset(
    ("什么 怎么 如何 为什 可以 请问 是否 吗 呢 的 了 是 我 你 我的 你们 一下 么 有没 没有 哪些 能否 能不").split()
)


# Particles and demonstratives: a bigram holding one ("货呢", "那退", "的话") is not a word of the question's topic.
_CJK_FUNCTION = frozenset("吗呢吧啊呀嘛么哦哈啦的了那这")


def _stem(word: str) -> str:
    for suffix in ("ingly", "edly", "ing", "ies", "ied", "es", "ed", "ly", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
    return word


def terms(text: str) -> set[str]:
    """Content terms: stemmed English words and Chinese character bigrams (single characters for 1-char runs),
    without bigrams that hold a particle or demonstrative.

    >>> sorted(terms("那退货呢？"))
    ['退货']
    """
    lower = text.lower()
    out = {_stem(w) for w in _WORD.findall(lower) if w not in _STOPWORDS and (len(w) > 1 or w.isdigit())}
    for run in CJK_RUN.findall(lower):
        if len(run) == 1:
            if run not in _CJK_STOP:
                out.add(run)
            continue
        out.update(
            b
            for b in (run[i : i + 2] for i in range(len(run) - 1))
            if b not in _CJK_STOP and not _CJK_FUNCTION.intersection(b)
        )
    return out


def coverage(question: str, texts: list[str]) -> float:
    """Share of the question's content terms that occur in `texts` (0 when the question has none)."""
    wanted = terms(question)
    if not wanted:
        return 0.0
    found: set[str] = set()
    for text in texts:
        found |= terms(text) & wanted
    return len(found) / len(wanted)


# ---- BM25 tokens -----------------------------------------------------------------------------------------
# English: the standard analysis of Lucene/Elasticsearch's English analyzer and of `bm25s` - words of two or more
# word characters, the 33 Lucene stop words, Snowball stemming. Question words (how, what, when, can, should ...)
# and pronouns are *kept*: a short question like "when should i get vaccinated" keeps 4 of its 5 words, and
# in an FAQ collection they match the question-shaped titles. (The longer `_STOPWORDS` list above, used for
# `terms`, removed them, and lost 0.02-0.03 nDCG@10 on short conversational questions; see the README.)
BM25_STOPWORDS = frozenset(
    """a an and are as at be but by for if in into is it no not of on or such that the their then there these
    they this to was will with""".split()
)
# Bump when bm25_tokens changes: stored tokens of an older version are re-derived on the next write.
LEXICAL_VERSION = "3"
# Single-character function words jieba emits on their own: "能" in "能开发票吗" would otherwise match every FAQ
# title asking "能…吗" as strongly as "发票" matches the invoice row.
_CJK_FUNCTION_WORDS = frozenset("能会要可想请把被让给在有和与或也都还就又才吧啊呀嘛哦那这个些")
_TOKEN_RUNS = re.compile(f"([{CJK}]+)|((?:(?![{CJK}])\\w){{2,}})")
_stemmer = None
_jieba_ready = False


def _stem_english(word: str) -> str:
    global _stemmer
    if _stemmer is None:
        import Stemmer

        _stemmer = Stemmer.Stemmer("english")
    return _stemmer.stemWord(word)


def _segment_chinese(run: str) -> list[str]:
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        jieba.setLogLevel(60)  # its dictionary-loading chatter is not ours to print
        _jieba_ready = True
    # search mode also emits the shorter words inside long ones: 退货运费 -> 货运, 运费, 货运费 ...
    return [w for w in jieba.lcut_for_search(run) if w not in _CJK_STOP and w not in _CJK_FUNCTION_WORDS]


def bm25_tokens(text: str) -> list[str]:
    """Index/query tokens: Snowball-stemmed English words (Lucene stop words out), jieba-segmented Chinese words.

    >>> bm25_tokens("How long does shipping 退货 cost?")
    ['how', 'long', 'doe', 'ship', '退货', 'cost']
    """
    out: list[str] = []
    for cjk, word in _TOKEN_RUNS.findall(text.lower()):
        if cjk:
            out.extend(_segment_chinese(cjk))
        elif word not in BM25_STOPWORDS:
            out.append(_stem_english(word))
    return out
