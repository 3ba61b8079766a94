"""``send-trade-notification``: each side of a trade hears of it through the notification
port (a structured log line, or a signed webhook).

The reaction to ``trade.executed`` queues one job per trade; the job sends the buyer's and
the seller's notification (ids ``trade:<trade id>:<user id>``, stable across retries). A
notification that failed is sent again (only that side) after ``retry_seconds``, doubling,
at most ``max_attempts`` times; delivery is at least once, so a receiver deduplicates on the
id.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import attrs

from core.ports.jobs import Job, JobQueue
from core.ports.notifications import Notification, NotificationFailed, Notifier
from core.ports.storage import Storage
from core.shared.events import DomainEvent
from core.trading.orders import Trade
from core.trading.pairs import Pair

log = logging.getLogger(__name__)

TRADE_NOTIFICATION = "trade.executed"


@attrs.frozen
class SendTradeNotificationJob(Job):
    name: ClassVar[str] = "send-trade-notification"
    trade_id: str
    user_ids: tuple[str, ...] = ()  # empty: both sides
    attempt: int = 1


def trade_notifications(pair: Pair, trade: Trade) -> list[Notification]:
    """The buyer's and the seller's notification of ``trade``."""
    buyer_is_taker = trade.taker_side == "BUY"
    sides: list[tuple[str, str, str, int]] = [
        (trade.taker_user_id, "BUY" if buyer_is_taker else "SELL", "taker", trade.taker_fee),
        (trade.maker_user_id, "SELL" if buyer_is_taker else "BUY", "maker", trade.maker_fee),
    ]
    found = []
    for user_id, side, role, fee in sides:
        data: dict[str, Any] = {
            "tradeId": trade.id,
            "pairId": pair.id,
            "pair": pair.symbol,
            "side": side,
            "role": role,
            "price": pair.price_text(trade.price),
            "quantity": pair.size_text(trade.quantity),
            "fee": str(fee),  # in the quote token's base units
            "orderId": trade.taker_order_id if role == "taker" else trade.maker_order_id,
        }
        found.append(
            Notification(
                id=f"trade:{trade.id}:{user_id}",
                user_id=user_id,
                type=TRADE_NOTIFICATION,
                occurred_at=trade.created_at,
                data=data,
            )
        )
    return found


class TradeNotifications:
    def __init__(
        self,
        storage: Storage,
        notifier: Notifier,
        jobs: JobQueue,
        *,
        retry_seconds: float = 10.0,
        max_attempts: int = 8,
    ) -> None:
        self._storage = storage
        self._notifier = notifier
        self._jobs = jobs
        self._retry_seconds = retry_seconds
        self._max_attempts = max_attempts

    async def on_trade_executed(self, event: DomainEvent) -> None:
        trade_id = event.metadata.get("tradeId")
        if isinstance(trade_id, str):
            await self._jobs.enqueue(SendTradeNotificationJob(trade_id=trade_id))

    async def handle(self, job: SendTradeNotificationJob) -> None:
        async with self._storage.unit_of_work(read_only=True) as uow:
            trade = await uow.settlements.trade(job.trade_id)
            pair = None if trade is None else await uow.pairs.get(trade.pair_id)
        if trade is None or pair is None:
            log.warning("send-trade-notification: no trade %s", job.trade_id)
            return
        failed: list[str] = []
        for notification in trade_notifications(pair, trade):
            if job.user_ids and notification.user_id not in job.user_ids:
                continue
            try:
                await self._notifier.send(notification)
            except NotificationFailed as exc:
                log.warning("notification %s not delivered: %s", notification.id, exc)
                failed.append(notification.user_id)
        if not failed:
            return
        if job.attempt >= self._max_attempts:
            log.error("trade %s: notifications given up after %d attempts", trade.id, job.attempt)
            return
        await self._jobs.enqueue(
            SendTradeNotificationJob(trade.id, tuple(failed), job.attempt + 1),
            delay_seconds=self._retry_seconds * min(2 ** (job.attempt - 1), 64),
        )
