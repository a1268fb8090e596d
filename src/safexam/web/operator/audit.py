"""The audit page: an organization's trail of changes, for its admins."""

from __future__ import annotations

import json
from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from safexam.auth.guards import CurrentUser, admin_only
from safexam.core.deps import DB
from safexam.orgs.audit import organization_audit
from safexam.web.layout import page

__all__ = ["OperatorAuditController"]


class OperatorAuditController(Controller):
    path = "/audit"
    guards = [admin_only]
    include_in_schema = False

    @get("/")
    async def audit(
        self, request: Request[Any, Any, Any], db: DB, principal: CurrentUser
    ) -> Template:
        rows = await organization_audit(db, principal.organization_id)
        return page(
            request,
            "operator/audit.html",
            title="Audit trail",
            nav="audit",
            events=[
                {
                    "at": row.at,
                    "actor": row.actor or "The system",
                    "action": row.action,
                    "subject": row.exam_title or row.subject_email or row.subject_type,
                    "reason": row.reason or "",
                    "details": json.dumps(row.details, sort_keys=True) if row.details else "",
                }
                for row in rows
            ],
        )
