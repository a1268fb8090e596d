"""The labelled similarity set: independent originals and disguised copies, per problem.

Each folder under ``similarity_cases/`` is one problem in one language: a
``starter`` file (the code handed out with the question), originals named
``orig_<letter>`` written independently of each other, and copies named
``copy_<letter>_<disguise>``, each made from ``orig_<letter>`` the way
students disguise copying (renamed identifiers, reordered functions, changed
comments and whitespace, dead code, loops rewritten). Two programs of one
problem are a true pair exactly when they share the letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

CASES = Path(__file__).resolve().parent / "similarity_cases"

LANGUAGE_OF_SUFFIX = {
    ".py": "python",
    ".c": "c",
    ".cpp": "cpp",
    ".java": "java",
    ".js": "javascript",
}


@dataclass(frozen=True)
class Problem:
    name: str
    language: str
    suffix: str
    starter: str
    programs: dict[str, str]  # key "problem/file" -> source

    def family(self, key: str) -> str:
        stem = key.rsplit("/", 1)[1].removesuffix(self.suffix)
        return stem.split("_")[1]

    def truth(self) -> set[frozenset[str]]:
        return {
            frozenset((a, b))
            for a, b in combinations(sorted(self.programs), 2)
            if self.family(a) == self.family(b)
        }

    def all_pairs(self) -> list[frozenset[str]]:
        return [frozenset(p) for p in combinations(sorted(self.programs), 2)]


def load_problems() -> list[Problem]:
    problems: list[Problem] = []
    for folder in sorted(p for p in CASES.iterdir() if p.is_dir()):
        starter = next(folder.glob("starter.*"))
        suffix = starter.suffix
        programs = {
            f"{folder.name}/{f.name}": f.read_text()
            for f in sorted(folder.glob(f"*{suffix}"))
            if f.name.startswith(("orig_", "copy_"))
        }
        problems.append(
            Problem(folder.name, LANGUAGE_OF_SUFFIX[suffix], suffix, starter.read_text(), programs)
        )
    return problems


def precision_recall(
    flagged: set[frozenset[str]], truth: set[frozenset[str]]
) -> tuple[float, float]:
    hits = len(flagged & truth)
    precision = hits / len(flagged) if flagged else 1.0
    recall = hits / len(truth) if truth else 1.0
    return precision, recall
