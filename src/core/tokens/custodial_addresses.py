"""Which addresses the platform holds the keys of: its own, and every user's custodial one.

The platform's own addresses are its chain signer (the omnibus address and T-REX agent) and
index 0 of the custody path. A user's custodial deposit address is the custody path's index
``n`` for their user number ``n`` (``core.ports.custody``). User numbers are given once and
only grow, so the book learns new ones by reading the numbers above the highest it has seen:
each refresh costs the users created since the last one, never the whole table.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from core.ports.chain import Chain
from core.ports.custody import PLATFORM_INDEX, KeyDerivation
from core.ports.storage import Storage, UnitOfWork
from core.shared.errors import ValidationFailed

PAGE = 500


class WithdrawalToPlatformAddress(ValidationFailed):
    """A withdrawal to an address whose key the platform holds (it would stay in custody)."""

    code = "withdrawal_to_platform_address"

    def __init__(self) -> None:
        super().__init__(
            "a withdrawal cannot go to an address of the platform (its own or a custodial "
            "deposit address)",
            fields={"toAddress": "is held by the platform; withdraw to an outside address"},
        )


class CustodialAddressBook:
    """Custodial address -> user id, for every user with a number, read incrementally."""

    def __init__(self, storage: Storage, keys: KeyDerivation, chain: Chain) -> None:
        self._storage = storage
        self._keys = keys
        self._chain = chain
        self._owners: dict[str, str] = {}
        self._highest = 0

    async def refresh(self, uow: UnitOfWork) -> Mapping[str, str]:
        """Learn the user numbers given since the last refresh; the whole book (read-only)."""
        while True:
            page = await uow.wallets.numbered(after_number=self._highest, limit=PAGE)
            for record in page:
                self._owners[self._keys.address_for(record.user_number)] = record.user_id
                self._highest = max(self._highest, record.user_number)
            if len(page) < PAGE:
                return MappingProxyType(self._owners)

    async def platform_addresses(self) -> frozenset[str]:
        """The platform's own addresses: its chain signer (omnibus, agent) and index 0."""
        return frozenset(
            {await self._chain.custody_address(), self._keys.address_for(PLATFORM_INDEX)}
        )

    async def refuse_platform_address(self, address: str) -> None:
        """``WithdrawalToPlatformAddress`` when ``address`` (checksummed) is the platform's
        own or any user's custodial deposit address (read in its own read-only unit of work,
        so a long first read never holds a write transaction)."""
        if address in await self.platform_addresses():
            raise WithdrawalToPlatformAddress()
        async with self._storage.unit_of_work(read_only=True) as uow:
            book = await self.refresh(uow)
        if address in book:
            raise WithdrawalToPlatformAddress()
