"""/chat latency, and the time the product adds around an LLM call; baselines measured in the same run.

    python benchmarks/chat.py [--requests 200] [--llm-requests 20]

1. Extractive mode on the demo knowledge base, `rag serve` as users run it: client-side latency of POST /chat
   (p50/p95) next to GET /health (the HTTP floor) and in-process retrieval (embedding + FAISS + SQLite), and each
   question's first ask, when the extractive generator embeds its passages' sentences (cached for later asks).
2. LLM mode: llama-cpp-python's OpenAI-compatible server with SmolLM2-135M. For each question the prompt the
   product builds is sent straight to the server (time to first token), and the same question goes through
   streaming /chat (time to the first `delta` event). A request with another system prompt runs before each
   measured call so neither side benefits from the server's prompt-prefix cache.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.pipeline import ingest  # noqa: E402
from rag.core.settings import Settings  # noqa: E402
from rag.generation.prompting import build_prompt  # noqa: E402
from rag.store.embedders import SentenceTransformerEmbedder  # noqa: E402
from rag.store.knowledge_base import KnowledgeBase  # noqa: E402
from rag.text.language import detect_language  # noqa: E402
from rag.text.tokenizer import get_encoding  # noqa: E402
from rag.wiring import create_retriever  # noqa: E402
from tests.servers import free_port, llama_cpp_server, process  # noqa: E402

RAG = str(Path(sys.executable).with_name("rag"))


def questions() -> list[str]:
    demo = json.loads((ROOT / "tests" / "fixtures" / "demo_questions.json").read_text(encoding="utf-8"))
    extra = [
        "How long does standard shipping take?",
        "How much is express shipping?",
        "Do gift cards expire?",
        "How do I reset my password?",
        "What is the return window?",
        "Who won the 1998 world cup?",
    ]
    return [q["question"] for q in demo] + extra


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


def row(name: str, ms: list[float]) -> str:
    return f"{name:<44} {len(ms):>5} {pct(ms, 50):>8.1f} {pct(ms, 95):>8.1f}"


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--llm-requests", type=int, default=30)
    parser.add_argument("--llm-top-k", type=int, default=3, help="passages per LLM prompt (short prompts: less noise)")
    args = parser.parse_args()
    qs = questions()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}

    with tempfile.TemporaryDirectory(prefix="rag-bench-chat-") as tmp:
        kb_dir = Path(tmp) / "kb"
        settings = Settings(kb_dir=kb_dir, _env_file=None)
        embedder = SentenceTransformerEmbedder(settings.embedding_model)
        ingest([ROOT / "data"], kb_dir, embedder, settings)

        # --- 1. extractive ------------------------------------------------------------------------------
        kb = KnowledgeBase.open(kb_dir)
        retriever = create_retriever(settings.retriever, kb, embedder, settings)  # the one the server uses
        for q in qs:
            retriever.retrieve(q, 5)
        retrieval = [timed(lambda q=q: retriever.retrieve(q, 5)) for q in (qs * 10)[: args.requests]]

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with process(
            [RAG, "serve", "--kb", str(kb_dir), "--port", str(port), "--generator", "extractive"],
            f"{base}/health",
            env=env,
            timeout=120,
            log=Path(tmp) / "serve.log",
        ):
            with httpx.Client(timeout=60) as client:
                client.post(f"{base}/chat", json={"question": "hello"})  # the server's first request loads lazily
                # each question's first ask: its passages' sentences are embedded then (and cached for later asks)
                first_ask = [timed(lambda q=q: client.post(f"{base}/chat", json={"question": q})) for q in qs]
                health = [timed(lambda: client.get(f"{base}/health")) for _ in range(args.requests)]
                chat, server_side, answered = [], [], 0
                for q in (qs * 10)[: args.requests]:
                    started = time.perf_counter()
                    body = client.post(f"{base}/chat", json={"question": q}).json()
                    chat.append((time.perf_counter() - started) * 1000)
                    server_side.append(body["latency_ms"])
                    answered += body["answered"]

        print("extractive mode, demo knowledge base (ms)")
        print(f"{'measurement':<44} {'n':>5} {'p50':>8} {'p95':>8}")
        print(row("GET /health round trip (HTTP floor)", health))
        print(row(f"in-process {settings.retriever} retrieval", retrieval))
        print(row("POST /chat, server-reported latency_ms", server_side))
        print(row("POST /chat, client round trip", chat))
        print(row("POST /chat, first ask of each question", first_ask))
        verdict = "meets" if pct(chat, 50) <= 30 else "MISSES"
        print(f"/chat p50 {pct(chat, 50):.1f} ms {verdict} the target <= 30 ms ({answered}/{len(chat)} answered)\n")

        # --- 2. overhead around an LLM call ---------------------------------------------------------------
        n_ctx = 2048
        with llama_cpp_server(n_ctx=n_ctx, log=Path(tmp) / "llm.log") as llm_url:
            llm_settings = dict(
                RAG_GENERATOR="openai",
                RAG_LLM_BASE_URL=llm_url,
                RAG_LLM_MODEL="smollm2",
                RAG_LLM_CONTEXT_WINDOW=str(n_ctx),
                RAG_LLM_MAX_TOKENS="32",
                RAG_LLM_TEMPERATURE="0",
                RAG_TOP_K=str(args.llm_top_k),
            )
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            bench_settings = Settings(
                kb_dir=kb_dir, _env_file=None, llm_context_window=n_ctx, llm_max_tokens=32, top_k=args.llm_top_k
            )
            with (
                process(
                    [RAG, "serve", "--kb", str(kb_dir), "--port", str(port)],
                    f"{base}/health",
                    env={**env, **llm_settings},
                    timeout=120,
                    log=Path(tmp) / "serve-llm.log",
                ),
                httpx.Client(timeout=120) as client,
            ):
                encoding = get_encoding()
                answerable = [q for q in qs if "world cup" not in q]

                def bust() -> None:
                    client.post(
                        f"{llm_url}/chat/completions",
                        json={
                            "model": "smollm2",
                            "max_tokens": 1,
                            "messages": [
                                {"role": "system", "content": "Cache buster."},
                                {"role": "user", "content": "hi"},
                            ],
                        },
                    )

                def direct_ttft(messages) -> float:
                    started = time.perf_counter()
                    with client.stream(
                        "POST",
                        f"{llm_url}/chat/completions",
                        json={
                            "model": "smollm2",
                            "messages": messages,
                            "stream": True,
                            "max_tokens": 32,
                            "temperature": 0,
                        },
                    ) as r:
                        for line in r.iter_lines():
                            if line.startswith("data: ") and line != "data: [DONE]":
                                delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
                                if delta:
                                    return (time.perf_counter() - started) * 1000
                    raise RuntimeError("the LLM server sent no content")

                def chat_ttft(question: str) -> float | None:
                    """Time to the first delta, or None when no model was called (declined, curated FAQ)."""
                    started = time.perf_counter()
                    first = None
                    with client.stream("POST", f"{base}/chat", json={"question": question, "stream": True}) as r:
                        name = None
                        for line in r.iter_lines():
                            if line.startswith("event: "):
                                name = line[7:]
                            elif line.startswith("data: ") and name == "delta" and first is None:
                                first = (time.perf_counter() - started) * 1000
                            elif line.startswith("data: ") and name == "done":
                                done = json.loads(line[6:])
                                if done["generator"] == "faq" or done["decline_reason"] == "low_retrieval_score":
                                    return None
                    return first

                direct, through, pairs = [], [], []
                for q in (answerable * 5)[: args.llm_requests + 2]:
                    passages = retriever.retrieve(q, bench_settings.top_k)
                    prompt = build_prompt(
                        q,
                        passages,
                        language=detect_language(q),
                        encoding=encoding,
                        context_window=n_ctx,
                        answer_tokens=32,
                        margin=bench_settings.llm_context_margin,
                    )
                    bust()
                    d = direct_ttft(prompt.messages)
                    bust()
                    c = chat_ttft(q)
                    if c is None:
                        continue  # declined before the model: no LLM call to compare
                    direct.append(d)
                    through.append(c)
                    pairs.append(c - d)
                direct, through, pairs = direct[2:], through[2:], pairs[2:]  # first two warm the server
        kb.close()

    print("time to first token around an LLM call: SmolLM2-135M on llama-cpp-python's server (ms)")
    print(f"{'measurement':<44} {'n':>5} {'p50':>8} {'p95':>8}")
    print(row("direct to the LLM server (same prompt)", direct))
    print(row("through streaming POST /chat", through))
    print(row("added by the product (paired difference)", pairs))
    overhead = pct(pairs, 50)
    verdict = "meets" if overhead <= 30 else "MISSES"
    print(f"added overhead p50 {overhead:.1f} ms {verdict} the target <= 30 ms")


if __name__ == "__main__":
    main()
