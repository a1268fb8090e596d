"""Onboarding requests: the institutions that asked, through "Talk to us", to hear from us."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import QueryParameter
from litestar.response import Template

from safexam.auth.guards import operator_only
from safexam.core.deps import DB
from safexam.onboarding.service import list_onboarding_requests
from safexam.web.front.landing import SIZE_LABELS
from safexam.web.layout import done_reading, page

__all__ = ["OperatorOnboardingController"]

ONBOARDING_PATH = "/operator/onboarding"


class OperatorOnboardingController(Controller):
    """The deployment's operators only: institutions asking to join are no organization's."""

    path = "/onboarding"
    include_in_schema = False
    guards = [operator_only]

    @get("/")
    async def requests(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        page_index: Annotated[int, QueryParameter(name="page")] = 1,
    ) -> Template:
        """The requests, newest first, fifty to a page."""
        found = await list_onboarding_requests(db, page=max(1, min(page_index, 100_000)))
        await done_reading(db)
        pages = max(1, -(-found.total // found.per_page))
        return page(
            request,
            "operator/onboarding.html",
            title="Onboarding requests",
            nav="onboarding",
            requests=found.items,
            total=found.total,
            page_number=found.page,
            pages=pages,
            previous_url=f"{ONBOARDING_PATH}?page={found.page - 1}" if found.page > 1 else None,
            next_url=f"{ONBOARDING_PATH}?page={found.page + 1}" if found.page < pages else None,
            size_labels=SIZE_LABELS,
        )
