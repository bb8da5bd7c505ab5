"""Request and response bodies of the knowledge-base management API (/api/kbs, /api/jobs)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from types import UnionType
from typing import Annotated, Any, Literal, Optional, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model

from rag.api.validation import INTEGRAL, Text
from rag.core.settings import KB_OVERRIDABLE, SECRET_SETTINGS, Settings
from rag.store.catalog import ApiKey, Job, KnowledgeBaseInfo

Name = Annotated[Text, Field(min_length=1, max_length=200)]
MASK = "********"  # a secret setting as responses show it
Language = Literal["auto", "en", "zh"]
Scope = Literal["chat", "ingest", "conversations", "manage"]


def _api_type(annotation: Any, limits: list[Any]) -> Any:
    """A setting's type as the API accepts it: text with the API's character rules, secrets as text, whole numbers
    written as 17.0 as integers (as everywhere in the API), each with the setting's limits (gt, le, ...)."""
    if get_origin(annotation) in (Union, UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return Optional[_api_type(members[0], limits)]  # noqa: UP045 - built at run time
        return annotation
    if annotation in (str, SecretStr):
        return Annotated[Text, *limits] if limits else Text
    if annotation is int:
        return Annotated[int, *limits, INTEGRAL]
    if get_origin(annotation) is list:
        return list[_api_type(get_args(annotation)[0], [])]  # type: ignore[misc]  # a type built at run time
    return Annotated[annotation, *limits] if limits else annotation


def _settings_model() -> type[BaseModel]:
    """The per-knowledge-base settings (rag.core.settings.KB_OVERRIDABLE), each with the type, limits and
    description of its server-wide setting, so the OpenAPI document says exactly what is accepted."""
    fields: dict[str, Any] = {}
    for name in KB_OVERRIDABLE:
        info = Settings.model_fields[name]
        # null is accepted for every setting: "the server's value" (in PATCH, it removes an override)
        api_type = Optional[_api_type(info.annotation, list(info.metadata))]  # type: ignore[valid-type]  # noqa: UP045
        fields[name] = (api_type, Field(None, description=info.description))
    return create_model("KnowledgeBaseSettings", __config__=ConfigDict(extra="forbid", strict=True), **fields)


KnowledgeBaseSettings = _settings_model()


def overrides(settings: BaseModel | None) -> dict[str, Any] | None:
    """The settings a request gave (those it left out are not overridden; null ones stand for the server's value)."""
    return None if settings is None else settings.model_dump(exclude_unset=True)


def set_only(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """`values` without the settings given as null (the server's value)."""
    return None if values is None else {k: v for k, v in values.items() if v is not None}


class KnowledgeBaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(..., min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9_-]*$", examples=["support-en"])
    name: Name
    language: Language = Field("auto", description="Reply language when a question's own is unclear.")
    settings: KnowledgeBaseSettings | None = Field(  # type: ignore[valid-type]
        None,
        description="Overrides of the server's settings for this knowledge base: decline thresholds (min_score, "
        "min_score_zh), fallback and handoff messages, allowed_origins, generator and llm_* settings, "
        "retention_days, redact_pii, top_k.",
    )


class KnowledgeBaseUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name | None = None
    language: Language | None = None
    settings: KnowledgeBaseSettings | None = Field(  # type: ignore[valid-type]
        None,
        description="Merged into the knowledge base's overrides: the settings given change, a setting given as null "
        "returns to the server's value, the others stay.",
    )


class KnowledgeBaseOut(BaseModel):
    id: str
    name: str
    language: str
    created_at: datetime
    settings: dict[str, Any] = Field(description="The overrides; secrets (llm_api_key) are shown as ********.")
    documents: int
    chunks: int

    @classmethod
    def of(cls, info: KnowledgeBaseInfo, stats: dict[str, Any]) -> KnowledgeBaseOut:
        shown = {k: (MASK if k in SECRET_SETTINGS and v else v) for k, v in info.settings.items()}
        return cls(
            id=info.id,
            name=info.name,
            language=info.language,
            created_at=info.created_at,
            settings=shown,
            documents=int(stats.get("files", 0)),
            chunks=int(stats.get("chunks", 0)),
        )


class KnowledgeBaseList(BaseModel):
    data: list[KnowledgeBaseOut]


class FailureOut(BaseModel):
    file: str
    reason: str


class JobOut(BaseModel):
    job_id: str
    kb: str
    kind: str
    state: Literal["queued", "running", "succeeded", "failed"]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    files: list[str]
    files_total: int
    files_done: int
    chunks_embedded: int
    chunks_total: int = Field(description="Chunks to embed (known once every file is loaded).")
    failures: list[FailureOut] = Field(description="Each file that could not be ingested, and why.")
    error: str | None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            job_id=job.id,
            kb=job.kb_id,
            kind=job.kind,
            state=job.state,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            files=job.files,
            files_total=job.files_total,
            files_done=job.files_done,
            chunks_embedded=job.chunks_embedded,
            chunks_total=job.chunks_total,
            failures=[FailureOut(file=f.file, reason=f.reason) for f in job.failures],
            error=job.error,
        )


class JobList(BaseModel):
    data: list[JobOut]


class DocumentOut(BaseModel):
    document_id: str
    source: str = Field(description="How citations name it: `files/<name>` for uploads.")
    name: str
    title: str
    status: Literal["queued", "ingesting", "ingested", "failed"]
    chunks: int
    ingested_at: datetime | None
    error: str | None = Field(description="Why the last ingest of this file failed.")
    uploaded: bool = Field(description="Uploaded over the API (kept, so it can be re-ingested).")
    size: int | None
    job_id: str | None


class DocumentList(BaseModel):
    data: list[DocumentOut]


class ChunkOut(BaseModel):
    chunk_id: int | None
    position: int
    title: str
    heading: str
    page: int | None
    row: int | None
    text: str


class ChunkList(BaseModel):
    data: list[ChunkOut]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    scopes: list[Scope] = Field(..., max_length=4, description="chat, ingest, conversations, manage")
    name: Annotated[Text, Field(max_length=200)] = ""


class KeyOut(BaseModel):
    id: str
    kb: str
    name: str
    scopes: list[str]
    created_at: datetime

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(id=key.id, kb=key.kb_id, name=key.name, scopes=list(key.scopes), created_at=key.created_at)


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself, shown only now: only its hash is stored.")


class KeyList(BaseModel):
    data: list[KeyOut]


def document_id(source: str) -> str:
    """A stable id for the document(s) ingested from one file, usable in a URL.

    >>> document_id("files/faq.csv")
    'de28ff150a94467b0c8a'
    """
    return hashlib.sha1(source.encode()).hexdigest()[:20]
