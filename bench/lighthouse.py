"""Lighthouse 12.2.3 on the landing page and the student pages: performance and accessibility.

Lighthouse comes from the npm registry into ``bench/lighthouse/node_modules``
(``npm ci`` on first use; ``package.json`` and ``package-lock.json`` pin it)
and drives Debian's Chromium (``CHROME_PATH=/usr/bin/chromium``; Node 20)::

    .venv/bin/python bench/lighthouse.py                # mobile (Lighthouse's default)
    .venv/bin/python bench/lighthouse.py --preset desktop
    .venv/bin/python bench/lighthouse.py --url http://127.0.0.1:8123 \\
        --database-url postgresql://postgres@127.0.0.1:5432/safexam_bench

Starts the API on a database of its own (bench/pages.py) unless ``--url`` names
a running one. An educator makes two exams through the API (every kind but
coding; every kind with a coding question); a student signs in over the API and
starts both. Lighthouse then audits the landing page, the sign-in page and both
exam pages (``--only landing`` for those whose name has it) with
``--only-categories=performance,accessibility``, sending the student's cookie
with ``--extra-headers`` (Lighthouse has no sign-in of its own). Printed: the
scores, and for a score under its target (performance 95, accessibility 100)
every audit that cost points, with what it found. The JSON reports are kept in
``--reports`` (default a temporary folder).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadgen import Recorder, StudentClient, check_local_url
from pages import PASSWORD, create_accounts, create_exam, kind_questions, private_system

HERE = Path(__file__).resolve().parent / "lighthouse"
LIGHTHOUSE = HERE / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = "/usr/bin/chromium"
# Headless, and nothing that calls out (as tests/web/conftest.py).
CHROME_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run"
    " --disable-background-networking --disable-component-update --disable-sync"
)
TARGETS = {"performance": 95, "accessibility": 100}


def ensure_lighthouse() -> None:
    if LIGHTHOUSE.exists():
        return
    print("installing lighthouse into bench/lighthouse/node_modules (npm ci)", flush=True)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)


def run_lighthouse(
    url: str, report: Path, *, cookie: str | None, preset: str | None, timeout_s: float
) -> dict[str, Any]:
    command = [
        str(LIGHTHOUSE),
        url,
        "--only-categories=performance,accessibility",
        "--output=json",
        f"--output-path={report}",
        f"--chrome-flags={CHROME_FLAGS}",
        "--quiet",
    ]
    if preset:
        command.append(f"--preset={preset}")
    if cookie:
        command.append("--extra-headers=" + json.dumps({"Cookie": cookie}))
    env = {**os.environ, "CHROME_PATH": CHROMIUM}
    subprocess.run(command, env=env, check=True, timeout=timeout_s)
    result: dict[str, Any] = json.loads(report.read_text())
    return result


def lost_points(result: dict[str, Any], category: str) -> list[str]:
    """The audits of ``category`` that cost points, most costly first, with what they found."""
    audits = result["audits"]
    lines = []
    refs = sorted(result["categories"][category]["auditRefs"], key=lambda r: -r["weight"])
    for ref in refs:
        audit = audits[ref["id"]]
        score = audit.get("score")
        if ref["weight"] == 0 or score is None or score >= 1:
            continue
        shown = audit.get("displayValue", "")
        lines.append(f"    {ref['id']} (weight {ref['weight']}): score {score:.2f} {shown}")
        lines.append(f"      {audit['title']}")
        for item in (audit.get("details") or {}).get("items", [])[:5]:
            node = item.get("node") or {}
            where = node.get("selector") or item.get("url") or ""
            what = node.get("explanation") or node.get("snippet") or ""
            if where or what:
                lines.append(f"      - {where}: {what}"[:300])
    return lines


def print_result(name: str, result: dict[str, Any]) -> bool:
    """Print the scores (and what cost points); True when both targets are met."""
    scores = {c: round(result["categories"][c]["score"] * 100) for c in TARGETS}
    audits = result["audits"]
    metrics = ", ".join(
        f"{key} {audits[key]['displayValue']}"
        for key in (
            "first-contentful-paint",
            "largest-contentful-paint",
            "total-blocking-time",
            "cumulative-layout-shift",
            "speed-index",
        )
        if key in audits and "displayValue" in audits[key]
    )
    met = all(scores[c] >= target for c, target in TARGETS.items())
    print(
        f"{name}: performance {scores['performance']}, accessibility {scores['accessibility']}"
        f" ({'targets met' if met else 'TARGET MISSED'})"
    )
    print(f"  {metrics}")
    # Opportunities and diagnostics carry no weight in the score but say what a slower
    # network or device would feel first.
    flagged = [
        f"{ref['id']} ({audits[ref['id']].get('displayValue', '')})".replace(" ()", "")
        for ref in result["categories"]["performance"]["auditRefs"]
        if ref["weight"] == 0
        and audits[ref["id"]].get("scoreDisplayMode") in ("metricSavings", "numeric", "binary")
        and (audits[ref["id"]].get("score") is not None and audits[ref["id"]]["score"] < 0.9)
    ]
    if flagged:
        print(f"  flagged, no weight: {'; '.join(flagged)}")
    for category, target in TARGETS.items():
        if scores[category] < target:
            print(f"  {category} under {target}; the audits that cost points:")
            for line in lost_points(result, category):
                print(line)
    return met


async def prepare(url: str, database_url: str) -> tuple[str, dict[str, str]]:
    """A student signed in with two sessions started; (cookie header, page paths by name)."""
    run = uuid.uuid4().hex[:8]
    accounts = await create_accounts(database_url, run, 1)
    educator = StudentClient(url, Recorder())
    student = StudentClient(url, Recorder())
    try:
        await educator.sign_in(accounts["educator"], PASSWORD)
        exams = {
            "exam page, every kind but coding": await create_exam(
                educator,
                f"Lighthouse {run}: every kind but coding",
                kind_questions(coding=False),
                accounts["students"],
            ),
            "exam page with a coding question": await create_exam(
                educator,
                f"Lighthouse {run}: every kind",
                kind_questions(coding=True),
                accounts["students"],
            ),
        }
        await student.sign_in(accounts["students"][0], PASSWORD)
        paths = {"landing page": "/", "sign-in page": "/sign-in"}
        for name, exam_id in exams.items():
            started = await student.call(
                "POST", f"/api/v1/exams/{exam_id}/sessions", "POST /exams/{id}/sessions"
            )
            paths[name] = f"/sessions/{started['id']}"
        cookie = "; ".join(f"{k}={v}" for k, v in student.cookies.items())
    finally:
        await educator.close()
        await student.close()
    return cookie, paths


def audit_pages(url: str, cookie: str, paths: dict[str, str], args: argparse.Namespace) -> int:
    reports = Path(args.reports or tempfile.mkdtemp(prefix="safexam-lighthouse-"))
    reports.mkdir(parents=True, exist_ok=True)
    all_met = True
    for name, path in paths.items():
        if args.only and args.only not in name:
            continue
        report = reports / (
            name.split(",")[0].replace(" ", "-") + f"-{args.preset or 'mobile'}.json"
        )
        for run in range(args.runs):
            result = run_lighthouse(
                url + path,
                report,
                # The landing and sign-in pages are what someone not signed in sees.
                cookie=None if path in ("/", "/sign-in") else cookie,
                preset=args.preset,
                timeout_s=180,
            )
            label = f"{name} ({args.preset or 'mobile'})" + (
                f", run {run + 1}" if args.runs > 1 else ""
            )
            all_met = print_result(label, result) and all_met
    print(f"reports: {reports}")
    return 0 if all_met else 1


async def main_async(args: argparse.Namespace) -> int:
    ensure_lighthouse()
    if args.url:
        check_local_url(args.url)
        if not args.database_url:
            print("--url needs --database-url (or SAFEXAM_DATABASE_URL)", file=sys.stderr)
            return 2
        cookie, paths = await prepare(args.url, args.database_url)
        return await asyncio.to_thread(audit_pages, args.url, cookie, paths, args)
    started = time.perf_counter()
    async with private_system(web_workers=args.web_workers, pools={}) as system:
        print(f"API started on {system.url} in {time.perf_counter() - started:.1f} s", flush=True)
        cookie, paths = await prepare(system.url, system.database_url)
        return await asyncio.to_thread(audit_pages, system.url, cookie, paths, args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running API (default: start one)")
    parser.add_argument("--database-url", default=os.environ.get("SAFEXAM_DATABASE_URL"))
    parser.add_argument("--preset", choices=("desktop",), help="default: Lighthouse's mobile")
    parser.add_argument("--runs", type=int, default=1, help="Lighthouse runs per page (1..5)")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--reports", help="folder for the JSON reports")
    parser.add_argument("--only", help="audit only the pages whose name contains this")
    args = parser.parse_args()
    if not 1 <= args.runs <= 5:
        print("runs must be 1..5", file=sys.stderr)
        return 2
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
