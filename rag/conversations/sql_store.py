"""Every turn of every conversation, and the customers' ratings of them, in a SQL database: SQLite by
default (one file beside the knowledge base), PostgreSQL when several API workers or hosts share it.

    chat_messages   one row per answered question: what was asked, retrieved and answered, and how, in which
                    knowledge base (kb_id) and for which customer (customer_id)
    chat_feedback   at most one rating per message; a second rating replaces the first
    chat_handoffs, chat_agent_messages    the agents' queue and a person's replies (live handoff)
    chat_channel_threads    a messaging platform's user or thread -> its conversation, and where replies go
    chat_channel_messages   the platform's id of each reply posted there -> the turn (ratings, mail threading)
    chat_channel_events     platform event ids already answered (a re-delivery is answered once), kept a week

Tables are created when missing, and columns added since a database was made are added when it opens. Times go in
and come out as timezone-aware UTC datetimes. A conversation is its (kb_id, conversation_id): the same id in two
knowledge bases is two conversations in lists, though `conversation(id)` without a kb_id returns the turns of both.

Deletion is hard: rows leave the tables (ratings first, explicitly), and a SQLite file overwrites what it freed
(secure_delete) and folds its write-ahead log back in, so erased text does not linger in the file. PostgreSQL
reclaims the space of deleted rows at its next (auto)vacuum.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import StaticPool

from rag.conversations.store import (
    CUSTOMER_REQUEST,
    HANDOFF_STATES,
    RATINGS,
    AgentMessage,
    ChannelThread,
    ConversationPage,
    ConversationQuery,
    ConversationSummary,
    Feedback,
    Handoff,
    Rating,
    StoredMessage,
)
from rag.core.errors import ConfigurationError, Conflict, DatabaseUnavailable, MessageNotFound, NotFound
from rag.store.postgres import connect_args, error_reason

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
    # Added after the first release: _add_missing_columns() adds them to older databases, so each must be
    # nullable or have a server default.
    sa.Column("kb_id", sa.String, nullable=False, server_default=""),
    sa.Column("customer_id", sa.String),
    sa.Column("mood", sa.String, nullable=False, server_default=""),
    sa.Column("topic", sa.Text, nullable=False, server_default=""),
    sa.Column("channel", sa.String, nullable=False, server_default=""),
    sa.Index("ix_chat_messages_conversation", "conversation_id", "created_at"),  # history()
    sa.Index("ix_chat_messages_created_at", "created_at"),  # messages(since), conversation_count(since)
    sa.Index("ix_chat_messages_kb_created_at", "kb_id", "created_at"),  # the same for one knowledge base
    sa.Index("ix_chat_messages_customer", "customer_id"),  # delete_customer(), conversations(customer_id=)
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

_handoffs = sa.Table(
    "chat_handoffs",
    _metadata,
    sa.Column("kb_id", sa.String, primary_key=True),
    sa.Column("conversation_id", sa.String, primary_key=True),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("agent", sa.String),
    sa.Column("reason", sa.String),
    sa.Column("opened_at", _UTCDateTime, nullable=False),
    sa.Column("updated_at", _UTCDateTime, nullable=False),
    sa.CheckConstraint("state IN ('open', 'claimed', 'resolved')", name="ck_chat_handoffs_state"),
    sa.Index("ix_chat_handoffs_queue", "kb_id", "state", "opened_at"),
)

_agent_messages = sa.Table(
    "chat_agent_messages",
    _metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("kb_id", sa.String, nullable=False),
    sa.Column("conversation_id", sa.String, nullable=False),
    sa.Column("agent", sa.String, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", _UTCDateTime, nullable=False),
    sa.Index("ix_chat_agent_messages_conversation", "kb_id", "conversation_id", "created_at"),
)

_channel_threads = sa.Table(
    "chat_channel_threads",
    _metadata,
    sa.Column("kb_id", sa.String, primary_key=True),
    sa.Column("channel", sa.String, primary_key=True),
    sa.Column("thread", sa.String, primary_key=True),
    sa.Column("conversation_id", sa.String, nullable=False),
    sa.Column("address", sa.JSON, nullable=False),
    sa.Column("updated_at", _UTCDateTime, nullable=False),
    sa.Column("customer_id", sa.String),
    sa.Index("ix_chat_channel_threads_conversation", "kb_id", "conversation_id"),
    sa.Index("ix_chat_channel_threads_customer", "customer_id"),
)

_channel_messages = sa.Table(
    "chat_channel_messages",
    _metadata,
    sa.Column("kb_id", sa.String, primary_key=True),
    sa.Column("channel", sa.String, primary_key=True),
    sa.Column("platform_id", sa.String, primary_key=True),
    sa.Column("message_id", sa.String, nullable=False),
    sa.Column("conversation_id", sa.String, nullable=False),
    sa.Index("ix_chat_channel_messages_conversation", "kb_id", "conversation_id"),
)

_channel_events = sa.Table(
    "chat_channel_events",
    _metadata,
    sa.Column("kb_id", sa.String, primary_key=True),
    sa.Column("channel", sa.String, primary_key=True),
    sa.Column("event_id", sa.String, primary_key=True),
    sa.Column("received_at", _UTCDateTime, nullable=False),
    sa.Index("ix_chat_channel_events_received", "received_at"),
)
EVENT_MEMORY = timedelta(days=7)  # platforms re-deliver within minutes to a day; older ids are forgotten

# Any constant: serialises table creation by several workers starting at once (pg_advisory_xact_lock).
_PG_CREATE_LOCK = 0x7261675F636F6E76
_IN_BATCH = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's limits on bound parameters


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
            self._create_schema()
        except DBAPIError as exc:
            self._engine.dispose()
            raise ConfigurationError(
                f"Cannot use the conversation database {self._shown} (RAG_DATABASE_URL): {error_reason(exc)} - check "
                f"that the server is running and that the URL's host, port, database, user and password are right"
            ) from exc

    def _create_schema(self, attempts: int = 10) -> None:
        """The tables, columns and indexes this version uses, created where missing. On PostgreSQL an advisory
        lock serialises processes starting at once; SQLite has none, so a table another process created between
        this one's check and its CREATE (or a lock lost to it) is simply checked again."""
        for attempt in range(attempts):
            try:
                with self._engine.begin() as conn:
                    if conn.dialect.name == "postgresql":
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_CREATE_LOCK})
                    _metadata.create_all(conn)
                    _add_missing_columns(conn)
                return
            except OperationalError as exc:
                # SQLite: another process created it in between, or two read-then-write schema transactions
                # deadlocked (SQLite fails one at once rather than wait): look again
                raced = any(sign in str(exc.orig) for sign in ("already exists", "database is locked"))
                if not raced or attempt + 1 == attempts:
                    raise
                time.sleep(random.uniform(0.01, 0.2))  # apart from the others racing; the next look sees their work

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

    def history(self, conversation_id: str, limit: int = 20, kb_id: str | None = None) -> list[StoredMessage]:
        if limit <= 0:
            return []
        query = (
            sa.select(_messages)
            .where(_messages.c.conversation_id == conversation_id, *_in_kb(kb_id))
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
            insert = _upsert(conn, _feedback)
            # One statement, so two ratings arriving together cannot both insert (and one fail).
            conn.execute(
                insert.values(values).on_conflict_do_update(
                    index_elements=[_feedback.c.message_id],
                    set_={name: insert.excluded[name] for name in ("rating", "comment", "created_at")},
                )
            )
        return feedback

    def messages(self, since: datetime | None = None, kb_id: str | None = None) -> list[StoredMessage]:
        query = sa.select(_messages).where(*_in_kb(kb_id)).order_by(_messages.c.created_at, _messages.c.id)
        if since is not None:
            query = query.where(_messages.c.created_at >= _utc(since))
        with self._transaction() as conn:
            return [_message(row) for row in conn.execute(query)]

    def feedback(self, since: datetime | None = None, kb_id: str | None = None) -> list[Feedback]:
        query = sa.select(_feedback).order_by(_feedback.c.created_at, _feedback.c.message_id)
        if since is not None:
            query = query.where(_feedback.c.created_at >= _utc(since))
        if kb_id is not None:
            query = query.where(_feedback.c.message_id.in_(sa.select(_messages.c.message_id).where(*_in_kb(kb_id))))
        with self._transaction() as conn:
            return [_feedback_of(row) for row in conn.execute(query)]

    def conversation_count(self, since: datetime | None = None, kb_id: str | None = None) -> int:
        # One knowledge base's conversation ids are distinct; across them, (kb_id, conversation_id) pairs are.
        keys = sa.select(_messages.c.kb_id, _messages.c.conversation_id).where(*_in_kb(kb_id)).distinct()
        if since is not None:
            keys = keys.where(_messages.c.created_at >= _utc(since))
        with self._transaction() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(keys.subquery())).scalar_one())

    def conversations(self, query: ConversationQuery) -> ConversationPage:
        matching = _conversations(query)
        page = (
            sa.select(
                *matching.c,
                _first_turn(matching, _messages.c.question).label("first_question"),
                _first_turn(matching, _messages.c.language).label("first_language"),
                _first_turn(matching, _messages.c.channel).label("first_channel"),
            )
            .order_by(matching.c.last_at.desc(), matching.c.kb_id, matching.c.conversation_id)
            .limit(query.limit)
            .offset(query.offset)
        )
        with self._transaction() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(matching)).scalar_one())
            rows = conn.execute(page).all() if query.limit else []
        return ConversationPage(items=[_summary(row) for row in rows], total=total)

    def conversation(self, conversation_id: str, kb_id: str | None = None) -> list[StoredMessage]:
        query = (
            sa.select(_messages)
            .where(_messages.c.conversation_id == conversation_id, *_in_kb(kb_id))
            .order_by(_messages.c.created_at, _messages.c.id)
        )
        with self._transaction() as conn:
            return [_message(row) for row in conn.execute(query)]

    def feedback_for(self, message_ids: Iterable[str]) -> dict[str, Feedback]:
        ids = list(dict.fromkeys(message_ids))
        out: dict[str, Feedback] = {}
        with self._transaction() as conn:
            for start in range(0, len(ids), _IN_BATCH):
                batch = ids[start : start + _IN_BATCH]
                for row in conn.execute(sa.select(_feedback).where(_feedback.c.message_id.in_(batch))):
                    out[row.message_id] = _feedback_of(row)
        return out

    def delete_conversation(self, conversation_id: str, kb_id: str | None = None) -> int:
        return self._delete(sa.and_(_messages.c.conversation_id == conversation_id, *_in_kb(kb_id)))

    def delete_customer(self, customer_id: str, kb_id: str | None = None) -> int:
        # The whole conversation: its turns before the customer was identified are theirs too.
        deleted = self._delete(_in_conversations(_other.c.customer_id == customer_id, *_in_kb(kb_id, _other)))
        with self._transaction() as conn:  # a platform thread whose turns were never stored (the model was down)
            threads = _channel_threads.c
            conn.execute(
                _channel_threads.delete().where(threads.customer_id == customer_id, *_in_kb(kb_id, _channel_threads))
            )
        return deleted

    def delete_older_than(self, cutoff: datetime, kb_id: str | None = None) -> int:
        expired = (
            sa.select(_other.c.kb_id, _other.c.conversation_id)
            .where(*_in_kb(kb_id, _other))
            .group_by(_other.c.kb_id, _other.c.conversation_id)
            .having(sa.func.max(_other.c.created_at) < _utc(cutoff))
        )
        deleted = self._delete(sa.tuple_(_messages.c.kb_id, _messages.c.conversation_id).in_(expired))
        with self._transaction() as conn:  # platform threads not written in since (their turns are gone too)
            threads = _channel_threads.c
            conn.execute(
                _channel_threads.delete().where(threads.updated_at < _utc(cutoff), *_in_kb(kb_id, _channel_threads))
            )
        return deleted

    def delete_kb(self, kb_id: str) -> int:
        deleted = self._delete(_messages.c.kb_id == kb_id)
        with self._transaction() as conn:  # threads whose every turn failed to store, and the event ids
            for table in (_channel_threads, _channel_messages, _channel_events):
                conn.execute(table.delete().where(table.c.kb_id == kb_id))
        return deleted

    # ---- live handoff ----------------------------------------------------------------------------------------
    def open_handoff(self, kb_id: str, conversation_id: str, reason: str | None) -> Handoff:
        now = datetime.now(UTC)
        with self._transaction() as conn:
            row = conn.execute(sa.select(_handoffs).where(*_handoff_key(kb_id, conversation_id))).first()
            if row is None:
                values = dict(kb_id=kb_id, conversation_id=conversation_id, state="open", agent=None, reason=reason)
                insert = _upsert(conn, _handoffs)  # two handoffs at once: the first one stands
                conn.execute(insert.values(**values, opened_at=now, updated_at=now).on_conflict_do_nothing())
            elif row.state == "resolved":
                conn.execute(
                    _handoffs.update()
                    .where(*_handoff_key(kb_id, conversation_id))
                    .values(state="open", agent=None, reason=reason, opened_at=now, updated_at=now)
                )
            found = conn.execute(sa.select(_handoffs).where(*_handoff_key(kb_id, conversation_id))).one()
        return Handoff(**found._asdict())

    def handoff(self, kb_id: str, conversation_id: str) -> Handoff | None:
        with self._transaction() as conn:
            row = conn.execute(sa.select(_handoffs).where(*_handoff_key(kb_id, conversation_id))).first()
        return None if row is None else Handoff(**row._asdict())

    def handoffs(self, kb_id: str, state: str | None = None, limit: int = 100) -> list[Handoff]:
        query = sa.select(_handoffs).where(_handoffs.c.kb_id == kb_id)
        if state is not None:
            query = query.where(_handoffs.c.state == state)
        # waiting ones oldest first (served in turn); resolved ones newest first
        order = _handoffs.c.opened_at.desc() if state == "resolved" else _handoffs.c.opened_at
        query = query.order_by(order).limit(limit)
        with self._transaction() as conn:
            return [Handoff(**row._asdict()) for row in conn.execute(query)]

    def set_handoff(self, kb_id: str, conversation_id: str, state: str, agent: str | None) -> Handoff:
        if state not in HANDOFF_STATES:
            raise ValueError(f"state must be one of {', '.join(HANDOFF_STATES)}, not {state!r}")
        with self._transaction() as conn:
            current = conn.execute(sa.select(_handoffs).where(*_handoff_key(kb_id, conversation_id))).first()
            if current is None:
                raise NotFound(f"Conversation {conversation_id!r} was never handed off in knowledge base {kb_id!r}")
            taken = current.state == "claimed" and current.agent not in (None, agent)
            if state == "claimed" and taken:
                raise Conflict(f"{current.agent} has this conversation - ask them, or resolve it first")
            mine = sa.or_(_handoffs.c.state != "claimed", _handoffs.c.agent.is_(None), _handoffs.c.agent == agent)
            done = conn.execute(
                _handoffs.update()
                .where(*_handoff_key(kb_id, conversation_id), mine if state == "claimed" else sa.true())
                .values(state=state, agent=agent, updated_at=datetime.now(UTC))
            ).rowcount
            if not done:  # another agent claimed it between the read and the update
                raise Conflict("Another agent has just taken this conversation")
            row = conn.execute(sa.select(_handoffs).where(*_handoff_key(kb_id, conversation_id))).one()
        return Handoff(**row._asdict())

    def add_agent_message(self, kb_id: str, conversation_id: str, agent: str, text: str) -> AgentMessage:
        message = AgentMessage(0, kb_id, conversation_id, agent, text, datetime.now(UTC))
        values = {k: v for k, v in vars(message).items() if k != "id"}
        with self._transaction() as conn:
            key = conn.execute(_agent_messages.insert().values(**values)).inserted_primary_key
        message.id = int(key[0]) if key is not None else 0
        return message

    def agent_messages(self, kb_id: str, conversation_id: str, after: datetime | None = None) -> list[AgentMessage]:
        query = sa.select(_agent_messages).where(
            _agent_messages.c.kb_id == kb_id, _agent_messages.c.conversation_id == conversation_id
        )
        if after is not None:
            query = query.where(_agent_messages.c.created_at > _utc(after))
        with self._transaction() as conn:
            rows = conn.execute(query.order_by(_agent_messages.c.created_at, _agent_messages.c.id)).all()
        return [AgentMessage(**row._asdict()) for row in rows]

    # ---- messaging channels ----------------------------------------------------------------------------------
    def claim_event(self, kb_id: str, channel: str, event_id: str) -> bool:
        now = datetime.now(UTC)
        with self._transaction() as conn:
            conn.execute(_channel_events.delete().where(_channel_events.c.received_at < now - EVENT_MEMORY))
            insert = _upsert(conn, _channel_events).values(
                kb_id=kb_id, channel=channel, event_id=event_id, received_at=now
            )
            # RETURNING, not rowcount: psycopg reports no count for a skipped ON CONFLICT insert
            added = conn.execute(insert.on_conflict_do_nothing().returning(_channel_events.c.event_id)).first()
            return added is not None

    def release_event(self, kb_id: str, channel: str, event_id: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                _channel_events.delete().where(
                    _channel_events.c.kb_id == kb_id,
                    _channel_events.c.channel == channel,
                    _channel_events.c.event_id == event_id,
                )
            )

    def channel_thread(self, kb_id: str, channel: str, thread: str) -> ChannelThread | None:
        query = sa.select(_channel_threads).where(
            _channel_threads.c.kb_id == kb_id,
            _channel_threads.c.channel == channel,
            _channel_threads.c.thread == thread,
        )
        with self._transaction() as conn:
            row = conn.execute(query).first()
        return None if row is None else ChannelThread(**row._asdict())

    def channel_thread_of(self, kb_id: str, conversation_id: str) -> ChannelThread | None:
        query = (
            sa.select(_channel_threads)
            .where(_channel_threads.c.kb_id == kb_id, _channel_threads.c.conversation_id == conversation_id)
            .order_by(_channel_threads.c.updated_at.desc())
        )
        with self._transaction() as conn:
            row = conn.execute(query).first()
        return None if row is None else ChannelThread(**row._asdict())

    def save_channel_thread(self, thread: ChannelThread) -> str:
        values = vars(thread) | {"updated_at": _utc(thread.updated_at), "address": dict(thread.address)}
        with self._transaction() as conn:
            insert = _upsert(conn, _channel_threads).values(**values)
            stored = conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["kb_id", "channel", "thread"],
                    set_={"address": insert.excluded.address, "updated_at": insert.excluded.updated_at},
                ).returning(_channel_threads.c.conversation_id)
            ).scalar_one()
        return str(stored)

    def link_channel_message(
        self, kb_id: str, channel: str, platform_id: str, message_id: str, conversation_id: str
    ) -> None:
        values = dict(
            kb_id=kb_id,
            channel=channel,
            platform_id=platform_id,
            message_id=message_id,
            conversation_id=conversation_id,
        )
        with self._transaction() as conn:
            conn.execute(_upsert(conn, _channel_messages).values(**values).on_conflict_do_nothing())

    def channel_message(self, kb_id: str, channel: str, platform_id: str) -> tuple[str, str] | None:
        query = sa.select(_channel_messages.c.message_id, _channel_messages.c.conversation_id).where(
            _channel_messages.c.kb_id == kb_id,
            _channel_messages.c.channel == channel,
            _channel_messages.c.platform_id == platform_id,
        )
        with self._transaction() as conn:
            row = conn.execute(query).first()
        return None if row is None else (row.message_id, row.conversation_id)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> SQLAlchemyConversationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLAlchemyConversationStore({self._shown!r})"

    def _delete(self, where: sa.ColumnElement[bool]) -> int:
        """Delete the turns matching `where` and their ratings; the number of turns deleted."""
        doomed = sa.select(_messages.c.message_id).where(where)
        conversations = sa.select(_messages.c.kb_id, _messages.c.conversation_id).where(where).distinct()
        with self._transaction() as conn:
            # Explicitly, not only by ON DELETE CASCADE: SQLite enforces it only with PRAGMA foreign_keys on.
            conn.execute(_feedback.delete().where(_feedback.c.message_id.in_(doomed)))
            # the people's side of those conversations goes too, and the platform threads they were on
            for table in (_handoffs, _agent_messages, _channel_threads, _channel_messages):
                pair = sa.tuple_(table.c.kb_id, table.c.conversation_id)
                conn.execute(table.delete().where(pair.in_(conversations)))
            deleted = conn.execute(_messages.delete().where(where)).rowcount
        if deleted and self._engine.dialect.name == "sqlite":
            self._fold_wal()
        return int(deleted)

    def _fold_wal(self) -> None:
        """Copy the write-ahead log into the database file and empty it, so the pages that held erased rows
        (zeroed by secure_delete) replace the old ones there. Best effort: a reader still open keeps the log
        until a later checkpoint, and the rows are deleted either way."""
        with contextlib.suppress(OperationalError), self._lock, self._engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    @contextmanager
    def _transaction(self) -> Iterator[sa.Connection]:
        # The chat service answers without history (and without storing) on a RagError, so a database that
        # went away must surface as one rather than as a driver exception.
        try:
            with self._lock, self._engine.begin() as conn:
                yield conn
        except (OperationalError, PoolTimeout) as exc:  # down, or every pooled connection busy
            raise DatabaseUnavailable(
                f"The conversation database {self._shown} is unavailable: {error_reason(exc)} - check the server "
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
        options["connect_args"] = connect_args()  # an unreachable server answers 503 quickly, never hangs
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
    # Deleted rows are overwritten with zeros, not just unlinked: erased conversations leave no text in the file.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _sqlite_file(url: URL) -> str | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
        return None
    return url.database


def _upsert(conn: sa.Connection, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT for the connection's dialect (both have on_conflict_do_nothing / _do_update)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _handoff_key(kb_id: str, conversation_id: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (_handoffs.c.kb_id == kb_id, _handoffs.c.conversation_id == conversation_id)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{value!r} has no time zone - pass an aware datetime, e.g. datetime.now(timezone.utc)")
    return value.astimezone(UTC)


def _add_missing_columns(conn: sa.Connection) -> None:
    """Bring a database made by an earlier version up to the current columns and indexes. Run under the same
    lock as create_all on PostgreSQL; IF NOT EXISTS (and, on SQLite, a lost race tolerated) make it idempotent."""
    inspector = sa.inspect(conn)
    present = {column["name"] for column in inspector.get_columns(_messages.name)}
    table = conn.dialect.identifier_preparer.format_table(_messages)
    for column in _messages.columns:
        if column.name in present:
            continue
        if not column.nullable and column.server_default is None:
            raise ConfigurationError(
                f"The conversation database lacks the column {_messages.name}.{column.name}, which cannot be added "
                f"to existing rows (it is NOT NULL without a server default) - give it a server_default in "
                f"rag/conversations/sql_store.py"
            )
        spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
        guard = "IF NOT EXISTS " if conn.dialect.name == "postgresql" else ""
        try:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {guard}{spec}")
        except OperationalError as exc:
            if "duplicate column" not in str(exc.orig):  # SQLite: another process added it just now
                raise
    indexes = {index["name"] for index in inspector.get_indexes(_messages.name)}
    for index in _messages.indexes:
        if index.name not in indexes:
            conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))


