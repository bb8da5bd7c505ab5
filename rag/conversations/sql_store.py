"""Every turn of every conversation, and the customers' ratings of them, in a SQL database: SQLite by
default (one file beside the knowledge base), PostgreSQL when several API workers or hosts share it.

    chat_messages   one row per answered question: what was asked, retrieved and answered, and how
    chat_feedback   at most one rating per message; a second rating replaces the first

Tables are created when missing. Times go in and come out as timezone-aware UTC datetimes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import StaticPool

from rag.conversations.store import RATINGS, Feedback, Rating, StoredMessage
from rag.core.errors import ConfigurationError, DatabaseUnavailable, MessageNotFound

_URL_EXAMPLES = "sqlite:///data/conversations.db or postgresql+psycopg://user:password@host:5432/dbname"


# ---- schema ------------------------------------------------------------------------------------------
class _UTCDateTime(sa.types.TypeDecorator):
    """Aware UTC datetimes in and out. SQLite has no time zone type, so it keeps naive UTC text there,
    which still sorts and compares correctly because every stored value is UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = _utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_metadata = sa.MetaData()

_messages = sa.Table(
    "chat_messages",
    _metadata,
    # Insertion order breaks ties between messages stored within the same microsecond. SQLite only
    # auto-increments a column declared exactly INTEGER PRIMARY KEY.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String, nullable=False, unique=True),
    sa.Column("conversation_id", sa.String, nullable=False),
    sa.Column("created_at", _UTCDateTime, nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("rewritten_query", sa.Text),
    sa.Column("retrieved", sa.JSON, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("citations", sa.JSON, nullable=False),
    sa.Column("answered", sa.Boolean, nullable=False),
    sa.Column("handoff", sa.Boolean, nullable=False),
    sa.Column("generator", sa.String, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("prompt_tokens", sa.Integer, nullable=False),
    sa.Column("completion_tokens", sa.Integer, nullable=False),
    sa.Column("language", sa.String, nullable=False),
    sa.Column("decline_reason", sa.String),
    sa.Index("ix_chat_messages_conversation", "conversation_id", "created_at"),  # history()
    sa.Index("ix_chat_messages_created_at", "created_at"),  # messages(since), conversation_count(since)
)

_feedback = sa.Table(
    "chat_feedback",
    _metadata,
    sa.Column("message_id", sa.String, sa.ForeignKey("chat_messages.message_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("rating", sa.String, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("created_at", _UTCDateTime, nullable=False),
    sa.CheckConstraint("rating IN ('up', 'down')", name="ck_chat_feedback_rating"),
    sa.Index("ix_chat_feedback_created_at", "created_at"),
)

# Any constant: serialises table creation by several workers starting at once (pg_advisory_xact_lock).
_PG_CREATE_LOCK = 0x7261675F636F6E76


# ---- store -------------------------------------------------------------------------------------------
class SQLAlchemyConversationStore:
    """`SQLAlchemyConversationStore("sqlite:///data/conversations.db")` or a `postgresql+psycopg://` URL.
    Safe to share between the threads of a server: each call takes its own pooled connection."""

    def __init__(self, url: str):
        self._engine, self._shown = _engine(url)
        # A private in-memory SQLite database lives in one connection, which threads must take in turn.
        in_memory = self._engine.dialect.name == "sqlite" and not _sqlite_file(self._engine.url)
        self._lock: AbstractContextManager[Any] = threading.Lock() if in_memory else nullcontext()
        try:
            with self._engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_CREATE_LOCK})
                _metadata.create_all(conn)
        except DBAPIError as exc:
            self._engine.dispose()
            raise ConfigurationError(
                f"Cannot use the conversation database {self._shown} (RAG_DATABASE_URL): {_reason(exc)} - check "
                f"that the server is running and that the URL's host, port, database, user and password are right"
            ) from exc

    def add_message(self, message: StoredMessage) -> None:
        row = {name: getattr(message, name) for name in StoredMessage.__dataclass_fields__}
        row["created_at"] = _utc(message.created_at)
        row["retrieved"] = [[int(chunk_id), float(score)] for chunk_id, score in message.retrieved]
        try:
            with self._transaction() as conn:
                conn.execute(_messages.insert(), row)
        except IntegrityError as exc:
            raise ValueError(
                f"A message with id {message.message_id!r} is already stored - message ids must be "
                f"unique (a new uuid per answer)"
            ) from exc

    def history(self, conversation_id: str, limit: int = 20) -> list[StoredMessage]:
        if limit <= 0:
            return []
        query = (
            sa.select(_messages)
            .where(_messages.c.conversation_id == conversation_id)
            .order_by(_messages.c.created_at.desc(), _messages.c.id.desc())
            .limit(limit)
        )
        with self._transaction() as conn:
            rows = conn.execute(query).all()
        return [_message(row) for row in reversed(rows)]

    def get_message(self, message_id: str) -> StoredMessage | None:
        with self._transaction() as conn:
            row = conn.execute(sa.select(_messages).where(_messages.c.message_id == message_id)).first()
        return None if row is None else _message(row)

    def add_feedback(self, message_id: str, rating: str, comment: str | None = None) -> Feedback:
        if rating not in RATINGS:
            raise ValueError(f"rating must be 'up' or 'down', not {rating!r}")
        # checked against RATINGS just above
        feedback = Feedback(message_id, cast(Rating, rating), comment, datetime.now(UTC))
        values = vars(feedback)
        with self._transaction() as conn:
            known = conn.execute(sa.select(_messages.c.id).where(_messages.c.message_id == message_id)).first()
            if known is None:
                raise MessageNotFound(message_id)
            inserts: dict[str, Callable[[sa.Table], postgresql.Insert | sqlite.Insert]] = {
                "postgresql": postgresql.insert,
                "sqlite": sqlite.insert,
            }
            insert = inserts[conn.dialect.name](_feedback)
            # One statement, so two ratings arriving together cannot both insert (and one fail).
            conn.execute(
                insert.values(values).on_conflict_do_update(
                    index_elements=[_feedback.c.message_id],
                    set_={name: insert.excluded[name] for name in ("rating", "comment", "created_at")},
                )
            )
        return feedback

    def messages(self, since: datetime | None = None) -> list[StoredMessage]:
        query = sa.select(_messages).order_by(_messages.c.created_at, _messages.c.id)
        if since is not None:
            query = query.where(_messages.c.created_at >= _utc(since))
        with self._transaction() as conn:
            return [_message(row) for row in conn.execute(query)]

    def feedback(self, since: datetime | None = None) -> list[Feedback]:
        query = sa.select(_feedback).order_by(_feedback.c.created_at, _feedback.c.message_id)
        if since is not None:
            query = query.where(_feedback.c.created_at >= _utc(since))
        with self._transaction() as conn:
            return [Feedback(r.message_id, r.rating, r.comment, r.created_at) for r in conn.execute(query)]

    def conversation_count(self, since: datetime | None = None) -> int:
        query = sa.select(sa.func.count(sa.distinct(_messages.c.conversation_id)))
        if since is not None:
            query = query.where(_messages.c.created_at >= _utc(since))
        with self._transaction() as conn:
            return int(conn.execute(query).scalar_one())

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> SQLAlchemyConversationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLAlchemyConversationStore({self._shown!r})"

    @contextmanager
    def _transaction(self) -> Iterator[sa.Connection]:
        # The chat service answers without history (and without storing) on a RagError, so a database that
        # went away must surface as one rather than as a driver exception.
        try:
            with self._lock, self._engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise DatabaseUnavailable(
                f"The conversation database {self._shown} is unavailable: {_reason(exc)} - check the server "
                f"RAG_DATABASE_URL names"
            ) from exc


# ---- helpers -----------------------------------------------------------------------------------------
def _engine(url: str) -> tuple[Engine, str]:
    """The engine for `url`, and the URL as it may be shown (password hidden)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        shown = url if "@" not in url else url.split("://", 1)[0] + "://..."
        raise ConfigurationError(
            f"RAG_DATABASE_URL {shown!r} is not a database URL - use e.g. {_URL_EXAMPLES}"
        ) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        # SQLAlchemy's default PostgreSQL driver is psycopg2 (and `postgres://` is not accepted at all);
        # the project depends on psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"RAG_DATABASE_URL {shown!r} names a {backend} database; the conversation store supports SQLite and "
            f"PostgreSQL - use e.g. {_URL_EXAMPLES}"
        )
    # ensure_ascii=False keeps Chinese questions and citations readable in the database.
    options: dict[str, Any] = {"json_serializer": lambda obj: json.dumps(obj, ensure_ascii=False)}
    if backend == "sqlite":
        # Pooled connections move between the threads of a server; a busy writer is waited for, not failed.
        options["connect_args"] = {"check_same_thread": False, "timeout": 30}
        database = _sqlite_file(parsed)
        if database is None:
            options["poolclass"] = StaticPool  # every connection to :memory: would be a new, empty database
        else:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    else:
        options["pool_pre_ping"] = True  # a restarted server or an idle-closing proxy drops pooled connections
    try:
        engine = sa.create_engine(parsed, **options)
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigurationError(
            f"RAG_DATABASE_URL {shown!r}: the database driver is not available ({exc}) - use sqlite:/// or "
            f"postgresql+psycopg:// with `pip install 'psycopg[binary]'`"
        ) from exc
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine, shown


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: history() readers are not blocked while another thread or process stores a message.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_file(url: URL) -> str | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
        return None
    return url.database


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{value!r} has no time zone - pass an aware datetime, e.g. datetime.now(timezone.utc)")
    return value.astimezone(UTC)


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)


def _message(row: sa.Row) -> StoredMessage:
    values = row._asdict()
    values.pop("id")
    values["retrieved"] = [(int(chunk_id), float(score)) for chunk_id, score in values["retrieved"]]
    return StoredMessage(**values)
