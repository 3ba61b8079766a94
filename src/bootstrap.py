"""Composition root: the only module that chooses adapters (by ``RWA_PROFILE``) and wires them.

Profiles:
  test        everything in memory
  embedded    SQLite file, local role policy, in-process EVM, taskiq InMemoryBroker, memory bus
  production  Postgres (``RWA_DATABASE_URL``), Redis; the books in ``rwa-market engine``
              processes (orders routed over Redis Streams)
``RWA_CHAIN_RPC_URL`` switches the chain to JSON-RPC in the embedded and production profiles.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import attrs
from dependency_injector import containers, providers

import logs
from adapters.inbound.http.app import create_app
from adapters.inbound.http.auth import TokenIssuer
from adapters.inbound.http.dependencies import HttpDependencies
from adapters.inbound.http.order_rate_limit import OrderRateLimit
from adapters.inbound.http.rate_limit import HttpRateLimit
from adapters.inbound.pollers.gauges import GaugeSampler, PoolUsage
from adapters.inbound.pollers.permissions import PermissionEventPoller
from adapters.inbound.pollers.token_jobs import TokenJobScheduler
from adapters.inbound.webhooks.dependencies import WebhookDependencies
from adapters.inbound.webhooks.sns import SnsVerifier
from adapters.inbound.ws.assembly import build_gateway
from adapters.inbound.ws.gateway import WsLimits
from adapters.outbound.cache.memory import MemoryCache
from adapters.outbound.cache.metered import MeteredCache
from adapters.outbound.cache.redis import RedisCache
from adapters.outbound.chain.durable_store import CHAIN_FILE
from adapters.outbound.chain.evm import EvmChain
from adapters.outbound.chain.memory import MemoryChain
from adapters.outbound.chain.web3_rpc import Web3Chain
from adapters.outbound.clock.system import SystemClock
from adapters.outbound.custody.eth_signatures import EthAccountSignatureVerifier
from adapters.outbound.custody.hd_keys import BipUtilsKeyDerivation
from adapters.outbound.events.memory import MemoryEventBus
from adapters.outbound.events.redis import RedisEventBus
from adapters.outbound.jobs.memory import MemoryJobQueue
from adapters.outbound.jobs.redis_stream import redis_job_broker
from adapters.outbound.jobs.taskiq import TaskiqJobQueue
from adapters.outbound.metrics.memory import MemoryMetrics
from adapters.outbound.metrics.pool import pool_usage
from adapters.outbound.metrics.prometheus import PrometheusMetrics
from adapters.outbound.notifications.log import LogNotifier
from adapters.outbound.notifications.webhook import WebhookNotifier
from adapters.outbound.permissions.feed import HttpPermissionEventFeed, MemoryPermissionEventFeed
from adapters.outbound.permissions.http import HttpPermissions
from adapters.outbound.permissions.local import LocalPolicyPermissions
from adapters.outbound.permissions.memory import MemoryPermissions
from adapters.outbound.pricefeed.chainlink import ChainlinkPriceFeed
from adapters.outbound.pricefeed.http_json import HttpJsonPriceFeed
from adapters.outbound.ratelimit.memory import MemoryRateLimiter
from adapters.outbound.ratelimit.redis import RedisRateLimiter
from adapters.outbound.routing.redis_streams import RedisOrderRouter
from adapters.outbound.sns.http import HttpSnsGateway
from adapters.outbound.sns.memory import MemorySnsGateway
from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade as upgrade_schema
from adapters.outbound.valuations.http_json import HttpJsonValuationSource
from core.ledger.notices import BalanceNoticeStorage
from core.marketdata.aggregate import TRADE_EXECUTED, CandleAggregator
from core.marketdata.prices import FetchExternalPricesJob, PriceFetching, PricePolicy
from core.marketdata.valuation_fetch import (
    UpdateTokenMetadataJob,
    ValuationFetching,
    ValuationPolicy,
)
from core.marketdata.valuations import ValuationUseCases
from core.markets.chain_state import ChainStateGuard
from core.markets.deployment import RetryPolicy, TokenDeployment
from core.markets.permission_events import PermissionEventProcessor, PermissionFeedSync
from core.markets.queries import MarketQueries
from core.markets.stablecoin import EmbeddedStablecoin
from core.markets.use_cases import MarketUseCases
from core.ports.jobs import DeployTokenJob, TokenPauseJob
from core.ports.notifications import Notifier
from core.ports.price_feed import PriceFeed
from core.ports.valuation_source import ValuationSource
from core.shared.audit import AuditQueries
from core.shared.authorization import Authorizer
from core.shared.commit_signal import SignallingStorage
from core.shared.lease import StorageLease
from core.shared.outbox_relay import OutboxRelay
from core.tokens.chain_mirror import ChainMirror
from core.tokens.compliance_chain import ComplianceVerifier, VerifyComplianceJob
from core.tokens.compliance_use_cases import CHANGED as COMPLIANCE_CHANGED
from core.tokens.compliance_use_cases import ComplianceUseCases
from core.tokens.deposits import DepositUseCases
from core.tokens.jobs import (
    MintTokenJob,
    ProcessTransferJob,
    ProcessWithdrawalJob,
    ReconcileJob,
    SweepDepositJob,
    SyncBlockchainJob,
)
from core.tokens.mint import MintUseCases
from core.tokens.quote import AddressSource, QuoteTokenSetup, fixed_address, no_address
from core.tokens.reconcile import Reconciliation
from core.tokens.sweeps import DepositSweeper
from core.tokens.transfers import TransferUseCases
from core.tokens.use_cases import TokenUseCases
from core.tokens.wallets import EXTERNAL_REGISTERED as WALLET_EXTERNAL_REGISTERED
from core.tokens.wallets import WalletUseCases
from core.tokens.withdrawals import WithdrawalUseCases
from core.trading.engine_host import EngineHost
from core.trading.notifications import SendTradeNotificationJob, TradeNotifications
from core.trading.pairs import PairDefaults
from core.trading.service import TradingService
from core.trading.settlement import SettleTradesJob, TradeSettlement
from settings import DEV_CUSTODY_MNEMONIC, ConfigurationError, Settings
from settings import DEV_JWT_SECRET as DEV_JWT_SECRET
from settings import DEV_WEBHOOK_SECRETS as DEV_WEBHOOK_SECRETS
from settings import PROFILES as PROFILES

log = logging.getLogger(__name__)

POLLER_LEASE = "entity-permissions-core.poller"
GAUGE_SECONDS = 15.0  # markets per status, queue depth, pool use: sampled this often


def build_notifier(settings: Settings) -> Notifier:
    """send-trade-notification's adapter: a signed webhook when configured, else log lines."""
    if settings.notification_webhook_url and settings.notification_webhook_secret:
        return WebhookNotifier(
            settings.notification_webhook_url,
            settings.notification_webhook_secret,
            timeout_seconds=settings.notification_timeout_seconds,
        )
    return LogNotifier()


