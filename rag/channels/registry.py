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
from rag.core.errors import ConfigurationError, NotFound, RagError
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


def configured_channels(settings: Settings) -> list[str]:
    """The channels these settings configure (the default knowledge base's, from the environment), for
    `rag serve` to say at start what it answers on."""
    return [name for name in _CLASSES if channel_class(name).configured(settings)]


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
        # replaced senders: queued replies may still use them, so they close with the registry
        self._retired: list[Sender] = []
        self._bots: dict[str, tuple[tuple[Any, ...], MatrixBot]] = {}
        self._listener: MailListener | None = None
        self._lock = threading.RLock()
        self._restarting = threading.Lock()  # one Matrix bot (re)start at a time; lookups go on meanwhile

    # ---- settings ---------------------------------------------------------------------------------------
    def settings_for(self, kb_id: str) -> Settings:
        """The knowledge base's settings for its channels: NotFound for an unknown id, ConfigurationError when its
        stored settings are no longer valid here."""
        overrides = self.kbs.overrides(kb_id)
        base = self.settings if kb_id == self._default_id() else self.settings.without_channels()
        try:
            return base.with_overrides(overrides)
        except ValueError as exc:
            raise ConfigurationError(
                f"knowledge base {kb_id!r}: {exc} - fix its settings (PATCH /api/kbs/{kb_id})"
            ) from exc

    def configured(self, kb_id: str) -> list[str]:
        """The channels this knowledge base has."""
        return configured_channels(self.settings_for(kb_id))

    # ---- webhooks ---------------------------------------------------------------------------------------
    def receive(self, kb_id: str, name: str, request: WebhookRequest) -> WebhookResponse:
        """Check and acknowledge a platform's delivery; its messages are answered in the background."""
        channel = self.webhook(kb_id, name)
        response = channel.receive(request)
        for event in response.events:
            self.bridge.accept(event, channel)
        return response

    def webhook(self, kb_id: str, name: str) -> WebhookChannel:
        # One answer for an unknown knowledge base and one without that channel: the public webhook URL must not
        # tell who is there.
        missing = NotFound(f"No {name!r} channel at this URL - check the knowledge base id and its {name}_* settings")
        if name not in WEBHOOK_CHANNELS:
            raise missing
        try:
            sender = self.sender(kb_id, name)
        except NotFound:
            raise missing from None
        if sender is None:
            raise missing
        return sender  # type: ignore[return-value]  # the webhook classes are WebhookChannels

    def sender(self, kb_id: str, name: str) -> Sender | None:
        """The knowledge base's sender for channel `name`, built anew when its settings changed; None when the
        knowledge base does not have that channel."""
        if name == "matrix":
            with self._lock:
                running = self._bots.get(kb_id)
            return running[1] if running is not None else None
        settings = self.settings_for(kb_id)
        fingerprint = _fingerprint(settings, name)
        with self._lock:
            cached = self._senders.get((kb_id, name))
            if cached is not None and cached[0] == fingerprint:
                return cached[1]
            cls = channel_class(name)
            if cached is not None:
                self._retired.append(self._senders.pop((kb_id, name))[1])
            if not cls.configured(settings):
                return None
            sender: Sender = cls(kb_id, settings)
            self._senders[(kb_id, name)] = (fingerprint, sender)
            return sender

    # ---- a person's replies -------------------------------------------------------------------------------
    def agent_reply(self, kb_id: str, conversation_id: str, text: str) -> bool:
        """Queue an agent's reply to be posted on the platform of the conversation; False when it has none (the
        widget's). QueueFull when too many replies wait."""
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
        """After a knowledge base changed (or was deleted): its Matrix bot restarted when its matrix_* settings
        changed (stopped when they are gone), and its other channels rebuilt on their next use."""
        try:
            settings: Settings | None = self.settings_for(kb_id)
        except NotFound:
            settings = None
        except RagError as exc:  # one knowledge base's broken settings must not stop the others' channels
            log.error("%s - its Matrix bot is not running", exc)
            settings = None
        with self._restarting:
            with self._lock:
                if settings is None:  # gone: its senders too
                    for key in [key for key in self._senders if key[0] == kb_id]:
                        self._retired.append(self._senders.pop(key)[1])
                running = self._bots.get(kb_id)
            wanted = settings is not None and channel_class("matrix").configured(settings)
            fingerprint = _fingerprint(settings, "matrix") if settings is not None else ()
            if running is not None and wanted and running[0] == fingerprint:
                return  # another setting changed: the bot keeps its place in the room's timeline
            if running is not None:
                with self._lock:
                    del self._bots[kb_id]
                running[1].close()  # outside the lookup lock: stopping waits out the bot's /sync poll (seconds)
            if wanted and settings is not None:
                bot = channel_class("matrix")(kb_id, settings, self.bridge)
                bot.start()
                with self._lock:
                    self._bots[kb_id] = (fingerprint, bot)
                log.info("Matrix bot %s answers for knowledge base %s", settings.matrix_user_id, kb_id)

    def _mail_route(self, recipient: str) -> tuple[str, MailSender] | None:
        """The knowledge base answering mail to `recipient`; None (refused) when none does, or when several claim
        the address (a mistake an administrator must fix: nobody's mail goes to the wrong team)."""
        claims = []
        for kb_id in self.kbs.ids():
            try:
                settings = self.settings_for(kb_id)
            except RagError:
                continue
            if settings.email_address and settings.email_address.lower() == recipient.lower():
                claims.append(kb_id)
        if len(claims) > 1:
            log.error("email: knowledge bases %s all have the address %s - mail to it is refused", claims, recipient)
            return None
        sender = self.sender(claims[0], "email") if claims else None
        return (claims[0], sender) if sender is not None else None  # type: ignore[return-value]  # a MailSender

    def _default_id(self) -> str | None:
        try:
            return self.kbs.default_id()
        except NotFound:
            return None

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            bots = [bot for _, bot in self._bots.values()]
            self._bots.clear()
        for bot in bots:
            bot.close()
        self.bridge.close()
        with self._lock:
            for sender in [*(sender for _, sender in self._senders.values()), *self._retired]:
                sender.close()
            self._senders.clear()
            self._retired.clear()


def _fingerprint(settings: Settings, name: str) -> tuple[Any, ...]:
    """The values of channel `name`'s settings (secrets included), for noticing a change."""
    return tuple(_plain(getattr(settings, field)) for field in CHANNEL_SETTINGS if field.startswith(name))


def _plain(value: Any) -> Any:
    """A setting's value, secrets included, for noticing a change."""
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value
