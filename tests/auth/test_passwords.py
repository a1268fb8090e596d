"""argon2id hashes at the real cost (this file runs outside the cheap test profile)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from safexam.auth import passwords


@pytest.fixture(autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    # Overrides the package fixture: these tests need the production parameters.
    yield


def test_hash_is_argon2id_at_owasps_cost() -> None:
    hashed = passwords.hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert "m=19456,t=2,p=1" in hashed
    assert passwords.verify_password(hashed, "correct horse battery staple")
    assert not passwords.verify_password(hashed, "Correct horse battery staple")
    assert not passwords.needs_rehash(hashed)


def test_unknown_user_and_garbage_hashes_never_verify() -> None:
    assert not passwords.verify_password(None, "safexam-timing-equaliser")
    assert not passwords.verify_password("not-a-hash", "anything")


def test_cheap_hashes_are_upgraded_after_the_test_profile() -> None:
    with passwords.cheap_hashing():
        cheap = passwords.hash_password("pw-pw-pw-pw")
        assert "m=1024,t=1" in cheap
    assert passwords.verify_password(cheap, "pw-pw-pw-pw")
    assert passwords.needs_rehash(cheap)


def test_hashes_of_the_earlier_cost_still_verify_and_are_redone() -> None:
    earlier = PasswordHasher().hash("pw-pw-pw-pw")  # argon2-cffi's default: 64 MiB, t=3
    assert "m=65536,t=3" in earlier
    assert passwords.verify_password(earlier, "pw-pw-pw-pw")
    assert passwords.needs_rehash(earlier)
