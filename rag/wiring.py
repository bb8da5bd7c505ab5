"""The one place where the parts are built from settings and closed again.

    services = build_services(settings)     the knowledge bases (one with RAG_KB_DIR, several under RAG_KB_ROOT),
    ...                                     embedder, retrievers, generators, chat services, conversation store,
    services.close()                        handoff webhook, ingest jobs, the retention sweeper and the messaging
                                            channels

The edges (`rag.api`, `rag.cli`) call these; nothing below them builds another layer's parts.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rag.channels.registry import Channels
from rag.chat.curated import AnswerSource, CuratedMatcher, WithDraft
from rag.chat.handoff import WebhookNotifier
from rag.chat.service import ChatService
from rag.conversations.sql_store import SQLAlchemyConversationStore
from rag.conversations.store import ConversationStore
from rag.core.errors import ConfigurationError, Conflict, KnowledgeBaseNotFound, NotFound
from rag.core.settings import Settings
from rag.core.types import Answer
from rag.generation.protocol import Generator
from rag.jobs.retention import RetentionSweeper
from rag.jobs.runner import JobRunner
from rag.retrieval import BM25Retriever, DenseRetriever, HybridRetriever, Retriever
from rag.store.catalog import Catalog, FolderCatalog, KnowledgeBaseInfo
from rag.store.curated import CuratedAnswer, SQLCuratedAnswers
from rag.store.embedders import CachedEmbedder, Embedder, SentenceTransformerEmbedder
from rag.store.knowledge_base import KnowledgeBase
from rag.store.postgres import PostgresStore
from rag.store.postgres_catalog import PostgresCatalog
from rag.text.lexical import bm25_tokens
from rag.text.tokenizer import get_encoding


@dataclass
class Services:
    """What a running bot is made of. `close()` releases what `build_services` opened; services built by
    hand (tests) are closed by whoever built them, so `owned` lists only what this object must close.

    `chat` and `kb` are the default knowledge base's (the one `/chat` answers from); `kbs` serves every one."""

    chat: ChatService | None = None
    kb: KnowledgeBase | None = None
    embedder: Embedder | None = None
    kbs: KnowledgeBases | None = None
    jobs: JobRunner | None = None
    conversations: ConversationStore | None = None
    channels: Channels | None = None
    owned: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def store(self) -> ConversationStore | None:
        if self.conversations is not None:
            return self.conversations
        return self.chat.store if self.chat is not None else None

    def chat_for(self, kb_id: str | None = None) -> ChatService:
        """The chat service of `kb_id`, or of the default knowledge base."""
        if self.kbs is not None:
            return self.kbs.chat(kb_id or self.kbs.default_id())
        if self.chat is None or (kb_id is not None and self.kb is not None and kb_id != self.kb.name):
            raise NotFound(f"No knowledge base {kb_id!r} is served here")
        return self.chat

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


def create_generator(settings: Settings, embedder: Embedder | None = None) -> Generator:
    """The generator the settings ask for (`RAG_GENERATOR`, default: decided by what is configured)."""
    kind = settings.resolved_generator()
    if kind == "extractive":
        from rag.generation.extractive import ExtractiveGenerator

        return ExtractiveGenerator(
            max_sentences=settings.extractive_max_sentences,
            embedder=embedder,
            dense_languages=tuple(settings.dense_languages),
        )
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
    kb_id: str = "",
    curated: CuratedMatcher | None = None,
    default_language: str | None = None,
    embedder: Embedder | None = None,
) -> ChatService:
    """`embedder`: the knowledge base's embedding model, which the extractive generator also uses to weigh
    sentences by meaning (none: by words only); give a `CachedEmbedder` to keep sentence vectors between
    questions."""
    return ChatService(
        settings,
        retriever,
        create_generator(settings, embedder),
        get_encoding(settings.tokenizer_encoding),
        store=store,
        on_handoff=on_handoff,
        kb_id=kb_id,
        curated=curated,
        default_language=default_language,
    )


@dataclass
class _Served:
    kb: KnowledgeBase
    retriever: Retriever
    info: KnowledgeBaseInfo  # as it was when opened, or when `chat` was last built
    chat: ChatService | None = None  # built on first use and again after the knowledge base's settings change


