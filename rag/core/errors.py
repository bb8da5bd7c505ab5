"""Every error the project raises on purpose. Messages say what went wrong and what to do.

    RagError
    ├── ConfigurationError          a setting is missing or invalid
    ├── LoaderError                 (ingest.errors) one file could not be turned into documents
    ├── EmbeddingError              the embedding model could not be loaded or run
    ├── KnowledgeBaseError          the knowledge base (a folder, or its tables in PostgreSQL)
    │   ├── KnowledgeBaseNotFound   no knowledge base there yet
    │   ├── EmbeddingModelMismatch  the knowledge base was built with another model
    │   ├── KnowledgeBaseLocked     another ingest is writing to it
    │   └── KnowledgeBaseCorrupt    files are missing or disagree
    ├── DatasetError                an evaluation folder is not in the BEIR layout
    ├── DatabaseUnavailable         the conversation or knowledge-base database cannot be reached now (HTTP 503)
    ├── ClusterError                (ingest.distributed) the Ray cluster could not be reached or failed an ingest
    ├── MessageNotFound             feedback names a message the conversation store does not hold
    ├── NotFound                    no knowledge base, document, job, curated answer or key by that id (HTTP 404)
    ├── Conflict                    the request clashes with what exists (an id taken; HTTP 409)
    ├── UnsupportedUpload           an uploaded file's type has no loader (HTTP 415)
    ├── QueueFull                   too many ingest jobs or channel messages are waiting (HTTP 503, retry later)
    ├── ChannelUnauthorized         (rag.channels.base) a webhook's signature, token or timestamp is wrong (HTTP 401)
    ├── ChannelRequestInvalid       (rag.channels.base) a signed webhook delivery cannot be read (HTTP 400)
    ├── ChannelDeliveryError        (rag.channels.base) a platform would not take a reply, after the retries
    └── GenerationError             the language model could not produce an answer
        ├── GeneratorUnavailable    the LLM server cannot be reached or refused the request (HTTP 502)
        │   └── ContextOverflow     the prompt is longer than the model's context (retried with fewer passages)
        └── GeneratorTimeout        the LLM server did not answer in time (HTTP 504)

Only the edges (CLI, HTTP) translate these into exit codes or status codes; each foreign library's
exceptions are translated into these in one place (`rag.generation.openai_errors` for the openai client,
`rag.conversations.sql_store` for SQLAlchemy, `rag.store.postgres` for the PostgreSQL knowledge-base store,
`ingest.distributed` for Ray, `rag.store.embedders` for sentence-transformers,
`rag.channels.outbound` for httpx calls to messaging platforms, `rag.channels.crypto` for cryptography).
"""

from __future__ import annotations

from pathlib import Path


class RagError(Exception):
    """Base class: catch this to handle anything the project raises on purpose."""


class ConfigurationError(RagError):
    pass


class EmbeddingError(RagError):
    pass


class KnowledgeBaseError(RagError):
    pass


class KnowledgeBaseNotFound(KnowledgeBaseError):
    def __init__(self, path: Path | str):
        self.path = str(path)
        super().__init__(f"Knowledge base not found at {self.path} - run `rag ingest data/ --kb {self.path}` first")


class EmbeddingModelMismatch(KnowledgeBaseError):
    def __init__(self, path: Path | str, kb_model: str, kb_dim: int, model: str, dim: int | None = None):
        self.kb_model, self.model = kb_model, model
        got = f"{model!r}" + (f" (dimension {dim})" if dim is not None else "")
        super().__init__(
            f"Knowledge base at {path} was built with embedding model {kb_model!r} (dimension {kb_dim}) "
            f"but {got} is configured - set RAG_EMBEDDING_MODEL={kb_model} or re-ingest into a new --kb directory"
        )


class KnowledgeBaseLocked(KnowledgeBaseError):
    pass


class KnowledgeBaseCorrupt(KnowledgeBaseError):
    pass


class DatasetError(RagError):
    pass


class GenerationError(RagError):
    pass


class GeneratorUnavailable(GenerationError):
    pass


class GeneratorTimeout(GenerationError):
    pass


class ContextOverflow(GeneratorUnavailable):
    pass


class DatabaseUnavailable(RagError):
    """A database was configured and worked, but cannot be reached now (server down, network)."""


class MessageNotFound(RagError):
    def __init__(self, message_id: str):
        self.message_id = message_id
        super().__init__(f"No message with id {message_id!r} - feedback must name a message_id returned by /chat")


class NotFound(RagError):
    """No resource by that id (knowledge base, document, job, curated answer, key, conversation)."""


class Conflict(RagError):
    """The request clashes with what exists: an id already taken, or a change this set-up cannot make."""


class UnsupportedUpload(RagError):
    """An uploaded file has a type no loader reads."""


class QueueFull(RagError):
    """Too many ingest jobs are waiting; the client should retry later."""
