"""The audit log in the memory storage: append-only, as strict as the SQL table.

Entries are frozen and their JSON values deep-copied on the way in and out, so nothing a
caller holds can change a stored entry; there is no method that updates or deletes one. A
unit of work stages its entries; ``MemoryAuditState.apply`` adds them at commit, and a unit
that never commits leaves nothing behind.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import threading
from collections.abc import Sequence

import attrs

from core.ports.audit import AuditEntry, AuditFilter, AuditLog, check_audit_entry
from core.shared.errors import Conflict


def _copy(entry: AuditEntry) -> AuditEntry:
    return attrs.evolve(entry, before=copy.deepcopy(entry.before), after=copy.deepcopy(entry.after))


@attrs.define
class AuditChanges:
    entries: list[AuditEntry] = attrs.Factory(list)  # staged, with seq drawn at append


class MemoryAuditState:
    """Committed entries in ``seq`` order; changed only by ``apply`` under the state's lock."""

    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []
        self._ids: set[str] = set()
        self._seq = itertools.count(1)
        self._seq_lock = threading.Lock()

    def next_seq(self) -> int:
        """Drawn at append time, like a database sequence (a rolled back unit leaves a gap)."""
        with self._seq_lock:
            return next(self._seq)

    def check(self, changes: AuditChanges) -> None:
        for entry in changes.entries:
            if entry.id in self._ids:
                raise Conflict(f"audit entry {entry.id} already exists")

    def apply(self, changes: AuditChanges) -> None:
        for entry in changes.entries:
            # seqs are drawn at append: a unit that committed after a later-drawn one lands
            # in the middle (rarely), otherwise at the end
            if self._entries and (self._entries[-1].seq or 0) > (entry.seq or 0):
                bisect.insort(self._entries, entry, key=lambda e: e.seq or 0)
            else:
                self._entries.append(entry)
            self._ids.add(entry.id)

    def knows(self, entry_id: str) -> bool:
        return entry_id in self._ids

    def committed(self) -> list[AuditEntry]:
        return list(self._entries)


def _matches(entry: AuditEntry, audit_filter: AuditFilter) -> bool:
    return (
        (audit_filter.actor_id is None or entry.actor_id == audit_filter.actor_id)
        and (audit_filter.action is None or entry.action == audit_filter.action)
        and (audit_filter.since is None or entry.at >= audit_filter.since)
    )


class MemoryAuditLog(AuditLog):
    def __init__(self, state: MemoryAuditState, changes: AuditChanges) -> None:
        self._state = state
        self._changes = changes

    async def append(self, entry: AuditEntry) -> AuditEntry:
        check_audit_entry(entry)
        if self._state.knows(entry.id) or any(s.id == entry.id for s in self._changes.entries):
            raise Conflict(f"audit entry {entry.id} already exists")
        stored = attrs.evolve(_copy(entry), seq=self._state.next_seq())
        self._changes.entries.append(stored)
        return _copy(stored)

    async def append_many(self, entries: Sequence[AuditEntry]) -> list[AuditEntry]:
        staged = {s.id for s in self._changes.entries}
        seen: set[str] = set()
        for entry in entries:  # every check before anything is staged: all or nothing
            check_audit_entry(entry)
            if entry.id in seen or entry.id in staged or self._state.knows(entry.id):
                raise Conflict(f"audit entry {entry.id} already exists")
            seen.add(entry.id)
        stored = [attrs.evolve(_copy(e), seq=self._state.next_seq()) for e in entries]
        self._changes.entries.extend(stored)
        return [_copy(e) for e in stored]

    async def query(
        self, audit_filter: AuditFilter, *, limit: int, before_seq: int | None = None
    ) -> list[AuditEntry]:
        if limit <= 0:
            return []
        everything = self._state.committed() + list(self._changes.entries)
        found = [
            e
            for e in everything
            if _matches(e, audit_filter) and (before_seq is None or (e.seq or 0) < before_seq)
        ]
        found.sort(key=lambda e: e.seq or 0, reverse=True)
        return [_copy(e) for e in found[:limit]]
