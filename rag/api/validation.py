"""Checks that depend on settings (so pydantic cannot make them): each fails as the same 422 body that
schema validation gives, naming the field."""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError

from rag.core.settings import Settings


def problem(field: tuple[str | int, ...], message: str) -> dict[str, Any]:
    return {"loc": ("body", *field), "msg": message, "type": "value_error"}


def question_problems(question: str, settings: Settings, field: tuple[str | int, ...]) -> list[dict[str, Any]]:
    """An empty or over-long customer question."""
    if not question.strip():
        return [problem(field, "must not be empty")]
    if len(question) > settings.max_question_chars:
        return [problem(field, f"is {len(question)} characters; the limit is {settings.max_question_chars}")]
    return []


def raise_if(problems: list[dict[str, Any]]) -> None:
    if problems:
        raise RequestValidationError(problems)
