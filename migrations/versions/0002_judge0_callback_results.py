"""Judge0 callback mode: one row per test sent, holding its token and then its result

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:35:44.983951
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "judge0_tests",
        sa.Column("submission_id", sa.UUID(), nullable=False),
        sa.Column("test_index", sa.Integer(), nullable=False),
        sa.Column("judge0_token", sa.Text(), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("compile_output", sa.Text(), nullable=True),
        sa.Column("via", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "via IS NULL OR via IN ('callback', 'poll')", name=op.f("ck_judge0_tests_via")
        ),
        sa.CheckConstraint("test_index >= 0", name=op.f("ck_judge0_tests_test_index_nonnegative")),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["coding_submissions.id"],
            name=op.f("fk_judge0_tests_submission_id_coding_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", "test_index", name=op.f("pk_judge0_tests")),
    )


def downgrade() -> None:
    op.drop_table("judge0_tests")
