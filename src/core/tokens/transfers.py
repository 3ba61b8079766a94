"""Transfers between users: ``POST /tokens/:token/transfer``, then ``process-transfer``.

The caller moves their own funds; an admin may name another sender (``fromUserId``,
``token.transfer_any``). Checks, in order: the fields (422; a transfer to oneself 422
``self_transfer``), the permissions port (403), the token (404), the amount in its decimals
(422), the receiver known to the platform (404 ``user_not_found``), the compliance of both
users for an RWA token (403 naming the failed check). Then, in one unit of work, the ledger
moves at once (posting set ``transfer:<id>``; too little available is 409
``insufficient_funds`` and nothing is written), the transfer is stored and ``token.transfer``
audited.

On chain: an RWA token lives per user address, so ``process-transfer`` mirrors the move
with the agent's forced transfer (recorded before it is sent, never twice) and marks the
transfer ``COMPLETED`` with its hash; a refusal marks it ``FAILED`` (the ledger keeps the
move; reconciliation reports the address drift for an operator). Other tokens sit in the
omnibus address, where a move between users changes nothing on chain: ``COMPLETED`` at once.
"""

from __future__ import annotations

import logging

import attrs

from core.ledger import operations as postings
from core.ledger.model import AccountRef
from core.ports.audit import audit_entry
from core.ports.chain import TokenCall, TokenCallKind
from core.ports.clock import Clock
from core.ports.jobs import JobQueue
from core.ports.storage import Storage
from core.shared.authorization import Authorizer
from core.shared.errors import ConcurrentModification
from core.shared.events import Actor
from core.tokens.chain_mirror import ChainMirror, Refused
from core.tokens.compliance_use_cases import require_compliant
from core.tokens.jobs import ProcessTransferJob
from core.tokens.model import MAX_DECIMALS, Token, TokenType, UserNotFound, check_user_id
from core.tokens.operations import (
    OperationNotFound,
    OperationStatus,
    SelfTransfer,
    Transfer,
    parse_units,
)
from core.tokens.pending import PendingOperations
from core.tokens.use_cases import find_token, user_is_known

log = logging.getLogger(__name__)

TRANSFER = "token.transfer"
TRANSFER_ANY = "token.transfer_any"  # another user's funds (admins)
SYSTEM = Actor(id="process-transfer", type="system")


def transfer_view(transfer: Transfer) -> dict[str, object]:
    return {
        "id": transfer.id,
        "tokenId": transfer.token_id,
        "fromUserId": transfer.from_user_id,
        "toUserId": transfer.to_user_id,
        "amount": str(transfer.amount),  # base units
        "status": transfer.status.value,
        "txHash": transfer.tx_hash,
        "error": transfer.error,
    }


def mirrored_on_chain(token: Token) -> bool:
    return token.type is TokenType.RWA and token.contract_address is not None


