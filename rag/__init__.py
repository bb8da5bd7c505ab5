"""Grounded customer-service answers from a company's own documents.

    from rag import Settings, build_services
    services = build_services(Settings(kb_dir="kb"))
    answer = services.chat.answer("How long does shipping take?")
    services.close()

Packages by role, each importing only those below it (checked by `make test`):

    api, cli        the edges: HTTP (FastAPI) and the command line
    wiring          the one place parts are built from settings and closed
    jobs            background work: ingest jobs, retention
    chat            the bot: decline, intents, follow-ups, handoff
    evaluation      quality on BEIR folders
    conversations   stored turns, feedback, analytics, the HTML report
    generation      generators (extractive, openai, llama.cpp), prompts, citations
    retrieval       dense, BM25 and hybrid retrievers
    store           knowledge bases on disk: catalog, SQL, vector and lexical indexes, curated answers, embedders
    text            language, lexical analysis, sentences, tokens, redaction
    core            types, errors, settings

`ingest` (beside `rag`) turns files into documents and uses only store, text and core; the command line and the
ingest jobs run it.
"""

from rag.chat.service import ChatService
from rag.conversations.store import ConversationStore
from rag.core.errors import (
    ConfigurationError,
    DatabaseUnavailable,
    GenerationError,
    KnowledgeBaseError,
    KnowledgeBaseNotFound,
    RagError,
)
from rag.core.settings import Settings
from rag.core.types import Answer, Chunk, Citation, Document, Filters, Passage
from rag.generation.protocol import Generator, QueryRewriter
from rag.retrieval.protocol import Retriever
from rag.store.embedders import Embedder
from rag.store.knowledge_base import KnowledgeBase
from rag.wiring import Services, build_services

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "ChatService",
    "Chunk",
    "Citation",
    "ConfigurationError",
    "ConversationStore",
    "DatabaseUnavailable",
    "Document",
    "Embedder",
    "Filters",
    "GenerationError",
    "Generator",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "KnowledgeBaseNotFound",
    "Passage",
    "QueryRewriter",
    "RagError",
    "Retriever",
    "Services",
    "Settings",
    "build_services",
]
