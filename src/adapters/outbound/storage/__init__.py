"""Storage adapters: ``MemoryStorage`` (test profile) and ``SqlStorage`` (SQLite, Postgres)."""

from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlStorage

__all__ = ["MemoryStorage", "SqlStorage"]
