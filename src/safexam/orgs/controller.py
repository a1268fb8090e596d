"""``/organization``: the acting admin's own organization's settings (no id, so no
other organization can be named)."""

from __future__ import annotations

from litestar import Controller, get, patch
from litestar.params import JSONBody

from safexam.auth.guards import CurrentUser, admin_only
from safexam.core.deps import DB
from safexam.core.openapi import error_responses
from safexam.orgs.settings import (
    OrganizationChangeIn,
    OrganizationOut,
    change_organization,
    organization_settings,
)

__all__ = ["OrganizationController"]


class OrganizationController(Controller):
    path = "/organization"
    tags = ["organization"]
    guards = [admin_only]

    @get("/")
    async def show(self, db: DB, principal: CurrentUser) -> OrganizationOut:
        """The name, sign-in domains, time zone and default exam settings."""
        return await organization_settings(db, principal.organization_id)

    @patch("/", responses=error_responses(409, 422))
    async def change(
        self, data: JSONBody[OrganizationChangeIn], db: DB, principal: CurrentUser
    ) -> OrganizationOut:
        """Change the fields present (audited); a domain of another organization is 409."""
        return await change_organization(db, principal.organization_id, principal.id, data)
