"""Exam day: N students take one exam on a running SafeExam, then it closes and is graded.

Starts nothing itself: it drives a running system (``make run``, or the API
and the worker pools started by hand) at ``--url`` and reads its database at
``--database-url`` to create the accounts and, at the end, to check that no
answer was lost::

    .venv/bin/python bench/exam_day.py --url http://127.0.0.1:8123 \\
        --database-url postgresql://postgres@127.0.0.1:5432/safexam_bench

What happens (every step through the HTTP API, as a browser would):

1. set-up: an educator, an admin and N students are created in the database
   (one password hash shared by all: hashing is not what this measures); the
   educator creates MCQ questions and one Python coding question, an exam
   with all of them, publishes it and enrols the students;
2. the students sign in and start the exam within ``--start-window`` seconds
   (each begins at a random moment of the window; a sign-in may wait up to
   120 s, as a browser would, the other calls 30 s);
3. each one autosaves every ``--autosave-interval`` seconds (jittered), sends
   a batch of integrity events every ``--events-interval`` seconds, runs its
   code once (waiting for the verdict) and then submits it;
4. at the bell (``--exam-seconds`` after the start window) every student
   submits within ``--submit-spread`` seconds: the exam is closed when the
   last submit is answered; the run then waits until every session is graded
   (and every code submission judged), bounded by ``--grading-timeout``;
5. the database must hold, for every student and question, the last answer
   the API acknowledged (same ``client_seq``, same answer): 0 lost answers.

Printed: autosaves per second (over the steady part, and per 10 s), p50 /
p95 / p99 latency per endpoint, errors by status code, the time from close
until all sessions are graded, and the judge and grading queue depths over
time (sampled as the admin from ``/api/v1/ops/queues``). Bounded in time and
count; traffic goes to this machine only. The API must run with
``SAFEXAM_COOKIE_SECURE=false`` when served over plain http.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import insert, text

from safexam.auth.models import User
from safexam.auth.passwords import hash_password
from safexam.core.db import create_engine
from safexam.core.settings import to_asyncpg_url

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadgen import (
    Recorder,
    StudentClient,
    check_local_url,
    process_cpu_seconds,
    publish_and_enrol,
    run_in_processes,
    summary_lines,
    wait_for_go,
)

PASSWORD = "exam-day-password-123"
SIGN_IN_TIMEOUT_S = 120.0
SAVE = "PUT /sessions/{id}/responses/{qid}"
LANGUAGE = "python"
STARTER = "def add(a, b):\n    pass\n"
SOLUTION = "def add(a, b):\n    return a + b\n"


# ---------------------------------------------------------------- set-up


async def create_accounts(database_url: str, run: str, students: int) -> dict[str, Any]:
    """Educator, admin and students, straight into the database with one shared hash."""
    engine = create_engine(to_asyncpg_url(database_url), pool_size=1)
    password_hash = hash_password(PASSWORD)
    people = [
        {"email": f"exam-day-{run}-educator@staff.example", "role": "educator"},
        {"email": f"exam-day-{run}-admin@staff.example", "role": "admin"},
    ] + [
        {"email": f"exam-day-{run}-{i}@students.example", "role": "student"}
        for i in range(students)
    ]
    async with engine.begin() as conn:
        organization = (
            await conn.execute(text("SELECT id FROM organizations WHERE slug = 'default'"))
        ).scalar_one()
        await conn.execute(
            insert(User),
            [
                {
                    "id": uuid.uuid4(),
                    "email": p["email"],
                    "name": p["email"].split("@")[0],
                    "role": p["role"],
                    "password_hash": password_hash,
                    "organization_id": organization,
                }
                for p in people
            ],
        )
    await engine.dispose()
    return {
        "educator": people[0]["email"],
        "admin": people[1]["email"],
        "students": [p["email"] for p in people[2:]],
    }


async def create_exam(
    educator: StudentClient, run: str, emails: list[str], mcq_count: int, minutes: int
) -> str:
    """The educator's part, through the API: questions, exam, publish, enrolments."""
    question_ids = []
    for i in range(mcq_count):
        created = await educator.call(
            "POST",
            "/api/v1/questions",
            "POST /questions",
            {
                "kind": "mcq_single",
                "prompt": f"Exam day {run}: question {i + 1}",
                "points": 1,
                "status": "active",
                "body": {
                    "choices": [{"id": c, "text": f"choice {c}"} for c in "abcd"],
                    "answer": ["b"],
                },
            },
        )
        question_ids.append(created["id"])
    coding = await educator.call(
        "POST",
        "/api/v1/questions",
        "POST /questions",
        {
            "kind": "coding",
            "prompt": "Return the sum of two integers.",
            "points": 10,
            "status": "active",
            "body": {
                "languages": [LANGUAGE],
                "starter_code": {LANGUAGE: STARTER},
                "template": {LANGUAGE: "{{ SOURCE }}\nprint(add(*map(int, input().split())))\n"},
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
        },
    )
    question_ids.append(coding["id"])
    now = datetime.now(UTC)
    exam = await educator.call(
        "POST",
        "/api/v1/exams",
        "POST /exams",
        {
            "title": f"Exam day {run}",
            "opens_at": (now - timedelta(minutes=1)).isoformat(),
            "closes_at": (now + timedelta(minutes=minutes + 30)).isoformat(),
            "duration_minutes": minutes,
            "release_policy": "immediate",
            "items": [{"question_id": q} for q in question_ids],
        },
    )
    await publish_and_enrol(educator, str(exam["id"]), emails)
    return str(exam["id"])


# ---------------------------------------------------------------- one student


class Timeline(msgspec.Struct, frozen=True):
    """Offsets in seconds from the common start."""

    start_window: float
    bell: float
    submit_spread: float
    autosave_interval: float
    events_interval: float


async def sleep_until(at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))


