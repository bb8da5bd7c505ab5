"""Curated answers: questions a support lead answers in their own words, per knowledge base, effective at once.

Unlike an FAQ sheet (ingested as chunks, answered only after the next ingest), a curated answer lives in its own
SQLite file (`curated.sqlite` in the knowledge base folder; with RAG_STORE_URL, two tables in PostgreSQL) and is
matched before retrieval by rag.chat.curated.CuratedMatcher. Every change bumps `version()`, so a matcher in another
thread, process or server reloads on its next question.

CSV format (import and export): header `question,answer,phrasings,language,enabled`; phrasings separated by
" | " or line breaks; UTF-8 with or without BOM. An imported row whose question is already curated updates that
entry; a bad row is reported by its line number and skipped whole.
"""

from __future__ import annotations

import builtins
import csv
import io
import json
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from rag.core.errors import Conflict, NotFound, RagError
from rag.store.sql import Connection, Cursor, SQLiteConnection, run_script
from rag.text.language import detect_language

DB_NAME = "curated.sqlite"
MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 10000
MAX_PHRASINGS = 20
MAX_PHRASING_CHARS = 1000
LANGUAGES = ("en", "zh")
CSV_COLUMNS = ("question", "answer", "phrasings", "language", "enabled")
# " | " separates phrasings in one CSV cell (line breaks do too), so a phrasing cannot hold it.
PHRASING_SEPARATOR = " | "
_PHRASING_SPLIT = re.compile(r"\s+\|\s+|\r?\n")
# A cell starting with one of these is a formula to a spreadsheet: exported with a leading apostrophe (OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_TRUE = {"", "1", "true", "yes", "y", "on", "enabled"}
_FALSE = {"0", "false", "no", "n", "off", "disabled"}

