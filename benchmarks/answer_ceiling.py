"""How far retrieval lets an answer go: per shared dataset with gold answers, the share of answerable questions
whose gold answer appears in a retrieved passage within the top k, and the share with a judged-relevant passage
there, for k = 1, 3, 5, 10, 20.

    python benchmarks/answer_ceiling.py [--datasets DIR] [--names rgb-en rgb-zh] [--kb-cache DIR]

Retrieval is the chat's own (default settings: hybrid BM25 + dense, the configured embedding model). An
extractive answer quotes the top passages (`ExtractiveGenerator.max_passages`, 5), so its answer accuracy can
not pass the "gold answer in top 5" column, and a cited passage is judged relevant only as often as the
generator tells RGB's distracting passages (same names, another year or figure) from the relevant ones; the
"relevant at 1" column is what citing the first passage alone would give. The same retrieval at rank 1 is also
what an LLM generator would start from. (ClapNQ's gold answers are long passages, not short strings: its
answers are judged on declines instead, see benchmarks/calibrate_decline.py.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.pipeline import ingest  # noqa: E402
from rag.core.settings import Settings  # noqa: E402
from rag.evaluation.metrics import answer_contains, load_dataset  # noqa: E402
from rag.store.knowledge_base import KnowledgeBase  # noqa: E402
from rag.wiring import create_embedder, create_retriever  # noqa: E402

DEPTHS = (1, 3, 5, 10, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--names", nargs="+", default=["rgb-en", "rgb-zh"])
    parser.add_argument("--kb-cache", type=Path, help="keep the knowledge bases here and reuse them next time")
    args = parser.parse_args()
    settings = Settings(_env_file=None)
    embedder = create_embedder(settings)
    cache = args.kb_cache or Path(tempfile.mkdtemp(prefix="rag-ceiling-"))
    header = " ".join(f"{'top ' + str(k):>7}" for k in DEPTHS)
    print(f"{'dataset':<9} {'answerable':>10}  gold answer in {header}   judged relevant in {header}")
    for name in args.names:
        dataset = load_dataset(args.datasets / name)
        kb_dir = cache / name
        if not KnowledgeBase.exists(kb_dir):
            ingest([dataset.corpus_file], kb_dir, embedder, settings)
        asked = [q for q, gold in dataset.answers.items() if gold and q in dataset.queries]
        with KnowledgeBase.open(kb_dir) as kb:
            retriever = create_retriever(settings.retriever, kb, embedder, settings)
            found = retriever.retrieve_many([dataset.queries[q] for q in asked], max(DEPTHS))
        has_answer = dict.fromkeys(DEPTHS, 0)
        has_relevant = dict.fromkeys(DEPTHS, 0)
        for q, passages in zip(asked, found, strict=True):
            judged = {d for d, grade in dataset.qrels.get(q, {}).items() if grade > 0}
            for k in DEPTHS:
                has_answer[k] += any(answer_contains(p.chunk.text, dataset.answers[q]) for p in passages[:k])
                has_relevant[k] += any(p.record_id in judged for p in passages[:k])
        n = len(asked) or 1
        answer_cols = " ".join(f"{has_answer[k] / n:>7.2f}" for k in DEPTHS)
        relevant_cols = " ".join(f"{has_relevant[k] / n:>7.2f}" for k in DEPTHS)
        print(f"{name:<9} {len(asked):>10}  {'':<14} {answer_cols}   {'':<18} {relevant_cols}")


if __name__ == "__main__":
    main()
