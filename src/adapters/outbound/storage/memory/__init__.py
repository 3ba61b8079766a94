"""Memory storage adapter: a real implementation of the storage port, kept in process."""

from adapters.outbound.storage.memory.repositories import (
    MemoryEventLog,
    MemoryMarketRepository,
    MemoryOutbox,
)
from adapters.outbound.storage.memory.storage import MemoryStorage, MemoryUnitOfWork

__all__ = [
    "MemoryEventLog",
    "MemoryMarketRepository",
    "MemoryOutbox",
    "MemoryStorage",
    "MemoryUnitOfWork",
]