class TransferUseCases:
    def __init__(
        self,
        storage: Storage,
        authorizer: Authorizer,
        clock: Clock,
        jobs: JobQueue,
        mirror: ChainMirror,
    ) -> None:
        self._storage = storage
        self._authorizer = authorizer
        self._clock = clock
        self._jobs = jobs
        self._mirror = mirror
        self._pending: PendingOperations[Transfer] = PendingOperations(
            storage,
            jobs,
            records=lambda uow: uow.transfers,
            waiting=lambda uow, limit: uow.transfers.pending(limit=limit),
            job=lambda transfer_id: ProcessTransferJob(transfer_id=transfer_id),
            is_waiting=lambda transfer: transfer.status is OperationStatus.PENDING,
        )

    async def transfer(
        self,
        actor: Actor,
        reference: str,
        to_user_id: object,
        amount: object,
        from_user_id: object = None,
    ) -> Transfer:
        receiver = check_user_id(to_user_id, "toUserId")
        sender = actor.id if from_user_id is None else check_user_id(from_user_id, "fromUserId")
        parse_units(amount, MAX_DECIMALS)
        if sender == receiver:
            raise SelfTransfer()
        await self._authorizer.require(actor, TRANSFER)
        if sender != actor.id:
            await self._authorizer.require(actor, TRANSFER_ANY)
        async with self._storage.unit_of_work() as uow:
            now = self._clock.now()
            token = await find_token(uow, reference)
            units = parse_units(amount, token.decimals)
            if not await user_is_known(uow, receiver):
                raise UserNotFound(receiver)
            await require_compliant(uow, sender, token, now)
            await require_compliant(uow, receiver, token, now)
            transfer = Transfer(
                token_id=token.id,
                from_user_id=sender,
                to_user_id=receiver,
                amount=units,
                actor_id=actor.id,
                created_at=now,
                updated_at=now,
                status=(
                    OperationStatus.PENDING
                    if mirrored_on_chain(token)
                    else OperationStatus.COMPLETED
                ),
            )
            await uow.ledger.apply(
                postings.transfer_between(
                    f"transfer:{transfer.id}",
                    now,
                    AccountRef.user(sender, token.id),
                    AccountRef.user(receiver, token.id),
                    units,
                    reference=transfer.id,
                )
            )
            await uow.transfers.add(transfer)
            await uow.audit.append(
                audit_entry(
                    actor,
                    TRANSFER,
                    f"transfer:{transfer.id}",
                    before=None,
                    after=transfer_view(transfer),
                    at=now,
                )
            )
            await uow.commit()
        if transfer.status is OperationStatus.PENDING:
            await self._jobs.enqueue(ProcessTransferJob(transfer_id=transfer.id))
        return transfer

    async def get(self, actor: Actor, transfer_id: str) -> Transfer:
        async with self._storage.unit_of_work(read_only=True) as uow:
            transfer = await uow.transfers.get(transfer_id)
        if transfer is None:
            raise OperationNotFound("transfer", transfer_id)
        if actor.id not in (transfer.from_user_id, transfer.to_user_id):
            await self._authorizer.require(actor, TRANSFER_ANY)
        return transfer

    async def resume_interrupted(self) -> int:
        """Queue the job again for every transfer not yet mirrored (``core.tokens.pending``)."""
        return await self._pending.resume_interrupted()

    # -- the process-transfer job --------------------------------------------------------------

    async def handle(self, job: ProcessTransferJob) -> None:
        loaded = await self._pending.load(job.transfer_id)
        if loaded is None:
            return
        transfer, token = loaded
        if not mirrored_on_chain(token):
            await self._finish(transfer, OperationStatus.COMPLETED)
            return
        assert token.contract_address is not None
        try:
            source = await self._mirror.holder_address(token, transfer.from_user_id)
            target = await self._mirror.holder_address(token, transfer.to_user_id)
            call = TokenCall(
                TokenCallKind.FORCED_TRANSFER,
                token.contract_address,
                account=source,
                receiver=target,
                amount=transfer.amount,
            )
            receipt = await self._mirror.send_once(
                transfer.id, lambda: self._mirror.chain.prepare_token_call(call)
            )
        except Refused as exc:
            await self._finish(transfer, OperationStatus.FAILED, error=exc.reason)
            return
        self._mirror.settled("transfer", transfer.created_at)
        await self._finish(transfer, OperationStatus.COMPLETED, tx_hash=receipt.tx_hash)

    async def _finish(
        self,
        transfer: Transfer,
        status: OperationStatus,
        *,
        tx_hash: str | None = None,
        error: str | None = None,
    ) -> None:
        try:
            async with self._storage.unit_of_work() as uow:
                now = self._clock.now()
                done = attrs.evolve(
                    transfer,
                    status=status,
                    tx_hash=tx_hash,
                    error=error,
                    updated_at=now,
                    version=transfer.version + 1,
                )
                await uow.transfers.update(done)
                suffix = "mirror" if status is OperationStatus.COMPLETED else "mirror_fail"
                await uow.audit.append(
                    audit_entry(
                        SYSTEM,
                        f"token.transfer.{suffix}",
                        f"transfer:{transfer.id}",
                        before=transfer_view(transfer),
                        after=transfer_view(done),
                        at=now,
                    )
                )
                await uow.commit()
        except ConcurrentModification:
            log.info("transfer %s was finished by another job", transfer.id)
