"""Fit the decline model (rag.chat.decline: logistic weights per language, and the thresholds
`RAG_MIN_SCORE`, `RAG_MIN_SCORE_ZH`) on the shared datasets and the customer-question set.

    python benchmarks/calibrate_decline.py [--datasets DIR] [--questions FILE] [--kb-cache DIR]

Labelled questions, each retrieved as the chat retrieves it:
- a dataset's own answerable questions asked of its knowledge base: should answer;
- ClapNQ's unanswerable questions (on-topic, not answered by its corpus): should decline;
- every dataset's questions asked of the other datasets' knowledge bases and of the demo documents
  (`data/`): off-topic, should decline (up to 150 per pair);
- the customer-question set (benchmarks/data/customer-questions/dev.jsonl) asked of `data/` without its
  conversation context: its answerable items should answer, its `decline` items should decline.
Weights are fitted per language (L2-regularised logistic regression, each group and label weighing the same,
the customer questions CUSTOMER_WEIGHT times more: they are what the product is for). Leave-one-group-out:
each group of questions is scored by a model fitted without it, so the table shows how the model does on a
collection it never saw. The threshold is the highest confidence that still answers 95% of the answerable
customer questions (of the shared datasets' groups, averaged, when the customer set is held out).

A last table shows the most this model can reach on ClapNQ's unanswerable questions while the customer's
answerable ones are still answered: fitted and scored on the same data (a ceiling, not a result), with ClapNQ's
unanswerable questions weighing more and more.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.pipeline import ingest  # noqa: E402
from rag.chat.decline import Evidence, evidence  # noqa: E402
from rag.core.settings import Settings  # noqa: E402
from rag.evaluation.metrics import load_dataset  # noqa: E402
from rag.evaluation.questions import load_questions  # noqa: E402
from rag.store.embedders import SentenceTransformerEmbedder  # noqa: E402
from rag.store.knowledge_base import KnowledgeBase  # noqa: E402
from rag.text.language import detect_language  # noqa: E402
from rag.wiring import create_retriever  # noqa: E402

NAMES = ["stackfaq", "rgb-en", "rgb-zh", "clapnq"]
PER_PAIR = 150
ANSWER_RATE = 0.95
CUSTOMER = "data"
CUSTOMER_WEIGHT = 4.0
L2 = 0.05

Row = tuple[str, str, int, list[float]]  # group, language, label (1 answer, 0 decline), features


def collect(args: argparse.Namespace) -> list[Row]:
    settings = Settings(_env_file=None)
    embedder = SentenceTransformerEmbedder(settings.embedding_model)
    datasets = {n: load_dataset(args.datasets / n) for n in NAMES if (args.datasets / n / "corpus.jsonl").is_file()}
    customer = [q for q in load_questions(args.questions) if not q.context] if args.questions.is_file() else []
    sources: dict[str, list[Path]] = {n: [d.corpus_file] for n, d in datasets.items()}
    sources["data"] = [ROOT / "data"]
    rng = np.random.default_rng(0)
    own: dict[str, list[tuple[str, int]]] = {}
    for name, d in datasets.items():
        unanswerable = {q for q, gold in d.answers.items() if not gold}
        own[name] = [(d.queries[q], 1) for q in d.judged_queries] + [(d.queries[q], 0) for q in sorted(unanswerable)]
    own["data"] = [(q.question, 0 if q.decline else 1) for q in customer]
    rows: list[Row] = []
    cache = args.kb_cache or Path(tempfile.mkdtemp(prefix="rag-calibrate-"))
    for kb_name, paths in sources.items():
        kb_dir = cache / kb_name
        if not KnowledgeBase.exists(kb_dir):
            ingest(paths, kb_dir, embedder, settings)
        with KnowledgeBase.open(kb_dir) as kb:
            retriever = create_retriever(settings.retriever, kb, embedder, settings)
            for q_name, items in own.items():
                if q_name == kb_name:
                    chosen = items
                    group = kb_name
                else:
                    picked = rng.permutation(len(items))[:PER_PAIR]
                    chosen = [(items[i][0], 0) for i in sorted(picked)]
                    group = f"{q_name}->{kb_name}"
                texts = [t for t, _ in chosen]
                found = retriever.retrieve_many(texts, settings.top_k)
                for (text, label), passages in zip(chosen, found, strict=True):
                    lang = detect_language(text)
                    e = evidence(text, passages, lang in settings.dense_languages)
                    rows.append((group, lang, label, list(e.vector())))
            print(f"  {kb_name}: features collected", file=sys.stderr, flush=True)
    return rows


def fit(x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> np.ndarray:
    """Weights (bias first) of an L2-regularised logistic regression, by Newton's method."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    reg = L2 * np.eye(xb.shape[1])
    reg[0, 0] = 0
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -50, 50)))
        grad = xb.T @ (sample_weight * (p - y)) + reg @ w
        hess = (xb * (sample_weight * p * (1 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess + 1e-9 * np.eye(len(w)), grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(w[0] + x @ w[1:], -50, 50)))


def balanced_weights(groups: Sequence[str], y: np.ndarray, extra: Mapping[str, float] | None = None) -> np.ndarray:
    """Each (group, label) pair weighs the same in total, so big collections do not dominate (`extra`: more
    weight for some pairs, keyed "group|label" with label 1.0 or 0.0)."""
    keys = [f"{g}|{label}" for g, label in zip(groups, y, strict=True)]
    counts = {k: keys.count(k) for k in set(keys)}
    extra = extra or {}
    boost = [(CUSTOMER_WEIGHT if g == CUSTOMER else 1.0) * extra.get(k, 1.0) for g, k in zip(groups, keys, strict=True)]
    return np.array([b / counts[k] for b, k in zip(boost, keys, strict=True)]) * len(set(keys))


def threshold(w: np.ndarray, x: np.ndarray, y: np.ndarray, groups: Sequence[str]) -> float:
    """The highest threshold answering ANSWER_RATE of every group's answerable questions, averaged over groups."""
    cuts = []
    for g in [CUSTOMER] if CUSTOMER in groups else sorted(set(groups)):
        mask = (np.array(groups) == g) & (y == 1)
        if mask.sum():
            cuts.append(float(np.quantile(predict(w, x[mask]), 1 - ANSWER_RATE)))
    return float(np.mean(cuts)) if cuts else 0.5


def report(rows: list[Row]) -> None:
    print(
        f"{'lang':<5} {'held-out group':<22} {'answerable':>10} {'answered':>9} {'should decline':>15} {'declined':>9}"
    )
    final: dict[str, tuple[np.ndarray, float]] = {}
    for lang in ("en", "zh"):
        mine = [r for r in rows if r[1] == lang]
        if not mine:
            continue
        groups = [r[0] for r in mine]
        y = np.array([r[2] for r in mine], dtype=float)
        x = np.array([r[3] for r in mine])
        for g in sorted(set(groups)):
            train = np.array(groups) != g
            tg = [groups[i] for i in np.flatnonzero(train)]
            w = fit(x[train], y[train], balanced_weights(tg, y[train]))
            t = threshold(w, x[train], y[train], tg)
            p = predict(w, x[~train]) >= t
            yt = y[~train]
            pos, neg = int((yt == 1).sum()), int((yt == 0).sum())
            answered = f"{p[yt == 1].mean():.3f}" if pos else "-"
            declined = f"{(~p[yt == 0]).mean():.3f}" if neg else "-"
            print(f"{lang:<5} {g:<22} {pos:>10} {answered:>9} {neg:>15} {declined:>9}")
        w = fit(x, y, balanced_weights(groups, y))
        final[lang] = (w, threshold(w, x, y, groups))
    print("\nfitted on all groups (paste into rag/chat/decline.py WEIGHTS and the settings):")
    for lang, (w, t) in final.items():
        names = ", ".join(["bias", *Evidence.names()])
        print(f'    "{lang}": ({", ".join(f"{v:.3f}" for v in w)}),  # {names}')
        print(f"    {'RAG_MIN_SCORE' if lang == 'en' else 'RAG_MIN_SCORE_ZH'}={t:.3f}")


def clapnq_ceiling(rows: list[Row]) -> None:
    """The best this model can do on ClapNQ's declines and the customer questions together, measured in-sample
    (fitted on every group, ClapNQ's unanswerable questions weighing more and more; the threshold answers
    ANSWER_RATE of the customer's answerable questions): no held-out data can do better than this."""
    mine = [r for r in rows if r[1] == "en"]
    groups = np.array([r[0] for r in mine])
    y = np.array([r[2] for r in mine], dtype=float)
    x = np.array([r[3] for r in mine])
    if not ((groups == "clapnq") & (y == 0)).any() or not ((groups == CUSTOMER) & (y == 1)).any():
        return
    print(f"\nin-sample ceiling (en), threshold answering {ANSWER_RATE:.0%} of the customer's answerable questions:")
    columns = ("ClapNQ unanswerable weight", "ClapNQ answered", "ClapNQ declined", "customer should-decline declined")
    print(" ".join(f"{c:>{len(c) + 1}}" for c in columns))
    for extra in (1, 2, 4, 8, 16, 32):
        w = fit(x, y, balanced_weights(list(groups), y, {"clapnq|0.0": float(extra)}))
        t = threshold(w, x, y, list(groups))
        answers = predict(w, x) >= t
        clap_yes, clap_no = (groups == "clapnq") & (y == 1), (groups == "clapnq") & (y == 0)
        customer_no = (groups == CUSTOMER) & (y == 0)
        customer = (~answers[customer_no]).mean() if customer_no.any() else float("nan")
        print(f"{extra:>27} {answers[clap_yes].mean():>16.3f} {(~answers[clap_no]).mean():>16.3f} {customer:>18.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument(
        "--questions", type=Path, default=ROOT / "benchmarks" / "data" / "customer-questions" / "dev.jsonl"
    )
    parser.add_argument("--kb-cache", type=Path, help="keep the knowledge bases here and reuse them next time")
    parser.add_argument("--features", type=Path, help="reuse (or write) the collected features in this JSON file")
    args = parser.parse_args()
    if args.features and args.features.is_file():
        rows = [tuple(r) for r in json.loads(args.features.read_text())]
    else:
        rows = collect(args)
        if args.features:
            args.features.write_text(json.dumps(rows))
    report(rows)  # type: ignore[arg-type]
    clapnq_ceiling(rows)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
