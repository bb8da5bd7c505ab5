"""Calls to the platforms' HTTP APIs, the one place httpx's errors are translated for channels.

Each call is retried with exponential backoff on connection errors, 5xx and 429; a 429 (or a platform's own
"slow down" answer, see `retry_hint`) waits as long as its `Retry-After` says, up to `max_wait` seconds. Tokens
travel in URLs on some platforms (Telegram's /bot<token>/, WeCom's ?access_token=): httpx logs every request's
URL, so each client registers its secrets with `hide_secrets` and they are masked in every log record.
"""

from __future__ import annotations

import email.utils
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import httpx

from rag.channels.base import ChannelDeliveryError

log = logging.getLogger("rag.channels")
MASK = "***"
T = TypeVar("T")


class _SecretFilter(logging.Filter):
    """Masks registered secrets in the messages of the loggers it is attached to. Secrets are kept per owner (a
    client, or a token cache), so a refreshed access token replaces the one before and a closed client's go."""

    def __init__(self) -> None:
        super().__init__()
        self.owned: dict[object, frozenset[str]] = {}
        self.lock = threading.Lock()
        self.pattern: re.Pattern[str] | None = None

    def update(self, owner: object, values: Iterable[str | None]) -> None:
        with self.lock:
            secrets = frozenset(v for v in values if v and len(v) >= 4)
            if secrets:
                self.owned[owner] = secrets
            else:
                self.owned.pop(owner, None)
            every = sorted(set().union(*self.owned.values()), key=len, reverse=True) if self.owned else []
            self.pattern = re.compile("|".join(map(re.escape, every))) if every else None

    def mask(self, text: str) -> str:
        pattern = self.pattern
        return pattern.sub(MASK, text) if pattern is not None else text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.pattern is None:
            return True
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_FILTER = _SecretFilter()
# httpx logs each request line with its URL; the channels' own loggers never format a secret, but a message a
# platform echoes back might.
for _name in ("httpx", "rag.channels"):
    logging.getLogger(_name).addFilter(_FILTER)


def hide_secrets(values: Iterable[str | None], owner: object) -> None:
    """Mask these strings (tokens, secrets) wherever the httpx and channel loggers would print them, replacing
    what `owner` registered before (a refreshed token replaces the expired one)."""
    _FILTER.update(owner, values)


def forget_secrets(owner: object) -> None:
    """`owner` is closed: its secrets need no masking any more."""
    _FILTER.update(owner, ())


def mask(text: str) -> str:
    """`text` with every registered secret masked (for error messages that may quote a URL)."""
    return _FILTER.mask(text)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait: delay-seconds or an HTTP date; None when absent or unreadable.

    >>> retry_after("3"), retry_after(None), retry_after("soon")
    (3.0, None, None)
    >>> retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412500.0)
    10.0
    """
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class PlatformClient:
    """One platform's HTTP API: `call()` with retries; `name` appears in errors and logs ("slack").

    `retry_hint(response)` lets a platform say "retry after N seconds" in its own way (Telegram's
    `parameters.retry_after`, WeCom's errcode 45009 with HTTP 200): None means the response stands."""

    def __init__(
        self,
        name: str,
        *,
        retries: int = 5,
        backoff: float = 0.5,
        max_wait: float = 60.0,
        timeout: float = 10.0,
        secrets: Iterable[str | None] = (),
        retry_hint: Callable[[httpx.Response], float | None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.name = name
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.retry_hint = retry_hint
        self.sleep = sleep
        self.client = httpx.Client(timeout=timeout, follow_redirects=False)
        hide_secrets(secrets, owner=self)

    def call(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        what: str = "call",
    ) -> httpx.Response:
        """The platform's response (status below 400, or a 4xx other than 429, which retrying cannot fix);
        ChannelDeliveryError when every attempt failed."""
        problem = ""
        for attempt in range(self.retries + 1):
            wait = self.backoff * 2**attempt
            try:
                response = self.client.request(method, url, json=json, params=params, headers=headers)
            except httpx.HTTPError as exc:
                problem = mask(f"{type(exc).__name__}: {exc}")
            else:
                hinted = self.retry_hint(response) if self.retry_hint is not None else None
                if response.status_code == 429 or hinted is not None:
                    asked = retry_after(response.headers.get("retry-after"))
                    wait = next((w for w in (asked, hinted) if w is not None), wait)
                    problem = f"rate limited (HTTP {response.status_code}, retry after {wait:g} s)"
                    if wait > self.max_wait:
                        raise ChannelDeliveryError(
                            f"{self.name}: {what} was rate limited for {wait:g} s, longer than the "
                            f"{self.max_wait:g} s a reply may wait - the reply was not sent"
                        )
                elif response.status_code >= 500:
                    problem = f"HTTP {response.status_code}"
                else:
                    return response
            if attempt < self.retries:
                log.warning("%s: %s failed (%s); retrying in %.1f s", self.name, what, problem, wait)
                self.sleep(wait)
        raise ChannelDeliveryError(f"{self.name}: {what} failed after {self.retries + 1} attempts ({problem})")

    def close(self) -> None:
        self.client.close()
        forget_secrets(self)


class AccessToken:
    """A platform's short-lived access token (Feishu's tenant_access_token, WeCom's access_token): `fetch()` gives
    (token, lifetime in seconds); kept until `margin` seconds (at most half its life) before it expires, fetched
    anew when the platform refuses it (`get(refresh=True)`), masked in logs while it is the current one."""

    def __init__(
        self, fetch: Callable[[], tuple[str, float]], clock: Callable[[], float] = time.time, margin: float = 300.0
    ):
        self.fetch = fetch
        self.clock = clock
        self.margin = margin
        self._token: str | None = None
        self._until = 0.0
        self._lock = threading.Lock()  # one fetch at a time: the others wait for its token

    def get(self, *, refresh: bool = False) -> str:
        with self._lock:
            if self._token is not None and not refresh and self.clock() < self._until:
                return self._token
            token, lifetime = self.fetch()
            hide_secrets([token], owner=self)  # replaces the expired one
            self._token, self._until = token, self.clock() + max(0.0, lifetime - min(self.margin, lifetime / 2))
            return token

    def use(self, request: Callable[[str], T], refused: Callable[[T], bool]) -> T:
        """`request(token)`; when `refused` says the platform did not take the token (revoked, or expired early),
        once more with a new one."""
        answer = request(self.get())
        if refused(answer):
            log.info("an access token was refused; fetching a new one")
            answer = request(self.get(refresh=True))
        return answer

    def close(self) -> None:
        forget_secrets(self)


def json_body(response: httpx.Response, name: str, what: str) -> dict[str, Any]:
    """The JSON object a platform answered; ChannelDeliveryError when it is not one or the status is an error."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 400 or not isinstance(data, dict):
        detail = mask(response.text[:200]) if response.text else ""
        raise ChannelDeliveryError(f"{name}: {what} was refused: HTTP {response.status_code} {detail}".rstrip())
    return data
