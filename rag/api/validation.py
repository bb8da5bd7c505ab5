"""What the API accepts as text, and the checks that depend on settings (so pydantic cannot make them): each
fails as the same 422 body that schema validation gives, naming the field.

Every text field of the API is `Text` (or `Question`): NUL characters are refused because PostgreSQL cannot
store them, and lone surrogates (`"\\ud800"` in JSON) because they cannot be encoded as UTF-8 - both would
otherwise fail deep inside retrieval or the conversation store as a 500. The JSON schema of each such field
carries the same rule as a `pattern`, so the OpenAPI document describes what the server validates.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from rag.conversations.analytics import parse_since
from rag.core.settings import Settings

# Exactly the characters `str.isspace()` (and so `str.strip()`) treats as white space, spelled for JSON schema
# regexes (ECMA 262, Python and Rust engines read these escapes alike); a test checks the two agree.
WHITESPACE_CLASS = r"\t-\r\u001c- \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NO_NUL_PATTERN = r"^[^\u0000]*$"
NOT_BLANK_PATTERN = rf"^[^\u0000]*[^\u0000{WHITESPACE_CLASS}][^\u0000]*$"
_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored or encoded, or None."""
    if "\x00" in value:
        return "must not contain NUL characters (\\u0000) - remove them"
    if _SURROGATE.search(value):
        return "must be valid Unicode: a lone surrogate (\\ud800-\\udfff) has no UTF-8 encoding - send the full pair"
    return None


class _TextRules:
    """pydantic annotation: the character rules above, optionally 'not only white space', in validation and in
    the JSON schema alike."""

    def __init__(self, *, not_blank: bool = False):
        self.not_blank = not_blank

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = NOT_BLANK_PATTERN if self.not_blank else NO_NUL_PATTERN
        return json_schema

    def _check(self, value: str) -> str:
        problem_ = text_problem(value)
        if problem_:
            raise PydanticCustomError("text_characters", problem_)
        if self.not_blank and not value.strip():
            raise PydanticCustomError("text_blank", "must not be empty")
        return value


# `name: Text` or, with a length limit, `name: Annotated[Text, Field(max_length=128)]`
Text = Annotated[str, _TextRules()]
# A customer question: Text with at least one character that is not white space. Its length limit comes from
# settings (`max_question_chars`): checked by `question_problems`, written into the OpenAPI document by rag.api.openapi.
Question = Annotated[str, _TextRules(not_blank=True)]


def _integral(value: Any) -> Any:
    """17.0 as 17: JSON Schema counts it as an integer, so the API does too (strict models still refuse "5")."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# `Annotated[int, Field(ge=1), INTEGRAL]`: after the constraints, or pydantic copies them into the JSON schema as is
INTEGRAL = BeforeValidator(_integral)


def problem(field: tuple[str | int, ...], message: str) -> dict[str, Any]:
    return {"loc": ("body", *field), "msg": message, "type": "value_error"}


def question_problems(question: str, settings: Settings, field: tuple[str | int, ...]) -> list[dict[str, Any]]:
    """An empty or over-long customer question."""
    if not question.strip():
        return [problem(field, "must not be empty")]
    if len(question) > settings.max_question_chars:
        return [problem(field, f"is {len(question)} characters; the limit is {settings.max_question_chars}")]
    return []


def raise_if(problems: list[dict[str, Any]]) -> None:
    if problems:
        raise RequestValidationError(problems)


# RFC 3339 full-date or date-time, the two formats the OpenAPI document declares for `since`
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})", re.IGNORECASE
)
DATE_SCHEMA = {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}


def date_param(value: str | None, name: str = "since") -> datetime | None:
    """A date or date-time query parameter as an aware UTC datetime; 422 naming the accepted forms otherwise."""
    if value is None:
        return None
    problem = f"must be a date such as 2026-11-01 or a date-time such as 2026-11-01T09:30:00Z, got {value!r}"
    invalid = RequestValidationError([{"loc": ("query", name), "msg": problem, "type": "value_error"}])
    if not (_DATE.fullmatch(value) or _DATE_TIME.fullmatch(value)):
        raise invalid
    try:
        return parse_since(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError):  # no such day, or a zone offset that leaves the calendar (year 0 or 10000)
        raise invalid from None
