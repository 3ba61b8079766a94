"""The use of a SQLAlchemy engine's connection pool, for ``rwa_db_pool_connections``."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool


def pool_usage(engine: AsyncEngine) -> Callable[[], tuple[int, int] | None]:
    """(connections checked out, capacity: pool size plus allowed overflow); None for pools
    that keep no count (SQLite's)."""

    def usage() -> tuple[int, int] | None:
        pool = engine.sync_engine.pool
        if not isinstance(pool, QueuePool):
            return None
        overflow = max(0, pool._max_overflow)  # -1: unbounded; count the fixed size only
        return pool.checkedout(), pool.size() + overflow

    return usage
