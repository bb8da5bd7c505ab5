"""Support mail: customers write to a knowledge base's support address and get the answer, with the sources it
cites, as a reply in the same mail thread (a handoff reply when the bot declines).

    MailListener   the server's inbound SMTP (aiosmtpd, one per server): recipients no knowledge base answers are
                   refused (550), mail over the size limit too (552); each accepted mail becomes an `Inbound`
    MailSender     one knowledge base's replies through its SMTP relay (smtplib): the one place smtplib's errors
                   are translated; transient failures (4xx replies, lost connections) are retried with backoff
    read_mail      raw mail -> `Mail`: the sender, the thread's Message-IDs and only what the customer wrote anew

A mail thread is one conversation: mail clients put the thread's first Message-ID first in `References`, and a
mail answering the bot's reply is also found by the bot's Message-ID (the bridge links each one it sends). The
thread is kept per customer address, so a stranger who knows a Message-ID cannot join someone's conversation.
Auto-replies, bounces and mailing lists are never answered, nor mail from a support address of ours: two robots
answering each other never stop. The bot's own replies say `Auto-Submitted: auto-replied` (RFC 3834) for the
same reason.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import email.utils
import hashlib
import logging
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from typing import Any

from aiosmtpd.controller import Controller

from rag.channels.base import ChannelDeliveryError, Inbound, Reply
from rag.channels.bridge import ChannelBridge
from rag.channels.outbound import forget_secrets, hide_secrets, mask
from rag.core.errors import ConfigurationError, DatabaseUnavailable, QueueFull
from rag.core.settings import Settings

log = logging.getLogger("rag.channels")

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_ADDRESS = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+$")
_REPLY_PREFIX = re.compile(r"^\s*(?:re|aw|sv|vs|antw|回复|答复|回覆)\s*(?:\[\d+\])?\s*[:：]", re.IGNORECASE)
_MAX_REFERENCES = 20  # a long thread's References keep its first id and the latest ones (as mail clients do)
_MAX_LOOKUPS = 10  # the latest ids of a thread looked up as the bot's replies

# Where the quoted conversation begins. Top-posting clients put it under a separator or an attribution line.
_ATTRIBUTION = re.compile(
    r"^\s*(?:On\s.{0,300}\swrote\s*:|Am\s.{0,300}\sschrieb.{0,100}:|Le\s.{0,300}\sa\sécrit\s*:"
    r"|.{0,300}写道\s*[:：])\s*$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^\s*(?:-{2,}\s*(?:Original(?:\s+Message)?|Forwarded\s+message|原始邮件|原邮件|回复的原邮件|转发邮件)\s*-{2,}"
    r"|_{10,}|--)\s*$",
    re.IGNORECASE,
)
_QUOTED_FROM = re.compile(r"^\s*\**(?:From|发件人|寄件者)\**\s*[:：]", re.IGNORECASE)
_QUOTED_SENT = re.compile(r"^\s*\**(?:Sent|Date|发送时间|日期|寄件日期|时间)\**\s*[:：]", re.IGNORECASE)
_QUOTED_LINE = re.compile(r"^\s*>")
# Chinese mail labelled gb2312 or gbk often holds characters only their superset has.
_CHARSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030"}


@dataclass(frozen=True)
class Mail:
    """A received mail, as the bot needs it."""

    message_id: str  # "<id@host>"; "" when the mail has none
    sender: str  # the From address, lower-case ("" when it has none that reads as an address)
    subject: str
    text: str  # what the customer wrote anew: the quoted conversation dropped
    references: list[str] = field(default_factory=list)  # References, else In-Reply-To: the thread, oldest first
    automatic: str | None = None  # why this mail must not be answered (an auto-reply, a bounce, a list)
    digest: str = ""  # of the raw mail: its event id when it has no Message-ID

    @property
    def root(self) -> str:
        """The thread's first Message-ID (this mail's own, when it starts the thread)."""
        return self.references[0] if self.references else self.message_id or self.digest

    @property
    def event_id(self) -> str:
        return self.message_id or self.digest


def read_mail(raw: bytes, return_path: str | None = "") -> Mail:
    """The mail in `raw` (as received over SMTP); `return_path` is the envelope's MAIL FROM.

    >>> mail = read_mail(b"From: Ann <Ann@Example.com>\\nMessage-ID: <2@x>\\nReferences: <1@x>\\n"
    ...                  b"Subject: Re: Ship\\n\\nAnd to Canada?\\n\\nOn Mon, Bot wrote:\\n> $5\\n", "ann@example.com")
    >>> mail.sender, mail.text, mail.root, mail.automatic
    ('ann@example.com', 'And to Canada?', '<1@x>', None)
    """
    message = email.message_from_bytes(raw, policy=email.policy.default)
    references = message_ids(_header(message, "References")) or message_ids(_header(message, "In-Reply-To"))[:1]
    own = message_ids(_header(message, "Message-ID"))
    subject = one_line(_header(message, "Subject"))[:200]
    text = new_text(body_text(message))
    if not text and not references:  # a question written in the subject only
        text = subject
    return Mail(
        message_id=own[0] if own else "",
        sender=_address(message, "From"),
        subject=subject,
        text=text,
        references=references,
        automatic=automatic(message, return_path),
        digest="sha256:" + hashlib.sha256(raw).hexdigest(),
    )


def message_ids(value: str) -> list[str]:
    """The Message-IDs in a References, In-Reply-To or Message-ID header, in order.

    >>> message_ids("<a@x>\\r\\n <b@y> junk <c@z>")
    ['<a@x>', '<b@y>', '<c@z>']
    """
    return _MESSAGE_ID.findall(value)


def automatic(message: Message, return_path: str | None) -> str | None:
    """Why a mail must not be answered, or None: auto-replies (RFC 3834), bulk and list mail, bounces.

    >>> from email.message import EmailMessage
    >>> m = EmailMessage(); m["Auto-Submitted"] = "auto-replied"
    >>> automatic(m, "a@b.c"), automatic(EmailMessage(), "<>"), automatic(EmailMessage(), "a@b.c")
    ('Auto-Submitted: auto-replied', 'a bounce (return path <>)', None)
    """
    submitted = _header(message, "Auto-Submitted").strip().lower()
    if submitted and submitted.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {submitted}"
    precedence = _header(message, "Precedence").strip().lower()
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return f"Precedence: {precedence}"
    for name in ("List-Id", "X-Autoreply", "X-Autorespond"):
        if message.get(name) is not None:
            return f"a {name} header"
    paths = [return_path or ""] + ([_header(message, "Return-Path")] if message.get("Return-Path") is not None else [])
    for path in paths:
        bare = path.strip().strip("<>").strip().lower()
        if not bare or bare.split("@")[0] == "mailer-daemon":
            return f"a bounce (return path <{bare}>)"
    return None


def body_text(message: Message) -> str:
    """The mail's text: its text/plain body, else the text of its HTML body (quoted blocks left out)."""
    if not isinstance(message, EmailMessage):
        return ""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = (part.get_content_charset() or "utf-8").lower()
    try:
        text = payload.decode(_CHARSETS.get(charset, charset), errors="replace")
    except LookupError:  # a charset Python does not know
        text = payload.decode("utf-8", errors="replace")
    return html_text(text) if part.get_content_type() == "text/html" else text


