"""The exam builder: my exams, a new exam, and one exam's settings, items,
enrolments and publication.

Each form builds the request the JSON API takes (``ExamCreate``, ``ExamUpdate``
with its ``items``, the roster of ``POST /api/v1/exams/{id}/enrollments/import``)
and calls the same service, so the page refuses exactly what the API refuses,
in words beside the field. Every form works without scripts: items move with
Up and Down buttons, and the window is entered in UTC unless js/builder.js
says which zone the browser is in.
"""

from __future__ import annotations

import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from litestar import Controller, Request, get, post
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from safexam.auth.guards import CurrentUser, Principal
from safexam.core.deps import DB
from safexam.core.errors import ApiError, NotFound, Unprocessable
from safexam.exams import authoring, banks, enrollments, lookups, questions_service, roster, views
from safexam.exams.schemas import (
    DEFAULT_FLAG_KINDS,
    EVENT_KINDS,
    DrawIn,
    EnrollmentOut,
    ExamCreate,
    ExamItemIn,
    ExamOut,
    ExamUpdate,
    QuestionOut,
)
from safexam.orgs.settings import ExamDefaults, organization_settings
from safexam.web.forms import convert_form, field_errors, form_problem
from safexam.web.layout import page

__all__ = ["ExamBuilderController", "exam_state", "publish_sentences"]

BASE = "/educator/exams"
# Enough to read a class list; the roster's own limit is rows, this is bytes.
MAX_ROSTER_BYTES = 2_000_000

RELEASE_POLICIES = [
    ("manual", "When I release them"),
    ("after_close", "When the exam closes for everyone"),
    ("immediate", "As soon as each attempt is graded"),
]

FLAG_LABELS = {
    "focus_lost": "The exam window loses focus",
    "focus_gained": "The exam window gets focus back",
    "visibility_hidden": "The student switches tab or hides the window",
    "visibility_visible": "The student comes back to the tab",
    "fullscreen_exit": "The student leaves full screen",
    "fullscreen_enter": "The student goes back to full screen",
    "copy": "The student copies text",
    "paste": "The student pastes text",
    "devtools_opened": "The browser's developer tools open",
    "multiple_screens": "More than one screen is attached",
    "offline": "The connection drops",
    "online": "The connection comes back",
    "ip_changed": "The network address or browser changes",
    "context_menu": "The student opens the context menu",
    "resize": "The exam window is resized",
}

STATE_LABELS = {
    "draft": "Draft",
    "scheduled": "Scheduled",
    "open": "Open now",
    "closed": "Closed",
    "archived": "Archived",
}

# Fields a published exam may still change (authoring freezes the rest).
_EDITABLE_WHEN_PUBLISHED = ("title", "description", "closes_at", "release_policy", "integrity")


def exam_state(exam: ExamOut, now: datetime) -> str:
    """Draft, scheduled, open, closed or archived, as an educator thinks of it."""
    if exam.status != "published":
        return exam.status
    if now < exam.opens_at:
        return "scheduled"
    if now < exam.closes_at:
        return "open"
    return "closed"


def _item_name(exam: ExamOut, position: int) -> str:
    """How the page names the item at ``position``: by its number in the list."""
    found = [(n, i) for n, i in enumerate(exam.items, start=1) if i.position == position]
    if not found:
        return "An item"
    n, item = found[0]
    if item.draw is not None:
        return f"Item {n} (draw from “{item.draw.tag}”)"
    if item.question is not None:
        prompt = item.question.prompt.strip().splitlines()[0] if item.question.prompt else ""
        if len(prompt) > 60:
            prompt = prompt[:57] + "…"
        return f"Item {n} (“{prompt}”)"
    return f"Item {n}"


