"""Sweeps: a credited stablecoin deposit moves from the user's deposit address into the
omnibus address (DESIGN §9: the stablecoin is held in the omnibus; deposits arrive at users'
deposit addresses and are swept to it).

The ledger does not change: the user was credited when the deposit was read
(``core.tokens.deposits``); the sweep is custody-internal. Per deposit, subject
``sweep:<deposit id>`` of ``RecordedTransactions`` (each transaction recorded before it is
broadcast, followed on a retry, never sent twice):

1. ``fund#<n>``, only when the deposit address holds less native coin than its transfer's
   gas (``Chain.custodial_transfer_fee``): the platform sends it just the missing amount
   (``n`` counts the funding transactions already mined for the deposit, so a price that rose
   after a funding gets a new one, and a crash after a funding finds it instead);
2. ``sweep``: an ERC-20 ``transfer`` of the deposit's amount to the omnibus address, signed
   with the deposit address's own key (``KeyDerivation.signer_for(user number)``) and that
   address's own nonce;
3. in one unit of work: the deposit's ``sweep_tx_hash`` set and ``deposit.sweep`` audited
   (visible to admins in ``GET /audit`` and as ``sweepTxHash`` in the deposit).

A sweep the chain refuses or that reverts leaves the deposit unswept (logged); the next
``sync-blockchain`` run, or the next start, queues it again. Reconciliation counts the
stablecoin over the omnibus plus the addresses of deposits not swept yet.
"""

from __future__ import annotations

import logging

import attrs

from core.markets.transactions import RecordedTransactions
from core.ports.audit import audit_entry
from core.ports.chain import Chain, PreparedTransaction
from core.ports.clock import Clock
from core.ports.custody import KeyDerivation
from core.ports.jobs import JobQueue
from core.ports.storage import Storage
from core.shared.errors import ChainError, ConcurrentModification
from core.shared.events import Actor
from core.tokens.jobs import SweepDepositJob
from core.tokens.model import Token, TokenType
from core.tokens.operations import Deposit, DepositStatus

log = logging.getLogger(__name__)

SWEEP = "deposit.sweep"
SWEEP_STEP = "sweep"
FUND_STEP = "fund#"
SYSTEM = Actor(id="sweep-deposit", type="system")
PAGE = 200


def sweep_subject(deposit_id: str) -> str:
    return f"sweep:{deposit_id}"


def is_swept_token(token: Token) -> bool:
    """Tokens the platform holds in its omnibus address: every on-chain token but RWA ones
    (which live per holder address) and CRYPTO ones (not moved on chain by us)."""
    return token.contract_address is not None and token.type is TokenType.STABLE


