"""Withdrawals: request (a user), approve or reject (admins), ``process-withdrawal`` (a job).

- ``POST /withdrawals`` ``{tokenId, amount, toAddress}``: the address (422
  ``invalid_address``), the permissions port (403), an address the platform holds the key of
  (its own, any user's custodial deposit address: 422 ``withdrawal_to_platform_address``),
  the token (404; one with a contract on chain, else 409 ``token_not_on_chain``), the amount
  in its decimals (422), compliance for an RWA token (403); then in one unit of
  work the amount moves from available to locked (posting set ``withdrawal:<id>:request``;
  too little is 409 ``insufficient_funds``, nothing written), the withdrawal is stored
  ``PENDING_APPROVAL`` and ``withdrawal.request`` audited.
- approve: ``APPROVED`` (audited ``withdrawal.approve``), and the job is queued; reject:
  the lock goes back to available, ``REJECTED`` (``withdrawal.reject``). Either only from
  ``PENDING_APPROVAL`` (409 ``withdrawal_not_pending``); two admins deciding at once: one wins.
- ``process-withdrawal``: the transaction (a forced transfer from the user's address for an
  RWA token, an ERC-20 transfer from the omnibus address otherwise) is recorded before it is
  broadcast and followed on every retry, so it is never sent twice. Mined: the lock is
  consumed (``withdrawn`` grows) and the withdrawal is ``COMPLETED`` with its hash. Refused
  or reverted: the lock goes back to available, ``FAILED`` with the reason. Still in flight
  when the job stops (no receipt yet): ``SENT`` with its hash, and the job is retried.
"""

from __future__ import annotations

import logging

import attrs

from core.ledger import operations as postings
from core.ledger.model import AccountRef
from core.markets.queries import decode_cursor, encode_cursor
from core.ports.audit import audit_entry
from core.ports.chain import TokenCall, TokenCallKind
from core.ports.clock import Clock
from core.ports.custody import MalformedAddress, SignatureVerifier
from core.ports.jobs import JobQueue
from core.ports.storage import Storage
from core.shared.authorization import Authorizer
from core.shared.errors import ChainError, ConcurrentModification, ValidationFailed
from core.shared.events import Actor
from core.tokens.chain_mirror import ChainMirror, Refused
from core.tokens.compliance_use_cases import require_compliant
from core.tokens.jobs import ProcessWithdrawalJob
from core.tokens.mint import require_on_chain
from core.tokens.model import MAX_DECIMALS, TokenType, check_user_id
from core.tokens.operations import (
    OperationNotFound,
    Withdrawal,
    WithdrawalNotPending,
    WithdrawalStatus,
    parse_units,
)
from core.tokens.pending import PendingOperations
from core.tokens.use_cases import find_token, require_reader

log = logging.getLogger(__name__)

REQUEST = "withdrawal.request"
APPROVE = "withdrawal.approve"
READ = "withdrawal.read"
READ_ANY = "withdrawal.read_any"
SYSTEM = Actor(id="process-withdrawal", type="system")
MAX_PAGE = 100


@attrs.frozen
class WithdrawalPage:
    items: list[Withdrawal]
    limit: int
    next_cursor: str | None


def withdrawal_view(w: Withdrawal) -> dict[str, object]:
    return {
        "id": w.id,
        "tokenId": w.token_id,
        "userId": w.user_id,
        "amount": str(w.amount),  # base units
        "toAddress": w.to_address,
        "status": w.status.value,
        "decidedBy": w.decided_by,
        "txHash": w.tx_hash,
        "error": w.error,
    }


