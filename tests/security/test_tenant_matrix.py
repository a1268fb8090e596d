"""Nothing crosses organizations: every route, as every role of one organization, on another's.

Two organizations share one deployment, each with the role matrix's whole
exam world (students, educators, an admin; questions, exams, sessions,
answers, a graded result, jobs). The routes come from the app's route table
and the requests from the role matrix's rules, with every path parameter (and
every id a body names) taken from organization B, and every caller a member of
organization A, plus the deployment's operator. The proof is threefold:

- a route aimed at one of B's objects answers 403 or 404 (never 2xx, 3xx or
  a 409 that would tell the object exists);
- no response, on any route, holds an id or an address of B's that the caller
  did not send itself (lists, pages, exports, streams);
- B's rows, read straight from the database, are the same after the run as
  before it (no write landed, no row was added under B's exams).

A route added later is covered without an edit here: it needs a rule in the
role matrix, which this test reuses.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.core.settings import Settings
from tests.factories import make_organization, make_user
from tests.live import live_server
from tests.security.test_role_matrix import RULES, Rule, _resolve, app_routes
from tests.security.world import World, build_world, sign_in

# The callers: organization A's members, and the operator above every organization.
ATTACKERS = ("student", "educator", "admin", "operator")
# Path parameters that are not objects of an organization.
_PARAM = re.compile(r"\{(\w+):\w+\}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The deployment's queues are the operator's to see and run again whole (depths,
# workers, failed jobs of every organization): the one power above
# organizations, tested in test_operators.
OPERATOR_ROUTES = ("/api/v1/ops/", "/operator/queues", "/api/v1/jobs/{job_id:uuid}/retry")
# How long a response may take: a stream that opens (it never ends) is a leak.
CALL_TIMEOUT = 10.0

# Every row of an organization, by table: what it owns directly and what hangs from its exams.
SNAPSHOT_SQL = {
    "users": "SELECT to_jsonb(t) FROM users t WHERE organization_id = :o",
    "questions": "SELECT to_jsonb(t) FROM questions t WHERE organization_id = :o",
    "question_banks": "SELECT to_jsonb(t) FROM question_banks t WHERE organization_id = :o",
    "exams": "SELECT to_jsonb(t) FROM exams t WHERE organization_id = :o",
    "exam_items": "SELECT to_jsonb(t) FROM exam_items t JOIN exams e ON e.id = t.exam_id"
    " WHERE e.organization_id = :o",
    "enrollments": "SELECT to_jsonb(t) FROM enrollments t JOIN exams e ON e.id = t.exam_id"
    " WHERE e.organization_id = :o",
    "exam_sessions": "SELECT to_jsonb(t) FROM exam_sessions t JOIN exams e ON e.id = t.exam_id"
    " WHERE e.organization_id = :o",
    "responses": "SELECT to_jsonb(t) FROM responses t JOIN exam_sessions s ON s.id = t.session_id"
    " JOIN exams e ON e.id = s.exam_id WHERE e.organization_id = :o",
    "results": "SELECT to_jsonb(t) FROM results t JOIN exam_sessions s ON s.id = t.session_id"
    " JOIN exams e ON e.id = s.exam_id WHERE e.organization_id = :o",
    "coding_submissions": "SELECT to_jsonb(t) FROM coding_submissions t"
    " JOIN exam_sessions s ON s.id = t.session_id JOIN exams e ON e.id = s.exam_id"
    " WHERE e.organization_id = :o",
    "activity_logs": "SELECT to_jsonb(t) FROM activity_logs t"
    " JOIN exam_sessions s ON s.id = t.session_id JOIN exams e ON e.id = s.exam_id"
    " WHERE e.organization_id = :o",
    "announcements": "SELECT to_jsonb(t) FROM announcements t JOIN exams e ON e.id = t.exam_id"
    " WHERE e.organization_id = :o",
    "audit_events": "SELECT to_jsonb(t) FROM audit_events t WHERE t.exam_id IN"
    " (SELECT id FROM exams WHERE organization_id = :o) OR t.subject_id IN"
    " (SELECT id FROM users WHERE organization_id = :o)",
    "jobs": "SELECT to_jsonb(t) FROM jobs t WHERE t.exam_id IN"
    " (SELECT id FROM exams WHERE organization_id = :o) OR t.requested_by IN"
    " (SELECT id FROM users WHERE organization_id = :o) OR t.session_id IN"
    " (SELECT s.id FROM exam_sessions s JOIN exams e ON e.id = s.exam_id"
    " WHERE e.organization_id = :o)",
}


async def snapshot(db: AsyncSession, organization_id: uuid.UUID) -> dict[str, list[str]]:
    """Every row of the organization as canonical JSON, sorted, per table."""
    taken: dict[str, list[str]] = {}
    for table, sql in SNAPSHOT_SQL.items():
        rows = (await db.execute(text(sql), {"o": organization_id})).scalars().all()
        taken[table] = sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)
    await db.rollback()
    return taken


def markers_of(taken: dict[str, list[str]]) -> set[str]:
    """What would give one of the organization's rows away: its ids and addresses."""
    found: set[str] = set()
    for table in (
        "users",
        "questions",
        "question_banks",
        "exams",
        "exam_sessions",
        "responses",
        "jobs",
    ):
        for row in taken[table]:
            value = json.loads(row)
            found.add(str(value["id"]))
            if table == "users":
                found.add(value["email"])
    return found


