"""Redaction of personal data: what must go (e-mail, phone, card and ID numbers) and what a support chat needs to
keep (order numbers, prices, dates, postcodes and every other number)."""

from __future__ import annotations

import pytest

from rag.text.redaction import CARD, EMAIL, ID_NUMBER, PHONE, luhn_valid, redact, redaction

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "text, expected",
    [
        # e-mail
        ("Email me: john.smith+tag@mail.example.co.uk!", f"Email me: {EMAIL}!"),
        ("邮箱zhang.san@qq.com请回复", f"邮箱{EMAIL}请回复"),
        ("cc A_B-c@Sub.Example.ORG, thanks", f"cc {EMAIL}, thanks"),
        # phone: international, North American, Chinese mobile and landline
        ("Phone +44 20 7946 0958 please", f"Phone {PHONE} please"),
        ("call +1 (555) 123-4567 now", f"call {PHONE} now"),
        ("Call (555) 123-4567 today", f"Call {PHONE} today"),
        ("Call 555-123-4567.", f"Call {PHONE}."),
        ("Toll free: 1-800-555-0142", f"Toll free: {PHONE}"),
        ("or 555.123.4567", f"or {PHONE}"),
        ("手机13812345678", f"手机{PHONE}"),
        ("手机：138-1234-5678。", f"手机：{PHONE}。"),
        ("我的号码是 159 8765 4321，谢谢", f"我的号码是 {PHONE}，谢谢"),
        ("+86 138 1234 5678", PHONE),
        ("+8613812345678", PHONE),
        ("电话010-12345678", f"电话{PHONE}"),
        ("请拨(0755) 1234567转总机", f"请拨{PHONE}转总机"),
        # payment cards (Luhn-valid)
        ("card 4111 1111 1111 1111 ok", f"card {CARD} ok"),
        ("卡号6212345678901232", f"卡号{CARD}"),
        ("Amex 3782 822463 10005", f"Amex {CARD}"),
        ("5555-5555-5555-4444 exp 12/27", f"{CARD} exp 12/27"),
        ("4000056655665556.", f"{CARD}."),
        # Chinese resident ID numbers (valid check character and birth date; 15-digit old form)
        ("身份证号：440304199001010011", f"身份证号：{ID_NUMBER}"),
        ("ID 11010519491231002x", f"ID {ID_NUMBER}"),
        ("身份证310115198506151236。", f"身份证{ID_NUMBER}。"),
        ("旧身份证 110105491231002", f"旧身份证 {ID_NUMBER}"),
        # several in one text
        (
            "I'm li.lei@example.cn, 13912345678, card 4242 4242 4242 4242",
            f"I'm {EMAIL}, {PHONE}, card {CARD}",
        ),
    ],
)
def test_personal_data_is_replaced(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Where is order PC-2026-001234?",
        "order #58213 has not arrived",
        "It cost $49.99, the other one ¥1,299",
        "price ¥12,999.00 (incl. VAT)",
        "Delivered 2026-11-25 at 8:00 a.m.",
        "open from 9:00-17:30, 2026/11/25",
        "2026年11月25日下午3点",
        "postcode 100080",
        "zip 94105-1234",
        "London SW1A 1AA",
        "we sold 1,234,567 units in 2026",
        "3 items x 2, 15% off",
        "4111 1111 1111 1112",  # Luhn-invalid 16 digits
        "order 1234 5678 9012 3456",  # Luhn-invalid too
        "1234567890123456",
        "110105194912310021",  # an ID number with a wrong check digit
        "44030419900101001X",  # ditto
        "订单号 202611250001234",
        "tracking 1Z999AA10123456784",
        "version 3.12.4, build 20261125",
        "ISBN 978-0-306-40615-7",
        "SKU 12345-678 and part 12-3456-7890",
        "IP 192.168.1.100",
        "Room 1203, 12/F",
        "orders 123456789012 and 1234567890123",
        "型号 MX-1380012345678",
        "email support at example dot com",
        "",
    ],
)
def test_everything_else_is_kept(text):
    assert redact(text) == text


def test_redaction_counts_what_it_replaced():
    result = redaction("a@b.cn or c@d.com; 138 1234 5678; 4111111111111111; 4111111111111112")
    assert result.text == f"{EMAIL} or {EMAIL}; {PHONE}; {CARD}; 4111111111111112"
    assert result.counts == {EMAIL: 2, PHONE: 1, CARD: 1}
    assert result.total == 4
    assert redaction("nothing here").total == 0


def test_redacting_twice_changes_nothing_more():
    once = redact("Mail x@y.com, 电话 010-12345678, ID 11010519491231002X")
    assert redact(once) == once


def test_luhn():
    assert luhn_valid("4111-1111-1111-1111") and luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112") and not luhn_valid("1234567890123456")
