"""What routes ask for, declared once as `Annotated` aliases; tests hand `create_app` ready services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rag.chat.service import ChatService
from rag.core.settings import Settings
from rag.wiring import Services


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_chat_service(request: Request) -> ChatService:
    return request.app.state.services.chat


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServicesDep = Annotated[Services, Depends(get_services)]
ChatDep = Annotated[ChatService, Depends(get_chat_service)]