def build_price_feeds(settings: Settings) -> list[PriceFeed]:
    """The feeds of ``fetch-external-prices``: an HTTP JSON source (``RWA_PRICE_FEED_URL``,
    ``RWA_PRICE_FEED_SYMBOLS``) and Chainlink-style aggregators (``RWA_PRICE_FEED_CHAINLINK``,
    read over ``RWA_CHAIN_RPC_URL``)."""
    feeds: list[PriceFeed] = []
    if settings.price_feed_url and settings.price_feed_symbols:
        feeds.append(HttpJsonPriceFeed(settings.price_feed_url, list(settings.price_feed_symbols)))
    if settings.chainlink_feeds:
        if not settings.chain_rpc_url:
            raise ConfigurationError(
                "RWA_PRICE_FEED_CHAINLINK needs RWA_CHAIN_RPC_URL (the node to read them from)"
            )
        feeds.append(ChainlinkPriceFeed.over_rpc(settings.chain_rpc_url, settings.chainlink_feeds))
    return feeds


def build_valuation_source(settings: Settings) -> ValuationSource | None:
    """The source of ``update-token-metadata``: ``RWA_VALUATION_SOURCE_URL``, or none."""
    if not settings.valuation_source_url:
        return None
    return HttpJsonValuationSource(
        settings.valuation_source_url, timeout=settings.valuation_timeout_seconds
    )


def valuation_policy(settings: Settings) -> ValuationPolicy:
    return ValuationPolicy(
        max_age=timedelta(seconds=settings.valuation_max_age_seconds),
        max_change_bps=settings.valuation_max_change_bps,
    )


def price_policy(settings: Settings) -> PricePolicy:
    return PricePolicy(
        max_age=timedelta(seconds=settings.price_max_age_seconds),
        max_deviation_bps=settings.price_max_deviation_bps,
    )


def storage_pool_usage(storage: Any) -> PoolUsage | None:
    """The SQL engine's pool use; None for storage without a pool (memory)."""
    return pool_usage(storage.engine) if isinstance(storage, SqlStorage) else None


