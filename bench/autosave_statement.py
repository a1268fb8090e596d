"""The autosave statement alone on PostgreSQL, with and without its answer-history insert.

The HTTP bench (``autosave.py``) counts the API's CPU per save; what the
history adds is PostgreSQL's work (one more row, its index entries and WAL),
which that figure does not include. This runs the statement as the API does
(on an asyncpg connection, outside a transaction, the same parameters) and
alternates the two forms in rounds, so both see the same machine:

- wall time per save on one connection (each save commits: the WAL flush is in it);
- the PostgreSQL backend's CPU per save (``/proc/<backend pid>/stat``; the
  server must run on this machine);
- WAL bytes per save (``pg_current_wal_lsn()`` before and after).

A fresh database is created and dropped on ``SAFEXAM_BENCH_DATABASE_URL``
(default the local server)::

    SAFEXAM_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/autosave_statement.py --saves 5000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from autosave import set_up  # noqa: E402

from grading import bench_database  # noqa: E402
from safexam.sessions.autosave import _AUTOSAVE  # noqa: E402

# The statement as it was before the history: the same text without its CTE.
_HISTORY_CTE = """,
    kept AS (
        INSERT INTO response_history (session_id, question_id, client_seq, answer, saved_at)
        SELECT session_id, question_id, client_seq, answer, saved_at FROM saved
    )"""
assert _HISTORY_CTE in _AUTOSAVE, "the autosave statement changed: update this bench"
WITHOUT_HISTORY = _AUTOSAVE.replace(_HISTORY_CTE, "")
FORMS = {"without history": WITHOUT_HISTORY, "with history": _AUTOSAVE}
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def _sessions(conn: asyncpg.Connection, exam_id: uuid.UUID, count: int) -> list[Any]:
    """One active session per bench student, every question on its paper."""
    questions = [
        r["question_id"]
        for r in await conn.fetch(
            "SELECT question_id FROM exam_items WHERE exam_id = $1 ORDER BY position", exam_id
        )
    ]
    paper = json.dumps(
        [{"question_id": str(q), "points": 1, "position": i} for i, q in enumerate(questions)]
    )
    users = [
        r["user_id"]
        for r in await conn.fetch(
            "SELECT user_id FROM enrollments WHERE exam_id = $1 LIMIT $2", exam_id, count
        )
    ]
    now = datetime.now(UTC)
    rows = [
        (uuid.uuid4(), exam_id, user, now, now + timedelta(hours=3), i, paper)
        for i, user in enumerate(users)
    ]
    await conn.executemany(
        "INSERT INTO exam_sessions (id, exam_id, user_id, attempt, status, started_at,"
        " deadline_at, seed, paper) VALUES ($1, $2, $3, 1, 'active', $4, $5, $6, $7::jsonb)",
        rows,
    )
    return [(r[0], r[2], questions) for r in rows]


async def run(args: argparse.Namespace) -> None:
    async with bench_database() as (url, _):
        exam_id, _ = await set_up(url, args.sessions, args.questions)
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        sessions = await _sessions(conn, exam_id, args.sessions)
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        seq = 0
        figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in FORMS}
        for round_ in range(args.rounds):
            order = list(FORMS) if round_ % 2 == 0 else list(reversed(FORMS))
            for name in order:
                statement = FORMS[name]
                wal_before = await conn.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
                cpu_before = _cpu_seconds(backend)
                started = time.perf_counter()
                for i in range(args.saves):
                    seq += 1
                    session_id, user_id, questions = sessions[i % len(sessions)]
                    answer = json.dumps({"choice": "abcd"[seq % 4]})
                    row = await conn.fetchrow(
                        statement,
                        uuid.uuid4(),
                        session_id,
                        user_id,
                        questions[(i // len(sessions)) % len(questions)],
                        answer,
                        seq,
                    )
                    assert row is not None and row["saved_seq"] == seq
                wall = time.perf_counter() - started
                cpu = _cpu_seconds(backend) - cpu_before
                wal = (
                    await conn.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn") - wal_before
                )
                figures[name].append((wall / args.saves, cpu / args.saves, float(wal) / args.saves))
                print(
                    f"round {round_ + 1} {name:>16}: {1000 * wall / args.saves:.3f} ms/save wall,"
                    f" {1000 * cpu / args.saves:.3f} ms/save backend CPU,"
                    f" {float(wal) / args.saves:.0f} WAL bytes/save",
                    flush=True,
                )
        history = await conn.fetchval("SELECT count(*) FROM response_history")
        await conn.close()
    print(f"history rows written: {history} (saves with history: {args.saves * args.rounds})")
    for name, values in figures.items():
        wall, cpu, wal = (statistics.median(v[k] for v in values) for k in range(3))
        print(
            f"median {name:>16}: {1000 * wall:.3f} ms wall, {1000 * cpu:.3f} ms backend CPU,"
            f" {wal:.0f} WAL bytes per save"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=5000, help="saves per form per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--questions", type=int, default=10)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
