"""The one place where the `openai` client's exceptions become the project's (rag.core.errors)."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

import openai

from rag.core.errors import ContextOverflow, GeneratorTimeout, GeneratorUnavailable

_CONTEXT_ERROR = re.compile(r"context|too long|exceed|maximum.*tokens", re.IGNORECASE)


@contextmanager
def translated_openai_errors(where: str, model: str, doing: str = "") -> Iterator[None]:
    """Raise GeneratorTimeout, ContextOverflow or GeneratorUnavailable for whatever the client raises inside.

    `where` names the server in messages; `doing` prefixes them (e.g. "query rewriting failed: ")."""
    try:
        yield
    except openai.APITimeoutError as exc:
        raise GeneratorTimeout(
            f"{doing}The language model at {where} did not answer in time - try again, or raise RAG_LLM_TIMEOUT"
        ) from exc
    except openai.APIConnectionError as exc:
        raise GeneratorUnavailable(
            f"{doing}The language model at {where} cannot be reached ({exc}) - is the server running?"
        ) from exc
    except openai.AuthenticationError as exc:
        raise GeneratorUnavailable(
            f"{doing}The language model at {where} refused the API key - check RAG_LLM_API_KEY"
        ) from exc
    except openai.NotFoundError as exc:
        raise GeneratorUnavailable(
            f"{doing}The language model at {where} has no model {model!r} - check RAG_LLM_MODEL"
        ) from exc
    except openai.BadRequestError as exc:
        if _CONTEXT_ERROR.search(str(exc.message)):
            raise ContextOverflow(
                f"{doing}The prompt is too long for the model at {where}: {exc.message} - lower RAG_LLM_CONTEXT_WINDOW"
            ) from exc
        raise GeneratorUnavailable(f"{doing}The language model at {where} rejected the request: {exc.message}") from exc
    except openai.APIStatusError as exc:
        raise GeneratorUnavailable(
            f"{doing}The language model at {where} answered HTTP {exc.status_code}: {exc.message}"
        ) from exc
    except openai.APIError as exc:
        raise GeneratorUnavailable(f"{doing}The language model at {where} failed: {exc}") from exc
