"""The audit log's contract (``uow.audit``): one abstract suite for every storage adapter.

A concrete class subclasses ``AuditContract`` and provides a ``storage`` fixture yielding an
empty, migrated ``Storage``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest

from core.ports.audit import AuditEntry, AuditFilter, InvalidAuditEntry, audit_entry
from core.ports.storage import Storage
from core.shared.errors import Conflict
from core.shared.events import Actor
from tests.contract.wallet_suite import challenge

T0 = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
ADMIN = Actor(id="admin-1", roles=("admin",))
TRADER = Actor(id="trader-1", roles=("trader",))


def entry(
    actor: Actor = ADMIN,
    action: str = "market.approve",
    subject: str = "market:m1",
    *,
    at: datetime = T0,
    before: Any = None,
    after: Any = None,
) -> AuditEntry:
    return audit_entry(
        actor,
        action,
        subject,
        before={"status": "pending_approval"} if before is None else before,
        after={"status": "approved"} if after is None else after,
        at=at,
    )


class AuditContract:
    async def _append(self, storage: Storage, *entries: AuditEntry) -> list[AuditEntry]:
        async with storage.unit_of_work() as uow:
            stored = [await uow.audit.append(e) for e in entries]
            await uow.commit()
        return stored

    async def _all(self, storage: Storage, audit_filter: AuditFilter | None = None) -> list[Any]:
        async with storage.unit_of_work(read_only=True) as uow:
            return await uow.audit.query(audit_filter or AuditFilter(), limit=100)

    async def test_append_numbers_entries_and_reads_them_back_exactly(
        self, storage: Storage
    ) -> None:
        values = {
            "amount": Decimal("1000000.000001"),
            "big": 2**70,
            "when": T0,
            "tags": ("a", "b"),
            "nested": {"ok": True, "none": None, "text": "Zürich\nline two"},
        }
        first, second = await self._append(
            storage, entry(before=None, after=values), entry(action="market.reject")
        )
        assert first.seq is not None and second.seq is not None
        assert second.seq > first.seq
        assert first.after == {
            "amount": "1000000.000001",
            "big": 2**70,
            "when": T0.isoformat(),
            "tags": ["a", "b"],
            "nested": {"ok": True, "none": None, "text": "Zürich\nline two"},
        }
        found = await self._all(storage)
        assert found == [second, first]  # newest first, every field as appended
        assert found[1].before == {"status": "pending_approval"}
        assert found[1].at == T0

    async def test_null_before_and_after_round_trip(self, storage: Storage) -> None:
        bare = attrs.evolve(entry(), before=None, after=None)
        (stored,) = await self._append(storage, bare)
        assert (await self._all(storage)) == [stored]
        assert stored.before is None and stored.after is None

    async def test_filters_by_actor_action_and_time(self, storage: Storage) -> None:
        a = entry(ADMIN, "market.approve", at=T0)
        b = entry(TRADER, "wallet.register_external", "user:trader-1", at=T0 + timedelta(1))
        c = entry(ADMIN, "market.pause", at=T0 + timedelta(2))
        d = entry(ADMIN, "market.approve", "market:m2", at=T0 + timedelta(3))
        a, b, c, d = await self._append(storage, a, b, c, d)
        assert await self._all(storage, AuditFilter(actor_id="admin-1")) == [d, c, a]
        assert await self._all(storage, AuditFilter(action="market.approve")) == [d, a]
        assert await self._all(storage, AuditFilter(since=T0 + timedelta(1))) == [d, c, b]
        both = AuditFilter(actor_id="admin-1", action="market.approve", since=T0 + timedelta(1))
        assert await self._all(storage, both) == [d]
        assert await self._all(storage, AuditFilter(actor_id="nobody")) == []

    async def test_pages_go_back_in_time_by_seq(self, storage: Storage) -> None:
        stored = await self._append(storage, *(entry(subject=f"market:m{n}") for n in range(5)))
        async with storage.unit_of_work(read_only=True) as uow:
            page1 = await uow.audit.query(AuditFilter(), limit=2)
            assert page1[-1].seq is not None
            page2 = await uow.audit.query(AuditFilter(), limit=2, before_seq=page1[-1].seq)
            assert page2[-1].seq is not None
            page3 = await uow.audit.query(AuditFilter(), limit=2, before_seq=page2[-1].seq)
            assert await uow.audit.query(AuditFilter(), limit=0) == []
        assert page1 + page2 + page3 == list(reversed(stored))
        assert len(page3) == 1

    async def test_a_unit_sees_its_own_entries_before_commit(self, storage: Storage) -> None:
        (old,) = await self._append(storage, entry())
        async with storage.unit_of_work() as uow:
            new = await uow.audit.append(entry(action="market.pause"))
            assert await uow.audit.query(AuditFilter(), limit=10) == [new, old]

    async def test_rollback_drops_the_entry_with_the_change(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            await uow.wallets.get_or_create("alice", now=T0)
            await uow.audit.append(entry(subject="user:alice"))
            # no commit: both go
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.wallets.get("alice") is None
            assert await uow.audit.query(AuditFilter(), limit=10) == []

    async def test_commit_keeps_the_entry_with_the_change(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            record = await uow.wallets.get_or_create("alice", now=T0)
            stored = await uow.audit.append(entry(subject="user:alice"))
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.wallets.get("alice") == record
            assert await uow.audit.query(AuditFilter(), limit=10) == [stored]

    async def test_a_failed_commit_keeps_no_entry(self, storage: Storage) -> None:
        item = challenge("alice")
        async with storage.unit_of_work() as uow:
            await uow.wallets.add_challenge(item)
            await uow.commit()
        with pytest.raises(Conflict):
            async with storage.unit_of_work() as uow:
                await uow.audit.append(entry(action="wallet.challenge"))
                await uow.wallets.add_challenge(item)  # the same id again
                await uow.commit()
        assert await self._all(storage) == []

    @pytest.mark.parametrize(
        "change",
        [
            {"before": {"price": 1.5}},
            {"after": {"amount": Decimal("1")}},  # not converted by audit_json
            {"after": {1: "x"}},
            {"after": {"when": T0}},
            {"after": ("a",)},
            {"at": datetime(2026, 1, 1)},
            {"action": "  "},
            {"subject": "x" * 201},
            {"actor_id": ""},
        ],
    )
    async def test_values_that_are_not_plain_json_are_refused(
        self, storage: Storage, change: dict[str, Any]
    ) -> None:
        bad = attrs.evolve(entry(), **change)
        with pytest.raises(InvalidAuditEntry):
            async with storage.unit_of_work() as uow:
                await uow.audit.append(bad)
                await uow.commit()
        assert await self._all(storage) == []

    async def test_an_id_is_appended_once(self, storage: Storage) -> None:
        (stored,) = await self._append(storage, entry())
        with pytest.raises(Conflict):
            async with storage.unit_of_work() as uow:
                await uow.audit.append(attrs.evolve(stored, seq=None))
                await uow.commit()
        assert await self._all(storage) == [stored]

    async def test_append_many_numbers_in_order_and_reads_back_like_append(
        self, storage: Storage
    ) -> None:
        (single,) = await self._append(storage, entry(action="market.approve"))
        many = [
            entry(action=f"order.submit.{n}", after={"n": n, "d": Decimal("1.5")}) for n in range(5)
        ]
        async with storage.unit_of_work() as uow:
            assert await uow.audit.append_many([]) == []
            stored = await uow.audit.append_many(many)
            await uow.commit()
        seqs = [e.seq for e in stored]
        assert all(s is not None for s in seqs) and seqs == sorted(seqs)
        assert len(set(seqs)) == 5 and (single.seq or 0) < (seqs[0] or 0)
        assert [e.id for e in stored] == [e.id for e in many]
        assert stored[2].after == {"n": 2, "d": "1.5"}
        assert await self._all(storage) == [*reversed(stored), single]

    async def test_append_many_is_all_or_nothing(self, storage: Storage) -> None:
        (stored,) = await self._append(storage, entry())
        fresh = [entry(action="order.submit"), entry(action="order.cancel")]
        for lot, error in (
            ([*fresh, attrs.evolve(stored, seq=None)], Conflict),  # one already stored
            ([fresh[0], fresh[0]], Conflict),  # twice in the lot
            ([*fresh, attrs.evolve(entry(), action="  ")], InvalidAuditEntry),
        ):
            async with storage.unit_of_work() as uow:
                with pytest.raises(error):
                    await uow.audit.append_many(lot)
                await uow.commit()  # what the unit did besides stays; none of the lot
            assert await self._all(storage) == [stored]

    async def test_the_repository_offers_no_way_to_change_an_entry(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            public = {name for name in dir(uow.audit) if not name.startswith("_")}
        assert public == {"append", "append_many", "query"}

    async def test_values_held_by_the_caller_cannot_change_a_stored_entry(
        self, storage: Storage
    ) -> None:
        (stored,) = await self._append(storage, entry(after={"list": [1, 2]}))
        stored.after["list"].append(3)
        (found,) = await self._all(storage)
        assert found.after == {"list": [1, 2]}
        found.after["list"].append(4)
        assert (await self._all(storage))[0].after == {"list": [1, 2]}
