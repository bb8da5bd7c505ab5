"""Hand-made bad requests, one per hole an outside fuzzing found, against the server as `rag serve` runs it (real
uvicorn, so a dropped connection shows as one). Each must answer 4xx (or 503 for a missing dependency) with a
JSON error body that names the field, and the server must keep serving."""

from __future__ import annotations

import contextlib
import socket
import threading

import httpx
import pytest
import sqlalchemy as sa

from rag.api.validation import NO_NUL_PATTERN, NOT_BLANK_PATTERN
from rag.chat.service import ChatService
from rag.conversations import SQLAlchemyConversationStore
from rag.core.settings import Settings
from rag.generation.extractive import ExtractiveGenerator
from rag.store.knowledge_base import KnowledgeBase
from rag.text.tokenizer import get_encoding
from rag.wiring import Services, create_retriever
from tests.postgres import create_database
from tests.rag.api.serving import guarded_server

pytestmark = pytest.mark.integration
ADMIN_KEY = "bad-input-admin-key"
MODEL = "pinecrest-help"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def kb(demo_kb):
    with KnowledgeBase.open(demo_kb) as opened:
        yield opened


def bot_settings(demo_kb, database: str | None, **extra) -> Settings:
    return Settings(
        kb_dir=demo_kb, _env_file=None, database_url=database, admin_api_key=ADMIN_KEY, api_model_name=MODEL, **extra
    )


@pytest.fixture(scope="module")
def base(demo_kb, kb, embedder, tmp_path_factory):
    database = f"sqlite:///{tmp_path_factory.mktemp('bad-input') / 'conversations.sqlite'}"
    settings = bot_settings(demo_kb, database)
    store = SQLAlchemyConversationStore(database)
    service = ChatService(
        settings, create_retriever("hybrid", kb, embedder, settings), ExtractiveGenerator(), get_encoding(), store=store
    )
    with guarded_server(settings, Services(service, kb, embedder)) as url:
        yield url
    store.close()


def post_raw(url: str, body: str) -> httpx.Response:
    """POST `body` exactly as written: JSON escapes such as \\ud800 reach the server as a client sent them."""
    return httpx.post(url, content=body.encode("ascii"), headers=JSON, timeout=30)


def assert_refused(r: httpx.Response, field: str, status: int = 422) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error["message"]
    if status == 422:
        assert error["type"] == "invalid_request"
        assert field in [f["field"] for f in error["fields"]], error
    return error


def assert_still_serving(base: str) -> None:
    assert httpx.get(f"{base}/health", timeout=30).json()["status"] == "ok"


# ---- 1. a lone surrogate: was a 500 and a dropped connection, plain and streaming ------------------------------
@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/chat", '{"question": "where is my order \\ud800"}', "question"),
        ("/chat", '{"question": "where is my order \\ud800", "stream": true}', "question"),
        ("/chat", '{"question": "\\udfff?", "stream": true, "conversation_id": "c-1"}', "question"),
        (
            "/v1/chat/completions",
            '{"model": "MODEL", "messages": [{"role": "user", "content": "hi \\ud800"}]}',
            "messages.0.content",
        ),
        (
            "/v1/chat/completions",
            '{"model": "MODEL", "stream": true, "messages": [{"role": "user", "content": "hi \\ud800"}]}',
            "messages.0.content",
        ),
        ("/feedback", '{"message_id": "m-1", "rating": "up", "comment": "\\ud83d"}', "comment"),
        ("/chat", '{"question": "hi", "filters": {"metadata": {"\\ud800": 1}}}', "filters.metadata"),
    ],
)
def test_lone_surrogate_is_a_422_naming_the_field(base, path, body, field):
    error = assert_refused(post_raw(base + path, body.replace("MODEL", MODEL)), field)
    assert "surrogate" in error["message"] or "valid Unicode" in error["message"]
    assert_still_serving(base)


def test_a_full_surrogate_pair_is_fine(base):
    r = post_raw(f"{base}/chat", '{"question": "Do gift cards expire? \\ud83d\\ude00"}')
    assert r.status_code == 200 and r.json()["answer"]


# ---- 2. metadata filters: past 64 bits was a 500, an empty or quoted key a 503 ------------------------------------
@pytest.mark.parametrize(
    "metadata",
    [
        '{"k": 9223372036854775808}',
        '{"k": -9223372036854775809}',
        '{"k": 1e400}',
        '{"k": NaN}',
        '{"k": -Infinity}',
        '{"": "x"}',
        '{"a\\"b": "x"}',
        '{"k": [1]}',
        '{"k": {"a": 1}}',
        '{"k": null}',
        "{" + ", ".join(f'"k{i}": {i}' for i in range(33)) + "}",
    ],
)
def test_bad_metadata_filters_are_a_422(base, metadata):
    body = '{"question": "How do I return an item?", "filters": {"metadata": METADATA}}'
    assert_refused(post_raw(f"{base}/chat", body.replace("METADATA", metadata)), "filters.metadata")


