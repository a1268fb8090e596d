"""The question bank: the list with its filters, the create and edit forms of
every kind, the Markdown preview, the question as a student sees it, and the
banks an educator shares with their organization.

Every page calls the question service as ``/api/v1/questions`` does, with the
same ownership check (someone else's question is a 404). The forms are plain
forms: each kind's fields are one template, ``educator/questions/kind/<kind>.html``,
whose inputs are named by the body's own paths (``body.choices[0].text``), so
:func:`nested_form` rebuilds the body the API takes and an error the service
names lands beside the input of that name.
"""

from __future__ import annotations

import re
import string
import uuid
from collections.abc import Iterable
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template

from safexam.auth.guards import CurrentUser, Principal
from safexam.coding.trials import TrialCreate, get_trial, start_trial
from safexam.core.deps import DB
from safexam.core.errors import ApiError, Conflict, Unprocessable
from safexam.core.languages import LANGUAGE_NAMES
from safexam.exams import banks, question_views, questions_service
from safexam.exams.kinds import KINDS
from safexam.exams.models import Question, QuestionBank
from safexam.exams.schemas import BankCreate, BankUpdate, QuestionUpdate
from safexam.web.forms import convert_form, field_errors, form_problem
from safexam.web.layout import page
from safexam.web.markdown import render_markdown
from safexam.web.wording import LANGUAGE_LABELS

__all__ = ["KIND_LABELS", "QuestionBankController", "kind_template", "nested_form"]

BANK = "/educator/questions"
PAGE_SIZE = 20
# Blank rows offered under a list's filled ones; "Add a row" asks for one more.
SPARE_ROWS = 1
MAX_SPARE_ROWS = 20

KIND_LABELS: dict[str, str] = {
    "mcq_single": "Single choice",
    "mcq_multi": "Multiple choice",
    "numeric": "Number",
    "short_text": "Short answer",
    "coding": "Coding",
}
# As the student's coding workspace words them (js/coding.js).
VERDICTS = {
    "accepted": "Passed",
    "wrong_answer": "Failed: wrong answer",
    "compile_error": "Failed: did not compile",
    "runtime_error": "Failed: the program stopped with an error",
    "time_limit": "Failed: took too long",
    "memory_limit": "Failed: used too much memory",
    "output_limit": "Failed: printed too much",
    "internal_error": "Not judged: the judge failed",
}
STATUS_LABELS = {"draft": "Draft", "active": "Active", "archived": "Archived"}
SHARING_LABELS = {
    "private": "Private: only you",
    "org_read": "Shared with your organization (read-only)",
    "org_edit": "Shared with your organization (can edit)",
}
SOURCE_LABELS = {"manual": "Written here", "qie": "Generated"}

Filter = Annotated[str | None, QueryParameter(max_length=200)]


def kind_template(kind: str) -> str:
    """The template of a kind's own fields in the create and edit forms."""
    return f"educator/questions/kind/{kind}.html"


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " ").capitalize())


# ---------------------------------------------------------------- the form's fields

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d*\])*)")


def _set(target: dict[str, Any], path: str, value: Any) -> None:
    """Put ``value`` at ``path`` (``a.b[0].c``, ``a.list[]`` appends) inside ``target``."""
    node: Any = target
    parts = path.split(".")
    for depth, part in enumerate(parts):
        match = _PART.fullmatch(part)
        if match is None:
            return
        key, indexes = match.group(1), re.findall(r"\[(\d*)\]", match.group(2))
        last = depth == len(parts) - 1
        if not indexes:
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
            continue
        items = node.setdefault(key, [])
        if not isinstance(items, list):
            return
        index = indexes[0]
        if index == "":
            if last:
                items.append(value)
            return
        position = int(index)
        if position > 500:
            return
        while len(items) <= position:
            items.append({} if not last else "")
        if last:
            items[position] = value
        else:
            if not isinstance(items[position], dict):
                items[position] = {}
            node = items[position]


def _prune(value: Any) -> Any:
    """Blank text leaves the field out (its default applies); a row with nothing
    but its id is a spare row left empty, and goes."""
    if isinstance(value, dict):
        kept = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v != "" and v != {}}
    if isinstance(value, list):
        rows = [_prune(v) for v in value]
        return [r for r in rows if r != "" and not (isinstance(r, dict) and not set(r) - {"id"})]
    return value


