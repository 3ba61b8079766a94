"""Deployment transactions in the memory storage: the same rules as the SQL table.

A unit of work stages new records and updates; ``MemoryDeploymentState.check`` refuses, at
commit, a second open record of a (subject, step) or a known hash (the partial unique index and the
primary key of SQL) and an update whose expected state was changed by someone else meanwhile.
"""

from __future__ import annotations

import attrs

from core.ports.deployments import (
    UNMINED_STATES,
    DeploymentRecord,
    DeploymentRepository,
    DeploymentState,
    DuplicateDeployment,
)
from core.shared.errors import Conflict


@attrs.define
class DeploymentChanges:
    records: dict[str, DeploymentRecord] = attrs.Factory(dict)  # staged, by hash
    new: set[str] = attrs.Factory(set)  # hashes added (not updated) here
    bases: dict[str, DeploymentState] = attrs.Factory(dict)  # committed states we built on


class MemoryDeploymentState:
    """Committed records; changed only through ``apply`` under ``MemoryState``'s lock."""

    def __init__(self) -> None:
        self.records: dict[str, DeploymentRecord] = {}

    def check(self, changes: DeploymentChanges) -> None:
        for tx_hash, record in changes.records.items():
            committed = self.records.get(tx_hash)
            if tx_hash in changes.new:
                if committed is not None:
                    raise DuplicateDeployment(record.subject, record.step, tx_hash)
            elif committed is None or committed.state != changes.bases[tx_hash]:
                raise Conflict(f"deployment {tx_hash} changed since it was read")
        merged = {**self.records, **changes.records}
        open_by_step: dict[tuple[str, str], str] = {}
        for record in merged.values():
            key = (record.subject, record.step)
            if record.is_open and open_by_step.setdefault(key, record.tx_hash) != record.tx_hash:
                raise DuplicateDeployment(record.subject, record.step, record.tx_hash)

    def apply(self, changes: DeploymentChanges) -> None:
        self.records.update(changes.records)


class MemoryDeploymentRepository(DeploymentRepository):
    def __init__(self, state: MemoryDeploymentState, changes: DeploymentChanges) -> None:
        self._state = state
        self._changes = changes

    def _all(self) -> dict[str, DeploymentRecord]:
        return {**self._state.records, **self._changes.records}

    async def add(self, record: DeploymentRecord) -> None:
        known = self._all()
        if record.tx_hash in known or (
            record.is_open
            and any(
                (r.subject, r.step) == (record.subject, record.step) and r.is_open
                for r in known.values()
            )
        ):
            raise DuplicateDeployment(record.subject, record.step, record.tx_hash)
        self._changes.records[record.tx_hash] = record
        self._changes.new.add(record.tx_hash)

    async def get(self, tx_hash: str) -> DeploymentRecord | None:
        return self._all().get(tx_hash)

    async def open_for(self, subject: str, step: str) -> DeploymentRecord | None:
        for record in self._all().values():
            if record.subject == subject and record.step == step and record.is_open:
                return record
        return None

    async def for_subject(self, subject: str) -> list[DeploymentRecord]:
        found = [r for r in self._all().values() if r.subject == subject]
        return sorted(found, key=lambda r: (r.created_at, r.nonce))

    async def update(self, record: DeploymentRecord, *, expected_state: DeploymentState) -> None:
        current = self._all().get(record.tx_hash)
        if current is None or current.state != expected_state:
            raise Conflict(
                f"deployment {record.tx_hash} is not {expected_state.value}",
                details={"txHash": record.tx_hash},
            )
        if record.tx_hash not in self._changes.new:
            self._changes.bases.setdefault(record.tx_hash, current.state)
        self._changes.records[record.tx_hash] = attrs.evolve(
            current,
            state=record.state,
            block_number=record.block_number,
            error=record.error,
            updated_at=record.updated_at,
        )

    async def unmined(self, signer: str, *, limit: int) -> list[DeploymentRecord]:
        found = [
            r
            for r in self._all().values()
            if r.signer.lower() == signer.lower() and r.state in UNMINED_STATES
        ]
        return sorted(found, key=lambda r: r.nonce)[: max(limit, 0)]

    async def latest_mined(self, *, limit: int) -> list[DeploymentRecord]:
        found = [r for r in self._all().values() if r.state is DeploymentState.MINED]
        found.sort(key=lambda r: r.block_number or 0, reverse=True)
        return found[: max(limit, 0)]
