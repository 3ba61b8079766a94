"""Background jobs of token operations (task names are explicit: brokers route on them)."""

from __future__ import annotations

from typing import ClassVar

import attrs

from core.ports.jobs import Job


@attrs.frozen
class MintTokenJob(Job):
    """Mint on chain, then credit the ledger (``core.tokens.mint``)."""

    name: ClassVar[str] = "mint-token"
    mint_id: str


@attrs.frozen
class ProcessTransferJob(Job):
    """Mirror a ledger transfer of an RWA token on chain (``core.tokens.transfers``)."""

    name: ClassVar[str] = "process-transfer"
    transfer_id: str


@attrs.frozen
class ProcessWithdrawalJob(Job):
    """Send an approved withdrawal (``core.tokens.withdrawals``)."""

    name: ClassVar[str] = "process-withdrawal"
    withdrawal_id: str


@attrs.frozen
class SyncBlockchainJob(Job):
    """Read confirmed Transfer logs to users' addresses and credit deposits once
    (``core.tokens.deposits``)."""

    name: ClassVar[str] = "sync-blockchain"
    reason: str = "scheduled"


@attrs.frozen
class ReconcileJob(Job):
    """Compare on-chain balances with the ledger (``core.tokens.reconcile``)."""

    name: ClassVar[str] = "reconcile"
    reason: str = "scheduled"


@attrs.frozen
class SweepDepositJob(Job):
    """Move a credited stablecoin deposit from its deposit address into the omnibus address
    (``core.tokens.sweeps``)."""

    name: ClassVar[str] = "sweep-deposit"
    deposit_id: str
