"""``GET /api/v1/reconciliation``: the latest reconciliation run and its drifts (admins)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ConfigDict, Field
from quart import Blueprint, Response, current_app, jsonify

from adapters.inbound.http.dependencies import HttpDependencies
from adapters.inbound.http.guard import current_actor, guarded
from adapters.inbound.http.openapi import DateTime, WireModel, documented, envelope
from core.shared.audit import READ_ACTION
from core.shared.errors import NotFound
from core.tokens.reconcile_report import latest_reconciliation

reconciliation = Blueprint("reconciliation", __name__, url_prefix="/api/v1/reconciliation")


class DriftOut(WireModel):
    """One difference between the chain and the ledger, in the token's base units."""

    model_config = ConfigDict(title="ReconciliationDrift")

    token_id: str
    symbol: str
    scope: str = Field(description="address (an RWA token's holder) or total (omnibus tokens)")
    owner: str = Field(description="the user id, or * for a total")
    address: str | None
    ledger: str = Field(description="base units, a decimal integer string")
    chain: str = Field(description="base units, a decimal integer string")
    difference: str = Field(description="chain - ledger, base units (may be negative)")


class ReconciliationOut(WireModel):
    """The latest run of ``rwa-market reconcile`` or the scheduled ``reconcile`` job."""

    model_config = ConfigDict(title="Reconciliation")

    at: str = DateTime
    tokens: int = Field(description="tokens compared")
    accounts: int = Field(description="ledger accounts compared")
    drift_count: int = Field(description="drifts found (0: chain and ledger agree)")
    drifts: list[DriftOut] = Field(description="the run's drifts (at most 100 listed)")


ReconciliationEnvelope = envelope(ReconciliationOut)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@reconciliation.get("")
@documented(ReconciliationEnvelope, auth=True, errors=(404,))
@guarded(READ_ACTION)
async def latest() -> Response:
    """The latest reconciliation run (admins only): when, how much was compared, and each
    drift between the chain and the ledger. 404 when no run is recorded yet."""
    deps: HttpDependencies = current_app.config["RWA_DEPS"]
    result = await latest_reconciliation(deps.audit, current_actor())
    if result is None:
        raise NotFound("no reconciliation run is recorded yet")
    return jsonify(
        {
            "data": {
                "at": _iso(result.at),
                "tokens": result.tokens,
                "accounts": result.accounts,
                "driftCount": result.drift_count,
                "drifts": result.drifts,
            }
        }
    )
