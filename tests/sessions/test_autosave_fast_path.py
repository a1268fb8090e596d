"""The autosave fast path answers every request exactly as the full Litestar stack does.

Each case goes once through the full stack alone (the fast path unhooked)
and once through the app as it runs, and the two answers must match in
status, headers (but the request id) and body. The fast path must also
have answered the cases it is meant to (accepted saves and the save's own
404, 409 and 422) and left every other to the full stack.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.signins import SIGNIN_COOKIE
from safexam.core.logging import RequestContextMiddleware
from safexam.core.metrics import HTTP_REQUESTS
from safexam.core.settings import Settings
from safexam.sessions.fast_path import MAX_FAST_BODY, ROUTE, AutosaveFastPath
from tests.factories import move_deadline
from tests.helpers import one, rows, signed_in
from tests.sessions.test_autosave import _started, qid


def _fast_path(app: Litestar) -> AutosaveFastPath:
    outer = app.asgi_handler
    assert isinstance(outer, RequestContextMiddleware)
    assert isinstance(outer.app, AutosaveFastPath)
    return outer.app


@contextmanager
def _full_stack_only(app: Litestar) -> Iterator[None]:
    outer = app.asgi_handler
    assert isinstance(outer, RequestContextMiddleware)
    fast = _fast_path(app)
    outer.app = fast.inner
    try:
        yield
    finally:
        outer.app = fast


def _shape(response: httpx.Response) -> tuple[int, list[tuple[str, str]], Any]:
    headers = sorted((k, v) for k, v in response.headers.multi_items() if k != "x-request-id")
    return response.status_code, headers, response.json() if response.content else None


async def _same_answer(
    app: Litestar, client: Any, url: str, *, served: bool, **request: Any
) -> httpx.Response:
    """PUT ``url`` through the full stack, then through the app; the answers must match."""
    fast = _fast_path(app)
    with _full_stack_only(app):
        full = await client.put(url, **request)
    before = fast.served
    answer: httpx.Response = await client.put(url, **request)
    assert fast.served - before == (1 if served else 0), (answer.status_code, answer.text)
    assert _shape(answer) == _shape(full)
    return answer


async def test_accepted_saves_are_answered_by_the_fast_path_as_by_the_full_stack(
    app: Litestar, make_client: Any, db: AsyncSession
) -> None:
    client, _, session = await _started(make_client, db)
    fast = _fast_path(app)
    url = f"/api/v1/sessions/{session['id']}/responses/{qid(session, 'mcq_single')}"
    before = fast.served
    first = await client.put(url, json={"answer": {"choice": "b"}, "client_seq": 1})
    assert first.status_code == 200 and first.json()["applied"] is True
    assert fast.served == before + 1
    stored = await one(db, "SELECT answer, client_seq FROM responses")
    assert stored.answer == {"choice": "b"} and stored.client_seq == 1

    # The same save again (a retry), a stale one, a newer one and a code draft.
    text_url = f"/api/v1/sessions/{session['id']}/responses/{qid(session, 'short_text')}"
    code_url = f"/api/v1/sessions/{session['id']}/responses/{qid(session, 'coding')}"
    retry = await _same_answer(
        app, client, url, served=True, json={"answer": {"choice": "b"}, "client_seq": 1}
    )
    assert retry.json()["applied"] is True
    stale = await _same_answer(
        app, client, url, served=True, json={"answer": {"choice": "a"}, "client_seq": 0}
    )
    assert stale.json()["applied"] is False
    await _same_answer(
        app, client, text_url, served=True, json={"answer": {"text": "éß ✓"}, "client_seq": 7}
    )
    source = "print('∑')\n" * 5_000
    draft = {"answer": {"language": "python", "source": source}, "client_seq": 3}
    # Sent with every non-ASCII character escaped: the largest kind of body a browser sends.
    await _same_answer(
        app, client, code_url, served=True, content=json.dumps(draft), headers=_json_type()
    )
    assert (await one(db, "SELECT count(*) FROM responses"))[0] == 3
    stored = await one(db, "SELECT answer FROM responses WHERE client_seq = 3")
    assert stored.answer["source"] == source
    # Each applied save is in the history once, whichever path applied it; the
    # retries and the stale save left none.
    history = await rows(db, "SELECT client_seq, answer FROM response_history ORDER BY id")
    assert [(h.client_seq, h.answer.get("choice") or h.answer.get("text")) for h in history] == [
        (1, "b"),
        (7, "éß ✓"),
        (3, None),
    ]
    assert history[2].answer["source"] == source


def _json_type(**extra: str) -> dict[str, str]:
    return {"content-type": "application/json", **extra}


async def test_refusals_of_the_save_itself_match(
    app: Litestar, make_client: Any, db: AsyncSession
) -> None:
    client, _, session = await _started(make_client, db)
    _, _, other = await _started(make_client, db)
    base = f"/api/v1/sessions/{session['id']}/responses/"
    # 422 from the question's kind: a choice that is not one of the question's.
    wrong = await _same_answer(
        app,
        client,
        base + qid(session, "mcq_single"),
        served=True,
        json={"answer": {"choice": "z"}, "client_seq": 1},
    )
    assert wrong.status_code == 422 and wrong.json()["error"]["details"][0]["field"]
    wrong_kind = await _same_answer(
        app,
        client,
        base + qid(session, "numeric"),
        served=True,
        json={"answer": {"text": "7"}, "client_seq": 1},
    )
    assert wrong_kind.status_code == 422
    # 404: a question of another paper, another student's session, no such session.
    for url in (
        base + qid(other, "numeric"),
        f"/api/v1/sessions/{other['id']}/responses/{qid(other, 'numeric')}",
        f"/api/v1/sessions/{uuid.uuid4()}/responses/{qid(session, 'numeric')}",
    ):
        missing = await _same_answer(
            app, client, url, served=True, json={"answer": {"value": 1}, "client_seq": 1}
        )
        assert missing.status_code == 404
    # 409 once the deadline has passed.
    await move_deadline(db, session["id"], -1)
    closed = await _same_answer(
        app,
        client,
        base + qid(session, "numeric"),
        served=True,
        json={"answer": {"value": 1}, "client_seq": 1},
    )
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "session_closed"
    assert (await one(db, "SELECT count(*) FROM responses"))[0] == 0


async def test_everything_else_is_left_to_the_full_stack(
    app: Litestar, make_client: Any, db: AsyncSession
) -> None:
    client, _, session = await _started(make_client, db)
    url = f"/api/v1/sessions/{session['id']}/responses/{qid(session, 'short_text')}"
    save = {"answer": {"text": "x"}, "client_seq": 1}
    token = client.headers.pop("X-CSRF-Token")
    no_token = await _same_answer(app, client, url, served=False, json=save)
    assert no_token.status_code == 403 and no_token.json()["error"]["code"] == "csrf_failed"
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    bad_token = await _same_answer(
        app, client, url, served=False, json=save, headers={"X-CSRF-Token": forged}
    )
    assert bad_token.status_code == 403
    client.headers["X-CSRF-Token"] = token

    bodies: list[tuple[bytes | str, int]] = [
        (b"{not json", 400),
        (b"\xff\xfe", 400),
        (b"", 400),
        (b"[1, 2]", 422),
        (json.dumps({**save, "extra": 1}), 422),
        (json.dumps({"answer": {"text": "x"}, "client_seq": -1}), 422),
        (json.dumps({"answer": {"text": "a\u0000b"}, "client_seq": 1}), 422),
        ("[" * 5_000 + "]" * 5_000, 400),
        # Larger than the fast path reads: the full stack's own limits answer.
        (json.dumps({"answer": {"text": "y" * MAX_FAST_BODY}, "client_seq": 1}), 422),
        # A number sent as a string: refused on both paths alike (the full stack
        # decodes strictly too).
        (json.dumps({"answer": {"text": "x"}, "client_seq": "1"}), 422),
    ]
    for body, status in bodies:
        answer = await _same_answer(
            app, client, url, served=False, content=body, headers=_json_type()
        )
        assert answer.status_code == status, (body[:40], answer.text)
        if isinstance(body, str) and '"client_seq": "1"' in body:
            assert answer.json()["error"]["details"][0]["field"] == "client_seq", answer.text
    # Not JSON by its type, a query string, a path Litestar reads but not in canonical form.
    for other_url, headers in (
        (url, {"content-type": "text/plain"}),
        (url + "?x=1", _json_type()),
        (
            url.upper()
            .replace("/API/V1/SESSIONS/", "/api/v1/sessions/")
            .replace("/RESPONSES/", "/responses/"),
            _json_type(),
        ),
    ):
        await _same_answer(
            app, client, other_url, served=False, content=json.dumps(save), headers=headers
        )

    # Signed out, an unknown session, and the wrong role.
    anonymous = await make_client()
    anonymous.headers["X-CSRF-Token"] = token
    for name, value in client.cookies.items():
        if name != SIGNIN_COOKIE:
            anonymous.cookies.set(name, value)
    signed_out = await _same_answer(app, anonymous, url, served=False, json=save)
    assert signed_out.status_code == 401
    anonymous.cookies.set(SIGNIN_COOKIE, "no-such-session")
    unknown = await _same_answer(app, anonymous, url, served=False, json=save)
    assert unknown.status_code == 401
    educator, _ = await signed_in(make_client, db, "educator")
    wrong_role = await _same_answer(app, educator, url, served=False, json=save)
    assert wrong_role.status_code == 403 and wrong_role.json()["error"]["code"] == "wrong_role"
    assert (await one(db, "SELECT client_seq FROM responses")).client_seq == 1


async def test_a_session_past_its_hard_cap_is_refused_and_deleted(
    app: Litestar, make_client: Any, db: AsyncSession, redis: Redis, settings: Settings
) -> None:
    client, _, session = await _started(make_client, db)
    session_id = client.cookies[SIGNIN_COOKIE]
    key = f"{settings.redis_namespace}:sessions:{session_id}"
    record = json.loads(await redis.get(key))
    record["iat"] = 0
    await redis.set(key, json.dumps(record), ex=600)
    fast = _fast_path(app)
    before = fast.served
    url = f"/api/v1/sessions/{session['id']}/responses/{qid(session, 'short_text')}"
    expired = await client.put(url, json={"answer": {"text": "x"}, "client_seq": 1})
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "session_expired"
    assert fast.served == before
    assert await redis.exists(key) == 0
    assert (await one(db, "SELECT count(*) FROM responses"))[0] == 0


async def test_fast_saves_are_counted_and_logged_under_the_route(
    app: Litestar, make_client: Any, db: AsyncSession
) -> None:
    client, _, session = await _started(make_client, db)
    url = f"/api/v1/sessions/{session['id']}/responses/{qid(session, 'numeric')}"
    counted = HTTP_REQUESTS.labels(ROUTE, "PUT", "200")
    before = counted._value.get()
    response = await client.put(url, json={"answer": {"value": 2}, "client_seq": 1})
    assert response.status_code == 200
    assert counted._value.get() == before + 1
    assert len(response.headers["x-request-id"]) == 32
