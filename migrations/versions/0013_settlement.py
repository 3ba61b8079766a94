"""trade settlement: status, batch, transaction hash and error on each trade

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23

Every trade is ``PENDING`` until the ``execute-blockchain-settlement`` job puts it into a
batch (``SENT``) and the batch's ``batchForcedTransfer`` is mined (``SETTLED``) or refused
(``FAILED``, tried again). Existing trades start ``PENDING``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types: a migration must not change when tables.py does.
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("trades") as batch:
        batch.add_column(
            sa.Column("settlement_status", sa.String(8), nullable=False, server_default="PENDING")
        )
        batch.add_column(sa.Column("settlement_batch_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("settlement_tx_hash", sa.String(66), nullable=True))
        batch.add_column(sa.Column("settlement_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("settlement_updated_at", TIMESTAMP, nullable=True))
        batch.create_check_constraint(
            "ck_trades_settlement_status",
            "settlement_status IN ('PENDING', 'SENT', 'SETTLED', 'FAILED')",
        )
        batch.create_index("ix_trades_settlement", ["pair_id", "settlement_status", "seq"])
        batch.create_index("ix_trades_settlement_batch_id", ["settlement_batch_id"])


def downgrade() -> None:
    with op.batch_alter_table("trades") as batch:
        batch.drop_index("ix_trades_settlement_batch_id")
        batch.drop_index("ix_trades_settlement")
        batch.drop_constraint("ck_trades_settlement_status", type_="check")
        batch.drop_column("settlement_updated_at")
        batch.drop_column("settlement_error")
        batch.drop_column("settlement_tx_hash")
        batch.drop_column("settlement_batch_id")
        batch.drop_column("settlement_status")