class WithdrawalUseCases:
    def __init__(
        self,
        storage: Storage,
        authorizer: Authorizer,
        clock: Clock,
        jobs: JobQueue,
        mirror: ChainMirror,
        addresses: SignatureVerifier,
    ) -> None:
        self._storage = storage
        self._authorizer = authorizer
        self._clock = clock
        self._jobs = jobs
        self._mirror = mirror
        self._pending: PendingOperations[Withdrawal] = PendingOperations(
            storage,
            jobs,
            records=lambda uow: uow.withdrawals,
            waiting=lambda uow, limit: uow.withdrawals.unfinished(limit=limit),
            job=lambda withdrawal_id: ProcessWithdrawalJob(withdrawal_id=withdrawal_id),
            is_waiting=lambda w: w.status in (WithdrawalStatus.APPROVED, WithdrawalStatus.SENT),
        )
        self._addresses = addresses

    def _address(self, value: object) -> str:
        if not isinstance(value, str):
            raise MalformedAddress("toAddress")
        try:
            return self._addresses.checksum_address(value)
        except MalformedAddress as exc:
            raise MalformedAddress("toAddress") from exc

    async def request(
        self, actor: Actor, reference: object, amount: object, to_address: object
    ) -> Withdrawal:
        fields: dict[str, str] = {}
        address = ""
        try:
            address = self._address(to_address)
        except ValidationFailed as exc:
            fields.update(exc.fields)
            first: ValidationFailed | None = exc
        else:
            first = None
        try:
            parse_units(amount, MAX_DECIMALS)
        except ValidationFailed as exc:
            fields.update(exc.fields)
            first = first or exc
        if not isinstance(reference, str) or not reference.strip():
            fields["tokenId"] = "must be a token id or symbol"
        if fields:
            if first is not None and len(fields) == 1:
                raise first  # its own code: invalid_address, invalid_amount
            raise ValidationFailed("the withdrawal is invalid", fields=fields)
        assert isinstance(reference, str)
        user_id = check_user_id(actor.id, "sub")
        await self._authorizer.require(actor, REQUEST, owner_id=user_id)
        await self._mirror.addresses.refuse_platform_address(address)
        async with self._storage.unit_of_work() as uow:
            now = self._clock.now()
            token = await find_token(uow, reference)
            require_on_chain(token)
            units = parse_units(amount, token.decimals)
            await require_compliant(uow, user_id, token, now)
            withdrawal = Withdrawal(
                token_id=token.id,
                user_id=user_id,
                amount=units,
                to_address=address,
                actor_id=actor.id,
                created_at=now,
                updated_at=now,
            )
            await uow.ledger.apply(
                postings.request_withdrawal(
                    withdrawal.id, now, AccountRef.user(user_id, token.id), units
                )
            )
            await uow.withdrawals.add(withdrawal)
            await uow.audit.append(
                audit_entry(
                    actor,
                    REQUEST,
                    f"withdrawal:{withdrawal.id}",
                    before=None,
                    after=withdrawal_view(withdrawal),
                    at=now,
                )
            )
            await uow.commit()
        return withdrawal

    async def _load(self, withdrawal_id: str) -> Withdrawal:
        async with self._storage.unit_of_work(read_only=True) as uow:
            found = await uow.withdrawals.get(withdrawal_id)
        if found is None:
            raise OperationNotFound("withdrawal", withdrawal_id)
        return found

    async def approve(self, actor: Actor, withdrawal_id: str) -> Withdrawal:
        await self._authorizer.require(actor, APPROVE)
        approved = await self._decide(actor, withdrawal_id, WithdrawalStatus.APPROVED)
        await self._jobs.enqueue(ProcessWithdrawalJob(withdrawal_id=approved.id))
        return approved

    async def reject(self, actor: Actor, withdrawal_id: str) -> Withdrawal:
        await self._authorizer.require(actor, APPROVE)
        return await self._decide(actor, withdrawal_id, WithdrawalStatus.REJECTED)

    async def _decide(
        self, actor: Actor, withdrawal_id: str, status: WithdrawalStatus
    ) -> Withdrawal:
        async with self._storage.unit_of_work() as uow:
            now = self._clock.now()
            current = await uow.withdrawals.get(withdrawal_id)
            if current is None:
                raise OperationNotFound("withdrawal", withdrawal_id)
            if current.status is not WithdrawalStatus.PENDING_APPROVAL:
                raise WithdrawalNotPending(current)
            decided = attrs.evolve(
                current,
                status=status,
                decided_by=actor.id,
                updated_at=now,
                version=current.version + 1,
            )
            if status is WithdrawalStatus.REJECTED:
                await uow.ledger.apply(
                    postings.release_withdrawal(
                        current.id,
                        now,
                        AccountRef.user(current.user_id, current.token_id),
                        current.amount,
                        outcome="reject",
                    )
                )
            try:
                await uow.withdrawals.update(decided)
            except ConcurrentModification as exc:
                raise WithdrawalNotPending(current) from exc
            action = APPROVE if status is WithdrawalStatus.APPROVED else "withdrawal.reject"
            await uow.audit.append(
                audit_entry(
                    actor,
                    action,
                    f"withdrawal:{current.id}",
                    before=withdrawal_view(current),
                    after=withdrawal_view(decided),
                    at=now,
                )
            )
            try:
                await uow.commit()
            except ConcurrentModification as exc:  # another admin decided meanwhile
                raise WithdrawalNotPending(current) from exc
        return decided

    async def get(self, actor: Actor, withdrawal_id: str) -> Withdrawal:
        found = await self._load(withdrawal_id)
        require_reader(actor, found.user_id, READ, READ_ANY, "withdrawals")
        return found

    async def for_user(
        self, actor: Actor, user_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> WithdrawalPage:
        user_id = check_user_id(user_id)
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed("bad limit", fields={"limit": f"must be 1 to {MAX_PAGE}"})
        before = decode_cursor(cursor) if cursor else None
        require_reader(actor, user_id, READ, READ_ANY, "withdrawals")
        async with self._storage.unit_of_work(read_only=True) as uow:
            rows = await uow.withdrawals.for_user(user_id, limit=limit + 1, before_id=before)
        items = rows[:limit]
        more = len(rows) > limit and bool(items)
        return WithdrawalPage(
            items=items, limit=limit, next_cursor=encode_cursor(items[-1].id) if more else None
        )

    async def awaiting_approval(
        self, actor: Actor, *, limit: int = 20, cursor: str | None = None
    ) -> WithdrawalPage:
        """Every user's withdrawals waiting for an admin's decision, oldest first (admins:
        ``withdrawal.read_any``); cursor pages."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed("bad limit", fields={"limit": f"must be 1 to {MAX_PAGE}"})
        after = decode_cursor(cursor) if cursor else None
        require_reader(actor, "", READ_ANY, READ_ANY, "withdrawals")
        async with self._storage.unit_of_work(read_only=True) as uow:
            rows = await uow.withdrawals.awaiting_approval(limit=limit + 1, after_id=after)
        items = rows[:limit]
        more = len(rows) > limit and bool(items)
        return WithdrawalPage(
            items=items, limit=limit, next_cursor=encode_cursor(items[-1].id) if more else None
        )

    async def resume_interrupted(self) -> int:
        """Queue the job again for every approved withdrawal not yet finished
        (``core.tokens.pending``)."""
        return await self._pending.resume_interrupted()

    # -- the process-withdrawal job ------------------------------------------------------------

    async def handle(self, job: ProcessWithdrawalJob) -> None:
        loaded = await self._pending.load(job.withdrawal_id)
        if loaded is None:
            return
        withdrawal, token = loaded
        contract = token.contract_address
        try:
            if contract is None:
                raise Refused(f"token {token.symbol} has no contract on chain")
            if token.type is TokenType.RWA:
                source = await self._mirror.holder_address(token, withdrawal.user_id)
                call = TokenCall(
                    TokenCallKind.FORCED_TRANSFER,
                    contract,
                    account=source,
                    receiver=withdrawal.to_address,
                    amount=withdrawal.amount,
                )
            else:  # held in the omnibus address: an ERC-20 transfer from it
                call = TokenCall(
                    TokenCallKind.TRANSFER,
                    contract,
                    account=withdrawal.to_address,
                    amount=withdrawal.amount,
                )
            receipt = await self._mirror.send_once(
                withdrawal.id, lambda: self._mirror.chain.prepare_token_call(call)
            )
        except Refused as exc:
            await self._finish(withdrawal, WithdrawalStatus.FAILED, error=exc.reason)
            return
        except ChainError:
            in_flight = await self._mirror.in_flight(withdrawal.id)
            if in_flight is not None and withdrawal.status is WithdrawalStatus.APPROVED:
                await self._finish(withdrawal, WithdrawalStatus.SENT, tx_hash=in_flight)
            raise
        self._mirror.settled("withdrawal", withdrawal.updated_at)  # approved (or sent) then
        await self._finish(withdrawal, WithdrawalStatus.COMPLETED, tx_hash=receipt.tx_hash)

    async def _finish(
        self,
        withdrawal: Withdrawal,
        status: WithdrawalStatus,
        *,
        tx_hash: str | None = None,
        error: str | None = None,
    ) -> None:
        for _ in range(3):
            try:
                await self._apply_outcome(withdrawal, status, tx_hash, error)
                return
            except ConcurrentModification:
                withdrawal = await self._load(withdrawal.id)
                if withdrawal.status not in (WithdrawalStatus.APPROVED, WithdrawalStatus.SENT):
                    return  # another job finished it
        log.warning("withdrawal %s kept changing; left for a retry", withdrawal.id)

    async def _apply_outcome(
        self,
        withdrawal: Withdrawal,
        status: WithdrawalStatus,
        tx_hash: str | None,
        error: str | None,
    ) -> None:
        async with self._storage.unit_of_work() as uow:
            now = self._clock.now()
            account = AccountRef.user(withdrawal.user_id, withdrawal.token_id)
            done = attrs.evolve(
                withdrawal,
                status=status,
                tx_hash=tx_hash or withdrawal.tx_hash,
                error=error,
                updated_at=now,
                version=withdrawal.version + 1,
            )
            if status is WithdrawalStatus.COMPLETED:
                await uow.ledger.apply(
                    postings.complete_withdrawal(withdrawal.id, now, account, withdrawal.amount)
                )
            elif status is WithdrawalStatus.FAILED:
                await uow.ledger.apply(
                    postings.release_withdrawal(
                        withdrawal.id, now, account, withdrawal.amount, outcome="fail"
                    )
                )
            await uow.withdrawals.update(done)
            await uow.audit.append(
                audit_entry(
                    SYSTEM,
                    f"withdrawal.{status.value.lower()}",
                    f"withdrawal:{withdrawal.id}",
                    before=withdrawal_view(withdrawal),
                    after=withdrawal_view(done),
                    at=now,
                )
            )
            await uow.commit()
