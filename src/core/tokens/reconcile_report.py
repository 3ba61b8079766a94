"""The latest reconciliation run, read back from the audit log (admins only).

A run of ``core.tokens.reconcile`` appends its ``reconcile.drift`` entries and then one
``reconcile.completed`` summary, all at the same time in one unit of work; this reads the
newest summary and the drift entries of that run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from core.ports.audit import AuditFilter
from core.shared.audit import MAX_PAGE, AuditQueries
from core.shared.events import Actor
from core.tokens.reconcile import COMPLETED, DRIFT


@attrs.frozen
class ReconciliationResult:
    at: datetime
    tokens: int
    accounts: int
    drift_count: int
    # each drift as the audit entry's ``after`` (``drift_view``): exact base-unit strings
    drifts: list[dict[str, Any]]


def _whole(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


async def latest_reconciliation(audit: AuditQueries, actor: Actor) -> ReconciliationResult | None:
    """The newest run's summary and its drifts (at most ``MAX_PAGE`` listed; ``drift_count``
    counts all); None when no run is recorded. ``PermissionDenied`` unless the caller may
    read the audit log."""
    newest = await audit.page(actor, AuditFilter(action=COMPLETED), limit=1)
    if not newest.items:
        return None
    summary = newest.items[0]
    after = summary.after if isinstance(summary.after, dict) else {}
    drifts: list[dict[str, Any]] = []
    if _whole(after.get("drifts")):
        page = await audit.page(actor, AuditFilter(action=DRIFT, since=summary.at), limit=MAX_PAGE)
        drifts = [
            dict(e.after)
            for e in page.items
            if e.at == summary.at
            and isinstance(e.after, dict)
            and (summary.seq is None or e.seq is None or e.seq < summary.seq)
        ]
        drifts.reverse()  # in the order the run found them
    return ReconciliationResult(
        at=summary.at,
        tokens=_whole(after.get("tokens")),
        accounts=_whole(after.get("accounts")),
        drift_count=_whole(after.get("drifts")),
        drifts=drifts,
    )
