"""event_batches partitioned by day on PostgreSQL (range on max_ts), so retention drops a
day's partition instead of deleting its rows (aiwarden/store/partitions.py)

The rows stored so far become one partition, event_batches_legacy, covering every max_ts
below the end of tomorrow (or of its newest row's day, if later; below today if it is
empty): no row is copied. Its
primary key becomes (id, max_ts), as a partitioned table's must include the partition key;
ids still come from the same sequence. A DEFAULT partition takes rows of days without a
partition; day partitions from there on are made by the retention pass. SQLite: no change.

Revision ID: 0015
Revises: 0014
"""

import time

from alembic import op
from sqlalchemy import text

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

DAY = 86400
_COLUMNS = ("id BIGINT NOT NULL DEFAULT nextval('event_batches_id_seq'::regclass), "
            "model_id INTEGER NOT NULL, n_rows INTEGER NOT NULL, "
            "min_ts DOUBLE PRECISION NOT NULL, max_ts DOUBLE PRECISION NOT NULL, "
            "created_at DOUBLE PRECISION NOT NULL, data BYTEA NOT NULL")


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    newest = conn.execute(text("SELECT max(max_ts) FROM event_batches")).scalar()
    today = int(time.time() // DAY * DAY)
    bound = today  # an empty table: day partitions from today on
    if newest is not None:
        bound = max(today + 2 * DAY, int(newest // DAY * DAY + DAY))
    op.execute("ALTER TABLE event_batches RENAME TO event_batches_legacy")
    # a partition's primary key is the parent's: (id, max_ts), id still leading (seeks)
    op.execute("ALTER TABLE event_batches_legacy DROP CONSTRAINT event_batches_pkey, "
               "ADD CONSTRAINT event_batches_legacy_pkey PRIMARY KEY (id, max_ts)")
    op.execute("ALTER INDEX ix_event_batches_model_ts RENAME TO ix_event_batches_legacy_model_ts")
    op.execute(f"CREATE TABLE event_batches ({_COLUMNS}, CONSTRAINT event_batches_pkey "
               "PRIMARY KEY (id, max_ts)) PARTITION BY RANGE (max_ts)")
    op.execute("ALTER TABLE event_batches ALTER COLUMN data SET STORAGE EXTERNAL")
    op.execute("ALTER TABLE event_batches_legacy ALTER COLUMN id DROP DEFAULT")
    op.execute("ALTER SEQUENCE event_batches_id_seq OWNED BY event_batches.id")
    op.execute("CREATE INDEX ix_event_batches_model_ts ON event_batches (model_id, max_ts)")
    op.execute(f"ALTER TABLE event_batches ATTACH PARTITION event_batches_legacy "
               f"FOR VALUES FROM (MINVALUE) TO ({bound})")
    op.execute("CREATE TABLE event_batches_default PARTITION OF event_batches DEFAULT")
    for day in range(bound, today + 4 * DAY, DAY):  # then the retention pass makes them
        op.execute(f"CREATE TABLE event_batches_p{time.strftime('%Y%m%d', time.gmtime(day))} "
                   f"PARTITION OF event_batches FOR VALUES FROM ({day}) TO ({day + DAY})")


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    op.execute(f"CREATE TABLE event_batches_plain ({_COLUMNS}, "
               "CONSTRAINT event_batches_plain_pkey PRIMARY KEY (id))")
    op.execute("INSERT INTO event_batches_plain SELECT * FROM event_batches")
    op.execute("ALTER SEQUENCE event_batches_id_seq OWNED BY event_batches_plain.id")
    op.execute("DROP TABLE event_batches CASCADE")
    op.execute("ALTER TABLE event_batches_plain RENAME TO event_batches")
    op.execute("ALTER TABLE event_batches RENAME CONSTRAINT event_batches_plain_pkey "
               "TO event_batches_pkey")
    op.execute("ALTER TABLE event_batches ALTER COLUMN data SET STORAGE EXTERNAL")
    op.execute("CREATE INDEX ix_event_batches_model_ts ON event_batches (model_id, max_ts)")
