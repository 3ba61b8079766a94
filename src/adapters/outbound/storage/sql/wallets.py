"""``wallets`` and ``wallet_challenges``: user numbers, external addresses, challenges.

The database keeps the rules: the autoincrementing ``user_number`` is never reused, the
unique ``user_id`` gives a user one number (an insert that loses the race does nothing and
reads the winner's row), the unique index on ``external_address`` refuses a second holder,
and a challenge is used by a conditional ``UPDATE ... WHERE used_at IS NULL AND expires_at >
now``, so two registrations with one challenge cannot both succeed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.outbound.storage.sql.tables import wallet_challenges, wallets
from core.ports.wallets import (
    ExternalAddressTaken,
    WalletChallenge,
    WalletRecord,
    WalletRepository,
)
from core.shared.errors import Conflict, NotFound


def _record(row: RowMapping) -> WalletRecord:
    return WalletRecord(
        user_id=row["user_id"],
        user_number=int(row["user_number"]),
        external_address=row["external_address"],
        external_registered_at=row["external_registered_at"],
        verified_on_chain=bool(row["verified_on_chain"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _challenge(row: RowMapping) -> WalletChallenge:
    return WalletChallenge(
        id=row["id"],
        user_id=row["user_id"],
        message=row["message"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        used_at=row["used_at"],
    )


class SqlWalletRepository(WalletRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def get(self, user_id: str) -> WalletRecord | None:
        query = sa.select(wallets).where(wallets.c.user_id == user_id)
        row = (await self._conn.execute(query)).mappings().first()
        return None if row is None else _record(row)

    async def numbered(self, *, after_number: int, limit: int) -> list[WalletRecord]:
        query = (
            sa.select(wallets)
            .where(wallets.c.user_number > after_number)
            .order_by(wallets.c.user_number)
            .limit(limit)
        )
        return [_record(row) for row in (await self._conn.execute(query)).mappings().all()]

    async def get_or_create(self, user_id: str, *, now: datetime) -> WalletRecord:
        found = await self.get(user_id)
        if found is not None:
            return found
        values: dict[str, Any] = {
            "user_id": user_id,
            "verified_on_chain": False,
            "created_at": now,
            "updated_at": now,
        }
        insert: Any = (
            postgresql.insert(wallets)
            if self._conn.dialect.name == "postgresql"
            else sqlite.insert(wallets)
        )
        # A concurrent first request for the same user waits for the other transaction and
        # then inserts nothing: both end up with the one number the user has.
        await self._conn.execute(
            insert.values(**values).on_conflict_do_nothing(index_elements=["user_id"])
        )
        created = await self.get(user_id)
        if created is None:  # the winner rolled back after we waited: try once more
            await self._conn.execute(
                insert.values(**values).on_conflict_do_nothing(index_elements=["user_id"])
            )
            created = await self.get(user_id)
        if created is None:
            raise Conflict(f"the wallet of {user_id} could not be created; try again")
        return created

    async def set_external(self, user_id: str, address: str, *, now: datetime) -> WalletRecord:
        statement = (
            sa.update(wallets)
            .where(wallets.c.user_id == user_id)
            .values(
                external_address=address,
                external_registered_at=now,
                verified_on_chain=False,
                updated_at=now,
            )
        )
        try:
            async with self._conn.begin_nested():
                result = await self._conn.execute(statement)
        except IntegrityError as exc:
            message = str(exc.orig)
            if "uq_wallets_external_address" in message or "wallets.external_address" in message:
                raise ExternalAddressTaken(address) from exc
            raise
        if result.rowcount != 1:
            raise NotFound(f"no wallet record for {user_id}", details={"userId": user_id})
        record = await self.get(user_id)
        assert record is not None
        return record

    async def set_verified_on_chain(
        self, user_id: str, *, external_address: str | None, verified: bool, now: datetime
    ) -> bool:
        current = (
            wallets.c.external_address.is_(None)
            if external_address is None
            else wallets.c.external_address == external_address
        )
        result = await self._conn.execute(
            sa.update(wallets)
            .where(wallets.c.user_id == user_id, current)
            .values(verified_on_chain=verified, updated_at=now)
        )
        return bool(result.rowcount == 1)

    async def add_challenge(self, challenge: WalletChallenge) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    sa.insert(wallet_challenges).values(
                        id=challenge.id,
                        user_id=challenge.user_id,
                        message=challenge.message,
                        created_at=challenge.created_at,
                        expires_at=challenge.expires_at,
                        used_at=challenge.used_at,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"challenge {challenge.id} already exists") from exc

    async def get_challenge(self, challenge_id: str) -> WalletChallenge | None:
        query = sa.select(wallet_challenges).where(wallet_challenges.c.id == challenge_id)
        row = (await self._conn.execute(query)).mappings().first()
        return None if row is None else _challenge(row)

    async def latest_challenge(self, user_id: str) -> WalletChallenge | None:
        query = (
            sa.select(wallet_challenges)
            .where(wallet_challenges.c.user_id == user_id)
            .order_by(wallet_challenges.c.created_at.desc(), wallet_challenges.c.id.desc())
            .limit(1)
        )
        row = (await self._conn.execute(query)).mappings().first()
        return None if row is None else _challenge(row)

    async def use_challenge(self, challenge_id: str, *, now: datetime) -> bool:
        result = await self._conn.execute(
            sa.update(wallet_challenges)
            .where(
                wallet_challenges.c.id == challenge_id,
                wallet_challenges.c.used_at.is_(None),
                wallet_challenges.c.expires_at > now,
            )
            .values(used_at=now)
        )
        return bool(result.rowcount == 1)
