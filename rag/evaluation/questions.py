"""Customer-question evaluation: questions written as customers write them, each with the facts a right answer
must contain or the mark that it must be declined (pure functions; the asking is the caller's).

File format (JSON Lines, one question per line):

    {"id": "en-001", "language": "en", "category": "price_time",
     "question": "how much is express?", "context": ["how long does shipping take"],
     "must_contain": [["$12.99"], ["1-2 business days", "1–2 business days"]],
     "must_not_contain": ["free on every order"], "decline": false}

- `context`: questions asked first in the same conversation (a follow-up's earlier turn); optional.
- `must_contain`: facts, each a list of accepted spellings; an answer is right when it was given and contains
  one spelling of every fact (case and spacing ignored).
- `decline`: true when the documents do not answer it: right means the bot handed off.
- `must_not_contain`: text a right answer never contains (optional).

Verdicts: `right` (answered with every fact, or declined when it should be), `wrongly_declined` (declined
though the documents answer it), `wrongly_answered` (answered but a fact missing or a forbidden text present,
or answered when it should have been declined).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rag.core.errors import DatasetError

if TYPE_CHECKING:
    from rag.core.types import Answer

Verdict = Literal["right", "wrongly_declined", "wrongly_answered"]
VERDICTS: tuple[Verdict, ...] = ("right", "wrongly_declined", "wrongly_answered")


@dataclass(frozen=True)
class CustomerQuestion:
    id: str
    language: str
    question: str
    category: str = ""
    context: tuple[str, ...] = ()
    must_contain: tuple[tuple[str, ...], ...] = ()
    must_not_contain: tuple[str, ...] = ()
    decline: bool = False


@dataclass
class Outcome:
    item: CustomerQuestion
    answer: Answer
    verdict: Verdict
    missing: list[str] = field(default_factory=list)  # the facts (first spelling) not found, or forbidden text found


def load_questions(path: Path | str) -> list[CustomerQuestion]:
    """Read a question file, saying which line and field is wrong."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path} not found - a question file is JSON Lines, see `rag eval --help`")
    items: list[CustomerQuestion] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = _item(json.loads(line))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path} line {number}: {exc} - see the format in rag/evaluation/questions.py") from exc
        if item.id in seen:
            raise DatasetError(f"{path} line {number}: id {item.id!r} is used twice - ids must be unique")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise DatasetError(f"{path} holds no questions")
    return items


def _item(record: Mapping) -> CustomerQuestion:
    if not isinstance(record, Mapping):
        raise TypeError("each line must be a JSON object")
    facts = tuple(tuple([f] if isinstance(f, str) else f) for f in record.get("must_contain") or [])
    if any(not fact or not all(isinstance(s, str) and s.strip() for s in fact) for fact in facts):
        raise ValueError("field 'must_contain' must be a list of facts, each a non-empty list of strings")
    decline = bool(record.get("decline", False))
    if not decline and not facts:
        raise ValueError("field 'must_contain' is empty: give the facts a right answer contains, or decline: true")
    return CustomerQuestion(
        id=str(record["id"]),
        language=str(record.get("language") or "en"),
        question=_text(record, "question"),
        category=str(record.get("category") or ""),
        context=tuple(str(q) for q in record.get("context") or []),
        must_contain=facts,
        must_not_contain=tuple(str(s) for s in record.get("must_not_contain") or []),
        decline=decline,
    )


def _text(record: Mapping, name: str) -> str:
    value = record[name]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {name!r} must be a non-empty string")
    return value


def _normalise(text: str) -> str:
    return " ".join(text.casefold().split())


def judge(item: CustomerQuestion, answer: Answer) -> Outcome:
    """The verdict on one answer."""
    if not answer.answered:
        return Outcome(item, answer, "right" if item.decline else "wrongly_declined")
    if item.decline:
        return Outcome(item, answer, "wrongly_answered", ["(should have been declined)"])
    text = _normalise(answer.answer)
    missing = [fact[0] for fact in item.must_contain if not any(_normalise(s) in text for s in fact)]
    missing += [f"not: {s}" for s in item.must_not_contain if _normalise(s) in text]
    return Outcome(item, answer, "wrongly_answered" if missing else "right", missing)


def run_questions(
    items: Iterable[CustomerQuestion], ask: Callable[[str, str], Answer], conversation: Callable[[str], str]
) -> list[Outcome]:
    """Ask every item in its own conversation (`conversation(item_id)` names it), its context questions first;
    `ask(question, conversation_id)` returns the bot's answer."""
    outcomes = []
    for item in items:
        conversation_id = conversation(item.id)
        for earlier in item.context:
            ask(earlier, conversation_id)
        outcomes.append(judge(item, ask(item.question, conversation_id)))
    return outcomes


def summarise(outcomes: Sequence[Outcome]) -> dict[str, dict[str, float | int]]:
    """Counts of each verdict and the share right, per language and overall (`all`)."""
    groups: dict[str, list[Outcome]] = {"all": list(outcomes)}
    for o in outcomes:
        groups.setdefault(o.item.language, []).append(o)
    table: dict[str, dict[str, float | int]] = {}
    for name, group in groups.items():
        row: dict[str, float | int] = {"questions": len(group)}
        for verdict in VERDICTS:
            row[verdict] = sum(1 for o in group if o.verdict == verdict)
        row["should_decline_answered"] = sum(1 for o in group if o.item.decline and o.answer.answered)
        row["right_share"] = round(int(row["right"]) / len(group), 4) if group else 0.0
        table[name] = row
    return table


def format_summary(table: Mapping[str, Mapping[str, float | int]]) -> str:
    """The summary as a text table, languages first and the total last."""
    header = (
        f"{'language':<9} {'questions':>9} {'right':>6} {'wrongly declined':>17} {'wrongly answered':>17} "
        f"{'right %':>8}"
    )
    lines = [header]
    for name in sorted(table, key=lambda n: (n == "all", n)):
        r = table[name]
        lines.append(
            f"{name:<9} {r['questions']:>9} {r['right']:>6} {r['wrongly_declined']:>17} "
            f"{r['wrongly_answered']:>17} {100 * float(r['right_share']):>7.1f}%"
        )
    return "\n".join(lines)
