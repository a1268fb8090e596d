"""Question banks an educator may share with their organization

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 05:40:00.000000

Existing questions stay in no bank: their owner's alone, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "question_banks",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("owner_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("sharing", sa.Text(), server_default="private", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "sharing IN ('private', 'org_read', 'org_edit')",
            name=op.f("ck_question_banks_sharing"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_question_banks_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_question_banks_owner_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_question_banks")),
        sa.UniqueConstraint(
            "organization_id",
            "owner_id",
            "name",
            name=op.f("uq_question_banks_organization_id_owner_id_name"),
        ),
    )
    op.create_index(
        op.f("ix_question_banks_organization_id"), "question_banks", ["organization_id"]
    )
    op.add_column("questions", sa.Column("bank_id", sa.UUID(), nullable=True))
    op.create_foreign_key(
        op.f("fk_questions_bank_id_question_banks"),
        "questions",
        "question_banks",
        ["bank_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(op.f("ix_questions_bank_id"), "questions", ["bank_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_questions_bank_id"), table_name="questions")
    op.drop_constraint(op.f("fk_questions_bank_id_question_banks"), "questions", type_="foreignkey")
    op.drop_column("questions", "bank_id")
    op.drop_index(op.f("ix_question_banks_organization_id"), table_name="question_banks")
    op.drop_table("question_banks")
