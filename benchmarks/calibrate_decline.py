"""Calibrate the decline thresholds (`RAG_MIN_SCORE`, `RAG_MIN_SCORE_ZH`) on the shared datasets.

    python benchmarks/calibrate_decline.py [--datasets DIR]

For every dataset, its own answerable questions are in-domain (the bot should answer) and the other
datasets' questions, asked of the same knowledge base, are out-of-domain (the bot should decline). The
support score of each question (rag.chat.decline.support_score: best cosine similarity plus lexical coverage of
the question by the top passages as the chat's retriever returns them; lexical coverage alone for a language the
embedding model does not cover) is recorded; the threshold chosen is the middle of the range whose mean
balanced accuracy over datasets is within 0.005 of the best, separately for English and Chinese questions (the
embedding model scores the two on different scales). ClapNQ's unanswerable questions are reported too: they are
on-topic, so a score threshold alone cannot catch them, and they are not used to choose.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.pipeline import ingest  # noqa: E402
from rag.chat.decline import faq_match, support_score  # noqa: E402
from rag.core.settings import Settings  # noqa: E402
from rag.core.types import Passage  # noqa: E402
from rag.evaluation.metrics import load_dataset  # noqa: E402
from rag.retrieval.protocol import Retriever  # noqa: E402
from rag.store.embedders import SentenceTransformerEmbedder  # noqa: E402
from rag.store.knowledge_base import KnowledgeBase  # noqa: E402
from rag.text.language import detect_language  # noqa: E402
from rag.wiring import create_retriever  # noqa: E402

NAMES = ["stackfaq", "rgb-en", "rgb-zh", "clapnq"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    args = parser.parse_args()
    settings = Settings(_env_file=None)
    embedder = SentenceTransformerEmbedder(settings.embedding_model)
    datasets = {n: load_dataset(args.datasets / n) for n in NAMES if (args.datasets / n / "corpus.jsonl").is_file()}

    questions: dict[str, list[tuple[str, str]]] = {}  # dataset -> [(qid, text)] answerable-in-domain
    unanswerable: dict[str, list[str]] = {}
    for name, d in datasets.items():
        questions[name] = [(q, d.queries[q]) for q in d.judged_queries]
        unanswerable[name] = [q for q, gold in d.answers.items() if not gold and q in d.queries]
    all_texts = sorted(
        {t for qs in questions.values() for _, t in qs}
        | {datasets[n].queries[q] for n, qs in unanswerable.items() for q in qs}
    )
    lang = {t: detect_language(t) for t in all_texts}

    # scores[lang]["in"|"out"][dataset] -> list of best scores
    scores: dict[str, dict[str, dict[str, list[float]]]] = {lg: {"in": {}, "out": {}} for lg in ("en", "zh")}
    near: dict[str, list[float]] = {}
    faq: list[tuple[str, Passage, bool]] = []
    with tempfile.TemporaryDirectory(prefix="rag-calibrate-") as tmp:
        for name, d in datasets.items():
            kb_dir = Path(tmp) / name
            ingest([d.corpus_file], kb_dir, embedder, settings)
            with KnowledgeBase.open(kb_dir) as kb:
                retriever = create_retriever(settings.retriever, kb, embedder, settings)

                def best(texts: list[str], retriever: Retriever = retriever) -> list[float]:
                    found = retriever.retrieve_many(texts, settings.top_k) if texts else []
                    return [
                        support_score(t, passages, lang[t] in settings.dense_languages)
                        for t, passages in zip(texts, found, strict=True)
                    ]

                for name_q, qs in questions.items():
                    side = "in" if name_q == name else "out"
                    for lg in ("en", "zh"):
                        texts = [t for _, t in qs if lang[t] == lg]
                        if texts:
                            scores[lg][side].setdefault(name, []).extend(best(texts))
                near[name] = best([d.queries[q] for q in unanswerable[name]])
                if name == "stackfaq":
                    # StackFAQ records are FAQ entries (question as title, answer as text): how precise is a
                    # verbatim answer from the top match at each similarity threshold?
                    found = retriever.retrieve_many([t for _, t in questions[name]], 1)
                    for (q, text), p in zip(questions[name], found, strict=True):
                        if p:
                            row_like = Passage(replace(p[0].chunk, row=0), p[0].score, p[0].dense_score)
                            faq.append((text, row_like, d.qrels[q].get(p[0].record_id, 0) > 0))

    grid = np.round(np.arange(0.05, 1.00, 0.01), 2)
    print("support score: in-domain (should answer) vs out-of-domain (should decline)")
    print(
        f"{'lang':<5} {'threshold':>9} {'dataset':<10} {'in-domain answered':>19} "
        f"{'out-of-domain declined':>23} {'balanced':>9}"
    )
    chosen: dict[str, float] = {}
    for lg in ("en", "zh"):
        names = [n for n in scores[lg]["in"] if n in scores[lg]["out"]]
        if not names and scores[lg]["in"] and scores[lg]["out"]:
            # one dataset in this language: its questions asked of the other-language knowledge bases are the
            # out-of-domain side
            pooled = "+".join(scores[lg]["in"])
            scores[lg]["in"] = {pooled: sum(scores[lg]["in"].values(), [])}
            scores[lg]["out"] = {pooled: sum(scores[lg]["out"].values(), [])}
            names = [pooled]
        pairs = [(np.array(scores[lg]["in"][n]), np.array(scores[lg]["out"][n])) for n in names]
        if not pairs:
            continue

        def balanced(t: float, pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
            return float(np.mean([((i >= t).mean() + (o < t).mean()) / 2 for i, o in pairs]))

        values = np.array([balanced(t, pairs) for t in grid])
        # the middle of the plateau of near-best thresholds is safer on unseen data than its edge
        t_best = float(np.median(grid[values >= values.max() - 0.005]))
        chosen[lg] = t_best
        for n in scores[lg]["in"]:
            if n not in scores[lg]["out"]:
                continue
            i, o = np.array(scores[lg]["in"][n]), np.array(scores[lg]["out"][n])
            print(
                f"{lg:<5} {t_best:>9.2f} {n:<10} {(i >= t_best).mean():>19.3f} {(o < t_best).mean():>23.3f} "
                f"{((i >= t_best).mean() + (o < t_best).mean()) / 2:>9.3f}   (n={len(i)} in, {len(o)} out)"
            )
    for n, s in near.items():
        if s:
            t = chosen.get("en", 0.0)
            print(
                f"near-domain unanswerable ({n}, en): declined {np.mean(np.array(s) < t):.3f} at {t:.2f} (n={len(s)})"
            )
    if faq:
        print("curated FAQ answers (stackfaq top match): threshold, share of questions answered verbatim, precision")
        for t in sorted({0.55, 0.6, 0.65, 0.7, 0.75, settings.faq_min_score}):
            chosen_faq = [ok for text, passage, ok in faq if faq_match(text, passage, t)]
            print(
                f"  {t:.2f}  coverage {len(chosen_faq) / len(faq):.3f}  precision "
                f"{(sum(chosen_faq) / len(chosen_faq)) if chosen_faq else 0:.4f}"
                + ("   <- RAG_FAQ_MIN_SCORE" if t == settings.faq_min_score else "")
            )
    print(
        "chosen: "
        + ", ".join(f"{'RAG_MIN_SCORE' if lg == 'en' else 'RAG_MIN_SCORE_ZH'}={t:.2f}" for lg, t in chosen.items())
    )


if __name__ == "__main__":
    main()
