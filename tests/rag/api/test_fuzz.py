"""API fuzzing: schemathesis drives every operation of the app's own OpenAPI document against a real uvicorn
server (demo knowledge base, real embedding model, a real SQLite conversation store), with every check on -
no server errors, only declared statuses and content types, responses (Server-Sent Events included) matching
their schemas, schema-valid requests accepted and invalid ones refused, 405 with `Allow` for undeclared
methods, and authentication enforced where it is declared.

It runs schemathesis' own engine, the one behind `schemathesis run`, with all its phases (examples, coverage,
fuzzing, stateful), rather than `@schema.parametrize()`: the pytest plugin's lazy schemas do not work with
this pytest (they set `Function._nodeid`, which pytest 9 no longer has).

Admin and /v1 keys are configured and sent with every request; the `ignored_auth` check sends each protected
request again without the key and with a wrong one, so those routes are exercised both ways. The seed is
fixed so the suite is repeatable; a failure prints what was sent and a curl command that reproduces it.
"""

from __future__ import annotations

import time

import httpx
import pytest
import schemathesis
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

from rag.chat.service import ChatService
from rag.conversations import SQLAlchemyConversationStore
from rag.core.settings import Settings
from rag.generation.extractive import ExtractiveGenerator
from rag.store.embedders import CachedEmbedder
from rag.store.knowledge_base import KnowledgeBase
from rag.text.tokenizer import get_encoding
from rag.wiring import Services, build_services, create_retriever
from tests.rag.api.serving import guarded_server

pytestmark = pytest.mark.integration
ADMIN_KEY = "fuzz-admin-key"
API_KEY = "sk-fuzz-key"
MAX_EXAMPLES = 60  # per operation, in the fuzzing phase: about 600 cases, half a minute on 2 cores
MANAGEMENT_EXAMPLES = 15  # per operation of the management API (about 30 operations)
OPERATIONS = {
    "GET /health",
    "POST /chat",
    "POST /feedback",
    "GET /admin/stats",
    "GET /v1/models",
    "POST /v1/chat/completions",
    "GET /chat/{conversation_id}/agent",
}

load_all_checks()
ALL_CHECKS = sorted(check.__name__ for check in CHECKS.get_all() if not isinstance(check, type))
CONFIG = {
    "seed": 20261125,
    "headers": {"X-API-Key": ADMIN_KEY, "Authorization": f"Bearer {API_KEY}"},
    "checks": {"enabled": True},  # as `--checks all`: every built-in check (max_response_time needs a limit)
    "generation": {"max-examples": MAX_EXAMPLES},
    "workers": 1,
    # the management API has its own test below (the engine's phases do not all keep to schema.exclude()); the
    # channels' webhooks take each platform's own signed bodies, so generated ones all fail their signature check:
    # tests/rag/channels send them signed, and forged
    "operations": [{"include-path-regex": "^/(api|console|channels)/", "enabled": False}],
}


@pytest.fixture(scope="module")
def api_url(demo_kb, embedder, tmp_path_factory):
    database = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'conversations.sqlite'}"
    bot_settings = Settings(
        kb_dir=demo_kb,
        _env_file=None,
        database_url=database,
        admin_api_key=ADMIN_KEY,
        api_keys=[API_KEY],
        api_model_name="pinecrest-help",
    )
    store = SQLAlchemyConversationStore(database)
    with KnowledgeBase.open(demo_kb) as kb:
        retriever = create_retriever("hybrid", kb, embedder, bot_settings)
        sentences = CachedEmbedder(embedder)
        generator = ExtractiveGenerator(embedder=sentences)
        service = ChatService(bot_settings, retriever, generator, get_encoding(), store=store)
        with guarded_server(bot_settings, Services(service, kb, embedder)) as url:  # as `rag serve` serves it
            yield url
    store.close()


def _failures(recorder) -> list[str]:
    """Each failed check of a scenario: what failed and how to reproduce it."""
    out = []
    for nodes in recorder.checks.values():
        for node in nodes:
            if node.status == Status.FAILURE and node.failure_info is not None:
                failure = node.failure_info.failure
                out.append(f"{recorder.label}: {failure.title}\n{failure.message}\n{node.failure_info.code_sample}")
    return out


def test_every_check_is_on():
    config = SchemathesisConfig.from_dict(CONFIG).projects.get_default()
    assert all(config.checks.get_by_name(name=name).enabled for name in ALL_CHECKS)
    assert {
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "unsupported_method",
        "ignored_auth",
        "allow_header_conformance",
    } <= set(ALL_CHECKS)