# The turns a subquery looks at, apart from those the enclosing statement reads, updates or deletes.
_other = _messages.alias("other_turn")


def _in_kb(kb_id: str | None, table: sa.FromClause = _messages) -> tuple[sa.ColumnElement[bool], ...]:
    """The condition "in knowledge base kb_id", or none at all for None (every knowledge base)."""
    return () if kb_id is None else (table.c.kb_id == kb_id,)


def _in_conversations(*some_turn: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """Every turn of the conversations that have a turn meeting `some_turn` (written against `_other`). A
    conversation is its (kb_id, conversation_id); the subquery runs once, not once per row."""
    keys = sa.select(_other.c.kb_id, _other.c.conversation_id).where(*some_turn)
    return sa.tuple_(_messages.c.kb_id, _messages.c.conversation_id).in_(keys)


def _count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _conversations(query: ConversationQuery) -> sa.Subquery:
    """One row per matching conversation, with its counts. "Some turn" filters select whole conversations, so
    the counts still include every turn; filters on the counts apply to the grouped rows."""
    m, f = _messages.c, _feedback.c
    declined = sa.and_(m.answered.is_(False), sa.func.coalesce(m.decline_reason, "") != CUSTOMER_REQUEST)
    counts = (
        sa.select(
            m.kb_id,
            m.conversation_id,
            sa.func.max(m.customer_id).label("customer_id"),
            sa.func.min(m.created_at).label("started_at"),
            sa.func.max(m.created_at).label("last_at"),
            sa.func.count().label("turns"),
            _count_if(m.answered.is_(True)).label("answered_turns"),
            _count_if(declined).label("declined_turns"),
            _count_if(m.handoff.is_(True)).label("handoff_turns"),
            _count_if(f.rating == "up").label("feedback_up"),
            _count_if(f.rating == "down").label("feedback_down"),
        )
        .select_from(_messages.outerjoin(_feedback, f.message_id == m.message_id))  # at most one rating per turn
        .where(*_in_kb(query.kb_id), *_turn_filters(query))
        .group_by(m.kb_id, m.conversation_id)
        .subquery("counts")
    )
    return sa.select(counts).where(*_count_filters(query, counts)).subquery("matching")


def _turn_filters(query: ConversationQuery) -> list[sa.ColumnElement[bool]]:
    o = _other.c
    some_turn: list[sa.ColumnElement[bool]] = []
    if query.language is not None:
        some_turn.append(o.language == query.language)
    if query.mood is not None:
        some_turn.append(o.mood == query.mood)
    if query.customer_id is not None:
        some_turn.append(o.customer_id == query.customer_id)
    if query.channel is not None:
        some_turn.append(o.channel == query.channel)
    if query.text:
        # autoescape: a % or _ in the text matches itself, not any characters
        some_turn.append(sa.or_(*(column.icontains(query.text, autoescape=True) for column in (o.question, o.answer))))
    # last turn at or after `since` = some turn at or after it; first turn before `until` = some turn before it.
    # As turn filters they use the created_at index instead of grouping every conversation first.
    if query.since is not None:
        some_turn.append(o.created_at >= _utc(query.since))
    if query.until is not None:
        some_turn.append(o.created_at < _utc(query.until))
    # Each its own subquery: the turn in one language need not be the one that contains the text.
    return [_in_conversations(condition, *_in_kb(query.kb_id, _other)) for condition in some_turn]


def _count_filters(query: ConversationQuery, counts: sa.Subquery) -> list[sa.ColumnElement[bool]]:
    c = counts.c
    wanted = [(c.answered_turns, query.answered), (c.declined_turns, query.declined)]
    wanted.append((c.handoff_turns, query.handed_off))
    filters = [_some(count, want) for count, want in wanted if want is not None]
    rated = {
        "up": c.feedback_up > 0,
        "down": c.feedback_down > 0,
        "any": c.feedback_up + c.feedback_down > 0,
        "none": c.feedback_up + c.feedback_down == 0,
    }
    if query.feedback is not None:
        filters.append(rated[query.feedback])
    return filters


def _some(count: sa.ColumnElement[int], wanted: bool) -> sa.ColumnElement[bool]:
    return count > 0 if wanted else count == 0


def _first_turn(matching: sa.Subquery, column: sa.Column) -> sa.ScalarSelect:
    """`column` of the conversation's first turn: a correlated subquery, run only for the rows of the page."""
    first = _messages.alias("first_turn")
    return (
        sa.select(first.c[column.name])
        .where(first.c.kb_id == matching.c.kb_id, first.c.conversation_id == matching.c.conversation_id)
        .order_by(first.c.created_at, first.c.id)
        .limit(1)
        .scalar_subquery()
    )


def _summary(row: sa.Row) -> ConversationSummary:
    return ConversationSummary(
        conversation_id=row.conversation_id,
        kb_id=row.kb_id,
        customer_id=row.customer_id,
        started_at=row.started_at,  # min() and max() keep the column's type: aware UTC
        last_at=row.last_at,
        turns=int(row.turns),
        first_question=row.first_question,
        answered_turns=int(row.answered_turns),
        declined_turns=int(row.declined_turns),
        handed_off=int(row.handoff_turns) > 0,
        language=row.first_language,
        feedback_up=int(row.feedback_up),
        feedback_down=int(row.feedback_down),
        channel=row.first_channel,
    )


def _feedback_of(row: sa.Row) -> Feedback:
    return Feedback(row.message_id, row.rating, row.comment, row.created_at)


def _message(row: sa.Row) -> StoredMessage:
    values = row._asdict()
    values.pop("id")
    values["retrieved"] = [(int(chunk_id), float(score)) for chunk_id, score in values["retrieved"]]
    return StoredMessage(**values)
