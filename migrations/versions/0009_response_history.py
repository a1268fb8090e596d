"""Every applied save of an answer, for the integrity review's timeline

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 11:30:00.000000

Starts empty: the saves made before it are known only by their last value.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "response_history",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("question_id", sa.UUID(), nullable=False),
        sa.Column("client_seq", sa.BigInteger(), nullable=False),
        sa.Column("answer", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["exam_sessions.id"],
            name=op.f("fk_response_history_session_id_exam_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_response_history")),
    )
    op.create_index(
        "ix_response_history_session_id_saved_at",
        "response_history",
        ["session_id", "saved_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_response_history_session_id_saved_at", table_name="response_history")
    op.drop_table("response_history")