def process_holder_id() -> str:
    """Who holds a lease: this host and process, and a random part (PIDs are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def quote_address_source(
    settings: Settings, verifier: Any, stablecoin: EmbeddedStablecoin | None
) -> AddressSource:
    """Where the quote token's contract address comes from: ``RWA_QUOTE_TOKEN_ADDRESS`` when
    set (production); otherwise, on the embedded chain, the OpenZeppelin stablecoin deployed
    there once (recorded, so every start answers the same address); otherwise none (the token
    is registered with a null address and completed by a later start)."""
    if settings.quote_token_address:
        return fixed_address(verifier.checksum_address(settings.quote_token_address))
    if stablecoin is not None:
        return stablecoin.ensure
    return no_address


def ws_limits(settings: Settings) -> WsLimits:
    return WsLimits(
        send_queue=settings.ws_send_queue,
        max_message_bytes=settings.ws_max_message_bytes,
        rate_per_second=settings.ws_rate_per_second,
        rate_burst=settings.ws_rate_burst,
        heartbeat_seconds=settings.ws_heartbeat_seconds,
        raw_writes=settings.ws_raw_writes,
    )


def ws_order_rate_limit(settings: Settings, limiter: Any) -> OrderRateLimit | None:
    """HTTP's per-user order limit for ``order.submit`` over WebSocket (the same budget)."""
    if settings.order_rate_limit <= 0:
        return None
    return OrderRateLimit(limiter, settings.order_rate_limit, settings.order_rate_window_seconds)


