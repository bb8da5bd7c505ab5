"""The one place where the parts are built from settings and closed again.

    services = build_services(settings)     knowledge base, embedder, retriever, generator, chat service,
    ...                                     conversation store and handoff webhook
    services.close()

The edges (`rag.api`, `rag.cli`) call these; nothing below them builds another layer's parts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rag.chat.handoff import WebhookNotifier
from rag.chat.service import ChatService
from rag.conversations.sql_store import SQLAlchemyConversationStore
from rag.conversations.store import ConversationStore
from rag.core.errors import ConfigurationError
from rag.core.settings import Settings
from rag.generation.protocol import Generator
from rag.retrieval import BM25Retriever, DenseRetriever, HybridRetriever, Retriever
from rag.store.embedders import Embedder, SentenceTransformerEmbedder
from rag.store.knowledge_base import KnowledgeBase
from rag.text.lexical import bm25_tokens
from rag.text.tokenizer import get_encoding


@dataclass
class Services:
    """What a running bot is made of. `close()` releases what `build_services` opened; services built by
    hand (tests) are closed by whoever built them, so `owned` lists only what this object must close."""

    chat: ChatService
    kb: KnowledgeBase | None = None
    embedder: Embedder | None = None
    owned: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def store(self) -> ConversationStore | None:
        return self.chat.store

    def close(self) -> None:
        for close in reversed(self.owned):
            close()
        self.owned.clear()


def create_embedder(settings: Settings) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(
        settings.embedding_model,
        device=settings.embedding_device,
        batch_size=settings.embedding_batch_size,
        offline=settings.hf_offline,
    )


def open_knowledge_base(settings: Settings, *, check_model: bool = True) -> KnowledgeBase:
    return KnowledgeBase.open(
        settings.kb_dir,
        embedding_model=settings.embedding_model if check_model else None,
        ef_search=settings.hnsw_ef_search,
        nprobe=settings.ivf_nprobe,
    )


def create_retriever(kind: str, kb: KnowledgeBase, embedder: Embedder | None, settings: Settings) -> Retriever:
    """The retriever named by `kind` (dense, bm25, hybrid), configured from settings."""
    if kind == "bm25":
        return BM25Retriever(kb)
    if embedder is None:
        raise ValueError(f"the {kind} retriever needs an embedder")
    if kind == "dense":
        return DenseRetriever(kb, embedder)
    if kind == "hybrid":
        return HybridRetriever(
            kb,
            embedder,
            dense_weight=settings.hybrid_dense_weight,
            foreign_dense_weight=settings.hybrid_foreign_dense_weight,
            dense_languages=settings.dense_languages,
            candidates=settings.hybrid_candidates,
            near_duplicate_similarity=settings.near_duplicate_similarity,
            adaptive=settings.hybrid_adaptive,
        )
    raise ValueError(f"retriever must be one of dense, bm25, hybrid. Currently, the retriever is {kind!r}")


def create_generator(settings: Settings) -> Generator:
    """The generator the settings ask for (`RAG_GENERATOR`, default: decided by what is configured)."""
    kind = settings.resolved_generator()
    if kind == "extractive":
        from rag.generation.extractive import ExtractiveGenerator

        return ExtractiveGenerator(max_sentences=settings.extractive_max_sentences)
    if kind == "openai":
        from rag.generation.openai_compatible import OpenAIGenerator

        return OpenAIGenerator(
            model=settings.llm_model,
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
        )
    if kind == "llamacpp":
        from rag.generation.llamacpp import LlamaCppGenerator

        if settings.llamacpp_model_path is None:
            raise ConfigurationError("RAG_GENERATOR=llamacpp needs RAG_LLAMACPP_MODEL_PATH=/path/to/model.gguf")
        return LlamaCppGenerator(
            settings.llamacpp_model_path,
            context_window=settings.llm_context_window,
            threads=settings.llamacpp_threads,
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
        )
    raise ConfigurationError(f"unknown generator {kind!r} - use extractive, openai or llamacpp")


def create_conversation_store(settings: Settings) -> SQLAlchemyConversationStore:
    return SQLAlchemyConversationStore(settings.resolved_database_url())


def create_chat_service(
    settings: Settings,
    retriever: Retriever,
    *,
    store: ConversationStore | None = None,
    on_handoff: WebhookNotifier | None = None,
) -> ChatService:
    return ChatService(
        settings,
        retriever,
        create_generator(settings),
        get_encoding(settings.tokenizer_encoding),
        store=store,
        on_handoff=on_handoff,
    )


def build_services(settings: Settings, *, with_store: bool = True) -> Services:
    """Everything the chat path needs, from settings: knowledge base, embedder, retriever, generator, and
    (with_store) the conversation store and the handoff webhook."""
    owned: list[Callable[[], None]] = []
    try:
        kb = open_knowledge_base(settings)
        owned.append(kb.close)
        embedder = create_embedder(settings)
        bm25_tokens("预热 warm-up")  # loads jieba's dictionary now rather than during the first Chinese question
        store = notifier = None
        if with_store:
            store = create_conversation_store(settings)
            owned.append(store.close)
            if settings.handoff_webhook_url:
                notifier = WebhookNotifier(
                    settings.handoff_webhook_url, store, retries=settings.handoff_webhook_retries
                )
                owned.append(notifier.close)
        retriever = create_retriever(settings.retriever, kb, embedder, settings)
        chat = create_chat_service(settings, retriever, store=store, on_handoff=notifier)
    except BaseException:
        for close in reversed(owned):
            close()
        raise
    return Services(chat=chat, kb=kb, embedder=embedder, owned=owned)
