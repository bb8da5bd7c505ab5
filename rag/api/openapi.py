"""The OpenAPI document, completed with what depends on settings, so it describes what this server validates:
the question length and top_k limits, the one model id of /v1, and whether /v1 needs a key. Clients and the
API fuzzing test (tests/rag/api/test_fuzz.py) read it as the contract."""

from __future__ import annotations

from typing import Any

from rag.api.schemas import INT64
from rag.core.settings import Settings


def _node(schema: dict[str, Any], *path: str) -> dict[str, Any]:
    """The object at `path`; a KeyError naming the path when a model was renamed (a test builds this document)."""
    node = schema
    for i, key in enumerate(path):
        if key not in node:
            raise KeyError(f"OpenAPI document has no {'/'.join(path[: i + 1])} - update rag.api.openapi")
        node = node[key]
    return node


def _branch(property_schema: dict[str, Any], type_: str) -> dict[str, Any]:
    """The schema of `type_` in a property: the property itself, or its branch of anyOf (`str | None`) or oneOf."""
    for branch in [property_schema, *property_schema.get("anyOf", []), *property_schema.get("oneOf", [])]:
        if branch.get("type") == type_:
            return branch
    raise KeyError(f"no {type_} schema in {property_schema} - update rag.api.openapi")


def _apply_limits(doc: dict[str, Any], settings: Settings) -> None:
    schemas = _node(doc, "components", "schemas")
    _node(schemas, "ChatRequest", "properties", "question")["maxLength"] = settings.max_question_chars
    _branch(_node(schemas, "ChatRequest", "properties", "top_k"), "integer")["maximum"] = settings.max_top_k
    _branch(_node(schemas, "UserMessage", "properties", "content"), "string")["maxLength"] = settings.max_question_chars
    _node(schemas, "TextPart", "properties", "text")["maxLength"] = settings.max_question_chars
    if settings.kb_root is None:  # one knowledge base: one model; under RAG_KB_ROOT they come and go
        _node(schemas, "CompletionRequest", "properties", "model")["enum"] = [settings.model_id()]
    # FastAPI writes numeric bounds as floats, and 2^63 - 1 as a float is 2^63, one past what SQLite can hold
    number = _branch(_node(schemas, "ChatFilters", "properties", "metadata", "additionalProperties"), "number")
    number["minimum"], number["maximum"] = INT64


def _apply_security(doc: dict[str, Any], settings: Settings) -> None:
    """/v1 needs a Bearer token only where RAG_API_KEYS is set; otherwise it is open and must not claim otherwise."""
    if settings.api_keys:
        return
    for path, operations in doc["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for operation in operations.values():
            operation.pop("security", None)
            operation.get("responses", {}).pop("401", None)
    doc["components"].get("securitySchemes", {}).pop("ApiKey", None)


def complete_openapi(doc: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """`doc` (FastAPI's document, changed in place: calling this again changes nothing) with the settings' limits."""
    _apply_limits(doc, settings)
    _apply_security(doc, settings)
    return doc