_COLUMNS = "id, question, answer, phrasings, language, enabled, created_at, updated_at"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS {answers} (
    id TEXT PRIMARY KEY,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    phrasings TEXT NOT NULL,
    language TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS {meta} (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO {meta} (key, value) VALUES ('version', 0) ON CONFLICT (key) DO NOTHING
"""


class InvalidCuratedAnswer(RagError, ValueError):
    """A curated answer (or a CSV file of them) breaks a rule; `field` names the field at fault."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


class DuplicateCuratedAnswer(Conflict):
    """Another curated answer has the same question."""


class CuratedAnswerNotFound(NotFound):
    def __init__(self, answer_id: str):
        self.answer_id = answer_id
        super().__init__(f"No curated answer with id {answer_id!r} - list the curated answers to see their ids")


@dataclass
class CuratedAnswer:
    id: str
    question: str
    answer: str
    phrasings: list[str]
    language: str  # "en", "zh", or "" (any: matched in whichever language the question is asked)
    enabled: bool
    created_at: datetime
    updated_at: datetime

    def texts(self) -> list[str]:
        """What a customer's question is compared with: the question and its other phrasings."""
        return [self.question, *self.phrasings]


@dataclass
class CsvImport:
    added: int = 0
    updated: int = 0
    problems: list[str] = field(default_factory=list)  # "line 4: answer is empty - ...", one per skipped row
    deleted: int = 0  # with replace=True: entries the file no longer holds


class CuratedAnswers(Protocol):
    """Where a knowledge base's curated answers are kept."""

    def list(self, enabled_only: bool = False) -> builtins.list[CuratedAnswer]: ...

    def get(self, answer_id: str) -> CuratedAnswer: ...

    def add(
        self,
        question: str,
        answer: str,
        phrasings: Sequence[str] = (),
        language: str = "",
        enabled: bool = True,
    ) -> CuratedAnswer: ...

    def update(
        self,
        answer_id: str,
        *,
        question: str | None = None,
        answer: str | None = None,
        phrasings: Sequence[str] | None = None,
        language: str | None = None,
        enabled: bool | None = None,
    ) -> CuratedAnswer: ...

    def _check_unique(self, question: str, but: str | None = None) -> None:
        """One curated answer per question (case ignored), so that a CSV export imports back as it was."""
        for other in self.list():
            if other.id != but and other.question.casefold() == question.casefold():
                raise DuplicateCuratedAnswer(
                    f"Curated answer {other.id} already has the question {other.question!r} - edit that one, or "
                    f"add this wording to its phrasings"
                )

    def delete(self, answer_id: str) -> bool: ...

    def version(self) -> int: ...

    def import_csv(self, text: str, *, replace: bool = False) -> CsvImport: ...

    def export_csv(self) -> str: ...


# ---- validation (pure) ----------------------------------------------------------------------------------
def clean_question(question: str, field_name: str = "question") -> str:
    """The question on one line, checked: not empty, at most MAX_QUESTION_CHARS.

    >>> clean_question("  How much is\\n express shipping? ")
    'How much is express shipping?'
    """
    if not isinstance(question, str):
        raise InvalidCuratedAnswer(field_name, f"{field_name} must be text, not {type(question).__name__}")
    text = " ".join(question.replace("\x00", "").split())
    if not text:
        raise InvalidCuratedAnswer(field_name, f"{field_name} is empty - write the question a customer asks")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidCuratedAnswer(
            field_name,
            f"{field_name} has {len(text)} characters - keep it to {MAX_QUESTION_CHARS} (one question; "
            "other ways to ask it go in phrasings)",
        )
    return text


def clean_answer(answer: str) -> str:
    """The answer as written (line breaks kept; surrounding blank space removed), checked."""
    if not isinstance(answer, str):
        raise InvalidCuratedAnswer("answer", f"answer must be text, not {type(answer).__name__}")
    text = answer.replace("\x00", "").strip()
    if not text:
        raise InvalidCuratedAnswer("answer", "answer is empty - write the reply customers should get")
    if len(text) > MAX_ANSWER_CHARS:
        raise InvalidCuratedAnswer(
            "answer", f"answer has {len(text)} characters - shorten it to {MAX_ANSWER_CHARS} or link to a page"
        )
    return text


def clean_phrasings(phrasings: Iterable[str], question: str = "") -> list[str]:
    """Other ways to ask the question: on one line each, blanks and repeats (of each other or of the question)
    dropped, checked.

    >>> clean_phrasings(["Express cost?", " ", "express  cost?", "Is express pricey?"])
    ['Express cost?', 'Is express pricey?']
    """
    if isinstance(phrasings, str):
        raise InvalidCuratedAnswer("phrasings", "phrasings must be a list of questions, not one string")
    out: list[str] = []
    seen = {question.casefold()} if question else set()
    for i, phrasing in enumerate(phrasings, start=1):
        if not isinstance(phrasing, str):
            raise InvalidCuratedAnswer("phrasings", f"phrasing {i} must be text, not {type(phrasing).__name__}")
        text = " ".join(phrasing.replace("\x00", "").split())
        if len(text) > MAX_PHRASING_CHARS:
            raise InvalidCuratedAnswer(
                "phrasings", f"phrasing {i} has {len(text)} characters - keep each to {MAX_PHRASING_CHARS}"
            )
        if PHRASING_SEPARATOR.strip() in text.split():
            raise InvalidCuratedAnswer(
                "phrasings", f"phrasing {i} holds ' | ', which separates phrasings - split it into two phrasings"
            )
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            out.append(text)
    if len(out) > MAX_PHRASINGS:
        raise InvalidCuratedAnswer(
            "phrasings", f"{len(out)} phrasings given - keep the {MAX_PHRASINGS} most different ones"
        )
    return out


def clean_language(language: str, question: str) -> str:
    """ "en" or "zh"; "" is detected from the question.

    >>> clean_language("", "退货政策是什么？"), clean_language("EN", "x")
    ('zh', 'en')
    """
    value = (language or "").strip().lower()
    if not value:
        return detect_language(question)
    if value not in LANGUAGES:
        raise InvalidCuratedAnswer(
            "language", f"language {language!r} is not supported - use 'en', 'zh', or leave it empty to detect it"
        )
    return value


def draft_answer(
    answer_id: str, question: str, answer: str, phrasings: Sequence[str] = (), language: str = ""
) -> CuratedAnswer:
    """A curated answer checked as `add` checks one, but not stored (to try it before publishing)."""
    question = clean_question(question)
    now = datetime.now(UTC)
    return CuratedAnswer(
        id=answer_id,
        question=question,
        answer=clean_answer(answer),
        phrasings=clean_phrasings(phrasings, question),
        language=clean_language(language, question),
        enabled=True,
        created_at=now,
        updated_at=now,
    )


def new_id() -> str:
    """A short random url-safe id (11 characters, 64 random bits)."""
    return secrets.token_urlsafe(8)


# ---- CSV (pure) --------------------------------------------------------------------------------------------
def csv_safe(cell: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula.

    >>> csv_safe("=HYPERLINK(\\"http://x\\")"), csv_safe("Free returns")
    ('\\'=HYPERLINK("http://x")', 'Free returns')
    """
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def csv_unsafe(cell: str) -> str:
    """The cell as written before `csv_safe` (so an export imports back unchanged)."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START) else cell


def to_csv(answers: Sequence[CuratedAnswer]) -> str:
    """The answers as CSV text (header first; phrasings one per line in their cell)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for a in answers:
        row = [a.question, a.answer, "\n".join(a.phrasings), a.language, "true" if a.enabled else "false"]
        writer.writerow([csv_safe(cell) for cell in row])
    return out.getvalue()


@dataclass(frozen=True)
class CsvRow:
    line: int
    question: str
    answer: str
    phrasings: list[str]
    language: str
    enabled: bool


def parse_csv(text: str) -> tuple[list[CsvRow], list[str]]:
    """(valid rows, problems): each bad row named by the line it starts on, and left out whole.

    >>> rows, problems = parse_csv("question,answer\\nDo you ship to Canada?,Yes.\\n,No question here\\n")
    >>> [r.question for r in rows], problems
    (['Do you ship to Canada?'], ['line 3: question is empty - write the question a customer asks'])
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = next(reader, None)
    columns = [c.strip().lower() for c in header or []]
    missing = [c for c in ("question", "answer") if c not in columns]
    if missing:
        raise InvalidCuratedAnswer(
            "csv", f"the CSV header lacks {', '.join(missing)} - its first line must be {','.join(CSV_COLUMNS)}"
        )
    problems = [
        f"line 1: unknown column {c!r} ignored - the columns are {','.join(CSV_COLUMNS)}"
        for c in columns
        if c and c not in CSV_COLUMNS
    ]
    rows: list[CsvRow] = []
    seen: dict[str, int] = {}
    line = reader.line_num + 1
    for record in reader:
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue
        try:
            row = _csv_row(start, dict(zip(columns, (csv_unsafe(c) for c in record), strict=False)))
        except InvalidCuratedAnswer as exc:
            problems.append(f"line {start}: {exc}")
            continue
        key = row.question.casefold()
        if key in seen:
            problems.append(f"line {start}: the same question as line {seen[key]} - merge the two rows")
            continue
        seen[key] = start
        rows.append(row)
    return rows, problems


def _csv_row(line: int, cells: dict[str, str]) -> CsvRow:
    question = clean_question(cells.get("question", ""))
    enabled = (cells.get("enabled") or "").strip().lower()
    if enabled not in _TRUE | _FALSE:
        raise InvalidCuratedAnswer("enabled", f"enabled is {enabled!r} - write true or false (empty: true)")
    return CsvRow(
        line=line,
        question=question,
        answer=clean_answer(cells.get("answer", "")),
        phrasings=clean_phrasings(_PHRASING_SPLIT.split(cells.get("phrasings") or ""), question),
        language=clean_language(cells.get("language") or "", question),
        enabled=enabled in _TRUE,
    )


# ---- SQLite ----------------------------------------------------------------------------------------------
class SQLCuratedAnswers:
    """Curated answers in two tables of a SQL database (rag.store.sql): a SQLite file of their own
    (`SQLiteCuratedAnswers`) or, with RAG_STORE_URL, PostgreSQL tables of the knowledge base shared by every server
    (rag.store.postgres)."""

    def __init__(self, conn: Connection, *, answers: str = "curated_answers", meta: str = "curated_meta"):
        self._conn, self._answers, self._meta = conn, answers, meta
        with conn.transaction():
            run_script(conn, _SCHEMA.format(answers=answers, meta=meta))  # idempotent

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SQLCuratedAnswers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reading ---------------------------------------------------------------------------------------
    def list(self, enabled_only: bool = False) -> builtins.list[CuratedAnswer]:
        where = " WHERE enabled = 1" if enabled_only else ""
        rows = self._rows(f"SELECT {_COLUMNS} FROM {{answers}}{where} ORDER BY created_at, id")
        return [_entry(r) for r in rows]

    def get(self, answer_id: str) -> CuratedAnswer:
        rows = self._rows(f"SELECT {_COLUMNS} FROM {{answers}} WHERE id = ?", (answer_id,))
        if not rows:
            raise CuratedAnswerNotFound(answer_id)
        return _entry(rows[0])

    def version(self) -> int:
        return int(self._rows("SELECT value FROM {meta} WHERE key = 'version'")[0][0])

    # ---- writing ---------------------------------------------------------------------------------------
    def add(
        self,
        question: str,
        answer: str,
        phrasings: Sequence[str] = (),
        language: str = "",
        enabled: bool = True,
    ) -> CuratedAnswer:
        question = clean_question(question)
        now = datetime.now(UTC)
        entry = CuratedAnswer(
            id=new_id(),
            question=question,
            answer=clean_answer(answer),
            phrasings=clean_phrasings(phrasings, question),
            language=clean_language(language, question),
            enabled=_flag(enabled),
            created_at=now,
            updated_at=now,
        )
        with self._write():
            self._check_unique(question)
            self._insert(entry)
            self._bump()
        return entry

    def update(
        self,
        answer_id: str,
        *,
        question: str | None = None,
        answer: str | None = None,
        phrasings: Sequence[str] | None = None,
        language: str | None = None,
        enabled: bool | None = None,
    ) -> CuratedAnswer:
        """Change the fields given (None: keep). language="" detects it again from the (new) question."""
        with self._write():
            entry = self.get(answer_id)
            new_question = clean_question(question) if question is not None else entry.question
            self._check_unique(new_question, but=answer_id)
            changed = CuratedAnswer(
                id=entry.id,
                question=new_question,
                answer=clean_answer(answer) if answer is not None else entry.answer,
                phrasings=clean_phrasings(phrasings if phrasings is not None else entry.phrasings, new_question),
                language=clean_language(language, new_question) if language is not None else entry.language,
                enabled=_flag(enabled) if enabled is not None else entry.enabled,
                created_at=entry.created_at,
                updated_at=_later(entry.updated_at),
            )
            self._replace(changed)
            self._bump()
        return changed

    def _check_unique(self, question: str, but: str | None = None) -> None:
        """One curated answer per question (case ignored), so that a CSV export imports back as it was."""
        for other in self.list():
            if other.id != but and other.question.casefold() == question.casefold():
                raise DuplicateCuratedAnswer(
                    f"Curated answer {other.id} already has the question {other.question!r} - edit that one, or "
                    f"add this wording to its phrasings"
                )

    def delete(self, answer_id: str) -> bool:
        with self._write():
            deleted = self._execute("DELETE FROM {answers} WHERE id = ?", (answer_id,)).rowcount > 0
            if deleted:
                self._bump()
        return deleted

    def import_csv(self, text: str, *, replace: bool = False) -> CsvImport:
        """Add the file's rows; a row whose question is already curated updates that entry. `replace`: also
        delete the entries the file does not name. All in one transaction; bad rows skipped, listed in `problems`."""
        rows, problems = parse_csv(text)
        result = CsvImport(problems=problems)
        with self._write():
            existing = {e.question.casefold(): e for e in self.list()}
            for row in rows:
                self._apply(row, existing.get(row.question.casefold()), result)
            if replace:
                named = {r.question.casefold() for r in rows} | _named_in_problems(text, problems)
                for key, entry in existing.items():
                    if key not in named:
                        self._execute("DELETE FROM {answers} WHERE id = ?", (entry.id,))
                        result.deleted += 1
            if result.added or result.updated or result.deleted:
                self._bump()
        return result

    def export_csv(self) -> str:
        return to_csv(self.list())

    # ---- internals ---------------------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction; writers take turns (SQLite: BEGIN IMMEDIATE; PostgreSQL: the version row's lock,
        taken first, so that each writer's checks see what the one before it committed)."""
        with self._conn.transaction():
            self._execute("UPDATE {meta} SET value = value WHERE key = 'version'")
            yield

    def _execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        return self._conn.execute(sql.format(answers=self._answers, meta=self._meta), params)

    def _rows(self, sql: str, params: Sequence[object] = ()) -> Sequence[Any]:
        return self._execute(sql, params).fetchall()

    def _bump(self) -> None:
        self._execute("UPDATE {meta} SET value = value + 1 WHERE key = 'version'")

    def _insert(self, e: CuratedAnswer) -> None:
        self._execute(f"INSERT INTO {{answers}} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", _values(e))

    def _replace(self, e: CuratedAnswer) -> None:
        values = _values(e)
        self._execute(
            "UPDATE {answers} SET question = ?, answer = ?, phrasings = ?, language = ?, enabled = ?, "
            "created_at = ?, updated_at = ? WHERE id = ?",
            (*values[1:], values[0]),
        )

    def _apply(self, row: CsvRow, entry: CuratedAnswer | None, result: CsvImport) -> None:
        fields = (row.question, row.answer, row.phrasings, row.language, row.enabled)
        if entry is None:
            now = datetime.now(UTC)
            self._insert(CuratedAnswer(new_id(), *fields, created_at=now, updated_at=now))
            result.added += 1
        elif fields != (entry.question, entry.answer, entry.phrasings, entry.language, entry.enabled):
            self._replace(CuratedAnswer(entry.id, *fields, entry.created_at, _later(entry.updated_at)))
            result.updated += 1


class SQLiteCuratedAnswers(SQLCuratedAnswers):
    """Curated answers in one SQLite file, shared by threads (one connection under a lock) and processes (WAL,
    a busy timeout for writers).

    >>> import tempfile, pathlib
    >>> store = SQLiteCuratedAnswers(pathlib.Path(tempfile.mkdtemp()) / "curated.sqlite")
    >>> entry = store.add("Do you ship to Canada?", "Yes, in 5-8 business days.", ["Can I order from Canada?"])
    >>> store.get(entry.id).phrasings, entry.language, store.version()
    (['Can I order from Canada?'], 'en', 1)
    """

    def __init__(self, path: Path, *, timeout: float = 30.0):
        self.path = Path(path)
        super().__init__(SQLiteConnection(self.path, timeout=timeout))


def _values(e: CuratedAnswer) -> tuple[Any, ...]:
    return (
        e.id,
        e.question,
        e.answer,
        json.dumps(e.phrasings, ensure_ascii=False),
        e.language,
        int(e.enabled),
        e.created_at.isoformat(),
        e.updated_at.isoformat(),
    )


def _entry(row: Sequence[Any]) -> CuratedAnswer:
    id_, question, answer, phrasings, language, enabled, created_at, updated_at = row
    return CuratedAnswer(
        id=id_,
        question=question,
        answer=answer,
        phrasings=list(json.loads(phrasings)),
        language=language,
        enabled=bool(enabled),
        created_at=datetime.fromisoformat(created_at),
        updated_at=datetime.fromisoformat(updated_at),
    )


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidCuratedAnswer("enabled", f"enabled must be true or false, not {value!r}")
    return value


def _later(previous: datetime) -> datetime:
    """Now, but strictly after `previous`: a matcher re-embeds an entry when its updated_at changes, and two
    edits within one clock tick must still differ."""
    now = datetime.now(UTC)
    return now if now > previous else previous + timedelta(microseconds=1)


def _named_in_problems(text: str, problems: Sequence[str]) -> set[str]:
    """Questions of the rows skipped as bad: `replace` must not delete their entries for a typo elsewhere."""
    bad_lines = {int(m.group(1)) for p in problems if (m := re.match(r"line (\d+):", p)) and m.group(1) != "1"}
    if not bad_lines:
        return set()
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = [c.strip().lower() for c in next(reader, [])]
    named: set[str] = set()
    line = reader.line_num + 1
    for record in reader:
        start, line = line, reader.line_num + 1
        cells = dict(zip(header, record, strict=False))
        if start in bad_lines and cells.get("question", "").strip():
            named.add(" ".join(csv_unsafe(cells["question"]).split()).casefold())
    return named
