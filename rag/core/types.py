"""Plain dataclasses that flow between layers: loaders -> chunker -> knowledge base -> retriever."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Section:
    """A run of text under one heading (or one FAQ row, or one PDF page).

    `atomic` sections (FAQ rows) become exactly one chunk unless they alone exceed the token limit.
    """

    text: str
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    row: int | None = None
    title: str | None = None  # overrides the document title for chunks of this section (FAQ question)
    atomic: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)  # merged over the document's (e.g. FAQ category)


@dataclass
class Document:
    """One unit of incremental ingest: a whole file, or one record of a JSON Lines / JSON file."""

    source: str  # path as ingested, posix separators
    sections: list[Section]
    title: str = ""
    key: str = ""  # record id inside the file ("" for whole-file documents)
    url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def doc_id(self) -> str:
        return f"{self.source}#{self.key}" if self.key else self.source

    def content_hash(self, salt: str = "") -> str:
        """Stable hash of everything that ends up in the index; `salt` carries the chunking/embedding settings."""
        payload = json.dumps(
            {
                "title": self.title,
                "url": self.url,
                "metadata": self.metadata,
                "sections": [
                    [s.text, list(s.heading_path), s.page, s.row, s.title, s.atomic, s.metadata] for s in self.sections
                ],
                "salt": salt,
            },
            ensure_ascii=False,
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class Chunk:
    """A token-bounded piece of a document: what gets embedded, retrieved and cited."""

    doc_id: str
    source: str
    text: str
    position: int  # order within the document
    title: str = ""
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    row: int | None = None
    url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    token_count: int = 0
    id: int | None = None  # assigned by the knowledge base

    def embedding_text(self) -> str:
        """What the embedder sees: title and heading path give a chunk the context its text often lacks."""
        context: list[str] = []
        for part in (self.title, *self.heading_path):
            if part and part not in context:
                context.append(part)
        return (" > ".join(context) + "\n" + self.text) if context else self.text

    def text_hash(self) -> str:
        return hashlib.sha256(self.embedding_text().encode("utf-8")).hexdigest()


@dataclass
class Passage:
    """A retrieved chunk and its score: cosine (dense), BM25 (bm25) or the fused 0..1 score (hybrid).

    `dense_score` is the cosine similarity whenever it is known; the decline decision is calibrated on it.
    """

    chunk: Chunk
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "score": round(self.score, 6), "chunk_id": c.id, "doc_id": c.doc_id, "source": c.source, "title": c.title,
            "heading_path": list(c.heading_path), "page": c.page, "row": c.row, "url": c.url,
            "metadata": c.metadata, "text": c.text,
        }  # fmt: skip

    @property
    def record_id(self) -> str:
        """The id of the record inside its file (JSON `_id`), or the source path for whole-file documents."""
        c = self.chunk
        return c.doc_id[len(c.source) + 1 :] if c.doc_id != c.source else c.source


@dataclass(frozen=True)
class Filters:
    """Retrieval filters: a source path prefix and exact metadata matches (all must hold)."""

    source_prefix: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not self.source_prefix and not self.metadata


@dataclass
class Citation:
    """A passage the answer cites; `marker` is the n of its [n] in the answer text."""

    marker: int
    chunk_id: int | None
    source: str
    title: str
    heading: str
    snippet: str
    score: float
    url: str | None = None
    page: int | None = None
    row: int | None = None


@dataclass(frozen=True)
class Related:
    """A retrieved document worth reading that the answer did not cite; `url` only if http(s) or relative."""

    title: str
    source: str
    url: str | None = None


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False  # counted with tiktoken because the server reported none

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Answer:
    """What the bot replies: grounded text with citations, or a decline that hands off to a person."""

    question: str
    answer: str
    answered: bool
    handoff: bool
    citations: list[Citation]
    passages: list[Passage]
    generator: str
    language: str
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0
    conversation_id: str = ""
    message_id: str = ""
    decline_reason: str | None = None  # low_retrieval_score, model_declined, nothing_to_quote, ungrounded,
    # no_passages, customer_request
    rewritten_query: str | None = None  # the standalone question retrieval used, when it differs
    related: list[Related] = field(default_factory=list)  # up to a few uncited documents on the same topic
    mood: str = "calm"  # calm, annoyed or frustrated (rag.chat.tags)
    topic: str = ""  # the title of the document it drew on, "" when none

    def to_dict(self, *, passages: bool = False) -> dict[str, Any]:
        """The answer as JSON-ready data: the one shape the HTTP API, the OpenAI-compatible extras and
        `rag ask --json` all show (`passages`: also the retrieved passages, with their text)."""
        out: dict[str, Any] = {
            "question": self.question,
            "answer": self.answer,
            "answered": self.answered,
            "handoff": self.handoff,
            "decline_reason": self.decline_reason,
            "citations": [asdict(c) for c in self.citations],
            "generator": self.generator,
            "language": self.language,
            "usage": {**asdict(self.usage), "total_tokens": self.usage.total_tokens},
            "latency_ms": round(self.latency_ms, 2),
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
            "rewritten_query": self.rewritten_query,
            "related": [asdict(r) for r in self.related],
            "mood": self.mood,
            "topic": self.topic,
        }
        if passages:
            out["passages"] = [p.to_dict() for p in self.passages]
        return out
