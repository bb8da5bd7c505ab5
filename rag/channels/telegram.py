"""Telegram (Bot API webhook): setWebhook's url is POST /channels/{kb}/telegram, with a secret_token that
Telegram sends back in X-Telegram-Bot-Api-Secret-Token on every update (anything else is refused).

A text message is a question (one conversation per chat); the reply answers it with 👍 / 👎 buttons under it,
and a press of one rates the reply. "/start" (what a customer's first tap sends) and "/help" get a greeting in
the webhook's own HTTP answer - Telegram lets a webhook answer with one Bot API call - so they cost no search
and no outbound call; the button presses are acknowledged the same way (answerCallbackQuery).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import httpx

from rag.channels.base import (
    ChannelDeliveryError,
    ChannelRequestInvalid,
    ChannelUnauthorized,
    Inbound,
    Reaction,
    Reply,
    WebhookRequest,
    WebhookResponse,
)
from rag.channels.formatting import split_message, utf16_len
from rag.channels.outbound import PlatformClient, json_body
from rag.core.settings import Settings

MAX_TEXT = 4096  # sendMessage's limit, in UTF-16 code units
MAX_CALLBACK_DATA = 64  # bytes
_GREETING = {
    "en": "Hello! Ask me anything about our products, orders, shipping or returns and I'll answer from our help pages.",
    "zh": "您好！请直接提问（商品、订单、配送、退换货等），我会根据帮助文档为您解答。",
}
_THANKS = {"en": "Thanks for your feedback!", "zh": "感谢您的反馈！"}
_GREETED_COMMANDS = ("/start", "/help")


def retry_hint(response: httpx.Response) -> float | None:
    """Telegram's "slow down": error_code 429 with `parameters.retry_after` seconds in the body."""
    if response.status_code != 429 and response.status_code < 400:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    parameters = data.get("parameters") if isinstance(data, dict) else None
    after = parameters.get("retry_after") if isinstance(parameters, dict) else None
    return float(after) if isinstance(after, int | float) and not isinstance(after, bool) else None


def feedback_markup(message_id: str) -> dict[str, Any]:
    """The 👍 / 👎 buttons under an answer; their data names the stored answer they rate.

    >>> feedback_markup("m1")["inline_keyboard"][0][1]
    {'text': '👎', 'callback_data': 'down:m1'}
    """
    buttons = []
    for emoji, rating in (("👍", "up"), ("👎", "down")):
        data = f"{rating}:{message_id}"
        buttons.append({"text": emoji, "callback_data": data if len(data.encode()) <= MAX_CALLBACK_DATA else rating})
    return {"inline_keyboard": [buttons]}


