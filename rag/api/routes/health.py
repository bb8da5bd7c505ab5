from __future__ import annotations

from fastapi import APIRouter

from rag import __version__
from rag.api.dependencies import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness and what the bot is serving")
def health(services: ServicesDep) -> dict:
    kb = services.kb.stats() if services.kb is not None else {}
    if services.kbs is not None and services.kb is None:  # several knowledge bases (RAG_KB_ROOT)
        return {"status": "ok", "version": __version__, "knowledge_bases": len(services.kbs.list())}
    return {
        "status": "ok",
        "version": __version__,
        "generator": services.chat.generator.name if services.chat is not None else None,
        "knowledge_base": {k: kb[k] for k in ("documents", "chunks", "embedding_model", "index_type") if k in kb},
    }


# HEAD too: uptime monitors ask with it (the server sends the headers only); one operation in the OpenAPI document
router.add_api_route("/health", health, methods=["HEAD"], include_in_schema=False)
