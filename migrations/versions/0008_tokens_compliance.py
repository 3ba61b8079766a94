"""tokens and compliance records

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23

``tokens``: every token the ledger counts (the ledger keys accounts by ``tokens.id``); the
symbol is unique, the contract address and the market unique when set. ``compliance_records``:
one general record per user (scope ``*``) and one per (user, token), versioned.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types and rules: a migration must not change when tables.py does.
TIMESTAMP = sa.DateTime(timezone=True)
TOKEN_TYPES = "type IN ('RWA', 'CRYPTO', 'STABLE')"
TOKEN_DECIMALS = "decimals BETWEEN 0 AND 36"
KYC_STATUSES = "kyc_status IN ('PENDING', 'APPROVED', 'REJECTED', 'EXPIRED')"
COMPLIANCE_SCOPE = "(token_id IS NULL AND scope = '*') OR scope = token_id"


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("symbol", sa.String(12), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("contract_address", sa.String(42), nullable=True),
        sa.Column("market_id", sa.String(36), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(TOKEN_TYPES, name=op.f("ck_tokens_type")),
        sa.CheckConstraint(TOKEN_DECIMALS, name=op.f("ck_tokens_decimals")),
        sa.ForeignKeyConstraint(["market_id"], ["markets.id"], name="fk_tokens_market_id_markets"),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.UniqueConstraint("symbol", name="uq_tokens_symbol"),
    )
    op.create_index("uq_tokens_contract_address", "tokens", ["contract_address"], unique=True)
    op.create_index("uq_tokens_market_id", "tokens", ["market_id"], unique=True)
    op.create_index("ix_tokens_type_id", "tokens", ["type", "id"])

    op.create_table(
        "compliance_records",
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("scope", sa.String(36), nullable=False),
        sa.Column("token_id", sa.String(36), nullable=True),
        sa.Column("kyc_status", sa.String(16), nullable=False),
        sa.Column("whitelisted", sa.Boolean(), nullable=False),
        sa.Column("accredited", sa.Boolean(), nullable=False),
        sa.Column("jurisdiction", sa.String(2), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(KYC_STATUSES, name=op.f("ck_compliance_records_kyc_status")),
        sa.CheckConstraint(COMPLIANCE_SCOPE, name=op.f("ck_compliance_records_scope")),
        sa.ForeignKeyConstraint(
            ["token_id"], ["tokens.id"], name="fk_compliance_records_token_id_tokens"
        ),
        sa.PrimaryKeyConstraint("user_id", "scope", name="pk_compliance_records"),
    )
    op.create_index("ix_compliance_records_expires_at", "compliance_records", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_compliance_records_expires_at", table_name="compliance_records")
    op.drop_table("compliance_records")
    op.drop_index("ix_tokens_type_id", table_name="tokens")
    op.drop_index("uq_tokens_market_id", table_name="tokens")
    op.drop_index("uq_tokens_contract_address", table_name="tokens")
    op.drop_table("tokens")
