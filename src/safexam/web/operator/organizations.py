"""The organizations page: every tenant of the deployment, for its operators."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from safexam.auth.guards import operator_only
from safexam.core.deps import DB
from safexam.orgs.service import list_organizations
from safexam.web.layout import page

__all__ = ["OperatorOrganizationsController"]


class OperatorOrganizationsController(Controller):
    path = "/organizations"
    guards = [operator_only]

    @get("/")
    async def organizations(self, request: Request[Any, Any, Any], db: DB) -> Template:
        rows = await list_organizations(db)
        return page(
            request,
            "operator/organizations.html",
            nav="organizations",
            organizations=[
                {
                    "name": org.name,
                    "slug": org.slug,
                    "domains": ", ".join(org.allowed_domains) or "None",
                    "time_zone": org.time_zone,
                    "users": users,
                    "created_at": org.created_at,
                }
                for org, users in rows
            ],
        )
