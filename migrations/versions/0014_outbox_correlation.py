"""outbox: the correlation id of what wrote each message

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23

The request (or WebSocket connection, or job) that wrote an event is remembered with its
outbox message, so the reactions the relay runs later, and the jobs they enqueue (a token
deployment after an approval, say), log with the same correlation id. Existing rows have none.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("correlation_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("correlation_id")
