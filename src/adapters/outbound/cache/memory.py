"""In-process cache (one process only): a dict with expiry times, bounded in size."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from core.ports.cache import Cache, check_ttl, encode_value


class MemoryCache(Cache):
    def __init__(
        self, *, max_entries: int = 100_000, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._items: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._max = max_entries
        self._now = monotonic

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self._now():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes | str, *, ttl_seconds: float | None = None) -> None:
        check_ttl(ttl_seconds)
        data = encode_value(value)
        expires = None if ttl_seconds is None else self._now() + ttl_seconds
        self._items[key] = (data, expires)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)  # least recently used

    async def delete(self, key: str) -> bool:
        item = self._items.pop(key, None)
        return item is not None and (item[1] is None or item[1] > self._now())
