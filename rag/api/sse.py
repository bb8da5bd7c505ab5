"""Server-Sent Events: one response shape, one error event, for /chat and /v1/chat/completions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi.responses import StreamingResponse

from rag.api.errors import error_kind
from rag.core.errors import RagError


def sse_response(events: Iterator[bytes]) -> StreamingResponse:
    # no-cache and no proxy buffering: each event must reach the customer as it is written
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


def sse_event(data: Any, event: str | None = None) -> bytes:
    """One event: `data` as JSON (or as it is, for a str such as "[DONE]"), named when `event` is given."""
    body = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "").encode() + f"data: {body}\n\n".encode()


def error_payload(exc: RagError) -> dict[str, Any]:
    """The error body sent when something fails after the stream has started (the language model, mostly):
    the same `type` the response would have had before it (rag.api.errors)."""
    return {"error": {"type": error_kind(exc)[1], "message": str(exc)}}
