"""The LLM path of the chat service against a real OpenAI-compatible server (llama-cpp-python serving
SmolLM2-135M) over a small real knowledge base: query rewriting, the decline before any model call, checked
citations. A 135M model on a few CPU cores tests plumbing, not quality, so the model is called only a few
times, with short answers."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import pytest

from ingest.pipeline import ingest
from rag.chat.service import ChatService
from rag.core.errors import GeneratorUnavailable
from rag.core.settings import Settings
from rag.core.types import Filters, Passage, Usage
from rag.generation.extractive import ExtractiveGenerator
from rag.generation.grounding import grounded_citations
from rag.generation.openai_compatible import OpenAIGenerator
from rag.generation.protocol import GenerationRequest
from rag.store.knowledge_base import KnowledgeBase
from rag.text.tokenizer import get_encoding
from rag.wiring import create_retriever
from tests.servers import free_port, llama_cpp_server

pytestmark = pytest.mark.integration
N_CTX = 2048
MAX_TOKENS = 48

DOCS = {
    "shipping.md": (
        "# Shipping\n\n## Standard shipping\n\nStandard shipping takes 3 to 5 business days. "
        "It is free on orders over $50.\n\n## Express shipping\n\n"
        "Express shipping arrives in 1 to 2 business days and costs $12.95."
    ),
    "returns.md": "# Returns\n\nYou can return unused items within 30 days of delivery for a full refund.",
    "gift-cards.md": "# Gift cards\n\nGift cards never expire and can be combined with coupons.",
    "退货.md": "# 退货政策\n\n签收后30天内可以申请退货，退款在5到7个工作日内到账。",
}
EARLIER = [("How long does standard shipping take?", "Standard shipping takes 3 to 5 business days [1].")]


class RecordingGenerator(OpenAIGenerator):
    """The openai generator, keeping what each call got and returned: requests, raw answers, rewrites."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests: list[GenerationRequest] = []
        self.answers: list[str] = []
        self.rewrites: list[str] = []

    def stream(self, request: GenerationRequest) -> Iterator[str | Usage]:
        self.requests.append(request)
        parts: list[str] = []
        for item in super().stream(request):
            if isinstance(item, str):
                parts.append(item)
            yield item
        self.answers.append("".join(parts))

    def rewrite(self, question: str, turns: Sequence[tuple[str, str]]) -> str:
        self.rewrites.append(super().rewrite(question, turns))
        return self.rewrites[-1]


class RecordingRetriever:
    """A real retriever that keeps the queries it was asked."""

    def __init__(self, inner):
        self.inner = inner
        self.queries: list[str] = []

    def retrieve(self, question: str, k: int = 5, filters: Filters | None = None) -> list[Passage]:
        self.queries.append(question)
        return self.inner.retrieve(question, k, filters)

    def retrieve_many(self, questions: Sequence[str], k: int = 5, filters: Filters | None = None):
        self.queries.extend(questions)
        return self.inner.retrieve_many(questions, k, filters)


