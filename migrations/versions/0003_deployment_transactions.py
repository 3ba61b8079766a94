"""deployment transactions recorded before they are sent (one market, one contract)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies: a migration must not change when tables.py does.
TIMESTAMP = sa.DateTime(timezone=True)
DEPLOYMENT_STATES = "state IN ('signed', 'sent', 'mined', 'failed', 'superseded')"
OPEN_DEPLOYMENT = "state IN ('signed', 'sent', 'mined')"


def upgrade() -> None:
    op.create_table(
        "deployment_transactions",
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("market_id", sa.String(36), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("signer", sa.String(42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("raw_transaction", sa.Text(), nullable=False),
        sa.Column("contract_address", sa.String(42), nullable=False),
        sa.Column("holder", sa.String(42), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(DEPLOYMENT_STATES, name=op.f("ck_deployment_transactions_state")),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name=op.f("fk_deployment_transactions_market_id_markets"),
        ),
        sa.PrimaryKeyConstraint("tx_hash", name=op.f("pk_deployment_transactions")),
    )
    op.create_index(
        "uq_deployment_transactions_open_market",
        "deployment_transactions",
        ["market_id"],
        unique=True,
        sqlite_where=sa.text(OPEN_DEPLOYMENT),
        postgresql_where=sa.text(OPEN_DEPLOYMENT),
    )
    op.create_index(
        "ix_deployment_transactions_signer_nonce",
        "deployment_transactions",
        ["signer", "nonce"],
    )
    op.create_index(
        "ix_deployment_transactions_state_block_number",
        "deployment_transactions",
        ["state", "block_number"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_deployment_transactions_state_block_number", table_name="deployment_transactions"
    )
    op.drop_index("ix_deployment_transactions_signer_nonce", table_name="deployment_transactions")
    op.drop_index("uq_deployment_transactions_open_market", table_name="deployment_transactions")
    op.drop_table("deployment_transactions")
