"""What the HTTP adapter needs, handed in by bootstrap (it never builds adapters itself)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import attrs

from adapters.inbound.http.auth import TokenIssuer
from adapters.inbound.http.order_rate_limit import OrderRateLimit
from adapters.inbound.http.rate_limit import HttpRateLimit
from adapters.inbound.webhooks.dependencies import WebhookDependencies
from adapters.inbound.ws.gateway import Gateway
from core.marketdata.valuations import ValuationUseCases
from core.markets.queries import MarketQueries
from core.markets.use_cases import MarketUseCases
from core.ports.metrics import NO_METRICS, Metrics
from core.shared.audit import AuditQueries
from core.tokens.compliance_use_cases import ComplianceUseCases
from core.tokens.deposits import DepositUseCases
from core.tokens.mint import MintUseCases
from core.tokens.transfers import TransferUseCases
from core.tokens.use_cases import TokenUseCases
from core.tokens.wallets import WalletUseCases
from core.tokens.withdrawals import WithdrawalUseCases
from core.trading.service import TradingService

ReadinessCheck = Callable[[], Awaitable[object]]


@attrs.frozen
class HttpDependencies:
    markets: MarketUseCases
    market_queries: MarketQueries
    valuations: ValuationUseCases = attrs.field(kw_only=True)
    tokens: TokenIssuer
    readiness: Mapping[str, ReadinessCheck]
    max_body_bytes: int = 64 * 1024
    webhooks: WebhookDependencies | None = None  # None: no webhook endpoints
    rate_limit: HttpRateLimit | None = None  # None: no request limits
    # per-user limit on order submission; None: no such limit
    order_rate_limit: OrderRateLimit | None = attrs.field(default=None, kw_only=True)
    wallets: WalletUseCases = attrs.field(kw_only=True)
    audit: AuditQueries = attrs.field(kw_only=True)
    token_use_cases: TokenUseCases = attrs.field(kw_only=True)
    compliance: ComplianceUseCases = attrs.field(kw_only=True)
    trading: TradingService | None = attrs.field(default=None, kw_only=True)
    mints: MintUseCases = attrs.field(kw_only=True)
    transfers: TransferUseCases = attrs.field(kw_only=True)
    withdrawals: WithdrawalUseCases = attrs.field(kw_only=True)
    deposits: DepositUseCases = attrs.field(kw_only=True)
    metrics: Metrics = attrs.field(default=NO_METRICS, kw_only=True)
    # the Prometheus text format and its content type; None: no /metrics
    metrics_exposition: Callable[[], tuple[bytes, str]] | None = attrs.field(
        default=None, kw_only=True
    )
    ws: Gateway | None = attrs.field(default=None, kw_only=True)  # None: no /api/v1/ws
