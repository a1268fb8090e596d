"""The names of the languages students may write in, in the order they are offered.

Settings check names against this list when a process starts (a Judge0
language id given for a language we do not have is a typo to stop on), and
core comes below the coding package, which describes how each language is
compiled and run (``safexam.coding.languages``, which builds its table from
this list and refuses to start if a name lacks a description).
"""

from __future__ import annotations

__all__ = ["LANGUAGE_NAMES"]

LANGUAGE_NAMES: tuple[str, ...] = ("python", "c", "cpp", "java", "javascript")
