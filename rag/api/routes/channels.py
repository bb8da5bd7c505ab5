"""Webhooks of the messaging platforms: POST /channels/{kb}/{channel} (WeCom verifies its URL with a GET).

Each platform signs its deliveries its own way (rag.channels.<platform>); a delivery that does not check out gets
401 and no answer. Valid ones are acknowledged at once and answered in the background (rag.channels.bridge).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from rag.api.dependencies import ChannelsDep
from rag.api.schemas import error_responses
from rag.channels.base import WEBHOOK_CHANNELS, WebhookRequest

router = APIRouter(tags=["channels"])

_RESPONSES = error_responses(
    400,
    401,
    404,
    413,
    422,
    503,
    s400="A signed delivery that cannot be read",
    s401="Bad signature or token, or a stale timestamp: nothing is answered",
    s404="No such knowledge base, or it has no such channel configured",
    s503="Too many messages waiting, or no conversation store: the platform retries",
)


@router.post(
    "/channels/{kb}/{channel}",
    summary="A messaging platform's webhook (" + ", ".join(WEBHOOK_CHANNELS) + ")",
    description="Give this URL to the platform (README, Messaging channels). The body is the platform's own; "
    "the answer is what the platform expects (a URL-verification challenge, or an empty acknowledgement).",
    responses=_RESPONSES,
)
async def webhook(kb: str, channel: str, request: Request, channels: ChannelsDep) -> Response:
    return await _delivery(kb, channel, request, channels)


@router.get(
    "/channels/{kb}/{channel}",
    summary="A platform's check of its webhook URL (WeCom's echostr)",
    responses=_RESPONSES,
)
async def webhook_check(kb: str, channel: str, request: Request, channels: ChannelsDep) -> Response:
    return await _delivery(kb, channel, request, channels)


async def _delivery(kb: str, channel: str, request: Request, channels: ChannelsDep) -> Response:
    delivery = WebhookRequest(
        method=request.method,
        headers={name.lower(): value for name, value in request.headers.items()},
        query=dict(request.query_params),
        body=await request.body(),
        received_at=time.time(),
    )
    # checking a signature is quick, but recording the event id is a database write
    answer = await run_in_threadpool(channels.receive, kb, channel, delivery)
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)
