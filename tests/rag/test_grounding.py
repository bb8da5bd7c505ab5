"""Citation grounding: every cited claim checked against its passage, markers moved, dropped and renumbered."""

from __future__ import annotations

import re

import pytest

from rag.core.types import Chunk, Passage
from rag.generation.extractive import ExtractiveGenerator
from rag.generation.grounding import check_citations, grounded_citations, numbers

pytestmark = pytest.mark.unit


def passages(*texts: str) -> list[Passage]:
    return [
        Passage(Chunk(doc_id=f"d{i}", source=f"docs/{i}.md", text=text, position=0, id=i), 0.9 - i / 100)
        for i, text in enumerate(texts, 1)
    ]


EN = passages(
    "Standard shipping takes 3 to 5 business days. It is free on orders over $50.",
    "Express shipping arrives in 1 to 2 business days and costs $12.95.",
    "You can return any item within 30 days of delivery. Refunds reach your card within 5 to 7 business days.",
    "Gift cards never expire and can be combined with coupons.",
)
ZH = passages(
    "签收后30天内可以申请退货，商品需保持完好。退款在5到7个工作日内到账。",
    "下午两点前下单当天发货。顺丰快递4到6个工作日送达。",
    "礼品卡永久有效，可以与优惠券同时使用。",
)


def markers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\[(\d+)\]", text)]


def cited_ids(answer: str, ps: list[Passage], **kw) -> tuple[str, list[str]]:
    g = check_citations(answer, ps, **kw)
    return g.text, [p.chunk.doc_id for p in g.cited]


# ---- claims that hold ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "answer, ps",
    [
        ("Standard shipping takes 3 to 5 business days [1].", EN),
        # paraphrased: other words around the facts, "3-5" for "3 to 5", $50 kept
        ("Standard orders arrive within 3-5 business days, and shipping is free above $50 [1].", EN),
        ("You have 30 days after delivery to return an item [1].", passages(EN[2].chunk.text)),
        ("您可以在签收后30天内申请退货[1]。", ZH),
        ("退款会在5-7个工作日内退回[1]。", ZH),
    ],
)
def test_supported_claims_keep_their_marker(answer, ps):
    g = check_citations(answer, ps)
    assert (g.text, g.changes, g.unsupported) == (answer, [], [])


def test_numbers_written_in_words_in_the_passage_support_digits():
    ps = passages("Electronics carry a two-year warranty.", "下午两点前下单当天发货。")
    text, ids = cited_ids("Electronics have a 2-year warranty [1]. 下午2点前的订单当天发货[2]。", ps)
    assert markers(text) == [1, 2] and ids == ["d1", "d2"]


def test_equal_numbers_written_differently_match():
    ps = passages("Orders over $1,000.00 ship by 09:00.")
    assert check_citations("Orders above $1000 ship by 9:00 [1].", ps).changes == []
    assert numbers("$1,000.00 at 09:00") == numbers("$1000 at 9") == {"1000", "9"}


# ---- claims that do not --------------------------------------------------------------------------------------
def test_a_number_no_passage_holds_drops_the_marker_and_reports_the_sentence():
    g = check_citations("Express shipping costs $15 [2]. Standard shipping takes 3 to 5 business days [1].", EN)
    assert g.text == "Express shipping costs $15. Standard shipping takes 3 to 5 business days [1]."
    assert g.unsupported == ["Express shipping costs $15."]
    assert [(c.marker, c.moved_to) for c in g.changes] == [(2, None)] and "15" in g.changes[0].reason
    assert [p.chunk.doc_id for p in g.cited] == ["d1"]


def test_unsupported_sentences_can_be_removed():
    answer = "Express shipping costs $15 [2]. Standard shipping takes 3 to 5 business days [1]."
    g = check_citations(answer, EN, drop_unsupported=True)
    assert g.text == "Standard shipping takes 3 to 5 business days [1]."
    assert g.unsupported == ["Express shipping costs $15."]
    g = check_citations("顺丰3天送达[2]。退款在5到7个工作日内到账[1]。", ZH, drop_unsupported=True)
    assert (g.text, g.unsupported) == ("退款在5到7个工作日内到账[1]。", ["顺丰3天送达。"])


def test_an_uncited_sentence_with_an_unknown_number_is_reported_too():
    g = check_citations("Returns are free. You get 60 days to decide.", EN)
    assert g.text == "Returns are free. You get 60 days to decide." and g.unsupported == ["You get 60 days to decide."]


@pytest.mark.parametrize(
    "answer, ps, expected, moved",
    [
        # the claim is in passage 2, the model cited passage 1
        ("Express delivery costs $12.95 [1].", EN, "Express delivery costs $12.95 [1].", [(1, 2)]),
        ("Express shipping is available [1].", EN, "Express shipping is available [1].", [(1, 2)]),
        ("礼品卡可以和优惠券一起用[1]。", ZH, "礼品卡可以和优惠券一起用[1]。", [(1, 3)]),
        # both markers of one sentence swapped
        (
            "退货期限是30天[2]，顺丰需要4到6个工作日[1]。",
            ZH,
            "退货期限是30天[1]，顺丰需要4到6个工作日[2]。",
            [(2, 1), (1, 2)],
        ),
    ],
)
def test_a_wrong_marker_moves_to_the_passage_that_supports_the_claim(answer, ps, expected, moved):
    g = check_citations(answer, ps)
    assert g.text == expected and g.unsupported == []
    assert [(c.marker, c.moved_to) for c in g.changes] == moved


