"""The API's guards as pure logic, no server: the text patterns the OpenAPI document publishes, strict request
types, the one error table, connection caps derived from the open-files limit, and the log throttle."""

from __future__ import annotations

import errno
import logging
import re

import pytest
from pydantic import ValidationError

from rag.api.errors import error_kind
from rag.api.schemas import ChatRequest
from rag.api.server import FD_RESERVE, RepeatThrottle, connection_limits
from rag.api.validation import NO_NUL_PATTERN, NOT_BLANK_PATTERN
from rag.core.errors import (
    ConfigurationError,
    ContextOverflow,
    DatabaseUnavailable,
    GeneratorTimeout,
    KnowledgeBaseCorrupt,
    RagError,
)
from rag.core.settings import Settings

pytestmark = pytest.mark.unit


def test_the_text_patterns_agree_with_the_server_on_every_character():
    """The OpenAPI patterns spell out `str.isspace()`; a client validating with them accepts what the server does."""
    not_blank, no_nul = re.compile(NOT_BLANK_PATTERN), re.compile(NO_NUL_PATTERN)
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        assert bool(not_blank.fullmatch(char)) == (not char.isspace() and char != "\0"), hex(code)
        assert bool(no_nul.fullmatch(char)) == (char != "\0"), hex(code)


@pytest.mark.parametrize(
    "field, value",
    [
        ("top_k", "5"),
        ("top_k", True),
        ("top_k", 2.5),
        ("top_k", float("nan")),
        ("stream", 0),
        ("stream", "true"),
        ("question", 7),
    ],
)
def test_request_types_are_strict(field, value):
    with pytest.raises(ValidationError):
        ChatRequest.model_validate({"question": "hi", field: value})


def test_a_whole_float_is_an_integer_as_in_json_schema():
    assert ChatRequest.model_validate({"question": "hi", "top_k": 3.0}).top_k == 3


@pytest.mark.parametrize(
    "error, status, kind",
    [
        (DatabaseUnavailable("down"), 503, "database_unavailable"),
        (ConfigurationError("set RAG_DATABASE_URL"), 503, "not_configured"),
        (KnowledgeBaseCorrupt("x"), 503, "knowledge_base_error"),
        (ContextOverflow("x"), 502, "llm_unavailable"),
        (GeneratorTimeout("x"), 504, "llm_timeout"),
        (RagError("x"), 500, "internal_error"),
    ],
)
def test_one_table_maps_project_errors_to_statuses(error, status, kind):
    assert error_kind(error) == (status, kind)


@pytest.mark.parametrize("open_files", [256, 1024, 4096, 1 << 20])
def test_connections_and_backlog_stay_below_the_open_files_limit(open_files):
    limits = connection_limits(Settings(_env_file=None, http_max_connections=100_000), open_files)
    assert limits.max_connections + limits.backlog + FD_RESERVE <= open_files
    assert limits.max_connections >= 8 and 16 <= limits.backlog <= 2048


def test_the_configured_cap_applies_when_the_limit_allows_it():
    assert connection_limits(Settings(_env_file=None, http_max_connections=500), 1 << 20).max_connections == 500


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_flood_of_accept_errors_is_logged_once_per_interval():
    logger = logging.getLogger("test.throttle")
    logger.addFilter(RepeatThrottle(("socket.accept() out of system resource",), interval=60))
    logger.addHandler(collect := Collect())
    logger.propagate = False
    try:
        raise OSError(errno.EMFILE, "Too many open files")
    except OSError:
        for _ in range(10_000):
            logger.error("socket.accept() out of system resource\nsocket: <socket>", exc_info=True)
    logger.error("something else")
    assert [r.getMessage().splitlines()[0] for r in collect.records] == [
        "socket.accept() out of system resource",
        "something else",
    ]


def test_the_next_message_let_through_counts_those_left_out():
    throttle = RepeatThrottle(("busy",), interval=0.0)
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "busy %d", (1,), None)
    assert throttle.filter(record) and record.getMessage() == "busy 1"
    throttle.interval = 60
    assert not throttle.filter(logging.LogRecord("x", logging.WARNING, __file__, 1, "busy %d", (2,), None))
    throttle.interval = 0.0
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "busy %d", (3,), None)
    assert throttle.filter(record) and record.getMessage().startswith("busy 3 (and 1 more like it")
