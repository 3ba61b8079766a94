"""markets, market assets, the event history and the outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types: a migration must not change when tables.py does.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
LIVE_MARKET = "status NOT IN ('rejected', 'archived')"
UNPUBLISHED = "published_at IS NULL"


def _event_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("aggregate_id", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Text(), nullable=False),
        sa.Column("actor_type", sa.Text(), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "markets",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("asset_type", sa.String(32), nullable=False),
        sa.Column("issuer_id", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.Text(), nullable=True),
        sa.Column("token_symbol", sa.Text(), nullable=False),
        sa.Column("token_name", sa.Text(), nullable=False),
        sa.Column("total_supply", sa.Text(), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("tick_size", sa.Text(), nullable=True),
        sa.Column("lot_size", sa.Text(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("contract_address", sa.Text(), nullable=True),
        sa.Column("deployment_tx_hash", sa.Text(), nullable=True),
        sa.Column("approved_by", sa.Text(), nullable=True),
        sa.Column("approved_at", TIMESTAMP, nullable=True),
        sa.Column("activated_at", TIMESTAMP, nullable=True),
        sa.Column("rejected_by", sa.Text(), nullable=True),
        sa.Column("rejected_at", TIMESTAMP, nullable=True),
        sa.Column("rejected_reason", sa.Text(), nullable=True),
        sa.Column("activation_attempts", sa.Integer(), nullable=False),
        sa.Column("activation_error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_markets"),
    )
    op.create_index("ix_markets_status_id", "markets", ["status", "id"])
    op.create_index("ix_markets_asset_type_id", "markets", ["asset_type", "id"])
    op.create_index("ix_markets_issuer_id_id", "markets", ["issuer_id", "id"])
    op.create_index(
        "uq_markets_live_token_symbol",
        "markets",
        ["token_symbol"],
        unique=True,
        sqlite_where=sa.text(LIVE_MARKET),
        postgresql_where=sa.text(LIVE_MARKET),
    )

    op.create_table(
        "market_assets",
        sa.Column("market_id", sa.String(36), nullable=False),
        sa.Column("valuation", sa.Text(), nullable=True),
        sa.Column("currency", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("compliance_documents", JSON, nullable=False),
        sa.Column("regulatory_info", JSON, nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name="fk_market_assets_market_id_markets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("market_id", name="pk_market_assets"),
    )

    op.create_table(
        "market_events",
        sa.Column("seq", POSITION, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        *_event_columns(),
        sa.PrimaryKeyConstraint("seq", name="pk_market_events"),
        sa.UniqueConstraint("id", name="uq_market_events_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_market_events_aggregate_id_seq", "market_events", ["aggregate_id", "seq"])

    op.create_table(
        "outbox",
        sa.Column("position", POSITION, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        *_event_columns(),
        sa.Column("published_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("position", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["position"],
        sqlite_where=sa.text(UNPUBLISHED),
        postgresql_where=sa.text(UNPUBLISHED),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_market_events_aggregate_id_seq", table_name="market_events")
    op.drop_table("market_events")
    op.drop_table("market_assets")
    op.drop_index("uq_markets_live_token_symbol", table_name="markets")
    op.drop_index("ix_markets_issuer_id_id", table_name="markets")
    op.drop_index("ix_markets_asset_type_id", table_name="markets")
    op.drop_index("ix_markets_status_id", table_name="markets")
    op.drop_table("markets")
