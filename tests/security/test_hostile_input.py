"""Hostile input: each request is refused with a 4xx in the one error shape that names
the problem, and nothing is stored.

Oversized and chunked bodies, JSON nested past what the decoder follows,
bodies that are not UTF-8, integers beyond PostgreSQL's bigint, negative or
absurd limits, durations, points and dates, NUL characters (which PostgreSQL
cannot store), CRLF in values that could reach response headers, and path
parameters that are not ids.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from safexam.app import MAX_REQUEST_BODY_BYTES, create_app
from safexam.core.settings import Settings
from tests.factories import coding, exam, mcq
from tests.security.shape import error_shape_problem
from tests.security.world import World, now_iso

BIGGER_THAN_BIGINT = 2**63
HUGE = 10**30
# Tables a refused write must leave as they were (plus the saved answers' content).
TABLES = (
    "users",
    "questions",
    "exams",
    "exam_items",
    "enrollments",
    "exam_sessions",
    "responses",
    "activity_logs",
    "coding_submissions",
    "jobs",
)


# Row counts, plus digests of what a refused write could have overwritten in place.
DIGESTS = {
    "answers": "SELECT md5(coalesce(string_agg(answer::text, ',' ORDER BY id), '')) FROM responses",
    "exams": (
        "SELECT md5(coalesce(string_agg(title || opens_at::text || closes_at::text || "
        "attempts_allowed::text, ',' ORDER BY id), '')) FROM exams"
    ),
}


async def snapshot(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        counts = {
            t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in TABLES
        }
        for name, sql in DIGESTS.items():
            counts[f"{name} digest"] = (await conn.execute(text(sql))).scalar_one()
    return counts


def refusal_problem(response: httpx.Response, status: int, *words: str) -> str:
    """Empty when ``response`` is ``status`` in the error shape and its message or
    details name every one of ``words``; else what is wrong."""
    if response.status_code != status:
        return f"status {response.status_code}, expected {status}: {response.text[:300]}"
    problem = error_shape_problem(response)
    if problem:
        return problem
    said = json.dumps(response.json()["error"]).lower()
    missing = [w for w in words if w.lower() not in said]
    return f"error does not name {missing}: {said[:300]}" if missing else ""


async def expect_refused(
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    status: int,
    names: tuple[str, ...] = (),
    body: Any = None,
    raw: bytes | None = None,
) -> str:
    """Send one hostile request; returns what is wrong with the answer (empty if refused)."""
    before = await snapshot(engine)
    if raw is not None:
        kwargs: dict[str, Any] = {"content": raw, "headers": {"content-type": "application/json"}}
    elif body is not None:
        kwargs = {"json": body}
    else:
        kwargs = {}
    response = await client.request(method, url, **kwargs)
    problem = refusal_problem(response, status, *names)
    after = await snapshot(engine)
    if after != before:
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        problem = f"{problem} stored something: {changed}".strip()
    return f"{method} {url[:120]}: {problem}" if problem else ""


def failures(results: list[str]) -> str:
    return "\n".join(r for r in results if r)


# ----------------------------------------------------------------- oversized


async def test_oversized_bodies_are_413_and_nothing_is_stored(
    world: World, engine: AsyncEngine
) -> None:
    too_big = MAX_REQUEST_BODY_BYTES + 1
    padded = mcq(prompt="x" * too_big)
    results = [
        await expect_refused(
            engine,
            world.educator,
            "POST",
            "/api/v1/questions",
            raw=json.dumps(padded).encode(),
            status=413,
            names=("payload_too_large", str(MAX_REQUEST_BODY_BYTES)),
        ),
        await expect_refused(
            engine,
            world.student,
            "PUT",
            f"/api/v1/sessions/{world.ids['session_id']}/responses/{world.ids['question_id']}",
            raw=b'{"answer": {"choice": "' + b"b" * too_big + b'"}, "client_seq": 99}',
            status=413,
            names=("payload_too_large",),
        ),
    ]
    assert not failures(results), failures(results)


async def test_chunked_body_without_length_is_cut_off_at_the_limit(
    world: World, engine: AsyncEngine
) -> None:
    """No Content-Length to check up front: the limit applies while the body streams in."""
    chunk = b" " * (1024 * 1024)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(MAX_REQUEST_BODY_BYTES // len(chunk) + 2):
            yield chunk

    before = await snapshot(engine)
    response = await world.educator.post(
        "/api/v1/questions", content=body(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert not refusal_problem(response, 413, "payload_too_large"), response.text
    assert await snapshot(engine) == before


# ----------------------------------------------------------------- malformed


async def test_deeply_nested_json_is_400_not_a_crash(world: World, engine: AsyncEngine) -> None:
    events = f"/api/v1/sessions/{world.ids['session_id']}/events"
    results = []
    for depth in (2_000, 200_000):
        nested = "[" * depth + "]" * depth
        event = f'{{"kind": "focus_lost", "at": "{now_iso()}", "details": {{"a": {nested}}}}}'
        body = f'{{"events": [{event}]}}'
        results.append(
            await expect_refused(
                engine,
                world.student,
                "POST",
                events,
                raw=body.encode(),
                status=400,
                names=("malformed_json", "nested"),
            )
        )
        results.append(
            await expect_refused(
                engine,
                world.educator,
                "POST",
                "/api/v1/questions",
                raw=nested.encode(),
                status=400,
                names=("nested",),
            )
        )
    assert not failures(results), failures(results)


async def test_bodies_that_are_not_utf8_are_400(world: World, engine: AsyncEngine) -> None:
    events = f"/api/v1/sessions/{world.ids['session_id']}/events"
    autosave = f"/api/v1/sessions/{world.ids['session_id']}/responses/{world.ids['question_id']}"
    at = now_iso().encode()
    results = [
        # Invalid bytes inside a JSON string (the decoder does not check them itself).
        await expect_refused(
            engine,
            world.student,
            "POST",
            events,
            raw=b'{"events": [{"kind": "focus_lost", "at": "'
            + at
            + b'", "details": {"a": "\xff\xfe"}}]}',
            status=400,
            names=("malformed_json", "utf-8"),
        ),
        await expect_refused(
            engine,
            world.educator,
            "POST",
            "/api/v1/questions",
            raw=json.dumps(mcq()).encode().replace(b"2 + 2", b"2 \xc3\x28 2"),
            status=400,
            names=("utf-8",),
        ),
        # Outside strings, and a lone UTF-16 surrogate escape.
        await expect_refused(
            engine,
            world.student,
            "PUT",
            autosave,
            raw=b"\xff\xfe{}",
            status=400,
            names=("malformed_json",),
        ),
        await expect_refused(
            engine,
            world.student,
            "PUT",
            autosave,
            raw=b'{"answer": {"choice": "\\ud800"}, "client_seq": 50}',
            status=400,
            names=("malformed_json",),
        ),
    ]
    assert not failures(results), failures(results)


async def test_nul_characters_are_refused_naming_the_field(
    world: World, engine: AsyncEngine
) -> None:
    """PostgreSQL stores NUL in neither text nor jsonb: without the check these were 500s."""
    ids = world.ids
    events = f"/api/v1/sessions/{ids['session_id']}/events"

    def with_nul(payload: dict[str, Any], marker: str) -> bytes:
        return json.dumps(payload).replace(marker, "\\u0000").encode()

    cases: list[tuple[httpx.AsyncClient, str, str, bytes, str]] = [
        (
            world.educator,
            "POST",
            "/api/v1/questions",
            with_nul(mcq(prompt="2 + 2 NUL"), "NUL"),
            "prompt",
        ),
        (
            world.educator,
            "POST",
            "/api/v1/questions",
            with_nul(mcq(tags=["arithNUL"]), "NUL"),
            "tags[0]",
        ),
        (
            world.educator,
            "POST",
            "/api/v1/exams",
            with_nul(exam([], title="MidNUL"), "NUL"),
            "title",
        ),
        (
            world.student,
            "POST",
            events,
            with_nul(
                {"events": [{"kind": "copy", "at": now_iso(), "details": {"text": "aNUL"}}]}, "NUL"
            ),
            "events[0].details.text",
        ),
        (
            world.student,
            "POST",
            f"/api/v1/sessions/{ids['session_id']}/runs",
            with_nul(
                {
                    "question_id": ids["coding_question_id"],
                    "language": "python",
                    "source": "print(1)NUL",
                },
                "NUL",
            ),
            "source",
        ),
        (
            world.student,
            "POST",
            "/api/v1/auth/login",
            with_nul({"email": "aNUL@college.edu", "password": "x"}, "NUL"),
            "email",
        ),
    ]
    results = [
        await expect_refused(engine, client, method, url, raw=raw, status=422, names=("nul", field))
        for client, method, url, raw, field in cases
    ]
    # In the query string and in a path parameter too.
    results += [
        await expect_refused(
            engine,
            world.educator,
            "GET",
            "/api/v1/questions?q=ab%00c",
            status=422,
            names=("nul", "q"),
        ),
        await expect_refused(
            engine, world.educator, "GET", "/api/v1/exams?q=%00", status=422, names=("nul",)
        ),
        await expect_refused(
            engine,
            world.educator,
            "DELETE",
            f"/api/v1/exams/{ids['exam_id']}/enrollments/{world.emails['student']}%00",
            status=422,
            names=("nul", "path"),
        ),
    ]
    assert not failures(results), failures(results)


# ------------------------------------------------------------ numbers, dates


async def test_integers_beyond_bigint_never_reach_postgresql(
    world: World, engine: AsyncEngine
) -> None:
    ids = world.ids
    autosave = f"/api/v1/sessions/{ids['session_id']}/responses/{ids['question_id']}"
    cases: list[tuple[httpx.AsyncClient, str, str, Any, str]] = [
        (
            world.educator,
            "GET",
            f"/api/v1/sessions/{ids['session_id']}/activity?after_id={BIGGER_THAN_BIGINT}",
            None,
            "after_id",
        ),
        (world.educator, "GET", f"/api/v1/questions?limit={HUGE}", None, "limit"),
        (world.educator, "GET", f"/api/v1/exams?offset={HUGE}", None, "offset"),
        (world.educator, "POST", "/api/v1/questions", mcq(points=HUGE), "points"),
        (
            world.educator,
            "POST",
            "/api/v1/exams",
            exam([], duration_minutes=HUGE),
            "duration_minutes",
        ),
        (
            world.educator,
            "PATCH",
            f"/api/v1/exams/{ids['draft_exam_id']}",
            {"attempts_allowed": HUGE},
            "attempts_allowed",
        ),
        (
            world.educator,
            "PATCH",
            f"/api/v1/exams/{ids['draft_exam_id']}",
            {"items": [{"draw": {"tag": "arith", "count": HUGE}, "points": 1}]},
            "items[0].draw.count",
        ),
        (
            world.educator,
            "PUT",
            f"/api/v1/exams/{ids['exam_id']}/enrollments",
            {"students": [{"email": "x@college.edu", "extra_minutes": HUGE}]},
            "students[0].extra_minutes",
        ),
        (world.educator, "POST", "/api/v1/qie/jobs", {"topic": "cells", "count": HUGE}, "count"),
        (world.educator, "POST", "/api/v1/qie/jobs", {"topic": "cells", "seed": HUGE}, "seed"),
        (
            world.student,
            "PUT",
            autosave,
            {"answer": {"choice": "b"}, "client_seq": HUGE},
            "client_seq",
        ),
        (
            world.educator,
            "PUT",
            f"/api/v1/responses/{ids['response_id']}/override",
            {"score": HUGE},
            "score",
        ),
    ]
    results = [
        await expect_refused(engine, client, method, url, body=body, status=422, names=(field,))
        for client, method, url, body, field in cases
    ]
    assert not failures(results), failures(results)


async def test_negative_and_absurd_limits_durations_points_and_dates(
    world: World, engine: AsyncEngine
) -> None:
    ids = world.ids
    coding_question = coding()
    coding_question["body"]["tests"][0]["points"] = 1e300
    cases: list[tuple[httpx.AsyncClient, str, str, Any, str]] = [
        (world.educator, "GET", "/api/v1/questions?limit=0", None, "limit"),
        (world.educator, "GET", "/api/v1/questions?limit=-1", None, "limit"),
        (world.educator, "GET", "/api/v1/exams?offset=-5", None, "offset"),
        (
            world.educator,
            "GET",
            f"/api/v1/sessions/{ids['session_id']}/activity?after_id=-1",
            None,
            "after_id",
        ),
        (
            world.educator,
            "GET",
            f"/api/v1/sessions/{ids['session_id']}/activity?limit=0",
            None,
            "limit",
        ),
        (world.educator, "POST", "/api/v1/questions", mcq(points=-1), "points"),
        (world.educator, "POST", "/api/v1/questions", coding_question, "points"),
        (world.educator, "POST", "/api/v1/exams", exam([], duration_minutes=0), "duration_minutes"),
        (
            world.educator,
            "POST",
            "/api/v1/exams",
            exam([], duration_minutes=-30),
            "duration_minutes",
        ),
        (world.educator, "POST", "/api/v1/exams", exam([], attempts_allowed=0), "attempts_allowed"),
        # A window in year 1 or 9999 overflowed Python's datetime on the way to UTC (500).
        (
            world.educator,
            "POST",
            "/api/v1/exams",
            exam([], opens_at="0001-01-01T00:00:00+23:59", closes_at="2030-01-01T00:00:00Z"),
            "opens_at",
        ),
        (
            world.educator,
            "PATCH",
            f"/api/v1/exams/{ids['draft_exam_id']}",
            {"closes_at": "9999-12-31T23:59:59-23:59"},
            "closes_at",
        ),
        (
            world.educator,
            "POST",
            "/api/v1/exams",
            exam([], opens_at="2030-01-01T00:00:00Z", closes_at="2029-01-01T00:00:00Z"),
            "closes_at",
        ),
        (
            world.educator,
            "PUT",
            f"/api/v1/exams/{ids['exam_id']}/enrollments",
            {"students": [{"email": "x@college.edu", "extra_minutes": -10}]},
            "students[0].extra_minutes",
        ),
        (world.educator, "POST", "/api/v1/qie/jobs", {"topic": "cells", "count": 0}, "count"),
        (world.educator, "POST", "/api/v1/qie/jobs", {"topic": "cells", "count": -3}, "count"),
        (
            world.educator,
            "PUT",
            f"/api/v1/responses/{ids['response_id']}/override",
            {"score": -1},
            "score",
        ),
        (
            world.student,
            "POST",
            f"/api/v1/sessions/{ids['session_id']}/events",
            {"events": [{"kind": "focus_lost", "at": "0001-01-01T00:00:00+23:59"}]},
            "events[0]",
        ),
        (
            world.student,
            "POST",
            f"/api/v1/sessions/{ids['session_id']}/events",
            {"events": []},
            "events",
        ),
    ]
    results = [
        await expect_refused(engine, client, method, url, body=body, status=422, names=(field,))
        for client, method, url, body, field in cases
    ]
    assert not failures(results), failures(results)


# ------------------------------------------------------------ header injection


async def test_crlf_in_titles_never_reaches_the_csv_export_headers(world: World) -> None:
    """The export's file name is the exam id, whatever the title holds."""
    title = 'Final"\r\nSet-Cookie: stolen=1\r\nX-Evil: 1'
    response = await world.educator.patch(
        f"/api/v1/exams/{world.ids['exam_id']}", json={"title": title}
    )
    assert response.status_code == 200, response.text
    export = await world.educator.get(
        f"/api/v1/exams/{world.ids['exam_id']}/results", params={"format": "csv"}
    )
    assert export.status_code == 200, export.text
    assert export.headers["content-disposition"] == (
        f'attachment; filename="results-{world.ids["exam_id"]}.csv"'
    )
    assert "x-evil" not in export.headers
    assert all("stolen" not in value for value in export.headers.get_list("set-cookie"))
    # One charset, not "text/csv; charset=utf-8; charset=utf-8" as before.
    assert export.headers["content-type"] == "text/csv; charset=utf-8"


