"""The polling fallback of the Entity Permissions Core webhook.

Every ``interval`` seconds it runs one ``PermissionFeedSync`` step (read the feed after the
stored cursor, process each event through the webhook's path, store the cursor). A full page
is followed at once by the next one. An error backs off exponentially - ``interval``, twice
that, four times, ... up to ``max_backoff`` - and a success resets the delay.

It runs in the API process (embedded profile) or on its own (``rwa-market poll``). With a
``lease`` (a ``StorageLease`` in the shared database), only the poller holding it polls: the
others stand by, trying to take it every ``interval``, and one of them takes over within the
lease's time once the holder stops (or at once when it stops cleanly and releases it).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from core.markets.permission_events import PermissionFeedSync, SyncReport
from core.shared.lease import StorageLease

log = logging.getLogger(__name__)


class PermissionEventPoller:
    def __init__(
        self,
        sync: PermissionFeedSync,
        *,
        interval_seconds: float = 10.0,
        max_backoff_seconds: float = 300.0,
        lease: StorageLease | None = None,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("the polling interval must be positive")
        self._sync = sync
        self.lease = lease
        self.holding = lease is None  # whether this poller may poll now
        self.standby_steps = 0  # steps passed over while another poller held the lease
        self.interval = interval_seconds
        self.max_backoff = max(max_backoff_seconds, interval_seconds)
        self.failures = 0  # consecutive failed steps
        self.last_error: str | None = None
        self.last_report: SyncReport | None = None
        self.delays: collections.deque[float] = collections.deque(maxlen=100)
        self.steps = 0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def backoff(self, failures: int) -> float:
        """The wait after ``failures`` consecutive failures (1, 2, ...)."""
        return float(min(self.interval * 2 ** (failures - 1), self.max_backoff))

    async def poll_once(self) -> float:
        """One step; return how long to wait before the next."""
        self.steps += 1
        try:
            report = await self._sync.run_once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            delay = self.backoff(self.failures)
            log.warning(
                "permission feed poll failed (%d in a row), next try in %.1fs: %s",
                self.failures,
                delay,
                self.last_error,
            )
            return delay
        if self.failures:
            log.info("permission feed reachable again after %d failures", self.failures)
        self.failures = 0
        self.last_error = None
        self.last_report = report
        if report.fetched:
            log.info(
                "permission feed: %d events (%d malformed), cursor %s",
                report.fetched,
                report.malformed,
                report.cursor,
            )
        return 0.0 if report.full else self.interval

    async def hold_lease(self) -> bool:
        """Take or renew the lease (always True without one)."""
        if self.lease is None:
            return True
        try:
            holding = await self.lease.acquire()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # storage down: do not poll on a lease we cannot prove
            log.warning("permission feed poller: the lease cannot be checked: %s", exc)
            holding = False
        if holding != self.holding:
            log.info(
                "permission feed poller %s: %s",
                self.lease.holder,
                "holds the lease, polling" if holding else "another poller holds the lease",
            )
        self.holding = holding
        return holding

    async def _step(self) -> float:
        if not await self.hold_lease():
            self.standby_steps += 1
            return self.interval
        return await self.poll_once()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            delay = await self._step()
            self.delays.append(delay)
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            else:
                await asyncio.sleep(0)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._stopping = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="permission-feed-poller"
            )
            log.info("permission feed poller started (every %.1fs)", self.interval)

    async def stop(self, timeout: float = 10.0) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        except Exception:  # the loop never raises, but a stop must not fail
            log.exception("permission feed poller ended with an error")
        if self.lease is not None and self.holding:
            self.holding = False
            try:
                await self.lease.release()
            except Exception as exc:  # it expires by itself
                log.warning("permission feed poller: the lease was not released: %s", exc)