def new_text(body: str) -> str:
    """What the customer wrote anew: lines quoted with ">" and the quoted conversation under an attribution line
    ("On ... wrote:", "在 ... 写道：") or a separator ("-----Original Message-----", QQ Mail's 原始邮件, Outlook's
    From:/Sent: block, a signature's "--") are dropped.

    >>> new_text("Does it ship to Canada?\\n\\n------------------ 原始邮件 ------------------\\n发件人: Bot")
    'Does it ship to Canada?'
    >>> new_text("On Mon, 1 Jan 2024, Bot <bot@x>\\nwrote:\\n> Shipping is $5.\\n\\nAnd to Canada?")
    'And to Canada?'
    """
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    skip = 0
    for i, line in enumerate(lines):
        if skip:
            skip -= 1
            continue
        attribution = _attribution_lines(lines, i)
        if attribution:
            if not _quote_follows(lines, i + attribution):
                break  # the rest is the quoted conversation, unmarked
            skip = attribution - 1  # bottom-posted: the quote is marked with ">", the new text may follow
            continue
        if _SEPARATOR.match(line) or _outlook_header(lines, i):
            break
        if not _QUOTED_LINE.match(line):
            kept.append(line.rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def html_text(html: str) -> str:
    """The text of an HTML mail: blocks on lines of their own, quoted blocks (<blockquote>), scripts and styles
    left out.

    >>> html_text("<div>How much is <b>shipping</b>?</div><blockquote>Earlier mail</blockquote><p>Thanks</p>")
    'How much is shipping?\\nThanks'
    """
    parser = _TextOfHTML()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)


