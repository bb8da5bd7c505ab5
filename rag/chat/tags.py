"""Conversation tags for support leads: how upset a customer sounds (`mood`) and what a turn is about (`topic`).

Both are pure functions of the text, offline and deterministic, so a tag can be explained to a person and
recomputed later. `mood` adds up cues with fixed weights and cuts the sum at two thresholds:

    signal                       weight       examples
    insult, profanity, threat,   0.7          "useless", "scam", "damn", "chargeback", "骗子", "他妈的", "差评", "12315"
    anger (strong words)                      "ridiculous", "worst", "unacceptable", "太离谱", "气死", "受够了"
    negative words, impatience,  0.3          "disappointed", "still waiting", "third time", "失望", "怎么还没", "到底"
    sarcasm, not helped                       "just what I needed", "真是够快的", "that doesn't answer my question"
    shouting                     0.15 a word  ALL-CAPS words (not acronyms); 0.5 when three or more
    repeated punctuation         0.3          "!!", "？？", "?!"
    urgency                      0.15         "asap", "right now", "马上", "赶紧"
    asks for a person            0.1          "I want a real person", "转人工" (alone: still calm)
    repeat                       0.35 each    the same question asked in an earlier turn (up to two counted)
    declined before              0.15 each    earlier turns the bot could not answer (up to three counted)
    asked for a person before    0.2          an earlier turn asked for a human

    score >= 0.3: "annoyed";  score >= 0.7: "frustrated" (one strong cue, or several mild ones);  capped at 1.

Polite and negated phrases are removed before matching ("not bad", "no problem", "不错", "没问题"), a word
right after a negation does not count ("not terrible"), and words inside a hypothetical ("what happens if my
package is lost", "is it a scam if ...", "如果...") are a question about the thing, not a feeling, so the word
cues of that sentence are skipped. Threats are kept there: "if I don't get my money back I'll dispute it" is one.
Word lists rather than the English embedding model: half the customers write Chinese, and a support lead must
be able to see why a conversation was flagged. Measured on labelled English and Chinese messages against a
word-list baseline: `python benchmarks/tags.py`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rag.chat.intents import asks_for_human
from rag.text.lexical import terms
from rag.text.similarity import jaccard

Level = Literal["calm", "annoyed", "frustrated"]
ANNOYED_AT = 0.3
FRUSTRATED_AT = 0.7
STRONG, MILD = 0.7, 0.3
URGENCY = 0.15
SHOUTED_WORD, SHOUTING_MAX, SHOUTED_WORDS_MAX = 0.15, 0.5, 3
PUNCTUATION = 0.3
REPEAT, REPEATS_COUNTED = 0.35, 2
DECLINED, DECLINES_COUNTED = 0.15, 3
PERSON_BEFORE = 0.2
PERSON_NOW = 0.1


@dataclass(frozen=True)
class Mood:
    """How upset the customer sounds in one turn; `signals` name what was seen, strongest first."""

    level: Level
    score: float  # 0..1
    signals: tuple[str, ...]


@dataclass(frozen=True)
class _Cue:
    signal: str
    weight: float
    pattern: re.Pattern[str]
    negatable: bool = False  # a word of feeling: "not terrible", "不生气" cancel it
    # a sentence this matches asks about the thing rather than shows it: "what if it is lost", "how do I complain"
    unless: re.Pattern[str] | None = None


def _words(*alternatives: str) -> str:
    return r"\b(?:" + "|".join(alternatives) + r")\b"


# Phrases that look negative but are polite or reassuring; removed before any cue is matched.
_POLITE = re.compile(
    _words(
        r"not (?:too |that |so |half )?bad",
        r"not (?:a |any )?problems?",
        r"no problems?",
        r"no worries",
        r"(?:no|not a) big deal",
        r"no (?:rush|hurry)",
        r"not urgent",
        r"(?:don't|do not) worry",
        r"never ?mind",
        r"(?:i )?hate to (?:ask|bother|say|trouble)",
        r"sorry to (?:bother|trouble|ask)(?: you)?(?: again)?",
        r"(?:try|tried|trying) (?:it )?again",
        r"not (?:angry|upset|complaining)",
    )
    + "|不错|没问题|没关系|不要紧|不着急|不急|没事|不麻烦|不客气|不算差|不差|不生气|不好意思|再问一下|还行",
    re.IGNORECASE,
)
_NEGATION_EN = re.compile(r"(?:\b(?:not|never|no|hardly)|n't)\s+(?:\w+\s+)?$", re.IGNORECASE)
_NEGATION_ZH = re.compile(r"[不没别]$")
_HYPOTHETICAL = re.compile(
    _words(
        r"if",
        r"in case",
        r"what happens",
        r"suppose",
        r"worst[- ]case",
        r"whether",
        r"is (?:it|this|that) an? ",
        r"is (?:it|this|that) normal",
    )
    + "|如果|万一|要是|假如|假设|(?<![样句些说])的话[，,]|是不是|会不会|这是.{0,6}吗|正常吗",
    re.IGNORECASE,
)
# Asking how to do something ("how do I cancel my account?") is not threatening to do it.
_HOW_TO = re.compile(
    _words(
        r"how (?:do|can|would|should) i", r"where (?:do|can) i", r"can i", r"is it possible to", r"what is the way to"
    ),
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?;。！？；\n]+[.!?;。！？；\n]*")

_CUES = (
    _Cue(
        "insult",
        STRONG,
        re.compile(
            _words(
                r"scam(?:s|mer|mers|ming)?",
                r"rip[- ]?off",
                r"thie(?:f|ves)",
                r"this is theft",
                r"stealing",
                r"useless",
                r"worthless",
                r"pathetic",
                r"incompetent",
                r"clowns?",
                r"stupid",
                r"idiots?",
                r"idiotic",
                r"dumb",
                r"morons?",
                r"crooks?",
                r"garbage",
                r"trash",
                r"rubbish",
            )
            + "|骗子|骗人|骗钱|黑店|垃圾|废物|摆设|白痴|智障|脑残|抢钱|坑人|坑爹|奸商"
            + "|破(?:机器人|客服|东西|质量|玩意|系统|服务|网站|店|产品)|什么用都没有|有什么用",
            re.IGNORECASE,
        ),
        negatable=True,
        unless=_HYPOTHETICAL,
    ),
    _Cue(
        "profanity",
        STRONG,
        re.compile(
            _words(
                r"fuck\w*",
                r"f\*+(?:k|ing)?",
                r"shit\w*",
                r"s\*\*+t?",
                r"bullshit",
                r"damn\w*",
                r"goddamn",
                r"wtf",
                r"crap\w*",
                r"the hell",
                r"hell is",
                r"bloody",
                r"pissed(?: off)?",
                r"assholes?",
                r"bs",
            )
            + "|他妈|妈的|特么|tmd|尼玛|卧槽|我靠|我操|操你|傻逼|傻b|sb客服|狗屎|放屁",
            re.IGNORECASE,
        ),
    ),
    _Cue(
        "threat",
        STRONG,
        re.compile(
            _words(
                r"(?:fil(?:e|ing)|open(?:ing)?|start(?:ing)?|do(?:ing)?|initiat(?:e|ing)|raise|raising) "
                r"(?:a |an )?(?:chargeback|dispute|complaint|claim with my bank)",
                r"chargeback with",
                r"disput(?:e|ing) (?:the|this|that|my) (?:charge|payment|transaction)",
                r"report(?:ing)? (?:you|this|your company)",
                r"bbb",
                r"better business bureau",
                r"trading standards",
                r"lawyer",
                r"attorney",
                r"sue (?:you|your)",
                r"legal action",
                r"small claims",
                r"(?:one|1|zero|0)[- ]star",
                r"(?:bad|negative|terrible|honest) reviews?",
                r"review(?:s)? everywhere",
                r"cancel (?:my|the) (?:account|membership|subscription)",
                r"close my account",
                r"never (?:order|ordering|buy|buying|shop|shopping|use|using)\b.{0,20}again",
                r"avoid (?:this|your) (?:store|shop|company|site)",
                r"telling everyone",
                r"(?:tell|warn) (?:everyone|everybody|all my friends)",
                r"social media",
            )
            + "|12315|消协|消费者协会|工商局|市场监管|起诉|律师|曝光|"
            "(?:要|就|会|去|必须|准备)[^，。！？,.!?]{0,8}(?:拒付|差评|投诉|举报|退单)|投诉你们|"
            "再也不[会来买用]|所有人都别|别在(?:这|你们这)买",
            re.IGNORECASE,
        ),
        unless=_HOW_TO,
    ),
    _Cue(
        "anger",
        STRONG,
        re.compile(
            _words(
                r"ridiculous",
                r"unacceptable",
                r"outrageous",
                r"worst",
                r"horrible",
                r"horrendous",
                r"terrible",
                r"awful",
                r"disgusting",
                r"disgraceful",
                r"appalling",
                r"shameful",
                r"unbelievable",
                r"absurd",
                r"insane",
                r"furious",
                r"livid",
                r"angry",
                r"so mad",
                r"fed up",
                r"sick (?:and tired )?of",
                r"had enough",
                r"(?:i'm|i am) done",
                r"kidding me",
                r"are you serious",
                r"(?:a|complete|total|absolute) joke",
                r"nightmare",
                r"hate (?:this|you|your)",
                r"wast(?:e|ed|ing) (?:of )?(?:my|our) (?:entire |whole )?(?:time|afternoon|morning|day|evening)",
                r"waste of time",
            )
            + "|离谱|太差|很差|真差|极差|最差|差劲|烂透|气死|受够|生气|愤怒|恶心|无语|过分|不能接受|无法接受|"
            "糟糕|笑话|开什么玩笑|搞什么|什么玩意|忍无可忍|火大|恼火|浪费我",
            re.IGNORECASE,
        ),
        negatable=True,
        unless=_HYPOTHETICAL,
    ),
    _Cue(
        "negative words",
        MILD,
        re.compile(
            _words(
                r"disappoint(?:ed|ing|ment)",
                r"frustrat(?:ed|ing|ion)",
                r"annoy(?:ed|ing)",
                r"irritat(?:ed|ing)",
                r"upset",
                r"unhappy",
                r"not (?:very |at all |too )?(?:happy|impressed|satisfied|pleased|ok|okay|acceptable|fair)",
                r"(?:dis|un)satisfied",
                r"poor (?:quality|service|packaging)",
                r"bad (?:quality|service|experience)",
                r"(?:way |far )?too (?:long|slow)",
                r"so slow",
                r"taking forever",
                r"(?:no ?one|nobody) (?:called|calls|answers|answered|replied|replies|told|mentioned|helped|cares)",
                r"was promised",
                r"supposed to (?:arrive|be|come|ship)",
                r"how hard (?:is|can) it",
                r"so (?:hard|difficult)",
                r"why (?:do|should|would|must) i (?:have|need) to",
                r"i don't understand why",
                r"what is going on",
                r"what's going on",
                r"come on",
                r"where(?:'s| is) my money",
                r"(?:give|send) me my money back",
                r"(?:i'll|i will) (?:figure it out|sort it out|deal with it) myself",
                r"forget it",
                r"seriously",
                r"hassle",
                r"inconvenient",
            )
            + "|失望|我的钱呢|还我钱|算了|自己想办法|不太?满意|不满|不爽|郁闷|烦人|好烦|真烦|"
            "太慢|好慢|这么慢|太久|这么久|费劲|这么难|凭什么|"
            "说好|没人(?:打|回|管|理|接|告诉|说)|怎么回事|什么情况|不靠谱|能快点|快点吧",
            re.IGNORECASE,
        ),
        negatable=True,
        unless=_HYPOTHETICAL,
    ),
    _Cue(
        "impatience",
        MILD,
        re.compile(
            _words(
                r"still (?:waiting|no|not|nothing|haven't|hasn't|hasnt|havent|says|showing|shows|pending|stuck)",
                r"(?:been|keep) waiting",
                r"(?:second|third|fourth|fifth|2nd|3rd|4th|5th|nth|umpteenth) (?:time|email|message|request)",
                r"(?:\w*n't|not|no|broken|late|wrong|failed|delayed|declined|missing|lost)\b[^.!?]{0,20}\bagain",
                r"^\s*again",
                r"again(?=\s*[?!]{2})",
                r"already (?:gave|given|told|sent|asked|explained|provided|said|answered)",
                r"(?:asked|said|explained|told you|written|wrote|emailed|called|contacted you)\b[^.!?]{0,20}"
                r"\b(?:twice|(?:two|three|four|five|six|several|many|multiple|\d+) times)",
                r"how many times",
                r"any(?:one|body) there",
                r"hello\?",
            )
            + "|怎么还没|还没有?[^，。！？,.!?的]{0,4}(?=[，。！？,.!?]|$)|还是没|还是显示|还是不|"
            "到底(?![^，。！？]*还是)|"
            "第[二三四五六几]次|又(?:是|坏|错|延|不|没|用不|出|要|让|等|来)|已经[^，。！？]{0,4}(?:问|说|给|发|等)|"
            "[两三四五六几]遍|多少次|在吗|等了|都[^，。！？]{1,6}了",
            re.IGNORECASE,
        ),
        unless=_HYPOTHETICAL,
    ),
    _Cue(
        "sarcasm",
        MILD,
        re.compile(
            _words(
                r"just what i needed",
                r"thanks for nothing",
                r"thanks a lot for",
                r"oh (?:great|wonderful|lovely|perfect|fantastic|brilliant|nice|joy)",
                r"(?:great|lovely|wonderful|perfect|fantastic|brilliant|awesome|nice)[,!.]+ "
                r"(?!thank)[^.!?]*\b(?:another|again|wrong|broken|delay\w*|late|still|as well)",
                r"very helpful(?:\.|!)? not",
                r"real(?:ly)? helpful,? thanks",
            )
            + "|真是太好了|真是够\\w{0,3}的|真棒[，,。！!][^。]*(?:还是|又|错|坏)|呵呵|服了|真行|厉害了|好棒哦",
            re.IGNORECASE,
        ),
        unless=_HYPOTHETICAL,
    ),
    _Cue(
        "not helped",
        MILD,
        re.compile(
            _words(
                r"answer (?:the|my) question",
                r"read my (?:message|question)",
                r"are you (?:even )?(?:reading|listening)",
                r"(?:doesn't|does not|didn't|did not) (?:answer|help)",
                r"not what i asked",
                r"i asked (?:how|what|when|where|why|about|for|you)",
                r"can you answer",
                r"same (?:answer|reply|thing|link)",
                r"keeps? (?:giving|saying|repeating|sending)",
                r"(?:not|un)helpful",
                r"you (?:don't|do not) understand",
                r"stop sending",
                r"actually read",
            )
            + "|回答(?:我的)?问题|没回答|答非所问|认真看|有没有在看|我问的是|"
            "一直重复|同样的话|别再发|听不懂|不是我问的",
            re.IGNORECASE,
        ),
    ),
    _Cue(
        "urgency",
        URGENCY,
        re.compile(
            _words(
                r"asap", r"a\.s\.a\.p", r"right now", r"right away", r"immediately", r"urgent(?:ly)?", r"now(?=\s*[.!])"
            )
            + "|马上|立刻|立即|赶紧|赶快|尽快|急|现在就",
            re.IGNORECASE,
        ),
    ),
)

# Capitals that are names, not shouting.
_ACRONYMS = frozenset(
    """USA USB UPS DHL FAQ PIN ATM SMS EMS BBB LED USD CAD CNY RMB API APP PDF GPS VAT SKU FPO APO CVV HDMI ASAP
    LOL FYI PST EST PDT EDT UTC NYC IOS MAC NFC RAM SSD CPU GPU XXL XXS JPG PNG URL FEDEX USPS TNT SF""".split()
)
_DEMANDS_PERSON = re.compile(
    _words(
        r"(?:want|need|get me|give me|let me talk to) (?:a |an |the |your )?(?:human|real person|manager|supervisor)"
    )
    + "|找真人|找经理|找主管|找你们领导",
    re.IGNORECASE,
)
_CAPS_WORD = re.compile(r"\b[A-Z]{3,}\b")
_REPEATED_PUNCTUATION = re.compile(r"[!！]{2,}|[?？]{2,}|[?？][!！]|[!！][?？]")


def mood(question: str, earlier: Sequence[str] = (), earlier_declined: int = 0) -> Mood:
    """How upset the customer sounds, from this message, the questions asked before and how often the bot declined.

    `earlier`: the customer's earlier questions in this conversation (not this one); `earlier_declined`: how many
    of those turns the bot could not answer. A "frustrated" customer should be offered a person without waiting
    for another decline.

    >>> mood("Where can I see my tracking number?")
    Mood(level='calm', score=0.0, signals=())
    >>> mood("This is ridiculous. Third time I'm asking!!!").level
    'frustrated'
    >>> mood("我的订单到底在哪？").signals
    ('impatience',)
    >>> mood("Not bad at all, no problem.").level, mood("不错，没问题，谢谢").level
    ('calm', 'calm')
    >>> mood("where is my refund", earlier=["Where is my refund?"], earlier_declined=1)
    Mood(level='annoyed', score=0.5, signals=('repeat', 'declined before'))
    """
    weights = _text_cues(question)
    weights.update(_history_cues(question, earlier, earlier_declined))
    score = round(min(1.0, sum(weights.values(), 0.0)), 2)
    signals = tuple(name for name, _ in sorted(weights.items(), key=lambda kv: -kv[1]))
    return Mood(_level(score), score, signals)


def _level(score: float) -> Level:
    if score >= FRUSTRATED_AT:
        return "frustrated"
    return "annoyed" if score >= ANNOYED_AT else "calm"


def _text_cues(question: str) -> dict[str, float]:
    """Signal -> weight of what the message itself shows (each signal counted once)."""
    text = _POLITE.sub(" ", question)
    found: dict[str, float] = {}
    for sentence in _SENTENCE.findall(text) or [text]:
        for cue in _CUES:
            if not (cue.unless and cue.unless.search(sentence)) and _matches(cue, sentence):
                found[cue.signal] = cue.weight
    found.update(_typography(question))
    if asks_for_human(question) or _DEMANDS_PERSON.search(question):
        found["asks for a person"] = PERSON_NOW
    return found


def _matches(cue: _Cue, sentence: str) -> bool:
    """Whether the cue occurs in the sentence, not right after a negation ("not terrible", "不生气")."""
    for match in cue.pattern.finditer(sentence):
        before = sentence[: match.start()]
        if not cue.negatable or not (_NEGATION_EN.search(before) or _NEGATION_ZH.search(before)):
            return True
    return False


def _typography(question: str) -> dict[str, float]:
    """ALL-CAPS words and runs of "!!" / "？？"."""
    found: dict[str, float] = {}
    shouted = [w for w in _CAPS_WORD.findall(question) if w not in _ACRONYMS]
    if shouted:
        many = len(shouted) >= SHOUTED_WORDS_MAX
        found["shouting"] = SHOUTING_MAX if many else SHOUTED_WORD * len(shouted)
    if _REPEATED_PUNCTUATION.search(question):
        found["repeated punctuation"] = PUNCTUATION
    return found


def _history_cues(question: str, earlier: Sequence[str], earlier_declined: int) -> dict[str, float]:
    """Signal -> weight of what the earlier turns add: the same question again, declines, a person asked for."""
    found: dict[str, float] = {}
    repeats = sum(1 for before in earlier if same_question(question, before))
    if repeats:
        found["repeat"] = REPEAT * min(repeats, REPEATS_COUNTED)
    if earlier_declined > 0:
        found["declined before"] = DECLINED * min(earlier_declined, DECLINES_COUNTED)
    if any(asks_for_human(before) for before in earlier):
        found["asked for a person before"] = PERSON_BEFORE
    return found


def same_question(a: str, b: str) -> bool:
    """Whether `a` asks `b` again: most content words shared (stemmed English words, Chinese character pairs).

    A follow-up on the same subject shares a word or two, not most of them.

    >>> same_question("WHERE IS MY ORDER 66120???", "Where is my order 66120?")
    True
    >>> same_question("我的订单66120到哪了？还是显示处理中。", "我的订单66120到哪了？")
    True
    >>> same_question("How long until the refund arrives?", "How do I return a jacket?")
    False
    """
    ta, tb = terms(a), terms(b)
    shared = len(ta & tb)
    if not shared:
        return False
    return jaccard(ta, tb) >= 0.5 or (shared >= 2 and shared / min(len(ta), len(tb)) >= 0.75)


def topic(cited_titles: Sequence[str], question: str) -> str:
    """The topic of a turn: the title of the top cited document (for a curated FAQ, its question), else "".

    Retrieval already decided what the turn is about; guessing a topic from the question's words would only
    disagree with the answer the customer saw, so `question` is not used to invent one.

    >>> topic(["  Returns and   refunds ", "Shipping policy"], "how do I return boots?")
    'Returns and refunds'
    >>> topic(["", "Shipping policy"], "how much is shipping?")
    'Shipping policy'
    >>> topic([], "hello")
    ''
    """
    for title in cited_titles:
        tidy = " ".join(title.split())
        if tidy:
            return tidy
    return ""
