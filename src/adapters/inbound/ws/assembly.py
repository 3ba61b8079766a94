"""The gateway with the channels this service has today (bootstrap hands in the parts)."""

from __future__ import annotations

from adapters.inbound.http.auth import TokenIssuer
from adapters.inbound.ws.channels import ChannelRegistry, trading_placeholders
from adapters.inbound.ws.gateway import Gateway, WsLimits
from adapters.inbound.ws.markets import MarketsChannel
from adapters.inbound.ws.private import BalancesChannel
from core.markets.queries import MarketQueries
from core.ports.event_bus import EventBus
from core.ports.metrics import NO_METRICS, Metrics
from core.tokens.use_cases import TokenUseCases


def standard_registry(markets: MarketQueries, tokens: TokenUseCases) -> ChannelRegistry:
    """Live: ``markets`` and private ``balances``; the trading channels answer
    ``channel_unavailable`` until the trading engine registers its own."""
    return ChannelRegistry(
        [*trading_placeholders(), MarketsChannel(markets), BalancesChannel(tokens)]
    )


def build_gateway(
    bus: EventBus,
    issuer: TokenIssuer,
    markets: MarketQueries,
    tokens: TokenUseCases,
    limits: WsLimits,
    metrics: Metrics = NO_METRICS,
) -> Gateway:
    return Gateway(bus, standard_registry(markets, tokens), issuer, limits, metrics=metrics)
