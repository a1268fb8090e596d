"""The organization page: its admins change the name, the email domains that place
Google sign-ins, the time zone, and the settings a new exam starts from.

The form builds the request of ``PATCH /api/v1/organization`` and calls the same
service (audited), so the page refuses what the API refuses, beside the field.
"""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.response import Redirect, Template

from safexam.auth.guards import CurrentUser, admin_only
from safexam.core.deps import DB
from safexam.core.errors import ApiError, Unprocessable
from safexam.orgs.settings import (
    OrganizationChangeIn,
    OrganizationOut,
    change_organization,
    organization_settings,
)
from safexam.web.educator.exams import RELEASE_POLICIES
from safexam.web.forms import convert_form, field_errors, form_problem
from safexam.web.layout import page

__all__ = ["OperatorOrganizationController"]

ORGANIZATION_PATH = "/operator/organization"

_WORDED = {
    "name": "Enter the organization's name.",
    "exam_defaults.release_policy": "Choose when students see their results from the list.",
}


@cache
def _time_zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def _values(org: OrganizationOut) -> dict[str, Any]:
    d = org.exam_defaults
    return {
        "name": org.name,
        "slug": org.slug,
        "allowed_domains": "\n".join(org.allowed_domains),
        "time_zone": org.time_zone,
        "duration_minutes": d.duration_minutes,
        "attempts_allowed": d.attempts_allowed,
        "shuffle_questions": d.shuffle_questions,
        "shuffle_choices": d.shuffle_choices,
        "release_policy": d.release_policy,
        "require_fullscreen": d.require_fullscreen,
    }


def _form_values(form: FormMultiDict, slug: str) -> dict[str, Any]:
    """What the admin typed, to show again beside its errors."""
    return {
        "name": form.get("name") or "",
        "slug": slug,
        "allowed_domains": form.get("allowed_domains") or "",
        "time_zone": form.get("time_zone") or "",
        "duration_minutes": form.get("duration_minutes") or "",
        "attempts_allowed": form.get("attempts_allowed") or "",
        "shuffle_questions": form.get("shuffle_questions") == "on",
        "shuffle_choices": form.get("shuffle_choices") == "on",
        "release_policy": form.get("release_policy") or "manual",
        "require_fullscreen": form.get("require_fullscreen") == "on",
    }


def _change_data(form: FormMultiDict) -> dict[str, Any]:
    """The form as the JSON request, or one 422 naming every number it cannot read."""
    problems: list[dict[str, str]] = []

    def text(name: str) -> str:
        return str(form.get(name) or "").strip()

    def whole(name: str, low: int, high: int, sentence: str) -> int | None:
        value = text(name)
        if value.isdigit() and low <= int(value) <= high:
            return int(value)
        problems.append({"field": name, "message": sentence})
        return None

    if not text("name"):
        problems.append({"field": "name", "message": _WORDED["name"]})
    defaults = {
        "duration_minutes": whole(
            "duration_minutes",
            1,
            60 * 24 * 14,
            "Enter the time allowed in whole minutes, from 1 to 20160 (14 days).",
        ),
        "attempts_allowed": whole(
            "attempts_allowed", 1, 100, "Enter the attempts allowed, from 1 to 100."
        ),
        "shuffle_questions": form.get("shuffle_questions") == "on",
        "shuffle_choices": form.get("shuffle_choices") == "on",
        "release_policy": text("release_policy") or "manual",
        "require_fullscreen": form.get("require_fullscreen") == "on",
    }
    if problems:
        raise Unprocessable(problems[0]["message"], details=problems)
    return {
        "name": text("name"),
        "allowed_domains": text("allowed_domains"),
        "time_zone": text("time_zone"),
        "exam_defaults": defaults,
    }


def _taken_domain(error: ApiError) -> str:
    details = error.details if isinstance(error.details, list) else []
    found = details[0].get("domain") if details and isinstance(details[0], dict) else None
    return str(found) if found else "A domain here"


def _worded(error: ApiError) -> dict[str, str]:
    """The API's errors as sentences beside the page's fields."""
    errors: dict[str, str] = {}
    for field, message in field_errors(error).items():
        field = field.removeprefix("exam_defaults.")
        if field == "allowed_domains" and error.code == "domain_taken":
            message = (
                f"{_taken_domain(error)} already belongs to another organization. Google sign-in "
                "places a new student by their email's domain, so each domain can belong "
                "to one organization only: remove it, or ask the deployment's operators."
            )
        elif field == "allowed_domains":
            message = (
                message.replace(
                    "is not an email domain", "is not an email domain, like college.edu"
                ).rstrip(".")
                + "."
            )
        elif field == "time_zone":
            message = "Choose a time zone from the list, like Europe/Paris."
        elif field == "release_policy":
            message = _WORDED["exam_defaults.release_policy"]
        elif not message.endswith("."):
            message += "."
        errors[field] = message
    return errors


class OperatorOrganizationController(Controller):
    path = "/organization"
    guards = [admin_only]
    include_in_schema = False

    def _page(
        self,
        request: Request[Any, Any, Any],
        values: dict[str, Any],
        *,
        notice: str | None = None,
        problem: str | None = None,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        return page(
            request,
            "operator/organization.html",
            title="Organization",
            nav="organization",
            values=values,
            time_zones=_time_zones(),
            release_policies=RELEASE_POLICIES,
            notice=notice,
            problem=problem,
            errors=errors or {},
            status_code=status_code,
        )

    @get("/")
    async def show(
        self, request: Request[Any, Any, Any], db: DB, principal: CurrentUser, done: str = ""
    ) -> Template:
        org = await organization_settings(db, principal.organization_id)
        return self._page(
            request,
            _values(org),
            notice="The settings were saved. New exams start from these defaults."
            if done == "saved"
            else None,
        )

    @post("/", status_code=303)
    async def save(
        self, request: Request[Any, Any, Any], db: DB, principal: CurrentUser
    ) -> Redirect | Template:
        form = await request.form()
        try:
            change = convert_form(_change_data(form), OrganizationChangeIn)
            await change_organization(db, principal.organization_id, principal.id, change)
        except ApiError as exc:
            await db.rollback()
            org = await organization_settings(db, principal.organization_id)
            errors = _worded(exc)
            return self._page(
                request,
                _form_values(form, org.slug),
                problem=form_problem(exc) if errors else exc.message.rstrip(".") + ".",
                errors=errors,
                status_code=exc.status_code,
            )
        return Redirect(ORGANIZATION_PATH + "?done=saved", status_code=303)
