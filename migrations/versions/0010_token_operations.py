"""mints, transfers, deposits, withdrawals

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23

``mints`` (one per (token, Idempotency-Key)), ``transfers``, ``withdrawals`` and
``blockchain_events`` (incoming Transfer logs, one per (tx hash, log index)); every record is
versioned for conditional updates. The deposit scanner's position per token is a row of the
existing ``cursors`` table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types and rules: a migration must not change when tables.py does.
UINT = sa.String(78).with_variant(postgresql.NUMERIC(78, 0), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
MAX_UINT256 = 2**256 - 1
PADDED_MAX = f"{MAX_UINT256:078d}"
OPERATION_STATUSES = "status IN ('PENDING', 'COMPLETED', 'FAILED')"
WITHDRAWAL_STATUSES = (
    "status IN ('PENDING_APPROVAL', 'APPROVED', 'SENT', 'COMPLETED', 'REJECTED', 'FAILED')"
)
DEPOSIT_STATUSES = "status IN ('PENDING', 'CREDITED')"


def _range(table: str, column: str) -> sa.CheckConstraint:
    if op.get_context().dialect.name == "postgresql":
        rule = f"{column} >= 0 AND {column} <= {MAX_UINT256}"
    else:
        rule = (
            f"length({column}) = 78 AND {column} NOT GLOB '*[^0-9]*' AND {column} <= '{PADDED_MAX}'"
        )
    return sa.CheckConstraint(rule, name=op.f(f"ck_{table}_{column}_range"))


def _common(table: str, statuses: str) -> list[sa.SchemaItem]:
    return [
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["token_id"], ["tokens.id"], name=f"fk_{table}_token_id_tokens"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.CheckConstraint(statuses, name=op.f(f"ck_{table}_status")),
        _range(table, "amount"),
    ]


def upgrade() -> None:
    op.create_table(
        "mints",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("token_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("amount", UINT, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("address", sa.String(42), nullable=True),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *_common("mints", OPERATION_STATUSES),
        sa.UniqueConstraint("token_id", "idempotency_key", name="uq_mints_token_id_key"),
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("token_id", sa.String(36), nullable=False),
        sa.Column("from_user_id", sa.String(200), nullable=False),
        sa.Column("to_user_id", sa.String(200), nullable=False),
        sa.Column("amount", UINT, nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *_common("transfers", OPERATION_STATUSES),
    )
    op.create_index("ix_transfers_status_id", "transfers", ["status", "id"])
    op.create_table(
        "withdrawals",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("token_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("amount", UINT, nullable=False),
        sa.Column("to_address", sa.String(42), nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *_common("withdrawals", WITHDRAWAL_STATUSES),
    )
    op.create_index("ix_withdrawals_user_id_id", "withdrawals", ["user_id", "id"])
    op.create_table(
        "blockchain_events",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("token_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("amount", UINT, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("credited_at", TIMESTAMP, nullable=True),
        sa.Column("sweep_tx_hash", sa.String(66), nullable=True),
        *_common("blockchain_events", DEPOSIT_STATUSES),
        sa.UniqueConstraint("tx_hash", "log_index", name="uq_blockchain_events_tx_hash_log_index"),
    )
    op.create_index("ix_blockchain_events_user_id_id", "blockchain_events", ["user_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_blockchain_events_user_id_id", table_name="blockchain_events")
    op.drop_table("blockchain_events")
    op.drop_index("ix_withdrawals_user_id_id", table_name="withdrawals")
    op.drop_table("withdrawals")
    op.drop_index("ix_transfers_status_id", table_name="transfers")
    op.drop_table("transfers")
    op.drop_table("mints")
