"""quarantine: remember the version whose quarantine count a row went into

Replaying or releasing a quarantined row takes it out of that count (it enters the
profiles instead), so the row must say which version's buckets counted it. NULL: counted
in none (the model had no version yet). Rows kept before this revision get 0, read as
"the version serving when it is replayed" (the serving version is where ingest counted
them, unless the champion moved since).

On SQLite the table is rebuilt with AUTOINCREMENT: a replayed or dropped row's id is never
given to another row, so a retried replay or drop of that id cannot reach a different one
(PostgreSQL's sequence never reuses ids anyway).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("quarantine", recreate="always" if sqlite else "auto",
                              table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("version_id", sa.Integer(), nullable=True))
    op.execute("UPDATE quarantine SET version_id = 0")


def downgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("version_id")
