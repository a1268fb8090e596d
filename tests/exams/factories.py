"""Request payloads and small API shortcuts for the authoring tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def mcq(**over: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "kind": "mcq_single",
        "prompt": "2 + 2 = ?",
        "points": 1,
        "tags": ["arith"],
        "status": "active",
        "body": {
            "choices": [{"id": "a", "text": "3"}, {"id": "b", "text": "4"}],
            "answer": ["b"],
        },
    }
    payload.update(over)
    return payload


def coding(**over: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "kind": "coding",
        "prompt": "Print the sum of two integers.",
        "points": 10,
        "status": "active",
        "body": {
            "languages": ["python", "c"],
            "starter_code": {"python": "def add(a, b):\n    pass\n"},
            "template": {"python": "{{ SOURCE }}\nprint(add(*map(int, input().split())))\n"},
            "tests": [
                {
                    "name": "small",
                    "stdin": "1 2\n",
                    "expected_output": "3\n",
                    "points": 5,
                    "hidden": False,
                },
                {
                    "name": "big",
                    "stdin": "10 20\n",
                    "expected_output": "30\n",
                    "points": 5,
                    "hidden": True,
                },
            ],
            "comparison": "trimmed",
            "limits": {"cpu_time_s": 2, "wall_time_s": 5, "memory_mb": 256, "output_kb": 64},
        },
    }
    payload.update(over)
    return payload


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def exam(items: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    payload: dict[str, Any] = {
        "title": "Midterm",
        "description": "",
        "opens_at": iso(now - timedelta(hours=1)),
        "closes_at": iso(now + timedelta(hours=2)),
        "duration_minutes": 60,
        "attempts_allowed": 1,
        "shuffle_questions": True,
        "shuffle_choices": True,
        "release_policy": "immediate",
        "integrity": {"require_fullscreen": True},
        "items": items,
    }
    payload.update(over)
    return payload


async def new_question(client: Any, **over: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/questions", json=mcq(**over))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def new_exam(client: Any, items: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/exams", json=exam(items, **over))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def error_field(response: Any) -> str | None:
    """The field named by a 422 (first detail)."""
    details = response.json()["error"]["details"] or []
    return details[0].get("field") if details else None
