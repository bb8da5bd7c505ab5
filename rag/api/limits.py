"""Request body size limit as plain ASGI middleware: oversized bodies are refused with 413 before being read whole."""

from __future__ import annotations

import json
import re

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """`max_bytes` for every request but uploads (a POST to a path matching `upload_paths`), which may send up to
    `upload_bytes`."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, upload_bytes: int | None = None, upload_paths: re.Pattern | None = None
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes or max_bytes
        self.upload_paths = upload_paths

    def _message(self, limit: int, upload: bool) -> str:
        if upload:
            return f"Upload exceeds {limit} bytes (RAG_MAX_UPLOAD_BYTES) - send fewer or smaller files per request"
        return f"Request body exceeds {limit} bytes - send a shorter question"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = bool(
            self.upload_paths is not None
            and scope.get("method") == "POST"
            and self.upload_paths.fullmatch(scope.get("path", ""))
        )
        limit = self.upload_bytes if upload else self.max_bytes
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            message = self._message(limit, upload)
            body = json.dumps({"error": {"type": "body_too_large", "message": message}}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 413, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return

        received = 0

        async def limited_receive() -> Message:
            # chunked uploads carry no Content-Length: count as they arrive
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(status_code=413, detail=self._message(limit, upload))
            return message

        await self.app(scope, limited_receive, send)
