"""argon2id password hashing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "cheap_hashing",
    "hash_password",
    "hash_password_off_loop",
    "needs_rehash",
    "verify_password",
    "verify_password_off_loop",
]

# OWASP's argon2id configuration (19 MiB, 2 passes, 1 lane): about 18 ms of
# CPU per check here, against 142 ms for argon2-cffi's default (64 MiB, 3
# passes, 4 lanes). An exam starts with hundreds of sign-ins in a minute on
# the same cores that serve autosaves: at the default cost 500 of them took
# 71 CPU-seconds and a 27 s sign-in p95 (bench/exam_day.py). Hashes made with
# the older parameters still verify and are redone at the next sign-in.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# A real hash of a random password, verified when the email is unknown so that
# "no such user" takes as long as "wrong password" and timing reveals nothing.
_DUMMY_HASH = _hasher.hash("safexam-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def _yield_to_requests() -> None:
    # Linux schedules threads one by one: a lower priority for the hashing thread
    # (and the lane threads argon2 starts from it) gives the event loop, and so
    # the autosaves of students already in the exam, the CPU first. Elsewhere the
    # call would renice a whole process, so it is Linux only.
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


# One hashing thread per API process. A verification costs about 0.1 s and more
# than a core (argon2 lanes run in parallel): on the event loop it stalled every
# request of the process for that long, and at an exam's start (hundreds of
# sign-ins in a minute) autosaves timed out behind it. Unbounded threads would
# instead take every core; one thread makes a sign-in storm queue here while
# the event loop keeps serving. argon2-cffi releases the GIL while it hashes.
HASHING_NICENESS = 10
_hashing = ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="argon2", initializer=_yield_to_requests
)


async def verify_password_off_loop(password_hash: str | None, password: str) -> bool:
    """``verify_password`` in the hashing thread, without blocking the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_hashing, verify_password, password_hash, password)


async def hash_password_off_loop(password: str) -> str:
    """``hash_password`` in the hashing thread, without blocking the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_hashing, hash_password, password)


@contextmanager
def cheap_hashing() -> Iterator[None]:
    """Tests only: argon2id with minimal cost inside the block.

    The default cost (64 MiB, 3 passes) takes about half a second per hash on a
    busy two-core machine, and every test that signs someone in pays it twice.
    Hashes made in the block still verify afterwards (argon2 stores its
    parameters in the hash); outside it the real cost applies again.
    """
    global _hasher, _DUMMY_HASH
    saved = _hasher, _DUMMY_HASH
    _hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    _DUMMY_HASH = _hasher.hash("safexam-timing-equaliser")
    try:
        yield
    finally:
        _hasher, _DUMMY_HASH = saved
