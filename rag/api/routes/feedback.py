from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from rag.api.access import scoped
from rag.api.dependencies import ChatDep, ServicesDep
from rag.api.schemas import error_responses
from rag.api.validation import Text
from rag.chat.service import ChatService
from rag.core.errors import ConfigurationError, MessageNotFound

router = APIRouter(tags=["feedback"])


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    message_id: Annotated[Text, Field(min_length=1, max_length=128)] = Field(
        ..., description="The `message_id` of a /chat answer."
    )
    rating: Literal["up", "down"]
    comment: Annotated[Text, Field(max_length=2000)] | None = None


class FeedbackResponse(BaseModel):
    message_id: str
    rating: str
    comment: str | None
    created_at: str


@router.post(
    "/feedback",
    response_model=FeedbackResponse,
    summary="Thumbs up or down on an answer",
    responses=error_responses(
        400,
        404,
        413,
        422,
        503,
        s404="No such message",
        s503="No conversation store is configured, or its database is unreachable",
    ),
)
def feedback(body: FeedbackRequest, chat: ChatDep) -> FeedbackResponse:
    return record_feedback(body, chat)


@router.post(
    "/api/kbs/{kb}/feedback",
    response_model=FeedbackResponse,
    dependencies=[scoped("chat")],
    summary="Thumbs up or down on an answer of this knowledge base",
    responses=error_responses(400, 401, 403, 404, 413, 422, 503, s404="No such knowledge base or message"),
)
def kb_feedback(kb: str, body: FeedbackRequest, services: ServicesDep) -> FeedbackResponse:
    chat = services.chat_for(kb)
    stored = chat.store.get_message(body.message_id) if chat.store is not None else None
    if stored is not None and stored.kb_id != kb:
        raise MessageNotFound(body.message_id)
    return record_feedback(body, chat)


def record_feedback(body: FeedbackRequest, chat: ChatService) -> FeedbackResponse:
    if chat.store is None:
        raise ConfigurationError("feedback needs a conversation store - set RAG_DATABASE_URL")
    stored = chat.store.add_feedback(body.message_id, body.rating, body.comment)
    return FeedbackResponse(
        message_id=stored.message_id,
        rating=stored.rating,
        comment=stored.comment,
        created_at=stored.created_at.isoformat(),
    )
