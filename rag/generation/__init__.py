"""Generators write the answer. One small interface (`protocol`), three implementations:

    extractive          no model call: the most relevant sentences of the top passages, each cited (default)
    openai_compatible   any OpenAI-compatible server through the official `openai` client
    llamacpp            an in-process GGUF model (extra `[llamacpp]`), fully offline

and what they share: `prompting` (the prompt within the context window), `citations` ([n] markers),
`safety` (instructions planted in documents), `rewriting` (the standalone-question prompt),
`openai_errors` (the openai client's exceptions, translated).
"""

from rag.generation.protocol import GenerationRequest, Generator, QueryRewriter

__all__ = ["GenerationRequest", "Generator", "QueryRewriter"]
