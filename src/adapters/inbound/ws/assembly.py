"""The gateway with the channels this service has today (bootstrap hands in the parts)."""

from __future__ import annotations

from adapters.inbound.http.auth import TokenIssuer
from adapters.inbound.http.order_rate_limit import OrderRateLimit
from adapters.inbound.ws.channels import ChannelRegistry
from adapters.inbound.ws.gateway import Gateway, WsLimits
from adapters.inbound.ws.marketdata import CandlesChannel, TickerChannel
from adapters.inbound.ws.markets import MarketsChannel
from adapters.inbound.ws.private import BalancesChannel
from adapters.inbound.ws.trading import (
    BookChannel,
    FillsChannel,
    OrdersChannel,
    TradesChannel,
    order_ops,
)
from core.markets.queries import MarketQueries
from core.ports.event_bus import EventBus
from core.ports.metrics import NO_METRICS, Metrics
from core.tokens.use_cases import TokenUseCases
from core.trading.service import TradingService


def standard_registry(
    markets: MarketQueries, tokens: TokenUseCases, trading: TradingService
) -> ChannelRegistry:
    """Every channel of DESIGN §6: ``markets``, ``book``, ``trades``, ``ticker``,
    ``candles`` and private ``orders``, ``fills``, ``balances``."""
    return ChannelRegistry(
        [
            MarketsChannel(markets),
            BalancesChannel(tokens),
            BookChannel(trading),
            TradesChannel(trading),
            OrdersChannel(trading),
            FillsChannel(trading),
            TickerChannel(trading),
            CandlesChannel(trading),
        ]
    )


def build_gateway(
    bus: EventBus,
    issuer: TokenIssuer,
    markets: MarketQueries,
    tokens: TokenUseCases,
    limits: WsLimits,
    trading: TradingService,
    metrics: Metrics = NO_METRICS,
    order_rate_limit: OrderRateLimit | None = None,
) -> Gateway:
    return Gateway(
        bus,
        standard_registry(markets, tokens, trading),
        issuer,
        limits,
        metrics=metrics,
        ops=order_ops(trading, order_rate_limit),
    )
