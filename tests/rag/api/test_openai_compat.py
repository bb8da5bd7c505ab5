"""/v1: the official `openai` Python client against the bot, over a real uvicorn server."""

from __future__ import annotations

import httpx
import openai
import pytest

from rag.api import create_app
from rag.core.settings import Settings
from rag.store.knowledge_base import KnowledgeBase
from tests.rag.api.serving import extractive_services
from tests.servers import uvicorn_in_thread

pytestmark = pytest.mark.integration
KEY = "sk-test-key"


@pytest.fixture(scope="module")
def base_url(demo_kb, embedder):
    settings = Settings(kb_dir=demo_kb, _env_file=None, api_keys=[KEY], api_model_name="pinecrest-help")
    with KnowledgeBase.open(demo_kb) as kb:
        services = extractive_services(settings, kb, embedder)
        with uvicorn_in_thread(create_app(settings, services=services)) as url:
            yield url


@pytest.fixture
def client(base_url):
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0)


def test_models_lists_the_knowledge_base(client):
    assert [m.id for m in client.models.list()] == ["pinecrest-help"]


def test_completion_is_the_grounded_answer_with_citations(client):
    reply = client.chat.completions.create(
        model="pinecrest-help", messages=[{"role": "user", "content": "How long do I have to return an item?"}]
    )
    text = reply.choices[0].message.content
    assert "30 days" in text and reply.choices[0].finish_reason == "stop"
    extra = reply.model_extra
    assert extra["rag"]["answered"] and extra["citations"]
    assert all(f"[{c['marker']}]" in text for c in extra["citations"])


def test_streaming_chunks_end_with_citations(client):
    stream = client.chat.completions.create(
        model="pinecrest-help", stream=True, messages=[{"role": "user", "content": "Do gift cards expire?"}]
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() and chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"] and chunks[-1].model_extra["rag"]["message_id"]


def test_earlier_messages_give_a_follow_up_its_context(client):
    reply = client.chat.completions.create(
        model="pinecrest-help",
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "How long does standard shipping take in the US?"},
            {"role": "assistant", "content": "3-5 business days."},
            {"role": "user", "content": "What about express?"},
        ],
    )
    assert "1-2 business days" in reply.choices[0].message.content


def test_out_of_scope_is_an_honest_handoff(client):
    reply = client.chat.completions.create(
        model="pinecrest-help", messages=[{"role": "user", "content": "Who won the 1998 world cup?"}]
    )
    assert reply.model_extra["rag"]["handoff"] is True and reply.model_extra["citations"] == []


def test_api_key_model_and_message_errors(base_url):
    bad = openai.OpenAI(base_url=f"{base_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    assert httpx.get(f"{base_url}/v1/models", timeout=30).status_code == 401
    good = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        good.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError, match="user message"):
        good.chat.completions.create(model="pinecrest-help", messages=[{"role": "assistant", "content": "hi"}])
