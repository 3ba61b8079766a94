"""Alembic migrations: up, down and up again on SQLite and Postgres; schema equals tables.py."""

from __future__ import annotations

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
}
HEAD = "0002"


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
