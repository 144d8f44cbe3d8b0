"""training_pipelines and training_runs: continuous training declarations and their runs

A run's row is its whole state machine (queued -> running -> succeeded / failed / blocked /
cancelled) plus its lineage: the data it read (content hash, rows, window), the code and
parameters, each gate's verdict with evidence, and the version it registered. ``holder`` and
``heartbeat_at`` tell a restarted server which runs were in flight when a process died.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_pipelines",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(length=200)),
        sa.Column("state", sa.Text()),  # JSON: trigger bookkeeping (last slot, labels seen)
        sa.PrimaryKeyConstraint("model_id"),
    )
    op.create_table(
        "training_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("trigger_detail", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=300)),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float()),
        sa.Column("finished_at", sa.Float()),
        sa.Column("heartbeat_at", sa.Float()),
        sa.Column("holder", sa.String(length=200)),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("gates", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=200)),
        sa.Column("run_dir", sa.Text()),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_training_runs_model", "training_runs", ["model_id", "created_at"])
    op.create_index("ix_training_runs_state", "training_runs", ["state"])


def downgrade() -> None:
    op.drop_index("ix_training_runs_state", table_name="training_runs")
    op.drop_index("ix_training_runs_model", table_name="training_runs")
    op.drop_table("training_runs")
    op.drop_table("training_pipelines")
