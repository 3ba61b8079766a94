"""The queue of one process's SQLite writers (SQLite has one writer at a time).

Without it, writers that find the database locked wait in SQLite's busy handler, which
sleeps in steps of up to 100 ms: under load the lock sits unused most of the time several
writers wait for it, and the order they get it in is luck. Here each writer of the process
waits for its turn on the event loop and gets the lock the moment the previous one is done;
urgent writers (a pair's single writer, see ``core.ports.storage.URGENT_WRITES``) are served
before the others, each kind in arrival order. Other processes still meet the busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class WriteGate:
    """One holder at a time; ``release`` hands the gate to the next waiter directly."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    @property
    def held(self) -> bool:
        return self._held

    @property
    def waiting(self) -> int:
        return sum(not f.done() for f in (*self._urgent, *self._normal))

    async def acquire(self, *, urgent: bool, timeout: float) -> None:
        """Wait for the gate (urgent waiters first); ``TimeoutError`` after ``timeout``
        seconds, holding nothing."""
        if not self._held and not self.waiting:
            self._held = True
            return
        queue = self._urgent if urgent else self._normal
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(turn)
        try:
            async with asyncio.timeout(timeout):
                await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.release()  # handed over just as we gave up: pass it on
            else:
                turn.cancel()
                with contextlib.suppress(ValueError):
                    queue.remove(turn)
            raise

    def release(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)  # still held: it is the next one's now
                    return
        self._held = False