@dataclass
class Attempt:
    role: str
    method: str
    path: str
    url: str
    body: Any
    rule: Rule
    aimed: bool  # whether the URL names one of B's objects


@pytest.fixture
async def worlds(
    settings: Settings, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[tuple[World, World, httpx.AsyncClient]]:
    """Organization A's world (the callers), B's (the targets), and an operator's browser.

    On a real uvicorn, as the role matrix: a stream that wrongly opens must
    answer with its headers and first event, which only a real server sends
    before the stream ends.
    """
    clients: list[httpx.AsyncClient] = []
    async with live_server(settings) as base:

        async def new_client() -> httpx.AsyncClient:
            client = httpx.AsyncClient(base_url=base, timeout=30)
            clients.append(client)
            return client

        try:
            org_a = await make_organization(db, "org-a")
            org_b = await make_organization(db, "org-b")
            a = await build_world(new_client, db, sessionmaker, org_a.id)
            b = await build_world(new_client, db, sessionmaker, org_b.id)
            operator = await make_user(db, "operator")
            operator_client = await new_client()
            await sign_in(operator_client, operator.email)
            yield a, b, operator_client
        finally:
            for client in clients:
                await client.aclose()


async def _send(client: httpx.AsyncClient, attempt: Attempt) -> tuple[int, str]:
    """The status and the body (of a stream, its first event: what it opens with)."""
    kwargs: dict[str, Any] = {}
    if attempt.body is not None:
        kwargs["data" if attempt.rule.page else "json"] = attempt.body
    async with asyncio.timeout(CALL_TIMEOUT):
        async with client.stream(
            attempt.method, attempt.url, follow_redirects=not attempt.rule.page, **kwargs
        ) as response:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                return response.status_code, (await response.aread()).decode(errors="replace")
            first = b""
            async for chunk in response.aiter_bytes():
                first += chunk
                if b"\n\n" in first and b"data:" in first:
                    break
            return response.status_code, first.decode(errors="replace")


async def _plan(app: Litestar, a: World, b: World) -> list[Attempt]:
    """Every request of the run, its fresh objects of B's made now (before the first snapshot)."""
    plan: list[Attempt] = []
    for method, path in sorted(app_routes(app)):
        rule = RULES[(method, path)]
        names = _PARAM.findall(path)
        aimed = any(not rule.params.get(name, "").startswith("literal:") for name in names)
        for role in ATTACKERS:
            if role == "operator" and path.startswith(OPERATOR_ROUTES):
                continue
            url = await _resolve(b, rule, path)
            body = rule.form(b) if rule.form else rule.body(b) if rule.body else None
            plan.append(Attempt(role, method, path, url, body, rule, aimed))
    return plan


async def _client_for(attempt: Attempt, a: World, operator: httpx.AsyncClient) -> httpx.AsyncClient:
    if attempt.role == "operator":
        if attempt.rule.own_browser or attempt.rule.own_account:
            client: httpx.AsyncClient = await a.new_client()
            account = await _new_operator(a)
            await sign_in(client, account)
            return client
        return operator
    if attempt.rule.own_account:
        return await a.browser_of_new_account(attempt.role)
    if attempt.rule.own_browser:
        return await a.browser(attempt.role)
    return a.clients[attempt.role]


async def _new_operator(world: World) -> str:
    async with world.sessionmaker() as db:
        return (await make_user(db, "operator")).email


async def test_nothing_crosses_organizations(
    worlds: tuple[World, World, httpx.AsyncClient],
    app: Litestar,
    db: AsyncSession,
) -> None:
    a, b, operator = worlds
    assert a.organization_id is not None and b.organization_id is not None
    plan = await _plan(app, a, b)
    before = await snapshot(db, b.organization_id)
    markers = markers_of(before)
    assert len(markers) > 20, markers  # B's world is really there
    wrong: list[str] = []
    for attempt in plan:
        client = await _client_for(attempt, a, operator)
        where = f"{attempt.method} {attempt.path} as {attempt.role} of A"
        try:
            status, body = await _send(client, attempt)
        except TimeoutError:
            wrong.append(f"{where}: no answer in {CALL_TIMEOUT}s (a stream of B's opened?)")
            continue
        if attempt.aimed and status not in (403, 404):
            wrong.append(f"{where} on B's object: {status} {body[:160]!r}")
        sent = attempt.url + json.dumps(attempt.body, default=str)
        leaked = sorted(m for m in markers if m in body and m not in sent)
        if leaked:
            wrong.append(f"{where}: the response names B's {leaked[:3]}")
    after = await snapshot(db, b.organization_id)
    for table in SNAPSHOT_SQL:
        if before[table] != after[table]:
            gone = set(before[table]) - set(after[table])
            new = set(after[table]) - set(before[table])
            wrong.append(f"B's {table} changed: {len(gone)} rows gone or altered, {len(new)} new")
    assert len(plan) > 400, len(plan)
    assert not wrong, "\n".join(wrong)


async def test_a_student_of_another_organization_cannot_be_enrolled(
    worlds: tuple[World, World, httpx.AsyncClient], db: AsyncSession
) -> None:
    """Refused in words, by the JSON API and by the roster import, and nothing is written."""
    a, b, _ = worlds
    assert b.organization_id is not None
    before = await snapshot(db, b.organization_id)
    exam_id = a.ids["exam_id"]
    body = {"students": [{"email": b.emails["student"], "extra_minutes": 0}]}
    refused = await a.educator.put(f"/api/v1/exams/{exam_id}/enrollments", json=body)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "other_organization"
    assert "another organization" in error["message"]
    assert error["details"][0]["field"] == "students[0].email"
    roster = f"{b.emails['student']},5\n{a.emails['other_student']}\n"
    report = await a.educator.post(
        f"/api/v1/exams/{exam_id}/enrollments/import", json={"text": roster}
    )
    assert report.status_code == 200, report.text
    out = report.json()
    assert [r["code"] for r in out["refused"]] == ["other_organization"]
    assert [e["email"] for e in out["enrolled"]] == [a.emails["other_student"]]
    enrolled = await a.educator.get(f"/api/v1/exams/{exam_id}/enrollments")
    assert b.emails["student"] not in enrolled.text
    # B's student sees no exam of A's.
    mine = await b.student.get("/api/v1/exams")
    assert exam_id not in mine.text
    assert await snapshot(db, b.organization_id) == before


async def test_an_exam_cannot_be_built_from_another_organizations_questions(
    worlds: tuple[World, World, httpx.AsyncClient], db: AsyncSession
) -> None:
    a, b, _ = worlds
    for client in (a.educator, a.clients["admin"]):
        made = await client.post(
            "/api/v1/exams",
            json={
                "title": "Borrowed",
                "opens_at": "2026-01-01T09:00:00Z",
                "closes_at": "2199-01-01T09:00:00Z",
                "duration_minutes": 30,
                "items": [{"question_id": b.ids["question_id"], "points": 1}],
            },
        )
        assert made.status_code in (404, 422), made.text
        assert b.ids["question_id"] not in made.text or made.status_code == 422
    # And A's admin's own lists hold nothing of B's.
    for url in ("/api/v1/exams", "/api/v1/questions", "/api/v1/users"):
        listed = await a.clients["admin"].get(url)
        assert listed.status_code == 200, listed.text
        ids = set(_UUID.findall(listed.text))
        assert ids, url
        assert not ids & {b.ids["exam_id"], b.ids["question_id"]}, url
        assert b.emails["educator"] not in listed.text
