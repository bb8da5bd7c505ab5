"""Which channels each knowledge base has, built from its settings, and the long-running ones started.

    channels = Channels(settings, kbs, chat_for, store)     (rag.wiring builds it for `rag serve`)
    channels.start()          a Matrix bot per knowledge base that has one; the SMTP listener with RAG_EMAIL_LISTEN_PORT
    channels.receive(kb, name, request)     a webhook delivery (POST /channels/{kb}/{name})
    channels.agent_reply(kb, conversation_id, text)    a person's reply, posted where the conversation is
    channels.close()

Channel settings set in the environment serve only the default knowledge base; every other one has the channels
its own `settings` name (Settings.without_channels). A knowledge base whose channel settings change gets new
channel objects on the next delivery; its Matrix bot is restarted by `reconfigure(kb)`.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from rag.channels.base import WEBHOOK_CHANNELS, Sender, WebhookChannel, WebhookRequest, WebhookResponse
from rag.channels.bridge import ChannelBridge
from rag.chat.service import ChatService
from rag.conversations.store import ConversationStore
from rag.core.errors import NotFound
from rag.core.settings import CHANNEL_SETTINGS, Settings

log = logging.getLogger("rag.channels")

if TYPE_CHECKING:
    from rag.channels.mail import MailListener, MailSender
    from rag.channels.matrix import MatrixBot

# Each channel's module is imported when a knowledge base first uses it (their libraries load only then).
_CLASSES = {
    "slack": "rag.channels.slack:SlackChannel",
    "telegram": "rag.channels.telegram:TelegramChannel",
    "feishu": "rag.channels.feishu:FeishuChannel",
    "wecom": "rag.channels.wecom:WeComChannel",
    "matrix": "rag.channels.matrix:MatrixBot",
    "email": "rag.channels.mail:MailSender",
}


def channel_class(name: str) -> Any:
    """The class implementing channel `name` (one of rag.channels.base.CHANNELS)."""
    module, _, cls = _CLASSES[name].partition(":")
    return getattr(importlib.import_module(module), cls)


class KnowledgeBaseDirectory(Protocol):
    """What the registry needs to know of the knowledge bases (rag.wiring.KnowledgeBases has it)."""

    def ids(self) -> list[str]: ...

    def default_id(self) -> str: ...

    def overrides(self, kb_id: str) -> Mapping[str, Any]: ...


class Channels:
    def __init__(
        self,
        settings: Settings,
        kbs: KnowledgeBaseDirectory,
        chat_for: Callable[[str], ChatService],
        store: ConversationStore,
    ):
        self.settings = settings
        self.kbs = kbs
        self.bridge = ChannelBridge(
            chat_for,
            store,
            workers=settings.channel_workers,
            queue_size=settings.channel_queue_size,
            max_question_chars=settings.max_question_chars,
        )
        self._senders: dict[tuple[str, str], tuple[tuple[Any, ...], Sender]] = {}
        self._bots: dict[str, MatrixBot] = {}
        self._listener: MailListener | None = None
        self._lock = threading.RLock()

    # ---- settings ---------------------------------------------------------------------------------------
    def settings_for(self, kb_id: str) -> Settings:
        """The knowledge base's settings for its channels (NotFound for an unknown id)."""
        overrides = self.kbs.overrides(kb_id)
        base = self.settings if kb_id == self._default_id() else self.settings.without_channels()
        return base.with_overrides(overrides)

    def configured(self, kb_id: str) -> list[str]:
        """The channels this knowledge base has (for the README's check and `rag kb list`)."""
        settings = self.settings_for(kb_id)
        return [name for name in _CLASSES if channel_class(name).configured(settings)]

    # ---- webhooks ---------------------------------------------------------------------------------------
    def receive(self, kb_id: str, name: str, request: WebhookRequest) -> WebhookResponse:
        """Check and acknowledge a platform's delivery; its messages are answered in the background."""
        channel = self.webhook(kb_id, name)
        response = channel.receive(request)
        for event in response.events:
            self.bridge.accept(event, channel)
        return response

    def webhook(self, kb_id: str, name: str) -> WebhookChannel:
        if name not in WEBHOOK_CHANNELS:
            raise NotFound(f"No channel {name!r} - webhooks are {', '.join(WEBHOOK_CHANNELS)}")
        sender = self.sender(kb_id, name)
        if sender is None:
            raise NotFound(f"Knowledge base {kb_id!r} has no {name} channel - set its {name}_* settings")
        return sender  # type: ignore[return-value]  # the webhook classes are WebhookChannels

    def sender(self, kb_id: str, name: str) -> Sender | None:
        """The knowledge base's sender for channel `name`, built anew when its settings changed; None when the
        knowledge base does not have that channel."""
        settings = self.settings_for(kb_id)
        fingerprint = tuple(_plain(getattr(settings, field)) for field in CHANNEL_SETTINGS if field.startswith(name))
        with self._lock:
            if name == "matrix":
                return self._bots.get(kb_id)
            cached = self._senders.get((kb_id, name))
            if cached is not None and cached[0] == fingerprint:
                return cached[1]
            cls = channel_class(name)
            if not cls.configured(settings):
                return None
            if cached is not None:
                cached[1].close()
            sender: Sender = cls(kb_id, settings)
            self._senders[(kb_id, name)] = (fingerprint, sender)
            return sender

    # ---- a person's replies -------------------------------------------------------------------------------
    def agent_reply(self, kb_id: str, conversation_id: str, text: str) -> bool:
        """Post an agent's reply on the platform of the conversation; False when it has none (the widget's)."""
        return self.bridge.agent_reply(kb_id, conversation_id, text, lambda name: self.sender(kb_id, name))

    # ---- long-running channels ----------------------------------------------------------------------------
    def start(self) -> None:
        """A Matrix bot for each knowledge base that has one, and the SMTP listener when a port is set."""
        for kb_id in self.kbs.ids():
            self.reconfigure(kb_id)
        if self.settings.email_listen_port is not None:
            from rag.channels.mail import MailListener

            self._listener = MailListener(
                self.settings.email_listen_host,
                self.settings.email_listen_port,
                self.settings.email_max_bytes,
                self._mail_route,
                self.bridge,
            )
            self._listener.start()
            log.info(
                "receiving support mail on %s:%s", self.settings.email_listen_host, self.settings.email_listen_port
            )

    def reconfigure(self, kb_id: str) -> None:
        """(Re)start or stop the knowledge base's Matrix bot after its settings changed (or it was deleted)."""
        try:
            settings: Settings | None = self.settings_for(kb_id)
        except NotFound:
            settings = None
        with self._lock:
            old = self._bots.pop(kb_id, None)
        if old is not None:
            old.close()  # outside the lock: stopping waits out the bot's current /sync poll (seconds)
        with self._lock:
            if settings is not None and channel_class("matrix").configured(settings):
                bot = channel_class("matrix")(kb_id, settings, self.bridge)
                bot.start()
                self._bots[kb_id] = bot
                log.info("Matrix bot %s answers for knowledge base %s", settings.matrix_user_id, kb_id)

    def _mail_route(self, recipient: str) -> tuple[str, MailSender] | None:
        for kb_id in self.kbs.ids():
            try:
                settings = self.settings_for(kb_id)
            except (NotFound, ValueError):
                continue
            if settings.email_address and settings.email_address.lower() == recipient.lower():
                sender = self.sender(kb_id, "email")
                if sender is not None:
                    return kb_id, sender  # type: ignore[return-value]  # the email channel's sender
        return None

    def _default_id(self) -> str | None:
        try:
            return self.kbs.default_id()
        except NotFound:
            return None

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            bots = list(self._bots.values())
            self._bots.clear()
        for bot in bots:
            bot.close()
        self.bridge.close()
        with self._lock:
            for _, sender in self._senders.values():
                sender.close()
            self._senders.clear()


def _plain(value: Any) -> Any:
    """A setting's value, secrets included, for noticing a change."""
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value
