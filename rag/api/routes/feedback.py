from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from rag.api.dependencies import ChatDep
from rag.api.schemas import ErrorResponse
from rag.core.errors import ConfigurationError

router = APIRouter(tags=["feedback"])


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: str = Field(..., min_length=1, max_length=128)
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=2000)


class FeedbackResponse(BaseModel):
    message_id: str
    rating: str
    comment: str | None
    created_at: str


@router.post("/feedback", response_model=FeedbackResponse, summary="Thumbs up or down on an answer",
             responses={404: {"model": ErrorResponse, "description": "No such message"},
                        422: {"model": ErrorResponse, "description": "Invalid request"}})
def feedback(body: FeedbackRequest, chat: ChatDep) -> FeedbackResponse:
    if chat.store is None:
        raise ConfigurationError("feedback needs a conversation store - set RAG_DATABASE_URL")
    stored = chat.store.add_feedback(body.message_id, body.rating, body.comment)
    return FeedbackResponse(message_id=stored.message_id, rating=stored.rating, comment=stored.comment,
                            created_at=stored.created_at.isoformat())