@pytest.fixture(scope="module")
def llm_url(tmp_path_factory):
    with llama_cpp_server(n_ctx=N_CTX, log=tmp_path_factory.mktemp("llm") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("docs")
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    settings = Settings(kb_dir=tmp_path_factory.mktemp("kb") / "kb", _env_file=None)
    report = ingest([folder], settings.kb_dir, embedder, settings)
    assert not report.failed, report.failed
    with KnowledgeBase.open(settings.kb_dir) as opened:
        yield opened


def llm_settings() -> Settings:
    return Settings(
        _env_file=None,
        generator="openai",
        llm_model="smollm2",
        llm_context_window=N_CTX,
        llm_max_tokens=MAX_TOKENS,
        llm_temperature=0.0,
        top_k=3,  # a short prompt: SmolLM2 reads ~130 tokens a second on two cores
    )


def bot(kb, embedder, generator, rewriter=None) -> tuple[ChatService, RecordingRetriever]:
    settings = llm_settings()
    retriever = RecordingRetriever(create_retriever("hybrid", kb, embedder, settings))
    return ChatService(settings, retriever, generator, get_encoding(), rewriter=rewriter), retriever


def generator(url: str, **kwargs) -> RecordingGenerator:
    return RecordingGenerator("smollm2", base_url=url, max_tokens=MAX_TOKENS, temperature=0.0, **kwargs)


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


# ---- query rewriting ----------------------------------------------------------------------------------------
def test_a_follow_up_is_rewritten_by_the_server_and_retrieved_with(llm_url, kb, embedder):
    llm = generator(llm_url)
    service, retriever = bot(kb, embedder, llm)
    answer = service.answer("And express?", history=EARLIER)
    # one rewrite reached the server and came back as one non-empty line ...
    assert len(llm.rewrites) == 1
    rewritten = llm.rewrites[0]
    assert rewritten.strip() and "\n" not in rewritten
    # ... which the service retrieved with, and reports with the answer
    assert retriever.queries[0] == rewritten
    assert answer.rewritten_query == rewritten


def test_rewriting_against_a_closed_port_is_the_projects_error():
    dead = closed_port_url()
    llm = OpenAIGenerator("smollm2", base_url=dead, max_retries=0, timeout=5)
    with pytest.raises(GeneratorUnavailable, match="query rewriting failed") as raised:
        llm.rewrite("What about express?", EARLIER)
    assert dead in str(raised.value)


def test_the_service_falls_back_to_the_heuristic_when_rewriting_fails(kb, embedder):
    dead = generator(closed_port_url(), max_retries=0, timeout=5)
    with_dead_rewriter, retriever = bot(kb, embedder, ExtractiveGenerator(), rewriter=dead)
    heuristic_only, _ = bot(kb, embedder, ExtractiveGenerator())
    answer = with_dead_rewriter.answer("What about express?", history=EARLIER)
    assert dead.rewrites == []  # the call raised
    expected = heuristic_only.answer("What about express?", history=EARLIER).rewritten_query
    assert expected and answer.rewritten_query == expected == retriever.queries[0]


# ---- answers --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("question", ["Who won the world cup in 1998?", "今天北京的天气怎么样？"])
def test_an_off_topic_question_is_declined_before_any_model_call(kb, embedder, question):
    # the server is not even needed: a call would fail
    llm = generator(closed_port_url(), max_retries=0, timeout=5)
    declined = bot(kb, embedder, llm)[0].answer(question)
    extractive = bot(kb, embedder, ExtractiveGenerator())[0].answer(question)
    assert llm.answers == [] and llm.rewrites == []
    assert (declined.answered, declined.handoff, declined.citations) == (False, True, [])
    assert (declined.answer, declined.decline_reason) == (extractive.answer, extractive.decline_reason)


def test_an_answer_cites_passages_that_exist_numbered_from_one(llm_url, kb, embedder):
    llm = generator(llm_url)
    service, _ = bot(kb, embedder, llm)
    answer = service.answer("How much does express shipping cost?")
    assert len(llm.answers) == 1 and llm.answers[0].strip()  # the request reached the server, the reply was read
    assert answer.generator == "openai:smollm2" and answer.usage.prompt_tokens > 0
    # [n] in the reply means the n-th passage of the prompt, and the answer carries exactly those passages
    prompt = llm.requests[0].prompt
    assert prompt is not None and [p.chunk.id for p in prompt.passages] == [p.chunk.id for p in answer.passages]
    assert all(f'<passage id="{n}"' in prompt.messages[-1]["content"] for n in range(1, len(answer.passages) + 1))
    numbers = [int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)]
    assert all(1 <= n <= len(answer.passages) for n in numbers + [c.marker for c in answer.citations])
    # checked and renumbered: [1] [2] ... in order of first use, each pointing at a passage the model saw
    # (SmolLM2-135M seldom writes markers; tests/rag/test_grounding.py checks the rules themselves)
    text, citations = grounded_citations(llm.answers[0], answer.passages)
    used = list(dict.fromkeys(int(n) for n in re.findall(r"\[(\d+)\]", text)))
    assert used == [c.marker for c in citations] == list(range(1, len(citations) + 1))
    assert {c.chunk_id for c in citations} <= {p.chunk.id for p in answer.passages}
