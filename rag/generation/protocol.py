"""What a generator is, and what some generators can do besides.

Generator       writes the answer from numbered passages: text deltas, then at most one `Usage`
QueryRewriter   makes a follow-up question standalone (a capability: the openai generator has it)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from rag.core.types import Passage, Usage
from rag.generation.prompting import Prompt


@dataclass
class GenerationRequest:
    question: str
    language: str
    passages: list[Passage]  # numbered from 1 in this order
    prompt: Prompt | None = None  # built only for generators with `needs_prompt`
    own_words: str | None = None  # the customer's question, when `question` is its standalone rewrite


class Generator(Protocol):
    name: str
    needs_prompt: bool

    def stream(self, request: GenerationRequest) -> Iterator[str | Usage]:
        """Text deltas of the answer, then optionally one Usage."""
        ...


@runtime_checkable
class QueryRewriter(Protocol):
    def rewrite(self, question: str, turns: Sequence[tuple[str, str]]) -> str:
        """`question` made standalone given the earlier (question, answer) turns; "" when it cannot."""
        ...
