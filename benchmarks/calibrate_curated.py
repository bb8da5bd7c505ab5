"""Calibrate curated-answer matching (rag.chat.curated): the thresholds `RAG_CURATED_MIN_SCORE` and
`RAG_CURATED_MIN_SCORE_ZH`, and print the table they are chosen from.

    python benchmarks/calibrate_curated.py [--datasets DIR] [--questions FILE] [--heldout FILE]

Labelled questions, each asked of a curated-answer store (a real SQLite file) through CuratedMatcher:
- stackfaq (English): the corpus titles are the curated questions and the texts their answers, without phrasings;
  the queries (paraphrases) are asked. HOLDOUT of the corpus is left out, so its queries have no curated answer
  and must not match;
- the project's own data (English and Chinese): the FAQ rows of data/faq_en.csv and data/faq_zh.csv are the
  curated answers; the customer questions (benchmarks/data/customer-questions/dev.jsonl, those without a
  conversation context) are asked. A match is right when the curated answer holds every fact of the item
  (rag.evaluation.questions); `decline` items, and items whose facts no FAQ row holds, must not match.
precision = right matches / all matches (matches of questions that must not match count as wrong);
coverage = right matches / questions that have a right curated answer; false = matches of questions that must not.
The threshold per language is the lowest with precision >= PRECISION (English: stackfaq and the customer
questions together; Chinese: the customer questions). It is then checked on heldout.jsonl, never used to choose.
Cosine similarity alone (no content-word check) is printed as the baseline.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.chat.curated import CuratedMatcher  # noqa: E402
from rag.core.settings import Settings  # noqa: E402
from rag.evaluation.questions import CustomerQuestion, load_questions  # noqa: E402
from rag.store.curated import MAX_ANSWER_CHARS, SQLiteCuratedAnswers  # noqa: E402
from rag.store.embedders import Embedder, SentenceTransformerEmbedder  # noqa: E402

PRECISION = 0.95
HOLDOUT = 0.2
SEED = 0
TABLE_THRESHOLDS = [round(0.05 * i, 2) for i in range(2, 21)]


@dataclass(frozen=True)
class Asked:
    """One question asked: the best match's score, whether it is right, whether a right answer exists."""

    group: str
    score: float
    right: bool
    answerable: bool


@dataclass(frozen=True)
class Case:
    question: str
    language: str
    gold: frozenset[str]  # curated ids that answer it (empty: must not match)


def stackfaq(folder: Path, store: SQLiteCuratedAnswers, holdout: float, seed: int) -> list[Case]:
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text("utf-8").splitlines() if line]
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text("utf-8").splitlines() if line]
    qrels: dict[str, set[str]] = {}
    with (folder / "qrels" / "test.tsv").open(encoding="utf-8") as handle:
        for row in list(csv.reader(handle, delimiter="\t"))[1:]:
            qrels.setdefault(row[0], set()).add(row[1])
    held = set(random.Random(seed).sample([d["_id"] for d in corpus], int(len(corpus) * holdout)))
    ids = {}
    for doc in corpus:
        if doc["_id"] not in held:  # the longest answer is cut to the length a curated answer may have
            ids[doc["_id"]] = store.add(doc["title"], doc["text"][:MAX_ANSWER_CHARS], language="en").id
    return [Case(q["text"], "en", frozenset(ids[d] for d in qrels.get(q["_id"], set()) if d in ids)) for q in queries]


