"""``safexam orgs create`` and ``safexam users create --org``, as an operator types them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from safexam.orgs.models import Organization
from tests.helpers import ServiceUrls
from tests.test_cli import _env, _safexam


async def test_orgs_create_then_a_user_in_it(services: ServiceUrls, db: AsyncSession) -> None:
    env = _env(services)
    made = await _safexam(
        env, "orgs", "create", "--name", "Riverside College", "--slug", "riverside",
        "--domains", "riverside.edu, @Students.Riverside.edu", "--time-zone", "Europe/Paris",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "created organization riverside" in made.stdout
    org = (
        await db.execute(select(Organization).where(Organization.slug == "riverside"))
    ).scalar_one()
    assert org.name == "Riverside College" and org.time_zone == "Europe/Paris"
    assert org.allowed_domains == ["riverside.edu", "students.riverside.edu"]

    again = await _safexam(env, "orgs", "create", "--name", "Again", "--slug", "riverside")
    assert again.returncode != 0 and "riverside" in again.stderr and "exists" in again.stderr
    bad_zone = await _safexam(
        env, "orgs", "create", "--name", "X", "--slug", "x", "--time-zone", "Mars/Olympus"
    )
    assert bad_zone.returncode != 0 and "--time-zone" in bad_zone.stderr
    bad_slug = await _safexam(env, "orgs", "create", "--name", "X", "--slug", "Not A Slug")
    assert bad_slug.returncode != 0 and "--slug" in bad_slug.stderr
    bad_domain = await _safexam(
        env, "orgs", "create", "--name", "X", "--slug", "x", "--domains", "not a domain"
    )
    assert bad_domain.returncode != 0 and "--domains" in bad_domain.stderr
    assert "Traceback" not in bad_zone.stderr + bad_slug.stderr + bad_domain.stderr

    user = await _safexam(
        env, "users", "create", "--email", "t@riverside.edu", "--name", "T", "--role", "admin",
        "--org", "riverside", "--no-password",
    )  # fmt: skip
    assert user.returncode == 0, user.stderr
    placed = (await db.execute(select(User).where(User.email == "t@riverside.edu"))).scalar_one()
    assert placed.organization_id == org.id and placed.role == "admin"
    nowhere = await _safexam(
        env, "users", "create", "--email", "u@x.edu", "--name", "U", "--role", "student",
        "--org", "nowhere", "--no-password",
    )  # fmt: skip
    assert nowhere.returncode != 0 and "--org" in nowhere.stderr

    listed = await _safexam(env, "orgs", "list")
    assert listed.returncode == 0 and "riverside\tRiverside College\t1 users" in listed.stdout
