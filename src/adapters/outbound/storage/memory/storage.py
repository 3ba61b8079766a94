"""``MemoryStorage``: a real in-process implementation of the storage port."""

from __future__ import annotations

from adapters.outbound.storage.memory.audit import MemoryAuditLog
from adapters.outbound.storage.memory.deployments import MemoryDeploymentRepository
from adapters.outbound.storage.memory.ledger import MemoryLedgerRepository
from adapters.outbound.storage.memory.marketdata import (
    MemoryMarketDataRepository,
    MemoryReferencePriceRepository,
    MemoryValuationRepository,
)
from adapters.outbound.storage.memory.operations import (
    MemoryDepositRepository,
    MemoryMintRepository,
    MemoryTransferRepository,
    MemoryWithdrawalRepository,
)
from adapters.outbound.storage.memory.repositories import (
    MemoryCursorRepository,
    MemoryEventLog,
    MemoryLeaseRepository,
    MemoryMarketRepository,
    MemoryOutbox,
    MemoryProcessedEventRepository,
)
from adapters.outbound.storage.memory.settlement import MemorySettlementRepository
from adapters.outbound.storage.memory.state import ChangeSet, MemoryState
from adapters.outbound.storage.memory.tokens import (
    MemoryComplianceRepository,
    MemoryTokenRepository,
)
from adapters.outbound.storage.memory.trading import (
    MemoryOrderRepository,
    MemoryPairRepository,
    MemoryTradeRepository,
)
from adapters.outbound.storage.memory.wallets import MemoryWalletRepository
from core.ports.storage import ReadOnlyUnitOfWork, Storage, UnitOfWork


class MemoryUnitOfWork(UnitOfWork):
    """Stages changes privately; ``commit()`` applies them atomically, exit discards the rest."""

    def __init__(self, state: MemoryState, *, read_only: bool = False) -> None:
        self._state = state
        self._read_only = read_only
        self._changes: ChangeSet | None = None

    async def _begin(self) -> None:
        if self._changes is not None:
            raise RuntimeError("this unit of work is already open")
        self._open(ChangeSet())

    def _open(self, changes: ChangeSet) -> None:
        self._changes = changes
        self.markets = MemoryMarketRepository(self._state, changes)
        self.events = MemoryEventLog(self._state, changes)
        self.outbox = MemoryOutbox(self._state, changes)
        self.processed_events = MemoryProcessedEventRepository(self._state, changes)
        self.cursors = MemoryCursorRepository(self._state, changes)
        self.ledger = MemoryLedgerRepository(self._state.ledger, changes.ledger)
        self.leases = MemoryLeaseRepository(self._state, changes)
        self.deployments = MemoryDeploymentRepository(self._state.deployments, changes.deployments)
        self.audit = MemoryAuditLog(self._state.audit, changes.audit)
        self.wallets = MemoryWalletRepository(self._state.wallets, changes.wallets)
        self.tokens = MemoryTokenRepository(self._state.tokens, changes.tokens)
        self.compliance = MemoryComplianceRepository(self._state.tokens, changes.tokens)
        ops, staged = self._state.operations, changes.operations
        self.mints = MemoryMintRepository(ops.mints, staged.mints)
        self.transfers = MemoryTransferRepository(ops.transfers, staged.transfers)
        self.withdrawals = MemoryWithdrawalRepository(ops.withdrawals, staged.withdrawals)
        self.deposits = MemoryDepositRepository(ops.deposits, staged.deposits)
        trading, staged_trading = self._state.trading, changes.trading
        self.pairs = MemoryPairRepository(trading, staged_trading)
        self.orders = MemoryOrderRepository(trading, staged_trading)
        self.trades = MemoryTradeRepository(trading, staged_trading)
        self.settlements = MemorySettlementRepository(trading, staged_trading)
        md, md_staged = self._state.marketdata, changes.marketdata
        self.market_data = MemoryMarketDataRepository(md, md_staged)
        self.reference_prices = MemoryReferencePriceRepository(md, md_staged)
        self.valuations = MemoryValuationRepository(md, md_staged)

    async def _end(self) -> None:
        self._changes = None

    async def commit(self) -> None:
        if self._changes is None:
            raise RuntimeError("commit() outside of the unit of work's async with block")
        if self._read_only:
            raise ReadOnlyUnitOfWork("commit() in a read-only unit of work")
        self._state.apply(self._changes)
        self._open(ChangeSet())  # later changes need another commit, as with SQL


class MemoryStorage(Storage):
    """Everything in process memory; shared by every unit of work it hands out."""

    def __init__(self) -> None:
        self._state = MemoryState()

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        return MemoryUnitOfWork(self._state, read_only=read_only)

    async def ping(self) -> None:
        return None
