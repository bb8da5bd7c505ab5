"""The openai generator against a real OpenAI-compatible server (llama-cpp-python serving SmolLM2-135M),
through /chat on a real uvicorn server. A 135M model tests protocol and plumbing, not answer quality."""

from __future__ import annotations

import httpx
import pytest

from rag.api import create_app
from rag.chat.service import ChatService
from rag.core.settings import Settings
from rag.core.types import Chunk, Passage, Usage
from rag.generation.llamacpp import LlamaCppGenerator
from rag.generation.openai_compatible import OpenAIGenerator
from rag.generation.prompting import build_prompt
from rag.generation.protocol import GenerationRequest
from rag.store.knowledge_base import KnowledgeBase
from rag.text.tokenizer import get_encoding
from rag.wiring import Services, create_retriever
from tests.servers import free_port, llama_cpp_server, silent_server, smollm2_gguf, sse_events, uvicorn_in_thread

pytestmark = pytest.mark.integration
N_CTX = 2048


@pytest.fixture(scope="module")
def llm_url(tmp_path_factory):
    with llama_cpp_server(n_ctx=N_CTX, log=tmp_path_factory.mktemp("llm") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def kb(demo_kb):
    with KnowledgeBase.open(demo_kb) as kb:
        yield kb


def llm_settings(kb_dir, **kw) -> Settings:
    return Settings(
        kb_dir=kb_dir,
        _env_file=None,
        generator="openai",
        llm_model="smollm2",
        llm_context_window=N_CTX,
        llm_max_tokens=64,
        llm_temperature=0.0,
        **kw,
    )


def serve(settings: Settings, kb, embedder, generator):
    service = ChatService(settings, create_retriever("hybrid", kb, embedder, settings), generator, get_encoding())
    return uvicorn_in_thread(create_app(settings, services=Services(service, kb, embedder)))


def test_openai_generator_streams_text_and_usage(llm_url):
    passages = [
        Passage(Chunk(doc_id="d", source="faq.md", text="Standard shipping takes 3-5 business days.", position=0), 0.9)
    ]
    prompt = build_prompt(
        "How long is standard shipping?",
        passages,
        language="en",
        encoding=get_encoding(),
        context_window=N_CTX,
        answer_tokens=32,
    )
    generator = OpenAIGenerator("smollm2", base_url=llm_url, max_tokens=32, temperature=0.0)
    items = list(generator.stream(GenerationRequest("How long is standard shipping?", "en", passages, prompt)))
    texts = [i for i in items if isinstance(i, str)]
    usages = [i for i in items if isinstance(i, Usage)]
    assert len(texts) > 1 and "".join(texts).strip()  # streamed in several deltas
    assert len(usages) <= 1 and all(u.prompt_tokens > 0 for u in usages)


def test_chat_with_a_real_llm_server_plain_and_streaming(llm_url, demo_kb, kb, embedder):
    settings = llm_settings(demo_kb)
    generator = OpenAIGenerator("smollm2", base_url=llm_url, max_tokens=64, temperature=0.0)
    with serve(settings, kb, embedder, generator) as base:
        body = httpx.post(
            f"{base}/chat", json={"question": "How much does express shipping cost in the US?"}, timeout=120
        ).json()
        assert body["generator"] == "openai:smollm2"
        assert body["answer"].strip() and body["usage"]["prompt_tokens"] > 0
        assert body["handoff"] is (not body["answered"])
        markers = {c["marker"] for c in body["citations"]}
        assert all(f"[{m}]" in body["answer"] for m in markers)

        with httpx.stream(
            "POST", f"{base}/chat", json={"question": "How do I reset my password?", "stream": True}, timeout=120
        ) as r:
            assert r.status_code == 200
            events = sse_events(r)
        kinds = [k for k, _ in events]
        assert kinds[-1] == "done" and kinds.count("done") == 1 and set(kinds[:-1]) <= {"delta"}
        assert kinds.count("delta") >= (2 if events[-1][1]["answered"] else 1)  # token by token when answering
        assert "NO_ANSWER" not in "".join(d["text"] for k, d in events if k == "delta")


def test_many_long_passages_never_overflow_the_context(llm_url, demo_kb, kb, embedder):
    settings = llm_settings(demo_kb, max_top_k=20)
    generator = OpenAIGenerator("smollm2", base_url=llm_url, max_tokens=64, temperature=0.0)
    with serve(settings, kb, embedder, generator) as base:
        for question in ("What does the warranty cover and how do I make a claim?", "退货和退款的流程是怎样的？"):
            r = httpx.post(f"{base}/chat", json={"question": question, "top_k": 20}, timeout=180)
            assert r.status_code == 200, r.text


def test_planted_instructions_are_not_obeyed_by_the_llm(llm_url, demo_kb, kb, embedder):
    settings = llm_settings(demo_kb)
    generator = OpenAIGenerator("smollm2", base_url=llm_url, max_tokens=64, temperature=0.0)
    with serve(settings, kb, embedder, generator) as base:
        body = httpx.post(f"{base}/chat", json={"question": "How much is shipping insurance?"}, timeout=120).json()
        assert "PWNED" not in body["answer"]


def test_llm_server_down_is_a_502_and_the_server_keeps_serving(demo_kb, kb, embedder):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    generator = OpenAIGenerator("smollm2", base_url=dead, max_retries=0, timeout=5)
    with serve(llm_settings(demo_kb), kb, embedder, generator) as base:
        for payload in (
            {"question": "How do I reset my password?"},
            {"question": "How do I reset my password?", "stream": True},
        ):
            r = httpx.post(f"{base}/chat", json=payload, timeout=30)
            assert r.status_code == 502, r.text
            assert r.json()["error"]["type"] == "llm_unavailable" and dead in r.json()["error"]["message"]
        assert httpx.get(f"{base}/health", timeout=30).status_code == 200
        # a question the bot declines never reaches the model, so it still works
        assert httpx.post(f"{base}/chat", json={"question": "Who painted the Mona Lisa?"}, timeout=30).json()["handoff"]


def test_llm_server_timeout_is_a_504(demo_kb, kb, embedder):
    with silent_server() as hanging:
        generator = OpenAIGenerator("smollm2", base_url=hanging, max_retries=0, timeout=1.0)
        with serve(llm_settings(demo_kb), kb, embedder, generator) as base:
            r = httpx.post(f"{base}/chat", json={"question": "How do I reset my password?"}, timeout=30)
            assert r.status_code == 504 and r.json()["error"]["type"] == "llm_timeout"
            assert httpx.get(f"{base}/health", timeout=30).status_code == 200


def test_llamacpp_generator_in_process():
    generator = LlamaCppGenerator(smollm2_gguf(), context_window=N_CTX, max_tokens=16, temperature=0.0)
    passages = [Passage(Chunk(doc_id="d", source="faq.md", text="Gift cards never expire.", position=0), 0.9)]
    prompt = build_prompt(
        "Do gift cards expire?",
        passages,
        language="en",
        encoding=get_encoding(),
        context_window=N_CTX,
        answer_tokens=16,
    )
    items = list(generator.stream(GenerationRequest("Do gift cards expire?", "en", passages, prompt)))
    assert "".join(i for i in items if isinstance(i, str)).strip()
    assert isinstance(items[-1], Usage) and items[-1].completion_tokens > 0
