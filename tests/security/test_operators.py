"""The deployment's operator: the queues are theirs, no organization's exams or people are."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tests.helpers import signed_in


async def test_the_operator_runs_the_queues_and_sees_no_organization(
    make_client: Any, db: AsyncSession
) -> None:
    operator, _ = await signed_in(make_client, db, "operator")
    assert (await operator.get("/api/v1/ops/queues")).status_code == 200
    page = await operator.get("/operator/queues")
    assert page.status_code == 200 and "Queues" in page.text
    home = await operator.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/operator/queues"
    me = (await operator.get("/api/v1/auth/me")).json()
    assert me["role"] == "operator"
    for url in ("/api/v1/questions", "/api/v1/users", "/educator/exams", "/operator/users"):
        refused = await operator.get(url, follow_redirects=False)
        assert refused.status_code == 403, (url, refused.status_code)
    # Students' own list: an operator is enrolled in nothing.
    assert (await operator.get("/api/v1/exams")).json()["items"] == []


async def test_an_organizations_admin_is_refused_the_queues(
    make_client: Any, db: AsyncSession
) -> None:
    admin, _ = await signed_in(make_client, db, "admin")
    refused = await admin.get("/api/v1/ops/queues")
    assert refused.status_code == 403
    assert refused.json()["error"]["details"] == {"allowed_roles": ["operator"]}
    page = await admin.get("/operator/queues")
    assert page.status_code == 403 and "for the deployment" in page.text
    # Their organization's people are theirs.
    assert (await admin.get("/operator/users")).status_code == 200
