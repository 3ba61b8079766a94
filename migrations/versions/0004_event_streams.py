"""event streams: a stream and a per-stream sequence on every event

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Every event (history and outbox) gets ``stream`` (``market:<aggregate id>``) and
``stream_seq`` (1, 2, ... within the stream; unique per stream). The outbox tracks the bus
publication (``published_at``) apart from the reactions (``reacted_at``), so a failed
reaction is retried without publishing the event again. ``leases`` holds named leases (the
outbox relay's leader). Existing events are numbered in their history order; existing
published outbox rows count as reacted to.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types and predicates: a migration must not change with tables.py.
TIMESTAMP = sa.DateTime(timezone=True)
UNPUBLISHED = "published_at IS NULL"
UNFINISHED = "published_at IS NULL OR reacted_at IS NULL"
# The tables keep AUTOINCREMENT when SQLite's batch mode rebuilds them.
AUTOINCREMENT = {"sqlite_autoincrement": True}


def upgrade() -> None:
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    for table in ("market_events", "outbox"):
        op.add_column(table, sa.Column("stream", sa.Text(), nullable=True))
        op.add_column(table, sa.Column("stream_seq", sa.BigInteger(), nullable=True))
    op.add_column("outbox", sa.Column("reacted_at", TIMESTAMP, nullable=True))

    op.execute("UPDATE market_events SET stream = 'market:' || aggregate_id")
    op.execute(
        "UPDATE market_events SET stream_seq = (SELECT COUNT(*) FROM market_events AS e"
        " WHERE e.stream = market_events.stream AND e.seq <= market_events.seq)"
    )
    op.execute("UPDATE outbox SET stream = 'market:' || aggregate_id, reacted_at = published_at")
    op.execute(
        "UPDATE outbox SET stream_seq = COALESCE("
        "(SELECT e.stream_seq FROM market_events AS e WHERE e.id = outbox.event_id),"
        " (SELECT COUNT(*) FROM outbox AS o"
        " WHERE o.stream = outbox.stream AND o.position <= outbox.position))"
    )

    for table in ("market_events", "outbox"):
        with op.batch_alter_table(table, table_kwargs=AUTOINCREMENT) as batch:
            batch.alter_column("stream", existing_type=sa.Text(), nullable=False)
            batch.alter_column("stream_seq", existing_type=sa.BigInteger(), nullable=False)
        op.create_index(
            f"uq_{table}_stream_stream_seq", table, ["stream", "stream_seq"], unique=True
        )
    op.create_index(
        "ix_outbox_unfinished",
        "outbox",
        ["position"],
        sqlite_where=sa.text(UNFINISHED),
        postgresql_where=sa.text(UNFINISHED),
    )

    op.create_table(
        "leases",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_index("ix_outbox_unfinished", table_name="outbox")
    # A message published but not reacted to would count as done under the old schema.
    op.execute("UPDATE outbox SET published_at = NULL WHERE reacted_at IS NULL")
    for table in ("outbox", "market_events"):
        op.drop_index(f"uq_{table}_stream_stream_seq", table_name=table)
        with op.batch_alter_table(table, table_kwargs=AUTOINCREMENT) as batch:
            batch.drop_column("stream_seq")
            batch.drop_column("stream")
            if table == "outbox":
                batch.drop_column("reacted_at")
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["position"],
        sqlite_where=sa.text(UNPUBLISHED),
        postgresql_where=sa.text(UNPUBLISHED),
    )
