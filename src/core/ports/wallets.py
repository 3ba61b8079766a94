"""Wallet storage (part of the unit of work): user numbers, external addresses, challenges.

- Every user gets a *user number* once, the first time the platform needs their custodial
  address. Numbers start at 1 and only grow (index 0 of the custody path is the platform's
  own); a number is never reused or reassigned. The custodial address is derived from it
  (``core.ports.custody``), so the store keeps the number, not keys.
- A user may register one external address at a time, proven by a signed challenge; an
  external address belongs to at most one user.
- A challenge is used at most once: ``use_challenge`` is a conditional update in the store
  itself, so two registrations racing with one challenge cannot both succeed.
"""

from __future__ import annotations

import abc
from datetime import datetime

import attrs

from core.shared.errors import Conflict


@attrs.frozen
class WalletRecord:
    user_id: str
    user_number: int  # the BIP-44 address index of the user's custodial address
    created_at: datetime
    updated_at: datetime
    external_address: str | None = None  # checksummed; None: the custodial address is used
    external_registered_at: datetime | None = None
    verified_on_chain: bool = False  # the current address is registered in the identity registry


@attrs.frozen
class WalletChallenge:
    id: str
    user_id: str
    message: str  # the exact text to sign (EIP-191 personal_sign)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class ExternalAddressTaken(Conflict):
    """Another user already registered this external address."""

    code = "wallet_address_taken"

    def __init__(self, address: str) -> None:
        super().__init__(
            "this address is registered to another user",
            details={"fields": {"address": "is registered to another user"}, "address": address},
        )


class WalletRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, user_id: str) -> WalletRecord | None: ...

    @abc.abstractmethod
    async def numbered(self, *, after_number: int, limit: int) -> list[WalletRecord]:
        """Records with a user number above ``after_number``, lowest first, ``limit`` at a
        time (the deposit scanner walks every custodial address this way)."""

    @abc.abstractmethod
    async def get_or_create(self, user_id: str, *, now: datetime) -> WalletRecord:
        """The user's record; the first call gives them the next user number.

        Two units of work creating the same user's record at once: one creates it, the other
        reads it, or (a store that cannot wait for the first) fails with
        ``ConcurrentModification`` at ``commit()`` and a retry reads it.
        """

    @abc.abstractmethod
    async def set_external(self, user_id: str, address: str, *, now: datetime) -> WalletRecord:
        """Make ``address`` (checksummed) the user's external address (the record must exist);
        ``verified_on_chain`` goes back to False. ``ExternalAddressTaken`` (possibly only at
        ``commit()``) when another user holds it."""

    @abc.abstractmethod
    async def set_verified_on_chain(
        self, user_id: str, *, external_address: str | None, verified: bool, now: datetime
    ) -> bool:
        """Record whether the user's current address is verified on chain. Applies only if
        the current external address is still ``external_address`` (``None``: the custodial
        one), so a stale job never marks a replaced address; answers whether it applied."""

    @abc.abstractmethod
    async def add_challenge(self, challenge: WalletChallenge) -> None:
        """Store a new challenge; ``Conflict`` if its id exists."""

    @abc.abstractmethod
    async def get_challenge(self, challenge_id: str) -> WalletChallenge | None: ...

    @abc.abstractmethod
    async def latest_challenge(self, user_id: str) -> WalletChallenge | None:
        """The user's most recently issued challenge, used or not."""

    @abc.abstractmethod
    async def use_challenge(self, challenge_id: str, *, now: datetime) -> bool:
        """Mark the challenge used if it is unused and ``expires_at > now``; answer whether
        this unit of work did. A second use, here or in another unit, answers False (or, a
        store that cannot wait for the first, ``Conflict`` at ``commit()``)."""
