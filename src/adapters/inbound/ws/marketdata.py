"""The public market-data channels ``ticker`` and ``candles``, each a ``LiveValue`` per request
(see ``live.py``) fed by the pair's stream ``pair:<id>``.

- ``ticker`` (``pair`` required): ``TradingService.ticker`` (the 24h stats of ``GET
  .../stats``, best bid and ask with sizes, the reference price and the latest valuation),
  read again on every ``trade.executed`` (once market data stored it) and ``book.changed``,
  and every ``refresh_seconds`` (the 24h window slides; reference prices and valuations have
  no events), at most once per 100 ms (changes meanwhile arrive together). An update is sent
  only when something but ``time`` changed. Conflatable: a
  newer ticker replaces an older one waiting in a full send queue.
- ``candles`` (``pair`` and ``interval``): a snapshot of the newest ``snapshot_size`` candles
  (``GET .../candles``), then, on each trade, an update of every candle that changed (the
  current one; the first candle of a new interval on rollover).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.inbound.ws.channels import Channel, Publish
from adapters.inbound.ws.live import LiveValue
from adapters.inbound.ws.protocol import ClientError, SubscribeRequest
from adapters.inbound.ws.send_queue import Outgoing
from core.marketdata.model import Interval
from core.shared.events import Actor, DomainEvent
from core.trading.service import TradingService

TRADE_EXECUTED = "trade.executed"
BOOK_CHANGED = "book.changed"
CANDLES_SNAPSHOT = 100
CANDLES_WATCHED = 2  # the newest candles re-read after a trade (current and previous)
TICKER_REFRESH_SECONDS = 1.0
TICKER_MIN_INTERVAL = 0.1  # at most ten ticker reads a second per pair, whatever the flow


def merge_ticker(older: Mapping[str, Any], newer: Mapping[str, Any]) -> Mapping[str, Any]:
    """A newer ticker replaces an older one; ``fromSeq`` keeps the first ``seq`` merged."""
    return {**newer, "fromSeq": older.get("fromSeq", older["seq"])}


class _LiveChannel(Channel):
    """A pair channel whose subscribers of one request share one ``LiveValue``."""

    sequenced = True

    def __init__(self, trading: TradingService) -> None:
        self._trading = trading
        self._values: dict[SubscribeRequest, LiveValue] = {}
        self._publish: Publish | None = None

    def bind(self, publish: Publish) -> None:
        self._publish = publish

    def topic(self, request: SubscribeRequest, actor: Actor | None) -> str:
        raise ClientError("internal_error", "the pair's stream is resolved asynchronously")

    async def resolve_topic(self, request: SubscribeRequest, actor: Actor | None) -> str:
        assert request.pair is not None
        pair = await self._trading.get_pair(request.pair)
        self.value(request).pair_id = pair.id
        return f"pair:{pair.id}"

    def value(self, request: SubscribeRequest) -> LiveValue:
        found = self._values.get(request)
        if found is None:
            found = self._values[request] = self.make_value(request, self._deliverer(request))
        return found

    def _deliverer(self, request: SubscribeRequest) -> Any:
        def deliver(message: Outgoing) -> None:
            value = self._values.get(request)
            if self._publish is not None and value is not None and value.pair_id is not None:
                self._publish(f"pair:{value.pair_id}", self, request, message)

        return deliver

    def make_value(self, request: SubscribeRequest, deliver: Any) -> LiveValue:
        raise NotImplementedError

    def attached(self, request: SubscribeRequest, actor: Actor | None) -> None:
        self.value(request).attached()

    def detached(self, request: SubscribeRequest, actor: Actor | None) -> None:
        value = self._values.get(request)
        if value is not None:
            value.detached()

    async def snapshot(self, request: SubscribeRequest, actor: Actor | None) -> Mapping[str, Any]:
        return await self.value(request).snapshot()

    def update(self, request: SubscribeRequest, event: DomainEvent) -> Outgoing | None:
        value = self._values.get(request)
        if value is not None and self.triggers(event):
            value.trigger(event.seq if event.type == TRADE_EXECUTED else None)
        return None  # the value sends its own updates once it has read them

    def triggers(self, event: DomainEvent) -> bool:
        return event.type == TRADE_EXECUTED


class TickerValue(LiveValue):
    def __init__(self, trading: TradingService, request: SubscribeRequest, **kw: Any) -> None:
        super().__init__(request, **kw)
        self._trading = trading
        self._ticker: dict[str, Any] | None = None

    async def read(self) -> list[Mapping[str, Any]]:
        assert self.request.pair is not None
        ticker = await self._trading.ticker(self.request.pair)
        if self._ticker is not None and _without_time(ticker) == _without_time(self._ticker):
            return []
        self._ticker = ticker
        return [
            {"type": "update", "channel": "ticker", "pair": self.request.pair, "ticker": ticker}
        ]

    def snapshot_payload(self) -> dict[str, Any]:
        return {"type": "snapshot", "channel": "ticker", "ticker": self._ticker}

    def outgoing(self, payload: Mapping[str, Any]) -> Outgoing:
        return Outgoing(payload, key=("ticker", self.request.pair), merge=merge_ticker)


def _without_time(ticker: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ticker.items() if k != "time"}


class TickerChannel(_LiveChannel):
    name = "ticker"

    def __init__(
        self, trading: TradingService, *, refresh_seconds: float = TICKER_REFRESH_SECONDS
    ) -> None:
        super().__init__(trading)
        self._refresh_seconds = refresh_seconds

    def check(self, request: SubscribeRequest) -> SubscribeRequest:
        if request.pair is None:
            raise ClientError("invalid_params", "channel ticker needs a pair")
        if request.depth is not None or request.interval is not None:
            raise ClientError("invalid_params", "channel ticker takes only a pair")
        return request

    def make_value(self, request: SubscribeRequest, deliver: Any) -> LiveValue:
        return TickerValue(
            self._trading,
            request,
            deliver=deliver,
            has_trade=self._trading.has_market_trade,
            refresh_seconds=self._refresh_seconds,
            min_interval=TICKER_MIN_INTERVAL,
        )

    def triggers(self, event: DomainEvent) -> bool:
        return event.type in (TRADE_EXECUTED, BOOK_CHANGED)


class CandlesValue(LiveValue):
    def __init__(
        self, trading: TradingService, request: SubscribeRequest, size: int, **kw: Any
    ) -> None:
        super().__init__(request, **kw)
        self._trading = trading
        self._size = size
        self._candles: list[dict[str, Any]] = []  # oldest first, at most ``size``
        self._read_once = False

    async def read(self) -> list[Mapping[str, Any]]:
        assert self.request.pair is not None
        limit = CANDLES_WATCHED if self._read_once else self._size
        rows = await self._trading.pair_candles(
            self.request.pair, self.request.interval, limit=limit
        )
        known = {c["openTime"]: i for i, c in enumerate(self._candles)}
        changed = []
        for candle in rows:
            at = known.get(candle["openTime"])
            if at is None:
                self._candles.append(candle)
            elif self._candles[at] != candle:
                self._candles[at] = candle
            else:
                continue
            changed.append(candle)
        self._candles.sort(key=lambda c: str(c["openTime"]))
        del self._candles[: max(0, len(self._candles) - self._size)]
        first, self._read_once = not self._read_once, True
        if first:
            return []
        return [
            {
                "type": "update",
                "channel": "candles",
                "pair": self.request.pair,
                "interval": self.request.interval,
                "candle": candle,
            }
            for candle in changed
        ]

    def attached(self) -> None:
        if self.subscribers == 0:  # unread while nobody listened: read it whole again
            self._read_once = False
            self._candles = []
        super().attached()

    def snapshot_payload(self) -> dict[str, Any]:
        return {
            "type": "snapshot",
            "channel": "candles",
            "interval": self.request.interval,
            "candles": list(self._candles),
        }


class CandlesChannel(_LiveChannel):
    name = "candles"

    def __init__(self, trading: TradingService, *, snapshot_size: int = CANDLES_SNAPSHOT) -> None:
        super().__init__(trading)
        self._size = snapshot_size

    def check(self, request: SubscribeRequest) -> SubscribeRequest:
        if request.pair is None or request.interval is None:
            raise ClientError("invalid_params", "channel candles needs a pair and an interval")
        if request.depth is not None:
            raise ClientError("invalid_params", "channel candles takes no depth")
        try:
            Interval.parse(request.interval)
        except ValueError as exc:
            raise ClientError("invalid_params", str(exc)) from None
        return request

    def make_value(self, request: SubscribeRequest, deliver: Any) -> LiveValue:
        return CandlesValue(
            self._trading,
            request,
            self._size,
            deliver=deliver,
            has_trade=self._trading.has_market_trade,
        )
