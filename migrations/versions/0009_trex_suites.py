"""T-REX suites: every transaction of a market's suite (and the platform's) recorded by step

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23

``deployment_transactions`` held one token deployment per market. A market's ERC-3643 suite is
some twenty transactions, and platform-wide contracts (the ClaimIssuer, the shared country
module, the embedded stablecoin) belong to no market, so a record now names its *subject*
(the market's id, or ``@platform``) and its *step*; at most one record per (subject, step)
is open. Calls create no contract and mint to nobody: ``contract_address`` and ``holder``
become optional, and so does ``market_id`` (platform records). Existing records were
deployments of the retired ``RwaToken``: their step is ``token``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies: a migration must not change when tables.py does.
OPEN_DEPLOYMENT = "state IN ('signed', 'sent', 'mined')"
TABLE = "deployment_transactions"


def upgrade() -> None:
    # Partial indexes are dropped and created outside the batch: SQLite's table copy would
    # not carry their WHERE clause.
    op.drop_index("uq_deployment_transactions_open_market", table_name=TABLE)
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("subject", sa.String(36), nullable=True))
        batch.add_column(sa.Column("step", sa.String(64), nullable=False, server_default="token"))
        batch.alter_column("market_id", existing_type=sa.String(36), nullable=True)
        batch.alter_column("contract_address", existing_type=sa.String(42), nullable=True)
        batch.alter_column("holder", existing_type=sa.String(42), nullable=True)
    op.execute(sa.text(f"UPDATE {TABLE} SET subject = market_id"))
    with op.batch_alter_table(TABLE) as batch:
        batch.alter_column("subject", existing_type=sa.String(36), nullable=False)
        batch.alter_column("step", existing_type=sa.String(64), server_default=None)
    op.create_index(
        "uq_deployment_transactions_open_step",
        TABLE,
        ["subject", "step"],
        unique=True,
        sqlite_where=sa.text(OPEN_DEPLOYMENT),
        postgresql_where=sa.text(OPEN_DEPLOYMENT),
    )


def downgrade() -> None:
    # Only the records of the old shape survive a downgrade: one token deployment per market.
    op.drop_index("uq_deployment_transactions_open_step", table_name=TABLE)
    op.execute(sa.text(f"DELETE FROM {TABLE} WHERE step <> 'token' OR market_id IS NULL"))
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("step")
        batch.drop_column("subject")
        batch.alter_column("market_id", existing_type=sa.String(36), nullable=False)
        batch.alter_column("contract_address", existing_type=sa.String(42), nullable=False)
        batch.alter_column("holder", existing_type=sa.String(42), nullable=False)
    op.create_index(
        "uq_deployment_transactions_open_market",
        TABLE,
        ["market_id"],
        unique=True,
        sqlite_where=sa.text(OPEN_DEPLOYMENT),
        postgresql_where=sa.text(OPEN_DEPLOYMENT),
    )
