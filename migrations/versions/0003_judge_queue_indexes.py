"""The judge queue's place and wait: partial indexes on queued, running and finished submissions

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 17:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_coding_submissions_queued",
        "coding_submissions",
        ["created_at"],
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.create_index(
        "ix_coding_submissions_running",
        "coding_submissions",
        ["started_at"],
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_index(
        "ix_coding_submissions_done",
        "coding_submissions",
        ["finished_at"],
        postgresql_where=sa.text("status = 'done'"),
    )


def downgrade() -> None:
    op.drop_index("ix_coding_submissions_done", table_name="coding_submissions")
    op.drop_index("ix_coding_submissions_running", table_name="coding_submissions")
    op.drop_index("ix_coding_submissions_queued", table_name="coding_submissions")
