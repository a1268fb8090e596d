"""argon2id password hashing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["cheap_hashing", "hash_password", "needs_rehash", "verify_password"]

_hasher = PasswordHasher()
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
