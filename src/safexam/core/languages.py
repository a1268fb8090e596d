"""The names of the languages students may write in, in the order they are offered.

Settings check names against this list when a process starts (a Judge0
language id given for a language we do not have is a typo to stop on), and
core comes below the coding package, which describes how each language is
compiled and run (``safexam.coding.languages``); a test keeps the two equal.
"""

from __future__ import annotations

__all__ = ["LANGUAGE_NAMES"]

LANGUAGE_NAMES: tuple[str, ...] = ("python", "c", "cpp", "java", "javascript")
