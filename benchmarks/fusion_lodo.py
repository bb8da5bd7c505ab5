"""Leave-one-dataset-out choice of the adaptive fusion's two numbers (prior, shrink), and the BM25 check.

    python benchmarks/fusion_lodo.py [--cache DIR] [--extra benchmarks/data/healthfaq]

For every dataset: ingest once (cached under --cache), embed its questions once, then
  - bm25s (the issue's baseline: Snowball, English stop words, document = title + text; jieba words for Chinese),
    our BM25, dense (exact), and the hybrid nDCG@10 at every dense weight of the grid - with a vectorised replica
    of HybridRetriever (same candidates, min-max, language cap, near-duplicate skipping);
  - the knowledge base's own calibration measurement (rag.store.calibration, exactly as ingest runs it).
Then for each shared dataset held out: the (prior, shrink) that is best on the other three - among those whose
hybrid is at least max(bm25, dense) on each of them, the highest mean hybrid nDCG@10 - applied to the held-out one.
`--extra` datasets are never used for choosing; they are reported with the all-four choice.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.pipeline import ingest  # noqa: E402
from rag.core.settings import Settings  # noqa: E402
from rag.evaluation.metrics import load_dataset, ndcg_at_k  # noqa: E402
from rag.store.calibration import (  # noqa: E402
    WEIGHT_GRID,
    choose_weight,
    pseudo_questions,
    sample_ids,
    score_pseudo_questions,
)
from rag.store.chunk_store import lexical_text  # noqa: E402
from rag.store.embedders import SentenceTransformerEmbedder  # noqa: E402
from rag.store.knowledge_base import KnowledgeBase  # noqa: E402
from rag.store.lexical_index import BM25Index  # noqa: E402
from rag.text.language import cjk_share  # noqa: E402
from rag.text.lexical import bm25_tokens, terms  # noqa: E402
from rag.text.similarity import jaccard  # noqa: E402

SHARED = ("stackfaq", "rgb-en", "rgb-zh", "clapnq")
# hybrid nDCG@10 before this change (fixed weights 0.75 / 0.2, old BM25), printed for comparison only
BEFORE = {"stackfaq": 0.970, "rgb-en": 0.553, "rgb-zh": 0.616, "clapnq": 1.000}
PRIORS = tuple(round(p, 2) for p in np.arange(0.5, 0.951, 0.05))
SHRINKS = (0.0, 0.25, 0.5, 0.75, 1.0)
K = 10


class Cached:
    """One dataset's knowledge base, question vectors and scores, built once."""

    def __init__(self, folder: Path, cache: Path, embedder, settings: Settings):
        self.name = folder.name
        self.dataset = load_dataset(folder)
        self.dir = cache / self.name
        if not (self.dir / "queries.npy").exists():
            ingest([self.dataset.corpus_file], self.dir / "kb", embedder, settings)
            qids = self.dataset.judged_queries
            np.save(self.dir / "queries.npy", embedder.embed([self.dataset.queries[q] for q in qids]))
            (self.dir / "qids.json").write_text(json.dumps(qids))
        self.kb = KnowledgeBase.open(self.dir / "kb")
        self.qids = json.loads((self.dir / "qids.json").read_text())
        self.questions = [self.dataset.queries[q] for q in self.qids]
        self.chunks = sorted(self.kb.all_chunks(), key=lambda c: c.id)
        self.ids = np.array([c.id for c in self.chunks])
        self.records = [c.doc_id[len(c.source) + 1 :] for c in self.chunks]
        self.dense = np.load(self.dir / "queries.npy") @ self.kb.vectors([int(i) for i in self.ids]).T
        index = BM25Index.build(self.ids, [bm25_tokens(lexical_text(c)) for c in self.chunks])
        self.lexical = np.vstack([index.query_scores(bm25_tokens(q)) for q in self.questions])
        self.shares = [cjk_share(q) for q in self.questions]
        self._terms: dict[int, set[str]] = {}

    def ndcg(self, rankings: list[list[str]]) -> float:
        return float(
            np.mean([ndcg_at_k(r, self.dataset.qrels[q], K) for q, r in zip(self.qids, rankings, strict=True)])
        )

    def records_of(self, rows) -> list[str]:
        seen: dict[str, None] = {}
        for r in rows:
            seen.setdefault(self.records[r], None)
            if len(seen) == K:
                break
        return list(seen)

    def bm25(self) -> float:
        return self.ndcg(
            [self.records_of(np.flatnonzero(s > 0)[np.argsort(-s[s > 0], kind="stable")]) for s in self.lexical]
        )

    def dense_only(self) -> float:
        return self.ndcg([self.records_of(np.argsort(-s, kind="stable")) for s in self.dense])

    def hybrid(self, weight: float, foreign: float = 0.2, pool: int = 100, fetch: int = 50) -> float:
        """HybridRetriever's ranking, replicated with numpy over precomputed scores."""
        rankings = []
        for qi in range(len(self.qids)):
            d, b = self.dense[qi], self.lexical[qi]
            positive = np.flatnonzero(b > 0)
            cand = np.union1d(
                np.argsort(-d, kind="stable")[:pool], positive[np.argsort(-b[positive], kind="stable")[:pool]]
            )
            w = weight * (1 - self.shares[qi]) + min(weight, foreign) * self.shares[qi]
            fused = w * _min_max(d[cand]) + (1 - w) * _min_max(b[cand])
            rankings.append(self.records_of(self._distinct(cand[np.argsort(-fused, kind="stable")], fetch)))
        return self.ndcg(rankings)

    def _distinct(self, rows: np.ndarray, k: int, similarity: float = 0.9) -> list[int]:
        kept: list[int] = []
        for r in rows[: 3 * k]:
            words = self._terms.setdefault(int(r), terms(self.chunks[r].text))
            if any(jaccard(words, self._terms[o]) >= similarity for o in kept):
                continue
            kept.append(int(r))
            if len(kept) == k:
                break
        return kept

    def bm25s(self) -> float:
        import bm25s
        import Stemmer

        docs = {}
        for line in self.dataset.corpus_file.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            docs[str(record["_id"])] = f"{record.get('title') or ''} {record['text']}"
        keys = list(docs)
        retriever = bm25s.BM25()
        if self.name.endswith("-zh"):
            import jieba

            words = [[w for w in jieba.lcut(t.lower()) if w.strip()] for t in list(docs.values()) + self.questions]
            retriever.index(words[: len(keys)], show_progress=False)
            found, _ = retriever.retrieve(words[len(keys) :], k=K, show_progress=False)
        else:
            stemmer = Stemmer.Stemmer("english")
            retriever.index(
                bm25s.tokenize(list(docs.values()), stopwords="en", stemmer=stemmer, show_progress=False),
                show_progress=False,
            )
            queries = bm25s.tokenize(self.questions, stopwords="en", stemmer=stemmer, show_progress=False)
            found, _ = retriever.retrieve(queries, k=K, show_progress=False)
        return self.ndcg([[keys[i] for i in row] for row in found])

    def calibration_scores(self, embedder, questions: int) -> tuple[np.ndarray, np.ndarray]:
        """The matrices ingest's calibration measures (rag.store.calibration), embeddings cached."""
        sample = sample_ids([int(i) for i in self.ids], 2 * questions)
        chunks = self.kb.chunks(sample)
        pairs = pseudo_questions([chunks[i] for i in sample if i in chunks], questions)
        # only the embeddings are cached: the BM25 scores are always computed by the current code
        key = hashlib.sha1(json.dumps([(p.question, p.answer) for p in pairs]).encode()).hexdigest()[:12]
        file = self.dir / f"calibration-{key}.npz"
        if not file.exists():
            np.savez(file, dense=score_pseudo_questions(pairs, embedder)[0])
        with np.load(file) as z:
            dense = z["dense"]
        return dense, score_pseudo_questions(pairs, _NoEmbedder(dense))[1]


