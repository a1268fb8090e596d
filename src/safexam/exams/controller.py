"""HTTP routes of the question bank, exams and enrollments (thin: parse, authorize, call)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from safexam.auth.guards import CurrentUser, authenticated, educator_or_admin
from safexam.core.deps import DB
from safexam.core.errors import Forbidden
from safexam.core.openapi import error_responses
from safexam.exams import (
    authoring,
    banks,
    enrollments,
    lookups,
    question_views,
    questions_service,
    roster,
    views,
)
from safexam.exams.kinds import QuestionKind
from safexam.exams.schemas import (
    BankCreate,
    BankOut,
    BankPage,
    BankUpdate,
    EnrolledOut,
    EnrollmentPage,
    EnrollmentsPut,
    ExamCreate,
    ExamOut,
    ExamPage,
    ExamUpdate,
    QuestionBankPut,
    QuestionCreate,
    QuestionOut,
    QuestionPage,
    QuestionUpdate,
)
from safexam.sessions.schemas import PaperQuestion
from safexam.sessions.start import list_student_exams

__all__ = ["BankController", "ExamController", "QuestionController"]


Limit = Annotated[int, QueryParameter(ge=1, le=questions_service.MAX_PAGE)]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000)]
Search = Annotated[str | None, QueryParameter(max_length=200)]
SampleCount = Annotated[int, QueryParameter(ge=1, le=question_views.MAX_SAMPLES)]


class QuestionController(Controller):
    """The educator's question bank; other educators' questions are 404, except those
    of banks shared with the organization (read: 403 on edit)."""

    path = "/questions"
    tags = ["questions"]
    guards = [educator_or_admin]

    @post("/")
    async def create(
        self, db: DB, principal: CurrentUser, data: JSONBody[QuestionCreate]
    ) -> QuestionOut:
        """Add a question; its body is validated strictly against its kind."""
        question = await questions_service.create_question(
            db,
            owner_id=principal.id,
            kind=data.kind,
            prompt=data.prompt,
            body=data.body,
            points=data.points,
            tags=data.tags,
            status=data.status,
        )
        return questions_service.question_out(question)

    @get("/")
    async def list_questions(
        self,
        db: DB,
        principal: CurrentUser,
        status: FromQuery[Literal["draft", "active", "archived"] | None] = None,
        source: FromQuery[Literal["manual", "qie"] | None] = None,
        tag: Search = None,
        kind: FromQuery[QuestionKind | None] = None,
        q: Search = None,
        bank_id: FromQuery[uuid.UUID | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> QuestionPage:
        """My questions and those of banks shared with me, newest first; archived ones
        only with ``status=archived``; ``bank_id`` keeps one bank's."""
        rows, total = await questions_service.list_questions(
            db,
            principal,
            status=status,
            source=source,
            tag=tag,
            kind=kind,
            q=q,
            bank_id=bank_id,
            limit=limit,
            offset=offset,
        )
        return QuestionPage(
            items=[questions_service.question_out(r) for r in rows],
            total=total,
            limit=limit,
            offset=offset,
        )

    @get("/{question_id:uuid}")
    async def get_question(
        self, db: DB, principal: CurrentUser, question_id: FromPath[uuid.UUID]
    ) -> QuestionOut:
        question, _ = await questions_service.get_shared_question(db, question_id, principal)
        return questions_service.question_out(question)

    @get("/{question_id:uuid}/student-view")
    async def student_view(
        self, db: DB, principal: CurrentUser, question_id: FromPath[uuid.UUID]
    ) -> PaperQuestion:
        """The question as a student's paper shows it: no key, hidden test or template
        (a parametric one as the variant of the preview's fixed seed)."""
        question, _ = await questions_service.get_shared_question(db, question_id, principal)
        return question_views.student_view(question)

    @get("/{question_id:uuid}/variants")
    async def variants(
        self,
        db: DB,
        principal: CurrentUser,
        question_id: FromPath[uuid.UUID],
        count: SampleCount = 3,
    ) -> list[question_views.VariantOut]:
        """Sample variants of a parametric question, each with its answer key; none
        for a plain question."""
        question, _ = await questions_service.get_shared_question(db, question_id, principal)
        return question_views.sample_variants(question, count)

    @patch("/{question_id:uuid}")
    async def update(
        self,
        db: DB,
        principal: CurrentUser,
        question_id: FromPath[uuid.UUID],
        data: JSONBody[QuestionUpdate],
    ) -> QuestionOut:
        """Change only the fields sent; the body is re-validated, the kind never changes."""
        question, _ = await questions_service.get_shared_question(
            db, question_id, principal, edit=True, for_update=True
        )
        question = await questions_service.update_question(db, question, data, principal)
        return questions_service.question_out(question)

    @put("/{question_id:uuid}/bank", status_code=HTTP_200_OK, responses=error_responses(409))
    async def move(
        self,
        db: DB,
        principal: CurrentUser,
        question_id: FromPath[uuid.UUID],
        data: JSONBody[QuestionBankPut],
    ) -> QuestionOut:
        """Put my question into one of my banks (``bank_id``), or take it out (null)."""
        question = await banks.move_question(db, question_id, data.bank_id, principal)
        return questions_service.question_out(question)

    @delete("/{question_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def remove(
        self, db: DB, principal: CurrentUser, question_id: FromPath[uuid.UUID]
    ) -> None:
        """Delete, or archive when exams or papers still refer to it; 409 if a
        published exam uses it."""
        question, access = await questions_service.get_shared_question(
            db, question_id, principal, for_update=True
        )
        if access != "owner":
            raise Forbidden("only the question's owner may delete it", code="not_question_owner")
        await questions_service.delete_question(db, question)


