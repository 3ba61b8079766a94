"""the ledger: accounts and postings

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

Accounts per (token, owner) with available and locked, per-token supply counters, and the
journal of posting sets (unique key) with their postings and supply changes. Amounts are
NUMERIC(78, 0) on Postgres and 78 zero-padded digits on SQLite, each with a CHECK keeping
it within 0 .. 2**256 - 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types and rules: a migration must not change when tables.py does.
UINT = sa.String(78).with_variant(postgresql.NUMERIC(78, 0), "postgresql")
POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
MAX_UINT256 = 2**256 - 1
PADDED_MAX = f"{MAX_UINT256:078d}"
BUCKETS = "bucket IN ('available', 'locked')"
SIDES = "side IN ('debit', 'credit')"
COUNTERS = "counter IN ('minted', 'deposited', 'withdrawn', 'burned')"


def _range(table: str, column: str) -> sa.CheckConstraint:
    if op.get_context().dialect.name == "postgresql":
        rule = f"{column} >= 0 AND {column} <= {MAX_UINT256}"
    else:
        rule = (
            f"length({column}) = 78 AND {column} NOT GLOB '*[^0-9]*' AND {column} <= '{PADDED_MAX}'"
        )
    return sa.CheckConstraint(rule, name=op.f(f"ck_{table}_{column}_range"))


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("token", sa.String(100), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("available", UINT, nullable=False),
        sa.Column("locked", UINT, nullable=False),
        _range("ledger_accounts", "available"),
        _range("ledger_accounts", "locked"),
        sa.PrimaryKeyConstraint("token", "owner", name="pk_ledger_accounts"),
    )
    op.create_index("ix_ledger_accounts_owner_token", "ledger_accounts", ["owner", "token"])

    op.create_table(
        "ledger_supply",
        sa.Column("token", sa.String(100), nullable=False),
        sa.Column("minted", UINT, nullable=False),
        sa.Column("deposited", UINT, nullable=False),
        sa.Column("withdrawn", UINT, nullable=False),
        sa.Column("burned", UINT, nullable=False),
        *(_range("ledger_supply", c) for c in ("minted", "deposited", "withdrawn", "burned")),
        sa.PrimaryKeyConstraint("token", name="pk_ledger_supply"),
    )

    op.create_table(
        "ledger_posting_sets",
        sa.Column("seq", POSITION, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_ledger_posting_sets"),
        sa.UniqueConstraint("key", name="uq_ledger_posting_sets_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_ledger_posting_sets_reference", "ledger_posting_sets", ["reference"])

    op.create_table(
        "ledger_postings",
        sa.Column("posting_set_seq", POSITION, autoincrement=False, nullable=False),
        sa.Column("line", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("token", sa.String(100), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("bucket", sa.String(16), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("amount", UINT, nullable=False),
        sa.CheckConstraint(BUCKETS, name=op.f("ck_ledger_postings_bucket")),
        sa.CheckConstraint(SIDES, name=op.f("ck_ledger_postings_side")),
        _range("ledger_postings", "amount"),
        sa.ForeignKeyConstraint(
            ["posting_set_seq"],
            ["ledger_posting_sets.seq"],
            name="fk_ledger_postings_posting_set_seq_ledger_posting_sets",
        ),
        sa.PrimaryKeyConstraint("posting_set_seq", "line", name="pk_ledger_postings"),
    )
    op.create_index(
        "ix_ledger_postings_token_owner",
        "ledger_postings",
        ["token", "owner", "posting_set_seq"],
    )

    op.create_table(
        "ledger_supply_changes",
        sa.Column("posting_set_seq", POSITION, autoincrement=False, nullable=False),
        sa.Column("line", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("token", sa.String(100), nullable=False),
        sa.Column("counter", sa.String(16), nullable=False),
        sa.Column("amount", UINT, nullable=False),
        sa.CheckConstraint(COUNTERS, name=op.f("ck_ledger_supply_changes_counter")),
        _range("ledger_supply_changes", "amount"),
        sa.ForeignKeyConstraint(
            ["posting_set_seq"],
            ["ledger_posting_sets.seq"],
            name="fk_ledger_supply_changes_posting_set_seq_ledger_posting_sets",
        ),
        sa.PrimaryKeyConstraint("posting_set_seq", "line", name="pk_ledger_supply_changes"),
    )


def downgrade() -> None:
    op.drop_table("ledger_supply_changes")
    op.drop_index("ix_ledger_postings_token_owner", table_name="ledger_postings")
    op.drop_table("ledger_postings")
    op.drop_index("ix_ledger_posting_sets_reference", table_name="ledger_posting_sets")
    op.drop_table("ledger_posting_sets")
    op.drop_table("ledger_supply")
    op.drop_index("ix_ledger_accounts_owner_token", table_name="ledger_accounts")
    op.drop_table("ledger_accounts")