def test_metadata_filters_at_the_limits_still_work(base):
    payload = {
        "question": "How do I return an item?",
        "filters": {"metadata": {"k": 2**63 - 1, "j": -(2**63), "category": "returns", "x": 1.5, "y": True}},
    }
    r = httpx.post(f"{base}/chat", json=payload, timeout=30)
    assert r.status_code == 200, r.text


# ---- 3. NUL, which PostgreSQL cannot store, in every text field -------------------------------------------------
NUL = "x\u0000y"
TEXT_PART_WITH_NUL = {"type": "text", "text": NUL}


@pytest.mark.parametrize(
    "path, payload, field",
    [
        ("/chat", {"question": NUL}, "question"),
        ("/chat", {"question": "hi", "conversation_id": NUL}, "conversation_id"),
        ("/chat", {"question": "hi", "filters": {"source_prefix": NUL}}, "filters.source_prefix"),
        ("/chat", {"question": "hi", "filters": {"metadata": {NUL: "a"}}}, "filters.metadata"),
        ("/chat", {"question": "hi", "filters": {"metadata": {"a": NUL}}}, "filters.metadata"),
        ("/feedback", {"message_id": NUL, "rating": "up"}, "message_id"),
        ("/feedback", {"message_id": "m-1", "rating": "down", "comment": NUL}, "comment"),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": [{"role": "user", "content": NUL}]},
            "messages.0.content",
        ),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": [{"role": "user", "content": [TEXT_PART_WITH_NUL]}]},
            "messages.0.content.0.text",
        ),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": [{"role": "assistant", "content": NUL}, {"role": "user", "content": "and?"}]},
            "messages.0.content",
        ),
        (
            "/v1/chat/completions",
            {
                "model": MODEL,
                "messages": [{"role": "system", "content": [TEXT_PART_WITH_NUL]}, {"role": "user", "content": "hi"}],
            },
            "messages.0.content.0.text",
        ),
        (
            "/v1/chat/completions",
            {"model": MODEL, "user": NUL, "messages": [{"role": "user", "content": "hi"}]},
            "user",
        ),
        ("/v1/chat/completions", {"model": NUL, "messages": [{"role": "user", "content": "hi"}]}, "model"),
    ],
)
def test_nul_is_a_422_in_every_text_field(base, path, payload, field):
    error = assert_refused(httpx.post(base + path, json=payload, timeout=30), field)
    assert "NUL" in error["message"] or "string should match pattern" in error["message"].lower()


def test_nul_in_the_admin_since_parameter_is_a_422(base):
    r = httpx.get(
        f"{base}/admin/stats", params={"since": "2026-11-01\u0000"}, headers={"X-API-Key": ADMIN_KEY}, timeout=30
    )
    assert_refused(r, "query.since")


@pytest.mark.parametrize(
    "since",
    [
        "yesterday",
        "2026-02-30",
        "2026-11-01T10:00",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-23:59",
        "20261101",
    ],
)
def test_admin_since_outside_rfc_3339_or_the_calendar_is_a_422(base, since):
    r = httpx.get(f"{base}/admin/stats", params={"since": since}, headers={"X-API-Key": ADMIN_KEY}, timeout=60)
    assert_refused(r, "query.since")


@pytest.mark.parametrize("since", ["2026-11-01", "2026-11-01T09:30:00Z", "2026-11-01t09:30:00.5+05:30"])
def test_admin_since_dates_and_date_times_are_accepted(base, since):
    r = httpx.get(f"{base}/admin/stats", params={"since": since}, headers={"X-API-Key": ADMIN_KEY}, timeout=60)
    assert r.status_code == 200, r.text


# ---- 4. schema, statuses and methods ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload, field",
    [
        ({"question": "hi", "top_k": "5"}, "top_k"),
        ({"question": "hi", "top_k": True}, "top_k"),
        ({"question": "hi", "top_k": 2.5}, "top_k"),
        ({"question": "hi", "top_k": 21}, "top_k"),
        ({"question": "hi", "stream": 0}, "stream"),
        ({"question": "hi", "stream": "true"}, "stream"),
        ({"question": ["hi"]}, "question"),
        ({"question": "\u3000\u2028\u00a0\t"}, "question"),
    ],
)
def test_types_are_not_coerced(base, payload, field):
    assert_refused(httpx.post(f"{base}/chat", json=payload, timeout=30), field)


def test_openai_stream_flag_is_not_coerced_either(base):
    r = httpx.post(
        f"{base}/v1/chat/completions",
        timeout=30,
        json={"model": MODEL, "stream": 0, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert_refused(r, "stream")


def test_a_whole_number_written_as_a_float_is_an_integer(base):
    """JSON Schema counts 3.0 as an integer, so a client following the OpenAPI document may send it."""
    r = httpx.post(f"{base}/chat", json={"question": "How do I return an item?", "top_k": 3.0}, timeout=30)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("TRACE", "/chat", "POST"),
        ("PUT", "/health", "GET"),
        ("DELETE", "/v1/models", "GET"),
        ("PATCH", "/feedback", "POST"),
        ("TRACE", "/", "GET"),
        ("POST", "/openapi.json", "GET"),
    ],
)
def test_unsupported_methods_are_a_405_with_allow(base, method, path, allowed):
    r = httpx.request(method, base + path, timeout=30)
    assert r.status_code == 405 and r.json()["error"]["type"] == "method_not_allowed"
    assert allowed in [m.strip() for m in r.headers["allow"].split(",")]