def publish_sentences(exam: ExamOut, error: ApiError) -> list[str]:
    """The publish route's problems as sentences that say what to do."""
    details = error.details if isinstance(error.details, list) else []
    sentences: list[str] = []
    for detail in details:
        if not isinstance(detail, dict):
            continue
        problem = detail.get("problem")
        position = detail.get("position")
        if problem == "no_items":
            sentences.append(
                "The exam has no questions yet: add a question from the bank or a draw from a tag."
            )
        elif problem == "closed":
            sentences.append("The exam's window has already closed: move “Closes” to a later time.")
        elif problem == "closes_before_opens":
            sentences.append("The window closes before it opens: move “Closes” after “Opens”.")
        elif problem == "question_not_active" and isinstance(position, int):
            sentences.append(
                f"{_item_name(exam, position)} is a question that is {detail.get('status')}, "
                "not active: make it active in the question bank, or remove it from the exam."
            )
        elif problem == "draw_too_small" and isinstance(position, int):
            available = detail.get("available")
            sentences.append(
                f"{_item_name(exam, position)} draws {detail.get('needed')} questions tagged "
                f"“{detail.get('tag')}”, but only {available} active "
                f"{'question carries' if available == 1 else 'questions carry'} that tag: "
                "lower the count, or tag more active questions."
            )
        else:
            message = str(detail.get("message") or error.message)
            sentences.append(message[:1].upper() + message[1:].rstrip(".") + ".")
    if not sentences:
        sentences.append(error.message[:1].upper() + error.message[1:].rstrip(".") + ".")
    return sentences


# ---------------------------------------------------------------- the window's time zone


def _local_input(moment: datetime, zone: ZoneInfo) -> str:
    """A UTC moment as a ``datetime-local`` value in ``zone``."""
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def _utc_from_local(value: str, zone: ZoneInfo) -> str:
    """A ``datetime-local`` value in ``zone`` as an ISO moment in UTC; ValueError if not one."""
    local = datetime.fromisoformat(value.strip())
    return local.replace(tzinfo=zone).astimezone(UTC).isoformat()


# The service's messages about a field, as the page says them.
_WORDED = {
    "closes_at must be after opens_at": "The exam must close after it opens.",
    "a published exam's closes_at can only be extended": (
        "A published exam can close later, never earlier."
    ),
    "title must not be blank": "Give the exam a title.",
}


def _worded(errors: dict[str, str]) -> dict[str, str]:
    return {field: _WORDED.get(message, message) for field, message in errors.items()}


