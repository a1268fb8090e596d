"""Organizations (tenants): users, questions and exams each belong to one; existing data
moves into the default organization; the deployment-wide operator role

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 04:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Sessions, responses, results, coding submissions and activity logs are
# reached through their exam, and jobs through their exam or requester, so
# only the three tables a query starts from carry the organization.
SCOPED = ("users", "questions", "exams")


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("slug", sa.Text(), nullable=False),
        sa.Column(
            "allowed_domains", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("time_zone", sa.Text(), server_default="UTC", nullable=False),
        sa.Column(
            "exam_defaults",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "slug ~ '^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$'",
            name=op.f("ck_organizations_slug_format"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organizations_slug")),
    )
    op.execute(
        "INSERT INTO organizations (id, name, slug) "
        "VALUES (gen_random_uuid(), 'Default organization', 'default')"
    )
    for table in SCOPED:
        op.add_column(table, sa.Column("organization_id", sa.UUID(), nullable=True))
        op.execute(
            f"UPDATE {table} SET organization_id = "  # noqa: S608 (a constant table name)
            "(SELECT id FROM organizations WHERE slug = 'default')"
        )
        op.alter_column(table, "organization_id", nullable=False)
        op.create_foreign_key(
            op.f(f"fk_{table}_organization_id_organizations"),
            table,
            "organizations",
            ["organization_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        op.create_index(op.f(f"ix_{table}_organization_id"), table, ["organization_id"])
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(
        op.f("ck_users_role"), "users", "role IN ('student', 'educator', 'admin', 'operator')"
    )
    op.add_column(
        "users", sa.Column("extra_minutes", sa.Integer(), server_default="0", nullable=False)
    )
    op.create_table(
        "invitations",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), server_default="educator", nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("invited_by", sa.UUID(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('educator', 'admin')", name=op.f("ck_invitations_role")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_invitations_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invited_by"],
            ["users.id"],
            name=op.f("fk_invitations_invited_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
    )
    op.create_index(op.f("ix_invitations_organization_id"), "invitations", ["organization_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_invitations_organization_id"), table_name="invitations")
    op.drop_table("invitations")
    op.drop_column("users", "extra_minutes")
    # Operators had no role before; they fall back to the admin they grew out of.
    op.execute("UPDATE users SET role = 'admin' WHERE role = 'operator'")
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(
        op.f("ck_users_role"), "users", "role IN ('student', 'educator', 'admin')"
    )
    for table in reversed(SCOPED):
        op.drop_index(op.f(f"ix_{table}_organization_id"), table_name=table)
        op.drop_constraint(
            op.f(f"fk_{table}_organization_id_organizations"), table, type_="foreignkey"
        )
        op.drop_column(table, "organization_id")
    op.drop_table("organizations")