def test_openapi_document_matches_what_the_server_validates(base):
    doc = httpx.get(f"{base}/openapi.json", timeout=30).json()
    schemas = doc["components"]["schemas"]
    chat = schemas["ChatRequest"]["properties"]
    assert chat["question"]["maxLength"] == Settings(_env_file=None).max_question_chars
    assert chat["question"]["pattern"] == NOT_BLANK_PATTERN
    top_k = next(b for b in chat["top_k"]["anyOf"] if b["type"] == "integer")
    assert (top_k["minimum"], top_k["maximum"]) == (1, 20)
    metadata = schemas["ChatFilters"]["properties"]["metadata"]
    assert metadata["propertyNames"]["pattern"] == '^[^"\\u0000]+$' and metadata["propertyNames"]["minLength"] == 1
    number = next(b for b in metadata["additionalProperties"]["anyOf"] if b["type"] == "number")
    assert (number["minimum"], number["maximum"]) == (-(2**63), 2**63 - 1)
    assert schemas["CompletionRequest"]["properties"]["model"]["enum"] == [MODEL]
    assert schemas["FeedbackRequest"]["properties"]["comment"]["anyOf"][0]["pattern"] == NO_NUL_PATTERN
    statuses = {
        f"{method.upper()} {path}": set(op["responses"])
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }
    assert statuses["POST /chat"] >= {"200", "400", "413", "422", "502", "503", "504"}
    assert statuses["POST /v1/chat/completions"] >= {"200", "400", "404", "413", "422", "502", "503", "504"}
    assert statuses["POST /feedback"] >= {"200", "400", "404", "413", "422", "503"}
    assert statuses["GET /admin/stats"] >= {"200", "401", "403", "422", "503"}
    assert "401" not in statuses["GET /v1/models"]  # RAG_API_KEYS is not set: /v1 is open, and says so
    assert "security" not in doc["paths"]["/v1/models"]["get"]
    assert doc["paths"]["/admin/stats"]["get"]["security"] == [{"AdminKey": []}, {"AdminBearer": []}]
    for path, ops in doc["paths"].items():
        for op in ops.values():
            for status, response in op["responses"].items():
                if status >= "400":
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorResponse"
                    }, (path, status)


# ---- 5. a missing or unreachable conversation store: 503, saying what to do ------------------------------------
def test_feedback_and_admin_without_a_store_are_a_503_saying_what_to_set(demo_kb, kb, embedder):
    settings = bot_settings(demo_kb, None)
    service = ChatService(
        settings, create_retriever("hybrid", kb, embedder, settings), ExtractiveGenerator(), get_encoding()
    )
    with guarded_server(settings, Services(service, kb, embedder)) as url:
        r = httpx.post(f"{url}/feedback", json={"message_id": "m-1", "rating": "up"}, timeout=30)
        error = assert_refused(r, "", status=503)
        assert error["type"] == "not_configured" and "RAG_DATABASE_URL" in error["message"]
        r = httpx.get(f"{url}/admin/stats", headers={"X-API-Key": ADMIN_KEY}, timeout=30)
        assert assert_refused(r, "", status=503)["type"] == "not_configured"


class CuttableProxy:
    """A TCP proxy to a real database server whose `cut()` is the network going away: open connections are
    dropped and new ones refused."""

    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # cut
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(): close() alone does not
        self.listener.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
                s.close()


def test_an_unreachable_database_is_a_503(demo_kb, kb, embedder, postgres_server):
    real = sa.make_url(create_database(postgres_server))
    proxy = CuttableProxy(real.host, real.port)
    database = real.set(port=proxy.port).render_as_string(hide_password=False)
    settings = bot_settings(demo_kb, database)
    store = SQLAlchemyConversationStore(database)
    service = ChatService(
        settings, create_retriever("hybrid", kb, embedder, settings), ExtractiveGenerator(), get_encoding(), store=store
    )
    with guarded_server(settings, Services(service, kb, embedder)) as url:
        answer = httpx.post(f"{url}/chat", json={"question": "Do gift cards expire?"}, timeout=30).json()
        proxy.cut()
        r = httpx.post(f"{url}/feedback", json={"message_id": answer["message_id"], "rating": "up"}, timeout=30)
        error = assert_refused(r, "", status=503)
        assert error["type"] == "database_unavailable" and r.headers["retry-after"]
        assert "unavailable" in error["message"]
        # answering does not need the database: the question is answered, just not stored
        assert httpx.post(f"{url}/chat", json={"question": "Do gift cards expire?"}, timeout=30).status_code == 200
        r = httpx.get(f"{url}/admin/stats", headers={"X-API-Key": ADMIN_KEY}, timeout=30)
        assert assert_refused(r, "", status=503)["type"] == "database_unavailable"
    store.close()
