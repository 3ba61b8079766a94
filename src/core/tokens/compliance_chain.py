"""``verify-compliance``: a user's compliance records mirrored on chain (DESIGN §9).

For every RWA token with a contract, the user's address is verified by the token's identity
registry exactly when ``check_compliance`` lets them hold it (KYC approved, not expired,
whitelisted, accredited when the market requires it, from an allowed country):

- the user has one ONCHAINID identity, deployed once (``core.tokens.identities``: step
  ``identity`` of the user's subject, its mined record is where the identity's address is
  kept) and reused for every token, the markets they issue included; the platform holds its
  management key;
- compliant for a token: the identity is registered in that token's identity registry with
  the record's country (ISO numeric), the KYC claim (topic 1) is on the identity, and the
  accreditation claim (topic 2) too when a token the user is compliant for requires it,
  both signed by the platform's ClaimIssuer;
- not compliant for a token (revoked, rejected, expired, de-whitelisted, country refused):
  the identity is deleted from that token's registry, so ``isVerified`` is false there; a
  claim no compliant token needs any more is removed from the identity.

What to send is decided from the chain as it is (read first), so a second run sends nothing.
Every transaction is recorded before it is sent (``RecordedTransactions``) under the user's
subject ``kyc:<sha256 of the user id>``: before deciding, the subject's recorded transactions
that are not mined yet are followed (sent again with their exact bytes, never signed twice),
so a crash between a send and its record moving on sends nothing new. A step is named after
its action and how many times that action was mined before (``claim:1#0``, ``claim:1#1``
after a removal...), so the same action can be taken again after it was undone.

Each mined change is audited (``compliance.chain``), and the wallet's ``verifiedOnChain``
follows whether any token's registry verifies the user's address.

The scheduled run (no user) first marks records past their ``expiresAt`` as ``EXPIRED`` (a
new version, audited, with a ``compliance.changed`` event like an admin's change), then
mirrors those users.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import ClassVar

import attrs

from core.markets.transactions import RecordedTransactions
from core.ports.audit import audit_entry
from core.ports.chain import (
    ACCREDITATION_TOPIC,
    KYC_TOPIC,
    IdentityCall,
    IdentityCallKind,
    PlatformContracts,
    PreparedTransaction,
)
from core.ports.clock import Clock
from core.ports.deployments import UNMINED_STATES, DeploymentState
from core.ports.jobs import Job, JobQueue
from core.ports.storage import Storage
from core.shared.errors import ChainError, ConcurrentModification
from core.shared.events import Actor, DomainEvent
from core.tokens.chain_mirror import ChainMirror
from core.tokens.compliance import (
    ComplianceDenied,
    ComplianceRecord,
    KycStatus,
    check_compliance,
)
from core.tokens.compliance_use_cases import (
    CHANGED,
    compliance_rules,
    record_view,
    user_stream,
)
from core.tokens.identities import UserIdentities, identity_subject
from core.tokens.model import Token, TokenType

log = logging.getLogger(__name__)

VERIFY_ON_CHAIN = "compliance.chain"  # audit action of each mirrored change
EXPIRE = "compliance.expire"  # audit action of the sweep marking a record EXPIRED
WALLET_VERIFIED = "wallet.verified_on_chain"
SWEEP_LIMIT = 200
PAGE = 200
SYSTEM = Actor.system("verify-compliance")


@attrs.frozen
class VerifyComplianceJob(Job):
    """Mirror one user's compliance on chain; with no user, the scheduled sweep of expiries."""

    name: ClassVar[str] = "verify-compliance"
    user_id: str | None = None
    reason: str = "scheduled"


def compliance_subject(user_id: str) -> str:
    """The recorded transactions' subject of a user (36 characters at most)."""
    return identity_subject(user_id)


@attrs.frozen
class _Wanted:
    """What one token's registry should say about the user."""

    token: Token
    compliant: bool
    country: str | None
    accreditation: bool  # the token requires the accreditation claim


class _NotSentAgain(Exception):
    """A followed record can never be mined: nothing is signed in its place here."""


