"""The bot's conversation logic:

service     ChatService: question -> retrieval -> FAQ answer, decline or generation -> cited Answer
decline     whether the passages support an answer; curated FAQ matches
intents     requests for a person ("talk to a human", "转人工")
followups   questions that lean on earlier turns, made standalone
holdback    streaming a reply that may be the model's decline marker
handoff     the webhook that tells the team a customer was handed over
"""

from rag.chat.service import ChatEvent, ChatService, final_answer

__all__ = ["ChatEvent", "ChatService", "final_answer"]
