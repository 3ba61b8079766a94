"""execute-blockchain-settlement on the test profile (memory chain): trades on an activated
market's pair end with the buyer's and the seller's on-chain balances equal to the ledger
(reconcile finds no drift), each trade SETTLED with its batch's hash; a crash between the
broadcast and the record of its outcome settles once; a failed batch marks its trades FAILED
and is retried (the same batch, by the job itself)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

import bootstrap
from adapters.outbound.chain.memory import MemoryChain
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade_async
from bootstrap import Runtime
from core.ledger.model import AccountRef
from core.markets.stablecoin import EmbeddedStablecoin
from core.ports.chain import Chain, ForcedTransfer, PreparedTransaction
from core.ports.notifications import Notification, NotificationFailed, Notifier
from core.ports.settlement import SettlementStatus, TradeSettlement
from core.shared.errors import ChainError
from core.shared.events import DomainEvent
from core.trading.notifications import SendTradeNotificationJob, TradeNotifications
from core.trading.orders import Trade
from core.trading.settlement import TradeSettlement as TradeSettlementService
from settings import ConfigurationError, Settings
from tests.unit.conftest import SECRET, bearer
from tests.unit.doubles import RecordingJobQueue
from tests.unit.test_activation_pair import activated, settle
from tests.unit.test_http_marketdata import BUYER, SELLER, fund, trade

BATCH_FN = "token.batch_forced_transfer"


class SettlementChain(MemoryChain):
    """A memory chain that can refuse the next batches (as a revert would, before anything
    is signed) or lose the connection right after the node accepted a batch."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse_batches = 0
        self.drop_after_send = 0
        self.batches: list[str] = []  # hashes of batch transactions the node accepted
        self._batch_raw: set[str] = set()

    async def prepare_batch_forced_transfer(
        self, token: str, transfers: Sequence[ForcedTransfer]
    ) -> PreparedTransaction:
        if self.refuse_batches > 0:
            self.refuse_batches -= 1
            raise ChainError("transaction reverted: sender balance too low (injected)")
        prepared = await super().prepare_batch_forced_transfer(token, transfers)
        self._batch_raw.add(prepared.transaction.raw_transaction)
        return prepared

    async def send_raw_transaction(self, raw_transaction: str) -> str:
        tx_hash = await super().send_raw_transaction(raw_transaction)
        if raw_transaction in self._batch_raw:
            if tx_hash not in self.batches:
                self.batches.append(tx_hash)
            if self.drop_after_send > 0:
                self.drop_after_send -= 1
                raise ChainError("connection lost after the node took it (injected)")
        return tx_hash


def build(chain: SettlementChain, retry_seconds: float = 0.0) -> Runtime:
    settings = Settings(
        profile="test",
        jwt_secret=SECRET,
        deploy_backoff_seconds=0.01,
        settlement_retry_seconds=retry_seconds,
        settlement_batch_size=50,
    )
    built = bootstrap.build(settings)
    c = built.container
    c.chain.override(providers.Object(chain))
    c.embedded_stablecoin.override(
        providers.Singleton(EmbeddedStablecoin, c.storage, c.chain, c.clock, symbol="USDC")
    )
    return built


@pytest.fixture
def chain() -> SettlementChain:
    return SettlementChain()


