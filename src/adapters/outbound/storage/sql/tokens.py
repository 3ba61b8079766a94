"""``tokens`` and ``compliance_records`` in the unit of work's transaction.

The database keeps the rules: unique indexes refuse a second token with a symbol, contract
address or market; a compliance record changes only by a conditional ``UPDATE ... WHERE
version = :expected`` (or an insert that the primary key refuses when the record exists), and
the foreign key refuses a record for a token that does not exist. Each write runs in a
SAVEPOINT, so a refusal leaves the unit of work usable.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.outbound.storage.sql.prepared import Prepared
from adapters.outbound.storage.sql.tables import compliance_records, tokens
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

GENERAL_SCOPE = "*"


def _token(row: Mapping[Any, Any]) -> Token:
    return Token(
        id=row["id"],
        symbol=row["symbol"],
        name=row["name"],
        type=TokenType(row["type"]),
        decimals=int(row["decimals"]),
        contract_address=row["contract_address"],
        market_id=row["market_id"],
        paused=bool(row["paused"]),
        created_at=row["created_at"],
    )


def _record(row: RowMapping) -> ComplianceRecord:
    return ComplianceRecord(
        user_id=row["user_id"],
        token_id=row["token_id"],
        kyc_status=KycStatus(row["kyc_status"]),
        whitelisted=bool(row["whitelisted"]),
        accredited=bool(row["accredited"]),
        jurisdiction=row["jurisdiction"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
        version=int(row["version"]),
    )


def _token_conflict(exc: IntegrityError, token: Token) -> Conflict | None:
    message = str(exc.orig)
    if "uq_tokens_symbol" in message or "tokens.symbol" in message:
        return TokenSymbolTaken(token.symbol)
    if "uq_tokens_contract_address" in message or "tokens.contract_address" in message:
        return TokenAddressTaken(token.contract_address or "")
    if "uq_tokens_market_id" in message or "tokens.market_id" in message:
        return MarketTokenTaken(token.market_id or "")
    if "pk_tokens" in message or "tokens.id" in message:
        return Conflict(f"token {token.id} already exists")
    return None


# Built once: every batch of a pair's writer and every settlement reads its tokens.
_TOKEN_BY = {
    column: Prepared(sa.select(tokens).where(tokens.c[column] == sa.bindparam("key")))
    for column in ("id", "symbol", "market_id")
}


class SqlTokenRepository(TokenRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def _one(self, column: str, key: str) -> Token | None:
        rows = await _TOKEN_BY[column].rows(self._conn, {"key": key})
        return _token(rows[0]) if rows else None

    async def add(self, token: Token) -> None:
        values = {
            "id": token.id,
            "symbol": token.symbol,
            "name": token.name,
            "type": token.type.value,
            "decimals": token.decimals,
            "contract_address": token.contract_address,
            "market_id": token.market_id,
            "paused": token.paused,
            "created_at": token.created_at,
        }
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(sa.insert(tokens).values(**values))
        except IntegrityError as exc:
            conflict = _token_conflict(exc, token)
            if conflict is not None:
                raise conflict from exc
            raise

    async def get(self, token_id: str) -> Token | None:
        return await self._one("id", token_id)

    async def by_symbol(self, symbol: str) -> Token | None:
        return await self._one("symbol", symbol)

    async def by_market(self, market_id: str) -> Token | None:
        return await self._one("market_id", market_id)

    async def list(
        self, token_type: TokenType | None, *, limit: int, before_id: str | None = None
    ) -> list[Token]:
        query = sa.select(tokens).order_by(tokens.c.id.desc()).limit(limit)
        if token_type is not None:
            query = query.where(tokens.c.type == token_type.value)
        if before_id is not None:
            query = query.where(tokens.c.id < before_id)
        rows = (await self._conn.execute(query)).mappings().all()
        return [_token(row) for row in rows]

    async def _change(self, token_id: str, **values: Any) -> Token:
        current = await self.get(token_id)
        if current is None:
            raise TokenNotFound(token_id)
        statement = sa.update(tokens).where(tokens.c.id == token_id).values(**values)
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(statement)
        except IntegrityError as exc:
            conflict = _token_conflict(exc, Token(**{**_fields(current), **values}))
            if conflict is not None:
                raise conflict from exc
            raise
        changed = await self.get(token_id)
        assert changed is not None
        return changed

    async def set_contract_address(self, token_id: str, address: str) -> Token:
        return await self._change(token_id, contract_address=address)

    async def set_paused(self, token_id: str, paused: bool) -> Token:
        return await self._change(token_id, paused=paused)


def _fields(token: Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "symbol": token.symbol,
        "name": token.name,
        "type": token.type,
        "decimals": token.decimals,
        "contract_address": token.contract_address,
        "market_id": token.market_id,
        "paused": token.paused,
        "created_at": token.created_at,
    }


def _scope(token_id: str | None) -> str:
    return GENERAL_SCOPE if token_id is None else token_id


class SqlComplianceRepository(ComplianceRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def get(self, user_id: str, token_id: str | None) -> ComplianceRecord | None:
        query = sa.select(compliance_records).where(
            compliance_records.c.user_id == user_id,
            compliance_records.c.scope == _scope(token_id),
        )
        row = (await self._conn.execute(query)).mappings().first()
        return None if row is None else _record(row)

    async def for_user(self, user_id: str) -> list[ComplianceRecord]:
        query = (
            sa.select(compliance_records)
            .where(compliance_records.c.user_id == user_id)
            .order_by(compliance_records.c.token_id.is_not(None), compliance_records.c.token_id)
        )
        rows = (await self._conn.execute(query)).mappings().all()
        return [_record(row) for row in rows]

    async def save(self, record: ComplianceRecord) -> ComplianceRecord:
        if record.token_id is not None:
            known = await self._conn.execute(
                sa.select(tokens.c.id).where(tokens.c.id == record.token_id)
            )
            if known.first() is None:
                raise TokenNotFound(record.token_id)
        values = {
            "token_id": record.token_id,
            "kyc_status": record.kyc_status.value,
            "whitelisted": record.whitelisted,
            "accredited": record.accredited,
            "jurisdiction": record.jurisdiction,
            "expires_at": record.expires_at,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
            "updated_by": record.updated_by,
            "version": record.version,
        }
        stale = ConcurrentModification(
            "the compliance record changed meanwhile",
            details={"userId": record.user_id, "tokenId": record.token_id},
        )
        if record.version == 1:
            statement: Any = sa.insert(compliance_records).values(
                user_id=record.user_id, scope=_scope(record.token_id), **values
            )
        else:
            statement = (
                sa.update(compliance_records)
                .where(
                    compliance_records.c.user_id == record.user_id,
                    compliance_records.c.scope == _scope(record.token_id),
                    compliance_records.c.version == record.version - 1,
                )
                .values(**values)
            )
        try:
            async with self._conn.begin_nested():
                result = await self._conn.execute(statement)
        except IntegrityError as exc:
            message = str(exc.orig).lower()
            if "foreign key" in message:
                raise TokenNotFound(record.token_id or "") from exc
            raise stale from exc
        if record.version != 1 and result.rowcount != 1:
            raise stale
        return record

    async def expiring(self, before: datetime, *, limit: int) -> list[ComplianceRecord]:
        query = (
            sa.select(compliance_records)
            .where(
                compliance_records.c.expires_at < before,
                compliance_records.c.kyc_status != KycStatus.EXPIRED.value,
            )
            .order_by(
                compliance_records.c.expires_at,
                compliance_records.c.user_id,
                compliance_records.c.scope,
            )
            .limit(limit)
        )
        rows = (await self._conn.execute(query)).mappings().all()
        return [_record(row) for row in rows]
