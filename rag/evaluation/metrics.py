"""Retrieval evaluation on BEIR-layout folders: dataset loading and nDCG / Recall / MRR at k.

Queries without any relevance judgement (unanswerable ones) are left out of the retrieval metrics, as in BEIR.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rag.core.errors import DatasetError
from rag.core.types import Passage

if TYPE_CHECKING:
    from rag.core.types import Answer


@dataclass
class Dataset:
    path: Path
    corpus_file: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    answers: dict[str, list[str]] = field(default_factory=dict)

    @property
    def judged_queries(self) -> list[str]:
        return [q for q in self.queries if any(v > 0 for v in self.qrels.get(q, {}).values())]


def load_dataset(path: Path | str, split: str = "test") -> Dataset:
    """Read `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv` and, if present, `answers.jsonl`."""
    path = Path(path)
    corpus, queries_file, qrels_file = path / "corpus.jsonl", path / "queries.jsonl", path / "qrels" / f"{split}.tsv"
    for required in (corpus, queries_file, qrels_file):
        if not required.is_file():
            raise DatasetError(
                f"{required} not found - a BEIR folder needs corpus.jsonl, queries.jsonl and qrels/{split}.tsv"
            )
    queries: dict[str, str] = {}
    for number, line in enumerate(queries_file.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                record = json.loads(line)
                queries[str(record["_id"])] = record["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DatasetError(f'{queries_file} line {number}: expected {{"_id", "text"}} ({exc})') from exc
    qrels: dict[str, dict[str, int]] = {}
    with qrels_file.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or (number == 1 and not row[-1].strip().lstrip("-").isdigit()):
                continue  # header line
            try:
                qid, did, score = row[0], row[1], int(row[2])
            except (IndexError, ValueError) as exc:
                raise DatasetError(f"{qrels_file} line {number}: expected query-id, corpus-id, score") from exc
            qrels.setdefault(qid, {})[did] = score
    answers: dict[str, list[str]] = {}
    answers_file = path / "answers.jsonl"
    if answers_file.is_file():
        for line in answers_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                answers[str(record["_id"])] = list(record.get("answers") or [])
    return Dataset(path, corpus, queries, qrels, answers)


def ranked_records(passages: Sequence[Passage]) -> list[str]:
    """Record ids in order of their best passage (a document split into chunks counts once)."""
    seen: dict[str, None] = {}
    for p in passages:
        seen.setdefault(p.record_id, None)
    return list(seen)


def ndcg_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    wanted = {d for d, g in relevant.items() if g > 0}
    return len(wanted.intersection(ranking[:k])) / len(wanted) if wanted else 0.0


def mrr_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    for i, doc in enumerate(ranking[:k]):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def score_rankings(
    rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], k: int = 10
) -> dict[str, float]:
    """Mean nDCG@k, Recall@k and MRR@k over the judged queries present in `rankings`."""
    judged = [q for q in rankings if any(v > 0 for v in qrels.get(q, {}).values())]
    if not judged:
        raise DatasetError("no query has a relevance judgement - check qrels/test.tsv")
    n = len(judged)
    return {
        f"ndcg@{k}": sum(ndcg_at_k(rankings[q], qrels[q], k) for q in judged) / n,
        f"recall@{k}": sum(recall_at_k(rankings[q], qrels[q], k) for q in judged) / n,
        f"mrr@{k}": sum(mrr_at_k(rankings[q], qrels[q], k) for q in judged) / n,
        "queries": n,
    }


def _normalise(text: str) -> str:
    return " ".join(text.casefold().split())


def answer_contains(reply: str, gold: Sequence[str]) -> bool:
    """RGB's accuracy rule: the reply contains one of the gold answers (case and spacing ignored)."""
    reply = _normalise(reply)
    return any(_normalise(g) in reply for g in gold if g.strip())


def score_answers(answers: Mapping[str, Answer], dataset: Dataset) -> dict[str, float | int | None]:
    """Answer accuracy and answered rate on answerable questions, decline accuracy on unanswerable ones,
    and citation precision (cited passages judged relevant in qrels, over all citations on judged queries)."""
    answerable = [q for q in answers if dataset.answers.get(q)]
    unanswerable = [q for q in answers if q in dataset.answers and not dataset.answers[q]]
    correct = sum(
        1 for q in answerable if answers[q].answered and answer_contains(answers[q].answer, dataset.answers[q])
    )
    answered = sum(1 for q in answerable if answers[q].answered)
    declined = sum(1 for q in unanswerable if not answers[q].answered)
    cited = relevant = 0
    for q, a in answers.items():
        judged = {d for d, g in dataset.qrels.get(q, {}).items() if g > 0}
        if not judged:
            continue
        for c in a.citations:
            cited += 1
            passage = next((p for p in a.passages if p.chunk.id == c.chunk_id), None)
            relevant += bool(passage and passage.record_id in judged)
    return {
        "answer_accuracy": round(correct / len(answerable), 4) if answerable else None,
        "answered_rate": round(answered / len(answerable), 4) if answerable else None,
        "decline_accuracy": round(declined / len(unanswerable), 4) if unanswerable else None,
        "citation_precision": round(relevant / cited, 4) if cited else None,
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
    }
