"""The token and compliance repositories' contract (``uow.tokens``, ``uow.compliance``), part
of the storage contract suite: every storage adapter (memory, SQLite, Postgres) runs it.

Unique symbols, contract addresses and markets, refused by the store itself (also between two
units racing); compliance records one per (user, token) and one general, versioned, for
stored tokens only.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from core.ports.storage import Storage
from core.shared.errors import ConcurrentModification, Conflict
from core.shared.ids import new_id
from core.tokens.compliance import ComplianceRecord, KycStatus
from core.tokens.model import (
    MarketTokenTaken,
    Token,
    TokenAddressTaken,
    TokenNotFound,
    TokenSymbolTaken,
    TokenType,
)

T0 = datetime(2026, 4, 5, 6, 7, 8, 123456, tzinfo=UTC)
ADDRESS_1 = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ADDRESS_2 = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
_n = iter(range(1, 10**9))


def make_token(**overrides: Any) -> Token:
    fields: dict[str, Any] = {
        "symbol": f"TK{next(_n)}",
        "name": "Test token",
        "type": TokenType.CRYPTO,
        "decimals": 18,
        "created_at": T0,
    }
    fields.update(overrides)
    return Token(**fields)


def make_compliance(user_id: str = "alice", **overrides: Any) -> ComplianceRecord:
    fields: dict[str, Any] = {
        "user_id": user_id,
        "kyc_status": KycStatus.APPROVED,
        "whitelisted": True,
        "accredited": False,
        "jurisdiction": "PT",
        "expires_at": T0 + timedelta(days=365),
        "created_at": T0,
        "updated_at": T0,
        "updated_by": "admin-1",
    }
    fields.update(overrides)
    return ComplianceRecord(**fields)


class TokenStorageContract:
    async def _add_tokens(self, storage: Storage, *tokens: Token) -> None:
        async with storage.unit_of_work() as uow:
            for token in tokens:
                await uow.tokens.add(token)
            await uow.commit()

    async def _save_record(self, storage: Storage, record: ComplianceRecord) -> None:
        async with storage.unit_of_work() as uow:
            await uow.compliance.save(record)
            await uow.commit()

    # -- tokens --------------------------------------------------------------------------------

    async def test_token_round_trip_every_field(self, storage: Storage) -> None:
        token = make_token(
            type=TokenType.STABLE,
            decimals=6,
            contract_address=ADDRESS_1,
            paused=True,
            name="Ünïcode dollar",
        )
        await self._add_tokens(storage, token)
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.tokens.get(token.id) == token
            assert await uow.tokens.by_symbol(token.symbol) == token
            assert await uow.tokens.get(new_id()) is None
            assert await uow.tokens.by_symbol("NOPE") is None
        stored = await self._reread_token(storage, token.id)
        assert stored.created_at == T0 and stored.created_at.utcoffset() == timedelta(0)

    async def _reread_token(self, storage: Storage, token_id: str) -> Token:
        async with storage.unit_of_work(read_only=True) as uow:
            found = await uow.tokens.get(token_id)
        assert found is not None
        return found

    async def test_a_duplicate_symbol_is_refused_and_nothing_is_stored(
        self, storage: Storage
    ) -> None:
        first = make_token()
        await self._add_tokens(storage, first)
        second = make_token(symbol=first.symbol)
        with pytest.raises(TokenSymbolTaken):
            await self._add_tokens(storage, second)
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.tokens.get(second.id) is None
            assert await uow.tokens.by_symbol(first.symbol) == first

    async def test_a_refused_token_leaves_the_unit_usable(self, storage: Storage) -> None:
        first = make_token()
        await self._add_tokens(storage, first)
        other = make_token()
        async with storage.unit_of_work() as uow:
            with pytest.raises(TokenSymbolTaken):
                await uow.tokens.add(make_token(symbol=first.symbol))
            await uow.tokens.add(other)
            await uow.commit()
        assert await self._reread_token(storage, other.id) == other

    async def test_contract_address_and_market_are_unique_when_set(self, storage: Storage) -> None:
        market_id = await self._stored_market(storage)
        await self._add_tokens(
            storage,
            make_token(contract_address=ADDRESS_1, market_id=market_id, type=TokenType.RWA),
            make_token(),  # no address, no market: any number of these
            make_token(),
        )
        with pytest.raises(TokenAddressTaken):
            await self._add_tokens(storage, make_token(contract_address=ADDRESS_1))
        with pytest.raises(MarketTokenTaken):
            await self._add_tokens(storage, make_token(market_id=market_id))
        async with storage.unit_of_work(read_only=True) as uow:
            found = await uow.tokens.by_market(market_id)
            assert found is not None and found.contract_address == ADDRESS_1
            assert await uow.tokens.by_market(new_id()) is None

    async def _stored_market(self, storage: Storage) -> str:
        from tests.contract.storage_suite import make_asset, make_market

        market = make_market()
        async with storage.unit_of_work() as uow:
            await uow.markets.add(market, make_asset(market))
            await uow.commit()
        return market.id

    async def test_racing_units_cannot_both_take_a_symbol(self, storage: Storage) -> None:
        symbol = f"RACE{next(_n)}"[:12]

        async def add() -> bool:
            try:
                await self._add_tokens(storage, make_token(symbol=symbol))
            except (TokenSymbolTaken, Conflict):
                return False
            return True

        results = await asyncio.gather(add(), add(), add())
        assert sorted(results) == [False, False, True]

    async def test_list_newest_first_by_type_with_before_id(self, storage: Storage) -> None:
        tokens = [make_token(type=TokenType.RWA if n % 2 else TokenType.CRYPTO) for n in range(5)]
        await self._add_tokens(storage, *tokens)
        newest_first = sorted(tokens, key=lambda t: t.id, reverse=True)
        async with storage.unit_of_work(read_only=True) as uow:
            everything = await uow.tokens.list(None, limit=100)
            assert [t for t in everything if t in tokens] == newest_first
            rwa = await uow.tokens.list(TokenType.RWA, limit=100)
            assert [t for t in rwa if t in tokens] == [
                t for t in newest_first if t.type is TokenType.RWA
            ]
            assert all(t.type is TokenType.RWA for t in rwa)
            page = await uow.tokens.list(None, limit=2, before_id=newest_first[1].id)
            assert page == [t for t in everything if t.id < newest_first[1].id][:2]

    async def test_set_contract_address_and_paused(self, storage: Storage) -> None:
        token, other = make_token(), make_token(contract_address=ADDRESS_2)
        await self._add_tokens(storage, token, other)
        async with storage.unit_of_work() as uow:
            changed = await uow.tokens.set_contract_address(token.id, ADDRESS_1)
            assert changed == attrs.evolve(token, contract_address=ADDRESS_1)
            paused = await uow.tokens.set_paused(token.id, True)
            assert paused == attrs.evolve(changed, paused=True)
            with pytest.raises(TokenNotFound):
                await uow.tokens.set_paused(new_id(), True)
            await uow.commit()
        assert await self._reread_token(storage, token.id) == paused
        async with storage.unit_of_work() as uow:
            with pytest.raises(TokenAddressTaken):
                await uow.tokens.set_contract_address(token.id, ADDRESS_2)
        assert await self._reread_token(storage, token.id) == paused

    # -- compliance records ----------------------------------------------------------------------

    async def test_general_and_per_token_records_round_trip(self, storage: Storage) -> None:
        token = make_token(type=TokenType.RWA)
        await self._add_tokens(storage, token)
        general = make_compliance()
        specific = make_compliance(token_id=token.id, accredited=True, jurisdiction="US")
        await self._save_record(storage, specific)
        await self._save_record(storage, general)
        await self._save_record(storage, make_compliance("bob"))
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.compliance.get("alice", None) == general
            assert await uow.compliance.get("alice", token.id) == specific
            assert await uow.compliance.get("alice", new_id()) is None
            assert await uow.compliance.get("carol", None) is None
            assert await uow.compliance.for_user("alice") == [general, specific]
            assert await uow.compliance.for_user("carol") == []

    async def test_versions_make_changes_conditional(self, storage: Storage) -> None:
        first = make_compliance()
        await self._save_record(storage, first)
        with pytest.raises(ConcurrentModification):  # a second version 1
            await self._save_record(storage, make_compliance(kyc_status=KycStatus.REJECTED))
        second = attrs.evolve(first, kyc_status=KycStatus.EXPIRED, version=2, updated_at=T0)
        await self._save_record(storage, second)
        with pytest.raises(ConcurrentModification):  # built on version 1 again
            await self._save_record(storage, attrs.evolve(first, whitelisted=False, version=2))
        with pytest.raises(ConcurrentModification):  # skips a version
            await self._save_record(storage, attrs.evolve(first, version=4))
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.compliance.get("alice", None) == second

    async def test_concurrent_changes_of_one_record_one_wins(self, storage: Storage) -> None:
        first = make_compliance()
        await self._save_record(storage, first)

        async def change(status: KycStatus) -> bool:
            try:
                await self._save_record(storage, attrs.evolve(first, kyc_status=status, version=2))
            except ConcurrentModification:
                return False
            return True

        results = await asyncio.gather(change(KycStatus.REJECTED), change(KycStatus.EXPIRED))
        assert sorted(results) == [False, True]
        async with storage.unit_of_work(read_only=True) as uow:
            stored = await uow.compliance.get("alice", None)
        assert stored is not None and stored.version == 2

    async def test_a_record_for_an_unknown_token_is_refused(self, storage: Storage) -> None:
        with pytest.raises(TokenNotFound):
            await self._save_record(storage, make_compliance(token_id=new_id()))
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.compliance.for_user("alice") == []

    async def test_a_token_and_its_record_in_one_unit(self, storage: Storage) -> None:
        token = make_token(type=TokenType.RWA)
        record = make_compliance(token_id=token.id)
        async with storage.unit_of_work() as uow:
            await uow.tokens.add(token)
            await uow.compliance.save(record)
            assert await uow.compliance.for_user("alice") == [record]
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.compliance.for_user("alice") == [record]

    async def test_an_uncommitted_record_is_dropped(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            await uow.compliance.save(make_compliance())
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.compliance.get("alice", None) is None

    async def test_expiring_lists_records_due_oldest_first(self, storage: Storage) -> None:
        soon = make_compliance("a", expires_at=T0 + timedelta(days=1))
        sooner = make_compliance("b", expires_at=T0 + timedelta(hours=1))
        later = make_compliance("c", expires_at=T0 + timedelta(days=30))
        done = make_compliance("d", expires_at=T0, kyc_status=KycStatus.EXPIRED)
        for record in (soon, sooner, later, done):
            await self._save_record(storage, record)
        async with storage.unit_of_work(read_only=True) as uow:
            due = await uow.compliance.expiring(T0 + timedelta(days=2), limit=10)
            assert due == [sooner, soon]
            assert await uow.compliance.expiring(T0 + timedelta(days=2), limit=1) == [sooner]
            # at exactly its expiry a record is due only for a later "before"
            assert await uow.compliance.expiring(T0 + timedelta(hours=1), limit=10) == []
