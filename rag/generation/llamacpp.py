"""An in-process GGUF model through llama-cpp-python: answers with no server and no network."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

from rag.core.errors import ConfigurationError, GenerationError
from rag.core.types import Usage
from rag.generation.protocol import GenerationRequest

if TYPE_CHECKING:
    from llama_cpp.llama_types import (
        ChatCompletionRequestMessage,
        ChatCompletionStreamResponseDelta,
        CreateChatCompletionStreamResponse,
    )


class LlamaCppGenerator:
    needs_prompt = True

    def __init__(
        self,
        model_path: Path | str,
        *,
        context_window: int = 4096,
        threads: int | None = None,
        temperature: float = 0.1,
        max_tokens: int = 512,
    ):
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ConfigurationError(
                "The llamacpp generator needs llama-cpp-python - `pip install 'rag-support-bot[llamacpp]'`"
            ) from exc
        path = Path(model_path)
        if not path.is_file():
            raise ConfigurationError(f"GGUF model not found at {path} - set RAG_LLAMACPP_MODEL_PATH to a .gguf file")
        self.name = f"llamacpp:{path.stem}"
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.llm = Llama(model_path=str(path), n_ctx=context_window, n_threads=threads, verbose=False)
        self._lock = threading.Lock()  # one llama context: one generation at a time

    def stream(self, request: GenerationRequest) -> Iterator[str | Usage]:
        if request.prompt is None:
            raise GenerationError("the llamacpp generator needs a prompt")
        completion_tokens = 0
        with self._lock:
            # stream=True: the call returns an iterator of chunks (its annotation is the union with a whole reply)
            for event in cast(
                "Iterator[CreateChatCompletionStreamResponse]",
                self.llm.create_chat_completion(
                    # plain role/content dicts, which is what the TypedDicts describe
                    messages=cast("list[ChatCompletionRequestMessage]", request.prompt.messages),
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                    stream=True,
                ),
            ):
                # a delta is either empty or a ChatCompletionStreamResponseDelta: .get covers both
                delta = cast("ChatCompletionStreamResponseDelta", event["choices"][0]["delta"])
                text = delta.get("content")
                if text:
                    completion_tokens += 1
                    yield text
        # llama.cpp streams one token per event
        yield Usage(request.prompt.prompt_tokens, completion_tokens, estimated=True)
