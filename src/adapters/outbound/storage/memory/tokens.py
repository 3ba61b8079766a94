"""Tokens and compliance records in the memory storage: the same rules as the SQL tables.

A unit of work stages tokens and records; ``MemoryTokenState.check`` refuses at commit what
the database would: a symbol, contract address or market already held by another token (the
unique indexes), a token staged twice, a compliance record whose stored version moved since
it was read (the conditional update), a record for a token that does not exist (the foreign
key).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import attrs

from core.ports.tokens import ComplianceRepository, TokenRepository
from core.shared.errors import ConcurrentModification, Conflict
from core.tokens.compliance import ComplianceRecord, KycStatus
from core.tokens.model import (
    MarketTokenTaken,
    Token,
    TokenAddressTaken,
    TokenNotFound,
    TokenSymbolTaken,
    TokenType,
)

RecordKey = tuple[str, str | None]  # (user id, token id or None)


@attrs.define
class TokenChanges:
    tokens: dict[str, Token] = attrs.Factory(dict)  # staged, by id
    new_tokens: set[str] = attrs.Factory(set)
    token_bases: dict[str, Token] = attrs.Factory(dict)  # committed tokens we changed
    records: dict[RecordKey, ComplianceRecord] = attrs.Factory(dict)


class MemoryTokenState:
    """Committed tokens and records; changed only by ``apply`` under the storage's lock."""

    def __init__(self) -> None:
        self.tokens: dict[str, Token] = {}
        self.records: dict[RecordKey, ComplianceRecord] = {}

    def check(self, changes: TokenChanges) -> None:
        merged = dict(self.tokens)
        for token_id, token in changes.tokens.items():
            if token_id in changes.new_tokens:
                if token_id in self.tokens:
                    raise Conflict(f"token {token_id} already exists")
            elif self.tokens.get(token_id) != changes.token_bases.get(token_id):
                raise ConcurrentModification(
                    f"token {token_id} changed since it was read", details={"tokenId": token_id}
                )
            merged[token_id] = token
        _unique(merged.values())
        for key, record in changes.records.items():
            stored = self.records.get(key)
            stored_version = 0 if stored is None else stored.version
            if record.version != stored_version + 1:
                raise ConcurrentModification(
                    "the compliance record changed meanwhile",
                    details={"userId": record.user_id, "tokenId": record.token_id},
                )
            if record.token_id is not None and record.token_id not in merged:
                raise TokenNotFound(record.token_id)

    def apply(self, changes: TokenChanges) -> None:
        self.tokens.update(changes.tokens)
        self.records.update(changes.records)


def _unique(tokens: Iterable[Token]) -> None:
    symbols: dict[str, str] = {}
    addresses: dict[str, str] = {}
    markets: dict[str, str] = {}
    for token in tokens:
        if symbols.setdefault(token.symbol, token.id) != token.id:
            raise TokenSymbolTaken(token.symbol)
        if token.contract_address is not None:
            key = token.contract_address.lower()
            if addresses.setdefault(key, token.id) != token.id:
                raise TokenAddressTaken(token.contract_address)
        if token.market_id is not None and markets.setdefault(token.market_id, token.id) != (
            token.id
        ):
            raise MarketTokenTaken(token.market_id)


class MemoryTokenRepository(TokenRepository):
    def __init__(self, state: MemoryTokenState, changes: TokenChanges) -> None:
        self._state = state
        self._changes = changes

    def _all(self) -> dict[str, Token]:
        return {**self._state.tokens, **self._changes.tokens}

    async def add(self, token: Token) -> None:
        current = self._all()
        if token.id in current:
            raise Conflict(f"token {token.id} already exists")
        _unique([*current.values(), token])
        self._changes.tokens[token.id] = token
        self._changes.new_tokens.add(token.id)

    async def get(self, token_id: str) -> Token | None:
        return self._all().get(token_id)

    async def by_symbol(self, symbol: str) -> Token | None:
        return next((t for t in self._all().values() if t.symbol == symbol), None)

    async def by_market(self, market_id: str) -> Token | None:
        return next((t for t in self._all().values() if t.market_id == market_id), None)

    async def list(
        self, token_type: TokenType | None, *, limit: int, before_id: str | None = None
    ) -> list[Token]:
        found = [
            t
            for t in self._all().values()
            if (token_type is None or t.type is token_type)
            and (before_id is None or t.id < before_id)
        ]
        found.sort(key=lambda t: t.id, reverse=True)
        return found[:limit]

    async def _change(self, token_id: str, **values: object) -> Token:
        current = self._all().get(token_id)
        if current is None:
            raise TokenNotFound(token_id)
        changed = attrs.evolve(current, **values)  # type: ignore[arg-type]
        if token_id not in self._changes.tokens:
            self._changes.token_bases[token_id] = current
        others = [t for t in self._all().values() if t.id != token_id]
        _unique([*others, changed])
        self._changes.tokens[token_id] = changed
        return changed

    async def set_contract_address(self, token_id: str, address: str) -> Token:
        return await self._change(token_id, contract_address=address)

    async def set_paused(self, token_id: str, paused: bool) -> Token:
        return await self._change(token_id, paused=paused)


class MemoryComplianceRepository(ComplianceRepository):
    def __init__(self, state: MemoryTokenState, changes: TokenChanges) -> None:
        self._state = state
        self._changes = changes

    def _all(self) -> dict[RecordKey, ComplianceRecord]:
        return {**self._state.records, **self._changes.records}

    async def get(self, user_id: str, token_id: str | None) -> ComplianceRecord | None:
        return self._all().get((user_id, token_id))

    async def for_user(self, user_id: str) -> list[ComplianceRecord]:
        mine = [r for (user, _), r in self._all().items() if user == user_id]
        return sorted(mine, key=lambda r: (r.token_id is not None, r.token_id or ""))

    async def save(self, record: ComplianceRecord) -> ComplianceRecord:
        key = (record.user_id, record.token_id)
        stored = self._all().get(key)
        stored_version = 0 if stored is None else stored.version
        if record.version != stored_version + 1:
            raise ConcurrentModification(
                "the compliance record changed meanwhile",
                details={"userId": record.user_id, "tokenId": record.token_id},
            )
        if record.token_id is not None and record.token_id not in {
            **self._state.tokens,
            **self._changes.tokens,
        }:
            raise TokenNotFound(record.token_id)
        self._changes.records[key] = record
        return record

    async def expiring(self, before: datetime, *, limit: int) -> list[ComplianceRecord]:
        found = [
            r
            for r in self._all().values()
            if r.expires_at < before and r.kyc_status is not KycStatus.EXPIRED
        ]
        found.sort(key=lambda r: (r.expires_at, r.user_id, r.token_id or ""))
        return found[:limit]
