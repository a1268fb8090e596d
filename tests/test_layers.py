"""The layers of pyproject.toml's import contract hold, and an upward import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """Reads source files only (overrides the database cleanup)."""


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the packages under ``tree`` with ``tree``'s pyproject.toml."""
    env = {
        **os.environ,
        # Ahead of the installed (editable) project, so the copy is what is analysed.
        "PYTHONPATH": os.pathsep.join([str(tree / "src"), str(tree)]),
    }
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _copy_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src", tree / "src", ignore=ignore)
    shutil.copytree(ROOT / "workers", tree / "workers", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def _append(module: Path, line: str) -> None:
    module.write_text(module.read_text() + f"\n{line}  # noqa\n")


def test_the_tree_keeps_its_layers() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout, done.stdout


def test_core_importing_a_domain_breaks_the_layers(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    _append(tree / "src/safexam/core/db.py", "import safexam.exams.models")
    done = _lint_imports(tree)
    assert done.returncode != 0, done.stdout
    assert "safexam.core is not allowed to import safexam.exams" in done.stdout, done.stdout
    assert "safexam.core.db -> safexam.exams.models" in done.stdout, done.stdout


def test_jobs_importing_a_domain_breaks_the_layers(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    _append(tree / "src/safexam/jobs/runner.py", "import safexam.auth.guards")
    done = _lint_imports(tree)
    assert done.returncode != 0, done.stdout
    assert "safexam.jobs.runner -> safexam.auth.guards" in done.stdout, done.stdout


def test_the_application_importing_the_workers_breaks_the_contract(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    _append(tree / "src/safexam/grading/service.py", "import workers.grading")
    done = _lint_imports(tree)
    assert done.returncode != 0, done.stdout
    assert "safexam.grading.service -> workers.grading" in done.stdout, done.stdout


def test_a_domain_importing_the_web_breaks_the_layers(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    _append(tree / "src/safexam/sessions/lobby.py", "import safexam.web.wording")
    done = _lint_imports(tree)
    assert done.returncode != 0, done.stdout
    assert "safexam.sessions.lobby -> safexam.web.wording" in done.stdout, done.stdout