def _settings_data(form: FormMultiDict, *, published: bool) -> dict[str, Any]:
    """The settings form as the JSON request (``ExamCreate`` / ``ExamUpdate``), or
    one 422 naming every field the form cannot fill in."""
    problems: list[dict[str, str]] = []

    def text(name: str) -> str:
        return str(form.get(name) or "").strip()

    zone = ZoneInfo("UTC")
    try:
        zone = ZoneInfo(text("tz") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        problems.append({"field": "opens_at", "message": f"Unknown time zone “{text('tz')}”."})

    def moment(name: str) -> str | None:
        try:
            return _utc_from_local(text(name), zone)
        except ValueError:
            problems.append(
                {
                    "field": name,
                    "message": "Enter a date and a time, such as 2026-06-01 09:00."
                    if not text(name)
                    else f"“{text(name)}” is not a date and time.",
                }
            )
            return None

    def whole(name: str, low: int, high: int, sentence: str) -> int | None:
        value = text(name)
        if value.isdigit() and low <= int(value) <= high:
            return int(value)
        problems.append({"field": name, "message": sentence})
        return None

    if not text("title"):
        problems.append({"field": "title", "message": "Give the exam a title."})
    data: dict[str, Any] = {
        "title": text("title"),
        "description": str(form.get("description") or ""),
        "release_policy": text("release_policy") or "manual",
        "integrity": {
            "require_fullscreen": form.get("require_fullscreen") == "on",
            "flag_kinds": [k for k in form.getall("flag_kinds", []) if k in EVENT_KINDS],
        },
    }
    if not published:
        data["opens_at"] = moment("opens_at")
    data["closes_at"] = moment("closes_at")
    if not published:
        data.update(
            duration_minutes=whole(
                "duration_minutes",
                1,
                60 * 24 * 14,
                "Enter the time allowed in whole minutes, from 1 to 20160 (14 days).",
            ),
            attempts_allowed=whole(
                "attempts_allowed", 1, 100, "Enter the attempts allowed, from 1 to 100."
            ),
            shuffle_questions=form.get("shuffle_questions") == "on",
            shuffle_choices=form.get("shuffle_choices") == "on",
        )
    if problems:
        raise Unprocessable(problems[0]["message"], details=problems)
    return data


def _settings_values(form: FormMultiDict) -> dict[str, Any]:
    """What the educator typed, to show again beside its errors."""
    return {
        "title": form.get("title") or "",
        "description": form.get("description") or "",
        "opens_at": form.get("opens_at") or "",
        "closes_at": form.get("closes_at") or "",
        "tz": form.get("tz") or "UTC",
        "duration_minutes": form.get("duration_minutes") or "",
        "attempts_allowed": form.get("attempts_allowed") or "",
        "shuffle_questions": form.get("shuffle_questions") == "on",
        "shuffle_choices": form.get("shuffle_choices") == "on",
        "release_policy": form.get("release_policy") or "manual",
        "require_fullscreen": form.get("require_fullscreen") == "on",
        "flag_kinds": list(form.getall("flag_kinds", [])),
        "opens_utc": "",
        "closes_utc": "",
    }


def _exam_values(exam: ExamOut) -> dict[str, Any]:
    utc = ZoneInfo("UTC")
    return {
        "title": exam.title,
        "description": exam.description,
        "opens_at": _local_input(exam.opens_at, utc),
        "closes_at": _local_input(exam.closes_at, utc),
        "tz": "UTC",
        "duration_minutes": exam.duration_minutes,
        "attempts_allowed": exam.attempts_allowed,
        "shuffle_questions": exam.shuffle_questions,
        "shuffle_choices": exam.shuffle_choices,
        "release_policy": exam.release_policy,
        "require_fullscreen": exam.integrity.require_fullscreen,
        "flag_kinds": list(exam.integrity.flag_kinds),
        # js/builder.js rewrites the inputs from these in the browser's zone.
        "opens_utc": exam.opens_at.astimezone(UTC).isoformat(),
        "closes_utc": exam.closes_at.astimezone(UTC).isoformat(),
    }


def _new_values(defaults: ExamDefaults, time_zone: str) -> dict[str, Any]:
    """A new exam's form: the organization's defaults, its zone unless the browser's
    script says where the educator is."""
    return {
        "title": "",
        "description": "",
        "opens_at": "",
        "closes_at": "",
        "tz": time_zone,
        "duration_minutes": defaults.duration_minutes,
        "attempts_allowed": defaults.attempts_allowed,
        "shuffle_questions": defaults.shuffle_questions,
        "shuffle_choices": defaults.shuffle_choices,
        "release_policy": defaults.release_policy,
        "require_fullscreen": defaults.require_fullscreen,
        "flag_kinds": list(DEFAULT_FLAG_KINDS),
        "opens_utc": "",
        "closes_utc": "",
    }


def _current_items(exam: ExamOut, form: FormMultiDict | None) -> list[ExamItemIn]:
    """The exam's items as the PATCH takes them, with the points and draw counts typed
    in the form."""
    items: list[ExamItemIn] = []
    for item in exam.items:
        points = item.points
        if form is not None:
            typed = str(form.get(f"points-{item.position}") or "").strip()
            if typed:
                try:
                    points = float(typed)
                except ValueError as exc:
                    raise Unprocessable(
                        f"Points must be a number, not “{typed}”.",
                        field=f"points-{item.position}",
                    ) from exc
                if not 0 <= points <= 10_000:
                    raise Unprocessable(
                        "Points must lie between 0 and 10,000.", field=f"points-{item.position}"
                    )
        draw = None
        if item.draw is not None:
            count = item.draw.count
            typed = str(form.get(f"count-{item.position}") or "").strip() if form else ""
            if typed:
                if not typed.isdigit() or not 1 <= int(typed) <= 500:
                    raise Unprocessable(
                        "Draw from 1 to 500 questions.", field=f"count-{item.position}"
                    )
                count = int(typed)
            draw = DrawIn(tag=item.draw.tag, count=count)
        items.append(
            ExamItemIn(
                question_id=item.question_id,
                draw=draw,
                points=points,
            )
        )
    return items


def _draw_item(form: FormMultiDict) -> ExamItemIn:
    tag = str(form.get("draw_tag") or "").strip()
    count = str(form.get("draw_count") or "").strip()
    points = str(form.get("draw_points") or "").strip()
    if not tag:
        raise Unprocessable("Enter the tag to draw questions from.", field="draw_tag")
    if not count.isdigit() or not 1 <= int(count) <= 500:
        raise Unprocessable("Enter how many questions to draw, from 1 to 500.", field="draw_count")
    try:
        value = float(points)
    except ValueError as exc:
        raise Unprocessable(
            "Enter the points each drawn question is worth.", field="draw_points"
        ) from exc
    if not 0 <= value <= 10_000:
        raise Unprocessable("Points must lie between 0 and 10,000.", field="draw_points")
    return ExamItemIn(draw=DrawIn(tag=tag, count=int(count)), points=value)


def _apply_item_action(action: str, items: list[ExamItemIn], form: FormMultiDict) -> None:
    verb, _, argument = action.partition(":")
    if verb == "add":
        try:
            question_id = uuid.UUID(argument)
        except ValueError as exc:
            raise Unprocessable("No such question.", field="add") from exc
        if any(i.question_id == question_id for i in items):
            raise Unprocessable("This question is already in the exam.", field="add")
        items.append(ExamItemIn(question_id=question_id))
        return
    if verb == "draw":
        items.append(_draw_item(form))
        return
    if verb == "points":
        return
    if not argument.isdigit() or int(argument) >= len(items):
        raise Unprocessable("This item is no longer in the exam: reload the page.", field="items")
    index = int(argument)
    if verb == "up" and index > 0:
        items[index - 1], items[index] = items[index], items[index - 1]
    elif verb == "down" and index < len(items) - 1:
        items[index + 1], items[index] = items[index], items[index + 1]
    elif verb == "remove":
        del items[index]


def _sentence(message: str) -> str:
    """A service message (``the roster has no students in it``) as a sentence."""
    return message[:1].upper() + message[1:].rstrip(".") + "."


def _items_problem(error: ApiError, exam: ExamOut) -> str:
    """The service's item error (``items[2].question_id: ...``) as a sentence."""
    for field, message in field_errors(error).items():
        if field.startswith("items[") and "]" in field:
            position = field[6 : field.index("]")]
            if position.isdigit():
                name = f"Item {int(position) + 1}"
                return f"{name}: {message.rstrip('.')}."
    return error.message[:1].upper() + error.message[1:].rstrip(".") + "."


# ---------------------------------------------------------------- the pages


@dataclass
class _Builder:
    """What the builder page shows besides the exam, after a form came back."""

    values: dict[str, Any] | None = None
    errors: dict[str, str] | None = None
    problem: str | None = None
    items_errors: dict[str, str] | None = None
    items_problem: str | None = None
    roster_text: str = ""
    roster_problem: str | None = None
    report: roster.RosterReport | None = None
    publish_problems: list[str] | None = None
    notice: str | None = None


async def _bank_results(
    db: DB, principal: Principal, exam: ExamOut, q: str | None, tag: str | None
) -> tuple[list[QuestionOut], int]:
    rows, total = await questions_service.list_questions(
        db, principal, q=q or None, tag=tag or None, limit=20
    )
    used = {i.question_id for i in exam.items if i.question_id is not None}
    # The exam owner's questions and the organization's shared ones (an admin
    # finds every question of the organization, but builds the owner's exam).
    shared = {
        bank.id for bank, _ in await banks.list_banks(db, principal) if bank.sharing in banks.SHARED
    }
    found = [
        questions_service.question_out(r)
        for r in rows
        if (r.owner_id == exam.owner_id or r.bank_id in shared) and r.id not in used
    ]
    return found, total


async def _builder_page(
    request: Request[Any, Any, Any],
    db: DB,
    principal: Principal,
    exam_id: uuid.UUID,
    state: _Builder,
    *,
    q: str | None = None,
    tag: str | None = None,
    status_code: int = 200,
) -> Template:
    row = await lookups.get_owned_exam(db, exam_id, principal)
    exam = await views.exam_out(db, row)
    enrolled: list[EnrollmentOut] = await enrollments.list_enrollments(db, row)
    searched = q is not None or tag is not None
    bank, bank_total = await _bank_results(db, principal, exam, q, tag) if searched else ([], 0)
    return page(
        request,
        "educator/exams/builder.html",
        status_code=status_code,
        title=exam.title,
        nav="educator-exams",
        exam=exam,
        state=exam_state(exam, datetime.now(UTC)),
        state_labels=STATE_LABELS,
        values=state.values or _exam_values(exam),
        errors=state.errors or {},
        problem=state.problem,
        items_errors=state.items_errors or {},
        items_problem=state.items_problem,
        enrolled=enrolled,
        roster_text=state.roster_text,
        roster_problem=state.roster_problem,
        report=state.report,
        publish_problems=state.publish_problems,
        notice=state.notice,
        searched=searched,
        q=q or "",
        tag=tag or "",
        bank=bank,
        bank_total=bank_total,
        release_policies=RELEASE_POLICIES,
        flag_kinds=[(k, FLAG_LABELS.get(k, k.replace("_", " ").capitalize())) for k in EVENT_KINDS],
    )


def _builder_url(exam_id: uuid.UUID, anchor: str = "") -> str:
    return f"{BASE}/{exam_id}" + (f"#{anchor}" if anchor else "")


class ExamBuilderController(Controller):
    """``/educator/exams``: an educator's exams and the builder of each."""

    path = "/exams"
    include_in_schema = False

    @get("/")
    async def my_exams(
        self, request: Request[Any, Any, Any], db: DB, principal: CurrentUser
    ) -> Template:
        rows, total = await authoring.list_exams(db, principal, limit=200)
        exams = await views.exams_out(db, rows)
        now = datetime.now(UTC)
        groups: dict[str, list[ExamOut]] = {key: [] for key in STATE_LABELS}
        for exam in exams:
            groups[exam_state(exam, now)].append(exam)
        sections = [(key, STATE_LABELS[key], groups[key]) for key in STATE_LABELS if groups[key]]
        return page(
            request,
            "educator/exams/list.html",
            title="Exams",
            nav="educator-exams",
            sections=sections,
            total=total,
            shown=len(exams),
        )

    @get("/new")
    async def new_exam(
        self, request: Request[Any, Any, Any], db: DB, principal: CurrentUser
    ) -> Template:
        org = await organization_settings(db, principal.organization_id)
        return page(
            request,
            "educator/exams/new.html",
            title="New exam",
            nav="educator-exams",
            values=_new_values(org.exam_defaults, org.time_zone),
            errors={},
            problem=None,
            release_policies=RELEASE_POLICIES,
            flag_kinds=[
                (k, FLAG_LABELS.get(k, k.replace("_", " ").capitalize())) for k in EVENT_KINDS
            ],
        )

    @post("/new", status_code=303)
    async def create(
        self, request: Request[Any, Any, Any], db: DB, principal: CurrentUser
    ) -> Redirect | Template:
        form = await request.form()
        try:
            data = convert_form(_settings_data(form, published=False), ExamCreate)
            exam = await authoring.create_exam(db, principal, data)
        except Unprocessable as error:
            return page(
                request,
                "educator/exams/new.html",
                status_code=422,
                title="New exam",
                nav="educator-exams",
                values=_settings_values(form),
                errors=_worded(field_errors(error)),
                problem=form_problem(error),
                release_policies=RELEASE_POLICIES,
                flag_kinds=[
                    (k, FLAG_LABELS.get(k, k.replace("_", " ").capitalize())) for k in EVENT_KINDS
                ],
            )
        return Redirect(_builder_url(exam.id), status_code=303)

    @get("/{exam_id:uuid}")
    async def builder(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        q: FromQuery[str | None] = None,
        tag: FromQuery[str | None] = None,
    ) -> Template:
        notice = "Saved." if request.query_params.get("saved") else None
        return await _builder_page(
            request, db, principal, exam_id, _Builder(notice=notice), q=q, tag=tag
        )

    @post("/{exam_id:uuid}", status_code=303)
    async def save_settings(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
    ) -> Redirect | Template:
        form = await request.form()
        exam = await lookups.get_owned_exam(db, exam_id, principal, for_update=True)
        published = exam.status != "draft"
        try:
            data = convert_form(_settings_data(form, published=published), ExamUpdate)
            await authoring.update_exam(db, exam, data)
        except ApiError as error:
            if error.status_code not in (409, 422):
                raise
            await db.rollback()
            return await _builder_page(
                request,
                db,
                principal,
                exam_id,
                _Builder(
                    values=_settings_values(form),
                    errors=_worded(field_errors(error)),
                    problem=form_problem(error),
                ),
                status_code=error.status_code,
            )
        return Redirect(f"{BASE}/{exam_id}?saved=1#settings", status_code=303)

    @post("/{exam_id:uuid}/items", status_code=303)
    async def change_items(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
    ) -> Redirect | Template:
        """One form for the item table: Add, Draw, Up, Down, Remove and Save points
        are its buttons (``action``), and every item's points travel with each."""
        form = await request.form()
        row = await lookups.get_owned_exam(db, exam_id, principal, for_update=True)
        exam = await views.exam_out(db, row)
        try:
            items = _current_items(exam, form)
            _apply_item_action(str(form.get("action") or "points"), items, form)
            await authoring.update_exam(db, row, ExamUpdate(items=items))
        except ApiError as error:
            if error.status_code not in (409, 422):
                raise
            await db.rollback()
            errors = field_errors(error)
            local = {k: v for k, v in errors.items() if not k.startswith("items")}
            return await _builder_page(
                request,
                db,
                principal,
                exam_id,
                _Builder(
                    items_errors=local,
                    items_problem=(form_problem(error) if local else _items_problem(error, exam)),
                ),
                status_code=error.status_code,
            )
        return Redirect(_builder_url(exam_id, "items"), status_code=303)

    @post("/{exam_id:uuid}/enrollments")
    async def enrol(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
    ) -> Template:
        """The roster from the text box or the uploaded file; the page shows its report."""
        form = await request.form()
        text = str(form.get("roster") or "")
        upload = form.get("roster_file")
        if isinstance(upload, UploadFile) and upload.filename:
            content = await upload.read()
            if len(content) > MAX_ROSTER_BYTES:
                return await _builder_page(
                    request,
                    db,
                    principal,
                    exam_id,
                    _Builder(roster_problem="The file is too large: send at most 2 MB."),
                    status_code=413,
                )
            try:
                text = content.decode("utf-8-sig")
            except UnicodeDecodeError:
                return await _builder_page(
                    request,
                    db,
                    principal,
                    exam_id,
                    _Builder(
                        roster_problem="The file is not text: save it as CSV (UTF-8) and try again."
                    ),
                    status_code=422,
                )
        exam = await lookups.get_owned_exam(db, exam_id, principal)
        try:
            if not text.strip():
                raise Unprocessable("the roster has no students in it", field="text")
            report = await roster.import_roster(db, exam, text, actor_id=principal.id)
        except Unprocessable as error:
            return await _builder_page(
                request,
                db,
                principal,
                exam_id,
                _Builder(roster_text=text, roster_problem=_sentence(error.message)),
                status_code=422,
            )
        return await _builder_page(
            request,
            db,
            principal,
            exam_id,
            _Builder(report=report, roster_text="\n".join(r.text for r in report.refused)),
        )

    @post("/{exam_id:uuid}/enrollments/remove", status_code=303)
    async def unenrol(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
    ) -> Redirect:
        form = await request.form()
        exam = await lookups.get_owned_exam(db, exam_id, principal)
        with suppress(NotFound):  # removed already (another tab): the list shows it gone
            await enrollments.remove_enrollment(db, exam, str(form.get("email") or ""))
        return Redirect(_builder_url(exam_id, "enrolled"), status_code=303)

    @post("/{exam_id:uuid}/publish", status_code=303)
    async def publish(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
    ) -> Redirect | Template:
        row = await lookups.get_owned_exam(db, exam_id, principal, for_update=True)
        try:
            await authoring.publish_exam(db, row)
        except ApiError as error:
            if error.status_code not in (409, 422):
                raise
            await db.rollback()
            row = await lookups.get_owned_exam(db, exam_id, principal)
            exam = await views.exam_out(db, row)
            return await _builder_page(
                request,
                db,
                principal,
                exam_id,
                _Builder(publish_problems=publish_sentences(exam, error)),
                status_code=error.status_code,
            )
        return Redirect(_builder_url(exam_id, "publish"), status_code=303)