class Container(containers.DeclarativeContainer):
    """Adapters chosen by the settings' ``*_kind`` properties; one container per process."""

    settings = providers.Dependency(instance_of=Settings)
    clock = providers.Singleton(SystemClock)
    # the test profile keeps metrics in memory (tests assert on them); others export them
    metrics = providers.Selector(
        providers.Callable(lambda s: "memory" if s.profile == "test" else "prometheus", settings),
        memory=providers.Singleton(MemoryMetrics),
        prometheus=providers.Singleton(PrometheusMetrics),
    )

    raw_storage = providers.Selector(
        providers.Callable(lambda s: s.storage_kind, settings),
        memory=providers.Singleton(MemoryStorage),
        sql=providers.Singleton(
            SqlStorage, providers.Callable(lambda s: s.effective_database_url, settings)
        ),
    )
    storage = providers.Singleton(
        SignallingStorage, providers.Singleton(BalanceNoticeStorage, raw_storage)
    )
    permissions = providers.Selector(
        providers.Callable(lambda s: s.permissions_kind, settings),
        memory=providers.Singleton(MemoryPermissions),
        local=providers.Singleton(LocalPolicyPermissions),
        http=providers.Singleton(
            HttpPermissions,
            providers.Callable(lambda s: s.permissions_base_url, settings),
            api_key=providers.Callable(lambda s: s.permissions_api_key, settings),
            timeout_seconds=providers.Callable(lambda s: s.permissions_timeout_seconds, settings),
        ),
    )
    permission_feed = providers.Selector(
        providers.Callable(lambda s: s.permission_feed_kind, settings),
        memory=providers.Singleton(MemoryPermissionEventFeed),
        http=providers.Singleton(
            HttpPermissionEventFeed,
            providers.Callable(lambda s: s.permissions_base_url, settings),
            api_key=providers.Callable(lambda s: s.permissions_api_key, settings),
            timeout_seconds=providers.Callable(lambda s: s.permissions_timeout_seconds, settings),
        ),
    )
    sns_gateway = providers.Selector(
        providers.Callable(lambda s: s.sns_kind, settings),
        memory=providers.Singleton(MemorySnsGateway),
        http=providers.Singleton(HttpSnsGateway),
    )
    chain = providers.Selector(
        providers.Callable(lambda s: s.chain_kind, settings),
        memory=providers.Singleton(MemoryChain),
        evm=providers.Singleton(
            EvmChain, data_dir=providers.Callable(lambda s: s.data_dir, settings)
        ),
        rpc=providers.Singleton(
            Web3Chain,
            rpc_url=providers.Callable(lambda s: s.chain_rpc_url, settings),
            private_key=providers.Callable(lambda s: s.chain_private_key, settings),
            chain_id=providers.Callable(lambda s: s.chain_id, settings),
        ),
    )
    jobs = providers.Selector(
        providers.Callable(lambda s: s.jobs_kind, settings),
        memory=providers.Singleton(MemoryJobQueue, metrics=metrics),
        taskiq=providers.Singleton(TaskiqJobQueue, metrics=metrics),
        redis=providers.Singleton(
            TaskiqJobQueue,
            providers.Singleton(
                redis_job_broker,
                providers.Callable(lambda s: s.redis_url, settings),
                queue_name=providers.Callable(lambda s: s.jobs_queue, settings),
                claim_idle_seconds=providers.Callable(
                    lambda s: s.jobs_claim_idle_seconds, settings
                ),
                max_deliveries=providers.Callable(lambda s: s.jobs_max_deliveries, settings),
                result_ttl_seconds=providers.Callable(
                    lambda s: s.jobs_result_ttl_seconds, settings
                ),
            ),
            consume_in_process=providers.Callable(lambda s: s.consume_jobs_in_process, settings),
            metrics=metrics,
        ),
    )
    event_bus = providers.Selector(
        providers.Callable(lambda s: s.redis_kind, settings),
        memory=providers.Singleton(MemoryEventBus),
        redis=providers.Singleton(
            RedisEventBus, providers.Callable(lambda s: s.redis_url, settings)
        ),
    )
    rate_limiter = providers.Selector(
        providers.Callable(lambda s: s.redis_kind, settings),
        memory=providers.Singleton(MemoryRateLimiter),
        redis=providers.Singleton(
            RedisRateLimiter, providers.Callable(lambda s: s.redis_url, settings)
        ),
    )
    raw_cache = providers.Selector(
        providers.Callable(lambda s: s.redis_kind, settings),
        memory=providers.Singleton(MemoryCache),
        redis=providers.Singleton(RedisCache, providers.Callable(lambda s: s.redis_url, settings)),
    )
    cache = providers.Singleton(MeteredCache, raw_cache, metrics)  # hit ratio

    authorizer = providers.Singleton(Authorizer, permissions)
    market_use_cases = providers.Singleton(MarketUseCases, storage, authorizer, clock)
    permission_events = providers.Singleton(
        PermissionEventProcessor, storage, market_use_cases, clock
    )
    permission_feed_sync = providers.Singleton(
        PermissionFeedSync, permission_feed, permission_events, storage, clock
    )
    # one active poller across processes: the holder of this lease in the shared database
    permission_poller_lease = providers.Singleton(
        StorageLease,
        storage,
        clock,
        name=POLLER_LEASE,
        holder=providers.Callable(process_holder_id),
        ttl_seconds=providers.Callable(lambda s: s.poll_lease_seconds, settings),
    )
    permission_poller = providers.Singleton(
        PermissionEventPoller,
        permission_feed_sync,
        interval_seconds=providers.Callable(lambda s: s.permissions_poll_seconds or 10.0, settings),
        lease=permission_poller_lease,
    )
    sns_verifier = providers.Singleton(
        SnsVerifier,
        sns_gateway,
        providers.Callable(lambda s: s.sns_topic_arns, settings),
        max_age_seconds=providers.Callable(lambda s: s.sns_max_age_seconds, settings),
        future_tolerance_seconds=providers.Callable(
            lambda s: s.webhook_tolerance_seconds, settings
        ),
    )
    chain_guard = providers.Singleton(
        ChainStateGuard,
        storage,
        chain,
        where=providers.Callable(
            lambda s: (
                f"the embedded chain file {s.data_dir / CHAIN_FILE}"
                if s.chain_kind == "evm"
                else "the chain"
            ),
            settings,
        ),
    )
    market_queries = providers.Singleton(MarketQueries, storage, chain, chain_guard)
    valuations = providers.Singleton(ValuationUseCases, storage, clock, authorizer)
    # custodial addresses: m/44'/60'/0'/0/<user number> of RWA_CUSTODY_MNEMONIC
    custody_keys = providers.Singleton(
        BipUtilsKeyDerivation, providers.Callable(lambda s: s.custody_mnemonic, settings)
    )
    signature_verifier = providers.Singleton(EthAccountSignatureVerifier)
    wallet_use_cases = providers.Singleton(
        WalletUseCases, storage, custody_keys, signature_verifier, clock
    )
    audit_queries = providers.Singleton(AuditQueries, storage)
    token_use_cases = providers.Singleton(
        TokenUseCases, storage, authorizer, clock, signature_verifier
    )
    compliance_use_cases = providers.Singleton(ComplianceUseCases, storage, authorizer, clock)
    # the books: in this process (embedded, test), or in `rwa-market engine` processes that
    # own the pairs by lease, reached over Redis Streams (production)
    order_router = providers.Selector(
        providers.Callable(lambda s: s.engine_kind, settings),
        local=providers.Object(None),
        remote=providers.Singleton(
            RedisOrderRouter,
            providers.Callable(lambda s: s.redis_url, settings),
            process_id=providers.Callable(process_holder_id),
        ),
    )
    # trading: one writer task per pair, group-committed batches
    trading = providers.Singleton(
        TradingService,
        storage,
        authorizer,
        clock,
        providers.Callable(
            lambda s: PairDefaults(maker_fee_bps=s.maker_fee_bps, taker_fee_bps=s.taker_fee_bps),
            settings,
        ),
        metrics=metrics,
        router=order_router,
        reply_timeout=providers.Callable(lambda s: s.engine_reply_timeout_seconds, settings),
    )
    engine_host = providers.Singleton(
        EngineHost,
        storage,
        clock,
        order_router,
        holder=providers.Callable(process_holder_id),
        lease_seconds=providers.Callable(lambda s: s.engine_lease_seconds, settings),
        metrics=metrics,
    )
    # mints, transfers and withdrawals: the ledger at once, the chain by jobs
    chain_mirror = providers.Singleton(
        ChainMirror, storage, chain, clock, custody_keys, metrics=metrics
    )
    mint_use_cases = providers.Singleton(
        MintUseCases, storage, authorizer, clock, jobs, chain_mirror
    )
    transfer_use_cases = providers.Singleton(
        TransferUseCases, storage, authorizer, clock, jobs, chain_mirror
    )
    withdrawal_use_cases = providers.Singleton(
        WithdrawalUseCases, storage, authorizer, clock, jobs, chain_mirror, signature_verifier
    )
    deposit_sweeper = providers.Singleton(DepositSweeper, storage, chain, clock, custody_keys, jobs)
    deposit_use_cases = providers.Singleton(
        DepositUseCases,
        storage,
        chain,
        clock,
        custody_keys,
        confirmations=providers.Callable(lambda s: s.effective_chain_confirmations, settings),
        sweeper=deposit_sweeper,
    )
    reconciliation = providers.Singleton(
        Reconciliation, storage, chain, clock, custody_keys, metrics=metrics
    )
    price_fetching = providers.Singleton(
        PriceFetching,
        storage,
        providers.Singleton(build_price_feeds, settings),
        clock,
        providers.Callable(price_policy, settings),
    )
    valuation_fetching = providers.Singleton(
        ValuationFetching,
        storage,
        providers.Singleton(build_valuation_source, settings),
        clock,
        providers.Callable(valuation_policy, settings),
        count=providers.Callable(lambda m: m.valuation_fetched, metrics),
    )
    token_job_scheduler = providers.Singleton(
        TokenJobScheduler,
        jobs,
        prices_seconds=providers.Callable(lambda s: s.price_fetch_seconds, settings),
        valuations_seconds=providers.Callable(
            lambda s: s.valuation_fetch_seconds if s.valuation_fetch_enabled else 0.0, settings
        ),
        sync_seconds=providers.Callable(lambda s: s.deposit_sync_seconds, settings),
        reconcile_seconds=providers.Callable(lambda s: s.reconcile_seconds, settings),
        compliance_seconds=providers.Callable(lambda s: s.compliance_sweep_seconds, settings),
        lease=providers.Singleton(
            StorageLease,
            storage,
            clock,
            name="token-job-scheduler",
            holder=providers.Callable(process_holder_id),
            ttl_seconds=providers.Callable(
                lambda s: max(30.0, 3 * (s.deposit_sync_seconds or s.reconcile_seconds or 10.0)),
                settings,
            ),
        ),
    )
    embedded_stablecoin = providers.Selector(
        providers.Callable(lambda s: "deploy" if s.chain_kind == "evm" else "none", settings),
        deploy=providers.Singleton(
            EmbeddedStablecoin,
            storage,
            chain,
            clock,
            symbol=providers.Callable(lambda s: s.quote_symbol, settings),
            guard=chain_guard,
        ),
        none=providers.Object(None),
    )
    quote_token_setup = providers.Singleton(
        QuoteTokenSetup,
        storage,
        clock,
        symbol=providers.Callable(lambda s: s.quote_symbol, settings),
        address_source=providers.Callable(
            quote_address_source, settings, signature_verifier, embedded_stablecoin
        ),
    )
    retry_policy = providers.Singleton(
        RetryPolicy,
        max_attempts=providers.Callable(lambda s: s.deploy_max_attempts, settings),
        base_delay_seconds=providers.Callable(lambda s: s.deploy_backoff_seconds, settings),
    )
    deployment = providers.Singleton(
        TokenDeployment,
        storage,
        chain,
        jobs,
        clock,
        retry_policy,
        guard=chain_guard,
        custody=custody_keys,
        metrics=metrics,
        # activation creates the market's pair against the quote token, with the fee defaults
        quote_symbol=providers.Callable(lambda s: s.quote_symbol, settings),
        pair_defaults=providers.Callable(
            lambda s: PairDefaults(maker_fee_bps=s.maker_fee_bps, taker_fee_bps=s.taker_fee_bps),
            settings,
        ),
    )
    # verify-compliance: compliance records mirrored on chain (identities, registries, claims)
    compliance_verifier = providers.Singleton(
        ComplianceVerifier,
        storage,
        chain_mirror,
        clock,
        jobs,
        deployment.provided.platform_contracts,
    )
    relay = providers.Singleton(
        OutboxRelay, storage, event_bus, clock, reaction_context=logs.correlated
    )
    candle_aggregator = providers.Singleton(CandleAggregator, storage)
    # execute-blockchain-settlement: trades' RWA leg moved on chain in batches
    trade_settlement = providers.Singleton(
        TradeSettlement,
        storage,
        chain_mirror,
        jobs,
        clock,
        batch_size=providers.Callable(lambda s: s.settlement_batch_size, settings),
        retry_seconds=providers.Callable(lambda s: s.settlement_retry_seconds, settings),
    )
    notifier = providers.Singleton(build_notifier, settings)
    trade_notifications = providers.Singleton(TradeNotifications, storage, notifier, jobs)
    gauges = providers.Singleton(
        GaugeSampler,
        storage,
        jobs,
        metrics,
        clock,
        interval_seconds=GAUGE_SECONDS,
        queue_name=providers.Callable(lambda s: s.jobs_queue, settings),
        pool_usage=providers.Callable(storage_pool_usage, raw_storage),
    )
    token_issuer = providers.Singleton(
        TokenIssuer,
        providers.Callable(lambda s: s.jwt_secret, settings),
        issuer=providers.Callable(lambda s: s.jwt_issuer, settings),
        audience=providers.Callable(lambda s: s.jwt_audience, settings),
        max_ttl_seconds=providers.Callable(lambda s: s.jwt_max_ttl_seconds, settings),
    )
    ws_gateway = providers.Singleton(
        build_gateway,
        event_bus,
        token_issuer,
        market_queries,
        token_use_cases,
        providers.Callable(ws_limits, settings),
        trading=trading,
        metrics=metrics,
        order_rate_limit=providers.Callable(ws_order_rate_limit, settings, rate_limiter),
    )


