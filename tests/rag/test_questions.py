"""Customer-question evaluation: the file format, the verdicts and the summary (pure logic)."""

from __future__ import annotations

import json

import pytest

from rag.core.errors import DatasetError
from rag.core.types import Answer
from rag.evaluation.questions import (
    CustomerQuestion,
    format_summary,
    judge,
    load_questions,
    run_questions,
    summarise,
)

pytestmark = pytest.mark.unit


def reply(text: str, answered: bool = True) -> Answer:
    return Answer(
        question="q", answer=text, answered=answered, handoff=not answered, citations=[], passages=[],
        generator="extractive", language="en",
    )  # fmt: skip


def item(**kw) -> CustomerQuestion:
    return CustomerQuestion(**{"id": "q1", "language": "en", "question": "how much is express?", **kw})


def test_verdicts():
    asks_price = item(must_contain=(("$12.95",), ("1-2 business days", "1–2 business days")))
    assert judge(asks_price, reply("Express costs $12.95 and takes 1–2  Business days. [1]")).verdict == "right"
    wrong = judge(asks_price, reply("Express costs $12.95. [1]"))
    assert wrong.verdict == "wrongly_answered" and wrong.missing == ["1-2 business days"]
    assert judge(asks_price, reply("sorry", answered=False)).verdict == "wrongly_declined"
    must_decline = item(decline=True)
    assert judge(must_decline, reply("sorry", answered=False)).verdict == "right"
    assert judge(must_decline, reply("Sure! [1]")).verdict == "wrongly_answered"
    forbidden = item(must_contain=(("$5.95",),), must_not_contain=("free on every order",))
    assert judge(forbidden, reply("Shipping is free on every order. It is $5.95.")).verdict == "wrongly_answered"


def test_context_questions_are_asked_first_in_the_same_conversation():
    asked: list[tuple[str, str]] = []

    def ask(question: str, conversation_id: str) -> Answer:
        asked.append((question, conversation_id))
        return reply("It takes 1-2 business days.")

    follow_up = item(question="and express?", context=("how long is shipping?",), must_contain=(("1-2",),))
    outcomes = run_questions([follow_up, item(id="q2", must_contain=(("1-2",),))], ask, lambda i: f"c-{i}")
    assert asked == [("how long is shipping?", "c-q1"), ("and express?", "c-q1"), ("how much is express?", "c-q2")]
    assert [o.verdict for o in outcomes] == ["right", "right"]


def test_summary_per_language_and_overall():
    zh = CustomerQuestion(id="z", language="zh", question="运费多少？", must_contain=(("¥25",),))
    outcomes = [
        judge(item(must_contain=(("$5",),)), reply("$5")),
        judge(item(id="q2", decline=True), reply("answered anyway")),
        judge(zh, reply("抱歉", answered=False)),
    ]
    table = summarise(outcomes)
    assert table["all"] == {
        "questions": 3, "right": 1, "wrongly_declined": 1, "wrongly_answered": 1, "should_decline_answered": 1,
        "right_share": 0.3333,
    }  # fmt: skip
    assert table["en"]["right"] == 1 and table["zh"]["wrongly_declined"] == 1
    lines = format_summary(table).splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["en", "zh", "all"]


def test_file_errors_name_the_line_and_the_field(tmp_path):
    path = tmp_path / "q.jsonl"
    good = {"id": "a", "language": "en", "question": "hi?", "must_contain": ["hello"]}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "question": ""}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"q.jsonl line 3: field 'question' must be a non-empty string"):
        load_questions(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="line 2: id 'a' is used twice"):
        load_questions(path)
    path.write_text(json.dumps({"id": "b", "question": "hi?"}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="'must_contain' is empty"):
        load_questions(path)
    path.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="line 1: each line must be a JSON object"):
        load_questions(path)
    with pytest.raises(DatasetError, match="not found"):
        load_questions(tmp_path / "missing.jsonl")
    path.write_text(json.dumps(good) + "\n", encoding="utf-8")
    assert load_questions(path)[0].must_contain == (("hello",),)


def test_the_shipped_question_sets_load():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "customer-questions"
    dev, heldout = load_questions(folder / "dev.jsonl"), load_questions(folder / "heldout.jsonl")
    assert len(dev) >= 80 and {q.language for q in dev} == {"en", "zh"}
    assert not {q.question for q in dev} & {q.question for q in heldout}
