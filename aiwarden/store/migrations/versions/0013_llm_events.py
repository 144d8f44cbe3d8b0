"""llm_events and llm_feedback: LLM conversations (after the privacy policy) and late feedback

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "llm_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=200)),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("session_id", sa.String(length=200)),
        sa.Column("privacy", sa.String(length=10), nullable=False),
        sa.Column("input", sa.Text()),
        sa.Column("output", sa.Text()),
        sa.Column("context", sa.Text()),
        sa.Column("withheld", sa.Text()),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id", "request_id", name="uq_llm_events_model_request"),
    )
    op.create_index("ix_llm_events_flagged", "llm_events", ["model_id", "flagged", "ts"])
    op.create_table(
        "llm_feedback",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("comment", sa.Text()),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "request_id"),
    )


def downgrade() -> None:
    op.drop_table("llm_feedback")
    op.drop_index("ix_llm_events_flagged", table_name="llm_events")
    op.drop_table("llm_events")
