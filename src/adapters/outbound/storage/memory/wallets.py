"""Wallets and challenges in the memory storage: the same rules as the SQL tables.

A unit of work stages records and challenge uses; ``MemoryWalletState.check`` refuses at
commit what the database would: a second record of a user (the unique ``user_id``), an
external address held by another user (the unique index), a record changed by someone else
since it was read, and a challenge used meanwhile (the conditional update). User numbers are
drawn at staging time from a counter that only grows, like a database sequence.
"""

from __future__ import annotations

import itertools
import threading
from datetime import datetime

import attrs

from core.ports.wallets import (
    ExternalAddressTaken,
    WalletChallenge,
    WalletRecord,
    WalletRepository,
)
from core.shared.errors import ConcurrentModification, Conflict, NotFound


@attrs.define
class WalletChanges:
    records: dict[str, WalletRecord] = attrs.Factory(dict)  # staged, by user id
    new_users: set[str] = attrs.Factory(set)  # records created (not updated) here
    bases: dict[str, WalletRecord] = attrs.Factory(dict)  # committed records we built on
    challenges: dict[str, WalletChallenge] = attrs.Factory(dict)  # staged, new or used
    new_challenges: set[str] = attrs.Factory(set)


class MemoryWalletState:
    """Committed records and challenges; changed only by ``apply`` under the state's lock."""

    def __init__(self) -> None:
        self.records: dict[str, WalletRecord] = {}
        self.external_owners: dict[str, str] = {}  # external address -> user id
        self.challenges: dict[str, WalletChallenge] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def next_number(self) -> int:
        with self._lock:
            return next(self._numbers)

    def check(self, changes: WalletChanges) -> None:
        for user_id in changes.records:
            committed = self.records.get(user_id)
            if user_id in changes.new_users:
                if committed is not None:
                    raise ConcurrentModification(
                        f"the wallet of {user_id} was created meanwhile",
                        details={"userId": user_id},
                    )
            elif committed != changes.bases[user_id]:
                raise ConcurrentModification(
                    f"the wallet of {user_id} changed since it was read",
                    details={"userId": user_id},
                )
        staged = set(changes.records)
        owners = {a: u for a, u in self.external_owners.items() if u not in staged}
        for record in changes.records.values():
            address = record.external_address
            if address is not None and owners.setdefault(address, record.user_id) != (
                record.user_id
            ):
                raise ExternalAddressTaken(address)
        for challenge_id in changes.challenges:
            committed_challenge = self.challenges.get(challenge_id)
            if challenge_id in changes.new_challenges:
                if committed_challenge is not None:
                    raise Conflict(f"challenge {challenge_id} already exists")
            elif committed_challenge is None or committed_challenge.used_at is not None:
                raise Conflict(
                    "the challenge was used meanwhile", details={"challengeId": challenge_id}
                )

    def apply(self, changes: WalletChanges) -> None:
        for user_id, record in changes.records.items():
            old = self.records.get(user_id)
            if old is not None and old.external_address is not None:
                self.external_owners.pop(old.external_address, None)
            self.records[user_id] = record
        for record in changes.records.values():
            if record.external_address is not None:
                self.external_owners[record.external_address] = record.user_id
        self.challenges.update(changes.challenges)


class MemoryWalletRepository(WalletRepository):
    def __init__(self, state: MemoryWalletState, changes: WalletChanges) -> None:
        self._state = state
        self._changes = changes

    def _record(self, user_id: str) -> WalletRecord | None:
        if user_id in self._changes.records:
            return self._changes.records[user_id]
        record = self._state.records.get(user_id)
        if record is not None:
            self._changes.bases.setdefault(user_id, record)
        return record

    def _stage(self, record: WalletRecord) -> WalletRecord:
        self._changes.records[record.user_id] = record
        return record

    def _holder(self, address: str) -> str | None:
        for record in self._changes.records.values():
            if record.external_address == address:
                return record.user_id
        holder = self._state.external_owners.get(address)
        if holder is not None and holder in self._changes.records:
            staged = self._changes.records[holder]
            return holder if staged.external_address == address else None
        return holder

    async def get(self, user_id: str) -> WalletRecord | None:
        return self._record(user_id)

    async def numbered(self, *, after_number: int, limit: int) -> list[WalletRecord]:
        merged = {**self._state.records, **self._changes.records}
        found = [r for r in merged.values() if r.user_number > after_number]
        found.sort(key=lambda r: r.user_number)
        return found[:limit]

    async def get_or_create(self, user_id: str, *, now: datetime) -> WalletRecord:
        found = self._record(user_id)
        if found is not None:
            return found
        record = WalletRecord(
            user_id=user_id,
            user_number=self._state.next_number(),
            created_at=now,
            updated_at=now,
        )
        self._changes.new_users.add(user_id)
        return self._stage(record)

    async def set_external(self, user_id: str, address: str, *, now: datetime) -> WalletRecord:
        current = self._record(user_id)
        if current is None:
            raise NotFound(f"no wallet record for {user_id}", details={"userId": user_id})
        holder = self._holder(address)
        if holder is not None and holder != user_id:
            raise ExternalAddressTaken(address)
        return self._stage(
            attrs.evolve(
                current,
                external_address=address,
                external_registered_at=now,
                verified_on_chain=False,
                updated_at=now,
            )
        )

    async def set_verified_on_chain(
        self, user_id: str, *, external_address: str | None, verified: bool, now: datetime
    ) -> bool:
        current = self._record(user_id)
        if current is None or current.external_address != external_address:
            return False
        self._stage(attrs.evolve(current, verified_on_chain=verified, updated_at=now))
        return True

    async def add_challenge(self, challenge: WalletChallenge) -> None:
        if challenge.id in self._changes.challenges or challenge.id in self._state.challenges:
            raise Conflict(f"challenge {challenge.id} already exists")
        self._changes.challenges[challenge.id] = challenge
        self._changes.new_challenges.add(challenge.id)

    async def get_challenge(self, challenge_id: str) -> WalletChallenge | None:
        if challenge_id in self._changes.challenges:
            return self._changes.challenges[challenge_id]
        return self._state.challenges.get(challenge_id)

    async def latest_challenge(self, user_id: str) -> WalletChallenge | None:
        merged = {**self._state.challenges, **self._changes.challenges}
        mine = [c for c in merged.values() if c.user_id == user_id]
        if not mine:
            return None
        return max(mine, key=lambda c: (c.created_at, c.id))

    async def use_challenge(self, challenge_id: str, *, now: datetime) -> bool:
        challenge = await self.get_challenge(challenge_id)
        if challenge is None or challenge.used_at is not None or challenge.expires_at <= now:
            return False
        self._changes.challenges[challenge_id] = attrs.evolve(challenge, used_at=now)
        return True
