from __future__ import annotations

from fastapi import APIRouter, Depends

from rag import __version__
from rag.api.dependencies import get_chat_service
from rag.chat import ChatService

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness and what the bot is serving")
def health(chat: ChatService = Depends(get_chat_service)) -> dict:
    kb = chat.retriever.kb.stats() if hasattr(chat.retriever, "kb") else {}
    return {
        "status": "ok",
        "version": __version__,
        "generator": chat.generator.name,
        "knowledge_base": {k: kb[k] for k in ("documents", "chunks", "embedding_model", "index_type") if k in kb},
    }
