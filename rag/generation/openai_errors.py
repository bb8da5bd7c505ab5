"""The one place where the `openai` client's exceptions become the project's (rag.core.errors)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import openai

from rag.core.errors import ContextOverflow, GenerationError, GeneratorTimeout, GeneratorUnavailable

_CONTEXT_ERROR = re.compile(r"context|too long|exceed|maximum.*tokens", re.IGNORECASE)

# First match wins: APITimeoutError is an APIConnectionError, and every status error an APIError.
# Each message follows "The language model at <server> ...".
_TRANSLATIONS: list[tuple[type[openai.APIError], type[GenerationError], str]] = [
    (openai.APITimeoutError, GeneratorTimeout, "did not answer in time - try again, or raise RAG_LLM_TIMEOUT"),
    (openai.APIConnectionError, GeneratorUnavailable, "cannot be reached ({exc}) - is the server running?"),
    (openai.AuthenticationError, GeneratorUnavailable, "refused the API key - check RAG_LLM_API_KEY"),
    (openai.NotFoundError, GeneratorUnavailable, "has no model {model!r} - check RAG_LLM_MODEL"),
    (openai.BadRequestError, GeneratorUnavailable, "rejected the request: {exc.message}"),
    (openai.APIStatusError, GeneratorUnavailable, "answered HTTP {exc.status_code}: {exc.message}"),
    (openai.APIError, GeneratorUnavailable, "failed: {exc}"),
]


@contextmanager
def translated_openai_errors(where: str, model: str, doing: str = "") -> Iterator[None]:
    """Raise GeneratorTimeout, ContextOverflow or GeneratorUnavailable for whatever the client raises inside.

    `where` names the server in messages; `doing` prefixes them (e.g. "query rewriting failed: ")."""
    try:
        yield
    except openai.APIError as exc:
        raise translate(exc, where, model, doing) from exc


def translate(exc: openai.APIError, where: str, model: str, doing: str = "") -> GenerationError:
    """The project's error for one of the client's."""
    if isinstance(exc, openai.BadRequestError) and _CONTEXT_ERROR.search(str(exc.message)):
        return ContextOverflow(
            f"{doing}The prompt is too long for the model at {where}: {exc.message} - lower RAG_LLM_CONTEXT_WINDOW"
        )
    for foreign, ours, message in _TRANSLATIONS:
        if isinstance(exc, foreign):
            return ours(f"{doing}The language model at {where} " + message.format(exc=exc, model=model))
    raise AssertionError("openai.APIError is the last row of the table")  # pragma: no cover