def register_token_jobs(c: Container, jobs: Any) -> None:
    """The handlers of mint-token, process-transfer and process-withdrawal."""
    jobs.register(MintTokenJob, c.mint_use_cases().handle)
    jobs.register(ProcessTransferJob, c.transfer_use_cases().handle)
    jobs.register(ProcessWithdrawalJob, c.withdrawal_use_cases().handle)
    jobs.register(SyncBlockchainJob, c.deposit_use_cases().handle)
    jobs.register(SweepDepositJob, c.deposit_sweeper().handle)
    jobs.register(ReconcileJob, c.reconciliation().handle)
    jobs.register(SettleTradesJob, c.trade_settlement().handle)
    jobs.register(SendTradeNotificationJob, c.trade_notifications().handle)
    jobs.register(VerifyComplianceJob, c.compliance_verifier().handle)
    jobs.register(FetchExternalPricesJob, c.price_fetching().handle)
    jobs.register(UpdateTokenMetadataJob, c.valuation_fetching().handle)


async def resume_token_jobs(c: Container) -> None:
    """Mints, transfers and withdrawals whose jobs died with an in-process queue."""
    for name, use_cases in (
        ("mints", c.mint_use_cases()),
        ("transfers", c.transfer_use_cases()),
        ("withdrawals", c.withdrawal_use_cases()),
        ("deposit sweeps", c.deposit_sweeper()),
    ):
        count = await use_cases.resume_interrupted()
        if count:
            log.warning("resumed %d interrupted %s", count, name)