def test_api_keeps_its_openapi_contract(api_url):
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json", config=SchemathesisConfig.from_dict(CONFIG))
    # the management API: test_management_api_keeps_its_openapi_contract; the console's session: test_console_session
    schema = schema.exclude(path_regex="^/(api|console|channels)/")
    assert {result.ok().label for result in schema.get_all_operations()} == OPERATIONS
    _, cases = _run(schema)
    assert set(cases) >= OPERATIONS and all(n >= 10 for label, n in cases.items() if label in OPERATIONS), cases


@pytest.fixture(scope="module")
def management_url(embedder, tmp_path_factory):
    """A server over a folder of knowledge bases, with one knowledge base ("fuzz") holding a document."""
    settings = Settings(kb_root=tmp_path_factory.mktemp("fuzz-kbs") / "root", admin_api_key=ADMIN_KEY, _env_file=None)
    services = build_services(settings, background=True, embedder=embedder)
    try:
        with guarded_server(settings, services) as url:
            headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
            httpx.post(f"{url}/api/kbs", json={"id": "fuzz", "name": "Fuzz"}, headers=headers).raise_for_status()
            files = {"files": ("doc.md", b"# Returns\n\nReturns are accepted within 30 days.\n")}
            job = httpx.post(f"{url}/api/kbs/fuzz/documents", files=files, headers=headers).json()
            while httpx.get(f"{url}/api/jobs/{job['job_id']}", headers=headers).json()["state"] in (
                "queued",
                "running",
            ):
                time.sleep(0.2)
            yield url
    finally:
        services.close()


def test_management_api_keeps_its_openapi_contract(management_url):
    config = CONFIG | {
        "headers": {"Authorization": f"Bearer {ADMIN_KEY}"},
        "generation": {"max-examples": MANAGEMENT_EXAMPLES},
        "parameters": {"kb": "fuzz"},  # one real knowledge base, so requests get past "no such knowledge base"
        # an uploaded file's type and content cannot be described by the schema: a schema-valid upload may still
        # be refused (415 an unknown type, 422 a CSV without its header)
        # the stateful phase links POST /api/kbs to every {kb} route, which the fixed `kb` above contradicts
        "phases": {"stateful": {"enabled": False}},
        "operations": [
            # only the management API here (the engine's stateful and coverage phases do not keep to
            # schema.include(); disabled operations they skip)
            {"include-path-regex": "^/(?!api/)", "enabled": False},
            {"include-method": "DELETE", "include-path": "/api/kbs/{kb}", "enabled": False},
            {
                # settings that are each valid may clash (llm_max_tokens must fit in llm_context_window): 422
                "include-path-regex": "^/api/kbs(/\\{kb\\})?$",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429", "5xx"]
                    }
                },
            },
            {
                "include-method": "POST",
                "include-path-regex": "/(documents|answers\\.csv)$",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "401", "403", "404", "409", "413", "415", "422", "429", "5xx"]
                    }
                },
            },
        ],
    }
    schema = schemathesis.openapi.from_url(
        f"{management_url}/openapi.json", config=SchemathesisConfig.from_dict(config)
    )
    # deleting the knowledge base would leave every later case a 404
    schema = schema.include(path_regex="^/api/").exclude(method="DELETE", path="/api/kbs/{kb}")
    _, cases = _run(schema)
    assert len(cases) >= 25 and all(n >= 5 for n in cases.values()), cases


def _run(schema) -> tuple[list[str], dict[str, int]]:
    """Every phase of schemathesis' engine over `schema`: the problems found, and cases per operation."""
    problems: list[str] = []
    cases: dict[str, int] = {}
    phases: dict[str, str] = {}
    started = time.monotonic()
    for event in schemathesis.engine.from_schema(schema).execute():
        recorder = getattr(event, "recorder", None)
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished) and recorder is not None:
            cases[recorder.label] = cases.get(recorder.label, 0) + len(recorder.cases)
            problems += _failures(recorder)
        elif isinstance(event, events.PhaseFinished):
            phases[event.phase.name] = event.status
        elif isinstance(event, events.NonFatalError):
            problems.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            problems.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            problems += [f"{f.operation}: {f.title}\n{f.message}" for f in event.failures]
    elapsed = time.monotonic() - started
    assert not problems, "\n\n".join(problems)
    print(f"schemathesis: {sum(cases.values())} cases in {elapsed:.0f} s: {cases}; phases: {phases}")
    return problems, cases
