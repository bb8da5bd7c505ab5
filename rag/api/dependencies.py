"""What routes ask for, declared once as `Annotated` aliases; tests hand `create_app` ready services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rag.channels.registry import Channels
from rag.chat.service import ChatService
from rag.core.errors import ConfigurationError
from rag.core.settings import Settings
from rag.jobs.runner import JobRunner
from rag.wiring import KnowledgeBases, Services


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_chat_service(request: Request) -> ChatService:
    """The default knowledge base's chat service (the one /chat answers from)."""
    return request.app.state.services.chat_for(None)


def get_knowledge_bases(request: Request) -> KnowledgeBases:
    kbs = request.app.state.services.kbs
    if kbs is None:
        raise ConfigurationError("knowledge-base management is not available in this server")
    return kbs


def get_jobs(request: Request) -> JobRunner:
    jobs = request.app.state.services.jobs
    if jobs is None:
        raise ConfigurationError("ingest jobs run only in a server (`rag serve`)")
    return jobs


def get_channels(request: Request) -> Channels:
    channels = request.app.state.services.channels
    if channels is None:
        raise ConfigurationError("messaging channels run only in a server (`rag serve`) with a conversation store")
    return channels


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServicesDep = Annotated[Services, Depends(get_services)]
ChatDep = Annotated[ChatService, Depends(get_chat_service)]
KnowledgeBasesDep = Annotated[KnowledgeBases, Depends(get_knowledge_bases)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
ChannelsDep = Annotated[Channels, Depends(get_channels)]
