"""The prompt that asks a language model to make a follow-up question standalone."""

from __future__ import annotations

from collections.abc import Sequence

REWRITE_SYSTEM = (
    "Rewrite the customer's last message into one standalone question that can be understood without the "
    "conversation. Keep the customer's language. Output only the question."
)


def rewrite_messages(question: str, turns: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """Chat messages asking an LLM for the standalone question; `turns` are (question, answer) pairs."""
    history = "\n".join(f"Customer: {q}\nAssistant: {a}" for q, a in turns[-4:])
    return [
        {"role": "system", "content": REWRITE_SYSTEM},
        {"role": "user", "content": f"Conversation:\n{history}\n\nLast message: {question}\n\nStandalone question:"},
    ]
