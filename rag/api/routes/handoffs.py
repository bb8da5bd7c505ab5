"""Live handoff: conversations the bot handed to a person wait in a queue (open, claimed, resolved); an agent claims
one in the console, reads the transcript and replies; the customer's widget shows the reply, and the bot stays quiet
in that conversation until the agent resolves it (rag.chat.service). The webhook keeps working alongside."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from rag.api.access import scoped
from rag.api.dependencies import KnowledgeBasesDep, ServicesDep
from rag.api.schemas import error_responses
from rag.api.validation import DATE_SCHEMA, Text, date_param
from rag.conversations.store import AgentMessage, ConversationStore, Handoff
from rag.core.errors import ConfigurationError, NotFound

router = APIRouter(prefix="/api", tags=["live handoff"], responses=error_responses(401, 403, 404, 422, 503))
public = APIRouter(tags=["live handoff"], responses=error_responses(404, 422, 503))
Agent = Annotated[Text, Field(min_length=1, max_length=100)]


class HandoffOut(BaseModel):
    conversation_id: str
    state: Literal["open", "claimed", "resolved"]
    agent: str | None
    reason: str | None
    opened_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, h: Handoff) -> HandoffOut:
        return cls(
            conversation_id=h.conversation_id,
            state=h.state,
            agent=h.agent,
            reason=h.reason,
            opened_at=h.opened_at,
            updated_at=h.updated_at,
        )


class HandoffList(BaseModel):
    data: list[HandoffOut]


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    agent: Agent = Field(..., description="Who takes the conversation, as the customer and colleagues see it.")


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    agent: Agent
    text: Annotated[Text, Field(min_length=1, max_length=4000)]


class AgentMessageOut(BaseModel):
    agent: str
    text: str
    created_at: datetime

    @classmethod
    def of(cls, m: AgentMessage) -> AgentMessageOut:
        return cls(agent=m.agent, text=m.text, created_at=m.created_at)


class AgentUpdates(BaseModel):
    state: Literal["open", "claimed", "resolved"] | None = Field(description="None: never handed off.")
    agent: str | None
    messages: list[AgentMessageOut]


def _store(store: ConversationStore | None) -> ConversationStore:
    if store is None:
        raise ConfigurationError("live handoff needs a conversation store - set RAG_DATABASE_URL")
    return store


@router.get(
    "/kbs/{kb}/handoffs",
    response_model=HandoffList,
    dependencies=[scoped("conversations")],
    summary="The agents' queue: handed-off conversations, oldest waiting first",
)
def list_handoffs(
    kb: str, kbs: KnowledgeBasesDep, state: Literal["open", "claimed", "resolved"] | None = Query(None)
) -> HandoffList:
    kbs.info(kb)
    return HandoffList(data=[HandoffOut.of(h) for h in _store(kbs.store).handoffs(kb, state)])


@router.post(
    "/kbs/{kb}/handoffs/{conversation_id}/claim",
    response_model=HandoffOut,
    dependencies=[scoped("conversations")],
    summary="Take a conversation: from now on the bot stays quiet in it",
    responses=error_responses(400, 409, 413, s409="Another agent has it"),
)
def claim(kb: str, conversation_id: str, body: Claim, kbs: KnowledgeBasesDep) -> HandoffOut:
    return HandoffOut.of(_store(kbs.store).set_handoff(kb, conversation_id, "claimed", body.agent))


@router.post(
    "/kbs/{kb}/handoffs/{conversation_id}/reply",
    response_model=AgentMessageOut,
    dependencies=[scoped("conversations")],
    summary="Reply to the customer (claims the conversation if nobody has)",
    responses=error_responses(400, 409, 413, s409="Another agent has it"),
)
def reply(kb: str, conversation_id: str, body: Reply, kbs: KnowledgeBasesDep, services: ServicesDep) -> AgentMessageOut:
    store = _store(kbs.store)
    handoff = store.handoff(kb, conversation_id)
    if handoff is None:
        raise NotFound(f"Conversation {conversation_id!r} was never handed off in knowledge base {kb!r}")
    if handoff.state != "claimed" or handoff.agent != body.agent:
        store.set_handoff(kb, conversation_id, "claimed", body.agent)  # Conflict when another agent has it
    if services.channels is not None:  # a conversation on Slack, e-mail, ...: the reply is posted there too
        services.channels.agent_reply(kb, conversation_id, body.text)  # QueueFull (503) before anything is stored
    return AgentMessageOut.of(store.add_agent_message(kb, conversation_id, body.agent, body.text))


@router.post(
    "/kbs/{kb}/handoffs/{conversation_id}/resolve",
    response_model=HandoffOut,
    dependencies=[scoped("conversations")],
    summary="Done: the bot answers in this conversation again",
)
def resolve(kb: str, conversation_id: str, kbs: KnowledgeBasesDep) -> HandoffOut:
    store = _store(kbs.store)
    current = store.handoff(kb, conversation_id)
    return HandoffOut.of(store.set_handoff(kb, conversation_id, "resolved", current.agent if current else None))


def _updates(store: ConversationStore, kb: str, conversation_id: str, after: str | None) -> AgentUpdates:
    handoff = store.handoff(kb, conversation_id)
    messages = store.agent_messages(kb, conversation_id, date_param(after, "after"))
    return AgentUpdates(
        state=handoff.state if handoff else None,
        agent=handoff.agent if handoff else None,
        messages=[AgentMessageOut.of(m) for m in messages],
    )


@router.get(
    "/kbs/{kb}/conversations/{conversation_id}/agent",
    response_model=AgentUpdates,
    dependencies=[scoped("chat")],
    summary="For a chat client: the handoff's state and the agent's replies (after a time)",
)
def kb_agent_updates(
    kb: str,
    conversation_id: str,
    kbs: KnowledgeBasesDep,
    after: str | None = Query(None, json_schema_extra=DATE_SCHEMA),
) -> AgentUpdates:
    kbs.info(kb)
    return _updates(_store(kbs.store), kb, conversation_id, after)


@public.get(
    "/chat/{conversation_id}/agent",
    response_model=AgentUpdates,
    summary="For the widget: the handoff's state and the agent's replies in a conversation of the default KB",
    description="Open like /chat, so `message_id` (of any answer given in the conversation) proves the caller took "
    "part in it: a conversation id chosen by a client may be guessed, a message id is not.",
)
def agent_updates(
    conversation_id: str,
    services: ServicesDep,
    message_id: Annotated[str, Query(min_length=1, max_length=128, description="An answer's message_id")],
    after: str | None = Query(None, json_schema_extra=DATE_SCHEMA),
) -> AgentUpdates:
    chat = services.chat_for(None)
    store = _store(chat.store)
    turn = store.get_message(message_id)
    if turn is None or turn.conversation_id != conversation_id or turn.kb_id != chat.kb_id:
        raise NotFound(f"No conversation {conversation_id!r} with a message {message_id!r}")
    return _updates(store, chat.kb_id, conversation_id, after)