class BankController(Controller):
    """Question banks: mine, and those shared with my organization."""

    path = "/banks"
    tags = ["questions"]
    guards = [educator_or_admin]

    @post("/", responses=error_responses(409))
    async def create(self, db: DB, principal: CurrentUser, data: JSONBody[BankCreate]) -> BankOut:
        """A new bank of mine; ``sharing`` is private (default), org_read or org_edit."""
        bank = await banks.create_bank(db, principal, data)
        return banks.bank_out(bank, principal)

    @get("/")
    async def list_banks(self, db: DB, principal: CurrentUser) -> BankPage:
        """My banks and those shared with my organization, by name, with what I may do."""
        found = await banks.list_banks(db, principal)
        return BankPage(
            items=[banks.bank_out(bank, principal, count) for bank, count in found],
            total=len(found),
        )

    @patch("/{bank_id:uuid}", responses=error_responses(409))
    async def update(
        self,
        db: DB,
        principal: CurrentUser,
        bank_id: FromPath[uuid.UUID],
        data: JSONBody[BankUpdate],
    ) -> BankOut:
        """Rename my bank or change its sharing (409 if a published exam's draw needs it)."""
        bank = await banks.get_bank_for_owner(db, bank_id, principal, for_update=True)
        bank = await banks.update_bank(db, bank, data, principal)
        counts = await banks.list_banks(db, principal)
        count = next((n for b, n in counts if b.id == bank.id), 0)
        return banks.bank_out(bank, principal, count)


