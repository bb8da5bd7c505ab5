"""How well `rag.chat.tags.mood` tells calm, annoyed and frustrated customers apart, against a naive word-list
baseline measured in the same run.

    python benchmarks/tags.py [--sets labelled heldout] [--show]

The sets (benchmarks/data/sentiment/*.jsonl) are customer messages of an online shop's support chat written for
this benchmark, one JSON object per line:

    {"text": "Where is my refund?",       the customer's message
     "earlier": ["Where is my refund?"],   optional: the customer's earlier questions in the conversation, oldest first
     "earlier_declined": 1,                optional: how many of those turns the bot could not answer
     "level": "annoyed",                   calm | annoyed | frustrated: how the customer sounds
     "language": "en"}                     en | zh

How the levels were labelled: "calm" asks or reports a problem without showing a feeling (polite complaints,
alarming words in a plain question: "what happens if my package is lost?"); "annoyed" shows impatience or
dissatisfaction but still cooperates (a second ask, "still waiting", "disappointed", mild sarcasm); "frustrated"
is angry or at the end of their patience (insults, profanity, threats to leave, complain or charge back, shouting,
the same question asked again and again). `labelled` is the development set the cue lists and weights were
tuned on; `heldout` was written separately and is never used for tuning.

The baseline is what a generic sentiment word list does: any negative word from a short list -> "frustrated",
otherwise "calm". For each set and language the table shows precision / recall / F1 of "frustrated", of
"annoyed or frustrated" (the customer should be offered a person sooner), and the accuracy over the three levels.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.chat.tags import mood  # noqa: E402

SETS = ROOT / "benchmarks" / "data" / "sentiment"
LEVELS = ("calm", "annoyed", "frustrated")
LANGUAGES = ("en", "zh")
_BASELINE_WORDS = re.compile(
    r"\b(?:bad|terrible|awful|worst|hate|angry|useless|scam|ridiculous|broken|lost|damaged|wrong)\b"
    r"|差|坏|垃圾|骗|投诉|生气|丢|错|烂",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Item:
    text: str
    earlier: tuple[str, ...]
    earlier_declined: int
    level: str
    language: str


@dataclass(frozen=True)
class Scores:
    """Precision, recall and F1 of two positive classes, and accuracy over the three levels."""

    items: int
    frustrated: tuple[float, float, float]
    upset: tuple[float, float, float]  # "annoyed" or "frustrated"
    accuracy: float


Predict = Callable[[Item], str]


def load_items(path: Path) -> list[Item]:
    """The labelled messages of one set; a bad line names its file and line number."""
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            items.append(_item(row))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: {exc} - each line needs text, level and language") from exc
    return items


def _item(row: dict) -> Item:
    if row["level"] not in LEVELS or row["language"] not in LANGUAGES:
        raise ValueError(f"level must be one of {LEVELS} and language one of {LANGUAGES}, got {row}")
    earlier = tuple(row.get("earlier", ()))
    return Item(row["text"], earlier, int(row.get("earlier_declined", 0)), row["level"], row["language"])


def product(item: Item) -> str:
    return mood(item.text, item.earlier, item.earlier_declined).level


def baseline(item: Item) -> str:
    return "frustrated" if _BASELINE_WORDS.search(item.text) else "calm"


def score(items: Sequence[Item], predict: Predict) -> Scores:
    """Score one method on a set of messages."""
    pairs = [(item.level, predict(item)) for item in items]
    upset = {"annoyed", "frustrated"}
    return Scores(
        len(pairs),
        _prf([(gold == "frustrated", got == "frustrated") for gold, got in pairs]),
        _prf([(gold in upset, got in upset) for gold, got in pairs]),
        sum(gold == got for gold, got in pairs) / len(pairs) if pairs else 0.0,
    )


def _prf(pairs: list[tuple[bool, bool]]) -> tuple[float, float, float]:
    true_pos = sum(gold and got for gold, got in pairs)
    predicted = sum(got for _, got in pairs)
    actual = sum(gold for gold, _ in pairs)
    precision = true_pos / predicted if predicted else 0.0
    recall = true_pos / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["labelled", "heldout"])
    parser.add_argument("--show", action="store_true", help="print every message the product tags wrongly")
    args = parser.parse_args()
    print("$ " + " ".join(["python", "benchmarks/tags.py", *sys.argv[1:]]))
    print(f"{'set':<9} {'method':<9} {'lang':<4} {'n':>4} {'frustrated P/R/F1':>20} {'upset P/R/F1':>20} {'acc':>6}")
    for name in args.sets:
        items = load_items(SETS / f"{name}.jsonl")
        for method, predict in (("baseline", baseline), ("mood", product)):
            for lang in (*LANGUAGES, "all"):
                subset = [i for i in items if lang in ("all", i.language)]
                print(_row(name, method, lang, score(subset, predict)))
        if args.show:
            show(items)


def _row(name: str, method: str, lang: str, s: Scores) -> str:
    def prf(t: tuple[float, float, float]) -> str:
        return " / ".join(f"{v:.2f}" for v in t)

    return f"{name:<9} {method:<9} {lang:<4} {s.items:>4} {prf(s.frustrated):>20} {prf(s.upset):>20} {s.accuracy:>6.2f}"


def show(items: Sequence[Item]) -> None:
    for item in items:
        m = mood(item.text, item.earlier, item.earlier_declined)
        if m.level != item.level:
            print(f"  want {item.level:<10} got {m.level:<10} {m.score:.2f} {','.join(m.signals)}: {item.text}")


if __name__ == "__main__":
    main()
