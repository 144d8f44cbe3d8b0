"""Find quarantined rows by prediction id, so a retried bad row is kept once

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_quarantine_prediction", "quarantine", ["model_id", "prediction_id"])


def downgrade() -> None:
    op.drop_index("ix_quarantine_prediction", table_name="quarantine")
