"""Stored turns as CSV for support leads: one row per turn, with its rating, ready for a spreadsheet.

Cells a spreadsheet would run as a formula (starting with =, +, -, @, a tab or a carriage return) get a leading
apostrophe: questions are typed by anyone on the internet, and `=HYPERLINK(...)` in a question must stay text
when a support lead opens the export (CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC

from rag.conversations.store import Feedback, StoredMessage

COLUMNS: tuple[str, ...] = (
    "kb_id",
    "conversation_id",
    "message_id",
    "created_at",
    "customer_id",
    "language",
    "question",
    "rewritten_query",
    "answer",
    "answered",
    "handoff",
    "decline_reason",
    "sources",
    "rating",
    "comment",
    "latency_ms",
    "channel",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Excel opens a UTF-8 CSV as UTF-8 (Chinese readable) only when the file starts with this byte order mark.
EXCEL_BOM = "\ufeff"


def turns_csv(messages: Iterable[StoredMessage], feedback: Mapping[str, Feedback]) -> Iterator[str]:
    """CSV text, the header line first and then one line per turn (a cell may hold newlines, quoted), to stream
    as it is produced; `feedback` is the rating of each message that has one, by message id.

    >>> from datetime import datetime, timezone
    >>> turn = StoredMessage("m1", "c1", datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc), "=1+1?", None, [],
    ...     "Two, see [1].", [{"source": "faq.md"}], True, False, "extractive", 12.345, 0, 0, "en", None, "shop")
    >>> header, row = turns_csv([turn], {})
    >>> header.startswith("kb_id,conversation_id,message_id,created_at,"), row.endswith("\\r\\n")
    (True, True)
    >>> print(row.rstrip())
    shop,c1,m1,2026-03-01T09:30:00+00:00,,en,'=1+1?,,"Two, see [1].",true,false,,faq.md,,,12.35,
    """
    yield _line(COLUMNS)
    for message in messages:
        yield _line(_row(message, feedback.get(message.message_id)))


def _row(m: StoredMessage, rating: Feedback | None) -> list[str]:
    return [
        m.kb_id,
        m.conversation_id,
        m.message_id,
        m.created_at.astimezone(UTC).isoformat(),
        m.customer_id or "",
        m.language,
        m.question,
        m.rewritten_query or "",
        m.answer,
        _bool(m.answered),
        _bool(m.handoff),
        m.decline_reason or "",
        "; ".join(cited_sources(m.citations)),
        rating.rating if rating else "",
        (rating.comment or "") if rating else "",
        f"{m.latency_ms:.2f}",
        m.channel,
    ]


def cited_sources(citations: Iterable[Mapping[str, object]]) -> list[str]:
    """The distinct sources the answer cites, in citation order.

    >>> cited_sources([{"source": "a.md"}, {"source": "b.pdf"}, {"source": "a.md"}, {"title": "no source"}])
    ['a.md', 'b.pdf']
    """
    sources = (str(c.get("source") or "") for c in citations)
    return list(dict.fromkeys(s for s in sources if s))


def _bool(value: bool) -> str:
    return "true" if value else "false"


def safe_cell(value: str) -> str:
    """`value`, with a leading apostrophe if a spreadsheet would take it for a formula.

    >>> safe_cell("=SUM(A1:A9)"), safe_cell("-5 degrees"), safe_cell("ok = fine"), safe_cell("")
    ("'=SUM(A1:A9)", "'-5 degrees", 'ok = fine', '')
    """
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _line(cells: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([safe_cell(cell) for cell in cells])
    return buffer.getvalue()
