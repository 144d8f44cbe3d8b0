"""notification attempts: drop the far end's reply text stored by earlier versions

Before the egress policy, a failed delivery stored "HTTP 500: <first 200 characters of the
receiver's body>" (or "SMTP 550: <reply>"), and the attempt log is readable by every
``read`` key. This keeps the status and replaces the text with the fixed form now written:
"HTTP 500 from receiver". The API also cuts such texts on the way out (a process of an
older version may still write them during an upgrade); this removes them from storage.

Revision ID: 0010
Revises: 0009
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# frozen here on purpose: a migration must not change when live code does
_OLD_REPLY = re.compile(r"(HTTP|SMTP) (\d{3})(?! from receiver)(.*?)"
                        r"(?P<gave_up> \(gave up after \d+ tries in \d+s\))?", re.S)


def _cut(text: str) -> str | None:
    m = _OLD_REPLY.fullmatch(text)
    return None if m is None else f"{m[1]} {m[2]} from receiver{m['gave_up'] or ''}"


def _scrub(table: str, column: str) -> None:
    conn = op.get_bind()
    t = sa.table(table, sa.column("id", sa.Integer()), sa.column(column, sa.Text()))
    col = t.c[column]
    rows = conn.execute(sa.select(t.c.id, col).where(
        sa.or_(col.like("HTTP %"), col.like("SMTP %")))).all()
    for row_id, text in rows:
        cut = _cut(text or "")
        if cut is not None and cut != text:
            conn.execute(sa.update(t).where(t.c.id == row_id).values({column: cut}))


def upgrade() -> None:
    _scrub("notification_attempts", "error")
    _scrub("notification_outbox", "last_error")


def downgrade() -> None:
    pass  # the removed text is not kept anywhere, by design
