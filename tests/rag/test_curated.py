"""Curated answers: the SQLite store (real files), the matcher (the real embedding model) and the chat path."""

from __future__ import annotations

import pytest

from rag.chat.curated import CuratedMatcher
from rag.chat.service import ChatService
from rag.core.settings import Settings
from rag.store.curated import CuratedAnswerNotFound, InvalidCuratedAnswer, SQLiteCuratedAnswers
from rag.text.tokenizer import get_encoding

unit = pytest.mark.unit
integration = pytest.mark.integration
SETTINGS = Settings(_env_file=None)

SHIPPING = [
    ("How much does standard shipping cost?", "Standard shipping costs $5.95 and takes 3-5 business days."),
    ("How much is express shipping?", "Express shipping costs $12.95 and takes 1-2 business days."),
    ("Do gift cards expire?", "No. Our gift cards never expire and carry no fees."),
    ("礼品卡有使用期限吗？", "礼品卡永久有效，没有使用期限。"),
    ("可以开增值税发票吗？", "可以。下单时在结算页选择开具增值税普通发票即可。"),
]


@pytest.fixture
def store(tmp_path):
    with SQLiteCuratedAnswers(tmp_path / "curated.sqlite") as s:
        yield s


def fill(store: SQLiteCuratedAnswers) -> dict[str, str]:
    return {q: store.add(q, a).id for q, a in SHIPPING}


def matcher(store, embedder) -> CuratedMatcher:
    return CuratedMatcher(
        store, embedder, min_score=SETTINGS.curated_min_score, min_score_zh=SETTINGS.curated_min_score_zh
    )


# ---- storage ------------------------------------------------------------------------------------------------
@unit
def test_add_get_list_update_delete(store):
    entry = store.add(
        "  Do you ship\nto Canada? ", " Yes, in 5-8 days. ", ["Canada shipping?", " ", "canada SHIPPING?"]
    )
    assert (entry.question, entry.answer, entry.phrasings) == (
        "Do you ship to Canada?",
        "Yes, in 5-8 days.",
        ["Canada shipping?"],
    )
    assert entry.language == "en" and entry.enabled and len(entry.id) == 11
    assert store.get(entry.id) == entry
    changed = store.update(entry.id, answer="Yes, in 4-6 days.", enabled=False)
    assert changed.answer == "Yes, in 4-6 days." and not changed.enabled and changed.question == entry.question
    assert changed.updated_at > entry.updated_at and changed.created_at == entry.created_at
    assert store.list() == [changed] and store.list(enabled_only=True) == []
    assert store.delete(entry.id) and not store.delete(entry.id)
    with pytest.raises(CuratedAnswerNotFound, match="list the curated answers"):
        store.get(entry.id)


@unit
def test_language_is_detected_when_left_empty_and_checked_when_given(store):
    assert store.add("礼品卡会过期吗？", "不会。").language == "zh"
    with pytest.raises(InvalidCuratedAnswer, match="'fr' is not supported") as caught:
        store.add("Question?", "Answer.", language="fr")
    assert caught.value.field == "language"


@unit
@pytest.mark.parametrize(
    ("fields", "field", "hint"),
    [
        ({"question": " "}, "question", "question is empty"),
        ({"answer": ""}, "answer", "answer is empty"),
        ({"question": "q" * 1001}, "question", "keep it to 1000"),
        ({"answer": "a" * 10001}, "answer", "shorten it to 10000"),
        ({"phrasings": [f"Way {i}?" for i in range(21)]}, "phrasings", "keep the 20 most different"),
        ({"phrasings": ["p" * 1001]}, "phrasings", "keep each to 1000"),
        ({"phrasings": "one string"}, "phrasings", "list of questions"),
    ],
)
def test_invalid_fields_are_named_with_what_to_do(store, fields, field, hint):
    values = {"question": "Do you ship to Canada?", "answer": "Yes.", **fields}
    with pytest.raises(InvalidCuratedAnswer, match=hint) as caught:
        store.add(**values)
    assert caught.value.field == field
    assert store.list() == [] and store.version() == 0  # nothing half-written


