"""outbox: an index of the messages not yet published

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23

The relay publishes in a lane of its own that never waits behind reactions still to run; it
reads ``published_at IS NULL`` in position order, which this partial index serves even when
thousands of published messages wait for their reactions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNPUBLISHED = "published_at IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["position"],
        sqlite_where=sa.text(UNPUBLISHED),
        postgresql_where=sa.text(UNPUBLISHED),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