class _NoEmbedder:
    """Stands in for the model when only the BM25 half of score_pseudo_questions is wanted."""

    def __init__(self, dense: np.ndarray):
        self.n = len(dense)

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.zeros((len(texts), 1), np.float32)


def _min_max(x: np.ndarray) -> np.ndarray:
    span = float(x.max() - x.min()) if len(x) else 0.0
    return (x - x.min()) / span if span > 1e-9 else np.zeros_like(x)


def measure(data: Cached, embedder, questions: int) -> dict:
    cache = data.dir / "figures.json"
    figures = json.loads(cache.read_text()) if cache.exists() else {}
    if not figures:
        figures = {
            "bm25s": data.bm25s(),
            "bm25": data.bm25(),
            "dense": data.dense_only(),
            "hybrid": {str(w): data.hybrid(w) for w in WEIGHT_GRID},
        }
        cache.write_text(json.dumps(figures, indent=1))
    dense, lexical = data.calibration_scores(embedder, questions)
    figures["chosen"] = {f"{p},{s}": choose_weight(dense, lexical, p, s)[0] for p in PRIORS for s in SHRINKS}
    figures["measured"] = choose_weight(dense, lexical, 0.75, 1.0)[1]
    return figures


def margin(f: dict, params: str) -> tuple[float, float]:
    """(hybrid - max(bm25, dense), hybrid) at the weight these parameters choose for this dataset."""
    hybrid = f["hybrid"][str(f["chosen"][params])]
    return hybrid - max(f["bm25"], f["dense"]), hybrid