def _listed(text: str) -> list[Any]:
    """``2, 3.5, red`` as ``[2, 3.5, "red"]``: numbers are numbers."""
    items: list[Any] = []
    for part in text.split(","):
        item = part.strip()
        if not item:
            continue
        try:
            number = float(item)
        except ValueError:
            items.append(item)
            continue
        items.append(int(number) if number.is_integer() and "." not in item else number)
    return items


def nested_form(items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The form's fields as the nested structure their names spell (see the module).

    A name ending in ``:list`` is a comma-separated list (``values:list``).
    """
    found: dict[str, Any] = {}
    for name, value in items:
        if name.startswith("_") or not isinstance(value, str):
            continue
        text = value.replace("\r\n", "\n")
        if name.endswith(":list"):
            if text.strip():
                _set(found, name.removesuffix(":list"), _listed(text))
            continue
        _set(found, name, text)
    return found


def choice_rows(body: dict[str, Any], spare: int) -> list[dict[str, Any]]:
    """The rows of a choices editor: each choice, then ``spare`` blank ones with free ids."""
    listed = body.get("choices")
    choices = [c for c in _prune(listed) if isinstance(c, dict)] if isinstance(listed, list) else []
    taken = {str(c.get("id")) for c in choices}
    answer = body.get("answer") or []
    rows = [
        {"id": str(c.get("id") or ""), "text": c.get("text", ""), "correct": c.get("id") in answer}
        for c in choices
    ]
    free = (letter for letter in string.ascii_lowercase if letter not in taken)
    for _ in range(spare):
        rows.append({"id": next(free, uuid.uuid4().hex[:6]), "text": "", "correct": False})
    return rows


def padded(items: Any, spare: int) -> list[Any]:
    """A list's filled rows and ``spare`` blank ones."""
    rows = _prune(items) if isinstance(items, list) else []
    return [*rows, *([None] * spare)]


def shown(value: Any) -> str:
    """A stored value as an input shows it: nothing for none, 2 rather than 2.0."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e15 else repr(value)
    return str(value)


class QuestionForm(msgspec.Struct, kw_only=True):
    """What the create and edit forms show: the values as sent, or as stored."""

    kind: str
    prompt: str = ""
    points: str = "1"
    tags: str = ""
    status: str = "draft"
    body: dict[str, Any] = {}


def _form_of(question: Question) -> QuestionForm:
    return QuestionForm(
        kind=question.kind,
        prompt=question.prompt,
        points=f"{question.points:g}",
        tags=", ".join(question.tags),
        status=question.status,
        body=dict(question.body),
    )


def _posted(kind: str, fields: dict[str, Any]) -> QuestionForm:
    def text(name: str, default: str = "") -> str:
        value = fields.get(name, default)
        return value if isinstance(value, str) else default

    body = fields.get("body")
    return QuestionForm(
        kind=kind,
        prompt=text("prompt"),
        points=text("points", "1"),
        tags=text("tags"),
        status=text("status", "draft"),
        body=body if isinstance(body, dict) else {},
    )


def _points(form: QuestionForm) -> float:
    try:
        value = float(form.points)
    except ValueError:
        raise Unprocessable("points: enter a number, such as 1 or 2.5", field="points") from None
    if not 0 <= value <= 10_000:
        raise Unprocessable("points: enter a number from 0 to 10000", field="points")
    return value


def _tags(form: QuestionForm) -> list[str]:
    tags = questions_service.normalize_tags(form.tags.split(","))
    if any(len(tag) > 64 for tag in tags):
        raise Unprocessable("tags: each tag is at most 64 characters", field="tags")
    return tags


def _body(form: QuestionForm) -> dict[str, Any]:
    return questions_service.normalized_body(form.kind, _prune(form.body), strict=False)


async def _fields(request: Request[Any, Any, Any]) -> tuple[dict[str, Any], str | None]:
    data = await request.form()
    action = data.get("_action")
    fields = nested_form(data.multi_items())
    # How many blank rows the page showed: the next page shows as many (one more on "Add").
    fields["_spare"] = data.get("_spare")
    return fields, action if isinstance(action, str) else None


# The question's own fields; every other field an error names is in its body.
_TOP_FIELDS = {"prompt", "points", "tags", "status", "kind"}
_RULE_PREFIX = re.compile(r"^[a-z_]+(?:\[\d+\])?: ")


# What the decoder says, as a person would say it beside the field.
_PLAIN: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^Object missing required field `answer`$"), "Mark the correct answer"),
    (re.compile(r"^Object missing required field `[^`]+`$"), "This is required"),
    (re.compile(r"^Expected `(?:float|int)`, got `str`$"), "Enter a number"),
    (re.compile(r"^Expected `(?:float|int)` >= (\S+)$"), "Enter a number of at least \\1"),
    (re.compile(r"^Expected `(?:float|int)` > (\S+)$"), "Enter a number above \\1"),
    (re.compile(r"^Expected `(?:float|int)` <= (\S+)$"), "Enter a number of at most \\1"),
    (re.compile(r"^Expected `array` of length >= (\d+)$"), "Give at least \\1"),
    (re.compile(r"^Expected `array` of length <= (\d+)$"), "Give at most \\1"),
    (re.compile(r"^Expected `str` of length >= 1$"), "This must not be empty"),
    (re.compile(r"^Expected `str` of length <= (\d+)$"), "Keep this to \\1 characters"),
)


def _plain(message: str) -> str:
    for pattern, words in _PLAIN:
        if pattern.match(message):
            return pattern.sub(words, message)
    return message


def _errors_by_input(error: ApiError) -> dict[str, str]:
    """The errors keyed by the inputs' names, each a sentence (the field is where it shows)."""
    found: dict[str, str] = {}
    for field, message in field_errors(error).items():
        name = field if field.split(".")[0].split("[")[0] in _TOP_FIELDS else f"body.{field}"
        text = _plain(_RULE_PREFIX.sub("", message).strip())
        text = text[:1].upper() + text[1:]
        found[name] = text if text.endswith(".") else text + "."
    return found


def _form_page(
    request: Request[Any, Any, Any],
    form: QuestionForm,
    *,
    question: Question | None = None,
    error: ApiError | None = None,
    spare: int = SPARE_ROWS,
    saved: bool = False,
    trial_error: str = "",
    trial_source: str = "",
    access: str = "owner",
    bank: QuestionBank | None = None,
    own_banks: list[QuestionBank] | None = None,
) -> Template:
    errors = _errors_by_input(error) if error else {}
    creating = question is None
    samples = [] if question is None else question_views.sample_variants(question)
    return page(
        request,
        "educator/questions/form.html",
        title=f"New {kind_label(form.kind).lower()} question" if creating else "Edit question",
        nav="questions",
        form=form,
        body=form.body,
        filled=_prune(form.body),
        question=question,
        action=f"{BANK}/new?kind={form.kind}" if question is None else f"{BANK}/{question.id}",
        kind_template=kind_template(form.kind),
        kind_label=kind_label(form.kind),
        errors=errors,
        problem=form_problem(error) if error else "",
        saved=saved,
        spare=spare,
        choice_rows=choice_rows,
        padded=padded,
        shown=shown,
        languages=LANGUAGE_NAMES,
        statuses=[(k, v) for k, v in STATUS_LABELS.items() if creating is False or k != "archived"],
        samples=samples,
        trial_error=trial_error,
        trial_languages=[
            (name, LANGUAGE_LABELS.get(name, name))
            for name in (question.body.get("languages") or [] if question else [])
        ],
        trial_source=trial_source,
        access=access,
        bank=bank,
        own_banks=own_banks or [],
        bank_options=[(str(b.id), b.name) for b in own_banks or []],
        sharing_labels=SHARING_LABELS,
        status_code=422 if error or trial_error else 200,
    )


async def _bank_of(db: DB, principal: Principal, question: Question) -> QuestionBank | None:
    if question.bank_id is None:
        return None
    found = await banks.list_banks(db, principal)
    return next((b for b, _ in found if b.id == question.bank_id), None)


async def _own_banks(db: DB, principal: Principal, question: Question) -> list[QuestionBank]:
    """The banks the question may go into: its owner's."""
    return [b for b, _ in await banks.list_banks(db, principal) if b.owner_id == question.owner_id]


def _uuid(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


async def _list_page(
    request: Request[Any, Any, Any],
    db: DB,
    principal: Principal,
    q: str | None = None,
    kind: str | None = None,
    tag: str | None = None,
    status: str | None = None,
    source: str | None = None,
    bank: str | None = None,
    page_number: int = 1,
    *,
    bank_error: ApiError | None = None,
    bank_name: str = "",
) -> Template:
    visible = await banks.list_banks(db, principal)
    by_id = {b.id: b for b, _ in visible}
    bank_id = _uuid(bank)
    chosen = {
        "q": (q or "").strip(),
        "kind": kind if kind in KINDS else "",
        "tag": (tag or "").strip(),
        "status": status if status in STATUS_LABELS else "",
        "source": source if source in SOURCE_LABELS else "",
        "bank": str(bank_id) if bank_id in by_id else "",
    }
    rows, total = await questions_service.list_questions(
        db,
        principal,
        q=chosen["q"] or None,
        kind=chosen["kind"] or None,
        tag=chosen["tag"] or None,
        status=chosen["status"] or None,  # type: ignore[arg-type]
        source=chosen["source"] or None,
        bank_id=bank_id if chosen["bank"] else None,
        limit=PAGE_SIZE,
        offset=(page_number - 1) * PAGE_SIZE,
    )
    pages = max(1, -(-total // PAGE_SIZE))
    query = "&".join(f"{k}={v}" for k, v in chosen.items() if v)

    def access(question: Question) -> str:
        if principal.is_admin or question.owner_id == principal.id:
            return "owner"
        shared = by_id.get(question.bank_id) if question.bank_id else None
        return "edit" if shared is not None and shared.sharing == "org_edit" else "read"

    return page(
        request,
        "educator/questions/list.html",
        title="Question bank",
        nav="questions",
        questions=rows,
        total=total,
        page_number=page_number,
        pages=pages,
        query=query,
        chosen=chosen,
        kinds=[(name, kind_label(name)) for name in KINDS],
        kind_labels={name: kind_label(name) for name in KINDS},
        statuses=list(STATUS_LABELS.items()),
        sources=list(SOURCE_LABELS.items()),
        filtered=any(chosen.values()),
        banks=visible,
        banks_by_id=by_id,
        bank_options=[(str(b.id), b.name) for b, _ in visible],
        # The banks whose sharing the principal sets: their own (an admin's, all).
        own_banks=[(b, n) for b, n in visible if principal.is_admin or b.owner_id == principal.id],
        access=access,
        sharing_labels=SHARING_LABELS,
        bank_errors={
            name: text[:1].upper() + text[1:].rstrip(".") + "."
            for name, text in (field_errors(bank_error) if bank_error else {}).items()
        },
        bank_problem=form_problem(bank_error) if bank_error else "",
        bank_name=bank_name,
        status_code=bank_error.status_code if bank_error else 200,
    )


_ROW = re.compile(r"^remove:body\.([a-z_]+)\[(\d+)\]$")


def _remove_row(form: QuestionForm, action: str) -> bool:
    """Take out the row ``action`` names (``remove:body.tests[2]``); False if none."""
    match = _ROW.match(action)
    if match is None:
        return False
    key, index = match.group(1), int(match.group(2))
    listed = form.body.get(key)
    if not isinstance(listed, list):
        return True
    # The rows as shown: the filled ones (blank ones are shown as spares after them).
    items = _prune(listed)
    form.body[key] = items
    if index >= len(items):
        return True
    removed = items.pop(index)
    # A choice that goes takes its mark as the answer with it.
    answer = form.body.get("answer")
    if key == "choices" and isinstance(removed, dict) and isinstance(answer, list):
        form.body["answer"] = [a for a in answer if a != removed.get("id")]
    return True


def _spare(fields: dict[str, Any], action: str | None) -> int:
    current = fields.get("_spare")
    base = SPARE_ROWS
    if isinstance(current, str) and current.isdigit():
        base = min(int(current), MAX_SPARE_ROWS)
    return min(base + 1, MAX_SPARE_ROWS) if action == "add-row" else base


class QuestionBankController(Controller):
    path = "/questions"  # under the /educator router
    include_in_schema = False

    @get("/")
    async def bank(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        q: Filter = None,
        kind: Filter = None,
        tag: Filter = None,
        status: Filter = None,
        source: Filter = None,
        bank: Filter = None,
        page_number: Annotated[int, QueryParameter(name="page", ge=1, le=10_000)] = 1,
    ) -> Template:
        """My questions and those shared with me, newest first, with the filters of
        ``GET /api/v1/questions``, and my banks."""
        return await _list_page(
            request, db, principal, q, kind, tag, status, source, bank, page_number
        )

    @post("/banks", status_code=303)
    async def create_bank(
        self, request: Request[Any, Any, Any], db: DB, principal: CurrentUser
    ) -> Template | Redirect:
        """A new bank of mine, from the list page's form."""
        data = await request.form()
        name = data.get("bank_name")
        try:
            form = convert_form(
                {"name": name or "", "sharing": data.get("bank_sharing") or "private"},
                BankCreate,
            )
            made = await banks.create_bank(db, principal, form)
        except ApiError as exc:
            await db.rollback()
            return await _list_page(
                request,
                db,
                principal,
                bank_error=exc,
                bank_name=name if isinstance(name, str) else "",
            )
        return Redirect(f"{BANK}?bank={made.id}", status_code=303)

    @post("/banks/{bank_id:uuid}", status_code=303)
    async def update_bank(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        bank_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        """Change my bank's sharing."""
        found = await banks.get_bank_for_owner(db, bank_id, principal, for_update=True)
        data = await request.form()
        try:
            change = convert_form({"sharing": data.get("sharing") or ""}, BankUpdate)
            await banks.update_bank(db, found, change, principal)
        except ApiError as exc:
            await db.rollback()
            return await _list_page(request, db, principal, bank_error=exc)
        return Redirect(f"{BANK}?bank={bank_id}", status_code=303)

    @post("/{question_id:uuid}/bank", status_code=303)
    async def move(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        question_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        """Put my question into one of my banks, or take it out."""
        data = await request.form()
        chosen = data.get("bank_id")
        target = _uuid(chosen if isinstance(chosen, str) else None)
        try:
            await banks.move_question(db, question_id, target, principal)
        except (Unprocessable, Conflict) as exc:
            await db.rollback()
            question = await questions_service.get_owned_question(db, question_id, principal)
            return _form_page(
                request,
                _form_of(question),
                question=question,
                error=exc,
                bank=await _bank_of(db, principal, question),
                own_banks=await _own_banks(db, principal, question),
            )
        return Redirect(f"{BANK}/{question_id}?saved=1", status_code=303)

    @get("/new")
    async def new(
        self, request: Request[Any, Any, Any], kind: FromQuery[str | None] = None
    ) -> Template:
        """Choose a kind, then its form."""
        if kind in KINDS:
            return _form_page(request, QuestionForm(kind=kind, body={}), spare=2)
        return page(
            request,
            "educator/questions/new.html",
            title="New question",
            nav="questions",
            kinds=[(name, kind_label(name)) for name in KINDS],
        )

    @post("/new", status_code=303)
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        kind: FromQuery[str | None] = None,
    ) -> Template | Redirect:
        if kind not in KINDS:
            return Redirect(f"{BANK}/new", status_code=303)
        fields, action = await _fields(request)
        form = _posted(kind, fields)
        if action == "add-row" or (action and _remove_row(form, action)):
            return _form_page(request, form, spare=_spare(fields, action))
        try:
            question = await questions_service.create_question(
                db,
                owner_id=principal.id,
                kind=kind,
                prompt=form.prompt,
                body=_body(form),
                points=_points(form),
                tags=_tags(form),
                status="active" if form.status == "active" else "draft",
            )
        except Unprocessable as exc:
            return _form_page(request, form, error=exc, spare=_spare(fields, action))
        return Redirect(f"{BANK}/{question.id}?saved=1", status_code=303)

    @post("/markdown", media_type=MediaType.HTML, status_code=200)
    async def markdown_preview(self, request: Request[Any, Any, Any]) -> Response[str]:
        """The prompt as the exam page renders it (the form's live preview asks here)."""
        data = await request.form()
        text = data.get("prompt")
        prompt = text[:20_000] if isinstance(text, str) else ""
        rendered = render_markdown(prompt) if prompt.strip() else ""
        return Response(
            str(rendered) or '<p class="fine">The preview appears here as you type.</p>',
            media_type=MediaType.HTML,
            headers={"Cache-Control": "no-store"},
        )

    @get("/{question_id:uuid}")
    async def edit(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        question_id: FromPath[uuid.UUID],
        saved: FromQuery[str | None] = None,
    ) -> Template | Redirect:
        question, access = await questions_service.get_shared_question(db, question_id, principal)
        if access == "read":
            # A read-only shared question has no form: the student's view shows it.
            return Redirect(f"{BANK}/{question.id}/preview", status_code=303)
        return _form_page(
            request,
            _form_of(question),
            question=question,
            saved=bool(saved),
            access=access,
            bank=await _bank_of(db, principal, question),
            own_banks=await _own_banks(db, principal, question) if access == "owner" else [],
        )

    @post("/{question_id:uuid}", status_code=303)
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        question_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        question, access = await questions_service.get_shared_question(
            db, question_id, principal, edit=True, for_update=True
        )
        fields, action = await _fields(request)
        form = _posted(question.kind, fields)
        if action == "add-row" or (action and _remove_row(form, action)):
            return _form_page(
                request, form, question=question, spare=_spare(fields, action), access=access
            )
        try:
            status = form.status if form.status in STATUS_LABELS else question.status
            change = QuestionUpdate(
                prompt=form.prompt,
                body=_body(form),
                points=_points(form),
                tags=_tags(form),
                status=status,  # type: ignore[arg-type]
            )
            question = await questions_service.update_question(db, question, change, principal)
        except ApiError as exc:
            await db.rollback()
            question, access = await questions_service.get_shared_question(
                db, question_id, principal
            )
            return _form_page(
                request,
                form,
                question=question,
                error=exc,
                spare=_spare(fields, action),
                access=access,
            )
        return Redirect(f"{BANK}/{question.id}?saved=1", status_code=303)

    @post("/{question_id:uuid}/try", status_code=303)
    async def try_it(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        question_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        """Run a reference solution against every test, through the judge's workers."""
        question = await questions_service.get_owned_question(db, question_id, principal)
        data = await request.form()
        language, source = data.get("language"), data.get("source")
        try:
            trial = await start_trial(
                db,
                question,
                principal,
                convert_form(
                    {"language": language or "", "source": (source or "").replace("\r\n", "\n")},
                    TrialCreate,
                ),
            )
        except ApiError as exc:
            message = exc.message.rstrip(".") + "."
            if isinstance(exc, Unprocessable) and "source" in field_errors(exc):
                message = "Write the reference solution first: it is run against every test."
            return _form_page(
                request,
                _form_of(question),
                question=question,
                trial_error=message[:1].upper() + message[1:],
                trial_source=source if isinstance(source, str) else "",
            )
        return Redirect(f"{BANK}/{question.id}/try/{trial.id}", status_code=303)

    @get("/{question_id:uuid}/try/{trial_id:uuid}")
    async def trial(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        question_id: FromPath[uuid.UUID],
        trial_id: FromPath[uuid.UUID],
    ) -> Template:
        """The trial's verdicts; while it runs, js/bank.js reloads its part of the page."""
        question = await questions_service.get_owned_question(db, question_id, principal)
        trial = await get_trial(db, question, trial_id, principal)
        return page(
            request,
            "educator/questions/trial.html",
            title="Try it: the reference solution",
            nav="questions",
            question=question,
            trial=trial,
            running=trial.status in ("queued", "running"),
            verdicts=VERDICTS,
        )

    @get("/{question_id:uuid}/preview")
    async def preview(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        question_id: FromPath[uuid.UUID],
    ) -> Template:
        """The question through the student's own answer template, every control disabled."""
        question, access = await questions_service.get_shared_question(db, question_id, principal)
        return page(
            request,
            "educator/questions/preview.html",
            title="Preview as a student sees it",
            nav="questions",
            question=question_views.student_view(question),
            source=question,
            kind_label=kind_label(question.kind),
            parametric=question_views.is_parametric(question),
            access=access,
            bank=await _bank_of(db, principal, question),
            sharing_labels=SHARING_LABELS,
        )