async def test_crlf_in_the_sign_in_landing_path_is_refused(settings: Settings) -> None:
    """``next`` ends up in a Location header after Google sign-in: control characters and
    other sites are refused before anything is stored or any issuer is contacted."""
    # An issuer nobody listens on: the check must come before any request to it.
    configured = msgspec.structs.replace(
        settings, oidc_client_id="client", oidc_issuer="http://127.0.0.1:9"
    )
    app = create_app(configured)
    async with AsyncTestClient(app, base_url="https://testserver.local") as client:
        for next_path in (
            "/exams\r\nSet-Cookie: stolen=1",
            "/exams\nLocation: https://evil.example",
            "//evil.example/",
            "https://evil.example/",
        ):
            response = await client.get("/api/v1/auth/oidc/login", params={"next": next_path})
            assert not refusal_problem(response, 422, "next"), (next_path, response.text)
            assert "location" not in response.headers
            assert "stolen" not in " ".join(response.headers.get_list("set-cookie"))


# ------------------------------------------------------------ path parameters


async def test_path_parameters_that_are_not_ids(world: World) -> None:
    ids = world.ids
    paths = [
        ("GET", "/api/v1/exams/not-a-uuid"),
        ("GET", "/api/v1/exams/123"),
        ("GET", "/api/v1/exams/" + "f" * 5000),
        ("GET", "/api/v1/exams/00000000-0000-0000-0000-00000000000g"),
        ("GET", "/api/v1/exams/..%2F..%2Fetc%2Fpasswd"),
        ("GET", "/api/v1/jobs/1"),
        ("GET", "/api/v1/sessions/%27%20OR%201=1--"),
        ("PATCH", "/api/v1/questions/-1"),
        ("DELETE", f"/api/v1/exams/{ids['exam_id']}/enrollments/" + "a" * 5000),
        ("DELETE", f"/api/v1/exams/{ids['exam_id']}/enrollments/%E2%80%A8"),
        ("PUT", f"/api/v1/sessions/{ids['session_id']}/responses/not-a-question"),
        ("GET", "/api/v1/submissions/" + ids["submission_id"][:-1]),
    ]
    wrong = []
    for method, path in paths:
        response = await world.educator.request(method, path)
        if not 400 <= response.status_code < 500 or error_shape_problem(response):
            wrong.append(f"{method} {path[:80]}: {response.status_code} {response.text[:200]}")
    # The same ids in upper case are the same objects.
    upper = await world.educator.get(f"/api/v1/exams/{ids['exam_id'].upper()}")
    assert upper.status_code == 200, upper.text
    assert not wrong, "\n".join(wrong)
