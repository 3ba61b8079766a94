"""Activation: the ``deploy-token`` job, its retries with backoff, and its outcome.

The job deploys the market's ERC-3643 (T-REX) suite through the Chain port (DESIGN §4, §9):
the platform contracts once per chain (ClaimIssuer, shared country module), then every step
of ``suite_steps``: registries, compliance (with the country module when the market
restricts countries; claim topic 2 when it is for accredited investors only), the token with
the platform as agent, the issuer's identity (their one ONCHAINID identity,
``core.tokens.identities``: deployed by the first market they issue, or by verify-compliance,
and reused by every later market) registered with their country and given the platform's
claims, the supply minted to the issuer's custodial address, the token unpaused.

One market, one contract: each of those transactions is signed, recorded in
``deployment_transactions`` under (market, step) and committed, and only then sent
(``core.markets.transactions``). Every later attempt (a retry, a redelivered job after a
crash, a manual ``activate``) walks the same steps and finds each record: the receipt if it
was mined, the same signed bytes sent again if not. Nothing is deployed or minted twice.

Once every step is mined, ONE unit of work makes the market active with its token's address,
registers the token (type RWA, its contract, the market), credits the issuer's ledger
account with the supply (a mint posting set whose idempotency key is the market's) and, when
the deployment knows the quote token's symbol, creates the pair ``{SYMBOL}-{QUOTE}``
(``core.trading.service.create_pair_for_market``: tick and lot from the registration or the
defaults; a market that has its pair keeps it).

Pause, resume and archive pause and unpause the market's token on chain (archive pauses it
for good): a ``token-pause`` job per lifecycle event, recorded the same way under step
``pause:<event id>``.
"""

from __future__ import annotations

import logging

import attrs

from core.ledger.model import AccountRef
from core.ledger.operations import mint
from core.markets.chain_state import ChainStateGuard
from core.markets.lifecycle import Action
from core.markets.model import Market, MarketStatus
from core.markets.transactions import RecordedTransactions
from core.markets.use_cases import MarketLifecycle, load_market
from core.ports.audit import audit_entry
from core.ports.chain import (
    MINT_STEP,
    PLATFORM_STEPS,
    TOKEN_STEP,
    Chain,
    PlatformContracts,
    PreparedTransaction,
    SuiteSpec,
    TokenCall,
    TokenCallKind,
    suite_created,
    suite_steps,
)
from core.ports.clock import Clock
from core.ports.custody import KeyDerivation
from core.ports.deployments import PLATFORM_SUBJECT
from core.ports.jobs import DeployTokenJob, JobQueue, TokenPauseJob
from core.ports.metrics import NO_METRICS, Metrics
from core.ports.storage import MarketFilter, Storage
from core.shared.errors import ConcurrentModification, NotFound
from core.shared.events import Actor, DomainEvent
from core.shared.money import to_base_units
from core.tokens.identities import UserIdentities
from core.tokens.model import Token, TokenType
from core.tokens.use_cases import register_token, token_view
from core.trading.pairs import CREATE as PAIR_CREATE
from core.trading.pairs import PairDefaults, pair_view
from core.trading.service import create_pair_for_market

log = logging.getLogger(__name__)

WORKER = Actor.system("deploy-token-worker")
DEFAULT_ISSUER_COUNTRY = "US"  # when the market does not restrict countries


# the lifecycle events whose token-pause job pauses the token (the others unpause it)
PAUSING_EVENTS = frozenset({"market.paused", "market.archived"})


class QuoteTokenMissing(NotFound):
    code = "quote_token_missing"


def activation_mint_key(market_id: str) -> str:
    """The idempotency key of the ledger mint that credits a market's supply to its issuer."""
    return f"activation:{market_id}"


@attrs.frozen
class ActivatedSuite:
    """What a completed suite deployment left on chain."""

    token: str  # the token's address
    tx_hash: str  # the transaction that created the token
    block_number: int  # where the token was unpaused (the last step)
    issuer_address: str
    supply: int  # base units minted to the issuer
    contracts: dict[str, str]  # every contract of the suite, by step


