"""Mint (admins): ``POST /tokens/:token/mint`` with an ``Idempotency-Key``, then the
``mint-token`` job.

Request, in one unit of work: the token (404), the amount in the token's decimals (422), the
key (the same key and body give back the first mint; another body 409
``idempotency_key_reused``), a token the platform mints on chain (409
``token_not_on_chain``: an RWA token (agent ``mint``) or the platform's stablecoin (owner
``mint``), with a contract address), the receiver known to the platform (404
``user_not_found``) and compliant for an RWA token (403 with the failed check); then the
mint is stored ``PENDING`` with its audit entry ``token.mint`` and the job is queued.

The job mints on chain to where the receiver's tokens live (their address for an RWA token,
the omnibus for the stablecoin), the transaction recorded before it is sent (see
``chain_mirror``), then, in one unit of work, credits the ledger (posting set key
``mint:<id>``, applied at most once), marks the mint ``COMPLETED`` with its hash and appends
``token.mint.complete``. A refused or reverted transaction marks it ``FAILED`` (nothing
credited, ``token.mint.fail``).
"""

from __future__ import annotations

import logging
from datetime import datetime

import attrs

from core.ledger import operations as postings
from core.ledger.model import AccountRef
from core.ports.audit import audit_entry
from core.ports.chain import TokenCall, TokenCallKind
from core.ports.clock import Clock
from core.ports.jobs import JobQueue
from core.ports.storage import Storage, UnitOfWork
from core.shared.authorization import Authorizer
from core.shared.errors import ConcurrentModification
from core.shared.events import Actor
from core.tokens.chain_mirror import ChainMirror, Refused
from core.tokens.compliance_use_cases import require_compliant
from core.tokens.jobs import MintTokenJob
from core.tokens.model import MAX_DECIMALS, Token, TokenType, UserNotFound, check_user_id
from core.tokens.operations import (
    DuplicateOperation,
    IdempotencyKeyReused,
    Mint,
    OperationNotFound,
    OperationStatus,
    TokenNotOnChain,
    check_idempotency_key,
    parse_units,
)
from core.tokens.pending import PendingOperations
from core.tokens.use_cases import find_token, user_is_known

log = logging.getLogger(__name__)

MINT = "token.mint"
SYSTEM = Actor(id="mint-token", type="system")


def mint_view(mint: Mint, token: Token | None = None) -> dict[str, object]:
    view: dict[str, object] = {
        "id": mint.id,
        "tokenId": mint.token_id,
        "userId": mint.user_id,
        "amount": str(mint.amount),  # base units
        "status": mint.status.value,
        "txHash": mint.tx_hash,
        "error": mint.error,
    }
    if token is not None:
        view["symbol"] = token.symbol
    return view


def require_on_chain(token: Token) -> str:
    """The contract the platform mints with; ``TokenNotOnChain`` (409) otherwise."""
    if token.type is TokenType.CRYPTO:
        raise TokenNotOnChain(token.symbol, "is not minted by the platform")
    if token.contract_address is None:
        raise TokenNotOnChain(token.symbol, "has no contract on chain yet")
    return token.contract_address


