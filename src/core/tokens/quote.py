"""The quote token (``RWA_QUOTE_SYMBOL``, default USDC): registered at every start.

``QuoteTokenSetup.ensure`` is a startup step, idempotent: the first start of every profile
registers the stablecoin as a ``STABLE`` token with 6 decimals; later starts find it. Its
contract address comes from ``address_source``, an async callable chosen by bootstrap: in
production the configured ``RWA_QUOTE_TOKEN_ADDRESS``; on the embedded chain the chain
adapter's own deployment of the OpenZeppelin stablecoin once it offers one. A source that
answers ``None`` leaves the address null, and a later start whose source answers fills it in.
A stored address that differs from the one the source answers stops the start
(``QuoteTokenMismatch``): balances in the ledger belong to the recorded contract. Filling in
the address is audited (``token.set_contract_address``); the first registration, the
platform's own configuration, is not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from core.ports.audit import audit_entry
from core.ports.clock import Clock
from core.ports.storage import Storage
from core.shared.errors import ConcurrentModification, Conflict
from core.shared.events import Actor
from core.tokens.model import Token, TokenType, check_symbol
from core.tokens.use_cases import register_token, token_view

QUOTE_DECIMALS = 6
AddressSource = Callable[[], Awaitable[str | None]]
SETUP_ACTOR = Actor.system("startup")
SET_ADDRESS = "token.set_contract_address"  # audited: the contract balances refer to


async def no_address() -> None:
    """An address source for a chain that has no stablecoin (yet)."""
    return None


def fixed_address(address: str | None) -> AddressSource:
    """An address source answering a configured address (``RWA_QUOTE_TOKEN_ADDRESS``)."""

    async def source() -> str | None:
        return address

    return source


class QuoteTokenMismatch(Conflict):
    code = "quote_token_mismatch"


class QuoteTokenSetup:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        *,
        symbol: str,
        address_source: AddressSource,
        name: str | None = None,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self.symbol = check_symbol(symbol, "RWA_QUOTE_SYMBOL")
        self._name = name or f"{symbol} stablecoin"
        self._source = address_source

    async def ensure(self) -> Token:
        """The quote token, registered (or completed with its address) if needed."""
        address = await self._source()
        for attempt in range(3):
            try:
                return await self._ensure(address)
            except ConcurrentModification:  # another process registered it meanwhile
                if attempt == 2:
                    raise
            except Conflict as exc:
                if attempt == 2 or isinstance(exc, QuoteTokenMismatch):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _ensure(self, address: str | None) -> Token:
        async with self._storage.unit_of_work() as uow:
            now = self._clock.now()
            found = await uow.tokens.by_symbol(self.symbol)
            if found is not None:
                if found.type is not TokenType.STABLE:
                    raise QuoteTokenMismatch(
                        f"token {self.symbol} exists but is {found.type.value}, not STABLE"
                    )
                if address is None or (found.contract_address or "").lower() == address.lower():
                    return found
                if found.contract_address is not None:
                    raise QuoteTokenMismatch(
                        f"the quote token {self.symbol} is recorded at "
                        f"{found.contract_address}, but its source answers {address}",
                        details={"recorded": found.contract_address, "answered": address},
                    )
                changed = await uow.tokens.set_contract_address(found.id, address)
                await uow.audit.append(
                    audit_entry(
                        SETUP_ACTOR,
                        SET_ADDRESS,
                        f"token:{changed.id}",
                        before=token_view(found),
                        after=token_view(changed),
                        at=now,
                    )
                )
            else:  # the platform's own configuration, not a decision: not audited
                changed = Token(
                    symbol=self.symbol,
                    name=self._name,
                    type=TokenType.STABLE,
                    decimals=QUOTE_DECIMALS,
                    contract_address=address,
                    created_at=now,
                )
                await register_token(uow, changed)
            await uow.commit()
        return changed
