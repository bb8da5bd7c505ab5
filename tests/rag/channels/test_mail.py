"""Support mail against real SMTP servers on loopback: an aiosmtpd relay recording the replies the product sends
(failing, or demanding a login, when a test asks), and the product's own SMTP listener receiving the customers'
mail sent with smtplib. Mail clients' quoting and auto-reply headers are checked on the parser alone."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.header
import email.policy
import email.utils
import logging
import smtplib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from rag.channels.base import ChannelDeliveryError, Reply
from rag.channels.bridge import ChannelBridge
from rag.channels.mail import (
    MailListener,
    MailSender,
    automatic,
    html_text,
    new_text,
    read_mail,
    reply_subject,
    smtp_problem,
)
from rag.conversations import SQLAlchemyConversationStore
from rag.core.errors import ConfigurationError
from rag.core.settings import Settings
from rag.core.types import Answer
from tests.servers import free_port

SUPPORT = "help@shop.example"
CUSTOMER = "ann.lee@customer.example"
SHIPPING = "How much does standard shipping cost in the US?"
LOGIN, PASSWORD = "relay-user", "Relay-Pa55word-9f3c1d"


# ---- a relay on loopback ------------------------------------------------------------------------------------
@dataclass
class Relayed:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class Relay:
    """An SMTP relay that records what it is handed: the first `fail` DATA commands are answered `refusal`,
    `hold` (while unset) keeps each delivery waiting, and with `login` set it demands that login."""

    def __init__(
        self, *, fail: int = 0, refusal: str = "451 4.3.0 Try again later", login: tuple[str, str] | None = None
    ):
        self.fail, self.refusal, self.login = fail, refusal, login
        self.port = free_port()
        self.received: list[Relayed] = []
        self.attempts = 0
        self.logins: list[tuple[str, str]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.delivering = threading.Event()
        self._lock = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.attempts += 1
            if self.attempts <= self.fail:
                return self.refusal
        self.delivering.set()
        await asyncio.to_thread(self.hold.wait, 60)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.received.append(Relayed(envelope.mail_from, list(envelope.rcpt_tos), message))
            self._lock.notify_all()
        return "250 2.0.0 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        given = (data.login.decode(), data.password.decode())
        self.logins.append(given)
        return AuthResult(success=given == self.login, handled=False)  # aiosmtpd answers 535 to a wrong one

    def wait_for(self, count: int, timeout: float = 60.0) -> list[EmailMessage]:
        """The first `count` mails relayed, once that many arrived."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{count} mail(s) expected at the relay, got {len(self.received)}"
                self._lock.wait(left)
            return [r.message for r in self.received[:count]]


@contextlib.contextmanager
def relay(**options: Any) -> Iterator[Relay]:
    recorder = Relay(**options)
    auth: dict[str, Any] = {}
    if recorder.login:  # a login over plain loopback: the test relay allows it without TLS
        auth = {"authenticator": recorder.authenticate, "auth_required": True, "auth_require_tls": False}
    controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port, server_hostname="relay.test", **auth)
    controller.start()
    try:
        yield recorder
    finally:
        recorder.hold.set()
        controller.stop()


def sender_settings(port: int, **more: Any) -> Settings:
    values: dict[str, Any] = {"email_address": SUPPORT, "email_smtp_host": "127.0.0.1", "email_smtp_port": port}
    return Settings(_env_file=None, **(values | {"email_smtp_security": "none"} | more))


