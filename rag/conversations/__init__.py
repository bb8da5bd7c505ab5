"""Every turn of every conversation, and what the team learns from them:

store       StoredMessage, Feedback and the ConversationStore protocol
sql_store   the SQLAlchemy store (SQLite or PostgreSQL)
analytics   answered and handoff rates, latency, unanswered questions grouped
report      the same as a self-contained HTML page
"""

from rag.conversations.sql_store import SQLAlchemyConversationStore
from rag.conversations.store import ConversationStore, Feedback, StoredMessage

__all__ = ["ConversationStore", "Feedback", "SQLAlchemyConversationStore", "StoredMessage"]
