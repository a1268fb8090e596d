"""Onboarding requests sent from the landing page's "Talk to us" form

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 04:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "onboarding_requests",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("institution", sa.Text(), nullable=False),
        sa.Column("contact_name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("size", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "size IN ('under_100', '100_to_1000', '1000_to_10000', 'over_10000')",
            name=op.f("ck_onboarding_requests_size"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onboarding_requests")),
    )
    op.create_index(
        "ix_onboarding_requests_created_at", "onboarding_requests", ["created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_onboarding_requests_created_at", table_name="onboarding_requests")
    op.drop_table("onboarding_requests")
