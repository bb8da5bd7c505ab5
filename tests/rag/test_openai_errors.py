"""The openai client's exceptions, translated in one place."""

from __future__ import annotations

import httpx
import openai
import pytest

from rag.core.errors import ContextOverflow, GeneratorTimeout, GeneratorUnavailable
from rag.generation.openai_errors import translate, translated_openai_errors

pytestmark = pytest.mark.unit
REQUEST = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


def status_error(cls: type[openai.APIStatusError], status: int, message: str) -> openai.APIStatusError:
    return cls(message, response=httpx.Response(status, request=REQUEST), body=None)


@pytest.mark.parametrize(
    "exc, expected, says",
    [
        (openai.APITimeoutError(request=REQUEST), GeneratorTimeout, "RAG_LLM_TIMEOUT"),
        (openai.APIConnectionError(request=REQUEST), GeneratorUnavailable, "is the server running"),
        (status_error(openai.AuthenticationError, 401, "bad key"), GeneratorUnavailable, "RAG_LLM_API_KEY"),
        (
            status_error(openai.NotFoundError, 404, "no such model"),
            GeneratorUnavailable,
            "no model 'm' - check RAG_LLM_MODEL",
        ),
        (
            status_error(openai.BadRequestError, 400, "maximum context length is 2048 tokens"),
            ContextOverflow,
            "RAG_LLM_CONTEXT_WINDOW",
        ),
        (
            status_error(openai.BadRequestError, 400, "temperature is invalid"),
            GeneratorUnavailable,
            "rejected the request: temperature is invalid",
        ),
        (status_error(openai.InternalServerError, 500, "boom"), GeneratorUnavailable, "answered HTTP 500: boom"),
    ],
)
def test_each_client_error_becomes_ours_and_says_what_to_do(exc, expected, says):
    ours = translate(exc, "http://llm", "m")
    assert type(ours) is expected and says in str(ours) and "http://llm" in str(ours)


def test_the_context_manager_chains_the_original_and_prefixes_what_was_being_done():
    with pytest.raises(GeneratorUnavailable, match="^query rewriting failed: The language model") as caught:
        with translated_openai_errors("http://llm", "m", doing="query rewriting failed: "):
            raise openai.APIConnectionError(request=REQUEST)
    assert isinstance(caught.value.__cause__, openai.APIConnectionError)
