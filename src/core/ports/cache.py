"""Cache port: short-lived bytes by key, with an optional time to live."""

from __future__ import annotations

import abc


class Cache(abc.ABC):
    """Values are bytes; ``str`` values are stored as UTF-8 (``get_text`` reads them back)."""

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""

    @abc.abstractmethod
    async def set(self, key: str, value: bytes | str, *, ttl_seconds: float | None = None) -> None:
        """Store ``value``; with a TTL it disappears that many seconds from now."""

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there."""

    async def get_text(self, key: str) -> str | None:
        value = await self.get(key)
        return None if value is None else value.decode()

    async def ping(self) -> None:  # noqa: B027 - in-process caches are always reachable
        """Raise if the store cannot be reached."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def encode_value(value: bytes | str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"cache values are bytes or str, not {type(value).__name__}")


def check_ttl(ttl_seconds: float | None) -> None:
    if ttl_seconds is not None and not ttl_seconds > 0:
        raise ValueError(f"ttl_seconds must be positive, not {ttl_seconds}")
