"""Generators write the answer. One small interface, three implementations:

    extractive   no model call: the most relevant sentences of the top passages, each cited (default)
    openai       any OpenAI-compatible server through the official `openai` client
    llamacpp     an in-process GGUF model (extra `[llamacpp]`), fully offline

`stream()` yields text deltas and, last, at most one `Usage`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

from rag.errors import ConfigurationError
from rag.prompting import Prompt
from rag.settings import Settings
from rag.types import Passage, Usage


@dataclass
class GenerationRequest:
    question: str
    language: str
    passages: list[Passage]  # numbered from 1 in this order
    prompt: Prompt | None = None  # built only for generators with `needs_prompt`


class Generator(Protocol):
    name: str
    needs_prompt: bool

    def stream(self, request: GenerationRequest) -> Iterator[str | Usage]:
        """Text deltas of the answer, then optionally one Usage."""
        ...


def create_generator(settings: Settings) -> Generator:
    """The generator the settings ask for (`RAG_GENERATOR`, default: decided by what is configured)."""
    kind = settings.resolved_generator()
    if kind == "extractive":
        from rag.generators.extractive import ExtractiveGenerator

        return ExtractiveGenerator(max_sentences=settings.extractive_max_sentences)
    if kind == "openai":
        from rag.generators.openai_compatible import OpenAIGenerator

        return OpenAIGenerator(
            model=settings.llm_model,
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
        )
    if kind == "llamacpp":
        from rag.generators.llamacpp import LlamaCppGenerator

        if settings.llamacpp_model_path is None:
            raise ConfigurationError("RAG_GENERATOR=llamacpp needs RAG_LLAMACPP_MODEL_PATH=/path/to/model.gguf")
        return LlamaCppGenerator(
            settings.llamacpp_model_path,
            context_window=settings.llm_context_window,
            threads=settings.llamacpp_threads,
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
        )
    raise ConfigurationError(f"unknown generator {kind!r} - use extractive, openai or llamacpp")


__all__ = ["GenerationRequest", "Generator", "create_generator"]
