"""registration fields: fees, accredited-only, allowed countries; an asset id; exact JSON

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

``markets`` gains ``maker_fee_bps``, ``taker_fee_bps``, ``accredited_investors_only`` and
``allowed_countries`` (the seeds' optional registration fields). ``market_assets`` gains its
own ``id`` (existing assets take their market's id) and keeps its free-form JSON columns as
exact text, so that numbers come back exactly as sent (a JSON column is read back through
``float`` by the Postgres driver).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types: a migration must not change when tables.py does.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
FREE_FORM = ("compliance_documents", "regulatory_info", "attributes")


def upgrade() -> None:
    op.add_column("markets", sa.Column("maker_fee_bps", sa.Integer(), nullable=True))
    op.add_column("markets", sa.Column("taker_fee_bps", sa.Integer(), nullable=True))
    op.add_column(
        "markets",
        sa.Column(
            "accredited_investors_only", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )
    op.add_column(
        "markets",
        sa.Column("allowed_countries", sa.Text(), nullable=False, server_default="[]"),
    )
    op.add_column("market_assets", sa.Column("id", sa.String(36), nullable=True))
    op.execute("UPDATE market_assets SET id = market_id")
    # SQLite rebuilds market_assets (a child table: nothing references it).
    with op.batch_alter_table("market_assets") as batch:
        batch.alter_column("id", existing_type=sa.String(36), nullable=False)
        for column in FREE_FORM:
            batch.alter_column(
                column,
                existing_type=JSON,
                type_=sa.Text(),
                existing_nullable=False,
                postgresql_using=f"{column}::text",
            )


def downgrade() -> None:
    with op.batch_alter_table("market_assets") as batch:
        for column in FREE_FORM:
            batch.alter_column(
                column,
                existing_type=sa.Text(),
                type_=JSON,
                existing_nullable=False,
                postgresql_using=f"{column}::jsonb",
            )
        batch.drop_column("id")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): rebuilding markets would cascade.
    for column in (
        "allowed_countries",
        "accredited_investors_only",
        "taker_fee_bps",
        "maker_fee_bps",
    ):
        op.drop_column("markets", column)
