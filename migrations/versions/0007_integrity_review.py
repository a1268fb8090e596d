"""Code similarity pairs and clusters, and educators' integrity reviews of sessions

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 04:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DECISION = "decision IN ('open', 'reviewed', 'dismissed', 'escalated')"


def upgrade() -> None:
    op.create_table(
        "similarity_pairs",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("exam_id", sa.UUID(), nullable=False),
        sa.Column("question_id", sa.UUID(), nullable=False),
        sa.Column("language", sa.Text(), nullable=False),
        sa.Column("session_a_id", sa.UUID(), nullable=False),
        sa.Column("session_b_id", sa.UUID(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("a_coverage", sa.Float(), nullable=False),
        sa.Column("b_coverage", sa.Float(), nullable=False),
        sa.Column(
            "regions", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("a_source", sa.Text(), nullable=False),
        sa.Column("b_source", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text(), server_default="open", nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.UUID(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(_DECISION, name=op.f("ck_similarity_pairs_decision")),
        sa.CheckConstraint("session_a_id < session_b_id", name=op.f("ck_similarity_pairs_ordered")),
        sa.ForeignKeyConstraint(
            ["exam_id"],
            ["exams.id"],
            name=op.f("fk_similarity_pairs_exam_id_exams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["questions.id"],
            name=op.f("fk_similarity_pairs_question_id_questions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_a_id"],
            ["exam_sessions.id"],
            name=op.f("fk_similarity_pairs_session_a_id_exam_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_b_id"],
            ["exam_sessions.id"],
            name=op.f("fk_similarity_pairs_session_b_id_exam_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["users.id"],
            name=op.f("fk_similarity_pairs_decided_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_similarity_pairs")),
        sa.UniqueConstraint(
            "question_id", "session_a_id", "session_b_id", name=op.f("uq_similarity_pair")
        ),
    )
    op.create_index("ix_similarity_pairs_exam_id_score", "similarity_pairs", ["exam_id", "score"])
    op.create_table(
        "similarity_clusters",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("exam_id", sa.UUID(), nullable=False),
        sa.Column("question_id", sa.UUID(), nullable=False),
        sa.Column("language", sa.Text(), nullable=False),
        sa.Column("session_ids", postgresql.ARRAY(sa.UUID()), nullable=False),
        sa.Column("top_score", sa.Float(), nullable=False),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["exam_id"],
            ["exams.id"],
            name=op.f("fk_similarity_clusters_exam_id_exams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["questions.id"],
            name=op.f("fk_similarity_clusters_question_id_questions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_similarity_clusters")),
    )
    op.create_index("ix_similarity_clusters_exam_id", "similarity_clusters", ["exam_id"])
    op.create_table(
        "session_reviews",
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("exam_id", sa.UUID(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.UUID(), nullable=True),
        sa.Column(
            "decided_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(_DECISION, name=op.f("ck_session_reviews_decision")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["exam_sessions.id"],
            name=op.f("fk_session_reviews_session_id_exam_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["exam_id"],
            ["exams.id"],
            name=op.f("fk_session_reviews_exam_id_exams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["users.id"],
            name=op.f("fk_session_reviews_decided_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_session_reviews")),
    )
    op.create_index(op.f("ix_session_reviews_exam_id"), "session_reviews", ["exam_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_session_reviews_exam_id"), table_name="session_reviews")
    op.drop_table("session_reviews")
    op.drop_index("ix_similarity_clusters_exam_id", table_name="similarity_clusters")
    op.drop_table("similarity_clusters")
    op.drop_index("ix_similarity_pairs_exam_id_score", table_name="similarity_pairs")
    op.drop_table("similarity_pairs")
