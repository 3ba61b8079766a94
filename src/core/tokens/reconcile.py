"""Reconciliation: the chain against the ledger (``rwa-market reconcile``, the ``reconcile``
job).

- An RWA token lives per address on chain: for every user account of the token in the
  ledger (``available + locked``), the balance of the user's address (their external one if
  registered, else their custodial one) must be equal.
- The stablecoin (and any other token the platform holds in its omnibus address) is
  compared in total: the ledger's sum over all accounts against the omnibus balance plus
  the balance of every deposit address that holds a credited deposit not swept yet
  (``uow.deposits.unswept``; ``core.tokens.sweeps``). Stablecoin sitting at a deposit
  address that no credited deposit explains (a transfer not yet confirmed or synced) is in
  neither figure.

Every difference is a ``Drift`` (``chain - ledger`` in base units). A run appends one
``reconcile.drift`` audit entry per drift (subject ``token:<id>``, before the ledger's
figure, after the chain's) and then one ``reconcile.completed`` summary (subject
``reconciliation``: tokens, accounts, drift count), all in one unit of work and at the same
time; the caller prints the table and ``GET /api/v1/reconciliation`` reads the latest run. What an
operator does about it is in docs/custody.md.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import attrs

from core.ports.audit import audit_entry
from core.ports.chain import Chain
from core.ports.clock import Clock
from core.ports.custody import KeyDerivation
from core.ports.metrics import NO_METRICS, Metrics
from core.ports.storage import Storage, UnitOfWork
from core.shared.events import Actor
from core.tokens.jobs import ReconcileJob
from core.tokens.model import Token, TokenType

DRIFT = "reconcile.drift"
COMPLETED = "reconcile.completed"  # one per run, after its drift entries: the run's summary
SUBJECT = "reconciliation"
SYSTEM = Actor(id="reconcile", type="system")
PAGE = 200

Progress = Callable[[str, int], None]  # (what, how many more accounts were checked)


@attrs.frozen
class Drift:
    token_id: str
    symbol: str
    scope: str  # "address" (an RWA holder) or "total" (omnibus tokens)
    owner: str  # the user id, or "*" for a total
    address: str | None
    ledger: int  # base units
    chain: int

    @property
    def difference(self) -> int:
        return self.chain - self.ledger


@attrs.frozen
class ReconcileReport:
    at: datetime
    tokens: int
    accounts: int
    drifts: list[Drift]


def drift_view(drift: Drift) -> dict[str, object]:
    return {
        "tokenId": drift.token_id,
        "symbol": drift.symbol,
        "scope": drift.scope,
        "owner": drift.owner,
        "address": drift.address,
        "ledger": str(drift.ledger),
        "chain": str(drift.chain),
        "difference": str(drift.difference),
    }


class Reconciliation:
    def __init__(
        self,
        storage: Storage,
        chain: Chain,
        clock: Clock,
        keys: KeyDerivation,
        *,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._storage = storage
        self._metrics = metrics
        self._chain = chain
        self._clock = clock
        self._keys = keys

    async def handle(self, job: ReconcileJob) -> None:
        await self.run()

    async def run(self, progress: Progress | None = None) -> ReconcileReport:
        async with self._storage.unit_of_work(read_only=True) as uow:
            tokens = await _tokens(uow)
        drifts: list[Drift] = []
        accounts = 0
        for token in tokens:
            if token.type is TokenType.RWA:
                found, checked = await self._per_address(token, progress)
            else:
                found, checked = await self._in_total(token, progress)
            drifts += found
            accounts += checked
            # per token symbol, differences summed as absolute values (0: chain and ledger agree)
            self._metrics.reconciliation_drift(token.symbol, sum(abs(d.difference) for d in found))
        now = self._clock.now()
        async with self._storage.unit_of_work() as uow:
            for drift in drifts:
                await uow.audit.append(
                    audit_entry(
                        SYSTEM,
                        DRIFT,
                        f"token:{drift.token_id}",
                        before={"ledger": str(drift.ledger)},
                        after=drift_view(drift),
                        at=now,
                    )
                )
            await uow.audit.append(
                audit_entry(
                    SYSTEM,
                    COMPLETED,
                    SUBJECT,
                    before=None,
                    after={
                        "tokens": len(tokens),
                        "accounts": accounts,
                        "drifts": len(drifts),
                        "driftedSymbols": sorted({d.symbol for d in drifts}),
                    },
                    at=now,
                )
            )
            await uow.commit()
        return ReconcileReport(at=now, tokens=len(tokens), accounts=accounts, drifts=drifts)

    async def _address_of(self, uow: UnitOfWork, user_id: str) -> str | None:
        record = await uow.wallets.get(user_id)
        if record is None:
            return None
        return record.external_address or self._keys.address_for(record.user_number)

    async def _per_address(
        self, token: Token, progress: Progress | None
    ) -> tuple[list[Drift], int]:
        assert token.contract_address is not None
        drifts: list[Drift] = []
        checked = 0
        after: str | None = None
        while True:
            async with self._storage.unit_of_work(read_only=True) as uow:
                page = await uow.ledger.accounts(token.id, limit=PAGE, after_owner=after)
                holders = [
                    (b, await self._address_of(uow, b.account.owner))
                    for b in page
                    if b.account.is_user
                ]
            for balance, address in holders:
                on_chain = (
                    0
                    if address is None
                    else await self._chain.balance_of(token.contract_address, address)
                )
                if on_chain != balance.total:
                    drifts.append(
                        Drift(
                            token.id,
                            token.symbol,
                            "address",
                            balance.account.owner,
                            address,
                            balance.total,
                            on_chain,
                        )
                    )
            checked += len(holders)
            if progress is not None:
                progress(token.symbol, len(holders))
            if len(page) < PAGE:
                return drifts, checked
            after = page[-1].account.owner

    async def _in_total(self, token: Token, progress: Progress | None) -> tuple[list[Drift], int]:
        assert token.contract_address is not None
        async with self._storage.unit_of_work(read_only=True) as uow:
            total = await uow.ledger.total(token.id)
        omnibus = await self._chain.custody_address()
        on_chain = await self._chain.balance_of(token.contract_address, omnibus)
        checked = 1
        if progress is not None:
            progress(token.symbol, 1)
        seen: set[str] = {omnibus}
        after: str | None = None
        while True:  # the deposit addresses still holding a deposit not swept yet
            async with self._storage.unit_of_work(read_only=True) as uow:
                page = await uow.deposits.unswept(token.id, limit=PAGE, after_id=after)
            fresh = sorted({d.address for d in page} - seen)
            seen.update(fresh)
            for address in fresh:
                on_chain += await self._chain.balance_of(token.contract_address, address)
            checked += len(fresh)
            if progress is not None and fresh:
                progress(token.symbol, len(fresh))
            if len(page) < PAGE:
                break
            after = page[-1].id
        if on_chain == total.total:
            return [], checked
        return [
            Drift(token.id, token.symbol, "total", "*", omnibus, total.total, on_chain)
        ], checked


async def _tokens(uow: UnitOfWork) -> list[Token]:
    found: list[Token] = []
    before: str | None = None
    while True:
        page = await uow.tokens.list(None, limit=100, before_id=before)
        found += [
            t for t in page if t.contract_address is not None and t.type is not TokenType.CRYPTO
        ]
        if len(page) < 100:
            return sorted(found, key=lambda t: t.symbol)
        before = page[-1].id