class DepositSweeper:
    def __init__(
        self,
        storage: Storage,
        chain: Chain,
        clock: Clock,
        keys: KeyDerivation,
        jobs: JobQueue,
    ) -> None:
        self._storage = storage
        self._chain = chain
        self._clock = clock
        self._keys = keys
        self._jobs = jobs
        self._recorded = RecordedTransactions(storage, chain, clock)

    async def enqueue_unswept(self, token: Token) -> int:
        """Queue a sweep for every credited, unswept deposit of ``token``; how many."""
        if not is_swept_token(token):
            return 0
        count = 0
        after: str | None = None
        while True:
            async with self._storage.unit_of_work(read_only=True) as uow:
                page = await uow.deposits.unswept(token.id, limit=PAGE, after_id=after)
            for deposit in page:
                await self._jobs.enqueue(SweepDepositJob(deposit_id=deposit.id))
            count += len(page)
            if len(page) < PAGE:
                return count
            after = page[-1].id

    async def resume_interrupted(self) -> int:
        """Queue the sweeps not finished yet (an in-process queue loses its jobs with the
        process; the job follows any recorded transaction)."""
        async with self._storage.unit_of_work(read_only=True) as uow:
            tokens = await uow.tokens.list(TokenType.STABLE, limit=100)
        return sum([await self.enqueue_unswept(t) for t in tokens])

    async def handle(self, job: SweepDepositJob) -> None:
        async with self._storage.unit_of_work(read_only=True) as uow:
            deposit = await uow.deposits.get(job.deposit_id)
            token = None if deposit is None else await uow.tokens.get(deposit.token_id)
            wallet = None if deposit is None else await uow.wallets.get(deposit.user_id)
        if deposit is None or token is None or wallet is None or not is_swept_token(token):
            return
        if deposit.status is not DepositStatus.CREDITED or deposit.sweep_tx_hash is not None:
            return  # not credited (yet), or swept already
        if self._keys.address_for(wallet.user_number) != deposit.address:
            log.warning("deposit %s is not at its user's custodial address", deposit.id)
            return
        try:
            tx_hash = await self._sweep(deposit, token, wallet.user_number)
        except ChainError as exc:
            log.warning("sweep of deposit %s not done: %s", deposit.id, exc.message)
            raise
        await self._finish(deposit, tx_hash)

    async def _sweep(self, deposit: Deposit, token: Token, index: int) -> str:
        assert token.contract_address is not None
        contract = token.contract_address
        subject = sweep_subject(deposit.id)
        omnibus = await self._chain.custody_address()
        async with self._storage.unit_of_work(read_only=True) as uow:
            started = await uow.deployments.open_for(subject, SWEEP_STEP)
        if started is None:  # nothing sent yet: the address needs gas for it first
            await self._fund(deposit, contract, omnibus)
        signer = self._keys.signer_for(index)

        async def prepare() -> PreparedTransaction:
            return await self._chain.prepare_custodial_transfer(
                signer, contract, omnibus, deposit.amount
            )

        receipt = await self._recorded.run(
            subject, SWEEP_STEP, prepare, for_market=False, signer=deposit.address
        )
        return receipt.tx_hash

    async def _fund(self, deposit: Deposit, contract: str, omnibus: str) -> None:
        subject = sweep_subject(deposit.id)
        fee = await self._chain.custodial_transfer_fee(
            contract, deposit.address, omnibus, deposit.amount
        )
        held = await self._chain.native_balance(deposit.address)
        mined = await self._recorded.mined(subject)
        funded = sum(1 for step in mined if step.startswith(FUND_STEP))
        async with self._storage.unit_of_work(read_only=True) as uow:
            open_fund = await uow.deployments.open_for(subject, f"{FUND_STEP}{funded}")
        if held >= fee and open_fund is None:
            return
        missing = max(fee - held, 1)
        await self._recorded.run(
            subject,
            f"{FUND_STEP}{funded}",
            lambda: self._chain.prepare_native_transfer(deposit.address, missing),
            for_market=False,
        )

    async def _finish(self, deposit: Deposit, tx_hash: str) -> None:
        omnibus = await self._chain.custody_address()
        for _ in range(3):
            try:
                await self._mark_swept(deposit, tx_hash, omnibus)
                return
            except ConcurrentModification:
                continue
        log.warning("deposit %s kept changing; its sweep is recorded, not yet marked", deposit.id)

    async def _mark_swept(self, deposit: Deposit, tx_hash: str, omnibus: str) -> None:
        """Set the deposit's sweep hash and audit it in one unit of work (nothing when it was
        marked already)."""
        async with self._storage.unit_of_work() as uow:
            current = await uow.deposits.get(deposit.id)
            if current is None or current.sweep_tx_hash is not None:
                return
            now = self._clock.now()
            swept = attrs.evolve(
                current, sweep_tx_hash=tx_hash, updated_at=now, version=current.version + 1
            )
            await uow.deposits.update(swept)
            await uow.audit.append(
                audit_entry(
                    SYSTEM,
                    SWEEP,
                    f"deposit:{deposit.id}",
                    before={"sweepTxHash": None},
                    after={
                        "sweepTxHash": tx_hash,
                        "from": deposit.address,
                        "to": omnibus,
                        "amount": str(deposit.amount),
                        "tokenId": deposit.token_id,
                    },
                    at=now,
                )
            )
            await uow.commit()
