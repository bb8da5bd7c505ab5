"""/api/kbs/{kb}/documents and /api/jobs: documents uploaded, listed, deleted and re-ingested through background
jobs (rag.jobs.runner); each change answers 202 with a job id at once."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, UploadFile

from rag.api.access import CallerDep, check, scoped
from rag.api.dependencies import JobsDep, KnowledgeBasesDep
from rag.api.kb_schemas import ChunkList, ChunkOut, DocumentList, DocumentOut, JobList, JobOut, document_id
from rag.api.schemas import error_responses
from rag.core.errors import Conflict, NotFound, QueueFull, UnsupportedUpload
from rag.jobs.runner import JobRunner, supported_types
from rag.store.catalog import JobKind, safe_file_name
from rag.wiring import KnowledgeBases

router = APIRouter(prefix="/api", tags=["documents"], responses=error_responses(401, 403, 422, 503))
MAX_FILES = 100  # per upload request
# requests whose bodies may be as large as RAG_MAX_UPLOAD_BYTES (rag.api.limits); every other one: RAG_MAX_BODY_BYTES
UPLOAD_PATHS = re.compile(r"/api/kbs/[^/]+/(documents|answers\.csv)")
_KB = error_responses(404, s404="No such knowledge base")
_DOC = error_responses(404, s404="No such knowledge base or document")


def documents(kbs: KnowledgeBases, kb: str) -> list[DocumentOut]:
    """Every file of the knowledge base: those ingested (by the API or the CLI) and uploads not (yet) ingested."""
    uploads = {f.source: f for f in kbs.catalog.files(kb)}
    out: dict[str, DocumentOut] = {}
    for summary in kbs.kb(kb).sources():
        upload = uploads.get(summary.source)
        out[summary.source] = DocumentOut(
            document_id=document_id(summary.source),
            source=summary.source,
            name=PurePosixPath(summary.source).name,
            title=summary.title,
            status=upload.state if upload is not None else "ingested",
            chunks=summary.chunks,
            ingested_at=datetime.fromtimestamp(summary.ingested_at, UTC),
            error=upload.error if upload is not None else None,
            uploaded=upload is not None,
            size=upload.size if upload is not None else None,
            job_id=upload.job_id if upload is not None else None,
        )
    for source, upload in uploads.items():
        if source not in out:
            out[source] = DocumentOut(
                document_id=document_id(source),
                source=source,
                name=upload.name,
                title=upload.name,
                status=upload.state,
                chunks=0,
                ingested_at=None,
                error=upload.error,
                uploaded=True,
                size=upload.size,
                job_id=upload.job_id,
            )
    return sorted(out.values(), key=lambda d: d.source)


def _document(kbs: KnowledgeBases, kb: str, doc_id: str) -> DocumentOut:
    for doc in documents(kbs, kb):
        if doc.document_id == doc_id:
            return doc
    raise NotFound(f"No document {doc_id!r} in knowledge base {kb!r} - GET /api/kbs/{kb}/documents lists them")


def _submit(jobs: JobRunner, kb: str, kind: JobKind, files: list[str]) -> JobOut:
    return JobOut.of(jobs.submit(kb, kind, files))


@router.post(
    "/kbs/{kb}/documents",
    status_code=202,
    response_model=JobOut,
    dependencies=[scoped("ingest")],
    summary="Upload documents (multipart, one or more `files`); ingested by a background job",
    description="Answers at once with the job (`job_id`); GET /api/jobs/{job_id} shows its progress. A file with "
    "the name of one uploaded before replaces it. Supported types: " + ", ".join(supported_types()) + ".",
    responses=_KB
    | error_responses(
        400,
        413,
        415,
        422,
        s413="Larger than RAG_MAX_UPLOAD_BYTES",
        s415="A file's type has no loader",
        s503="Too many ingest jobs are waiting (retry later), or not configured",
    ),
)
def upload(
    kb: str,
    files: Annotated[list[UploadFile], File(description="The documents.")],
    kbs: KnowledgeBasesDep,
    jobs: JobsDep,
) -> JobOut:
    kbs.info(kb)
    if not files:
        raise HTTPException(422, "Send at least one file as a multipart field named `files`")
    if len(files) > MAX_FILES:
        raise HTTPException(422, f"At most {MAX_FILES} files per request - send the rest in another request")
    names: list[str] = []
    for file in files:
        try:
            name = safe_file_name(file.filename or "")
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        if PurePosixPath(name).suffix.lower() not in supported_types():
            raise UnsupportedUpload(
                f"{name}: unsupported file type {PurePosixPath(name).suffix or '(no extension)'!r} - supported: "
                f"{', '.join(supported_types())}; nothing of this request was kept"
            )
        if name in names:
            raise HTTPException(422, f"Two files are named {name!r} in this request - rename one of them")
        names.append(name)
    if jobs.waiting() >= jobs.queue_size:
        raise QueueFull(f"{jobs.waiting()} ingest jobs are waiting - retry when some have finished")
    saved: list[str] = []
    try:
        for file, name in zip(files, names, strict=True):
            kbs.catalog.save_file(kb, name, file.file)
            saved.append(name)
        return _submit(jobs, kb, "ingest", names)
    except Exception as exc:  # what was saved is reported failed, never left "queued" with no job
        for name in saved:
            kbs.catalog.set_file_state(kb, name, "failed", f"not ingested: {exc}")
        raise


@router.get(
    "/kbs/{kb}/documents",
    response_model=DocumentList,
    dependencies=[scoped("ingest")],
    summary="Documents with their status, chunk count, ingested time and failure reason",
    responses=_KB,
)
def list_documents(kb: str, kbs: KnowledgeBasesDep) -> DocumentList:
    return DocumentList(data=documents(kbs, kb))


@router.get(
    "/kbs/{kb}/documents/{document_id}",
    response_model=DocumentOut,
    dependencies=[scoped("ingest")],
    summary="One document",
    responses=_DOC,
)
def get_document(kb: str, document_id: str, kbs: KnowledgeBasesDep) -> DocumentOut:
    return _document(kbs, kb, document_id)


@router.get(
    "/kbs/{kb}/documents/{document_id}/chunks",
    response_model=ChunkList,
    dependencies=[scoped("ingest")],
    summary="A document's chunks as retrieval sees them",
    responses=_DOC,
)
def document_chunks(kb: str, document_id: str, kbs: KnowledgeBasesDep) -> ChunkList:
    doc = _document(kbs, kb, document_id)
    return ChunkList(
        data=[
            ChunkOut(
                chunk_id=c.id,
                position=c.position,
                title=c.title,
                heading=" > ".join(c.heading_path),
                page=c.page,
                row=c.row,
                text=c.text,
            )
            for c in kbs.kb(kb).source_chunks(doc.source)
        ]
    )


@router.delete(
    "/kbs/{kb}/documents/{document_id}",
    status_code=202,
    response_model=JobOut,
    dependencies=[scoped("ingest")],
    summary="Delete a document (and its uploaded file) by a background job",
    responses=_DOC,
)
def delete_document(kb: str, document_id: str, kbs: KnowledgeBasesDep, jobs: JobsDep) -> JobOut:
    return _submit(jobs, kb, "delete", [_document(kbs, kb, document_id).source])


@router.post(
    "/kbs/{kb}/documents/{document_id}/reingest",
    status_code=202,
    response_model=JobOut,
    dependencies=[scoped("ingest")],
    summary="Ingest an uploaded document again (with the knowledge base's current settings)",
    responses=_DOC | error_responses(409, s409="Not uploaded over the API: ingest its folder with `rag ingest`"),
)
def reingest_document(kb: str, document_id: str, kbs: KnowledgeBasesDep, jobs: JobsDep) -> JobOut:
    doc = _document(kbs, kb, document_id)
    if not doc.uploaded:
        raise Conflict(f"{doc.source} was ingested from a folder, not uploaded - run `rag ingest` on that folder again")
    return _submit(jobs, kb, "reingest", [doc.name])


@router.post(
    "/kbs/{kb}/reingest",
    status_code=202,
    response_model=JobOut,
    dependencies=[scoped("ingest")],
    summary="Ingest every uploaded document again",
    responses=_KB,
)
def reingest_all(kb: str, kbs: KnowledgeBasesDep, jobs: JobsDep) -> JobOut:
    return _submit(jobs, kb, "reingest", [f.name for f in kbs.catalog.files(kb)])


@router.get(
    "/kbs/{kb}/jobs", response_model=JobList, dependencies=[scoped("ingest")], summary="Recent jobs", responses=_KB
)
def list_jobs(kb: str, kbs: KnowledgeBasesDep) -> JobList:
    kbs.info(kb)
    return JobList(data=[JobOut.of(j) for j in kbs.catalog.db.jobs(kb)])


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    summary="A job's state and progress: files done / total, chunks embedded, each file's failure",
    responses=error_responses(404, s404="No such job"),
)
def get_job(job_id: str, caller: CallerDep, jobs: JobsDep) -> JobOut:
    job = jobs.get(job_id)
    check(caller, job.kb_id, "ingest")
    return JobOut.of(job)
