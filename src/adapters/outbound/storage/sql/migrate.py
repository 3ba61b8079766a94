"""Run the alembic migrations programmatically, from plain code or from inside an event loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS_DIR_ENV = "RWA_MIGRATIONS_DIR"


def migrations_dir() -> Path:
    """``$RWA_MIGRATIONS_DIR``, else ``migrations/`` at the repository root."""
    override = os.environ.get(MIGRATIONS_DIR_ENV)
    if override:
        return Path(override)
    # parents: sql, storage, outbound, adapters, src, <repo root>
    return Path(__file__).resolve().parents[5] / "migrations"


def make_config(url: str | None = None) -> Config:
    """An alembic ``Config`` for our migrations; ``url`` overrides ``$RWA_DATABASE_URL``."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    """The newest revision in the migrations directory."""
    return ScriptDirectory.from_config(make_config()).get_current_head()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate ``url`` up to ``revision``. Safe to call inside a running loop (blocks it)."""
    _run_outside_loop(command.upgrade, make_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate ``url`` down to ``revision`` (``"base"`` drops everything)."""
    _run_outside_loop(command.downgrade, make_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """``upgrade`` in a worker thread, without blocking the running loop."""
    await asyncio.to_thread(command.upgrade, make_config(url), revision)


async def downgrade_async(url: str, revision: str) -> None:
    await asyncio.to_thread(command.downgrade, make_config(url), revision)


def _run_outside_loop(func: Callable[[Config, str], None], config: Config, revision: str) -> None:
    """The migration env calls ``asyncio.run``, which a thread with a running loop cannot."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        func(config, revision)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="alembic") as pool:
        pool.submit(func, config, revision).result()
