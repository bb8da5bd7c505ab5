"""The customer-question sets asked of the demo documents (`data/`), with a retrieval-only baseline measured in
the same run.

    python benchmarks/customer_questions.py [--sets dev heldout] [--show]

Each set (benchmarks/data/customer-questions/*.jsonl, format in rag/evaluation/questions.py) is asked over the
chat service exactly as `POST /chat` answers (default settings and generator, one conversation per item, its
context questions first). The baseline answers every question with the whole top passage of the same retrieval:
a bot without an answering step or a decline, as a plain retrieval script behaves. `dev` is the set the decline
model is calibrated on (benchmarks/calibrate_decline.py); `heldout` is never used for tuning.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.pipeline import ingest  # noqa: E402
from rag.conversations.sql_store import SQLAlchemyConversationStore  # noqa: E402
from rag.core.settings import Settings  # noqa: E402
from rag.core.types import Answer  # noqa: E402
from rag.evaluation.questions import Outcome, judge, load_questions, run_questions, summarise  # noqa: E402
from rag.wiring import build_services, create_embedder  # noqa: E402

SETS = ROOT / "benchmarks" / "data" / "customer-questions"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["dev", "heldout"])
    parser.add_argument("--show", action="store_true", help="print every wrong answer of the product")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rag-customer-") as tmp:
        settings = Settings(_env_file=None, kb_dir=Path(tmp) / "kb")
        ingest([ROOT / "data"], settings.kb_dir, create_embedder(settings), settings)
        services = build_services(settings, with_store=False)
        print(f"{'set':<8} {'bot':<16} {'lang':<5} {'questions':>9} {'right':>6} {'wrongly declined':>17} "
              f"{'wrongly answered':>17} {'should-decline answered':>24} {'right %':>8}")  # fmt: skip
        for name in args.sets:
            items = load_questions(SETS / f"{name}.jsonl")
            services.chat.store = SQLAlchemyConversationStore(f"sqlite:///{Path(tmp) / f'{name}.sqlite'}")
            product = run_questions(
                items, lambda q, cid: services.chat.answer(q, conversation_id=cid), lambda i, name=name: f"{name}-{i}"
            )
            baseline = [judge(o.item, top_passage(services, o.item.question)) for o in product]
            for bot, outcomes in (("baseline", baseline), ("product", product)):
                for lang, r in sorted(summarise(outcomes).items(), key=lambda kv: (kv[0] == "all", kv[0])):
                    print(
                        f"{name:<8} {bot:<16} {lang:<5} {r['questions']:>9} {r['right']:>6} "
                        f"{r['wrongly_declined']:>17} {r['wrongly_answered']:>17} "
                        f"{r['should_decline_answered']:>24} {100 * float(r['right_share']):>7.1f}%"
                    )
            if args.show:
                show(product)
        services.close()


def top_passage(services: object, question: str) -> Answer:
    passages = services.chat.retriever.retrieve(question, services.chat.settings.top_k)  # type: ignore[attr-defined]
    text = passages[0].chunk.text if passages else ""
    return Answer(question, text, bool(passages), not passages, [], passages, "top-passage", "")


def show(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        if o.verdict != "right":
            print(f"  {o.item.id} [{o.item.category}] {o.verdict}: {o.item.question} -> missing {o.missing}")
            print(f"      {o.answer.answer[:300]}")


if __name__ == "__main__":
    main()