async def take_exam(
    client: StudentClient,
    email: str,
    exam_id: str,
    t0: float,
    timeline: Timeline,
    rng: random.Random,
    save_times: list[float],
) -> dict[str, Any]:
    """One student's exam; returns the last acknowledged save per question and what happened."""
    outcome: dict[str, Any] = {
        "session_id": None,
        "acked": {},
        "ran": False,
        "submitted_code": False,
        "submitted": False,
        "submit_answered_at": None,
    }
    await sleep_until(t0 + rng.uniform(0, timeline.start_window))
    try:
        # A browser waits for the sign-in as long as it takes (no fetch timeout);
        # the password hash is the one step whose cost is meant to be high.
        await client.sign_in(email, PASSWORD, timeout_s=SIGN_IN_TIMEOUT_S)
        started = await client.call(
            "POST", f"/api/v1/exams/{exam_id}/sessions", "POST /exams/{id}/sessions"
        )
    except Exception:  # recorded by the client; this student could not take the exam
        return outcome
    sid = started["id"]
    outcome["session_id"] = sid
    questions = started["questions"]
    mcqs = [q["id"] for q in questions if q["kind"] == "mcq_single"]
    coding = next(q["id"] for q in questions if q["kind"] == "coding")
    bell = t0 + timeline.bell

    async def autosaves() -> None:
        next_at = time.monotonic() + rng.uniform(0, timeline.autosave_interval)
        for seq in range(1, 100_000):  # bounded by the bell; the count is a backstop
            await sleep_until(next_at)
            if time.monotonic() >= bell:
                return
            # Mostly MCQ answers; every fifth save is the coding draft.
            if seq % 5 == 0:
                qid = coding
                answer: dict[str, Any] = {
                    "language": LANGUAGE,
                    "source": SOLUTION + f"# draft {seq}\n",
                }
            else:
                qid = mcqs[seq % len(mcqs)]
                answer = {"choice": "abcd"[rng.randrange(4)]}
            try:
                body = await client.call(
                    "PUT",
                    f"/api/v1/sessions/{sid}/responses/{qid}",
                    SAVE,
                    {"answer": answer, "client_seq": seq},
                    expect=(200,),
                )
            except Exception:  # recorded; the next save carries a newer answer anyway
                body = None
            if body is not None and body.get("applied"):
                outcome["acked"][qid] = [seq, answer]
                save_times.append(time.monotonic())
            next_at += timeline.autosave_interval * rng.uniform(0.8, 1.2)

    async def integrity_events() -> None:
        next_at = time.monotonic() + rng.uniform(0, timeline.events_interval)
        for _ in range(10_000):
            await sleep_until(next_at)
            if time.monotonic() >= bell:
                return
            at = datetime.now(UTC).isoformat()
            events = [
                {"kind": kind, "at": at, "details": {}}
                for kind in rng.choice(
                    (["focus_lost", "focus_gained"], ["visibility_hidden", "visibility_visible"])
                )
            ]
            with contextlib.suppress(Exception):  # recorded by the client
                await client.call(
                    "POST",
                    f"/api/v1/sessions/{sid}/events",
                    "POST /sessions/{id}/events",
                    {"events": events},
                )
            next_at += timeline.events_interval * rng.uniform(0.8, 1.2)

    async def wait_for_verdict(submission_id: str, endpoint: str) -> bool:
        for _ in range(10_000):
            if time.monotonic() >= bell:
                return False
            await asyncio.sleep(2.0)
            state = await client.call("GET", f"/api/v1/submissions/{submission_id}", endpoint)
            if state["status"] in ("done", "error"):
                return True
        return False

    async def code() -> None:
        # Run once somewhere in the first half of the exam, then submit after the verdict.
        first_half = max(1.0, (bell - time.monotonic()) / 2)
        await asyncio.sleep(rng.uniform(0, first_half))
        try:
            run = await client.call(
                "POST",
                f"/api/v1/sessions/{sid}/runs",
                "POST /sessions/{id}/runs",
                {"question_id": coding, "language": LANGUAGE, "source": SOLUTION},
            )
            outcome["ran"] = await wait_for_verdict(run["id"], "GET /submissions/{id} (run)")
            if not outcome["ran"]:
                return
            await client.call(
                "POST",
                f"/api/v1/sessions/{sid}/submissions",
                "POST /sessions/{id}/submissions",
                {"question_id": coding, "language": LANGUAGE, "source": SOLUTION},
            )
            outcome["submitted_code"] = True
        except Exception:  # recorded
            pass

    await asyncio.gather(autosaves(), integrity_events(), code())
    await sleep_until(bell + rng.uniform(0, timeline.submit_spread))
    try:
        await client.call("POST", f"/api/v1/sessions/{sid}/submit", "POST /sessions/{id}/submit")
        outcome["submitted"] = True
    except Exception:  # recorded
        pass
    outcome["submit_answered_at"] = time.monotonic()
    return outcome


