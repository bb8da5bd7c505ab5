"""A Matrix bot over the client-server API (plain HTTP, no SDK): a thread long-polls `/sync`, joins the rooms
it is invited to, and hands the text messages and 👍 / 👎 reactions of other users to the bridge; replies are
sent with `PUT /rooms/{room}/send/m.room.message/{txn}` as notices (`m.notice`), which bots are expected never to
answer: two bots in one room (two knowledge bases, or any other bot) do not answer each other forever.

The bot knows itself by the account its access token belongs to (`/account/whoami`, asked before the first sync),
not by `matrix_user_id`: a setting that differs from the real id (its case, the server name, a typo) would
otherwise make the bot answer its own messages and misplace where a room's history ends.

A room is one conversation. The bot answers only what is written after it started and after it joined: its
first sync takes the position (`next_batch`) and skips the rooms' timelines (invites waiting are still
accepted), and in a room's timeline everything up to the bot's own join is history. This uses the homeserver's
order of events, not timestamps (a clock that is off would otherwise answer old messages or miss new ones). The
flip side: what was written while the bot was down is not answered; its position is not kept across restarts.

End-to-end encrypted rooms cannot be read (the bot holds no keys): it logs that once per room.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from rag.channels.base import ChannelDeliveryError, Event, Inbound, Reaction, Reply
from rag.channels.bridge import ChannelBridge
from rag.channels.outbound import PlatformClient, json_body, mask
from rag.core.errors import QueueFull
from rag.core.settings import Settings

log = logging.getLogger("rag.channels")
T = TypeVar("T")

_API = "/_matrix/client/v3"
_RATINGS: dict[str, Literal["up", "down"]] = {"👍": "up", "👎": "down"}
# Emoji presentation selector and skin tones: "👍️" and "👍🏽" are thumbs up too.
_MODIFIERS = dict.fromkeys([0xFE0F, *range(0x1F3FB, 0x1F400)])
# Only what the bot acts on; its own membership tells where a newly joined room's history ends.
_FILTER = json.dumps(
    {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "timeline": {"limit": 50, "types": ["m.room.message", "m.reaction", "m.room.member", "m.room.encrypted"]},
            "state": {"types": []},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
        },
    },
    separators=(",", ":"),
)


class MatrixBot:
    """The bot account of one knowledge base, answering in every room it is invited to."""

    name = "matrix"

    @staticmethod
    def configured(settings: Settings) -> bool:
        return bool(settings.matrix_homeserver_url and settings.matrix_user_id and settings.matrix_access_token)

    def __init__(
        self,
        kb_id: str,
        settings: Settings,
        bridge: ChannelBridge,
        *,
        sync_timeout: float = 5.0,
        max_backoff: float = 60.0,
    ):
        if not self.configured(settings):
            raise ValueError(
                "A Matrix bot needs matrix_homeserver_url, matrix_user_id and matrix_access_token - set all three"
            )
        assert settings.matrix_homeserver_url and settings.matrix_user_id and settings.matrix_access_token
        self.kb_id = kb_id
        self.bridge = bridge
        self.user_id = settings.matrix_user_id  # until the homeserver says whose token it is (see _whoami)
        self.base = settings.matrix_homeserver_url.rstrip("/") + _API
        self.sync_timeout = sync_timeout  # also how long close() may wait for the poll in flight
        self.max_backoff = max_backoff
        token = settings.matrix_access_token.get_secret_value()
        self._headers = {"Authorization": f"Bearer {token}"}
        self._api = PlatformClient(
            "matrix",
            retries=settings.channel_send_retries,
            max_wait=settings.channel_max_retry_wait,
            secrets=[token],
            retry_hint=retry_hint,
        )
        # The long poll: one attempt per call (the loop backs off itself), a timeout beyond the server's wait.
        # Only the loop's thread uses it.
        self._poll = PlatformClient(
            "matrix", retries=0, timeout=sync_timeout + 10, secrets=[token], retry_hint=retry_hint
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._encrypted_rooms: set[str] = set()

    # ---- the Sender half --------------------------------------------------------------------------------
    def send(self, address: Mapping[str, Any], reply: Reply) -> str | None:
        """Post `reply` in the room `address["room_id"]`; the event id of the message."""
        room_id = address.get("room_id")
        if not room_id:
            raise ChannelDeliveryError(f"matrix: no room to reply in (address {dict(address)!r})")
        # One transaction id for all the retries of this message: the homeserver posts it once.
        url = f"{self.base}/rooms/{quote(room_id, safe='')}/send/m.room.message/{uuid.uuid4().hex}"
        content = {"msgtype": "m.notice", "body": reply.text}  # a notice: other bots do not answer it
        response = self._api.call("PUT", url, json=content, headers=self._headers, what="sending a message")
        return str(json_body(response, "matrix", "sending a message").get("event_id") or "") or None

    # ---- the sync loop ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start answering, on a daemon thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"matrix-{self.kb_id}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the loop: at once when it is backing off, else when the poll in flight returns (within the sync
        timeout; closing its connection from here would not interrupt the read)."""
        self._stop.set()
        if self._thread is None:
            self._poll.close()
        elif self._thread is not threading.current_thread():
            self._thread.join(timeout=self.sync_timeout + 2)
        self._api.close()

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._poll.close()

    def _loop(self) -> None:
        if self._persist(self._whoami) is None:
            return
        since: str | None = None
        while (batch := self._persist(partial(self._sync, since))) is not None:
            if self._accept(batch, history=since is None):
                since = batch.get("next_batch") or since
            else:  # the bridge is full: read the same events again shortly (those taken are not answered twice)
                self._stop.wait(1.0)

    def _persist(self, step: Callable[[], T]) -> T | None:
        """`step()`, tried again after 1, 2, 4... s (up to max_backoff) while the homeserver fails or refuses;
        None when the bot is closed meanwhile."""
        failures = 0
        while not self._stop.is_set():
            try:
                result = step()
            except ChannelDeliveryError as exc:
                if self._stop.is_set():
                    return None
                failures += 1
                wait = min(self.max_backoff, 2.0 ** (failures - 1))
                log.error("%s; retrying in %g s", exc, wait)
                self._stop.wait(wait)
                continue
            if self._stop.is_set():
                return None
            if failures:
                log.info("matrix: %s reaches %s again", self.user_id, self.base)
            return result
        return None

    def _whoami(self) -> str:
        """Take the id of the account the token belongs to as the bot's own (its messages, its joins)."""
        response = self._poll.call("GET", f"{self.base}/account/whoami", headers=self._headers, what="whoami")
        self._check_token(response)
        user_id = json_body(response, "matrix", f"whoami of {self.user_id}").get("user_id")
        if not isinstance(user_id, str) or not user_id.startswith("@"):
            raise ChannelDeliveryError(f"matrix: {self.base} did not say whose access token this is ({user_id!r})")
        if user_id != self.user_id:
            log.warning(
                "matrix: matrix_user_id is %s but the access token belongs to %s, the id the bot goes by - set "
                "matrix_user_id to it",
                self.user_id,
                user_id,
            )
        self.user_id = user_id
        return user_id

    def _sync(self, since: str | None) -> dict[str, Any]:
        """One /sync: the first returns at once (it only takes the position), the others wait for news."""
        params: dict[str, Any] = {"filter": _FILTER, "timeout": 0 if since is None else int(self.sync_timeout * 1000)}
        if since is not None:
            params["since"] = since
        response = self._poll.call("GET", f"{self.base}/sync", params=params, headers=self._headers, what="sync")
        self._check_token(response)
        return json_body(response, "matrix", f"sync of {self.user_id}")

    def _check_token(self, response: httpx.Response) -> None:
        if response.status_code == 401:
            raise ChannelDeliveryError(
                f"matrix: {self.base} refused the access token of {self.user_id} ({_errcode(response)}) - set "
                "matrix_access_token to a current token of that account (log in again: tokens end with logout)"
            )

    def _accept(self, batch: Mapping[str, Any], history: bool) -> bool:
        """Join the rooms invited to; pass on the events (none from the first sync: they predate the bot).
        False when the bridge had no room for some: the batch is to be read again."""
        rooms = batch.get("rooms") or {}
        for room_id in rooms.get("invite") or {}:
            self._join(room_id)
        if history:
            return True
        taken = True
        for room_id, room in (rooms.get("join") or {}).items():
            try:
                events = self.events(room_id, (room.get("timeline") or {}).get("events") or [])
                for event in events:
                    self.bridge.accept(event, self)
            except QueueFull as exc:
                log.warning("matrix: %s; the events of %s are read again in a second", exc, room_id)
                taken = False
            except Exception as exc:  # a store error or an odd event must not stop the bot
                log.error("matrix: events of %s were skipped: %s", room_id, mask(f"{type(exc).__name__}: {exc}"))
        return taken

    def _join(self, room_id: str) -> None:
        url = f"{self.base}/join/{quote(room_id, safe='')}"
        try:
            response = self._api.call("POST", url, json={}, headers=self._headers, what="joining a room")
            json_body(response, "matrix", f"joining {room_id}")
        except ChannelDeliveryError as exc:
            log.error("%s - the invitation stays unanswered", exc)
            return
        log.info("matrix: %s joined %s", self.user_id, room_id)

    # ---- events -------------------------------------------------------------------------------------------
    def events(self, room_id: str, timeline: Iterable[Mapping[str, Any]]) -> list[Event]:
        """A room's new timeline events as the bridge's events: what others wrote or rated after the bot joined."""
        found: list[Event] = []
        for raw in timeline:
            if self._is_own_join(raw):
                found.clear()  # what came before was written before the bot was there
                continue
            if raw.get("sender") == self.user_id or not raw.get("event_id"):
                continue
            event = self._event(room_id, raw)
            if event is not None:
                found.append(event)
        return found

    def _event(self, room_id: str, raw: Mapping[str, Any]) -> Event | None:
        content = raw.get("content") or {}
        kind, address = raw.get("type"), {"room_id": room_id}
        if kind == "m.room.message" and content.get("msgtype") == "m.text" and isinstance(content.get("body"), str):
            if (content.get("m.relates_to") or {}).get("rel_type") == "m.replace":
                return None  # an edit: the original was answered
            text = strip_reply_fallback(content["body"])
            return Inbound("matrix", self.kb_id, raw["event_id"], room_id, str(raw["sender"]), text, address)
        if kind == "m.reaction":
            relation = content.get("m.relates_to") or {}
            rating = _RATINGS.get(str(relation.get("key", "")).translate(_MODIFIERS))
            if relation.get("rel_type") == "m.annotation" and rating and relation.get("event_id"):
                return Reaction("matrix", self.kb_id, raw["event_id"], str(relation["event_id"]), rating, address)
        if kind == "m.room.encrypted" and room_id not in self._encrypted_rooms:
            self._encrypted_rooms.add(room_id)
            log.warning(
                "matrix: room %s is end-to-end encrypted; the bot cannot read it - invite it to an unencrypted room",
                room_id,
            )
        return None

    def _is_own_join(self, raw: Mapping[str, Any]) -> bool:
        return (
            raw.get("type") == "m.room.member"
            and raw.get("state_key") == self.user_id
            and (raw.get("content") or {}).get("membership") == "join"
            and (raw.get("unsigned") or {}).get("prev_content", {}).get("membership") != "join"
        )


def strip_reply_fallback(body: str) -> str:
    """A reply's own text, without the quote of the message it answers that clients put first.

    >>> strip_reply_fallback("> <@bot:example.org> Shipping is free.\\n\\nand express?")
    'and express?'
    >>> strip_reply_fallback("no quote")
    'no quote'
    """
    if not body.startswith("> "):
        return body
    lines = body.split("\n")
    rest = next((n for n, line in enumerate(lines) if not line.startswith(">")), len(lines))
    return "\n".join(lines[rest:]).strip()


def retry_hint(response: httpx.Response) -> float | None:
    """Seconds a 429 M_LIMIT_EXCEEDED asks to wait (`retry_after_ms`); None otherwise."""
    if response.status_code != 429:
        return None
    try:
        waited = response.json().get("retry_after_ms")
    except (ValueError, AttributeError):
        return None
    return waited / 1000 if isinstance(waited, int | float) and waited >= 0 else None


def _errcode(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"HTTP {response.status_code} {body.get('errcode')}: {body.get('error')}"
    except (ValueError, AttributeError):
        return f"HTTP {response.status_code}"
