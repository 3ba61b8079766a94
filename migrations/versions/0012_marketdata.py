"""market data: trades, candles, reference prices, asset valuations

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23

``marketdata_trades`` (one per (pair, seq in the stream ``pair:<id>``): the candle
aggregator's idempotency), ``marketdata_candles`` (versioned for conditional updates),
``reference_prices`` (accepted external prices) and ``asset_valuations`` (append-only, one
per (market, version)). Prices, quantities and valuations are exact decimal text.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types: a migration must not change when tables.py does.
TIMESTAMP = sa.DateTime(timezone=True)
DECIMAL_TEXT = sa.Text()


def upgrade() -> None:
    op.create_table(
        "marketdata_trades",
        sa.Column("pair_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("trade_id", sa.String(64), nullable=False),
        sa.Column("price", DECIMAL_TEXT, nullable=False),
        sa.Column("quantity", DECIMAL_TEXT, nullable=False),
        sa.Column("taker_side", sa.String(4), nullable=False),
        sa.Column("time", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("pair_id", "seq", name="pk_marketdata_trades"),
    )
    op.create_index(
        "ix_marketdata_trades_pair_id_time", "marketdata_trades", ["pair_id", "time", "seq"]
    )
    op.create_table(
        "marketdata_candles",
        sa.Column("pair_id", sa.String(64), nullable=False),
        sa.Column("interval", sa.String(4), nullable=False),
        sa.Column("open_time", TIMESTAMP, nullable=False),
        sa.Column("open", DECIMAL_TEXT, nullable=False),
        sa.Column("high", DECIMAL_TEXT, nullable=False),
        sa.Column("low", DECIMAL_TEXT, nullable=False),
        sa.Column("close", DECIMAL_TEXT, nullable=False),
        sa.Column("volume", DECIMAL_TEXT, nullable=False),
        sa.Column("quote_volume", DECIMAL_TEXT, nullable=False),
        sa.Column("trade_count", sa.Integer(), nullable=False),
        sa.Column("first_time", TIMESTAMP, nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_time", TIMESTAMP, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("pair_id", "interval", "open_time", name="pk_marketdata_candles"),
    )
    op.create_table(
        "reference_prices",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("price", DECIMAL_TEXT, nullable=False),
        sa.Column("observed_at", TIMESTAMP, nullable=False),
        sa.Column("fetched_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reference_prices"),
    )
    op.create_index(
        "ix_reference_prices_symbol_observed_at", "reference_prices", ["symbol", "observed_at"]
    )
    op.create_table(
        "asset_valuations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("market_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("valuation", DECIMAL_TEXT, nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("effective_at", TIMESTAMP, nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_asset_valuations"),
        sa.UniqueConstraint("market_id", "version", name="uq_asset_valuations_market_id_version"),
    )


def downgrade() -> None:
    op.drop_table("asset_valuations")
    op.drop_index("ix_reference_prices_symbol_observed_at", table_name="reference_prices")
    op.drop_table("reference_prices")
    op.drop_table("marketdata_candles")
    op.drop_index("ix_marketdata_trades_pair_id_time", table_name="marketdata_trades")
    op.drop_table("marketdata_trades")
