"""Each job kind is declared once, and the workers register exactly those actors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from safexam.core.broker import QUEUES
from safexam.jobs.kinds import JOB_KINDS
from tests.helpers import ServiceUrls

ROOT = Path(__file__).resolve().parents[2]


def test_every_kind_goes_to_a_pool_and_has_an_actor_of_its_own() -> None:
    assert all(kind.queue in QUEUES for kind in JOB_KINDS.values())
    actors = [kind.actor for kind in JOB_KINDS.values()]
    assert len(set(actors)) == len(actors)
    assert all(name == kind.name for name, kind in JOB_KINDS.items())


def test_the_workers_register_the_declared_actors(services: ServiceUrls) -> None:
    """What ``dramatiq workers`` loads: one actor per kind, as declared, and nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEXAM_")}
    env.update(
        SAFEXAM_DATABASE_URL=services.database_url,
        SAFEXAM_REDIS_URL=services.redis_url,
        SAFEXAM_REDIS_NAMESPACE=services.namespace,
        SAFEXAM_LOG_LEVEL="WARNING",
    )
    probe = (
        "import json, workers; "
        "actors = [workers.broker.get_actor(n) for n in workers.broker.get_declared_actors()]; "
        "print(json.dumps({a.actor_name: [a.queue_name, a.options.get('time_limit')]"
        " for a in actors}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    registered = json.loads(done.stdout.strip().splitlines()[-1])
    assert registered == {
        kind.actor: [kind.queue, kind.time_limit_ms] for kind in JOB_KINDS.values()
    }
