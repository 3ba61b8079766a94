"""trading: pairs, orders, trades

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23

``trading_pairs`` (unique symbol, at most one per market), ``orders`` (unique (pair, seq):
the order's id in the pair's matching core; unique (user, clientOrderId); a partial index of
the live orders of a pair, read when a book is rebuilt) and ``trades`` (unique (pair, seq)).
Amounts are exact unsigned integers like the ledger's.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types and rules: a migration must not change when tables.py does.
UINT = sa.String(78).with_variant(postgresql.NUMERIC(78, 0), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
PAIR_STATUSES = "status IN ('trading', 'halted', 'closed')"
ORDER_STATUSES = (
    "status IN ('OPEN', 'PARTIALLY_FILLED', 'FILLED', 'CANCELLED', 'REJECTED', 'EXPIRED', "
    "'PENDING_TRIGGER')"
)
LIVE_ORDER = "status IN ('OPEN', 'PARTIALLY_FILLED', 'PENDING_TRIGGER')"


def upgrade() -> None:
    op.create_table(
        "trading_pairs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("symbol", sa.String(25), nullable=False),
        sa.Column("base_token_id", sa.String(36), nullable=False),
        sa.Column("quote_token_id", sa.String(36), nullable=False),
        sa.Column("base_decimals", sa.Integer(), nullable=False),
        sa.Column("quote_decimals", sa.Integer(), nullable=False),
        sa.Column("tick", UINT, nullable=False),
        sa.Column("lot", UINT, nullable=False),
        sa.Column("min_quantity", UINT, nullable=False),
        sa.Column("max_quantity", UINT, nullable=False),
        sa.Column("maker_fee_bps", sa.Integer(), nullable=False),
        sa.Column("taker_fee_bps", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("market_id", sa.String(36), nullable=True),
        sa.Column("book_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_price", UINT, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_trading_pairs"),
        sa.ForeignKeyConstraint(
            ["base_token_id"], ["tokens.id"], name="fk_trading_pairs_base_token_id_tokens"
        ),
        sa.ForeignKeyConstraint(
            ["quote_token_id"], ["tokens.id"], name="fk_trading_pairs_quote_token_id_tokens"
        ),
        sa.UniqueConstraint("symbol", name="uq_trading_pairs_symbol"),
        sa.CheckConstraint(PAIR_STATUSES, name=op.f("ck_trading_pairs_status")),
    )
    op.create_index("uq_trading_pairs_market_id", "trading_pairs", ["market_id"], unique=True)
    op.create_table(
        "orders",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("pair_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("time_in_force", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("price", UINT, nullable=True),
        sa.Column("stop_price", UINT, nullable=True),
        sa.Column("quantity", UINT, nullable=True),
        sa.Column("quote_amount", UINT, nullable=True),
        sa.Column("post_only", sa.Boolean(), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=True),
        sa.Column("maker_fee_bps", sa.Integer(), nullable=False),
        sa.Column("taker_fee_bps", sa.Integer(), nullable=False),
        sa.Column("filled_quantity", UINT, nullable=False),
        sa.Column("filled_quote", UINT, nullable=False),
        sa.Column("fee", UINT, nullable=False),
        sa.Column("fee_accrued", UINT, nullable=False),
        sa.Column("locked", UINT, nullable=False),
        sa.Column("reject_reason", sa.String(64), nullable=True),
        sa.Column("rest_position", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.ForeignKeyConstraint(
            ["pair_id"], ["trading_pairs.id"], name="fk_orders_pair_id_trading_pairs"
        ),
        sa.UniqueConstraint("pair_id", "seq", name="uq_orders_pair_id_seq"),
        sa.UniqueConstraint("user_id", "client_order_id", name="uq_orders_user_id_client_order_id"),
        sa.CheckConstraint(ORDER_STATUSES, name=op.f("ck_orders_status")),
    )
    op.create_index("ix_orders_user_id_id", "orders", ["user_id", "id"])
    op.create_index(
        "ix_orders_live_pair_id_seq",
        "orders",
        ["pair_id", "seq"],
        sqlite_where=sa.text(LIVE_ORDER),
        postgresql_where=sa.text(LIVE_ORDER),
    )
    op.create_table(
        "trades",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("pair_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("price", UINT, nullable=False),
        sa.Column("quantity", UINT, nullable=False),
        sa.Column("maker_order_id", sa.String(36), nullable=False),
        sa.Column("taker_order_id", sa.String(36), nullable=False),
        sa.Column("maker_user_id", sa.String(200), nullable=False),
        sa.Column("taker_user_id", sa.String(200), nullable=False),
        sa.Column("taker_side", sa.String(4), nullable=False),
        sa.Column("maker_fee", UINT, nullable=False),
        sa.Column("taker_fee", UINT, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_trades"),
        sa.ForeignKeyConstraint(
            ["pair_id"], ["trading_pairs.id"], name="fk_trades_pair_id_trading_pairs"
        ),
        sa.UniqueConstraint("pair_id", "seq", name="uq_trades_pair_id_seq"),
    )
    op.create_index("ix_trades_maker_user_id_id", "trades", ["maker_user_id", "id"])
    op.create_index("ix_trades_taker_user_id_id", "trades", ["taker_user_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_trades_taker_user_id_id", table_name="trades")
    op.drop_index("ix_trades_maker_user_id_id", table_name="trades")
    op.drop_table("trades")
    op.drop_index("ix_orders_live_pair_id_seq", table_name="orders")
    op.drop_index("ix_orders_user_id_id", table_name="orders")
    op.drop_table("orders")
    op.drop_index("uq_trading_pairs_market_id", table_name="trading_pairs")
    op.drop_table("trading_pairs")
