"""`rag`: the command line. A thin edge: parse arguments, call the library, print, map errors to exit codes.

rag ingest PATH... [--kb DIR]          build or update a knowledge base (exit 1 when some files failed)
rag ingest PATH... --kb-root R --kb-id ID   ... one of several knowledge bases in a root folder
rag ingest PATH... --ray auto|ADDRESS  ... loading, chunking and embedding on a Ray cluster (the `ray` extra)
rag ask "QUESTION" [--kb DIR] [--json] a grounded, cited answer (or a handoff), as /chat gives it
rag serve [--kb DIR | --kb-root R]     the HTTP API (POST /chat, /api/kbs..., GET /health, docs at /docs)
rag kb create|list|delete|key ...      knowledge bases in a root folder (RAG_KB_ROOT), as /api/kbs manages them
rag eval DATASET_DIR [--k 10]          retrieval (and, with answers.jsonl, answer) quality on a BEIR folder
rag eval QUESTIONS.jsonl [--docs DIR]  customer questions: right / wrongly declined / wrongly answered per language
rag report [--since DATE] [--html F]   how the bot performs: rates, feedback, latency, unanswered questions
rag info [--kb DIR]                    what a knowledge base holds

With RAG_STORE_URL (PostgreSQL + pgvector) a knowledge base is named by its id (`--kb support`: the folder's name)
and kept in that database, shared by every `rag serve` on it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from rag.core.errors import RagError
from rag.core.settings import Settings
from rag.core.types import Filters
from rag.store.knowledge_base import Where

EXIT_ERROR = 2
EXIT_PARTIAL = 1  # `rag ingest`: some files failed (each reported), the rest were ingested


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
        return int(args.func(args, settings) or 0)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ValueError as exc:  # invalid settings or arguments reaching the library
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Grounded answers from your own documents.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--kb", type=Path, help="knowledge base directory (default ./kb, or RAG_KB_DIR)")
        root(p)
        p.add_argument("--kb-id", help="with --kb-root: which knowledge base (default RAG_DEFAULT_KB, or the only one)")

    def root(p: argparse.ArgumentParser) -> None:
        p.add_argument("--kb-root", type=Path, help="folder of several knowledge bases (or RAG_KB_ROOT)")
        p.add_argument(
            "--model", help="embedding model name or path (default all-MiniLM-L6-v2, or RAG_EMBEDDING_MODEL)"
        )

    p = sub.add_parser("ingest", help="add or update documents in the knowledge base")
    p.add_argument("paths", nargs="+", type=Path, help="files or folders")
    common(p)
    p.add_argument("--index", choices=["flat", "hnsw", "ivf", "ivfpq"], help="vector index type (default flat = exact)")
    p.add_argument("--chunk-tokens", type=int, help="maximum tokens per chunk (default 300)")
    p.add_argument("--chunk-overlap", type=int, help="overlap tokens between chunks (default 30)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--ray",
        metavar="auto|local|ADDRESS",
        help="load, chunk and embed on a Ray cluster (needs the `ray` extra): auto = the cluster RAY_ADDRESS or "
        "`ray start` set up, else one started on this machine for this ingest and stopped after; local = always "
        "start one here; or a cluster's address (every node must see PATHS at the same path)",
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="answer a question from the knowledge base")
    p.add_argument("question")
    common(p)
    p.add_argument("-k", "--top-k", type=int, help="number of passages to retrieve (default 5)")
    p.add_argument("--source", help="only passages whose source path starts with this")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE", help="metadata filter, repeatable")
    p.add_argument("--generator", choices=["extractive", "openai", "llamacpp"], help="override RAG_GENERATOR")
    p.add_argument("--conversation", help="continue this conversation id (follow-up questions get its context)")
    p.add_argument("--passages", action="store_true", help="also print the retrieved passages")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("serve", help="serve the chat API over HTTP")
    common(p)
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--generator", choices=["extractive", "openai", "llamacpp"], help="override RAG_GENERATOR")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "eval",
        help="evaluate retrieval on a BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv), "
        "or answers on a customer-question file (JSON Lines, format in rag/evaluation/questions.py)",
    )
    p.add_argument("dataset", type=Path, help="a BEIR folder, or a customer-question .jsonl file")
    p.add_argument("--kb", type=Path, help="question file: the knowledge base to ask (default ./kb, or RAG_KB_DIR)")
    p.add_argument(
        "--docs",
        type=Path,
        nargs="+",
        help="question file: ingest these files or folders into a temporary knowledge base",
    )
    p.add_argument("--show", action="store_true", help="question file: print every wrong answer")
    p.add_argument(
        "--retriever",
        choices=["dense", "bm25", "hybrid", "all"],
        default="hybrid",
        help="which retriever to score; `all` scores the three side by side (default hybrid)",
    )
    p.add_argument("--k", type=int, default=10, help="cut-off for the metrics (default 10)")
    p.add_argument("--model", help="embedding model name or path")
    p.add_argument(
        "--generator", choices=["extractive", "openai", "llamacpp"], help="override RAG_GENERATOR for answer evaluation"
    )
    p.add_argument("--no-answers", action="store_true", help="skip answer evaluation even if answers.jsonl exists")
    p.add_argument("--json", dest="json_file", type=Path, help="also write the metrics to this JSON file")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("report", help="answered/handoff rates, feedback, latency and top unanswered questions")
    p.add_argument("--since", help="only conversations from this ISO date or datetime on, e.g. 2026-11-01")
    p.add_argument("--html", type=Path, help="also write a self-contained HTML report with charts")
    p.add_argument("--top", type=int, default=10, help="unanswered question groups to list (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON")
    common(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("kb", help="create, list and delete knowledge bases in a root folder (RAG_KB_ROOT)")
    kb_sub = p.add_subparsers(dest="kb_command", required=True)
    q = kb_sub.add_parser("create", help="a new, empty knowledge base")
    q.add_argument("id", help="lowercase letters, digits, - and _ (it appears in URLs)")
    q.add_argument("--name", help="display name (default: the id)")
    q.add_argument("--language", choices=["auto", "en", "zh"], default="auto", help="default reply language")
    q.add_argument(
        "--set", action="append", default=[], metavar="SETTING=VALUE", help="a per-KB setting, e.g. min_score=0.3"
    )
    root(q)
    q = kb_sub.add_parser("list", help="the knowledge bases, with documents and chunks")
    root(q)
    q = kb_sub.add_parser("delete", help="delete a knowledge base and its files, jobs, keys and conversations")
    q.add_argument("id")
    q.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    root(q)
    q = kb_sub.add_parser("key", help="create an API key for one knowledge base (printed once)")
    q.add_argument("id")
    q.add_argument("--scope", action="append", choices=["chat", "ingest", "conversations", "manage"], required=True)
    q.add_argument("--name", default="", help="a label, e.g. who holds the key")
    root(q)
    p.set_defaults(func=cmd_kb)

    p = sub.add_parser("info", help="show what a knowledge base holds")
    common(p)
    p.set_defaults(func=cmd_info)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for arg, key in (
        ("kb", "kb_dir"),
        ("kb_root", "kb_root"),
        ("model", "embedding_model"),
        ("index", "index_type"),
        ("chunk_tokens", "chunk_tokens"),
        ("chunk_overlap", "chunk_overlap"),
        ("top_k", "top_k"),
        ("generator", "generator"),
        ("host", "host"),
        ("port", "port"),
    ):
        value = getattr(args, arg, None)
        if value is not None:
            overrides[key] = value
    base = Settings()
    return Settings(**{**base.model_dump(), **overrides}) if overrides else base


@contextlib.contextmanager
def _chosen_kb(args: argparse.Namespace, settings: Settings) -> Iterator[tuple[str, Where, Settings]]:
    """(id, where its contents are, settings) of the knowledge base a command works on: `--kb DIR`, or `--kb-id`
    in `--kb-root` (with that knowledge base's own settings); open while the block runs."""
    from rag.wiring import create_catalog, create_kb_store

    if settings.kb_root is None:
        if getattr(args, "kb_id", None):
            raise ValueError("--kb-id needs --kb-root (or RAG_KB_ROOT): the folder holding the knowledge bases")
        kb_id, kb_store = settings.kb_dir.resolve().name, create_kb_store(settings)
        try:
            yield kb_id, (settings.kb_dir if kb_store is None else kb_store.backend(kb_id)), settings
        finally:
            if kb_store is not None:
                kb_store.close()
        return
    catalog = create_catalog(settings)
    try:
        chosen: str | None = args.kb_id or settings.default_kb
        if chosen is None:
            kbs = catalog.list_kbs()
            if len(kbs) != 1:
                names = ", ".join(k.id for k in kbs) or "none yet - create one with `rag kb create ID`"
                raise ValueError(f"name the knowledge base with --kb-id (in {settings.kb_root}: {names})")
            chosen = kbs[0].id
        info = catalog.get_kb(chosen)
        yield chosen, catalog.kb_location(chosen), settings.with_overrides(info.settings)
    finally:
        catalog.close()


def _existing_kb(args: argparse.Namespace, settings: Settings) -> str:
    """The id of the knowledge base a command reads, refused before anything is created when a `--kb` folder
    holds none (a mistyped path must not leave a new folder behind)."""
    from rag.core.errors import KnowledgeBaseNotFound
    from rag.store.knowledge_base import KnowledgeBase

    with _chosen_kb(args, settings) as (kb_id, where, _):
        if settings.kb_root is None and not KnowledgeBase.exists(where):
            raise KnowledgeBaseNotFound(settings.kb_dir)
    return kb_id


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.pipeline import ingest
    from rag.wiring import create_embedder

    with _chosen_kb(args, settings) as (_, where, settings):
        report = ingest(
            args.paths, where, create_embedder(settings), settings, progress=not args.no_progress, ray_address=args.ray
        )
        shown = where.location if not isinstance(where, (str, Path)) else where
    for failure in report.failed:
        print(f"failed: {failure.path}: {failure.reason}", file=sys.stderr)
    print(report.summary())
    print(f"knowledge base: {shown} ({report.chunks_total} chunks)")
    # the good files are in; the exit code still tells scripts that some were not
    return EXIT_PARTIAL if report.failed else 0


def _parse_filters(args: argparse.Namespace) -> Filters:
    metadata: dict[str, Any] = {}
    for item in args.filter:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--filter expects KEY=VALUE, got {item!r}")
        metadata[key] = value
    return Filters(source_prefix=args.source, metadata=metadata)


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from rag.wiring import build_services

    question = args.question.strip()
    if not question:
        raise ValueError('the question is empty - ask something, e.g. rag ask "How long does shipping take?"')
    if len(question) > settings.max_question_chars:
        raise ValueError(
            f"the question is {len(question)} characters long, over RAG_MAX_QUESTION_CHARS "
            f"({settings.max_question_chars}) - shorten it"
        )

    filters = _parse_filters(args)
    kb_id = _existing_kb(args, settings)
    services = build_services(settings)
    try:
        answer = services.chat_for(kb_id).answer(
            args.question, top_k=settings.top_k, filters=filters, conversation_id=args.conversation, channel="cli"
        )
    finally:
        services.close()
    if args.json:
        print(json.dumps(answer.to_dict(passages=True), ensure_ascii=False, indent=2))
        return 0
    print(answer.answer)
    if answer.citations:
        print()
        for c in answer.citations:
            where = c.url or c.source
            where += (f" p.{c.page}" if c.page else "") + (f" row {c.row}" if c.row else "")
            label = " > ".join(x for x in (c.title, c.heading) if x)
            print(f"[{c.marker}] {where}" + (f" - {label}" if label else ""))
    if answer.handoff:
        print(f"\n(handoff to a person: {answer.decline_reason})")
    print(f"\n(conversation {answer.conversation_id}, message {answer.message_id})")
    if args.passages:
        print("\nretrieved passages:")
        for rank, p in enumerate(answer.passages, start=1):
            chunk = p.chunk
            print(
                f"  {rank}. {p.score:.3f} {chunk.source}"
                + (f" row {chunk.row}" if chunk.row else "")
                + (f" p.{chunk.page}" if chunk.page else "")
            )
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from rag.api.server import serve
    from rag.channels.registry import configured_channels

    if settings.kb_root is None:
        _existing_kb(args, settings)
    print(
        f"serving {settings.kb_root or settings.kb_dir} on http://{settings.host}:{settings.port} "
        f"(generator: {settings.resolved_generator()})",
        flush=True,
    )
    channels = configured_channels(settings)
    if channels:
        print(f"channels of the default knowledge base (from the environment): {', '.join(channels)}", flush=True)
    if settings.email_listen_port is not None:
        print(f"receiving support mail (SMTP) on {settings.email_listen_host}:{settings.email_listen_port}", flush=True)
    serve(settings)
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    if args.dataset.is_file():
        return _eval_questions(args, settings)
    from ingest.pipeline import ingest
    from rag.evaluation.metrics import load_dataset, ranked_records, score_answers, score_rankings
    from rag.store.embedders import CachedEmbedder
    from rag.store.knowledge_base import KnowledgeBase
    from rag.wiring import create_chat_service, create_embedder, create_retriever

    if args.k <= 0:
        raise ValueError(f"--k must be greater than 0, got {args.k}")
    kinds = ["bm25", "dense", "hybrid"] if args.retriever == "all" else [args.retriever]
    answer_kind = "hybrid" if args.retriever == "all" else args.retriever
    dataset = load_dataset(args.dataset)
    embedder = create_embedder(settings)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        started = time.perf_counter()
        report = ingest([dataset.corpus_file], Path(tmp) / "kb", embedder, settings)
        ingest_s = time.perf_counter() - started
        for failure in report.failed:
            print(f"failed: {failure.path}: {failure.reason}", file=sys.stderr)
        with KnowledgeBase.open(Path(tmp) / "kb") as kb:
            qids = dataset.judged_queries
            for kind in kinds:
                retriever = create_retriever(kind, kb, embedder, settings)
                started = time.perf_counter()
                # documents split into several chunks: fetch extra chunks so k distinct documents remain
                found = retriever.retrieve_many([dataset.queries[q] for q in qids], k=max(5 * args.k, 50))
                query_s = time.perf_counter() - started
                metrics = score_rankings(
                    {q: ranked_records(r) for q, r in zip(qids, found, strict=True)}, dataset.qrels, args.k
                )
                result: dict[str, Any] = {k: round(v, 4) for k, v in metrics.items()}
                result.update(ingest_seconds=round(ingest_s, 2), query_ms=round(1000 * query_s / max(1, len(qids)), 2))
                if kind == "hybrid":
                    result["fusion"] = _fusion_choice(kb, retriever)
                if kind == answer_kind and dataset.answers and not args.no_answers:
                    cached = CachedEmbedder(embedder, settings.embedding_cache_size)
                    service = create_chat_service(settings, retriever, embedder=cached)
                    answers = {q: service.answer(dataset.queries[q]) for q in dataset.answers if q in dataset.queries}
                    result["answers"] = {"generator": service.generator.name, **score_answers(answers, dataset)}
                results[kind] = result
    k = args.k
    print(
        f"{'dataset':<12} {'retriever':<10} {'ndcg@' + str(k):>9} {'recall@' + str(k):>10} {'mrr@' + str(k):>8} "
        f"{'queries':>8} {'ms/query':>9}"
    )
    for kind, r in results.items():
        print(
            f"{args.dataset.name:<12} {kind:<10} {r[f'ndcg@{k}']:>9.4f} {r[f'recall@{k}']:>10.4f} "
            f"{r[f'mrr@{k}']:>8.4f} {r['queries']:>8} {r['query_ms']:>9.2f}"
        )
    if "fusion" in results.get("hybrid", {}):
        print(f"hybrid fusion: {results['hybrid']['fusion']['described']}")
    for kind, r in results.items():
        if "answers" in r:
            a = r["answers"]
            shown = {
                key: ("-" if a[key] is None else f"{a[key]:.4f}")
                for key in ("answer_accuracy", "answered_rate", "decline_accuracy", "citation_precision")
            }
            print(
                f"answers ({kind}, {a['generator']}): accuracy {shown['answer_accuracy']} "
                f"on {a['answerable']} answerable, answered {shown['answered_rate']}, "
                f"decline accuracy {shown['decline_accuracy']} on {a['unanswerable']} unanswerable, "
                f"citation precision {shown['citation_precision']}"
            )
    if args.json_file:
        args.json_file.write_text(
            json.dumps({"dataset": str(args.dataset), **results}, indent=2) + "\n", encoding="utf-8"
        )
    return 0


def _eval_questions(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.pipeline import ingest
    from rag.conversations.sql_store import SQLAlchemyConversationStore
    from rag.evaluation.questions import format_summary, load_questions, run_questions, summarise
    from rag.wiring import build_services, create_embedder

    items = load_questions(args.dataset)
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        if args.docs:
            settings = settings.model_copy(update={"kb_dir": Path(tmp) / "kb"})
            report = ingest(args.docs, settings.kb_dir, create_embedder(settings), settings, progress=False)
            for failure in report.failed:
                print(f"failed: {failure.path}: {failure.reason}", file=sys.stderr)
        services = build_services(settings, with_store=False)
        # its own conversations, so follow-ups have context and the knowledge base's own history is untouched
        store = SQLAlchemyConversationStore(f"sqlite:///{Path(tmp) / 'eval-conversations.sqlite'}")
        chat = services.chat_for(None)
        chat.store = store
        try:
            outcomes = run_questions(
                items,
                lambda q, cid: chat.answer(q, conversation_id=cid),
                lambda item_id: f"eval-{item_id}",
            )
        finally:
            store.close()
            services.close()
    table = summarise(outcomes)
    print(f"{args.dataset.name}: {len(items)} questions (generator: {outcomes[0].answer.generator})")
    print(format_summary(table))
    if args.show:
        for o in outcomes:
            if o.verdict != "right":
                print(f"\n{o.item.id} [{o.item.category}] {o.verdict}: {o.item.question}")
                print(f"  missing: {', '.join(o.missing) or '-'}; reason: {o.answer.decline_reason or '-'}")
                print("  " + o.answer.answer.replace("\n", "\n  "))
    if args.json_file:
        rows = [
            {"id": o.item.id, "language": o.item.language, "category": o.item.category, "verdict": o.verdict,
             "missing": o.missing, "answer": o.answer.answer, "answered": o.answer.answered}
            for o in outcomes
        ]  # fmt: skip
        args.json_file.write_text(
            json.dumps({"summary": table, "questions": rows}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    return 0


def _fusion_choice(kb: Any, retriever: Any) -> dict[str, Any]:
    """What the adaptive fusion chose for this knowledge base (the hybrid retriever's dense weight and why)."""
    calibration = kb.fusion_calibration() if retriever.adaptive else None
    return {
        "dense_weight": retriever.knowledge_base_weight(),
        "calibration": None if calibration is None else json.loads(calibration.to_json()),
        "described": retriever.describe_weight(),
    }


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime

    from rag.conversations.analytics import compute_stats, format_percent, parse_since
    from rag.wiring import create_conversation_store, create_embedder

    since = parse_since(args.since) if args.since else None
    store = create_conversation_store(settings)
    try:
        stats = compute_stats(store, since, create_embedder(settings), args.top, settings.dense_languages)
        messages = store.messages(since=since) if args.html else []
    finally:
        store.close()
    if args.json:
        print(json.dumps(stats.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(f"period: {'since ' + stats.since if stats.since else 'all time'}")
        print(
            f"conversations {stats.conversations}, questions {stats.questions}, "
            f"answered {format_percent(stats.answered_rate)}, "
            f"handed off {format_percent(stats.handoff_rate)}"
        )
        print(
            f"feedback: {stats.feedback_up} up, {stats.feedback_down} down; latency p50 {stats.latency_p50_ms} ms, "
            f"p95 {stats.latency_p95_ms} ms"
        )
        if stats.top_unanswered:
            print("top unanswered questions (grouped by similarity):")
            for g in stats.top_unanswered:
                print(f"  {g.count:>4}  {g.question}")
    if args.html:
        from rag.conversations.report import render_html

        args.html.write_text(render_html(stats, messages, datetime.now(UTC)), encoding="utf-8")
        print(f"report written to {args.html}")
    return 0


def cmd_kb(args: argparse.Namespace, settings: Settings) -> int:
    from rag.wiring import create_catalog

    if settings.kb_root is None:
        raise ValueError(
            "`rag kb` manages the knowledge bases of a root folder - give --kb-root DIR or set RAG_KB_ROOT"
        )
    catalog = create_catalog(settings)
    try:
        if args.kb_command == "create":
            overrides = dict(_setting(item) for item in args.set)
            settings.with_overrides(overrides)
            info = catalog.create_kb(args.id, args.name or args.id, args.language, overrides)
            print(f"created knowledge base {info.id!r} in {catalog.kb_path(info.id)}")
            print(f"add documents: rag ingest FOLDER --kb-root {settings.kb_root} --kb-id {info.id}")
        elif args.kb_command == "list":
            for info in catalog.list_kbs():
                print(f"{info.id}\t{info.name}\t{info.language}\t{_kb_counts(catalog.kb_location(info.id))}")
        elif args.kb_command == "delete":
            catalog.get_kb(args.id)
            if not args.yes and _ask(f"Delete knowledge base {args.id!r} and all its data for good? [y/N] ") != "y":
                print("not deleted")
                return 1
            catalog.delete_kb(args.id)
            if settings.database_url is not None or (settings.kb_root / "conversations.sqlite").exists():
                from rag.wiring import create_conversation_store

                with create_conversation_store(settings) as store:
                    store.delete_kb(args.id)
            print(f"deleted knowledge base {args.id!r}")
        elif args.kb_command == "key":
            catalog.get_kb(args.id)
            record, secret = catalog.db.add_key(args.id, args.scope, args.name)
            print(secret)
            print(
                f"(key {record.id} for {args.id!r}, scopes {', '.join(record.scopes)}; shown only now)", file=sys.stderr
            )
    finally:
        catalog.close()
    return 0


def _ask(prompt: str) -> str:
    """The user's answer, or "" when nobody can answer (no terminal, end of input)."""
    try:
        return input(prompt).strip().lower()
    except EOFError:
        return ""


def _setting(item: str) -> tuple[str, Any]:
    """`name=value` of --set; the value read as JSON when it is JSON (numbers, true, lists), else as text."""
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise ValueError(f"--set expects SETTING=VALUE, got {item!r}")
    try:
        return name.strip(), json.loads(value)
    except json.JSONDecodeError:
        return name.strip(), value


def _kb_counts(where: Where) -> str:
    from rag.store.knowledge_base import KnowledgeBase

    if not KnowledgeBase.exists(where):
        return "empty"
    counts = KnowledgeBase.counts_at(where)
    return f"{counts['files']} files, {counts['chunks']} chunks"


def cmd_info(args: argparse.Namespace, settings: Settings) -> int:
    from rag.store.knowledge_base import KnowledgeBase

    with _chosen_kb(args, settings) as (_, where, _), KnowledgeBase.open(where) as kb:
        print(json.dumps(kb.stats(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
