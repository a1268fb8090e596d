"""deploy/prometheus and deploy/grafana: the alert rules pass their promtool tests, and
every metric they (and the dashboard) read is one /metrics publishes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "safexam-alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "safexam-alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "safexam-dashboard.json"

_METRIC = re.compile(r"\bsafexam_[a-z_]+")
_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        # `make setup` installs it (scripts/ensure-promtool.sh): missing is a broken setup.
        pytest.fail("promtool is not installed: run `make setup` (scripts/ensure-promtool.sh)")
    return found


def _base(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_alert_rules_pass_their_promtool_tests() -> None:
    promtool = _promtool()
    check = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # Every alert has a test that expects it to fire.
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    firing = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - {"SafeExamDeadLetters"} <= firing, alerts - firing


def test_a_broken_rule_fails_its_test(tmp_path: Path) -> None:
    promtool = _promtool()
    broken = RULES.read_text().replace(
        "max(safexam_autosubmit_lag_seconds) > 120", "max(safexam_autosubmit_lag_second) > 120"
    )
    (tmp_path / RULES.name).write_text(broken)
    (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    tested = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tested.returncode != 0 and "SafeExamAutoSubmitLagging" in tested.stdout + tested.stderr


def _dashboard_exprs() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    assert dashboard["panels"] and all(p["targets"] for p in dashboard["panels"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


async def test_rules_and_dashboard_read_metrics_that_exist(client: Any) -> None:
    await client.get("/healthz")  # so the HTTP counters have a sample
    text = (await client.get("/metrics")).text
    published = {_base(line.split()[2]) for line in text.splitlines() if line.startswith("# TYPE ")}
    rules = yaml.safe_load(RULES.read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]] + _dashboard_exprs()
    used = {_base(name) for expr in exprs for name in _METRIC.findall(expr)}
    assert used, exprs
    assert used - published == set(), f"not published by /metrics: {used - published}"