async def client_process(
    url: str,
    emails: list[str],
    exam_id: str,
    timeline: Timeline,
    seed: int,
    *,
    ready: object,
    go: object,
) -> dict[str, Any]:
    """One client process: its share of the students, on one event loop."""
    recorder = Recorder()
    clients = [StudentClient(url, recorder) for _ in emails]
    save_times: list[float] = []
    try:
        t0 = await wait_for_go(ready, go)
        outcomes = await asyncio.gather(
            *(
                take_exam(c, e, exam_id, t0, timeline, random.Random(f"{seed}-{e}"), save_times)
                for c, e in zip(clients, emails, strict=True)
            )
        )
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    return {"recorder": recorder.to_wire(), "outcomes": outcomes, "save_times": save_times}


# ---------------------------------------------------------------- the run


async def monitor_queues(
    admin: StudentClient, samples: list[dict[str, Any]], stop: asyncio.Event
) -> None:
    """The judge and grading queue depths every second, as an operator sees them."""
    for _ in range(100_000):
        if stop.is_set():
            return
        try:
            body = await admin.call("GET", "/api/v1/ops/queues", "GET /ops/queues (monitor)")
            queues = {q["name"]: q for q in body["queues"]}
            samples.append(
                {
                    "t": time.monotonic(),
                    **{
                        f"{name}_{field}": (queues.get(name) or {}).get(field) or 0
                        for name in ("judge", "grading")
                        for field in ("depth", "in_flight")
                    },
                }
            )
        except Exception:  # recorded by the client
            pass
        with_timeout = asyncio.ensure_future(stop.wait())
        await asyncio.wait([with_timeout], timeout=1.0)
        with_timeout.cancel()


async def wait_until_graded(
    educator: StudentClient, exam_id: str, expected: int, timeout_s: float
) -> tuple[float | None, Counter[str]]:
    """Poll the educator's session list until every session is graded; returns when."""
    deadline = time.monotonic() + timeout_s
    statuses: Counter[str] = Counter()
    while time.monotonic() < deadline:
        body = await educator.call(
            "GET", f"/api/v1/exams/{exam_id}/sessions", "GET /exams/{id}/sessions (monitor)"
        )
        statuses = Counter(row["status"] for row in body["items"])
        if statuses.get("graded", 0) >= expected:
            return time.monotonic(), statuses
        await asyncio.sleep(0.5)
    return None, statuses