class ComplianceVerifier:
    def __init__(
        self,
        storage: Storage,
        mirror: ChainMirror,
        clock: Clock,
        jobs: JobQueue,
        platform: Callable[[], Awaitable[PlatformContracts]],
    ) -> None:
        """``platform``: the platform's contracts (its ClaimIssuer signs the claims)."""
        self._storage = storage
        self._mirror = mirror
        self._chain = mirror.chain
        self._clock = clock
        self._jobs = jobs
        self._platform = platform
        self._recorded = RecordedTransactions(storage, mirror.chain, clock)
        self._identities = UserIdentities(storage, mirror.chain, clock)

    # -- jobs ------------------------------------------------------------------------------

    async def on_compliance_changed(self, event: DomainEvent) -> None:
        """Outbox reaction: ``compliance.changed`` becomes a ``verify-compliance`` job."""
        user_id = event.metadata.get("userId")
        if isinstance(user_id, str):
            await self._jobs.enqueue(
                VerifyComplianceJob(user_id=user_id, reason=f"event:{event.id}")
            )

    async def on_wallet_registered(self, event: DomainEvent) -> None:
        """Outbox reaction: a new external address (``wallet.external_registered``) is
        mirrored like a compliance change: a ``verify-compliance`` job for its user."""
        await self.on_compliance_changed(event)

    async def handle(self, job: VerifyComplianceJob) -> None:
        if job.user_id is not None:
            await self.verify(job.user_id)
            return
        for user_id in await self.expire_due():
            await self.verify(user_id)

    async def expire_due(self) -> list[str]:
        """Mark the records past their expiry ``EXPIRED``; the users concerned."""
        now = self._clock.now()
        async with self._storage.unit_of_work(read_only=True) as uow:
            due = await uow.compliance.expiring(now, limit=SWEEP_LIMIT)
        users: list[str] = []
        for record in due:
            try:
                await self._expire(record)
            except ConcurrentModification:
                log.info("verify-compliance: %s's record changed meanwhile", record.user_id)
            if record.user_id not in users:
                users.append(record.user_id)
        return users

    async def _expire(self, seen: ComplianceRecord) -> None:
        async with self._storage.unit_of_work() as uow:
            now = self._clock.now()
            before = await uow.compliance.get(seen.user_id, seen.token_id)
            if before is None or before.kyc_status is KycStatus.EXPIRED or before.expires_at > now:
                return
            record = attrs.evolve(
                before,
                kyc_status=KycStatus.EXPIRED,
                updated_at=now,
                updated_by=SYSTEM.id,
                version=before.version + 1,
            )
            await uow.compliance.save(record)
            await uow.audit.append(
                audit_entry(
                    SYSTEM,
                    EXPIRE,
                    f"user:{record.user_id}",
                    before=record_view(before),
                    after=record_view(record),
                    at=now,
                )
            )
            await uow.events.append(
                [
                    DomainEvent(
                        type=CHANGED,
                        aggregate_id=user_stream(record.user_id),
                        stream=user_stream(record.user_id),
                        actor_id=SYSTEM.id,
                        actor_type=SYSTEM.type,
                        occurred_at=now,
                        decision=record.kyc_status.value,
                        reason="expired",
                        metadata={
                            "userId": record.user_id,
                            "tokenId": record.token_id,
                            "symbol": None,
                            "record": record_view(record),
                            "previous": record_view(before),
                        },
                    )
                ]
            )
            await uow.commit()

    # -- one user --------------------------------------------------------------------------

    async def verify(self, user_id: str) -> bool:
        """Mirror ``user_id``'s compliance on every RWA token; whether any token's registry
        verifies their address afterwards."""
        subject = compliance_subject(user_id)
        await self._follow_unmined(subject)
        address = await self._mirror.user_address(user_id)
        wanted = await self._wanted(user_id)
        if not wanted:
            return False
        identity = await self._identity(user_id, create=any(w.compliant for w in wanted))
        topics: set[int] = set()
        for w in wanted:
            if w.compliant:
                topics |= {KYC_TOPIC, ACCREDITATION_TOPIC} if w.accreditation else {KYC_TOPIC}
        # withdraw first, then grant: a revocation is never held up by a failing grant
        for w in wanted:
            if not w.compliant and await self._chain.registered_identity(
                _address(w.token), address
            ):
                await self._delete(subject, user_id, w.token, address)
        if identity is not None:
            platform = await self._platform()
            for topic in (KYC_TOPIC, ACCREDITATION_TOPIC):
                present = await self._chain.has_claim(identity, platform.claim_issuer, topic)
                if present != (topic in topics):
                    await self._claim(subject, user_id, identity, platform, topic, topic in topics)
            for w in wanted:
                if w.compliant:
                    await self._register(subject, user_id, w, address, identity)
        verified = False
        for w in wanted:
            verified = verified or await self._chain.is_verified(_address(w.token), address)
        await self._set_wallet(user_id, verified)
        return verified

    async def _wanted(self, user_id: str) -> list[_Wanted]:
        now = self._clock.now()
        wanted: list[_Wanted] = []
        async with self._storage.unit_of_work(read_only=True) as uow:
            records = await uow.compliance.for_user(user_id)
            before_id: str | None = None
            while True:
                page = await uow.tokens.list(TokenType.RWA, limit=PAGE, before_id=before_id)
                for token in page:
                    if token.contract_address is None:
                        continue
                    rules = await compliance_rules(uow, token)
                    try:
                        record = check_compliance(records, token, rules, now, user_id=user_id)
                    except ComplianceDenied:
                        wanted.append(_Wanted(token, False, None, rules.accredited_only))
                        continue
                    country = None if record is None else record.jurisdiction
                    wanted.append(_Wanted(token, True, country, rules.accredited_only))
                if len(page) < PAGE:
                    break
                before_id = page[-1].id
        return wanted

    async def _identity(self, user_id: str, *, create: bool) -> str | None:
        """The user's one identity (``core.tokens.identities``); deployed when ``create``
        and there is none yet."""
        if create:
            return await self._identities.ensure(user_id)
        return await self._identities.existing(user_id)

    async def _register(
        self, subject: str, user_id: str, w: _Wanted, address: str, identity: str
    ) -> None:
        token = _address(w.token)
        assert w.country is not None
        current = await self._chain.registered_identity(token, address)
        if current is not None and current.identity != identity:
            await self._delete(subject, user_id, w.token, address)
            current = None
        if current is None:
            call = IdentityCall(
                kind=IdentityCallKind.REGISTER,
                token=token,
                holder=address,
                identity=identity,
                country=w.country,
            )
            await self._send(subject, user_id, f"register:{w.token.id}", call, w.token)
        elif current.country != w.country:
            call = IdentityCall(
                kind=IdentityCallKind.UPDATE_COUNTRY, token=token, holder=address, country=w.country
            )
            await self._send(subject, user_id, f"country:{w.token.id}", call, w.token)

    async def _delete(self, subject: str, user_id: str, token: Token, address: str) -> None:
        call = IdentityCall(kind=IdentityCallKind.DELETE, token=_address(token), holder=address)
        await self._send(subject, user_id, f"delete:{token.id}", call, token)

    async def _claim(
        self,
        subject: str,
        user_id: str,
        identity: str,
        platform: PlatformContracts,
        topic: int,
        add: bool,
    ) -> None:
        call = IdentityCall(
            kind=IdentityCallKind.ADD_CLAIM if add else IdentityCallKind.REMOVE_CLAIM,
            identity=identity,
            claim_issuer=platform.claim_issuer,
            topic=topic,
        )
        await self._send(subject, user_id, f"{'claim' if add else 'unclaim'}:{topic}", call, None)

    async def _send(
        self, subject: str, user_id: str, action: str, call: IdentityCall, token: Token | None
    ) -> None:
        """One recorded transaction of ``action``, then its audit entry."""
        async with self._storage.unit_of_work(read_only=True) as uow:
            records = await uow.deployments.for_subject(subject)
        done = sum(
            1
            for r in records
            if r.step.startswith(action + "#") and r.state is DeploymentState.MINED
        )
        step = f"{action}#{done}"

        async def prepare() -> PreparedTransaction:
            return await self._chain.prepare_identity_call(call)

        receipt = await self._recorded.run(subject, step, prepare, for_market=False)
        async with self._storage.unit_of_work() as uow:
            await uow.audit.append(
                audit_entry(
                    SYSTEM,
                    VERIFY_ON_CHAIN,
                    f"user:{user_id}",
                    before=None,
                    after={
                        "action": call.kind.value,
                        "tokenId": None if token is None else token.id,
                        "symbol": None if token is None else token.symbol,
                        "holder": call.holder,
                        "identity": call.identity,
                        "country": call.country,
                        "topic": call.topic or None,
                        "txHash": receipt.tx_hash,
                        "blockNumber": receipt.block_number,
                    },
                    at=self._clock.now(),
                )
            )
            await uow.commit()
        log.info("verify-compliance: %s %s (%s)", user_id, step, receipt.tx_hash)

    async def _follow_unmined(self, subject: str) -> None:
        """Follow the subject's recorded transactions that are not mined yet (their exact
        bytes sent again), so the chain is read after they landed."""
        async with self._storage.unit_of_work(read_only=True) as uow:
            records = await uow.deployments.for_subject(subject)

        async def refuse() -> PreparedTransaction:
            raise _NotSentAgain

        for record in records:
            if record.state not in UNMINED_STATES:
                continue
            try:
                await self._recorded.run(subject, record.step, refuse, for_market=False)
            except _NotSentAgain:
                log.info("verify-compliance: %s %s was never mined", subject, record.step)
            except ChainError as exc:
                if await self._still_open(subject, record.step):
                    raise
                log.warning("verify-compliance: %s %s failed: %s", subject, record.step, exc)

    async def _still_open(self, subject: str, step: str) -> bool:
        async with self._storage.unit_of_work(read_only=True) as uow:
            record = await uow.deployments.open_for(subject, step)
        return record is not None and record.state in UNMINED_STATES

    async def _set_wallet(self, user_id: str, verified: bool) -> None:
        async with self._storage.unit_of_work() as uow:
            wallet = await uow.wallets.get(user_id)
            if wallet is None or wallet.verified_on_chain == verified:
                return
            now = self._clock.now()
            applied = await uow.wallets.set_verified_on_chain(
                user_id, external_address=wallet.external_address, verified=verified, now=now
            )
            if not applied:
                return
            await uow.audit.append(
                audit_entry(
                    SYSTEM,
                    WALLET_VERIFIED,
                    f"user:{user_id}",
                    before={"verifiedOnChain": wallet.verified_on_chain},
                    after={"verifiedOnChain": verified},
                    at=now,
                )
            )
            await uow.commit()


def _address(token: Token) -> str:
    assert token.contract_address is not None
    return token.contract_address