class TelegramChannel:
    """A knowledge base's Telegram bot: checks and reads webhook updates, sends replies through the Bot API."""

    name = "telegram"

    @staticmethod
    def configured(settings: Settings) -> bool:
        return settings.telegram_bot_token is not None and settings.telegram_secret_token is not None

    def __init__(self, kb_id: str, settings: Settings, *, clock: Callable[[], float] = time.time):
        if settings.telegram_bot_token is None or settings.telegram_secret_token is None:
            raise ValueError(
                "Telegram needs RAG_TELEGRAM_BOT_TOKEN (from @BotFather) and RAG_TELEGRAM_SECRET_TOKEN "
                "(the secret_token given to setWebhook)"
            )
        self.kb_id = kb_id
        self.clock = clock  # Telegram signs nothing with a time: kept for the common constructor
        self.api_url = settings.telegram_api_url.rstrip("/")
        self._token = settings.telegram_bot_token.get_secret_value()
        self._secret = settings.telegram_secret_token.get_secret_value()
        self.client = PlatformClient(
            "telegram",
            retries=settings.channel_send_retries,
            max_wait=settings.channel_max_retry_wait,
            secrets=[self._token, self._secret],
            retry_hint=retry_hint,
        )

    # ---- inbound ------------------------------------------------------------------------------------------
    def receive(self, request: WebhookRequest) -> WebhookResponse:
        """Check the secret-token header (ChannelUnauthorized), then read the update (ChannelRequestInvalid)."""
        sent = request.headers.get("x-telegram-bot-api-secret-token", "")
        if not hmac.compare_digest(sent.encode(), self._secret.encode()):
            raise ChannelUnauthorized(
                "telegram: wrong or missing X-Telegram-Bot-Api-Secret-Token - call setWebhook with "
                "secret_token=RAG_TELEGRAM_SECRET_TOKEN"
            )
        try:
            update = json.loads(request.body)
        except ValueError:
            raise ChannelRequestInvalid("telegram: the update is not JSON") from None
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            raise ChannelRequestInvalid("telegram: the update has no update_id")
        event_id = str(update["update_id"])
        if isinstance(update.get("message"), dict):
            return self._message(update["message"], event_id)
        if isinstance(update.get("callback_query"), dict):
            return self._callback(update["callback_query"], event_id)
        return WebhookResponse(200)  # edits, channel posts, members joining: nothing to answer

    def _message(self, message: Mapping[str, Any], event_id: str) -> WebhookResponse:
        sender, chat, text = message.get("from"), message.get("chat"), message.get("text")
        if not isinstance(sender, dict) or sender.get("is_bot") or not isinstance(chat, dict):
            return WebhookResponse(200)
        if not isinstance(text, str) or not text.strip() or not isinstance(chat.get("id"), int):
            return WebhookResponse(200)  # a sticker, a photo without a caption: no question to answer
        if text.split(maxsplit=1)[0].split("@")[0] in _GREETED_COMMANDS:
            # Answered here, not through the bridge, so without its dedupe of re-deliveries: an update Telegram
            # sends again (our answer was lost or late) is greeted twice. Harmless, and it keeps the greeting free.
            return _call("sendMessage", chat_id=chat["id"], text=_GREETING[_language(sender)])
        inbound = Inbound(
            channel=self.name,
            kb_id=self.kb_id,
            event_id=event_id,
            thread=str(chat["id"]),
            user=str(sender.get("id", "")),
            text=text.strip(),
            address={"chat_id": chat["id"], "reply_to_message_id": message.get("message_id")},
        )
        return WebhookResponse(200, events=[inbound])

    def _callback(self, query: Mapping[str, Any], event_id: str) -> WebhookResponse:
        rating, message = _rating(query.get("data")), query.get("message")
        if rating is None or not isinstance(message, dict) or not isinstance(message.get("chat"), dict):
            # a button not ours, or on a message gone: stop the client's spinner all the same
            return _call("answerCallbackQuery", callback_query_id=str(query.get("id", "")))
        # As the greeting: a re-delivered press is thanked twice (harmless); its rating is deduplicated by the
        # bridge like any event.
        thanks = _THANKS[_language(query.get("from"))]
        response = _call("answerCallbackQuery", callback_query_id=str(query.get("id", "")), text=thanks)
        rated = f"{message['chat'].get('id')}:{message.get('message_id')}"  # what send() returned for it
        response.events.append(
            Reaction(self.name, self.kb_id, event_id, rated, rating, {"chat_id": message["chat"].get("id")})
        )
        return response

    # ---- outbound -----------------------------------------------------------------------------------------
    def send(self, address: Mapping[str, Any], reply: Reply) -> str | None:
        """Send `reply` to the chat at `address`, answering the customer's message; "<chat_id>:<message_id>" of
        the (last) message sent, the one that carries the rating buttons."""
        chat_id = address["chat_id"]
        parts = split_message(reply.text, MAX_TEXT, utf16_len)
        posted = None
        for n, part in enumerate(parts):
            message: dict[str, Any] = {"chat_id": chat_id, "text": part, "link_preview_options": {"is_disabled": True}}
            if n == 0 and address.get("reply_to_message_id") is not None:
                # Still sent when the question was deleted meanwhile.
                message["reply_parameters"] = {
                    "message_id": address["reply_to_message_id"],
                    "allow_sending_without_reply": True,
                }
            if n == len(parts) - 1 and reply.feedback and reply.answer is not None:
                message["reply_markup"] = feedback_markup(reply.answer.message_id)
            posted = self._send_message(message)
        return f"{chat_id}:{posted}" if posted is not None else None

    def _send_message(self, message: Mapping[str, Any]) -> int | None:
        response = self.client.call(
            "POST", f"{self.api_url}/bot{self._token}/sendMessage", json=message, what="sendMessage"
        )
        data = json_body(response, self.name, "sendMessage")
        result = data.get("result")
        if not data.get("ok") or not isinstance(result, dict):
            raise ChannelDeliveryError(
                f"telegram: sendMessage refused the reply: {data.get('description', 'no reason given')}"
            )
        message_id = result.get("message_id")
        return message_id if isinstance(message_id, int) else None

    def close(self) -> None:
        self.client.close()


def _call(method: str, **parameters: Any) -> WebhookResponse:
    """A webhook answer that makes one Bot API call (Telegram does not say whether it succeeded)."""
    body = json.dumps({"method": method, **parameters}, ensure_ascii=False).encode()
    return WebhookResponse(200, body, "application/json")


def _rating(data: object) -> Literal["up", "down"] | None:
    """The rating a button's callback_data carries ("up:<answer id>"), None for a button not ours."""
    if not isinstance(data, str):
        return None
    head = data.split(":", 1)[0]
    return "up" if head == "up" else "down" if head == "down" else None


def _language(user: object) -> str:
    """ "zh" for a customer whose Telegram speaks Chinese, else "en" (greetings and thanks)."""
    code = user.get("language_code") if isinstance(user, dict) else None
    return "zh" if isinstance(code, str) and code.lower().startswith("zh") else "en"
