"""Any OpenAI-compatible chat server (OpenAI, vLLM, Ollama, llama.cpp) through the official `openai` client."""

from __future__ import annotations

import re
from typing import Iterator

from rag.errors import ConfigurationError, ContextOverflow, GenerationError, GeneratorTimeout, GeneratorUnavailable
from rag.generators import GenerationRequest
from rag.types import Usage


_CONTEXT_ERROR = re.compile(r"context|too long|exceed|maximum.*tokens", re.IGNORECASE)


class OpenAIGenerator:
    needs_prompt = True

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        temperature: float = 0.1,
        max_tokens: int = 512,
    ):
        import openai

        if not base_url and not api_key:
            raise ConfigurationError(
                "The openai generator needs RAG_LLM_API_KEY (for OpenAI) or RAG_LLM_BASE_URL "
                "(for a local server such as vLLM, Ollama or llama.cpp, e.g. http://127.0.0.1:8080/v1)"
            )
        self.name = f"openai:{model}"
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.base_url = base_url
        # local servers accept any key, but the client insists on one
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=max_retries)
        self._usage_option = True

    def stream(self, request: GenerationRequest) -> Iterator[str | Usage]:
        import openai

        if request.prompt is None:
            raise GenerationError("the openai generator needs a prompt")
        where = self.base_url or "the OpenAI API"
        try:
            try:
                events = self._create(request, include_usage=self._usage_option)
            except (openai.BadRequestError, openai.UnprocessableEntityError):
                if not self._usage_option:
                    raise
                self._usage_option = False  # an older server that rejects stream_options
                events = self._create(request, include_usage=False)
            for event in events:
                if getattr(event, "usage", None):
                    yield Usage(event.usage.prompt_tokens or 0, event.usage.completion_tokens or 0)
                for choice in event.choices or []:
                    text = getattr(choice.delta, "content", None)
                    if text:
                        yield text
        except openai.APITimeoutError as exc:
            raise GeneratorTimeout(f"The language model at {where} did not answer in time - try again, or raise RAG_LLM_TIMEOUT") from exc
        except openai.APIConnectionError as exc:
            raise GeneratorUnavailable(f"The language model at {where} cannot be reached ({exc}) - is the server running?") from exc
        except openai.AuthenticationError as exc:
            raise GeneratorUnavailable(f"The language model at {where} refused the API key - check RAG_LLM_API_KEY") from exc
        except openai.NotFoundError as exc:
            raise GeneratorUnavailable(f"The language model at {where} has no model {self.model!r} - check RAG_LLM_MODEL") from exc
        except openai.BadRequestError as exc:
            if _CONTEXT_ERROR.search(str(exc.message)):
                raise ContextOverflow(f"The prompt is too long for the model at {where}: {exc.message} - lower RAG_LLM_CONTEXT_WINDOW") from exc
            raise GeneratorUnavailable(f"The language model at {where} rejected the request: {exc.message}") from exc
        except openai.APIStatusError as exc:
            raise GeneratorUnavailable(f"The language model at {where} answered HTTP {exc.status_code}: {exc.message}") from exc

    def rewrite(self, question: str, turns: list[tuple[str, str]]) -> str:
        """A follow-up question made standalone by the model (see rag.followups)."""
        import openai

        from rag.followups import rewrite_messages

        try:
            reply = self.client.chat.completions.create(
                model=self.model, messages=rewrite_messages(question, turns), temperature=0.0, max_tokens=96,
            )
        except openai.APIError as exc:
            raise GeneratorUnavailable(f"query rewriting failed: {exc}") from exc
        text = (reply.choices[0].message.content or "").strip() if reply.choices else ""
        return text.splitlines()[0].strip() if text else ""

    def _create(self, request: GenerationRequest, include_usage: bool):
        extra = {"stream_options": {"include_usage": True}} if include_usage else {}
        return self.client.chat.completions.create(
            model=self.model,
            messages=request.prompt.messages,  # type: ignore[union-attr]
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stream=True,
            **extra,
        )