@attrs.frozen
class RetryPolicy:
    """``max_attempts`` tries in all; the wait before try n+1 is ``base * factor**(n-1)``."""

    max_attempts: int = 5
    base_delay_seconds: float = 2.0
    factor: float = 2.0
    max_delay_seconds: float = 300.0

    def delay_after(self, attempt: int) -> float:
        delay = self.base_delay_seconds * self.factor ** (attempt - 1)
        return float(min(delay, self.max_delay_seconds))


class TokenDeployment:
    """Runs one attempt of a market's activation and records what came of it."""

    def __init__(
        self,
        storage: Storage,
        chain: Chain,
        jobs: JobQueue,
        clock: Clock,
        retry: RetryPolicy | None = None,
        guard: ChainStateGuard | None = None,
        *,
        custody: KeyDerivation,
        default_country: str = DEFAULT_ISSUER_COUNTRY,
        metrics: Metrics = NO_METRICS,
        quote_symbol: str | None = None,
        pair_defaults: PairDefaults | None = None,
    ) -> None:
        """``quote_symbol``: the quote token (``RWA_QUOTE_SYMBOL``) of the pair activation
        creates, with ``pair_defaults`` (the settings' fees) where the registration did not
        say; ``None`` (a deployment without trading) creates no pair."""
        self._storage = storage
        self._quote_symbol = quote_symbol
        self._pair_defaults = pair_defaults or PairDefaults()
        self._metrics = metrics
        self._guard = guard
        self._chain = chain
        self._jobs = jobs
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._lifecycle = MarketLifecycle(clock)
        self._custody = custody
        self._default_country = default_country
        self.transactions = RecordedTransactions(storage, chain, clock)
        self._identities = UserIdentities(storage, chain, clock)

    async def on_activation_started(self, event: DomainEvent) -> None:
        """Outbox reaction: a committed ``market.activation_started`` becomes a job."""
        await self._jobs.enqueue(DeployTokenJob(market_id=event.aggregate_id, attempt=1))

    async def resume_interrupted(self) -> int:
        """Re-enqueue the deployments of markets left ``activating`` (after a crash)."""
        count = 0
        before: str | None = None
        while True:
            async with self._storage.unit_of_work() as uow:
                page = await uow.markets.list(
                    MarketFilter(status=MarketStatus.ACTIVATING), limit=100, before_id=before
                )
            for market in page:
                attempt = min(market.activation_attempts + 1, self._retry.max_attempts)
                await self._jobs.enqueue(DeployTokenJob(market_id=market.id, attempt=attempt))
                count += 1
            if len(page) < 100:
                return count
            before = page[-1].id

    async def handle(self, job: DeployTokenJob) -> None:
        """The ``deploy-token`` job. Stale or duplicate jobs do nothing; a job whose market
        already has a recorded transaction follows that transaction (one market, one
        contract)."""
        async with self._storage.unit_of_work() as uow:
            try:
                market = await load_market(uow, job.market_id)
            except NotFound:
                log.warning("deploy-token: market %s does not exist", job.market_id)
                return
        if market.status is not MarketStatus.ACTIVATING:
            log.info("deploy-token: market %s is %s, nothing to do", market.id, market.status)
            return
        try:
            if self._guard is not None:
                await self._guard.ensure()
            deployed = await self._deploy(market)
        except Exception as exc:  # every failure counts as a failed attempt
            await self._failed(job, f"{type(exc).__name__}: {exc}")
            return
        for _ in range(3):  # a concurrent job for the same market may activate it first
            try:
                await self._activate(job, deployed)
                self._metrics.deployment_attempt("succeeded")
                return
            except ConcurrentModification:
                continue

    async def _activate(self, job: DeployTokenJob, suite: ActivatedSuite) -> None:
        """One unit of work: the market active with its token, the token registered, the
        issuer's ledger account credited with the supply, the market's pair created."""
        async with self._storage.unit_of_work() as uow:
            current = await load_market(uow, job.market_id)
            if current.status is not MarketStatus.ACTIVATING:
                if current.contract_address != suite.token:
                    log.warning("deploy-token: market %s left activating meanwhile", current.id)
                return
            now = self._clock.now()
            activated = await self._lifecycle.apply(
                uow,
                current,
                Action.COMPLETE_ACTIVATION,
                WORKER,
                changes={
                    "contract_address": suite.token,
                    "deployment_tx_hash": suite.tx_hash,
                    "activated_at": now,
                    "activation_attempts": job.attempt,
                    "activation_error": None,
                },
                metadata={
                    "contractAddress": suite.token,
                    "txHash": suite.tx_hash,
                    "blockNumber": suite.block_number,
                    "holder": suite.issuer_address,
                    "attempt": job.attempt,
                    "contracts": dict(suite.contracts),
                },
            )
            token = await uow.tokens.by_market(current.id)
            if token is None:
                token = Token(
                    symbol=current.token_symbol,
                    name=current.token_name,
                    type=TokenType.RWA,
                    decimals=current.decimals,
                    created_at=now,
                    contract_address=suite.token,
                    market_id=current.id,
                )
                await register_token(uow, token)
                await uow.audit.append(
                    audit_entry(
                        WORKER,
                        "token.create",
                        f"token:{token.id}",
                        before=None,
                        after=token_view(token),
                        at=now,
                    )
                )
            elif token.contract_address is None:
                token = await uow.tokens.set_contract_address(token.id, suite.token)
            account = AccountRef.user(current.issuer_id, token.id)
            await uow.ledger.apply(
                mint(
                    activation_mint_key(current.id),
                    now,
                    account,
                    suite.supply,
                    reference=current.id,
                )
            )
            await uow.audit.append(
                audit_entry(
                    WORKER,
                    "token.mint",
                    f"token:{token.id}",
                    before=None,
                    after={
                        "to": current.issuer_id,
                        "address": suite.issuer_address,
                        "amount": str(suite.supply),
                        "marketId": current.id,
                    },
                    at=now,
                )
            )
            if self._quote_symbol is not None:
                quote = await uow.tokens.by_symbol(self._quote_symbol)
                if quote is None:  # bootstrap registers it before any job runs
                    raise QuoteTokenMissing(f"quote token {self._quote_symbol} is not registered")
                existing = await uow.pairs.by_market(current.id)
                pair = await create_pair_for_market(
                    uow, activated, token, quote, self._pair_defaults, at=now
                )
                if existing is None:
                    await uow.audit.append(
                        audit_entry(
                            WORKER,
                            PAIR_CREATE,
                            f"pair:{pair.id}",
                            before=None,
                            after=pair_view(pair),
                            at=now,
                        )
                    )
            await uow.commit()

    # -- the suite: every transaction recorded before it is sent ----------------------------

    async def platform_contracts(self) -> PlatformContracts:
        """The platform's ClaimIssuer and country module: deployed once per chain, each
        transaction recorded under ``PLATFORM_SUBJECT``."""
        created: dict[str, str] = {}
        for step in PLATFORM_STEPS:

            async def prepare(step: str = step) -> PreparedTransaction:
                return await self._chain.prepare_platform_step(step, created)

            receipt = await self.transactions.run(PLATFORM_SUBJECT, step, prepare)
            if receipt.contract_address is not None:
                created[step] = receipt.contract_address
        return PlatformContracts.from_created(created)

    async def issuer_address(self, market: Market) -> str:
        """The issuer's custodial address (their user number, given once, from the wallets)."""
        for attempt in range(3):
            try:
                async with self._storage.unit_of_work() as uow:
                    wallet = await uow.wallets.get_or_create(
                        market.issuer_id, now=self._clock.now()
                    )
                    await uow.commit()
                return self._custody.address_for(wallet.user_number)
            except ConcurrentModification:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def suite_spec(self, market: Market, platform: PlatformContracts, issuer: str) -> SuiteSpec:
        countries = tuple(market.allowed_countries)
        return SuiteSpec(
            name=market.token_name,
            symbol=market.token_symbol,
            decimals=market.decimals,
            supply=to_base_units(market.total_supply, market.decimals),
            issuer=issuer,
            issuer_country=countries[0] if countries else self._default_country,
            platform=platform,
            accredited_only=market.accredited_investors_only,
            allowed_countries=countries,
        )

    async def _deploy(self, market: Market) -> ActivatedSuite:
        """Every step of the market's suite, from its record when it has one."""
        platform = await self.platform_contracts()
        issuer = await self.issuer_address(market)
        identity = await self._identities.ensure(market.issuer_id)  # one per user
        spec = attrs.evolve(self.suite_spec(market, platform, issuer), issuer_identity=identity)
        created = suite_created(spec)
        token_tx = ""
        block = 0
        for step in suite_steps(spec):

            async def prepare(step: str = step) -> PreparedTransaction:
                return await self._chain.prepare_suite_step(spec, step, created)

            holder = issuer if step == MINT_STEP else None
            receipt = await self.transactions.run(market.id, step, prepare, holder=holder)
            if receipt.contract_address is not None:
                created[step] = receipt.contract_address
            if step == TOKEN_STEP:
                token_tx = receipt.tx_hash
            block = receipt.block_number
        return ActivatedSuite(
            token=created[TOKEN_STEP],
            tx_hash=token_tx,
            block_number=block,
            issuer_address=issuer,
            supply=spec.supply,
            contracts=created,
        )

    # -- pause and resume mirrored on chain ---------------------------------------------------

    async def on_market_paused(self, event: DomainEvent) -> None:
        """Outbox reaction: ``market.paused``, ``market.resumed`` and ``market.archived``
        become a ``token-pause`` job (one per event: its step is ``pause:<event id>``);
        archive pauses the token like pause does."""
        await self._jobs.enqueue(
            TokenPauseJob(
                market_id=event.aggregate_id,
                event_id=event.id,
                paused=event.type in PAUSING_EVENTS,
            )
        )

    async def handle_pause(self, job: TokenPauseJob) -> None:
        """Pause or unpause the market's token, unless it already is, or the market has moved
        on since the event (a late job must not undo a later decision); the transaction is
        recorded before it is sent, and a redelivered job follows its record."""
        async with self._storage.unit_of_work() as uow:
            try:
                market = await load_market(uow, job.market_id)
            except NotFound:
                return
        if market.contract_address is None:
            log.info("token-pause: market %s has no token", market.id)
            return
        token = market.contract_address
        step = f"pause:{job.event_id}"
        async with self._storage.unit_of_work() as uow:
            recorded = await uow.deployments.open_for(market.id, step)
        if recorded is None:
            # an archived market's token stays paused: a pause job still applies, a resume not
            wanted = (
                (MarketStatus.PAUSED, MarketStatus.ARCHIVED)
                if job.paused
                else (MarketStatus.ACTIVE,)
            )
            if market.status not in wanted:
                log.info("token-pause: market %s is %s now; skipping", market.id, market.status)
                return  # a later event's job mirrors the current state
            if await self._chain.is_paused(token) is job.paused:
                return
        kind = TokenCallKind.PAUSE if job.paused else TokenCallKind.UNPAUSE

        async def prepare() -> PreparedTransaction:
            return await self._chain.prepare_token_call(TokenCall(kind, token))

        await self.transactions.run(market.id, step, prepare)
        async with self._storage.unit_of_work() as uow:
            found = await uow.tokens.by_market(market.id)
            if found is not None and found.paused is not job.paused:
                await uow.tokens.set_paused(found.id, job.paused)
                await uow.commit()

    async def _failed(self, job: DeployTokenJob, error: str) -> None:
        final = job.attempt >= self._retry.max_attempts
        for _ in range(3):  # a concurrent change of the market is retried, then given up
            try:
                async with self._storage.unit_of_work() as uow:
                    market = await load_market(uow, job.market_id)
                    if market.status is not MarketStatus.ACTIVATING:
                        return
                    if final:
                        await self._lifecycle.apply(
                            uow,
                            market,
                            Action.FAIL_ACTIVATION,
                            WORKER,
                            changes={"activation_attempts": job.attempt, "activation_error": error},
                            reason=error,
                            metadata={"attempts": job.attempt},
                        )
                    else:
                        await uow.markets.save(
                            attrs.evolve(
                                market,
                                activation_attempts=job.attempt,
                                activation_error=error,
                                updated_at=self._clock.now(),
                            )
                        )
                    await uow.commit()
                break
            except ConcurrentModification:
                continue
        self._metrics.deployment_attempt("failed" if final else "retrying")
        if not final:
            delay = self._retry.delay_after(job.attempt)
            log.warning(
                "deploy-token: market %s attempt %d failed (%s); retrying in %.1fs",
                job.market_id,
                job.attempt,
                error,
                delay,
            )
            await self._jobs.enqueue(
                DeployTokenJob(market_id=job.market_id, attempt=job.attempt + 1),
                delay_seconds=delay,
            )
        else:
            log.error(
                "deploy-token: market %s failed after %d attempts", job.market_id, job.attempt
            )
