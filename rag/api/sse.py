"""Server-Sent Events: one response shape, one error event, for /chat and /v1/chat/completions."""

from __future__ import annotations

import json
from typing import Any, Iterator

from fastapi.responses import StreamingResponse

from rag.core.errors import GeneratorTimeout, RagError


def sse_response(events: Iterator[bytes]) -> StreamingResponse:
    # no-cache and no proxy buffering: each event must reach the customer as it is written
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def sse_event(data: Any, event: str | None = None) -> bytes:
    """One event: `data` as JSON (or as it is, for a str such as "[DONE]"), named when `event` is given."""
    body = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "").encode() + f"data: {body}\n\n".encode("utf-8")


def error_payload(exc: RagError) -> dict[str, Any]:
    """The error body sent when the language model fails after the stream has started."""
    kind = "llm_timeout" if isinstance(exc, GeneratorTimeout) else "llm_unavailable"
    return {"error": {"type": kind, "message": str(exc)}}