# ---- what customers send ---------------------------------------------------------------------------------------
def customer_mail(
    body: str,
    *,
    subject: str = "Shipping",
    message_id: str | None = None,
    replying_to: EmailMessage | None = None,
    sender: str = CUSTOMER,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A customer's mail to the support address; `replying_to` threads it as mail clients do."""
    mail = EmailMessage()
    mail["From"] = f"Ann Lee <{sender}>"
    mail["To"] = f"Pinecrest Support <{SUPPORT}>"
    mail["Subject"] = subject
    mail["Date"] = email.utils.formatdate(localtime=True)
    mail["Message-ID"] = message_id or email.utils.make_msgid(domain="customer.example")
    if replying_to is not None:
        mail.replace_header("Subject", reply_subject(str(replying_to["Subject"])))
        mail["In-Reply-To"] = replying_to["Message-ID"]
        mail["References"] = f"{replying_to.get('References', '')} {replying_to['Message-ID']}".strip()
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(body)
    return mail


def quoting(reply: EmailMessage, new: str) -> str:
    """A top-posted answer to `reply`, quoting it under Gmail's attribution line."""
    quoted = "\n".join(f"> {line}" for line in reply.get_content().splitlines())
    return f"{new}\n\nOn Mon, 3 Jun 2024 at 10:02, Pinecrest Support <{SUPPORT}> wrote:\n{quoted}\n"


def mail_to(port: int, mail: EmailMessage, *, return_path: str | None = None) -> dict[str, tuple[int, bytes]]:
    """Deliver `mail` to the product's listener as a sending server would; the recipients refused."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mx.customer.example", timeout=30) as smtp:
        return smtp.send_message(mail, from_addr=CUSTOMER if return_path is None else return_path)


# ---- reading mail (pure) -------------------------------------------------------------------------------------
QUOTED = {
    "gmail, top-posted": "And to Canada?\n\nOn Mon, 3 Jun 2024 at 10:02, Pinecrest Support <help@shop.example> "
    "wrote:\n> US Standard shipping costs $5.95.\n>\n> Sources:\n",
    "gmail, attribution wrapped": "And to Canada?\n\nOn Mon, 3 Jun 2024 at 10:02, Pinecrest Support <\n"
    "help@shop.example> wrote:\n\n> US Standard shipping costs $5.95.\n",
    "bottom-posted": "On 03/06/2024 10:02, Pinecrest Support wrote:\n> US Standard shipping costs $5.95.\n"
    ">\n\nAnd to Canada?\n",
    "outlook": "And to Canada?\n\n________________________________\nFrom: Pinecrest Support <help@shop.example>\n"
    "Sent: Monday, June 3, 2024 10:02 AM\nTo: Ann Lee\nSubject: Re: Shipping\n\nUS Standard shipping costs $5.95.",
    "outlook, no rule": "And to Canada?\n\nFrom: Pinecrest Support\nSent: Monday, June 3, 2024\n\nUS Standard $5.95.",
    "signature": "And to Canada?\n\n--\nAnn Lee\nPinecrest customer since 2019",
    "original message": "And to Canada?\n-----Original Message-----\nFrom: help@shop.example\nUS Standard $5.95.",
}
QUOTED_ZH = {
    "qq mail": "寄到加拿大呢？\n\n------------------ 原始邮件 ------------------\n"
    '发件人: "Pinecrest" <help@shop.example>\n'
    "发送时间: 2024年6月3日(星期一) 上午10:02\n主题: Re: 运费\n\n美国标准运费为 5.95 美元。",
    "foxmail": "寄到加拿大呢？\n\n------------------ Original ------------------\n"
    "From: help@shop.example\n美国标准运费。",
    "163 mail": '寄到加拿大呢？\n\n在 2024-06-03 10:02:11，"Pinecrest" <help@shop.example> 写道：\n'
    "美国标准运费为 5.95 美元。",
    "apple mail": "寄到加拿大呢？\n\n> 2024年6月3日 10:02，Pinecrest <help@shop.example> 写道：\n> \n> 美国标准运费。",
    "gmail": "寄到加拿大呢？\n\nPinecrest <help@shop.example> 于2024年6月3日周一 10:02写道：\n\n> 美国标准运费。",
    "outlook": "寄到加拿大呢？\n\n发件人: Pinecrest <help@shop.example>\n发送时间: 2024年6月3日 10:02\n"
    "收件人: Ann\n\n美国。",
}


@pytest.mark.unit
@pytest.mark.parametrize("body", QUOTED.values(), ids=QUOTED.keys())
def test_only_what_the_customer_wrote_anew_is_asked(body):
    assert new_text(body) == "And to Canada?"


@pytest.mark.unit
@pytest.mark.parametrize("body", QUOTED_ZH.values(), ids=QUOTED_ZH.keys())
def test_chinese_clients_quoting_is_dropped_too(body):
    assert new_text(body) == "寄到加拿大呢？"


@pytest.mark.unit
def test_a_question_with_several_paragraphs_and_an_inline_answer_keeps_the_customers_lines():
    body = "Hi,\n\nI ordered a tent.\n> Which order?\nOrder 1234.\n\nDoes it ship to Canada?\n"
    assert new_text(body) == "Hi,\n\nI ordered a tent.\nOrder 1234.\n\nDoes it ship to Canada?"


@pytest.mark.unit
def test_an_html_only_mail_is_read_as_text_without_its_quoted_block():
    mail = EmailMessage()
    mail["From"] = CUSTOMER
    mail["Message-ID"] = "<h1@customer.example>"
    mail.set_content(
        "<html><head><style>p{color:red}</style></head><body><div dir='ltr'>Does it ship to <b>Canada</b>?"
        "</div><br><div class='gmail_quote'><div class='gmail_attr'>On Mon, 3 Jun 2024 Pinecrest &lt;"
        f"{SUPPORT}&gt; wrote:<br></div><blockquote class='gmail_quote'>US Standard shipping costs $5.95."
        "</blockquote></div></body></html>",
        subtype="html",
    )
    assert read_mail(mail.as_bytes(), CUSTOMER).text == "Does it ship to Canada?"
    assert html_text("<p>A &amp; B</p><script>alert(1)</script><p>C</p>") == "A & B\nC"


@pytest.mark.unit
@pytest.mark.parametrize("charset", ["gb2312", "gb18030", "utf-8", "big5"])
def test_chinese_mail_in_its_usual_charsets_is_read(charset):
    text, subject = ("退货运费谁付？", "退货") if charset != "big5" else ("退貨運費誰付？", "退貨")
    name, encoded = (email.header.Header(value, charset).encode() for value in ("李娜", subject))
    raw = (
        f"From: {name} <{CUSTOMER}>\r\nMessage-ID: <zh@customer.example>\r\nSubject: {encoded}\r\n"
        f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + text.encode(charset)
    mail = read_mail(raw, CUSTOMER)
    assert (mail.text, mail.subject, mail.sender) == (text, subject, CUSTOMER)


@pytest.mark.unit
def test_threads_begin_at_the_first_reference_and_mail_without_a_message_id_still_has_an_event_id():
    first = customer_mail(SHIPPING, message_id="<q1@customer.example>")
    assert read_mail(first.as_bytes(), CUSTOMER).root == "<q1@customer.example>"
    later = (  # References folded over two lines, as long ones are
        b"From: ann.lee@customer.example\r\nMessage-ID: <q3@customer.example>\r\nIn-Reply-To: <r1@shop.example>\r\n"
        b"References: <q1@customer.example>\r\n <r1@shop.example>\r\n\r\nAnd to Canada?\r\n"
    )
    assert read_mail(later, CUSTOMER).references == ["<q1@customer.example>", "<r1@shop.example>"]
    assert read_mail(later, CUSTOMER).root == "<q1@customer.example>"
    only_in_reply_to = customer_mail("And to Canada?")
    only_in_reply_to["In-Reply-To"] = "<r1@shop.example>"
    assert read_mail(only_in_reply_to.as_bytes(), CUSTOMER).references == ["<r1@shop.example>"]

    anonymous = customer_mail(SHIPPING)
    del anonymous["Message-ID"]
    once, again = read_mail(anonymous.as_bytes(), CUSTOMER), read_mail(anonymous.as_bytes(), CUSTOMER)
    assert once.message_id == "" and once.event_id.startswith("sha256:") and once.event_id == again.event_id


@pytest.mark.unit
def test_a_mail_with_an_empty_body_asks_its_subject():
    mail = read_mail(customer_mail("", subject=SHIPPING).as_bytes(), CUSTOMER)
    assert mail.text == SHIPPING


AUTOMATIC = [
    ({"Auto-Submitted": "auto-replied"}, CUSTOMER),
    ({"Auto-Submitted": "auto-generated; owner-email=x@y"}, CUSTOMER),
    ({"Precedence": "bulk"}, CUSTOMER),
    ({"Precedence": "list"}, CUSTOMER),
    ({"Precedence": "junk"}, CUSTOMER),
    ({"List-Id": "<offers.customer.example>"}, CUSTOMER),
    ({"X-Autoreply": "yes"}, CUSTOMER),
    ({}, ""),
    ({}, "<>"),
    ({}, "MAILER-DAEMON@mx.customer.example"),
]


@pytest.mark.unit
@pytest.mark.parametrize(("headers", "return_path"), AUTOMATIC)
def test_auto_replies_bounces_and_list_mail_are_recognised(headers, return_path):
    assert automatic(customer_mail("I am out of office.", headers=headers), return_path)


@pytest.mark.unit
def test_a_persons_mail_is_answered_even_when_it_says_auto_submitted_no():
    assert automatic(customer_mail(SHIPPING, headers={"Auto-Submitted": "no"}), CUSTOMER) is None


@pytest.mark.unit
def test_a_reply_is_threaded_under_the_customers_mail_in_utf8_and_marked_automatic():
    sender = MailSender("shop", sender_settings(9))
    address = {
        "to": CUSTOMER,
        "subject": "Re: 运费\r\nBcc: victim@example.com",  # a decoded header may hold line breaks
        "message_id": "<q2@customer.example>",
        "references": ["<q1@customer.example>", "<r1@shop.example>"],
    }
    answer = Answer(SHIPPING, "标准运费 5.95 美元 [1].", True, False, [], [], "extractive", "zh")
    mail = sender.compose(CUSTOMER, address, Reply("标准运费 5.95 美元 [1].", answer))
    assert mail["Subject"] == "Re: 运费 Bcc: victim@example.com" and mail["Bcc"] is None
    assert mail["In-Reply-To"] == "<q2@customer.example>"
    assert mail["References"] == "<q1@customer.example> <r1@shop.example> <q2@customer.example>"
    assert mail["Message-ID"].endswith("@shop.example>") and mail["From"] == SUPPORT
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail.get_content_charset() == "utf-8" and mail.get_content().strip() == "标准运费 5.95 美元 [1]."
    person = sender.compose(CUSTOMER, {"to": CUSTOMER, "subject": "Shipping"}, Reply("Hi Ann, Sam here."))
    assert person["Subject"] == "Re: Shipping" and person["In-Reply-To"] is None and person["Auto-Submitted"] is None


@pytest.mark.unit
def test_smtp_failures_are_told_apart_transient_from_permanent():
    assert smtp_problem(smtplib.SMTPDataError(451, b"try again"))[0]
    assert smtp_problem(smtplib.SMTPServerDisconnected("gone"))[0]
    assert smtp_problem(ConnectionRefusedError(111, "refused"))[0]
    assert smtp_problem(smtplib.SMTPRecipientsRefused({CUSTOMER: (450, b"mailbox busy")}))[0]
    assert not smtp_problem(smtplib.SMTPRecipientsRefused({CUSTOMER: (550, b"no such user")}))[0]
    assert not smtp_problem(smtplib.SMTPDataError(554, b"rejected"))[0]
    transient, problem = smtp_problem(smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"))
    assert not transient and "email_smtp_password" in problem


@pytest.mark.unit
def test_configured_needs_the_address_and_the_relay():
    assert MailSender.configured(sender_settings(25))
    assert not MailSender.configured(Settings(_env_file=None, email_address=SUPPORT))
    assert not MailSender.configured(Settings(_env_file=None, email_smtp_host="127.0.0.1"))


# ---- sending through a real relay ----------------------------------------------------------------------------
def test_a_reply_goes_through_the_relay_from_the_support_address():
    with relay() as smtp:
        sender = MailSender("shop", sender_settings(smtp.port))
        sent = sender.send({"to": CUSTOMER, "subject": "Shipping", "message_id": "<q1@c>"}, Reply("$5.95 [1]."))
        [mail] = smtp.wait_for(1)
    assert smtp.received[0].mail_from == SUPPORT and smtp.received[0].rcpt_tos == [CUSTOMER]
    assert mail["Message-ID"] == sent and mail["In-Reply-To"] == "<q1@c>" and mail["To"] == CUSTOMER
    assert mail.get_content().strip() == "$5.95 [1]."


def test_a_relay_that_fails_once_with_451_gets_the_reply_again_after_a_backoff():
    waits: list[float] = []
    with relay(fail=1) as smtp:
        sender = MailSender("shop", sender_settings(smtp.port), backoff=0.05, sleep=lambda s: waits.append(s))
        sent = sender.send({"to": CUSTOMER, "subject": "Shipping"}, Reply("$5.95"))
        [mail] = smtp.wait_for(1)
    assert smtp.attempts == 2 and waits == [0.05] and mail["Message-ID"] == sent


def test_a_permanent_refusal_is_not_retried_and_an_unreachable_relay_is_given_up_on():
    with relay(fail=9, refusal="554 5.7.1 Relaying denied") as smtp:
        sender = MailSender("shop", sender_settings(smtp.port, channel_send_retries=3), sleep=lambda s: None)
        with pytest.raises(ChannelDeliveryError, match="554 5.7.1 Relaying denied"):
            sender.send({"to": CUSTOMER}, Reply("$5.95"))
    assert smtp.attempts == 1

    with relay() as smtp:  # a relay that offers no STARTTLS: the setting is wrong, trying again cannot help
        sender = MailSender("shop", sender_settings(smtp.port, email_smtp_security="starttls"), sleep=lambda s: None)
        with pytest.raises(ChannelDeliveryError, match="set email_smtp_security"):
            sender.send({"to": CUSTOMER}, Reply("$5.95"))
    assert smtp.attempts == 0

    waits: list[float] = []
    closed = free_port()  # nothing listens there
    sender = MailSender("shop", sender_settings(closed, channel_send_retries=2), backoff=0.05, sleep=waits.append)
    with pytest.raises(ChannelDeliveryError, match="after 3 attempts"):
        sender.send({"to": CUSTOMER}, Reply("$5.95"))
    assert waits == [0.05, 0.1]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the test relay's, on loopback
def test_the_relay_login_works_and_its_password_never_reaches_the_logs(caplog):
    caplog.set_level(logging.DEBUG)
    with relay(login=(LOGIN, PASSWORD)) as smtp:
        good = sender_settings(smtp.port, email_smtp_username=LOGIN, email_smtp_password=PASSWORD)
        MailSender("shop", good).send({"to": CUSTOMER}, Reply("$5.95"))
        smtp.wait_for(1)
        bad = sender_settings(smtp.port, email_smtp_username=LOGIN, email_smtp_password=PASSWORD + "-old")
        with pytest.raises(ChannelDeliveryError, match="check email_smtp_username and email_smtp_password") as error:
            MailSender("shop", bad).send({"to": CUSTOMER}, Reply("$5.95"))
    assert smtp.logins[0] == (LOGIN, PASSWORD) and len(smtp.received) == 1
    assert set(smtp.logins[1:]) == {(LOGIN, PASSWORD + "-old")}  # smtplib tries PLAIN, then LOGIN; no retry after
    assert PASSWORD not in str(error.value) and PASSWORD not in caplog.text


# ---- the whole product: mail in through its listener, replies out through the relay ---------------------------
@dataclass
class ServedMail:
    product: Any  # tests.rag.channels.serving.Served: the API server, its store and channels
    port: int  # its SMTP listener, where customers' mail goes


@contextlib.contextmanager
def served_mail(tmp_path, embedder, outbound: Relay, **server: Any) -> Iterator[ServedMail]:
    from tests.rag.channels.serving import served_kb  # the whole product: imported by the tests that serve it

    kb_settings: dict[str, Any] = {
        "email_address": SUPPORT,
        "email_smtp_host": "127.0.0.1",
        "email_smtp_port": outbound.port,
        "email_smtp_security": "none",
    }
    if outbound.login:
        kb_settings |= {"email_smtp_username": outbound.login[0], "email_smtp_password": outbound.login[1]}
    port = free_port()
    with served_kb(tmp_path, embedder, kb_settings, email_listen_port=port, **server) as served:
        yield ServedMail(served, port)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_customer_mail_thread_is_answered_with_sources_then_in_context_then_by_a_person(tmp_path, embedder, caplog):
    caplog.set_level(logging.DEBUG)
    with relay(login=(LOGIN, PASSWORD)) as smtp, served_mail(tmp_path, embedder, smtp) as served:
        first = customer_mail(SHIPPING, subject="Shipping to the US")
        assert mail_to(served.port, first) == {}
        [reply] = smtp.wait_for(1)
        served.product.wait()  # the reply's Message-ID is linked to the conversation
        assert "$5.95" in reply.get_content()
        assert "Sources:" in reply.get_content() and "faq_en.csv" in reply.get_content()
        assert reply["In-Reply-To"] == first["Message-ID"] and reply["References"] == first["Message-ID"]
        assert reply["Subject"] == "Re: Shipping to the US" and reply["To"] == CUSTOMER

        follow_up = customer_mail(quoting(reply, "And how fast is express?"), replying_to=reply)
        mail_to(served.port, follow_up)
        second = smtp.wait_for(2)[1]
        served.product.wait()
        assert second["In-Reply-To"] == follow_up["Message-ID"]
        assert second["References"].split() == [first["Message-ID"], reply["Message-ID"], follow_up["Message-ID"]]
        assert "1-2 business days" in second.get_content()

        person = customer_mail("Can I talk to a human please?", replying_to=second)
        del person["References"]  # some clients keep only In-Reply-To: the bot's reply still finds the thread
        mail_to(served.port, person)
        third = smtp.wait_for(3)[2]
        served.product.wait()
        assert "connecting you with a member of our team" in third.get_content()

        thread = served.product.store.channel_thread("shop", "email", f"{CUSTOMER} {first['Message-ID']}")
        assert thread is not None and thread.address["message_id"] == person["Message-ID"]
        turns = served.product.store.conversation(thread.conversation_id)
        assert [t.question for t in turns] == [SHIPPING, "And how fast is express?", "Can I talk to a human please?"]
        assert "shipping" in (turns[1].rewritten_query or "").lower()  # the follow-up was asked in context
        assert {(t.channel, t.customer_id) for t in turns} == {("email", f"email:{CUSTOMER}")}
        handoff = served.product.store.handoff("shop", thread.conversation_id)
        assert handoff is not None and handoff.state == "open" and turns[2].handoff
    assert smtp.logins and all(login == (LOGIN, PASSWORD) for login in smtp.logins)
    assert PASSWORD not in caplog.text
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("conversations.sqlite*"))
    assert PASSWORD.encode() not in stored


def test_what_must_not_be_answered_is_not_and_a_mail_delivered_twice_is_answered_once(tmp_path, embedder):
    with relay(fail=1) as smtp, served_mail(tmp_path, embedder, smtp) as served:
        stranger = customer_mail(SHIPPING)
        stranger.replace_header("To", "sales@shop.example")
        with smtplib.SMTP("127.0.0.1", served.port, timeout=30) as client:
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                client.send_message(stranger, from_addr=CUSTOMER, to_addrs=["sales@shop.example"])
        assert refused.value.recipients["sales@shop.example"][0] == 550

        for mail, return_path in [
            (customer_mail("I am out of the office until Monday.", headers={"Auto-Submitted": "auto-replied"}), None),
            (customer_mail("Our weekly offers", headers={"Precedence": "bulk", "List-Id": "<offers.x>"}), None),
            (customer_mail("Delivery failed: mailbox full"), ""),
            (customer_mail(SHIPPING, sender=SUPPORT), SUPPORT),  # our own reply, bounced back to us
        ]:
            assert mail_to(served.port, mail, return_path=return_path) == {}  # taken, and not answered

        twice = customer_mail(SHIPPING, message_id="<twice@customer.example>")
        mail_to(served.port, twice)
        mail_to(served.port, twice)  # the sending server did not see our 250 and delivers again
        served.product.wait()  # every mail queued is answered and its reply handed to the relay
        assert [r.message["In-Reply-To"] for r in smtp.received] == ["<twice@customer.example>"]
        assert smtp.attempts == 2  # the relay's 451 was retried


def test_an_oversized_mail_is_refused_with_552(tmp_path, embedder):
    with relay() as smtp, served_mail(tmp_path, embedder, smtp, email_max_bytes=20_000) as served:
        big = customer_mail(SHIPPING + "\n" + "A line of a very long mail.\n" * 1000)
        with smtplib.SMTP("127.0.0.1", served.port, timeout=30) as client:
            with pytest.raises(smtplib.SMTPSenderRefused) as declared:  # the size it declares up front
                client.send_message(big, from_addr=CUSTOMER)
            assert declared.value.smtp_code == 552
            client.rset()
            client.mail(CUSTOMER)  # a sender that does not declare it is stopped at the end of DATA
            client.rcpt(SUPPORT)
            assert client.data(big.as_string())[0] == 552
        served.product.wait()
        assert smtp.received == []


def test_when_too_many_mails_wait_the_sending_server_is_told_to_retry(tmp_path, embedder):
    with relay() as smtp, served_mail(tmp_path, embedder, smtp, channel_workers=1, channel_queue_size=1) as served:
        smtp.hold.clear()  # the one worker stays busy handing its reply to the relay
        mail_to(served.port, customer_mail(SHIPPING))
        assert smtp.delivering.wait(60)
        mail_to(served.port, customer_mail("How fast is express shipping?"))  # waits in the queue
        busy = customer_mail("Do you ship to PO boxes?", message_id="<busy@customer.example>")
        with pytest.raises(smtplib.SMTPDataError) as deferred:
            mail_to(served.port, busy)
        assert deferred.value.smtp_code == 451
        smtp.hold.set()
        served.product.wait()
        mail_to(served.port, busy)  # the sending server's retry is answered
        replies = smtp.wait_for(3)
    assert replies[2]["In-Reply-To"] == "<busy@customer.example>"


def test_a_listen_port_already_taken_says_what_to_set(tmp_path):
    store = SQLAlchemyConversationStore(f"sqlite:///{tmp_path / 'c.sqlite'}")
    bridge = ChannelBridge(lambda kb_id: pytest.fail("nothing is asked"), store, workers=1)
    try:
        with relay() as taken:
            listener = MailListener("127.0.0.1", taken.port, 1000, lambda address: None, bridge)
            with pytest.raises(ConfigurationError, match="RAG_EMAIL_LISTEN_PORT"):
                listener.start()
    finally:
        bridge.close()
        store.close()
