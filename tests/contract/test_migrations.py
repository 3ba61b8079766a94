"""Alembic migrations: up, down and up again on SQLite and Postgres; schema equals tables.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from adapters.outbound.storage.sql.engine import create_engine
from adapters.outbound.storage.sql.migrate import (
    downgrade,
    downgrade_async,
    head_revision,
    migrations_dir,
    upgrade,
    upgrade_async,
)
from adapters.outbound.storage.sql.tables import metadata

OUR_TABLES = {
    "markets",
    "market_assets",
    "market_events",
    "outbox",
    "processed_events",
    "cursors",
    "deployment_transactions",
    "leases",
    "ledger_accounts",
    "ledger_supply",
    "ledger_posting_sets",
    "ledger_postings",
    "ledger_supply_changes",
    "tokens",
    "compliance_records",
    "mints",
    "transfers",
    "withdrawals",
    "blockchain_events",
    "marketdata_trades",
    "marketdata_candles",
    "reference_prices",
    "asset_valuations",
}
HEAD = "0014"  # 0011 is reserved for trading; empty reserved ones change nothing


async def _inspect(url: str) -> tuple[set[str], str | None, list[Any]]:
    """Table names, the alembic revision and the autogenerate diff against tables.py."""

    def look(connection: sa.Connection) -> tuple[set[str], str | None, list[Any]]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        tables = set(sa.inspect(connection).get_table_names())
        return tables, context.get_current_revision(), compare_metadata(context, metadata)

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(look)
    finally:
        await engine.dispose()


async def _up_down_up(url: str) -> None:
    await upgrade_async(url)
    tables, revision, diff = await _inspect(url)
    assert tables >= OUR_TABLES
    assert revision == head_revision() == HEAD
    assert diff == []

    await downgrade_async(url, "0001")  # one step: the inbox tables go, the markets stay
    tables, revision, _ = await _inspect(url)
    assert revision == "0001"
    assert "processed_events" not in tables and "cursors" not in tables
    assert "markets" in tables

    await downgrade_async(url, "base")
    tables, revision, _ = await _inspect(url)
    assert tables & OUR_TABLES == set()
    assert revision is None

    await upgrade_async(url, "head")
    tables, revision, diff = await _inspect(url)
    assert tables >= OUR_TABLES and revision == HEAD and diff == []


async def _events_are_numbered_by_0004(url: str) -> None:
    """Events stored before 0004 get their market stream and 1, 2, ... in history order;
    published outbox rows count as reacted to, unpublished ones stay pending."""
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def columns() -> list[sa.ColumnClause[object]]:
        names = ("type", "aggregate_id", "actor_id", "actor_type", "decision", "reason")
        return [sa.column(name) for name in names] + [
            sa.column("occurred_at", sa.DateTime(timezone=True)),
            sa.column("metadata", sa.JSON),
        ]

    history = sa.table("market_events", sa.column("id"), *columns())
    outbox = sa.table(
        "outbox",
        sa.column("event_id"),
        sa.column("published_at", sa.DateTime(timezone=True)),
        *columns(),
    )
    rows: list[dict[str, object]] = [
        {"id": f"e{n}", "type": "market.x", "aggregate_id": market, "actor_id": "a"}
        | {"actor_type": "user", "decision": None, "reason": None, "occurred_at": at}
        | {"metadata": {}}
        for n, market in enumerate(["m1", "m2", "m1", "m1", "m2"])
    ]
    await upgrade_async(url, "0003")
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(history.insert(), rows)
            await conn.execute(
                outbox.insert(),
                [
                    {"event_id": r.pop("id"), "published_at": at if n < 3 else None} | r
                    for n, r in enumerate(dict(row) for row in rows)
                ],
            )
        await upgrade_async(url, "0004")
        async with engine.connect() as conn:
            numbered = (
                await conn.execute(
                    sa.text("SELECT id, stream, stream_seq FROM market_events ORDER BY seq")
                )
            ).all()
            pending = (
                await conn.execute(
                    sa.text(
                        "SELECT event_id, stream, stream_seq, published_at IS NOT NULL,"
                        " reacted_at IS NOT NULL FROM outbox ORDER BY position"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in numbered] == [
        ("e0", "market:m1", 1),
        ("e1", "market:m2", 1),
        ("e2", "market:m1", 2),
        ("e3", "market:m1", 3),
        ("e4", "market:m2", 2),
    ]
    assert [tuple(row) for row in pending] == [
        ("e0", "market:m1", 1, True, True),
        ("e1", "market:m2", 1, True, True),
        ("e2", "market:m1", 2, True, True),
        ("e3", "market:m1", 3, False, False),
        ("e4", "market:m2", 2, False, False),
    ]
    await downgrade_async(url, "0003")  # and back: the pending rows are still pending
    await upgrade_async(url, "head")


async def test_sqlite_0004_numbers_existing_events(tmp_path: Path) -> None:
    await _events_are_numbered_by_0004(f"sqlite+aiosqlite:///{tmp_path / 'streams.db'}")


@pytest.mark.postgres
async def test_postgres_0004_numbers_existing_events(fresh_postgres_url: str) -> None:
    await _events_are_numbered_by_0004(fresh_postgres_url)


def test_migrations_dir_is_the_repository_root_one() -> None:
    directory = migrations_dir()
    assert directory == Path(__file__).resolve().parents[2] / "migrations"
    assert (directory / "env.py").is_file()


def test_migrations_dir_can_be_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RWA_MIGRATIONS_DIR", str(tmp_path))
    assert migrations_dir() == tmp_path


def test_env_falls_back_to_rwa_database_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from alembic import command

    from adapters.outbound.storage.sql.migrate import make_config

    url = f"sqlite+aiosqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("RWA_DATABASE_URL", url)
    command.upgrade(make_config(), "head")
    assert (tmp_path / "env.db").exists()


async def test_sqlite_up_down_up(tmp_path: Path) -> None:
    await _up_down_up(f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}")


async def test_sync_helpers_work_inside_a_running_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sync.db'}"
    upgrade(url)
    assert (await _inspect(url))[1] == HEAD
    downgrade(url, "base")
    assert (await _inspect(url))[1] is None


@pytest.mark.postgres
async def test_postgres_up_down_up(fresh_postgres_url: str) -> None:
    await _up_down_up(fresh_postgres_url)
