"""Token and compliance storage (part of the unit of work: ``uow.tokens``, ``uow.compliance``).

- Tokens: the symbol is unique, and so are the contract address and the market (one market,
  one token) when set. Every store refuses a duplicate itself (unique indexes; the memory
  store checks again at commit), so two units racing for one symbol cannot both commit.
- Compliance records: at most one per (user, token) and one general record per user
  (``token_id`` None); a per-token record must name a stored token. Changes are optimistic:
  ``save`` applies only on top of the version it was built from.
"""

from __future__ import annotations

import abc
from datetime import datetime

from core.tokens.compliance import ComplianceRecord
from core.tokens.model import Token, TokenType


class TokenRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, token: Token) -> None:
        """Store a new token; ``TokenSymbolTaken``, ``TokenAddressTaken`` or
        ``MarketTokenTaken`` (possibly only at ``commit()``) for a duplicate."""

    @abc.abstractmethod
    async def get(self, token_id: str) -> Token | None: ...

    @abc.abstractmethod
    async def by_symbol(self, symbol: str) -> Token | None: ...

    @abc.abstractmethod
    async def by_market(self, market_id: str) -> Token | None: ...

    @abc.abstractmethod
    async def list(
        self, token_type: TokenType | None, *, limit: int, before_id: str | None = None
    ) -> list[Token]:
        """Newest (highest id) first; with ``before_id``, only tokens created before it."""

    @abc.abstractmethod
    async def set_contract_address(self, token_id: str, address: str) -> Token:
        """Record the token's contract; ``TokenNotFound`` for an unknown id,
        ``TokenAddressTaken`` when another token has the address."""

    @abc.abstractmethod
    async def set_paused(self, token_id: str, paused: bool) -> Token:
        """``TokenNotFound`` for an unknown id."""


class ComplianceRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, user_id: str, token_id: str | None) -> ComplianceRecord | None:
        """The user's record for ``token_id`` (None: the general one), not the fallback."""

    @abc.abstractmethod
    async def for_user(self, user_id: str) -> list[ComplianceRecord]:
        """Every record of the user: the general one first, then by token id."""

    @abc.abstractmethod
    async def save(self, record: ComplianceRecord) -> ComplianceRecord:
        """Insert (``version`` 1) or replace the stored record of ``version - 1``.

        ``ConcurrentModification`` when the stored version is not the expected one (someone
        changed it meanwhile, or a version-1 record already exists); ``TokenNotFound`` when
        ``token_id`` names no stored token.
        """

    @abc.abstractmethod
    async def expiring(self, before: datetime, *, limit: int) -> list[ComplianceRecord]:
        """Records with ``expires_at < before`` whose KYC is not already ``EXPIRED``, oldest
        expiry first: what a scheduled job turns into on-chain removals."""