async def lost_answers(
    database_url: str, exam_id: str, outcomes: list[dict[str, Any]]
) -> tuple[int, int, list[str]]:
    """(acknowledged answers checked, lost, a few examples): the database must hold each."""
    dsn = to_asyncpg_url(database_url).replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT r.session_id, r.question_id, r.client_seq, CAST(r.answer AS text) AS answer
              FROM responses r JOIN exam_sessions s ON s.id = r.session_id
             WHERE s.exam_id = $1::uuid
            """,
            uuid.UUID(exam_id),
        )
    finally:
        await conn.close()
    stored = {
        (str(r["session_id"]), str(r["question_id"])): (r["client_seq"], r["answer"]) for r in rows
    }
    checked = lost = 0
    examples: list[str] = []
    for outcome in outcomes:
        sid = outcome["session_id"]
        for qid, (seq, answer) in outcome["acked"].items():
            checked += 1
            have = stored.get((sid, qid))
            ok = have is not None and have[0] == seq and msgspec.json.decode(have[1]) == answer
            if not ok:
                lost += 1
                if len(examples) < 5:
                    examples.append(f"session {sid} question {qid}: acked #{seq}, stored {have}")
    return checked, lost, examples


def depth_lines(samples: list[dict[str, Any]], t0: float, every_s: float = 10.0) -> list[str]:
    lines = ["   t (s)  judge waiting  judge running  grading waiting  grading running"]
    next_at = -math.inf
    peak = {"judge_depth": 0, "grading_depth": 0}
    for s in samples:
        for key in peak:
            peak[key] = max(peak[key], s[key])
        if s["t"] - t0 >= next_at:
            lines.append(
                f"  {s['t'] - t0:6.0f}  {s['judge_depth']:13d}  {s['judge_in_flight']:13d}  "
                f"{s['grading_depth']:15d}  {s['grading_in_flight']:15d}"
            )
            next_at = s["t"] - t0 + every_s
    lines.append(f"  peak: judge {peak['judge_depth']} waiting, grading {peak['grading_depth']}")
    return lines


async def run(args: argparse.Namespace) -> int:
    run_id = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    people = await create_accounts(args.database_url, run_id, args.students)
    setup = Recorder()
    educator = StudentClient(args.url, setup)
    admin = StudentClient(args.url, setup)
    await educator.sign_in(people["educator"], PASSWORD)
    await admin.sign_in(people["admin"], PASSWORD)
    minutes = max(1, math.ceil((args.start_window + args.exam_seconds) / 60) + 5)
    exam_id = await create_exam(educator, run_id, people["students"], args.questions, minutes)
    print(
        f"set-up: exam {exam_id} with {args.questions} MCQ + 1 coding question, "
        f"{args.students} students enrolled, in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    timeline = Timeline(
        start_window=args.start_window,
        bell=args.start_window + args.exam_seconds,
        submit_spread=args.submit_spread,
        autosave_interval=args.autosave_interval,
        events_interval=args.events_interval,
    )
    emails = people["students"]
    shards = [
        (args.url, emails[i :: args.processes], exam_id, timeline, args.seed)
        for i in range(args.processes)
        if emails[i :: args.processes]
    ]
    t0_holder: list[float] = []
    samples: list[dict[str, Any]] = []
    stop = asyncio.Event()

    def on_all_ready() -> float:
        t0_holder.append(time.monotonic() + 1.0)
        return t0_holder[0]

    monitor = asyncio.create_task(monitor_queues(admin, samples, stop))
    server_cpu0 = process_cpu_seconds(args.server_pid) if args.server_pid else 0.0
    wall0 = time.monotonic()
    children = await asyncio.to_thread(
        run_in_processes,
        client_process,
        shards,
        ready_timeout_s=120,
        total_timeout_s=timeline.bell + args.submit_spread + 300,
        on_all_ready=on_all_ready,
    )
    t0 = t0_holder[0]
    outcomes = [o for child in children for o in child["outcomes"]]
    started_sessions = [o for o in outcomes if o["session_id"]]
    closed_at = max((o["submit_answered_at"] or 0.0) for o in outcomes)
    graded_at, statuses = await wait_until_graded(
        educator,
        exam_id,
        len(started_sessions),
        max(1.0, args.grading_timeout - (time.monotonic() - closed_at)),
    )
    # Code submissions may still be in the judge after grading: wait (bounded) for them.
    judged_at = None
    for _ in range(int(args.grading_timeout)):
        if samples and samples[-1]["judge_depth"] == 0 and samples[-1]["judge_in_flight"] == 0:
            judged_at = samples[-1]["t"]
            break
        await asyncio.sleep(1.0)
    stop.set()
    await monitor
    results = await educator.call(
        "GET", f"/api/v1/exams/{exam_id}/results", "GET /exams/{id}/results"
    )
    server_cpu = (process_cpu_seconds(args.server_pid) - server_cpu0) if args.server_pid else None
    wall = time.monotonic() - wall0
    checked, lost, examples = await lost_answers(args.database_url, exam_id, outcomes)
    await educator.close()
    await admin.close()

    recorder = Recorder()
    for child in children:
        recorder.merge_wire(child["recorder"])
    save_times = sorted(t for child in children for t in child["save_times"])
    steady_from, steady_to = t0 + timeline.start_window, t0 + timeline.bell
    steady = sum(1 for t in save_times if steady_from <= t < steady_to)
    print(
        f"\nstudents={args.students} (started {len(started_sessions)}, "
        f"submitted {sum(o['submitted'] for o in outcomes)}), client processes={len(shards)}, "
        f"start window {args.start_window:.0f} s, exam {args.exam_seconds:.0f} s after it, "
        f"autosave every {args.autosave_interval:g} s, events every {args.events_interval:g} s"
    )
    print(
        f"autosaves acknowledged: {len(save_times)}; steady part (all students in, "
        f"{timeline.bell - timeline.start_window:.0f} s): "
        f"{steady / max(1e-9, timeline.bell - timeline.start_window):.0f} autosaves/s"
    )
    per_10s = Counter(int((t - t0) // 10) for t in save_times)
    print(
        "autosaves/s per 10 s: "
        + " ".join(f"{per_10s.get(i, 0) / 10:.0f}" for i in range(int(timeline.bell // 10) + 1))
    )
    print("\nlatency per endpoint (ms) and errors:")
    for line in summary_lines(recorder):
        print("  " + line)
    print(
        f"\ncode: {sum(o['ran'] for o in outcomes)} runs judged before the bell, "
        f"{sum(o['submitted_code'] for o in outcomes)} submissions sent"
    )
    if graded_at is not None:
        print(
            f"time from close until all {len(started_sessions)} sessions graded: "
            f"{graded_at - closed_at:.1f} s"
        )
    else:
        print(f"NOT all sessions graded within {args.grading_timeout:.0f} s: {dict(statuses)}")
    if judged_at is not None:
        print(f"judge queue empty {max(0.0, judged_at - closed_at):.1f} s after close")
    pending = sum(
        1 for row in results["rows"] for score in row["questions"].values() if score is None
    )
    print(f"results: {len(results['rows'])} rows, {pending} question scores still pending")
    print("\njudge and grading queues over time (s from the start):")
    for line in depth_lines(samples, t0):
        print(line)
    print(f"\nlost answers: {lost} of {checked} acknowledged last answers checked in the database")
    for example in examples:
        print(f"  {example}")
    if server_cpu is not None:
        print(f"API CPU over the run: {server_cpu:.1f} s in {wall:.0f} s")
    errors = sum(n for (_, status), n in recorder.statuses.items() if status >= 400)
    ok = lost == 0 and graded_at is not None and not errors and not recorder.transport_errors
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--database-url", default=os.environ.get("SAFEXAM_DATABASE_URL"))
    parser.add_argument("--students", type=int, default=500)
    parser.add_argument("--questions", type=int, default=10, help="MCQ questions (plus 1 coding)")
    parser.add_argument("--start-window", type=float, default=60.0, help="seconds to start")
    parser.add_argument("--exam-seconds", type=float, default=120.0, help="after the window")
    parser.add_argument("--autosave-interval", type=float, default=3.0, help="seconds")
    parser.add_argument("--events-interval", type=float, default=15.0, help="seconds")
    parser.add_argument("--submit-spread", type=float, default=5.0, help="seconds")
    parser.add_argument("--grading-timeout", type=float, default=600.0, help="seconds")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--server-pid", type=int, help="the API's main process, for its CPU")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    check_local_url(args.url)
    if not args.database_url:
        print("set --database-url (or SAFEXAM_DATABASE_URL): the API's database", file=sys.stderr)
        return 2
    bounds = [
        (1 <= args.students <= 5_000, "students must be 1..5000"),
        (1 <= args.questions <= 100, "questions must be 1..100"),
        (0 <= args.start_window <= 600, "start-window must be 0..600 s"),
        (10 <= args.exam_seconds <= 3_600, "exam-seconds must be 10..3600"),
        (0.1 <= args.autosave_interval <= 600, "autosave-interval must be 0.1..600 s"),
        (1 <= args.events_interval <= 600, "events-interval must be 1..600 s"),
        (0 <= args.submit_spread <= 600, "submit-spread must be 0..600 s"),
        (1 <= args.grading_timeout <= 3_600, "grading-timeout must be 1..3600 s"),
        (1 <= args.processes <= 8, "processes must be 1..8"),
    ]
    for ok, message in bounds:
        if not ok:
            print(message, file=sys.stderr)
            return 2
    import uvloop

    return uvloop.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
