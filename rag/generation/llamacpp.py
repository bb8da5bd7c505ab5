"""An in-process GGUF model through llama-cpp-python: answers with no server and no network."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

from rag.core.errors import ConfigurationError, GenerationError
from rag.generation.protocol import GenerationRequest
from rag.core.types import Usage


class LlamaCppGenerator:
    needs_prompt = True

    def __init__(self, model_path: Path | str, *, context_window: int = 4096, threads: int | None = None,
                 temperature: float = 0.1, max_tokens: int = 512):
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
            for event in self.llm.create_chat_completion(
                messages=request.prompt.messages,  # type: ignore[arg-type]
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                stream=True,
            ):
                text = event["choices"][0]["delta"].get("content")  # type: ignore[index]
                if text:
                    completion_tokens += 1
                    yield text
        # llama.cpp streams one token per event
        yield Usage(request.prompt.prompt_tokens, completion_tokens, estimated=True)