def best_params(figures: dict[str, dict], train: list[str]) -> str:
    """Among the parameters whose fusion is at least as good as its better part on every training dataset
    (if none is, the least bad), the one with the highest mean hybrid nDCG@10."""

    def score(params: str) -> tuple[bool, float, float]:
        margins = [margin(figures[t], params) for t in train]
        worst = min(m for m, _ in margins)
        return worst >= 0, float(np.mean([h for _, h in margins])), worst

    return max((f"{p},{s}" for p, s in itertools.product(PRIORS, SHRINKS)), key=score)


def report(name: str, f: dict, params: str, label: str) -> None:
    m, h = margin(f, params)
    before = f" (before: {BEFORE[name]:.3f})" if name in BEFORE else ""
    print(
        f"  {label}{name:<10} prior,shrink {params:<9} weight {f['chosen'][params]:.2f}  hybrid {h:.4f}{before}  "
        f"vs max(bm25, dense) {m:+.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/rag-fusion-lodo"))
    parser.add_argument("--extra", type=Path, nargs="*", default=[ROOT / "benchmarks" / "data" / "healthfaq"])
    parser.add_argument("--questions", type=int, default=Settings(_env_file=None).fusion_calibration_questions)
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    settings = Settings(_env_file=None, hybrid_adaptive=False)
    figures = {}
    for folder in [args.datasets / n for n in SHARED] + list(args.extra):
        figures[folder.name] = measure(Cached(folder, args.cache, embedder, settings), embedder, args.questions)
        f = figures[folder.name]
        print(
            f"{folder.name:<10} bm25s {f['bm25s']:.4f}  bm25 {f['bm25']:.4f}  dense {f['dense']:.4f}  "
            f"hybrid@0.75 {f['hybrid']['0.75']:.4f}  measured weight {f['measured']:.2f}",
            flush=True,
        )
    print("\nleave-one-dataset-out (prior, shrink chosen on the other three):")
    for held in SHARED:
        report(held, figures[held], best_params(figures, [s for s in SHARED if s != held]), "held out ")
    params = best_params(figures, list(SHARED))
    print(f"\nchosen on all four: prior,shrink {params}")
    for name, f in figures.items():
        report(name, f, params, "")


if __name__ == "__main__":
    main()