class ExamController(Controller):
    """Exams for their authors; students only list theirs here."""

    path = "/exams"
    tags = ["exams"]

    @get("/", guards=[authenticated])
    async def list_exams(
        self,
        db: DB,
        principal: CurrentUser,
        status: FromQuery[Literal["draft", "published", "archived"] | None] = None,
        q: Search = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Any:
        """Educators: the exams they own (admins: all). Students: the exams they
        are enrolled in, with their state (the sessions domain builds that list:
        one path, one method, two audiences)."""
        if principal.role == "student":
            return await list_student_exams(db, principal)
        rows, total = await authoring.list_exams(
            db, principal, status=status, q=q, limit=limit, offset=offset
        )
        return ExamPage(
            items=await views.exams_out(db, rows), total=total, limit=limit, offset=offset
        )

    @post("/", guards=[educator_or_admin])
    async def create(self, db: DB, principal: CurrentUser, data: JSONBody[ExamCreate]) -> ExamOut:
        """A draft exam; items name questions of my bank or draws from my tags."""
        exam = await authoring.create_exam(db, principal, data)
        return await views.exam_out(db, exam)

    @get("/{exam_id:uuid}", guards=[educator_or_admin])
    async def get_exam(
        self, db: DB, principal: CurrentUser, exam_id: FromPath[uuid.UUID]
    ) -> ExamOut:
        exam = await lookups.get_owned_exam(db, exam_id, principal)
        return await views.exam_out(db, exam)

    @patch("/{exam_id:uuid}", guards=[educator_or_admin])
    async def update(
        self,
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        data: JSONBody[ExamUpdate],
    ) -> ExamOut:
        """Drafts change freely; a published exam keeps its items (409 ``exam_published``)."""
        exam = await lookups.get_owned_exam(db, exam_id, principal, for_update=True)
        exam = await authoring.update_exam(db, exam, data)
        return await views.exam_out(db, exam)

    @delete("/{exam_id:uuid}", guards=[educator_or_admin], status_code=HTTP_204_NO_CONTENT)
    async def remove(self, db: DB, principal: CurrentUser, exam_id: FromPath[uuid.UUID]) -> None:
        """Delete a draft, or a published exam no student has started."""
        exam = await lookups.get_owned_exam(db, exam_id, principal, for_update=True)
        await authoring.delete_exam(db, exam)

    @post("/{exam_id:uuid}/publish", guards=[educator_or_admin], status_code=HTTP_200_OK)
    async def publish(
        self, db: DB, principal: CurrentUser, exam_id: FromPath[uuid.UUID]
    ) -> ExamOut:
        """Validate and freeze the exam's content."""
        exam = await lookups.get_owned_exam(db, exam_id, principal, for_update=True)
        exam = await authoring.publish_exam(db, exam)
        return await views.exam_out(db, exam)

    @put("/{exam_id:uuid}/enrollments", guards=[educator_or_admin])
    async def enroll(
        self,
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        data: JSONBody[EnrollmentsPut],
    ) -> EnrolledOut:
        """Enroll (or update) students by email; unknown emails are pre-enrolled."""
        exam = await lookups.get_owned_exam(db, exam_id, principal)
        count = await enrollments.upsert_enrollments(db, exam, data.students)
        return EnrolledOut(enrolled=count)

    @post("/{exam_id:uuid}/enrollments/import", guards=[educator_or_admin], status_code=HTTP_200_OK)
    async def import_roster(
        self,
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        data: JSONBody[roster.RosterIn],
    ) -> roster.RosterReport:
        """Enroll a roster (pasted lines or a CSV file's text): the good rows in
        one transaction, every refused row reported with its line and reason."""
        exam = await lookups.get_owned_exam(db, exam_id, principal)
        return await roster.import_roster(db, exam, data.text, actor_id=principal.id)

    @get("/{exam_id:uuid}/enrollments", guards=[educator_or_admin])
    async def list_enrollments(
        self, db: DB, principal: CurrentUser, exam_id: FromPath[uuid.UUID]
    ) -> EnrollmentPage:
        exam = await lookups.get_owned_exam(db, exam_id, principal)
        items = await enrollments.list_enrollments(db, exam)
        return EnrollmentPage(items=items, total=len(items))

    @delete(
        "/{exam_id:uuid}/enrollments/{email:str}",
        guards=[educator_or_admin],
        status_code=HTTP_204_NO_CONTENT,
    )
    async def unenroll(
        self, db: DB, principal: CurrentUser, exam_id: FromPath[uuid.UUID], email: FromPath[str]
    ) -> None:
        exam = await lookups.get_owned_exam(db, exam_id, principal)
        await enrollments.remove_enrollment(db, exam, email)
