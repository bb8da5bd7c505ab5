"""/api/kbs: knowledge bases (create, list, read, change settings, delete) and their API keys."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Response

from rag.api.access import CallerDep, require_admin, scoped
from rag.api.dependencies import KnowledgeBasesDep
from rag.api.kb_schemas import (
    MASK,
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyOut,
    KnowledgeBaseCreate,
    KnowledgeBaseList,
    KnowledgeBaseOut,
    KnowledgeBaseUpdate,
    overrides,
    set_only,
)
from rag.api.schemas import error_responses
from rag.core.errors import NotFound
from rag.core.settings import ADMIN_ONLY_SETTINGS, SECRET_SETTINGS
from rag.wiring import KnowledgeBases

router = APIRouter(prefix="/api", tags=["knowledge bases"], responses=error_responses(401, 403, 422, 503))
_KB = error_responses(404, s404="No such knowledge base")


def _out(kbs: KnowledgeBases, kb_id: str) -> KnowledgeBaseOut:
    return KnowledgeBaseOut.of(kbs.info(kb_id), kbs.counts(kb_id))


def _unprocessable(exc: ValueError) -> HTTPException:
    return HTTPException(422, str(exc))


@router.post(
    "/kbs",
    status_code=201,
    response_model=KnowledgeBaseOut,
    dependencies=[Depends(require_admin)],
    summary="Create a knowledge base (admin key)",
    responses=error_responses(400, 409, 413, 422, s409="The id is taken, or this server serves one fixed KB"),
)
def create_kb(body: KnowledgeBaseCreate, kbs: KnowledgeBasesDep) -> KnowledgeBaseOut:
    try:
        kbs.create(body.id, body.name, body.language, set_only(overrides(body.settings)))
    except ValueError as exc:
        raise _unprocessable(exc) from exc
    return _out(kbs, body.id)


@router.get("/kbs", response_model=KnowledgeBaseList, summary="The knowledge bases this key may see")
def list_kbs(caller: CallerDep, kbs: KnowledgeBasesDep) -> KnowledgeBaseList:
    return KnowledgeBaseList(data=[_out(kbs, info.id) for info in kbs.list() if caller.visible(info.id)])


@router.get("/kbs/{kb}", response_model=KnowledgeBaseOut, summary="One knowledge base", responses=_KB)
def get_kb(kb: str, caller: CallerDep, kbs: KnowledgeBasesDep) -> KnowledgeBaseOut:
    if not caller.visible(kb):
        raise HTTPException(403, f"This key has no scope on knowledge base {kb!r}")
    return _out(kbs, kb)


@router.patch(
    "/kbs/{kb}",
    response_model=KnowledgeBaseOut,
    dependencies=[scoped("manage")],
    summary="Change a knowledge base's name, language or settings (effective at once)",
    responses=_KB | error_responses(400, 413, 422),
)
def update_kb(kb: str, body: KnowledgeBaseUpdate, kbs: KnowledgeBasesDep, caller: CallerDep) -> KnowledgeBaseOut:
    patch = overrides(body.settings)
    new = None
    if patch is not None:
        current = kbs.info(kb).settings
        # a secret comes back from GET as ******** - sent back unchanged, it keeps its value
        patch = {k: current.get(k) if k in SECRET_SETTINGS and v == MASK else v for k, v in patch.items()}
        new = {k: v for k, v in (current | patch).items() if v is not None}  # null: back to the server's value
        changed = sorted(name for name in ADMIN_ONLY_SETTINGS if new.get(name) != current.get(name))
        if changed and not caller.admin:
            raise HTTPException(403, f"Only RAG_ADMIN_API_KEY may change {', '.join(changed)}")
    try:
        kbs.update(kb, name=body.name, language=body.language, overrides=new)
    except ValueError as exc:
        raise _unprocessable(exc) from exc
    return _out(kbs, kb)


@router.delete(
    "/kbs/{kb}",
    status_code=204,
    dependencies=[Depends(require_admin)],
    summary="Delete a knowledge base: its documents, files, jobs, keys and conversations, for good (admin key)",
    responses=_KB | error_responses(409, s409="This server serves one fixed knowledge base"),
)
def delete_kb(kb: str, kbs: KnowledgeBasesDep) -> Response:
    kbs.delete(kb)
    return Response(status_code=204)


# ---- keys --------------------------------------------------------------------------------------------------
@router.post(
    "/kbs/{kb}/keys",
    status_code=201,
    response_model=KeyCreated,
    dependencies=[scoped("manage")],
    summary="Create a key for this knowledge base with some scopes (the key is shown only in this answer)",
    responses=_KB | error_responses(400, 413, 422),
)
def create_key(kb: str, body: KeyCreate, kbs: KnowledgeBasesDep) -> KeyCreated:
    kbs.info(kb)
    record, secret = kbs.catalog.db.add_key(kb, body.scopes, body.name)
    return KeyCreated(**KeyOut.of(record).model_dump(), key=secret)


@router.get(
    "/kbs/{kb}/keys", response_model=KeyList, dependencies=[scoped("manage")], summary="This KB's keys", responses=_KB
)
def list_keys(kb: str, kbs: KnowledgeBasesDep) -> KeyList:
    kbs.info(kb)
    return KeyList(data=[KeyOut.of(k) for k in kbs.catalog.db.keys(kb)])


@router.delete(
    "/kbs/{kb}/keys/{key_id}",
    status_code=204,
    dependencies=[scoped("manage")],
    summary="Revoke a key (refused from then on)",
    responses=error_responses(404, s404="No such knowledge base or key"),
)
def revoke_key(kb: str, key_id: str, kbs: KnowledgeBasesDep) -> Response:
    kbs.info(kb)
    if not kbs.catalog.db.revoke_key(kb, key_id):
        raise NotFound(f"No key {key_id!r} in knowledge base {kb!r} - GET /api/kbs/{kb}/keys lists them")
    return Response(status_code=204)