@unit
def test_every_change_bumps_the_version(store):
    versions = [store.version()]
    entry = store.add("Q?", "A.")
    versions.append(store.version())
    store.update(entry.id, phrasings=["Another Q?"])
    versions.append(store.version())
    store.delete(entry.id)
    versions.append(store.version())
    assert versions == [0, 1, 2, 3]
    store.delete(entry.id)  # nothing deleted, nothing changed
    assert store.version() == 3


@unit
def test_two_stores_on_one_file_see_each_others_changes(tmp_path):
    """Two processes (or a server's workers) open the same file: a change in one is seen by the other."""
    with SQLiteCuratedAnswers(tmp_path / "c.sqlite") as writer, SQLiteCuratedAnswers(tmp_path / "c.sqlite") as reader:
        entry = writer.add("Do you ship to Canada?", "Yes.")
        assert reader.get(entry.id).answer == "Yes." and reader.version() == writer.version() == 1
        reader.update(entry.id, enabled=False)
        assert not writer.get(entry.id).enabled and writer.version() == 2


# ---- CSV --------------------------------------------------------------------------------------------------
@unit
def test_csv_round_trip_keeps_everything_and_never_exports_a_formula(store, tmp_path):
    store.add("=1+1 is what?", "-5 degrees is the limit.\nSecond line.", ["@home delivery?", "Ship home?"])
    store.add("退货政策是什么？", "30天内可退货。", enabled=False)
    text = store.export_csv()
    assert text.splitlines()[0] == "question,answer,phrasings,language,enabled"
    assert "'=1+1" in text and "'-5 degrees" in text and "'@home" in text
    with SQLiteCuratedAnswers(tmp_path / "copy.sqlite") as copy:
        result = copy.import_csv("\ufeff" + text)  # as Excel saves it: with a BOM
        assert (result.added, result.updated, result.problems) == (2, 0, [])
        fields = [(a.question, a.answer, a.phrasings, a.language, a.enabled) for a in copy.list()]
    assert fields == [(a.question, a.answer, a.phrasings, a.language, a.enabled) for a in store.list()]
    again = store.import_csv(text)  # the same file again changes nothing
    assert (again.added, again.updated, store.version()) == (0, 0, 2)


@unit
def test_bad_csv_rows_are_reported_by_line_and_skipped_whole(store):
    text = (
        "question,answer,phrasings,language,enabled\n"
        'Do you ship to Canada?,"Yes,\nin 5-8 days.",Canada? | Ship to Canada?,,\n'  # lines 2-3
        ",An answer without a question,,,\n"  # line 4
        "Do gift cards expire?,Never.,,fr,\n"  # line 5
        "Is pickup possible?,No.,,,maybe\n"  # line 6
        "do you ship to canada?,Again.,,,\n"  # line 7
        "Is express free?,No.,,en,false\n"  # line 8
    )
    result = store.import_csv(text)
    assert result.added == 2 and result.updated == 0
    assert [p.split(":")[0] for p in result.problems] == ["line 4", "line 5", "line 6", "line 7"]
    assert "question is empty" in result.problems[0] and "'fr' is not supported" in result.problems[1]
    assert "true or false" in result.problems[2] and "same question as line 2" in result.problems[3]
    canada, express = store.list()
    assert canada.answer == "Yes,\nin 5-8 days." and canada.phrasings == ["Canada?", "Ship to Canada?"]
    assert not express.enabled


@unit
def test_csv_import_updates_by_question_and_replace_deletes_the_rest(store):
    kept = store.add("Do you ship to Canada?", "Yes.")
    store.add("Do gift cards expire?", "No.")
    result = store.import_csv("question,answer\nDo you ship to Canada?,Yes - in 5-8 days.\n", replace=True)
    assert (result.added, result.updated, result.deleted) == (0, 1, 1)
    assert [(a.id, a.answer) for a in store.list()] == [(kept.id, "Yes - in 5-8 days.")]


@unit
def test_a_csv_without_question_and_answer_columns_is_refused(store):
    with pytest.raises(InvalidCuratedAnswer, match="first line must be question,answer"):
        store.import_csv("q,a\nx,y\n")