def faq_rows(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [(row[0], row[1]) for row in list(csv.reader(handle))[1:] if len(row) >= 2]


def holds(item: CustomerQuestion, answer: str) -> bool:
    """Whether a curated answer is a right answer to the item (the judgement of rag.evaluation.questions)."""
    text = " ".join(answer.casefold().split())
    facts = all(any(" ".join(s.casefold().split()) in text for s in fact) for fact in item.must_contain)
    return facts and not any(" ".join(s.casefold().split()) in text for s in item.must_not_contain)


def customer(items: Sequence[CustomerQuestion], entries: dict[str, str]) -> list[Case]:
    """`entries`: curated id -> answer. Follow-ups (with context) are left out: the chat matches their rewrite."""
    return [
        Case(
            item.question,
            item.language,
            frozenset() if item.decline else frozenset(i for i, a in entries.items() if holds(item, a)),
        )
        for item in items
        if not item.context
    ]


def ask(matcher: CuratedMatcher, group: str, cases: Sequence[Case]) -> list[Asked]:
    out = []
    for case in cases:
        best = matcher.best(case.question, case.language)
        score = best.score if best is not None else float("-inf")
        out.append(Asked(group, score, best is not None and best.answer.id in case.gold, bool(case.gold)))
    return out


def measure(rows: Sequence[Asked], threshold: float) -> tuple[int, float, float, int, int]:
    """(matched, precision, coverage, false matches, questions that must not match)."""
    matched = [r for r in rows if r.score >= threshold]
    right = sum(r.right for r in matched)
    answerable = sum(r.answerable for r in rows)
    false = sum(not r.answerable for r in matched)
    precision = right / len(matched) if matched else 1.0
    return len(matched), precision, right / answerable if answerable else 0.0, false, len(rows) - answerable


def choose(rows: Sequence[Asked], precision: float) -> float:
    """The lowest threshold (step 0.01) with at least `precision`; 1.01 (never match) when none has."""
    for step in range(-50, 102):
        threshold = round(step / 100, 2)
        matched, measured, *_ = measure(rows, threshold)
        if matched and measured >= precision:
            return threshold
    return 1.01


def table(title: str, rows: Sequence[Asked], thresholds: Sequence[float]) -> str:
    lines = [title, f"{'threshold':>9} {'matched':>7} {'precision':>9} {'coverage':>8} {'false matches':>14}"]
    for t in thresholds:
        matched, precision, coverage, false, unanswerable = measure(rows, t)
        lines.append(f"{t:>9.2f} {matched:>7} {precision:>9.3f} {coverage:>8.3f} {false:>7}/{unanswerable:<6}")
    return "\n".join(lines)


def summary(name: str, rows: Sequence[Asked], threshold: float) -> str:
    matched, precision, coverage, false, unanswerable = measure(rows, threshold)
    return (
        f"{name:<34} {threshold:>9.2f} {len(rows):>9} {matched:>7} {precision:>9.3f} {coverage:>8.3f} "
        f"{false:>7}/{unanswerable}"
    )


def build(
    folder: Path, embedder: Embedder, args: argparse.Namespace, items: Sequence[CustomerQuestion]
) -> tuple[SQLiteCuratedAnswers, dict[str, list[Case]], dict[str, str]]:
    """The store (stackfaq's and the FAQ sheets' answers), the dev cases per group, and the FAQ rows' answers."""
    store = SQLiteCuratedAnswers(folder / "curated.sqlite")
    cases: dict[str, list[Case]] = {}
    faq: dict[str, str] = {}
    if (args.datasets / "stackfaq" / "corpus.jsonl").is_file():
        cases["stackfaq"] = stackfaq(args.datasets / "stackfaq", store, args.holdout, args.seed)
    else:
        print(f"stackfaq not found under {args.datasets} - English is calibrated on the customer questions alone")
    for language in ("en", "zh"):
        entries = {store.add(q, a, language=language).id: a for q, a in faq_rows(ROOT / "data" / f"faq_{language}.csv")}
        cases[f"customer-{language}"] = customer([i for i in items if i.language == language], entries)
        faq.update(entries)
    return store, cases, faq


def run(args: argparse.Namespace) -> None:
    settings = Settings(_env_file=None)
    embedder = SentenceTransformerEmbedder(settings.embedding_model)
    dev = load_questions(args.questions)
    heldout = load_questions(args.heldout)
    with tempfile.TemporaryDirectory(prefix="rag-curated-") as tmp:
        store, cases, faq = build(Path(tmp), embedder, args, dev)
        check = {f"heldout-{lang}": customer([i for i in heldout if i.language == lang], faq) for lang in ("en", "zh")}
        scorers = {
            "cosine alone (baseline)": CuratedMatcher(store, embedder, min_score=0, known_penalty=0, unknown_penalty=0),
            "cosine + content-word check": CuratedMatcher(store, embedder, min_score=0),
        }
        for name, matcher in scorers.items():
            report(name, matcher, cases, check, args.precision)
        store.close()


def report(
    name: str, matcher: CuratedMatcher, cases: dict[str, list[Case]], check: dict[str, list[Case]], precision: float
) -> None:
    asked = {group: ask(matcher, group, items) for group, items in cases.items()}
    english = [r for group, rows in asked.items() if not group.endswith("-zh") for r in rows]
    chinese = asked["customer-zh"]
    chosen = {"en": choose(english, precision), "zh": choose(chinese, precision)}
    print(f"\n=== {name} ===")
    print(table("English: stackfaq + customer-en (dev)", english, TABLE_THRESHOLDS))
    print(table("Chinese: customer-zh (dev)", chinese, TABLE_THRESHOLDS))
    print(f"\nchosen: lowest threshold with precision >= {precision}: en {chosen['en']:.2f}, zh {chosen['zh']:.2f}")
    print(f"{'set':<34} {'threshold':>9} {'questions':>9} {'matched':>7} {'precision':>9} {'coverage':>8} false")
    for group, rows in asked.items():
        print(summary(f"{group} (dev)", rows, chosen["zh" if group.endswith("-zh") else "en"]))
    for group, items in check.items():
        language = group.rsplit("-", 1)[1]
        print(summary(f"{group} (never used to choose)", ask(matcher, group, items), chosen[language]))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--questions", type=Path, default=ROOT / "benchmarks/data/customer-questions/dev.jsonl")
    parser.add_argument("--heldout", type=Path, default=ROOT / "benchmarks/data/customer-questions/heldout.jsonl")
    parser.add_argument("--holdout", type=float, default=HOLDOUT, help="share of stackfaq left uncurated")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--precision", type=float, default=PRECISION)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
