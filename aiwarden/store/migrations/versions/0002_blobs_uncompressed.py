"""PostgreSQL: store compressed blobs as they are; compare ids bytewise

Revision ID: 0002
Revises: 0001

Event batches (zstd Parquet) and bucket partials (zlib) are compressed already;
PostgreSQL's default TOAST storage would run pglz over them again on every insert,
which cost more than the rest of a bulk ingest. Prediction ids are opaque keys: the
"C" collation makes their index compare bytes instead of locale rules. SQLite already
does both.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BLOBS = (("event_batches", "data"), ("bucket_profiles", "data"), ("model_versions", "reference"),
          ("model_versions", "sample"))


_IDS = ("predictions", "labels")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column in _BLOBS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTERNAL")
        for table in _IDS:
            op.execute(f'ALTER TABLE {table} ALTER COLUMN prediction_id TYPE varchar(200) '
                       'COLLATE "C"')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column in _BLOBS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTENDED")
        for table in _IDS:
            op.execute(f'ALTER TABLE {table} ALTER COLUMN prediction_id TYPE varchar(200) '
                       'COLLATE "default"')