def reply_subject(subject: str) -> str:
    """The subject of a reply: "Re: " once.

    >>> reply_subject("Shipping"), reply_subject("RE: Shipping"), reply_subject("回复：运费"), reply_subject("")
    ('Re: Shipping', 'RE: Shipping', '回复：运费', 'Re: your mail')
    """
    subject = one_line(subject)
    if not subject:
        return "Re: your mail"
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}"


def one_line(value: str) -> str:
    """`value` on one line: a decoded header may hold line breaks, which must not reach a header we write.

    >>> one_line(" Hi\\r\\nBcc: x@y ")
    'Hi Bcc: x@y'
    """
    return " ".join(value.split())


class MailSender:
    """One knowledge base's replies by mail, through its SMTP relay (`email_smtp_*`), from its support address.
    `send` returns the reply's Message-ID; the bridge links it to the conversation, so the customer's answer to
    the reply continues it."""

    name = "email"

    @staticmethod
    def configured(settings: Settings) -> bool:
        return bool(settings.email_address and settings.email_smtp_host)

    def __init__(
        self,
        kb_id: str,
        settings: Settings,
        *,
        backoff: float = 0.5,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not (settings.email_address and settings.email_smtp_host):
            raise ConfigurationError(
                f"knowledge base {kb_id!r} answers no mail - set email_address and email_smtp_host to reply by mail"
            )
        self.kb_id = kb_id
        self.address = settings.email_address.lower()
        self.domain = self.address.rsplit("@", 1)[1]
        self.host = settings.email_smtp_host
        self.port = settings.email_smtp_port
        self.security = settings.email_smtp_security
        self.username = settings.email_smtp_username
        self._password = settings.email_smtp_password  # a SecretStr: revealed only to log in
        self.retries = settings.channel_send_retries
        self.max_wait = settings.channel_max_retry_wait
        self.backoff = backoff
        self.timeout = timeout
        self.sleep = sleep
        if self._password is not None:
            hide_secrets([self._password.get_secret_value()], owner=self)
        if self.username and self.security == "none" and self.host not in ("127.0.0.1", "::1", "localhost"):
            log.warning(
                "email: %s logs in to %s without TLS - set email_smtp_security to starttls or tls", kb_id, self.host
            )

    def send(self, address: Mapping[str, Any], reply: Reply) -> str | None:
        """Mail `reply` to `address["to"]` in the thread of `address["message_id"]`; its Message-ID."""
        to = one_line(str(address.get("to") or ""))
        if not _ADDRESS.match(to):
            raise ChannelDeliveryError(f"email: {self.kb_id}: a reply has no address to go to - it was not sent")
        message = self.compose(to, address, reply)
        self._deliver(message, to)
        return str(message["Message-ID"])

    def compose(self, to: str, address: Mapping[str, Any], reply: Reply) -> EmailMessage:
        """The reply mail: threaded under the customer's mail (In-Reply-To, References), plain UTF-8 text."""
        message = EmailMessage(policy=email.policy.default)
        message["From"] = self.address
        message["To"] = to
        message["Subject"] = reply_subject(str(address.get("subject") or ""))
        message["Date"] = email.utils.formatdate(localtime=True)
        message["Message-ID"] = email.utils.make_msgid(domain=self.domain)
        parent = message_ids(str(address.get("message_id") or ""))
        references = [i for r in address.get("references") or [] for i in message_ids(str(r))] + parent
        if parent:
            message["In-Reply-To"] = parent[0]
        if references:
            if len(references) > _MAX_REFERENCES:
                references = references[:1] + references[-(_MAX_REFERENCES - 1) :]
            message["References"] = " ".join(references)
        if reply.answer is not None:  # the bot's own words (a person's reply from the console is not automatic)
            message["Auto-Submitted"] = "auto-replied"
        message.set_content(reply.text, charset="utf-8")
        return message

    def close(self) -> None:
        """Nothing held open: each reply opens its own connection to the relay (mail is rare next to chat)."""
        forget_secrets(self)

    # ---- internals ---------------------------------------------------------------------------------------
    def _deliver(self, message: EmailMessage, to: str) -> None:
        what = f"{self.kb_id}'s reply {message['Message-ID']} through {self.host}:{self.port}"
        problem = ""
        for attempt in range(self.retries + 1):
            try:
                self._send_once(message, to)
                log.info("email: sent %s", what)
                return
            except (smtplib.SMTPException, OSError) as exc:
                transient, problem = smtp_problem(exc)
            if not transient:
                raise ChannelDeliveryError(f"email: {what} was refused: {problem}")
            if attempt < self.retries:
                wait = min(self.backoff * 2**attempt, self.max_wait)
                log.warning("email: %s failed (%s); retrying in %.1f s", what, problem, wait)
                self.sleep(wait)
        raise ChannelDeliveryError(f"email: {what} failed after {self.retries + 1} attempts ({problem})")

    def _send_once(self, message: EmailMessage, to: str) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, local_hostname=self.domain, timeout=self.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, local_hostname=self.domain, timeout=self.timeout)
        try:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self._password.get_secret_value() if self._password else "")
            smtp.send_message(message, from_addr=self.address, to_addrs=[to])
        finally:
            _quit(smtp)  # a relay that hangs up rudely after taking the mail must not make it sent twice


