"""Personal data taken out of text before it is stored or sent to a model: e-mail addresses, phone numbers,
payment card numbers and Chinese resident ID numbers, each replaced by a placeholder that says what was there.

Why checksums: a support chat is full of numbers that must survive (order numbers, prices, dates, tracking and
postcodes). A card number is only redacted when it passes the Luhn check and an ID number only when its check
digit and birth date are valid, so a 16-digit order number is kept 9 times in 10 and nearly every other number
never looks like either. Phone numbers have no checksum; they are recognised by their shape (a + country code,
North American 3-3-4 groups, Chinese mobile and landline numbers), which ordinary numbers rarely have.

    >>> redact("Mail me at jane.doe@example.com or call +1 (555) 123-4567 about order #58213.")
    'Mail me at [email] or call [phone] about order #58213.'
    >>> redact("我的手机是138 1234 5678，身份证11010519491231002X，订单PC-2026-001234，¥1,299")
    '我的手机是[phone]，身份证[id number]，订单PC-2026-001234，¥1,299'
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

EMAIL = "[email]"
PHONE = "[phone]"
CARD = "[card]"
ID_NUMBER = "[id number]"

# Python's \w and \d also match Chinese characters and full-width digits; Chinese text runs words and numbers
# together ("电话13812345678"), so a number may follow any character but an ASCII letter, digit or joiner.
_START = r"(?<![A-Za-z0-9_\-#/.+@])"
_END = r"(?![A-Za-z0-9_]|[-/.][0-9])"

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
_ID_18 = re.compile(_START + r"\d{6}[ ]?\d{8}[ ]?\d{3}[0-9Xx]" + _END)
_ID_15 = re.compile(_START + r"\d{15}" + _END)
# Contiguous, or groups of 3 to 6 digits after a first group of 4, all joined by the same space or dash.
_CARD = re.compile(_START + r"(?:\d{13,19}|\d{4}([ -])\d{3,6}(?:\1\d{3,6}){1,3})" + _END)
_CN_MOBILE = re.compile(_START + r"(?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}" + _END)
_CN_LANDLINE = re.compile(_START + r"(?:\(0\d{2,3}\)[ ]?|0\d{2,3}-)\d{7,8}" + _END)
_NORTH_AMERICAN = re.compile(_START + r"(?:1[-. ])?(?:\(\d{3}\)[ ]?|\d{3}([-. ]))\d{3}(?(1)\1|[-. ])\d{4}" + _END)
_INTERNATIONAL = re.compile(r"(?<![A-Za-z0-9_])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){1,5}" + _END)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@dataclass
class Redaction:
    """Redacted text, and how many of each kind were replaced (by placeholder)."""

    text: str
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def redact(text: str) -> str:
    """`text` with e-mail addresses, phone, payment card and Chinese ID numbers replaced by placeholders.

    >>> redact("Card 4242-4242-4242-4242 expires 2026-11-25; order 4242-4242-4242-4241 was $49.99")
    'Card [card] expires 2026-11-25; order 4242-4242-4242-4241 was $49.99'
    """
    return redaction(text).text


def redaction(text: str) -> Redaction:
    """The redacted text and the count of each kind replaced.

    >>> r = redaction("a@b.cn, b@c.com, 555-123-4567")
    >>> r.text, dict(r.counts), r.total
    ('[email], [email], [phone]', {'[email]': 2, '[phone]': 1}, 3)
    """
    counts: Counter[str] = Counter()
    # Most specific first: an e-mail address may hold digits, an ID number may pass the Luhn check, and a card
    # number's groups may look like a phone number's.
    steps: list[tuple[re.Pattern[str], str, Callable[[str], bool]]] = [
        (_EMAIL, EMAIL, _always),
        (_ID_18, ID_NUMBER, _valid_id_18),
        (_ID_15, ID_NUMBER, _valid_id_15),
        (_CARD, CARD, _luhn_card),
        (_INTERNATIONAL, PHONE, _international),  # before the others, which would leave its +CC behind
        (_CN_MOBILE, PHONE, _always),
        (_CN_LANDLINE, PHONE, _always),
        (_NORTH_AMERICAN, PHONE, _always),
    ]
    for pattern, placeholder, valid in steps:
        text = pattern.sub(_replacer(placeholder, valid, counts), text)
    return Redaction(text, counts)


def _replacer(placeholder: str, valid: Callable[[str], bool], counts: Counter[str]) -> Callable[[re.Match], str]:
    def replace(match: re.Match) -> str:
        if not valid(match.group(0)):
            return match.group(0)
        counts[placeholder] += 1
        return placeholder

    return replace


def _always(_: str) -> bool:
    return True


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def luhn_valid(number: str) -> bool:
    """Whether the digits of `number` pass the Luhn check that every payment card number passes.

    >>> luhn_valid("4111 1111 1111 1111"), luhn_valid("4111 1111 1111 1112")
    (True, False)
    """
    total = 0
    for i, digit in enumerate(reversed(_digits(number))):
        n = int(digit) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _luhn_card(number: str) -> bool:
    digits = _digits(number)
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_valid(digits)


def _valid_birth_date(yyyymmdd: str) -> bool:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return 1900 <= born.year <= 2100


def _valid_id_18(number: str) -> bool:
    """A Chinese resident ID (GB 11643): 17 digits, a valid birth date, and the ISO 7064 MOD 11-2 check character.

    >>> _valid_id_18("11010519491231002X"), _valid_id_18("110105194912310021")
    (True, False)
    """
    chars = number.replace(" ", "").upper()
    body, check = chars[:17], chars[17]
    if not _valid_birth_date(body[6:14]) or body[0] == "0":
        return False
    return _ID_CHECK[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True)) % 11] == check


def _valid_id_15(number: str) -> bool:
    """The old 15-digit form has no check digit: an area code and a valid 19YYMMDD birth date must do."""
    return number[0] != "0" and _valid_birth_date("19" + number[6:12])


def _international(number: str) -> bool:
    return 8 <= len(_digits(number)) <= 15
