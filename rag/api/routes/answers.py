"""/api/kbs/{kb}/answers: curated answers (question, other phrasings, answer, language, enabled), effective at once
without re-ingest: a matching question is answered with the curated answer verbatim and whole (rag.chat.curated).
Export (`GET .../answers.csv`) and import (`POST .../answers.csv`) as CSV with the header
`question,answer,phrasings,language,enabled`. Scope `manage`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from rag.api.access import scoped
from rag.api.dependencies import KnowledgeBasesDep
from rag.api.schemas import ChatResponse, error_responses
from rag.api.validation import Text
from rag.store.curated import CuratedAnswer, draft_answer

router = APIRouter(
    prefix="/api",
    tags=["curated answers"],
    dependencies=[scoped("manage")],
    responses=error_responses(401, 403, 404, 422, 503, s404="No such knowledge base or curated answer"),
)
Question = Annotated[Text, Field(min_length=1, max_length=1000)]
AnswerText = Annotated[Text, Field(min_length=1, max_length=10_000)]
Phrasings = Annotated[list[Annotated[Text, Field(min_length=1, max_length=1000)]], Field(max_length=20)]
Language = Annotated[str, Field(pattern=r"^(en|zh|)$", description='"en", "zh", or "" for any language')]


class AnswerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    question: Question
    answer: AnswerText
    phrasings: Phrasings = Field(default_factory=list, description="Other ways customers ask the same.")
    language: Language = ""
    enabled: bool = True


class AnswerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    question: Question | None = None
    answer: AnswerText | None = None
    phrasings: Phrasings | None = None
    language: Language | None = None
    enabled: bool | None = None


class AnswerOut(BaseModel):
    id: str
    question: str
    answer: str
    phrasings: list[str]
    language: str
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, entry: CuratedAnswer) -> AnswerOut:
        return cls(**vars(entry))


class AnswerList(BaseModel):
    data: list[AnswerOut]


class ImportResult(BaseModel):
    added: int
    updated: int
    deleted: int
    problems: list[str] = Field(description="Each skipped row: its line number and what to fix.")


def _invalid(exc: ValueError) -> HTTPException:
    return HTTPException(422, str(exc))


@router.get("/kbs/{kb}/answers", response_model=AnswerList, summary="Curated answers")
def list_answers(kb: str, kbs: KnowledgeBasesDep) -> AnswerList:
    return AnswerList(data=[AnswerOut.of(a) for a in kbs.curated(kb).list()])


@router.post(
    "/kbs/{kb}/answers",
    status_code=201,
    response_model=AnswerOut,
    summary="Add a curated answer (effective at once)",
    responses=error_responses(400, 409, 413, 422, s409="Another curated answer has this question"),
)
def create_answer(kb: str, body: AnswerCreate, kbs: KnowledgeBasesDep) -> AnswerOut:
    try:
        entry = kbs.curated(kb).add(body.question, body.answer, body.phrasings, body.language, body.enabled)
    except ValueError as exc:
        raise _invalid(exc) from exc
    return AnswerOut.of(entry)


@router.get(
    "/kbs/{kb}/answers.csv",
    summary="Every curated answer as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "question,answer,phrasings,language,enabled"}},
)
def export_answers(kb: str, kbs: KnowledgeBasesDep) -> Response:
    return Response(
        kbs.curated(kb).export_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kb}-answers.csv"'},
    )


@router.post(
    "/kbs/{kb}/answers.csv",
    response_model=ImportResult,
    summary="Import curated answers from a CSV file (multipart field `file`); bad rows are skipped and reported",
    description="Rows whose question matches an existing curated answer update it; with `replace=true` answers the "
    "file does not hold are deleted.",
    responses=error_responses(400, 413, 422, s400="The multipart body cannot be parsed"),
)
def import_answers(
    kb: str,
    kbs: KnowledgeBasesDep,
    file: Annotated[UploadFile, File(description="UTF-8 CSV with a header row")],
    replace: bool = False,
) -> ImportResult:
    data = file.file.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, f"{file.filename}: not UTF-8 text ({exc}) - save the sheet as CSV UTF-8") from exc
    try:
        result = kbs.curated(kb).import_csv(text, replace=replace)
    except ValueError as exc:
        raise _invalid(exc) from exc
    return ImportResult(added=result.added, updated=result.updated, deleted=result.deleted, problems=result.problems)


class TryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    question: Question = Field(..., description="A customer's question.")
    draft: AnswerCreate | None = Field(None, description="A curated answer not yet published, tried with the others.")
    replaces: str | None = Field(None, max_length=64, description="The id of the curated answer the draft edits.")


@router.post(
    "/kbs/{kb}/try",
    response_model=ChatResponse,
    summary="How the knowledge base answers a question, optionally with a draft curated answer (nothing is stored)",
    responses=error_responses(400, 413, 422, 502, 504),
)
def try_question(kb: str, body: TryRequest, kbs: KnowledgeBasesDep) -> ChatResponse:
    draft = None
    if body.draft is not None:
        d = body.draft
        try:
            draft = draft_answer(body.replaces or "draft", d.question, d.answer, d.phrasings, d.language)
        except ValueError as exc:
            raise _invalid(exc) from exc
    return ChatResponse.from_answer(kbs.try_question(kb, body.question, draft))


@router.get("/kbs/{kb}/answers/{answer_id}", response_model=AnswerOut, summary="One curated answer")
def get_answer(kb: str, answer_id: str, kbs: KnowledgeBasesDep) -> AnswerOut:
    return AnswerOut.of(kbs.curated(kb).get(answer_id))


@router.patch(
    "/kbs/{kb}/answers/{answer_id}",
    response_model=AnswerOut,
    summary="Change a curated answer (effective at once)",
    responses=error_responses(400, 409, 413, 422, s409="Another curated answer has this question"),
)
def update_answer(kb: str, answer_id: str, body: AnswerUpdate, kbs: KnowledgeBasesDep) -> AnswerOut:
    try:
        entry = kbs.curated(kb).update(answer_id, **body.model_dump(exclude_unset=True))
    except ValueError as exc:
        raise _invalid(exc) from exc
    return AnswerOut.of(entry)


@router.delete("/kbs/{kb}/answers/{answer_id}", status_code=204, summary="Delete a curated answer")
def delete_answer(kb: str, answer_id: str, kbs: KnowledgeBasesDep) -> Response:
    kbs.curated(kb).get(answer_id)  # 404 for an unknown id
    kbs.curated(kb).delete(answer_id)
    return Response(status_code=204)