def smtp_problem(exc: smtplib.SMTPException | OSError) -> tuple[bool, str]:
    """Whether a failed send may succeed when tried again (a 4xx reply, a lost connection), and what went wrong,
    saying what to set where a setting can fix it. The one place smtplib's errors are read.

    >>> smtp_problem(smtplib.SMTPDataError(451, b"try later"))
    (True, '451 try later')
    >>> smtp_problem(smtplib.SMTPAuthenticationError(535, b"bad credentials"))[0]
    False
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return all(400 <= c < 500 for c in codes), f"the recipient was refused ({', '.join(map(str, codes))})"
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        problem = mask(f"{exc.smtp_code} {one_line(detail)}")
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            problem += " - check email_smtp_username and email_smtp_password"
        return 400 <= exc.smtp_code < 500, problem
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return False, f"{exc} - set email_smtp_security (starttls, tls or none) to what the relay offers"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True, "the relay closed the connection"
    if isinstance(exc, smtplib.SMTPException):  # e.g. no login mechanism in common: trying again cannot help
        return False, mask(f"{exc} - check the email_smtp_* settings against what the relay offers")
    if isinstance(exc, ssl.SSLError):
        return False, mask(f"TLS failed ({exc}) - check email_smtp_security (tls: port 465, starttls: port 587)")
    return True, mask(f"the relay cannot be reached ({type(exc).__name__}: {exc})")  # refused, timed out, reset


class MailListener:
    """The server's inbound SMTP: `route(recipient)` names the knowledge base (and its sender) a support address
    belongs to, None when it is none of ours (refused with 550). Each accepted mail is handed to the bridge."""

    def __init__(
        self,
        host: str,
        port: int,
        max_bytes: int,
        route: Callable[[str], tuple[str, MailSender] | None],
        bridge: ChannelBridge,
    ):
        self.host = host
        self.port = port
        self.max_bytes = max_bytes
        self.route = route
        self.bridge = bridge
        self._controller: Controller | None = None

    def start(self) -> None:
        """Listen on (host, port) in a thread of its own; ConfigurationError when that cannot be done."""
        controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            server_hostname=socket.gethostname(),  # its default asks DNS, which may take seconds to fail offline
            data_size_limit=self.max_bytes,
            ready_timeout=10.0,
        )
        try:
            _bindable(self.host, self.port)  # aiosmtpd reports a port in use only after its 10 s start timeout
            controller.start()
        except (OSError, TimeoutError, RuntimeError) as exc:
            raise ConfigurationError(
                f"cannot receive mail on {self.host}:{self.port} ({exc}) - set RAG_EMAIL_LISTEN_HOST and "
                f"RAG_EMAIL_LISTEN_PORT to an address of this machine and a free port"
            ) from exc
        self._controller = controller

    def close(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def accepts(self, recipient: str) -> bool:
        return self.route(recipient.lower()) is not None

    def deliver(self, return_path: str | None, recipients: list[str], raw: bytes) -> str:
        """Answer one mail for each knowledge base it is addressed to; the SMTP reply to its DATA."""
        try:
            mail = read_mail(raw, return_path)
        except Exception as exc:  # the email package raises many kinds on malformed mail; refuse it, say why
            log.warning("email: an unreadable mail was refused (%s: %s)", type(exc).__name__, exc)
            return "554 5.6.0 The message could not be read"
        skip = mail.automatic or _unanswerable(mail, self.route)
        if skip:
            log.info("email: not answering %s: %s", mail.event_id, skip)
            return "250 2.0.0 OK (not answered: automatic mail)"
        answered: set[str] = set()
        for recipient in recipients:
            routed = self.route(recipient.lower())
            if routed is None or routed[0] in answered:
                continue
            kb_id, sender = routed
            answered.add(kb_id)
            try:
                self.bridge.accept(self.inbound(kb_id, mail), sender)
            except (QueueFull, DatabaseUnavailable) as exc:
                log.warning("email: %s was deferred for %s: %s", mail.event_id, kb_id, exc)
                return "451 4.3.2 Too busy to take this message now - please try again later"
        return "250 2.0.0 OK"

    def inbound(self, kb_id: str, mail: Mail) -> Inbound:
        """The bridge's event for `mail` to knowledge base `kb_id` (its conversation looked up in the store)."""
        address: dict[str, Any] = {
            "to": mail.sender,
            "subject": mail.subject,
            "message_id": mail.message_id,
            "references": mail.references,
        }
        return Inbound(
            channel="email",
            kb_id=kb_id,
            event_id=mail.event_id,
            thread=self.thread(kb_id, mail),
            user=mail.sender,
            text=mail.text,
            address=address,
        )

    def thread(self, kb_id: str, mail: Mail) -> str:
        """The customer's mail thread: the conversation of a reply of ours the mail answers (one client keeps only
        In-Reply-To, another cuts References), else the thread's first Message-ID; per customer address."""
        store = self.bridge.store
        for parent in reversed(mail.references[-_MAX_LOOKUPS:]):
            found = store.channel_message(kb_id, "email", parent)
            known = store.channel_thread_of(kb_id, found[1]) if found is not None else None
            if known is not None and known.address.get("to") == mail.sender:
                return known.thread
        return f"{mail.sender} {mail.root}"


