"""SQL storage adapter: SQLAlchemy Core over aiosqlite (embedded) or asyncpg (production)."""

from adapters.outbound.storage.sql.repositories import (
    SqlEventLog,
    SqlMarketRepository,
    SqlOutbox,
)
from adapters.outbound.storage.sql.storage import SqlStorage, SqlUnitOfWork

__all__ = ["SqlEventLog", "SqlMarketRepository", "SqlOutbox", "SqlStorage", "SqlUnitOfWork"]