class KnowledgeBases:
    """Every knowledge base a server serves, each opened on first use with its own chat service, built from the
    server's settings with the knowledge base's overrides (`settings` in /api/kbs; rag.core.settings.KB_OVERRIDABLE).
    One embedder, conversation store and handoff webhook are shared."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        embedder: Embedder,
        store: ConversationStore | None = None,
        notifier: WebhookNotifier | None = None,
    ):
        self.settings = settings
        self.catalog = catalog
        self.embedder = embedder
        # the chat path's texts (questions, the sentences answers are chosen from) embedded once and kept: the
        # curated match and retrieval embed the same question, and questions keep landing on the same passages
        self.chat_embedder = CachedEmbedder(embedder, settings.embedding_cache_size)
        self.store = store
        self.notifier = notifier
        self._served: dict[str, _Served] = {}
        self._curated: dict[str, SQLCuratedAnswers] = {}
        self._curated_since: dict[str, datetime] = {}  # created_at of the knowledge base whose answers are open
        self._lock = threading.RLock()
        self.on_change: list[Callable[[str], None]] = []  # called with the id after an update or a deletion

    def list(self) -> list[KnowledgeBaseInfo]:
        return self.catalog.list_kbs()

    def ids(self) -> builtins.list[str]:  # (`list` is the method above, here)
        return [info.id for info in self.catalog.list_kbs()]

    def overrides(self, kb_id: str) -> Mapping[str, Any]:
        """The knowledge base's own settings (kb.json), not merged with the server's."""
        return self.catalog.get_kb(kb_id).settings

    def info(self, kb_id: str) -> KnowledgeBaseInfo:
        return self.catalog.get_kb(kb_id)

    def default_id(self) -> str:
        """The knowledge base `/chat` answers from: RAG_DEFAULT_KB, else the only (or first) one."""
        if self.settings.default_kb:
            return self.settings.default_kb
        kbs = self.catalog.list_kbs()
        if not kbs:
            raise NotFound("No knowledge base yet - create one with POST /api/kbs or `rag kb create`")
        return kbs[0].id

    def settings_for(self, kb_id: str) -> Settings:
        return self._settings_of(self.catalog.get_kb(kb_id))

    def _settings_of(self, info: KnowledgeBaseInfo) -> Settings:
        try:
            return self.settings.with_overrides(info.settings)
        except ValueError as exc:  # written by hand into kb.json: the API checks what it stores
            raise ConfigurationError(f"knowledge base {info.id!r}: {exc} - fix `settings` in its kb.json") from exc

    def kb(self, kb_id: str) -> KnowledgeBase:
        return self._serve(kb_id, self.catalog.get_kb(kb_id)).kb

    def chat(self, kb_id: str) -> ChatService:
        """The knowledge base's chat service, built again when its settings changed (here, or through another server
        sharing the catalog)."""
        info = self.catalog.get_kb(kb_id)
        with self._lock:
            served = self._serve(kb_id, info)
            if served.chat is None or (served.info.settings, served.info.language) != (info.settings, info.language):
                served.info = info
                settings = self._settings_of(info)
                language = info.language
                matcher = CuratedMatcher(
                    self.curated(kb_id),
                    self.chat_embedder,
                    min_score=settings.curated_min_score,
                    min_score_zh=settings.curated_min_score_zh,
                    dense_languages=settings.dense_languages,
                )
                served.chat = create_chat_service(
                    settings,
                    served.retriever,
                    store=self.store,
                    on_handoff=self.notifier,
                    kb_id=kb_id,
                    curated=matcher,
                    default_language=None if language == "auto" else language,
                    embedder=self.chat_embedder,
                )
            return served.chat

    def try_question(self, kb_id: str, question: str, draft: CuratedAnswer | None = None) -> Answer:
        """How the knowledge base would answer `question`, with `draft` among its curated answers (in place of the
        one with its id), without storing the turn or notifying anyone."""
        settings = self.settings_for(kb_id)
        source: AnswerSource = self.curated(kb_id) if draft is None else WithDraft(self.curated(kb_id), draft)
        matcher = CuratedMatcher(
            source,
            self.chat_embedder,
            min_score=settings.curated_min_score,
            min_score_zh=settings.curated_min_score_zh,
            dense_languages=settings.dense_languages,
        )
        served = self.chat(kb_id)  # its generator (a local model is loaded once) and reply language
        chat = ChatService(
            settings,
            served.retriever,
            served.generator,
            served.encoding,
            kb_id=kb_id,
            curated=matcher,
            default_language=served.default_language,
        )
        return chat.answer(question)

    def curated(self, kb_id: str) -> SQLCuratedAnswers:
        """The knowledge base's curated answers (created empty on first use)."""
        info = self.catalog.get_kb(kb_id)
        with self._lock:
            self._forget_if_recreated(kb_id, info)
            answers = self._curated.get(kb_id)
            if answers is None:
                answers = self._curated[kb_id] = self.catalog.curated(kb_id)
            return answers

    def _forget_if_recreated(self, kb_id: str, info: KnowledgeBaseInfo) -> None:
        """Close what is open of a knowledge base deleted and created again under its id through another server
        sharing the catalog, so that the new one is opened."""
        served = self._served.get(kb_id)
        opened = served.info.created_at if served is not None else self._curated_since.get(kb_id)
        if self.catalog.single or opened is None or opened == info.created_at:
            self._curated_since.setdefault(kb_id, info.created_at)
            return
        if served is not None:
            self._served.pop(kb_id).kb.close()
        curated = self._curated.pop(kb_id, None)
        if curated is not None:
            curated.close()
        self._curated_since[kb_id] = info.created_at

    def create(
        self, kb_id: str, name: str, language: str = "auto", overrides: Mapping[str, Any] | None = None
    ) -> KnowledgeBaseInfo:
        """A new, empty knowledge base (declining every question until documents are ingested into it)."""
        self.settings.with_overrides(overrides or {})  # ValueError before anything is created
        return self.catalog.create_kb(kb_id, name, language, overrides)

    def update(
        self,
        kb_id: str,
        *,
        name: str | None = None,
        language: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> KnowledgeBaseInfo:
        if overrides is not None:
            self.settings.with_overrides(overrides)
        info = self.catalog.update_kb(kb_id, name=name, language=language, settings=overrides)
        with self._lock:
            if kb_id in self._served:
                self._served[kb_id].chat = None  # rebuilt with the new settings on the next question
        self._changed(kb_id)
        return info

    def delete(self, kb_id: str) -> None:
        """The knowledge base, its files, jobs, keys and conversations, for good. Refused (Conflict) while one of
        its jobs is queued or running. Conversations go first: if their database is down, nothing is deleted and
        the request can be repeated."""
        if self.catalog.single:
            raise Conflict("This server serves one knowledge base (--kb DIR); delete its folder to remove it")
        self.catalog.get_kb(kb_id)
        busy = [job.id for job in self.catalog.db.unfinished_jobs() if job.kb_id == kb_id]
        if busy:
            raise Conflict(f"Job {busy[0]} of knowledge base {kb_id!r} is still queued or running - delete it after")
        if self.store is not None:
            self.store.delete_kb(kb_id)
        with self._lock:  # no request reopens it in between
            served = self._served.pop(kb_id, None)
            curated = self._curated.pop(kb_id, None)
            self._curated_since.pop(kb_id, None)
            self.catalog.delete_kb(kb_id)
        if curated is not None:
            curated.close()
        if served is not None:
            served.kb.close()
        self._changed(kb_id)

    def _changed(self, kb_id: str) -> None:
        for listener in self.on_change:
            listener(kb_id)

    def counts(self, kb_id: str) -> dict[str, int]:
        """Documents, files and chunks, without loading the indexes of a knowledge base nobody asked yet."""
        with self._lock:
            served = self._served.get(kb_id)
        if served is not None:
            return served.kb.store.counts()
        return KnowledgeBase.counts_at(self.catalog.kb_location(kb_id))

    def close(self) -> None:
        with self._lock:
            for served in self._served.values():
                served.kb.close()
            for curated in self._curated.values():
                curated.close()
            self._served.clear()
            self._curated.clear()

    def _serve(self, kb_id: str, info: KnowledgeBaseInfo) -> _Served:
        with self._lock:
            self._forget_if_recreated(kb_id, info)
            served = self._served.get(kb_id)
            if served is None:
                where = self.catalog.kb_location(kb_id)  # NotFound for an unknown id
                settings = self._settings_of(info)
                if not KnowledgeBase.exists(where):  # created, nothing ingested yet: served empty
                    KnowledgeBase.create(
                        where,
                        embedding_model=self.embedder.name,
                        dimension=self.embedder.dimension,
                        index_type=settings.index_type,
                    ).close()
                kb = KnowledgeBase.open(
                    where,
                    embedding_model=self.embedder.name,
                    ef_search=settings.hnsw_ef_search,
                    nprobe=settings.ivf_nprobe,
                )
                served = _Served(kb, create_retriever(settings.retriever, kb, self.chat_embedder, settings), info)
                self._served[kb_id] = served
            return served


def create_kb_store(settings: Settings) -> PostgresStore | None:
    """The PostgreSQL database holding the knowledge bases (RAG_STORE_URL), or None: each in its folder."""
    if settings.store_url is None:
        return None
    return PostgresStore(
        settings.store_url,
        pool_size=settings.store_pool_size,
        max_overflow=settings.store_max_overflow,
        pool_timeout=settings.store_timeout,
    )


def create_catalog(settings: Settings) -> Catalog:
    """Which knowledge bases exist and where: folders, or (RAG_STORE_URL) PostgreSQL, which then also holds every
    server's keys, jobs, uploads and curated answers (the catalog owns, and closes, the store)."""
    kb_store = create_kb_store(settings)
    if kb_store is not None:
        cache = settings.kb_root if settings.kb_root is not None else settings.kb_dir.parent
        single = None if settings.kb_root is not None else settings.kb_dir.resolve().name
        try:
            return PostgresCatalog(kb_store, cache, single_kb=single)
        except BaseException:
            kb_store.close()
            raise
    if settings.kb_root is not None:
        return FolderCatalog(settings.kb_root)
    return FolderCatalog.single_kb(settings.kb_dir)


def create_job_runner(kbs: KnowledgeBases, settings: Settings) -> JobRunner:
    """Ingest jobs whose files load in a separate process bounded in time and memory (hostile uploads)."""
    return JobRunner(kbs.catalog, kbs.embedder, kbs.settings_for, queue_size=settings.ingest_queue_size, sandbox=True)


def build_services(
    settings: Settings, *, with_store: bool = True, background: bool = False, embedder: Embedder | None = None
) -> Services:
    """Everything the chat path needs, from settings: the knowledge bases, embedder, retrievers, generators, and
    (with_store) the conversation store and the handoff webhook; with `background` (a server), the ingest job
    runner and the retention sweeper too. An `embedder` given is used (and left open) instead of a new one."""
    owned: list[Callable[[], None]] = []
    try:
        catalog = create_catalog(settings)
        owned.append(catalog.close)
        if settings.kb_root is None and not catalog.list_kbs():
            raise KnowledgeBaseNotFound(settings.kb_dir)
        embedder = embedder or create_embedder(settings)
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
        kbs = KnowledgeBases(settings, catalog, embedder, store, notifier)
        owned.append(kbs.close)
        chat = kb = None
        if settings.kb_root is None:  # one knowledge base: opened now, so a broken one fails at start
            kb_id = kbs.default_id()
            chat, kb = kbs.chat(kb_id), kbs.kb(kb_id)
        jobs = channels = None
        if background:
            jobs = create_job_runner(kbs, settings)
            owned.append(jobs.close)
            jobs.recover()
            if store is not None:
                sweeper = RetentionSweeper(kbs.list, kbs.settings_for, store, settings.retention_check_seconds)
                owned.append(sweeper.close)
                channels = Channels(settings, kbs, kbs.chat, store)
                owned.append(channels.close)
                channels.start()
                kbs.on_change.append(channels.reconfigure)
    except BaseException:
        for close in reversed(owned):
            close()
        raise
    return Services(
        chat=chat, kb=kb, embedder=embedder, kbs=kbs, jobs=jobs, conversations=store, channels=channels, owned=owned
    )
