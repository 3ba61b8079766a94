"""Wallets: each user's custodial address, or an external address the user proved they hold.

- **Custodial**: the first time a user's wallet is needed the storage gives them a user number
  ``n`` (once, from 1, only growing) and their address is the platform's HD key at
  ``m/44'/60'/0'/0/<n>`` (``core.ports.custody``). The platform holds that key.
- **External**: the user asks for a challenge (single use, expires after
  ``challenge_ttl_seconds``), signs its exact text with EIP-191 ``personal_sign`` and sends
  the address and signature. The signer recovered from the signature must be that address.
  The user holds that key; the registration, its audit entry and a
  ``wallet.external_registered`` event (stream ``user:<id>``) are one unit of work; the
  event's outbox reaction queues ``verify-compliance`` for the user, so the new address is
  registered and verified in the identity registry of every token the user is compliant
  for.

A caller reads and registers only their own wallet unless their roles grant
``wallet.manage_any`` (admins). Order of checks: the body's format (422), then ownership
(403), then the challenge (404, 409) and the signature (422).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Literal

import attrs

from core.ports.audit import audit_entry
from core.ports.clock import Clock
from core.ports.custody import (
    KeyDerivation,
    SignatureVerifier,
    check_signature_format,
    derivation_path,
)
from core.ports.storage import Storage, UnitOfWork
from core.ports.wallets import WalletChallenge, WalletRecord
from core.shared.authorization import TRUSTED_ACTOR_TYPES
from core.shared.errors import (
    ConcurrentModification,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from core.shared.events import Actor, DomainEvent
from core.shared.ids import new_id
from core.shared.roles import roles_allow_any

READ = "wallet.read"
REGISTER = "wallet.register"
MANAGE_ANY = "wallet.manage_any"
REGISTER_ACTION = "wallet.register_external"  # the audit log's action
EXTERNAL_REGISTERED = "wallet.external_registered"  # the event on the user's stream
DEFAULT_CHALLENGE_TTL_SECONDS = 300
MAX_CHALLENGE_ID = 36

Custody = Literal["platform", "external"]


@attrs.frozen
class Wallet:
    user_id: str
    address: str
    custody: Custody
    verified_on_chain: bool


class ChallengeExpired(Conflict):
    code = "challenge_expired"


class ChallengeUsed(Conflict):
    code = "challenge_used"


class ChallengeNotFound(NotFound):
    code = "challenge_not_found"


class SignatureMismatch(ValidationFailed):
    code = "signature_mismatch"

    def __init__(self) -> None:
        super().__init__(
            "the signature was not made by this address's key",
            fields={"signature": "does not recover to the given address"},
        )


def subject_of(user_id: str) -> str:
    return f"user:{user_id}"


def challenge_message(user_id: str, challenge_id: str, nonce: str, expires_at: datetime) -> str:
    """The exact text a user signs (EIP-191 ``personal_sign``)."""
    return (
        "RWA Market: register this address as my wallet.\n"
        f"User: {user_id}\n"
        f"Challenge: {challenge_id}\n"
        f"Nonce: {nonce}\n"
        f"Expires: {expires_at.isoformat()}"
    )


class WalletUseCases:
    def __init__(
        self,
        storage: Storage,
        keys: KeyDerivation,
        verifier: SignatureVerifier,
        clock: Clock,
        *,
        challenge_ttl_seconds: int = DEFAULT_CHALLENGE_TTL_SECONDS,
    ) -> None:
        if challenge_ttl_seconds <= 0:
            raise ValueError("challenge_ttl_seconds must be positive")
        self._storage = storage
        self._keys = keys
        self._verifier = verifier
        self._clock = clock
        self._ttl = timedelta(seconds=challenge_ttl_seconds)

    # -- reads ---------------------------------------------------------------------------------

    async def wallet(self, actor: Actor, user_id: str) -> Wallet:
        """The user's wallet; the first read gives the user their number (and address)."""
        _require_owner(actor, user_id, READ)
        record = await self._record(user_id)
        return self._wallet(record)

    def custodial_address(self, record: WalletRecord) -> str:
        return self._keys.address_for(record.user_number)

    def custodial_path(self, record: WalletRecord) -> str:
        return derivation_path(record.user_number)

    async def _record(self, user_id: str) -> WalletRecord:
        async with self._storage.unit_of_work(read_only=True) as uow:
            found = await uow.wallets.get(user_id)
        if found is not None:
            return found
        for attempt in range(3):
            try:
                async with self._storage.unit_of_work() as uow:
                    record = await uow.wallets.get_or_create(user_id, now=self._clock.now())
                    await uow.commit()
                return record
            except ConcurrentModification:  # another request created it meanwhile
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _wallet(self, record: WalletRecord) -> Wallet:
        if record.external_address is not None:
            return Wallet(
                user_id=record.user_id,
                address=record.external_address,
                custody="external",
                verified_on_chain=record.verified_on_chain,
            )
        return Wallet(
            user_id=record.user_id,
            address=self.custodial_address(record),
            custody="platform",
            verified_on_chain=record.verified_on_chain,
        )

    # -- external addresses ----------------------------------------------------------------------

    async def challenge(self, actor: Actor, user_id: str) -> WalletChallenge:
        """A new single-use challenge for the user to sign; earlier ones stay valid until
        they expire or one of them is used."""
        _require_owner(actor, user_id, REGISTER)
        now = self._clock.now()
        challenge_id = new_id()
        expires_at = now + self._ttl
        challenge = WalletChallenge(
            id=challenge_id,
            user_id=user_id,
            message=challenge_message(user_id, challenge_id, secrets.token_hex(16), expires_at),
            created_at=now,
            expires_at=expires_at,
        )
        async with self._storage.unit_of_work() as uow:
            await uow.wallets.add_challenge(challenge)
            await uow.commit()
        return challenge

    async def register_external(
        self,
        actor: Actor,
        user_id: str,
        address: str,
        signature: str,
        *,
        challenge_id: str | None = None,
    ) -> Wallet:
        """Make ``address`` the user's wallet, proven by an EIP-191 signature of a challenge
        (``challenge_id``, or else the user's latest one). Audited in the same transaction."""
        checksummed = self._verifier.checksum_address(address)
        check_signature_format(signature)
        if challenge_id is not None and (
            not isinstance(challenge_id, str) or len(challenge_id) > MAX_CHALLENGE_ID
        ):
            raise ValidationFailed(
                "bad challenge id", fields={"challengeId": "is not a challenge id"}
            )
        _require_owner(actor, user_id, REGISTER)
        async with self._storage.unit_of_work() as uow:
            now = self._clock.now()
            challenge = await self._find_challenge(uow, user_id, challenge_id, now)
            signer = self._verifier.recover_signer(challenge.message, signature)
            if signer != checksummed:
                raise SignatureMismatch()
            if not await uow.wallets.use_challenge(challenge.id, now=now):
                raise ChallengeUsed(
                    "the challenge was used meanwhile", details={"challengeId": challenge.id}
                )
            before = await uow.wallets.get_or_create(user_id, now=now)
            after = await uow.wallets.set_external(user_id, checksummed, now=now)
            await uow.audit.append(
                audit_entry(
                    actor,
                    REGISTER_ACTION,
                    subject_of(user_id),
                    before=self._audit_view(before),
                    after={**self._audit_view(after), "challengeId": challenge.id},
                    at=now,
                )
            )
            # the outbox reaction queues verify-compliance: the new address gets registered
            # and verified in each token's identity registry the user is compliant for
            await uow.events.append(
                [
                    DomainEvent(
                        type=EXTERNAL_REGISTERED,
                        aggregate_id=subject_of(user_id),
                        stream=subject_of(user_id),
                        actor_id=actor.id,
                        actor_type=actor.type,
                        occurred_at=now,
                        metadata={
                            "userId": user_id,
                            "address": checksummed,
                            "previous": self._audit_view(before)["address"],
                        },
                    )
                ]
            )
            await uow.commit()
        return self._wallet(after)

    async def _find_challenge(
        self, uow: UnitOfWork, user_id: str, challenge_id: str | None, now: datetime
    ) -> WalletChallenge:
        if challenge_id is None:
            challenge = await uow.wallets.latest_challenge(user_id)
        else:
            challenge = await uow.wallets.get_challenge(challenge_id)
        if challenge is None or challenge.user_id != user_id:
            raise ChallengeNotFound(
                "no such challenge for this user; ask for one at GET .../wallet/challenge",
                details={"userId": user_id, "challengeId": challenge_id},
            )
        if challenge.used_at is not None:
            raise ChallengeUsed(
                "the challenge was already used; ask for a new one",
                details={"challengeId": challenge.id},
            )
        if challenge.expires_at <= now:
            raise ChallengeExpired(
                "the challenge expired; ask for a new one",
                details={
                    "challengeId": challenge.id,
                    "expiredAt": challenge.expires_at.isoformat(),
                },
            )
        return challenge

    def _audit_view(self, record: WalletRecord) -> dict[str, object]:
        wallet = self._wallet(record)
        return {"address": wallet.address, "custody": wallet.custody}


def _require_owner(actor: Actor, user_id: str, action: str) -> None:
    """A caller acts on their own wallet; another's needs ``wallet.manage_any`` (admins)."""
    if actor.type in TRUSTED_ACTOR_TYPES:
        return
    if actor.id == user_id and roles_allow_any(actor.roles, (action,)):
        return
    if roles_allow_any(actor.roles, (MANAGE_ANY,)):
        return
    raise PermissionDenied(action, ("a caller reads and registers only their own wallet",))