@attrs.define
class Runtime:
    """A wired service: start its background parts, serve, stop them in order."""

    settings: Settings
    container: Container
    started: bool = False

    async def start(self) -> None:
        c = self.container
        jobs = c.jobs()
        deployment = c.deployment()
        jobs.register(DeployTokenJob, deployment.handle)
        jobs.register(TokenPauseJob, deployment.handle_pause)
        register_token_jobs(c, jobs)
        relay = c.relay()
        relay.on("market.activation_started", deployment.on_activation_started)
        relay.on("market.paused", deployment.on_market_paused)
        relay.on("market.resumed", deployment.on_market_paused)
        relay.on("market.archived", deployment.on_market_paused)  # archive pauses the token
        for event_type in ("market.paused", "market.resumed", "market.archived"):
            relay.on(event_type, c.trading().on_market_event)  # the pair follows its market
        relay.on(TRADE_EXECUTED, c.candle_aggregator().on_trade_executed)  # aggregate-candles
        relay.on(TRADE_EXECUTED, c.trade_settlement().on_trade_executed)  # coalesced per pair
        relay.on(TRADE_EXECUTED, c.trade_notifications().on_trade_executed)
        relay.on(COMPLIANCE_CHANGED, c.compliance_verifier().on_compliance_changed)
        relay.on(WALLET_EXTERNAL_REGISTERED, c.compliance_verifier().on_wallet_registered)
        c.storage().on_commit(relay.wake)
        # Before any deployment runs: does the chain hold what the database recorded?
        await c.chain_guard().verify()
        quote = await c.quote_token_setup().ensure()  # the stablecoin pairs quote in
        if quote.contract_address is None:
            log.warning("quote token %s has no contract address yet", quote.symbol)
        await jobs.start()
        # Jobs of an in-process queue die with the process: pick up interrupted deployments.
        resumed = 0 if jobs.durable else await deployment.resume_interrupted()
        if resumed:
            log.warning("resumed %d interrupted token deployments", resumed)
        if not jobs.durable:
            await resume_token_jobs(c)
        c.token_job_scheduler().start()  # sync-blockchain and reconcile, when configured
        await c.trading().start()  # every pair's book rebuilt from storage
        await c.trade_settlement().resume()  # trades not yet settled on chain
        relay.start()
        if self.settings.poll_permissions_in_process:
            c.permission_poller().start()
        c.gauges().start()  # markets per status, queue depth, pool use
        self.started = True

    async def stop(self) -> None:
        if not self.started:
            return
        c = self.container
        # In order: what produces work first (the poller, the relay that enqueues jobs), then
        # the jobs, then the clients they use. Each step runs even when one before it failed,
        # and a failure is one log line: a SIGTERM must end cleanly.
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("metrics gauges", c.gauges().stop),
            ("permission poller", c.permission_poller().stop),
            ("outbox relay", c.relay().stop),
            ("token job scheduler", c.token_job_scheduler().stop),
            ("trading writers", c.trading().stop),
            ("order router", self.close_router),
            ("job queue", c.jobs().stop),
            ("chain", c.chain().close),
            ("event bus", c.event_bus().close),
            ("permissions", c.permissions().close),
            ("permission feed", c.permission_feed().close),
            ("sns gateway", c.sns_gateway().close),
            ("rate limiter", c.rate_limiter().close),
            ("notifier", c.notifier().close),
            ("price feeds", c.price_fetching().close),
            ("valuation source", c.valuation_fetching().close),
            ("cache", c.cache().close),
            ("storage", c.storage().close),
            ("metrics", self.close_metrics),
        ]
        for name, step in steps:
            try:
                await step()
            except Exception as exc:
                log.warning("stopping the %s failed: %s: %s", name, type(exc).__name__, exc)
        self.started = False

    def job_broker(self) -> Any:
        """The taskiq broker of the Redis job queue, for ``taskiq worker worker:broker``."""
        jobs = self.container.jobs()
        if not isinstance(jobs, TaskiqJobQueue) or not jobs.durable:
            raise ConfigurationError(
                "a taskiq worker needs the Redis job queue: set RWA_REDIS_URL "
                f"(profile {self.settings.profile!r} gives {type(jobs).__name__})"
            )
        return jobs.broker

    async def start_worker(self) -> None:
        """Inside a ``taskiq worker`` process: taskiq has started the broker and runs the
        receiver; register the job handlers. No relay and no HTTP here: the API processes
        relay the events the jobs commit."""
        c = self.container
        jobs = c.jobs()
        assert isinstance(jobs, TaskiqJobQueue)
        jobs.attach_to_worker()
        await c.chain_guard().verify()
        jobs.register(DeployTokenJob, c.deployment().handle)
        jobs.register(TokenPauseJob, c.deployment().handle_pause)
        register_token_jobs(c, jobs)
        log.info(
            "worker ready: profile=%s queue=%s", self.settings.profile, self.settings.jobs_queue
        )

    async def stop_worker(self) -> None:
        """taskiq calls this after its receiver stopped waiting for running jobs
        (``--wait-tasks-timeout``): what still runs is cancelled and left unacknowledged, for
        another worker, before the clients it uses are closed."""
        c = self.container
        jobs = c.jobs()
        assert isinstance(jobs, TaskiqJobQueue)
        abandoned = await jobs.abandon_running()
        if abandoned:
            log.warning("worker stopping: %d unfinished jobs left for other workers", abandoned)
        await jobs.stop()  # only forgets the queue; taskiq shuts the broker down
        await c.chain().close()
        await c.storage().close()
        await self.close_metrics()

    async def close_router(self) -> None:
        router = self.container.order_router()
        if router is not None:
            await router.close()

    async def run_engine(self, stop: Any) -> None:
        """``rwa-market engine``: own pairs by lease and run their books until ``stop`` (an
        ``asyncio.Event``) is set; then the leases are given back, so another engine takes
        the pairs at once. Events the batches commit are relayed by the API processes."""
        if self.settings.engine_kind != "remote":
            raise ConfigurationError(
                "rwa-market engine serves the production profile (RWA_PROFILE=production with "
                f"RWA_REDIS_URL); profile {self.settings.profile!r} runs the books in process"
            )
        c = self.container
        host = c.engine_host()
        log.info(
            "engine %s: lease %ss, owning pairs as their leases come free",
            host.holder,
            self.settings.engine_lease_seconds,
        )
        try:
            await host.run(stop)
        finally:
            await self.close_router()
            await c.storage().close()
            await self.close_metrics()

    async def close_metrics(self) -> None:
        """In multiprocess mode this process's live gauges leave ``/metrics``."""
        metrics = self.container.metrics()
        if isinstance(metrics, PrometheusMetrics):
            metrics.close()

    async def run_poller(self, stop: Any) -> None:
        """``rwa-market poll``: poll the Core's event feed until ``stop`` (an
        ``asyncio.Event``) is set. Decisions commit to the shared database; the API
        processes' outbox relays carry them on (token deployment)."""
        if self.settings.permission_feed_kind != "http":
            raise ConfigurationError("polling needs RWA_PERMISSIONS_BASE_URL")
        c = self.container
        poller = c.permission_poller()
        poller.start()
        try:
            await stop.wait()
        finally:
            await poller.stop()
            await c.permission_feed().close()
            await c.permissions().close()
            await c.storage().close()

    def readiness(self) -> dict[str, Any]:
        c = self.container
        return {
            "storage": c.storage().ping,
            "eventBus": c.event_bus().ping,
            "chain": c.chain_guard().ping,
            "jobs": c.jobs().ping,
            "permissions": c.permissions().ping,
        }

    def http_app(self) -> Any:
        c = self.container
        metrics = c.metrics()
        deps = HttpDependencies(
            markets=c.market_use_cases(),
            market_queries=c.market_queries(),
            valuations=c.valuations(),
            wallets=c.wallet_use_cases(),
            audit=c.audit_queries(),
            token_use_cases=c.token_use_cases(),
            compliance=c.compliance_use_cases(),
            trading=c.trading(),
            mints=c.mint_use_cases(),
            transfers=c.transfer_use_cases(),
            withdrawals=c.withdrawal_use_cases(),
            deposits=c.deposit_use_cases(),
            tokens=c.token_issuer(),
            ws=c.ws_gateway(),
            metrics=metrics,
            metrics_exposition=(
                metrics.exposition if isinstance(metrics, PrometheusMetrics) else None
            ),
            readiness=self.readiness(),
            max_body_bytes=self.settings.max_body_bytes,
            rate_limit=(
                HttpRateLimit(
                    c.rate_limiter(),
                    self.settings.http_rate_limit,
                    self.settings.http_rate_window_seconds,
                    trusted_proxies=self.settings.trusted_proxies,
                )
                if self.settings.http_rate_limit > 0
                else None
            ),
            order_rate_limit=(
                OrderRateLimit(
                    c.rate_limiter(),
                    self.settings.order_rate_limit,
                    self.settings.order_rate_window_seconds,
                )
                if self.settings.order_rate_limit > 0
                else None
            ),
            webhooks=WebhookDependencies(
                events=c.permission_events(),
                secrets=self.settings.webhook_secrets,
                sns=c.sns_verifier(),
                clock=c.clock(),
                tolerance_seconds=self.settings.webhook_tolerance_seconds,
            ),
        )
        return create_app(deps, on_startup=[self.start], on_shutdown=[self.stop])


def build(settings: Settings | None = None) -> Runtime:
    """A fresh container and runtime for ``settings`` (default: from the environment)."""
    settings = settings or Settings.from_env()
    settings.check()
    if settings.uses_development_secrets and settings.profile != "test":
        log.warning(
            "using DEVELOPMENT-ONLY secrets (RWA_JWT_SECRET / RWA_WEBHOOK_SECRETS unset); "
            "never expose this instance"
        )
    if settings.profile != "test" and settings.custody_mnemonic == DEV_CUSTODY_MNEMONIC:
        log.warning("RWA_CUSTODY_MNEMONIC unset: custodial addresses use a DEVELOPMENT-ONLY seed")
    if settings.profile != "test":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    container = Container(settings=settings)
    return Runtime(settings=settings, container=container)


def migrate(settings: Settings) -> str:
    """Bring the configured database to the newest schema; say what was done."""
    if settings.storage_kind != "sql":
        return f"profile {settings.profile} keeps no database; nothing to migrate"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    upgrade_schema(url)
    return f"database migrated to head: {url.rsplit('@', 1)[-1]}"