class _Handler:
    """aiosmtpd's hooks: the store and the bridge block, so they run on threads, never on the SMTP loop."""

    def __init__(self, listener: MailListener):
        self.listener = listener

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if not await asyncio.to_thread(self.listener.accepts, address):
            return "550 5.1.1 No such support address here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or b""  # the bytes as received (decode_data is off)
        return await asyncio.to_thread(self.listener.deliver, envelope.mail_from, list(envelope.rcpt_tos), raw)


class _TextOfHTML(HTMLParser):
    _SKIPPED = frozenset({"blockquote", "script", "style", "head", "title"})
    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0  # depth inside elements whose text is not the customer's new words

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self.hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def _unanswerable(mail: Mail, route: Callable[[str], object]) -> str | None:
    if not mail.sender:
        return "no From address"
    if route(mail.sender) is not None:
        return "sent from a support address of ours"
    return None


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    return "" if value is None else str(value)


def _address(message: Message, name: str) -> str:
    addresses = getattr(message.get(name), "addresses", ())
    spec = addresses[0].addr_spec.lower() if addresses else ""
    return spec if _ADDRESS.match(spec) else ""


def _attribution_lines(lines: list[str], i: int) -> int:
    """How many lines the attribution starting at line i takes (Gmail wraps long ones onto a second), or 0."""
    if _ATTRIBUTION.match(lines[i]):
        return 1
    if i + 1 < len(lines) and lines[i].strip() and _ATTRIBUTION.match(f"{lines[i].rstrip()} {lines[i + 1].strip()}"):
        return 2
    return 0


def _quote_follows(lines: list[str], start: int) -> bool:
    following = next((line for line in lines[start:] if line.strip()), "")
    return bool(_QUOTED_LINE.match(following))


def _outlook_header(lines: list[str], i: int) -> bool:
    """Outlook quotes the earlier mail under its headers: "From: ...", then "Sent: ..." within a few lines."""
    return bool(_QUOTED_FROM.match(lines[i])) and any(_QUOTED_SENT.match(line) for line in lines[i + 1 : i + 4])


def _bindable(host: str, port: int) -> None:
    """OSError when nothing could listen on (host, port) now (an address not of this machine, a port in use)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    socket.create_server((host, port), family=family).close()


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
