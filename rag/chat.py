"""The chat path: question -> retrieval -> decline or generate -> citations -> `Answer`.

Shared by the HTTP API, `rag ask` and `rag eval`, so all three behave the same. `stream()` yields
`("delta", text)` events while the answer is written and ends with `("answer", Answer)`.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Iterator, Literal

import tiktoken

from rag.citations import parse_citations
from rag.generators import GenerationRequest, Generator
from rag.language import detect_language
from rag.decline import support_score
from rag.errors import ContextOverflow
from rag.prompting import DECLINE_MARKER, Prompt, build_prompt
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.types import Answer, Filters, Passage, Usage

_OVERFLOW_RETRIES = 2

ChatEvent = tuple[Literal["delta"], str] | tuple[Literal["answer"], Answer]


class ChatService:
    def __init__(self, settings: Settings, retriever: Retriever, generator: Generator, encoding: tiktoken.Encoding):
        self.settings = settings
        self.retriever = retriever
        self.generator = generator
        self.encoding = encoding

    def answer(self, question: str, *, conversation_id: str | None = None, top_k: int | None = None,
               filters: Filters | None = None) -> Answer:
        """The whole answer at once (the streaming path, consumed)."""
        for kind, payload in self.stream(question, conversation_id=conversation_id, top_k=top_k, filters=filters):
            if kind == "answer":
                return payload  # type: ignore[return-value]
        raise AssertionError("stream() always ends with an answer event")

    def stream(self, question: str, *, conversation_id: str | None = None, top_k: int | None = None,
               filters: Filters | None = None) -> Iterator[ChatEvent]:
        started = time.perf_counter()
        question = question.strip()
        language = detect_language(question)
        passages = self.retriever.retrieve(question, top_k or self.settings.top_k, filters)
        ids = dict(conversation_id=conversation_id or uuid.uuid4().hex, message_id=uuid.uuid4().hex)

        threshold = self.settings.min_score_zh if language == "zh" else self.settings.min_score
        if not passages or support_score(question, passages) < threshold:
            reason = "no_passages" if not passages else "low_retrieval_score"
            yield from self._decline(question, language, passages, reason, Usage(), started, ids)
            return

        items, passages, prompt = self._start_generation(question, language, passages)

        text_parts: list[str] = []
        usage: Usage | None = None
        held: str | None = ""  # the start of the reply is held back until it cannot be the decline marker
        for item in items:
            if isinstance(item, Usage):
                usage = item
                continue
            text_parts.append(item)
            if held is not None:
                held += item
                probe = held.lstrip()
                if len(probe) < len(DECLINE_MARKER) and DECLINE_MARKER.startswith(probe):
                    continue
                if probe.startswith(DECLINE_MARKER):
                    continue  # keep holding; this reply is a decline
                item, held = held, None  # type: ignore[assignment]
            yield ("delta", item)

        raw = "".join(text_parts)
        declined = not raw.strip() or raw.strip().startswith(DECLINE_MARKER)
        if held and not declined:
            yield ("delta", held)  # a reply shorter than the marker was still held back
        if usage is None:
            usage = Usage(prompt.prompt_tokens if prompt else 0,
                          len(self.encoding.encode(raw, disallowed_special=())) if prompt else 0,
                          estimated=prompt is not None)
        if declined:
            yield from self._decline(question, language, passages, "model_declined", usage, started, ids)
            return
        text, citations = parse_citations(raw.replace(DECLINE_MARKER, "").strip(), passages)
        answer = Answer(
            question=question, answer=text, answered=True, handoff=False, citations=citations, passages=passages,
            generator=self.generator.name, language=language, usage=usage,
            latency_ms=(time.perf_counter() - started) * 1000, **ids,
        )
        yield ("answer", answer)

    def _start_generation(self, question: str, language: str, passages: list[Passage]
                          ) -> tuple[Iterator[str | Usage], list[Passage], Prompt | None]:
        """Start the generator; a model whose tokenizer counts more tokens than tiktoken may reject the
        prompt as too long, so retry with a smaller passage budget (before anything was streamed)."""
        margin = self.settings.llm_context_margin
        for attempt in range(_OVERFLOW_RETRIES + 1):
            prompt = None
            if self.generator.needs_prompt:
                prompt = build_prompt(
                    question, passages, language=language, encoding=self.encoding,
                    context_window=self.settings.llm_context_window, answer_tokens=self.settings.llm_max_tokens,
                    margin=margin,
                )
            used = prompt.passages if prompt else passages
            items = self.generator.stream(GenerationRequest(question, language, used, prompt))
            try:
                first = next(items, None)
            except ContextOverflow:
                if attempt == _OVERFLOW_RETRIES or prompt is None:
                    raise
                margin *= 0.6
                continue
            return (itertools.chain([] if first is None else [first], items), used, prompt)
        raise AssertionError("unreachable")

    def _decline(self, question: str, language: str, passages: list[Passage], reason: str, usage: Usage,
                 started: float, ids: dict[str, str]) -> Iterator[ChatEvent]:
        message = self.settings.fallback_message_zh if language == "zh" else self.settings.fallback_message
        yield ("delta", message)
        yield ("answer", Answer(
            question=question, answer=message, answered=False, handoff=True, citations=[], passages=passages,
            generator=self.generator.name, language=language, usage=usage,
            latency_ms=(time.perf_counter() - started) * 1000, decline_reason=reason, **ids,
        ))


def build_chat_service(settings: Settings) -> ChatService:
    """Everything the chat path needs, from settings: knowledge base, embedder, retriever, generator."""
    from rag.embedders import SentenceTransformerEmbedder
    from rag.generators import create_generator
    from rag.knowledge_base import KnowledgeBase
    from rag.retrieval import create_retriever
    from rag.tokenizer import get_encoding

    kb = KnowledgeBase.open(settings.kb_dir, embedding_model=settings.embedding_model,
                            ef_search=settings.hnsw_ef_search, nprobe=settings.ivf_nprobe)
    embedder = SentenceTransformerEmbedder(settings.embedding_model, device=settings.embedding_device,
                                           batch_size=settings.embedding_batch_size, offline=settings.hf_offline)
    return ChatService(settings, create_retriever(settings.retriever, kb, embedder, settings), create_generator(settings),
                       get_encoding(settings.tokenizer_encoding))
