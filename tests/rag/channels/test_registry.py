"""Which channels each knowledge base has (rag.channels.registry), with the knowledge bases listed by a small
in-memory directory and a real SQLite conversation store: mail routing, broken settings, senders replaced while
replies may still be queued, and Matrix bots restarted only when their own settings change."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from rag.channels import registry
from rag.channels.registry import Channels
from rag.conversations import SQLAlchemyConversationStore
from rag.core.errors import ConfigurationError, NotFound
from rag.core.settings import Settings

pytestmark = pytest.mark.integration  # SQLite files and worker threads; no model, no server

TELEGRAM = {"telegram_bot_token": "1:token-a", "telegram_secret_token": "s" * 20}


class Directory:
    def __init__(self, kbs: dict[str, dict[str, Any]], default: str = "a") -> None:
        self.kbs, self.default = kbs, default

    def ids(self) -> list[str]:
        return sorted(self.kbs)

    def default_id(self) -> str:
        return self.default

    def overrides(self, kb_id: str) -> Mapping[str, Any]:
        if kb_id not in self.kbs:
            raise NotFound(kb_id)
        return self.kbs[kb_id]


@pytest.fixture
def store(tmp_path) -> Iterator[SQLAlchemyConversationStore]:
    s = SQLAlchemyConversationStore(f"sqlite:///{tmp_path / 'c.sqlite'}")
    yield s
    s.close()


def channels(store, kbs: dict[str, dict[str, Any]], **server: Any) -> Channels:
    def no_chat(kb_id: str) -> Any:
        raise AssertionError("nothing is answered here")

    return Channels(Settings(_env_file=None, **server), Directory(kbs), no_chat, store)


def mail(address: str) -> dict[str, Any]:
    return {"email_address": address, "email_smtp_host": "127.0.0.1", "email_smtp_security": "none"}


def test_mail_goes_to_the_one_knowledge_base_with_the_address_and_an_address_claimed_twice_is_refused(store):
    registry_ = channels(store, {"a": mail("help@shop.example"), "b": mail("sales@shop.example"), "c": {}})
    try:
        routed = registry_._mail_route("Help@Shop.Example")
        assert routed is not None and routed[0] == "a"
        assert registry_._mail_route("nobody@shop.example") is None
    finally:
        registry_.close()
    clash = channels(store, {"a": mail("help@shop.example"), "b": mail("help@shop.example")})
    try:
        assert clash._mail_route("help@shop.example") is None
    finally:
        clash.close()


def test_a_knowledge_base_with_broken_settings_does_not_stop_the_others(store):
    kbs = {"a": TELEGRAM, "broken": {"generator": "llamacpp", **TELEGRAM}}  # no model path on this server
    registry_ = channels(store, kbs)
    try:
        registry_.start()  # does not raise
        assert registry_.webhook("a", "telegram").name == "telegram"
        with pytest.raises(ConfigurationError, match="knowledge base 'broken'.*fix its settings"):
            registry_.webhook("broken", "telegram")
    finally:
        registry_.close()


def test_unknown_knowledge_bases_and_missing_channels_get_the_same_answer(store):
    registry_ = channels(store, {"a": TELEGRAM, "b": {}})
    try:
        messages = set()
        for kb, name in (("nope", "telegram"), ("b", "telegram"), ("a", "whatsapp"), ("a", "slack")):
            with pytest.raises(NotFound) as missing:
                registry_.webhook(kb, name)
            messages.add(str(missing.value).replace(name, "NAME"))
        assert len(messages) == 1
    finally:
        registry_.close()


def test_channel_settings_from_the_environment_serve_only_the_default_knowledge_base(store):
    registry_ = channels(store, {"a": {}, "b": {}}, **TELEGRAM)
    try:
        assert registry_.configured("a") == ["telegram"]
        assert registry_.configured("b") == []
    finally:
        registry_.close()


def test_a_replaced_sender_stays_open_until_the_registry_closes(store):
    kbs = {"a": dict(TELEGRAM)}
    registry_ = channels(store, kbs)
    try:
        first = registry_.sender("a", "telegram")
        assert registry_.sender("a", "telegram") is first  # unchanged settings: the same one
        kbs["a"]["telegram_bot_token"] = "1:token-b"
        second = registry_.sender("a", "telegram")
        assert second is not first and not first.client.client.is_closed  # a queued reply may still use it
    finally:
        registry_.close()
    assert first.client.client.is_closed and second.client.client.is_closed


class FakeBot:
    started: list[FakeBot] = []

    def __init__(self, kb_id: str, settings: Settings, bridge: Any) -> None:
        self.kb_id, self.token = kb_id, settings.matrix_access_token
        self.closed = False

    @staticmethod
    def configured(settings: Settings) -> bool:
        return settings.matrix_access_token is not None

    def start(self) -> None:
        FakeBot.started.append(self)

    def close(self) -> None:
        self.closed = True


def test_a_matrix_bot_restarts_only_when_its_own_settings_change(store, monkeypatch):
    monkeypatch.setattr(registry, "channel_class", lambda name: FakeBot)
    FakeBot.started = []
    matrix = {"matrix_homeserver_url": "http://127.0.0.1:9", "matrix_user_id": "@bot:x", "matrix_access_token": "t1"}
    kbs = {"a": dict(matrix)}
    registry_ = Channels(Settings(_env_file=None), Directory(kbs), lambda kb: None, store)  # type: ignore[arg-type]
    try:
        registry_.start()
        assert len(FakeBot.started) == 1
        kbs["a"]["top_k"] = 3
        registry_.reconfigure("a")  # another setting: the bot keeps running (and its place in the timeline)
        assert len(FakeBot.started) == 1 and not FakeBot.started[0].closed
        kbs["a"]["matrix_access_token"] = "t2"
        registry_.reconfigure("a")
        assert len(FakeBot.started) == 2 and FakeBot.started[0].closed and not FakeBot.started[1].closed
        del kbs["a"]
        registry_.reconfigure("a")  # deleted
        assert FakeBot.started[1].closed
    finally:
        registry_.close()