@pytest.fixture(params=["memory", "sqlite"])
async def runtime(
    request: pytest.FixtureRequest, chain: SettlementChain, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """The test profile on memory storage, or on SQLite (migrated to head)."""
    built = build(chain)
    if request.param == "memory":
        yield built
        return
    url = f"sqlite+aiosqlite:///{tmp_path / 'settlement.db'}"
    await upgrade_async(url)
    storage = SqlStorage(url)
    built.container.raw_storage.override(providers.Object(storage))
    yield built
    await storage.close()


async def trades_of(runtime: Runtime) -> list[tuple[Trade, TradeSettlement]]:
    async with runtime.container.storage().unit_of_work(read_only=True) as uow:
        pair = await uow.pairs.by_symbol("MDX-USDC")
        assert pair is not None
        found = []
        for t in sorted(await uow.trades.for_pair(pair.id, limit=100), key=lambda t: t.seq):
            settlement = await uow.settlements.get(t.id)
            assert settlement is not None
            found.append((t, settlement))
    return found


async def assert_chain_matches_ledger(runtime: Runtime, chain: Chain) -> None:
    c = runtime.container
    async with c.storage().unit_of_work(read_only=True) as uow:
        token = await uow.tokens.by_symbol("MDX")
        assert token is not None and token.contract_address is not None
        ledger = {
            user: await uow.ledger.balance(AccountRef.user(user, token.id))
            for user in (SELLER, BUYER)
        }
    for user, balance in ledger.items():
        address = await c.chain_mirror().user_address(user)
        on_chain = await chain.balance_of(token.contract_address, address)
        assert on_chain == balance.available + balance.locked, (user, on_chain, balance)
    report = await c.reconciliation().run()
    assert report.drifts == [], report.drifts


async def market(client: Any, runtime: Runtime) -> None:
    """An activated MDX market; both traders approved and mirrored on chain first (their
    verify-compliance jobs done), then funded (a transfer from the issuer, a USDC mint)."""
    await activated(client, runtime, tokenSymbol="MDX", tickSize="0.01", lotSize="1")
    admin = bearer(runtime, "adm", "admin")
    record = {
        "kycStatus": "APPROVED",
        "whitelisted": True,
        "accredited": True,
        "jurisdiction": "US",
        "expiresAt": "2099-12-31T00:00:00Z",
    }
    for user in ("iss-pair", SELLER, BUYER):
        response = await client.post(
            f"/api/v1/tokens/compliance/{user}", json=record, headers=admin
        )
        assert response.status_code in (200, 201), await response.get_json()
    await settle(runtime)
    await fund(client, runtime)


async def test_trades_settle_on_chain_and_the_balances_match_the_ledger(
    client: Any, runtime: Runtime, chain: SettlementChain
) -> None:
    await market(client, runtime)
    await trade(client, runtime, "100.50", "2")
    await trade(client, runtime, "101.25", "3")
    await settle(runtime)
    settled = await trades_of(runtime)
    assert len(settled) == 2
    for _, s in settled:
        assert s.status is SettlementStatus.SETTLED, s
        assert s.tx_hash in chain.batches and s.batch_id is not None and s.error is None
    assert 1 <= len(chain.batches) <= 2  # coalesced: one job settles what is pending
    await assert_chain_matches_ledger(runtime, chain)
    lags = runtime.container.metrics().settlement["trade"]  # the metrics port, per trade
    assert len(lags) == 2 and all(lag >= 0 for lag in lags)
    # a second run finds nothing to do and sends nothing
    report = await runtime.container.trade_settlement().settle_pair(settled[0][0].pair_id)
    assert report.settled == 0 and len(chain.batches) <= 2


async def test_a_crash_between_broadcast_and_record_settles_once(
    client: Any, runtime: Runtime, chain: SettlementChain
) -> None:
    await market(client, runtime)
    chain.drop_after_send = 1
    await trade(client, runtime, "100.00", "4")
    await settle(runtime)
    [(t, s)] = await trades_of(runtime)
    # in flight with its hash recorded (or already followed by a second delivery of the
    # reaction: reactions are at least once)
    assert s.status in (SettlementStatus.SENT, SettlementStatus.SETTLED)
    assert s.tx_hash == chain.batches[0]
    # the next run follows the recorded transaction: no second batch
    await runtime.container.trade_settlement().settle_pair(t.pair_id)
    [(_, s)] = await trades_of(runtime)
    assert s.status is SettlementStatus.SETTLED and s.tx_hash == chain.batches[0]
    assert len(chain.batches) == 1
    await assert_chain_matches_ledger(runtime, chain)


async def test_a_failed_batch_marks_its_trades_failed_and_is_retried(
    client: Any, runtime: Runtime, chain: SettlementChain
) -> None:
    await market(client, runtime)
    chain.refuse_batches = 1000  # every run refused until the test lets it through
    await trade(client, runtime, "100.00", "1")
    await settle(runtime)
    [(t, s)] = await trades_of(runtime)
    assert s.status is SettlementStatus.FAILED and "reverted" in (s.error or "")
    assert chain.batches == []
    batch_id = s.batch_id
    chain.refuse_batches = 0
    report = await runtime.container.trade_settlement().settle_pair(t.pair_id)
    assert report.settled == 1
    [(_, s)] = await trades_of(runtime)
    assert s.status is SettlementStatus.SETTLED and s.batch_id == batch_id  # the same batch
    assert s.tx_hash == chain.batches[0] and len(chain.batches) == 1
    await assert_chain_matches_ledger(runtime, chain)


async def test_the_job_retries_a_failed_batch_by_itself() -> None:
    chain = SettlementChain()
    runtime = build(chain, retry_seconds=0.05)
    async with runtime.http_app().test_app() as app:
        client = app.test_client()
        await market(client, runtime)
        chain.refuse_batches = 2
        await trade(client, runtime, "99.00", "2")
        await settle(runtime)  # the job fails twice, queueing itself after 0.05 s and 0.1 s
        await runtime.container.jobs().join(timeout=10)
        [(_, s)] = await trades_of(runtime)
        assert s.status is SettlementStatus.SETTLED and len(chain.batches) == 1
        await assert_chain_matches_ledger(runtime, chain)


async def test_both_sides_hear_of_the_trade_through_the_signed_webhook() -> None:
    from tests.contract.test_notifications import SECRET as HOOK_SECRET
    from tests.contract.test_notifications import Receiver

    receiver = Receiver()
    receiver.thread.start()
    try:
        chain = SettlementChain()
        settings = Settings(
            profile="test",
            jwt_secret=SECRET,
            deploy_backoff_seconds=0.01,
            notification_webhook_url=receiver.url,
            notification_webhook_secret=HOOK_SECRET,
        )
        runtime = bootstrap.build(settings)
        c = runtime.container
        c.chain.override(providers.Object(chain))
        c.embedded_stablecoin.override(
            providers.Singleton(EmbeddedStablecoin, c.storage, c.chain, c.clock, symbol="USDC")
        )
        async with runtime.http_app().test_app() as app:
            client = app.test_client()
            await market(client, runtime)
            await trade(client, runtime, "100.50", "2")
            await settle(runtime)
            [(t, _)] = await trades_of(runtime)
        by_user = {}
        for headers, raw in receiver.requests:
            assert receiver.verify(headers, raw)
            sent = json.loads(raw)
            by_user[sent["userId"]] = sent
        assert set(by_user) == {SELLER, BUYER}
        assert by_user[BUYER]["data"]["side"] == "BUY" and by_user[BUYER]["data"]["role"] == "taker"
        assert by_user[SELLER]["data"]["side"] == "SELL"
        for user, sent in by_user.items():
            assert sent["id"] == f"trade:{t.id}:{user}" and sent["type"] == "trade.executed"
            assert sent["data"]["price"] == "100.50" and sent["data"]["quantity"] == "2"
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


async def test_trades_settle_on_the_in_process_evm() -> None:
    """The real T-REX contracts: batchForcedTransfer by the agent from the seller's
    custodial address to the buyer's."""
    from adapters.outbound.chain.evm import EvmChain

    evm = EvmChain()
    settings = Settings(profile="test", jwt_secret=SECRET, deploy_backoff_seconds=0.01)
    runtime = bootstrap.build(settings)
    c = runtime.container
    c.chain.override(providers.Object(evm))
    c.embedded_stablecoin.override(
        providers.Singleton(EmbeddedStablecoin, c.storage, c.chain, c.clock, symbol="USDC")
    )
    async with runtime.http_app().test_app() as app:
        client = app.test_client()
        await market(client, runtime)
        await trade(client, runtime, "100.50", "2")
        await trade(client, runtime, "101.00", "3")
        await settle(runtime)
        settled = await trades_of(runtime)
        assert [s.status for _, s in settled] == [SettlementStatus.SETTLED] * 2
        for _, s in settled:
            assert s.tx_hash is not None
            receipt = await evm.transaction_receipt(s.tx_hash)
            assert receipt is not None and receipt.succeeded
        await assert_chain_matches_ledger(runtime, evm)


class FailingNotifier(Notifier):
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise NotificationFailed("webhook answered 503")
        self.sent.append(notification)


async def test_a_failed_notification_is_sent_again_by_its_job(
    client: Any, runtime: Runtime, chain: SettlementChain
) -> None:
    await market(client, runtime)
    await trade(client, runtime, "100.00", "1")
    await settle(runtime)
    [(t, _)] = await trades_of(runtime)
    queue = RecordingJobQueue()
    notifier = FailingNotifier(failures=1)
    notifications = TradeNotifications(
        runtime.container.storage(), notifier, queue, retry_seconds=7
    )
    await notifications.handle(SendTradeNotificationJob(trade_id=t.id))
    assert len(notifier.sent) == 1  # one side failed, the other went through
    [(again, delay)] = queue.jobs
    assert isinstance(again, SendTradeNotificationJob) and delay == 7
    assert again.attempt == 2 and len(again.user_ids) == 1
    await notifications.handle(again)
    assert {n.user_id for n in notifier.sent} == {SELLER, BUYER}
    assert len(queue.jobs) == 1  # nothing more to retry


class DurableRecordingQueue(RecordingJobQueue):
    @property
    def durable(self) -> bool:
        return True


async def test_the_reaction_coalesces_jobs_only_on_an_in_process_queue(
    runtime: Runtime,
) -> None:
    c = runtime.container
    event = DomainEvent(
        type="trade.executed",
        aggregate_id="pair-1",
        actor_id="matching",
        actor_type="system",
        occurred_at=datetime.now(UTC),
    )
    for queue, expected in ((RecordingJobQueue(), 1), (DurableRecordingQueue(), 3)):
        settlement = TradeSettlementService(c.storage(), c.chain_mirror(), queue, c.clock())
        for _ in range(3):
            await settlement.on_trade_executed(event)
        assert [j.pair_id for j, _ in queue.jobs] == ["pair-1"] * expected  # type: ignore[attr-defined]


def test_a_notification_webhook_needs_its_secret() -> None:
    with pytest.raises(ConfigurationError, match="RWA_NOTIFICATION_WEBHOOK_SECRET"):
        Settings(
            profile="test", jwt_secret=SECRET, notification_webhook_url="https://hooks.example/t"
        ).check()
    with pytest.raises(ConfigurationError, match="RWA_NOTIFICATION_WEBHOOK_URL"):
        Settings(profile="test", jwt_secret=SECRET, notification_webhook_url="ftp://x/")
