"""Alembic environment: async engines (aiosqlite, asyncpg) driven through ``run_sync``."""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from adapters.outbound.storage.sql.engine import create_engine, normalize_url
from adapters.outbound.storage.sql.tables import metadata

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata


def database_url() -> str:
    """The caller's ``sqlalchemy.url`` option, else ``$RWA_DATABASE_URL``."""
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("RWA_DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url or RWA_DATABASE_URL")
    return url


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata, render_as_batch=True, compare_type=True, **kwargs
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it."""
    _configure(
        url=normalize_url(database_url()),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(database_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_on)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # a caller lent us a sync connection
        _run_on(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