def test_moved_markers_point_at_the_right_passages():
    g = check_citations("Returns are accepted within 30 days [2]. Express costs $12.95 [3].", EN)
    assert g.text == "Returns are accepted within 30 days [1]. Express costs $12.95 [2]."
    assert [p.chunk.doc_id for p in g.cited] == ["d3", "d2"] and g.renumbered == {3: 1, 2: 2}


def test_a_marker_no_passage_supports_is_dropped():
    g = check_citations("Our stores are open on Sundays [1].", EN)
    assert g.text == "Our stores are open on Sundays." and g.cited == []
    assert [(c.marker, c.moved_to) for c in g.changes] == [(1, None)] and "content terms" in g.changes[0].reason


def test_several_markers_keep_those_that_hold_part_of_the_claim():
    # a sentence joining two facts cites both passages
    text, ids = cited_ids("Standard takes 3-5 days and express 1-2 days [1][2].", EN)
    assert text == "Standard takes 3-5 days and express 1-2 days [1][2]." and ids == ["d1", "d2"]
    # a second passage that adds nothing to the first goes
    g = check_citations("Refunds take 5-7 business days [3][2].", EN)
    assert g.text == "Refunds take 5-7 business days [1]." and [p.chunk.doc_id for p in g.cited] == ["d3"]
    assert [(c.marker, c.moved_to) for c in g.changes] == [(2, None)]


def test_markers_inside_a_sentence_vouch_for_the_words_before_them():
    g = check_citations("Standard takes 3-5 days [1] and express costs $12.95 [1].", EN)
    assert g.text == "Standard takes 3-5 days [1] and express costs $12.95 [2]."


def test_a_marker_opening_a_sentence_belongs_to_the_one_before():
    # how the extractive generator cites a group of sentences: "A. B. [1] C. [2]"
    answer = "Shipping is free over $50. [1] Express costs $12.95. [2]"
    g = check_citations(answer, EN)
    assert g.text == answer and g.changes == []
    g = check_citations("Shipping is free over $50. [2] Express costs $12.95. [1]", EN)
    assert g.text == answer


def test_list_ordinals_are_not_numbers_to_find():
    g = check_citations("1. Pack the item.\n2. Return it within 30 days [3].", EN)
    assert g.unsupported == [] and markers(g.text) == [1]


# ---- numbering and the parse_citations part --------------------------------------------------------------
def test_markers_are_renumbered_consecutively_in_order_of_first_use():
    answer = "Gift cards never expire [4]. Returns within 30 days [3]. Standard shipping is free over $50 [1]."
    g = check_citations(answer, EN)
    assert g.text == "Gift cards never expire [1]. Returns within 30 days [2]. Standard shipping is free over $50 [3]."
    assert g.renumbered == {4: 1, 3: 2, 1: 3}
    assert [c.marker for c in g.citations()] == [1, 2, 3]
    assert [c.chunk_id for c in g.citations()] == [4, 3, 1]


def test_a_dropped_marker_leaves_no_gap_in_the_numbering():
    answer = "Standard takes 3-5 days [1]. Stores open at 8 am [2]. Gift cards never expire [4]."
    text, cites = grounded_citations(answer, EN)
    assert text == "Standard takes 3-5 days [1]. Stores open at 8 am. Gift cards never expire [2]."
    assert [c.marker for c in cites] == [1, 2] and [c.chunk_id for c in cites] == [1, 4]


def test_no_markers_and_markers_to_nowhere():
    assert grounded_citations("I'm happy to help.", EN) == ("I'm happy to help.", [])
    text, cites = grounded_citations("Gift cards never expire 【4】[9]. 礼品卡永久有效[0][7]。", EN + ZH)
    assert text == "Gift cards never expire [1]. 礼品卡永久有效[2]。"
    assert [c.chunk_id for c in cites] == [4, 3]


def test_an_empty_answer():
    g = check_citations("", EN)
    assert (g.text, g.cited, g.changes, g.unsupported) == ("", [], [], [])


@pytest.mark.parametrize("question", ["How long does standard shipping take?", "How much does express cost?"])
def test_extractive_answers_keep_every_marker(question):
    # sentences quoted from the passages always hold; only the numbering may change
    text = "".join(ExtractiveGenerator().compose(question, EN, "en"))
    g = check_citations(text, EN)
    assert g.changes == [] and g.unsupported == []
    assert markers(g.text) == sorted(set(markers(g.text))) == list(range(1, len(g.cited) + 1))


def test_the_result_always_cites_one_to_n():
    answers = [
        "A [3]. B [3][1]. C [2] D [4].",
        "Express costs $12.95 [3]. Free over $50 [3]. Returns within 30 days [1]. Gift cards never expire [1].",
        "退货期限是30天[3]，礼品卡永久有效[1]。",
    ]
    for answer in answers:
        text, cites = grounded_citations(answer, EN + ZH)
        used = list(dict.fromkeys(markers(text)))
        assert used == list(range(1, len(cites) + 1)) == [c.marker for c in cites]
