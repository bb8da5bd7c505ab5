"""The chat path: question -> (person asked for? hand off) -> follow-up rewriting -> retrieval -> curated FAQ
answer, decline, or generation -> citations -> `Answer` -> stored turn (and a handoff notice when handing off).

Shared by the HTTP API, `rag ask` and `rag eval`, so all three behave the same. `stream()` yields
`("delta", text)` events while the answer is written and ends with `("answer", Answer)`.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Literal

import tiktoken

from rag.chat.curated import CuratedMatcher, curated_answer
from rag.chat.decline import SUPPORT_PASSAGES, faq_match, support_score
from rag.chat.followups import PastQuestion, needs_context, rewrite_heuristic
from rag.chat.holdback import hold_back_marker
from rag.chat.intents import asks_for_human
from rag.chat.related import related_documents
from rag.chat.tags import Mood, mood, topic
from rag.conversations.store import AGENT_HANDLING, ConversationStore, StoredMessage
from rag.core.errors import ContextOverflow, RagError
from rag.core.settings import Settings
from rag.core.types import Answer, Filters, Passage, Usage
from rag.generation.citations import make_citation
from rag.generation.extractive import cite, faq_answer
from rag.generation.grounding import grounded_citations
from rag.generation.prompting import DECLINE_MARKER, Prompt, build_prompt
from rag.generation.protocol import GenerationRequest, Generator, QueryRewriter
from rag.retrieval.protocol import Retriever
from rag.text.language import cjk_count, detect_language
from rag.text.lexical import coverage
from rag.text.redaction import redact

log = logging.getLogger("rag.chat.service")
_OVERFLOW_RETRIES = 2
HISTORY_TURNS = 6

ChatEvent = tuple[Literal["delta"], str] | tuple[Literal["answer"], Answer]


def final_answer(events: Iterable[ChatEvent]) -> Answer:
    """The answer a stream of chat events ends with (the stream consumed)."""
    for event in events:
        if event[0] == "answer":
            return event[1]
    raise AssertionError("a chat stream always ends with an answer event")


class ChatService:
    """The bot. `store` keeps every turn (and gives follow-ups their context); `on_handoff` is called with the
    conversation id and the handing-off answer whenever the bot passes the customer to a person; `rewriter`
    makes follow-up questions standalone (default: the generator, when it has that capability; otherwise a
    heuristic)."""

    def __init__(
        self,
        settings: Settings,
        retriever: Retriever,
        generator: Generator,
        encoding: tiktoken.Encoding,
        *,
        store: ConversationStore | None = None,
        on_handoff: Callable[[str, Answer], None] | None = None,
        rewriter: QueryRewriter | None = None,
        kb_id: str = "",
        default_language: str | None = None,
        curated: CuratedMatcher | None = None,
    ):
        self.settings = settings
        self.retriever = retriever
        self.generator = generator
        self.encoding = encoding
        self.store = store
        self.on_handoff = on_handoff
        self.kb_id = kb_id  # recorded with every stored turn
        self.default_language = default_language  # replies to a question with no words to tell its language
        self.curated = curated  # the knowledge base's curated answers, matched before retrieval
        self.rewriter = (
            rewriter if rewriter is not None else (generator if isinstance(generator, QueryRewriter) else None)
        )

    def answer(
        self,
        question: str,
        *,
        conversation_id: str | None = None,
        top_k: int | None = None,
        filters: Filters | None = None,
        history: list[tuple[str, str]] | None = None,
        customer_id: str | None = None,
        channel: str = "",
    ) -> Answer:
        """The whole answer at once (the streaming path, consumed)."""
        return final_answer(
            self.stream(
                question,
                conversation_id=conversation_id,
                top_k=top_k,
                filters=filters,
                history=history,
                customer_id=customer_id,
                channel=channel,
            )
        )

    def stream(
        self,
        question: str,
        *,
        conversation_id: str | None = None,
        top_k: int | None = None,
        filters: Filters | None = None,
        history: list[tuple[str, str]] | None = None,
        customer_id: str | None = None,
        channel: str = "",
    ) -> Iterator[ChatEvent]:
        """`history`: earlier (question, answer) turns supplied by a stateless client (OpenAI-style APIs);
        without it the conversation store provides them. `customer_id` (the site's own id for the customer) is
        stored with the turn, so everything tied to one customer can be erased; `channel` (web, api, slack, ...)
        says where the customer asked.

        With `redact_pii`, e-mail addresses, phone, card and ID numbers in the question (and in the history a
        client sends) are replaced before anything is stored, searched or sent to a model."""
        started = time.perf_counter()
        question = question.strip()
        if self.settings.redact_pii:
            question = redact(question)
            history = [(redact(q), redact(a)) for q, a in history] if history is not None else None
        language = detect_language(question)
        if self.default_language and not _has_words(question):  # "???", "👍", an order number alone
            language = self.default_language
        ids = dict(conversation_id=conversation_id or uuid.uuid4().hex, message_id=uuid.uuid4().hex)
        feeling = self._mood(question, ids["conversation_id"], history)
        events = self._events(question, language, ids, started, top_k, filters, history)
        if self._agent_has_it(ids["conversation_id"]):  # a person is answering here: the bot stays quiet
            message = str(self.settings.localized("agent_holding_message", language))
            events = self._decline(question, language, [], AGENT_HANDLING, Usage(), started, ids, message)
        for event in events:
            if event[0] == "answer":
                answer = event[1]
                if answer.decline_reason == AGENT_HANDLING:
                    answer.handoff = False  # already with a person: neither a new handoff nor a miss
                answer.mood = feeling.level
                answer.topic = topic([c.title for c in answer.citations], question)
                if feeling.level == "frustrated" and answer.answered:
                    # a frustrated customer is offered a person now, not after another miss
                    offer = "\n\n" + str(self.settings.localized("frustrated_offer", language))
                    answer.answer += offer
                    yield ("delta", offer)
                self._record(answer, customer_id, channel)
            yield event

    def _events(
        self,
        question: str,
        language: str,
        ids: dict[str, str],
        started: float,
        top_k: int | None,
        filters: Filters | None,
        history: list[tuple[str, str]] | None,
    ) -> Iterator[ChatEvent]:
        if asks_for_human(question):
            message = self.settings.localized("handoff_message", language)
            yield from self._decline(question, language, [], "customer_request", Usage(), started, ids, message)
            return
        query = self._standalone(question, ids["conversation_id"], history)
        match = self.curated.match(query, language) if self.curated is not None else None
        if match is not None:
            # a curated answer matches: its author's words, whole, with no retrieval and no model call
            answer = curated_answer(match, question, language, (time.perf_counter() - started) * 1000, **ids)
            answer.rewritten_query = _changed(query, question)
            yield ("delta", answer.answer)
            yield ("answer", answer)
            return
        passages = self.retriever.retrieve(query, top_k or self.settings.top_k, filters)

        query, passages, supported = self._supported(
            question, query, passages, language, ids["conversation_id"], history, top_k, filters
        )
        if not supported:
            reason = "no_passages" if not passages else "low_retrieval_score"
            yield from self._decline(question, language, passages, reason, Usage(), started, ids, query=query)
            return
        top = passages[0]
        faq_text = faq_answer(top.chunk) if faq_match(query, top, self.settings.faq_min_score) else ""
        if faq_text:
            # a curated FAQ entry matches: its author's words (as readable text), cited, and no model call
            text = cite(faq_text, 1, language)
            yield ("delta", text)
            yield (
                "answer",
                Answer(
                    question=question,
                    answer=text,
                    answered=True,
                    handoff=False,
                    citations=[make_citation(1, top)],
                    related=related_documents(passages, [make_citation(1, top)]),
                    passages=passages,
                    generator="faq",
                    language=language,
                    usage=Usage(),
                    latency_ms=(time.perf_counter() - started) * 1000,
                    rewritten_query=_changed(query, question),
                    **ids,
                ),
            )
            return

        items, passages, prompt = self._start_generation(query, language, passages, own_words=question)

        text_parts: list[str] = []
        usages: list[Usage] = []

        def texts() -> Iterator[str]:
            for item in items:
                if isinstance(item, Usage):
                    usages.append(item)
                else:
                    text_parts.append(item)
                    yield item

        for delta in hold_back_marker(texts(), DECLINE_MARKER):
            yield ("delta", delta)
        raw = "".join(text_parts)
        declined = not raw.strip() or raw.strip().startswith(DECLINE_MARKER)
        usage = usages[-1] if usages else None
        if usage is None:
            usage = Usage(
                prompt.prompt_tokens if prompt else 0,
                len(self.encoding.encode(raw, disallowed_special=())) if prompt else 0,
                estimated=prompt is not None,
            )
        if declined:
            # a generator without a model declines by having no sentence of the question's language to quote
            reason = "model_declined" if self.generator.needs_prompt else "nothing_to_quote"
            yield from self._decline(question, language, passages, reason, usage, started, ids, query=query)
            return
        # each cited sentence checked against its passage; markers renumbered [1], [2] ... in order of use
        text, citations = grounded_citations(raw.replace(DECLINE_MARKER, "").strip(), passages, drop_unsupported=True)
        if not text.strip():  # every sentence stated a number no passage holds: nothing left to stand behind
            yield from self._decline(question, language, passages, "ungrounded", usage, started, ids, query=query)
            return
        yield (
            "answer",
            Answer(
                question=question,
                answer=text,
                answered=True,
                handoff=False,
                citations=citations,
                related=related_documents(passages, citations),
                passages=passages,
                generator=self.generator.name,
                language=language,
                usage=usage,
                latency_ms=(time.perf_counter() - started) * 1000,
                rewritten_query=_changed(query, question),
                **ids,
            ),
        )

    def _supported(
        self,
        question: str,
        query: str,
        passages: list[Passage],
        language: str,
        conversation_id: str,
        history: list[tuple[str, str]] | None,
        top_k: int | None,
        filters: Filters | None,
    ) -> tuple[str, list[Passage], bool]:
        """(query, passages, whether they support an answer), trying the other reading of a follow-up before
        declining: a rewritten question alone, or a standalone-looking one in the conversation's context."""
        threshold = float(self.settings.localized("min_score", language))
        covered = language in self.settings.dense_languages
        k = top_k or self.settings.top_k
        if passages and support_score(query, passages, covered) >= threshold:
            return query, passages, True
        if query != question:
            # the earlier turn may have been the wrong context ("背包保修几年？" after an unrelated question)
            alone = self.retriever.retrieve(question, k, filters)
            if alone and support_score(question, alone, covered) >= threshold:
                return question, alone, True
            return query, passages, False
        # "How long is the link valid?" reads as standalone but leans on the earlier turn
        forced = self._standalone(question, conversation_id, history, force=True)
        if forced != question:
            retry = self.retriever.retrieve(forced, k, filters)
            # judged on the customer's own words: the earlier turn's words must not carry an unrelated question
            if (
                retry
                and support_score(question, retry, covered) >= threshold
                and coverage(question, [p.chunk.embedding_text() for p in retry[:SUPPORT_PASSAGES]]) > 0
            ):
                return forced, retry, True
        return query, passages, False

    def _standalone(
        self, question: str, conversation_id: str, history: list[tuple[str, str]] | None = None, force: bool = False
    ) -> str:
        """The question made standalone using the conversation so far (unchanged when it needs no context,
        unless `force`)."""
        if not force and not needs_context(question):
            return question
        if history is not None:
            turns = history[-HISTORY_TURNS:]
            # a stateless client sends no rewrites: which earlier questions were follow-ups is judged again
            past = [PastQuestion(q, needs_context(q)) for q, _ in turns]
        elif self.store is not None:
            try:
                stored = self.store.history(conversation_id, limit=HISTORY_TURNS, kb_id=self.kb_id or None)
            except RagError:
                log.exception("conversation history unavailable; answering without it")
                return question
            turns = [(t.question, t.answer) for t in stored]
            # the customer's own words, never an earlier rewrite (so rewrites cannot nest); a rewritten turn
            # was a follow-up
            past = [PastQuestion(t.question, t.rewritten_query is not None) for t in stored]
        else:
            return question
        if not turns:
            return question
        if self.rewriter is not None:
            try:
                rewritten = self.rewriter.rewrite(question, turns)
                if rewritten:
                    return rewritten
            except RagError:
                log.warning("LLM rewriting failed; using the heuristic", exc_info=True)
        return rewrite_heuristic(question, past, force=force)

    def _agent_has_it(self, conversation_id: str) -> bool:
        """Whether an agent has claimed this conversation (live handoff) and not resolved it yet."""
        if self.store is None:
            return False
        try:
            handoff = self.store.handoff(self.kb_id, conversation_id)
        except RagError:
            return False
        return handoff is not None and handoff.state == "claimed"

    def _mood(self, question: str, conversation_id: str, history: list[tuple[str, str]] | None) -> Mood:
        """How upset the customer sounds, from this question, the earlier ones and how often the bot declined."""
        if history is not None:
            return mood(question, [q for q, _ in history[-HISTORY_TURNS:]])
        if self.store is None:
            return mood(question)
        try:
            turns = self.store.history(conversation_id, limit=HISTORY_TURNS, kb_id=self.kb_id or None)
        except RagError:
            return mood(question)
        declined = sum(not t.answered and t.decline_reason not in ("customer_request", AGENT_HANDLING) for t in turns)
        return mood(question, [t.question for t in turns], declined)

    def _record(self, answer: Answer, customer_id: str | None = None, channel: str = "") -> None:
        if self.store is not None:
            try:
                stored = StoredMessage.from_answer(
                    answer, datetime.now(UTC), kb_id=self.kb_id, customer_id=customer_id, channel=channel
                )
                self.store.add_message(stored)
                if answer.handoff:  # into the agents' queue
                    self.store.open_handoff(self.kb_id, answer.conversation_id, answer.decline_reason)
            except RagError:
                log.exception("could not store message %s", answer.message_id)
        if answer.handoff and self.on_handoff is not None:
            try:
                self.on_handoff(answer.conversation_id, answer)
            except Exception:  # a notifier must never break the reply
                log.exception("handoff notification failed for %s", answer.conversation_id)

    def _start_generation(
        self, question: str, language: str, passages: list[Passage], own_words: str | None = None
    ) -> tuple[Iterator[str | Usage], list[Passage], Prompt | None]:
        """Start the generator; a model whose tokenizer counts more tokens than tiktoken may reject the
        prompt as too long, so retry with a smaller passage budget (before anything was streamed)."""
        margin = self.settings.llm_context_margin
        for attempt in range(_OVERFLOW_RETRIES + 1):
            prompt = None
            if self.generator.needs_prompt:
                prompt = build_prompt(
                    question,
                    passages,
                    language=language,
                    encoding=self.encoding,
                    context_window=self.settings.llm_context_window,
                    answer_tokens=self.settings.llm_max_tokens,
                    margin=margin,
                )
            used = prompt.passages if prompt else passages
            own = own_words if own_words and own_words != question else None
            items = self.generator.stream(GenerationRequest(question, language, used, prompt, own))
            try:
                first = next(items, None)
            except ContextOverflow:
                if attempt == _OVERFLOW_RETRIES or prompt is None:
                    raise
                margin *= 0.6
                continue
            return (itertools.chain([] if first is None else [first], items), used, prompt)
        raise AssertionError("unreachable")

    def _decline(
        self,
        question: str,
        language: str,
        passages: list[Passage],
        reason: str,
        usage: Usage,
        started: float,
        ids: dict[str, str],
        message: str | None = None,
        query: str | None = None,
    ) -> Iterator[ChatEvent]:
        if message is None:
            message = self.settings.localized("fallback_message", language)
        yield ("delta", message)
        yield (
            "answer",
            Answer(
                question=question,
                answer=message,
                answered=False,
                handoff=True,
                citations=[],
                related=[],  # a decline suggests no reading
                passages=passages,
                generator=self.generator.name,
                language=language,
                usage=usage,
                latency_ms=(time.perf_counter() - started) * 1000,
                decline_reason=reason,
                rewritten_query=_changed(query, question),
                **ids,
            ),
        )


def _has_words(text: str) -> bool:
    """Whether `text` holds a Latin letter or a Chinese character, from which its language can be told.

    >>> _has_words("#58213 ???"), _has_words("退货"), _has_words("hi")
    (False, True, True)
    """
    return cjk_count(text) > 0 or any("a" <= ch.lower() <= "z" for ch in text)


def _changed(query: str | None, question: str) -> str | None:
    return query if query and query != question else None