# ---- matching (the real embedding model) ------------------------------------------------------------------------
@integration
def test_an_english_paraphrase_matches_its_curated_answer(store, embedder):
    ids = fill(store)
    found = matcher(store, embedder).match("Will my gift card ever expire?", "en")
    assert found is not None and found.answer.id == ids["Do gift cards expire?"]
    assert found.matched == "Do gift cards expire?" and found.score >= SETTINGS.curated_min_score


@integration
def test_express_is_not_confused_with_standard(store, embedder):
    ids = fill(store)
    m = matcher(store, embedder)
    express = m.match("What does express shipping cost?", "en")
    assert express is not None and express.answer.id == ids["How much is express shipping?"]
    standard = m.match("How much is standard shipping?", "en")
    assert standard is not None and standard.answer.id == ids["How much does standard shipping cost?"]


@integration
def test_unrelated_and_other_language_questions_do_not_match(store, embedder):
    fill(store)
    m = matcher(store, embedder)
    assert m.match("Does your tent come with a rain fly?", "en") is None
    assert m.match("礼品卡有限期吗", "en") is None  # only Chinese entries answer Chinese, and the reverse


@integration
def test_a_chinese_paraphrase_matches_lexically(store, embedder):
    ids = fill(store)
    found = matcher(store, embedder).match("礼品卡有限期吗 会不会过期", "zh")
    assert found is not None and found.answer.id == ids["礼品卡有使用期限吗？"]
    # a question in two parts is not answered by an entry for one of them
    assert matcher(store, embedder).match("能用PayPal付款吗？另外能开增值税发票吗？", "zh") is None


@integration
def test_disabled_and_edited_answers_take_effect_at_once(tmp_path, embedder):
    """The matcher reads one store object; the support lead edits through another (as another process would)."""
    with SQLiteCuratedAnswers(tmp_path / "c.sqlite") as served, SQLiteCuratedAnswers(tmp_path / "c.sqlite") as api:
        ids = fill(api)
        m = matcher(served, embedder)
        gift = ids["Do gift cards expire?"]
        assert m.match("Will my gift card ever expire?", "en").answer.id == gift  # type: ignore[union-attr]
        api.update(gift, enabled=False)
        assert m.match("Will my gift card ever expire?", "en") is None
        api.update(gift, enabled=True, answer="Gift cards are valid for five years.")
        assert m.match("Will my gift card ever expire?", "en").answer.answer == "Gift cards are valid for five years."  # type: ignore[union-attr]
        api.update(gift, question="Can I return a tent I have used?", answer="Yes, within 30 days.")
        assert m.match("Will my gift card ever expire?", "en") is None
        assert m.match("Can I return a used tent?", "en").answer.id == gift  # type: ignore[union-attr]


# ---- the chat path ----------------------------------------------------------------------------------------------
class FailingRetriever:
    def retrieve(self, question, k=5, filters=None):
        raise AssertionError("a curated answer needs no retrieval")


class FailingGenerator:
    name = "scripted"
    needs_prompt = True

    def stream(self, request):
        raise AssertionError("a curated answer needs no model call")


@integration
def test_chat_answers_a_curated_match_verbatim_and_whole(store, embedder):
    answer_text = "Express shipping costs $12.95.\n\nIt takes 1-2 business days; =orders= ship from Reno."
    entry = store.add("How much is express shipping?", answer_text, ["express price?"])
    svc = ChatService(
        SETTINGS, FailingRetriever(), FailingGenerator(), get_encoding(), curated=matcher(store, embedder)
    )
    events = list(svc.stream("What does express shipping cost?"))
    assert events[0] == ("delta", answer_text) and events[-1][0] == "answer" and len(events) == 2
    answer = events[-1][1]
    assert answer.answer == answer_text and answer.answered and not answer.handoff
    assert answer.generator == "curated" and answer.usage.total_tokens == 0 and answer.passages == []
    [citation] = answer.citations
    assert (citation.marker, citation.source, citation.title) == (1, f"curated/{entry.id}", entry.question)
    assert answer.to_dict()["citations"][0]["source"] == f"curated/{entry.id}"