class MintUseCases:
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
        self._pending: PendingOperations[Mint] = PendingOperations(
            storage,
            jobs,
            records=lambda uow: uow.mints,
            waiting=lambda uow, limit: uow.mints.pending(limit=limit),
            job=lambda mint_id: MintTokenJob(mint_id=mint_id),
            is_waiting=lambda mint: mint.status is OperationStatus.PENDING,
        )

    async def request(
        self, actor: Actor, reference: str, idempotency_key: object, user_id: object, amount: object
    ) -> Mint:
        """Store a mint (or give back the key's mint) and queue ``mint-token``."""
        key = check_idempotency_key(idempotency_key)
        receiver = check_user_id(user_id)
        parse_units(amount, MAX_DECIMALS)  # the shape, before the permissions port
        await self._authorizer.require(actor, MINT)
        try:
            mint, fresh = await self._store(actor, reference, key, receiver, amount)
        except DuplicateOperation:  # a request with the same key committed first
            mint, fresh = await self._store(actor, reference, key, receiver, amount)
        if fresh or mint.status is OperationStatus.PENDING:
            await self._jobs.enqueue(MintTokenJob(mint_id=mint.id))
        return mint

    async def _store(
        self, actor: Actor, reference: str, key: str, receiver: str, raw_amount: object
    ) -> tuple[Mint, bool]:
        async with self._storage.unit_of_work() as uow:
            now = self._clock.now()
            token = await find_token(uow, reference)
            units = parse_units(raw_amount, token.decimals)
            existing = await uow.mints.by_key(token.id, key)
            if existing is not None:
                if (existing.user_id, existing.amount) != (receiver, units):
                    raise IdempotencyKeyReused(key)
                return existing, False
            require_on_chain(token)
            if not await user_is_known(uow, receiver):
                raise UserNotFound(receiver)
            await require_compliant(uow, receiver, token, now)
            mint = Mint(
                token_id=token.id,
                user_id=receiver,
                amount=units,
                idempotency_key=key,
                actor_id=actor.id,
                created_at=now,
                updated_at=now,
            )
            await uow.mints.add(mint)
            await uow.audit.append(
                audit_entry(
                    actor,
                    MINT,
                    f"mint:{mint.id}",
                    before=None,
                    after=mint_view(mint, token),
                    at=now,
                )
            )
            await uow.commit()
        return mint, True

    async def get(self, actor: Actor, reference: str, mint_id: str) -> Mint:
        await self._authorizer.require(actor, MINT)
        async with self._storage.unit_of_work(read_only=True) as uow:
            token = await find_token(uow, reference)
            mint = await uow.mints.get(mint_id)
        if mint is None or mint.token_id != token.id:
            raise OperationNotFound("mint", mint_id)
        return mint

    async def resume_interrupted(self) -> int:
        """Queue the job again for every pending mint (``core.tokens.pending``)."""
        return await self._pending.resume_interrupted()

    # -- the mint-token job --------------------------------------------------------------------

    async def handle(self, job: MintTokenJob) -> None:
        loaded = await self._pending.load(job.mint_id)
        if loaded is None:
            return
        mint, token = loaded
        try:
            contract = require_on_chain(token)
            address = await self._mirror.holder_address(token, mint.user_id)
            call = TokenCall(TokenCallKind.MINT, contract, account=address, amount=mint.amount)
            receipt = await self._mirror.send_once(
                mint.id, lambda: self._mirror.chain.prepare_token_call(call)
            )
        except (Refused, TokenNotOnChain) as exc:
            reason = exc.reason if isinstance(exc, Refused) else exc.message
            await self._finish(mint, token, OperationStatus.FAILED, error=reason)
            return
        self._mirror.settled("mint", mint.created_at)
        await self._finish(
            mint, token, OperationStatus.COMPLETED, tx_hash=receipt.tx_hash, address=address
        )

    async def _finish(
        self,
        mint: Mint,
        token: Token,
        status: OperationStatus,
        *,
        tx_hash: str | None = None,
        address: str | None = None,
        error: str | None = None,
    ) -> None:
        try:
            async with self._storage.unit_of_work() as uow:
                now = self._clock.now()
                done = attrs.evolve(
                    mint,
                    status=status,
                    tx_hash=tx_hash,
                    address=address,
                    error=error,
                    updated_at=now,
                    version=mint.version + 1,
                )
                if status is OperationStatus.COMPLETED:
                    await credit(uow, mint, token.id, now)
                await uow.mints.update(done)
                action = (
                    "token.mint.complete"
                    if status is OperationStatus.COMPLETED
                    else ("token.mint.fail")
                )
                await uow.audit.append(
                    audit_entry(
                        SYSTEM,
                        action,
                        f"mint:{mint.id}",
                        before=mint_view(mint),
                        after=mint_view(done),
                        at=now,
                    )
                )
                await uow.commit()
        except ConcurrentModification:
            log.info("mint %s was finished by another job", mint.id)


async def credit(uow: UnitOfWork, mint: Mint, token_id: str, now: datetime) -> None:
    """The ledger side of a mint: idempotent on ``mint:<id>``."""
    await uow.ledger.apply(
        postings.mint(
            f"mint:{mint.id}",
            now,
            AccountRef.user(mint.user_id, token_id),
            mint.amount,
            reference=mint.id,
        )
    )
