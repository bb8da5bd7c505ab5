"""Retrievers on a real knowledge base (real model, FAISS, BM25): one contract suite for all three, then
what each is for: Chinese and mixed-language questions, incremental lexical updates, filters."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.pipeline import ingest
from rag.core.settings import Settings
from rag.core.types import Filters
from rag.retrieval import HybridRetriever
from rag.store.knowledge_base import KnowledgeBase
from rag.store.lexical_index import BM25Index
from rag.text.lexical import LEXICAL_VERSION, bm25_tokens
from rag.wiring import create_retriever
from tests import builders

pytestmark = pytest.mark.integration

DOCS = {
    "en/shipping.md": "# Shipping\n\nStandard shipping takes 3-5 business days and is free on orders over $50.",
    "en/returns.md": "# Returns\n\nYou can return unused items within 30 days of delivery for a full refund.",
    "en/warranty.md": "# Warranty\n\nElectronics carry a two-year warranty against manufacturing defects.",
    "en/password.md": (
        "# Password\n\nReset your password with the link on the sign-in page; it is valid for 30 minutes."
    ),
    "zh/退货.md": "# 退货政策\n\n签收后30天内可以申请退货，商品需保持完好。退款在5到7个工作日内到账。",
    "zh/发货.md": "# 发货说明\n\n下午两点前下单当天发货。顺丰快递4到6个工作日送达。",
    "zh/发票.md": "# 发票\n\n中国订单提供电子收据，不提供增值税发票。",
    "zh/iphone.md": "# iPhone 配件\n\niPhone 充电线保修一年，Lightning 接口损坏可以免费更换。",
}


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("retrieval")
    for name, text in DOCS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    settings = Settings(kb_dir=root / "kb", _env_file=None)
    import os

    cwd = os.getcwd()
    os.chdir(root)
    try:
        ingest([root / "en", root / "zh"], settings.kb_dir, embedder, settings)
    finally:
        os.chdir(cwd)
    return settings.kb_dir


@pytest.fixture(params=["dense", "bm25", "hybrid"])
def retriever(request, kb_dir, embedder):
    kb = KnowledgeBase.open(kb_dir)
    yield create_retriever(request.param, kb, embedder, Settings(_env_file=None))
    kb.close()


# ---- contract: every retriever --------------------------------------------------------------------------
def test_contract_at_most_k_best_first(retriever):
    passages = retriever.retrieve("return items for a refund", k=3)
    assert 0 < len(passages) <= 3
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    assert len({p.chunk.id for p in passages}) == len(passages)


def test_contract_filters_apply(retriever):
    passages = retriever.retrieve("退货 return refund", k=5, filters=Filters(source_prefix="zh/"))
    assert passages and all(p.chunk.source.startswith("zh/") for p in passages)
    assert retriever.retrieve("refund", k=5, filters=Filters(source_prefix="nowhere/")) == []


def test_contract_rejects_bad_k(retriever):
    with pytest.raises(ValueError, match="k must be greater than 0"):
        retriever.retrieve("x", k=0)


def test_contract_batches_match_single_calls(retriever):
    questions = ["warranty for electronics", "发票"]
    batch = retriever.retrieve_many(questions, k=2)
    assert [[p.chunk.id for p in r] for r in batch] == [
        [p.chunk.id for p in retriever.retrieve(q, k=2)] for q in questions
    ]


# ---- what hybrid adds ---------------------------------------------------------------------------------
@pytest.fixture
def hybrid(kb_dir, embedder):
    kb = KnowledgeBase.open(kb_dir)
    yield create_retriever("hybrid", kb, embedder, Settings(_env_file=None))
    kb.close()


@pytest.mark.parametrize(
    "question, source",
    [
        ("退款多久到账？", "zh/退货.md"),
        ("几点前下单当天发货", "zh/发货.md"),
        ("可以开增值税发票吗", "zh/发票.md"),
        ("How long is the warranty on electronics?", "en/warranty.md"),
    ],
)
def test_chinese_and_english_questions_find_their_document(hybrid, question, source):
    assert hybrid.retrieve(question, k=1)[0].chunk.source == source


def test_mixed_chinese_english_question(hybrid):
    top = hybrid.retrieve("iPhone 充电线坏了怎么办", k=1)[0]
    assert top.chunk.source == "zh/iphone.md"
    assert top.dense_score is not None and top.lexical_score is not None and top.lexical_score > 0


def test_dense_weight_follows_the_language_the_model_covers(hybrid, kb_dir, embedder):
    assert hybrid.weight("How long is shipping?") == pytest.approx(0.8)
    assert hybrid.weight("退货政策是什么") == pytest.approx(0.2)
    assert 0.2 < hybrid.weight("iPhone 退货") < 0.8
    with KnowledgeBase.open(kb_dir) as kb:
        multilingual = HybridRetriever(kb, embedder, dense_languages=("en", "zh"))
        assert multilingual.weight("退货政策是什么") == pytest.approx(0.8)


def test_near_duplicates_are_skipped(tmp_path, monkeypatch, embedder):
    monkeypatch.chdir(tmp_path)
    text = "Standard shipping takes 3-5 business days and is free on orders over $50."
    builders.write_txt(tmp_path / "a.txt", text)
    builders.write_txt(tmp_path / "b.txt", text + " ")
    builders.write_txt(tmp_path / "c.txt", "Express shipping takes 1-2 business days and costs $12.95.")
    settings = Settings(kb_dir=tmp_path / "kb", _env_file=None)
    ingest([tmp_path], settings.kb_dir, embedder, settings)
    with KnowledgeBase.open(settings.kb_dir) as kb:
        sources = [
            p.chunk.source for p in create_retriever("hybrid", kb, embedder, settings).retrieve("shipping time", k=3)
        ]
        keep_all = HybridRetriever(kb, embedder, near_duplicate_similarity=1.0).retrieve("shipping time", k=3)
    assert len(sources) == 2 and f"{tmp_path.name}/c.txt" in sources  # recorded under the ingested folder's name
    assert len(keep_all) == 3


def test_lexical_index_follows_incremental_ingest_and_deletes(tmp_path, monkeypatch, embedder):
    monkeypatch.chdir(tmp_path)
    builders.write_txt(tmp_path / "one.txt", "Kayak rentals open in May.")
    builders.write_txt(tmp_path / "two.txt", "雪地靴可以在冬季促销时购买。")
    settings = Settings(kb_dir=tmp_path / "kb", _env_file=None)
    ingest([tmp_path], settings.kb_dir, embedder, settings)
    with KnowledgeBase.open(settings.kb_dir) as kb:
        bm25 = create_retriever("bm25", kb, None, settings)
        assert [p.chunk.source for p in bm25.retrieve("kayak", k=3)] == [f"{tmp_path.name}/one.txt"]
        assert [p.chunk.source for p in bm25.retrieve("雪地靴", k=3)] == [f"{tmp_path.name}/two.txt"]
        # another process updates the knowledge base; this open one picks the new generation up
        builders.write_txt(tmp_path / "one.txt", "Canoe rentals open in June.")
        (tmp_path / "two.txt").unlink()
        ingest([tmp_path], settings.kb_dir, embedder, settings)
        assert bm25.retrieve("kayak", k=3) == []
        assert [p.chunk.source for p in bm25.retrieve("canoe", k=3)] == [f"{tmp_path.name}/one.txt"]
        assert bm25.retrieve("雪地靴", k=3) == []
        kb.check()


def test_bm25_tokens_stem_english_and_segment_chinese():
    assert bm25_tokens("Shipping costs for the parcels") == ["ship", "cost", "parcel"]
    assert "运费" in bm25_tokens("退货运费谁承担") and "承担" in bm25_tokens("退货运费谁承担")
    assert bm25_tokens("iPhone充电线") == ["iphon", "充电", "线"]


def test_bm25_index_scores_and_persists(tmp_path):
    index = BM25Index.build([3, 1, 2], [["ship", "fast"], ["return"], ["ship", "ship", "slow"]])
    hits = index.search(["ship"], 5)
    assert [cid for cid, _ in hits] == [2, 3] and hits[0][1] > hits[1][1] > 0
    assert index.search(["ship"], 5, allowed_ids=np.array([3])) == [(3, hits[1][1])]
    assert index.scores_for(["return"], [1, 2, 99]).tolist()[1:] == [0.0, 0.0]
    index.save(tmp_path / "i.npz")
    loaded = BM25Index.load(tmp_path / "i.npz")
    assert loaded.search(["ship"], 5) == hits and loaded.vocabulary == index.vocabulary


FAQ = [
    ("How long does standard shipping take?", "Parcels arrive in three to five business days after dispatch."),
    ("Can I return an item I do not like?", "Unused items go back within thirty days for a full refund."),
    ("Is there a warranty on electronics?", "Electronics carry a two-year warranty against manufacturing defects."),
    ("How do I reset my password?", "Use the link on the sign-in page; it stays valid for thirty minutes."),
    ("Do you ship abroad?", "We deliver to most European countries; customs fees are paid on delivery."),
    ("Which payment methods are accepted?", "We take credit cards, PayPal and bank transfers in euros."),
    ("Can I change my order after paying?", "Orders can be edited for one hour, until the warehouse picks them."),
    ("How do I track my parcel?", "The confirmation email holds a tracking link from the carrier."),
    ("Where is my refund?", "Refunds reach your card within five to seven business days of our receipt."),
    ("Do you offer gift cards?", "Gift cards from ten to two hundred euros are sold in the online shop."),
    ("How do I contact support?", "Write to the help desk from the contact page; we answer within a day."),
    ("Can I pick up my order in a store?", "Click and collect is free in every store; bring the order number."),
]


def _write_faq(folder):
    import json

    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"_id": f"f{i}", "title": q, "text": a}) for i, (q, a) in enumerate(FAQ)]
    (folder / "faq.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_ingest_calibrates_the_fusion_weight_and_hybrid_uses_it(tmp_path, monkeypatch, embedder):
    monkeypatch.chdir(tmp_path)
    _write_faq(tmp_path / "docs")
    settings = Settings(kb_dir=tmp_path / "kb", _env_file=None)
    ingest([tmp_path / "docs"], settings.kb_dir, embedder, settings)
    with KnowledgeBase.open(settings.kb_dir) as kb:
        calibration = kb.fusion_calibration()
        assert calibration is not None and calibration.questions == len(FAQ)
        assert calibration.dense_mrr > 0.5 and 0 <= calibration.dense_weight <= 1
        hybrid = create_retriever("hybrid", kb, embedder, settings)
        assert hybrid.knowledge_base_weight() == calibration.dense_weight
        assert hybrid.weight("where is my refund") == calibration.dense_weight
        assert "calibrated at ingest" in hybrid.describe_weight()
        fixed = create_retriever("hybrid", kb, embedder, Settings(_env_file=None, hybrid_adaptive=False))
        assert fixed.knowledge_base_weight() == 0.8 and "setting" in fixed.describe_weight()
        assert hybrid.retrieve("refund not arrived", k=1)[0].record_id == "f8"


def test_tokens_of_an_older_tokenizer_are_rederived_on_the_next_write(tmp_path, monkeypatch, embedder):
    monkeypatch.chdir(tmp_path)
    _write_faq(tmp_path / "docs")
    settings = Settings(kb_dir=tmp_path / "kb", _env_file=None)
    ingest([tmp_path / "docs"], settings.kb_dir, embedder, settings)
    with KnowledgeBase.open(settings.kb_dir) as kb:  # as an older version would have stored them
        with kb.store.transaction():
            kb.store._conn.execute("UPDATE chunks SET lexical = 'stale'")
            kb.store.set_lexical_version("1")
    ingest([tmp_path / "docs"], settings.kb_dir, embedder, settings)  # nothing changed but the tokenizer
    with KnowledgeBase.open(settings.kb_dir) as kb:
        assert kb.store.lexical_version() == LEXICAL_VERSION
        ((top, _),) = kb.lexical_search("gift cards", 1)
        assert kb.chunks([top])[top].title == "Do you offer gift cards?"
        kb.check()
