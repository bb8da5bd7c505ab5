"""Any OpenAI-compatible chat server (OpenAI, vLLM, Ollama, llama.cpp) through the official `openai` client."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from rag.core.errors import ConfigurationError, GenerationError
from rag.core.types import Usage
from rag.generation.protocol import GenerationRequest
from rag.generation.rewriting import rewrite_messages

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam


class OpenAIGenerator:
    """A Generator, and a QueryRewriter: follow-up questions are made standalone by the same model."""

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
        self.where = base_url or "the OpenAI API"
        # local servers accept any key, but the client insists on one
        self.client = openai.OpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=max_retries
        )
        self._usage_option = True

    def stream(self, request: GenerationRequest) -> Iterator[str | Usage]:
        from rag.generation.openai_errors import translated_openai_errors

        if request.prompt is None:
            raise GenerationError("the openai generator needs a prompt")
        with translated_openai_errors(self.where, self.model):
            for event in self._events(request.prompt.messages):
                if getattr(event, "usage", None):
                    yield Usage(event.usage.prompt_tokens or 0, event.usage.completion_tokens or 0)
                for choice in event.choices or []:
                    text = getattr(choice.delta, "content", None)
                    if text:
                        yield text

    def rewrite(self, question: str, turns: Sequence[tuple[str, str]]) -> str:
        """A follow-up question made standalone by the model (see rag.chat.followups)."""
        from rag.generation.openai_errors import translated_openai_errors

        with translated_openai_errors(self.where, self.model, doing="query rewriting failed: "):
            reply = self.client.chat.completions.create(
                # plain role/content dicts, which is what the TypedDicts describe
                model=self.model,
                messages=cast("list[ChatCompletionMessageParam]", rewrite_messages(question, turns)),
                temperature=0.0,
                max_tokens=96,
            )
        text = (reply.choices[0].message.content or "").strip() if reply.choices else ""
        return text.splitlines()[0].strip() if text else ""

    def _events(self, messages: list[dict[str, str]]) -> Any:
        import openai

        try:
            return self._create(messages, include_usage=self._usage_option)
        except (openai.BadRequestError, openai.UnprocessableEntityError):
            if not self._usage_option:
                raise
            self._usage_option = False  # an older server that rejects stream_options
            return self._create(messages, include_usage=False)

    def _create(self, messages: list[dict[str, str]], include_usage: bool) -> Any:
        extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
        return self.client.chat.completions.create(
            model=self.model,
            # plain role/content dicts, which is what the TypedDicts describe
            messages=cast("list[ChatCompletionMessageParam]", messages),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stream=True,
            **extra,
        )
