"""Dependencies routes ask for; tests override `get_settings` or hand `create_app` a ready service."""

from __future__ import annotations

from fastapi import Request

from rag.chat import ChatService
from rag.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_chat_service(request: Request) -> ChatService:
    return request.app.state.chat
