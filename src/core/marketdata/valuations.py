"""The ``update-token-metadata`` use case: record a new valuation of a market's real-world
asset. Valuations are appended (version 1, 2, ...), never overwritten: the history stays,
the latest is current (the first update first records the valuation the market was
registered with, if any, as version 1 with source ``registration``), and two updates
racing for one version cannot both commit (the store refuses the second:
``DuplicateMarketData``; retry). Each update is audited (``asset.valuation_update``, subject
``market:<id>``, ``before``/``after`` the previous and the new valuation) in its unit of work."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from core.marketdata.model import AssetValuation
from core.markets.model import Market, MarketAsset
from core.ports.audit import audit_entry
from core.ports.clock import Clock
from core.ports.storage import Storage, UnitOfWork
from core.shared.authorization import Authorizer
from core.shared.errors import NotFound, ValidationFailed
from core.shared.events import Actor
from core.shared.ids import new_id
from core.tokens.compliance_use_cases import parse_utc

_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_NOTE = 2_000
MAX_SOURCE = 200
REGISTRATION_SOURCE = "registration"
AUDIT_ACTION = "asset.valuation_update"
UPDATE = "market.valuation_update"  # the permission: admins, and an issuer on its own markets
_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,29})(\.[0-9]{1,18})?")


def parse_valuation(text: object) -> Decimal:
    """An exact decimal string (at most 30 digits before the point and 18 after) as a
    ``Decimal``; ``ValidationFailed`` naming ``valuation`` for anything else."""
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise ValidationFailed(
            "the valuation update is invalid",
            fields={
                "valuation": "must be a decimal string such as 25000000.00 (at most 30 digits "
                "before the point and 18 after)"
            },
        )
    return Decimal(text)


def registration_valuation(
    market: Market, asset: MarketAsset | None, now: datetime
) -> AssetValuation | None:
    """Version 1 of the history: the valuation the market was registered with, if any."""
    if asset is None or not asset.valuation or not asset.currency:
        return None
    return AssetValuation(
        id=new_id(),
        market_id=market.id,
        version=1,
        valuation=asset.valuation,
        currency=asset.currency,
        effective_at=market.created_at,
        recorded_at=now,
        actor_id=market.issuer_id,
        source=REGISTRATION_SOURCE,
    )


def valuation_view(valuation: AssetValuation) -> dict[str, object]:
    """The audit log's picture of a valuation."""
    return {
        "version": valuation.version,
        "valuation": valuation.valuation,
        "currency": valuation.currency,
        "effectiveAt": valuation.effective_at,
        "source": valuation.source,
        "note": valuation.note,
    }


def current_valuation(
    latest: AssetValuation | None, market: Market, asset: MarketAsset | None, now: datetime
) -> AssetValuation | None:
    """The valuation an update follows: the latest recorded, else the registration's."""
    return latest if latest is not None else registration_valuation(market, asset, now)


async def append_valuation(
    uow: UnitOfWork,
    actor: Actor,
    market: Market,
    asset: MarketAsset | None,
    *,
    valuation: Decimal,
    currency: str | None,
    effective_at: datetime,
    source: str | None,
    note: str | None,
    now: datetime,
) -> AssetValuation:
    """Append a (checked) valuation and its audit entry in ``uow``, the caller commits: the
    next version after the latest (the registration's valuation first recorded as version 1
    when the history is empty)."""
    previous = await uow.valuations.latest(market.id)
    if previous is None:
        # the history starts with the valuation the market was registered with
        previous = registration_valuation(market, asset, now)
        if previous is not None:
            await uow.valuations.add(previous)
    chosen = currency or (previous.currency if previous else None)
    if not chosen:
        raise ValidationFailed(
            "the valuation update is invalid", fields={"currency": "is required"}
        )
    record = AssetValuation(
        id=new_id(),
        market_id=market.id,
        version=1 if previous is None else previous.version + 1,
        valuation=valuation,
        currency=chosen,
        effective_at=effective_at,
        recorded_at=now,
        actor_id=actor.id,
        source=source,
        note=note,
    )
    await uow.valuations.add(record)
    await uow.audit.append(
        audit_entry(
            actor,
            AUDIT_ACTION,
            f"market:{market.id}",
            before=None if previous is None else valuation_view(previous),
            after=valuation_view(record),
            at=now,
        )
    )
    return record


async def update_token_metadata(
    storage: Storage,
    clock: Clock,
    actor: Actor,
    market_id: str,
    *,
    valuation: Decimal,
    currency: str | None = None,
    effective_at: datetime | None = None,
    source: str | None = None,
    note: str | None = None,
) -> AssetValuation:
    """Append a valuation of ``market_id``'s asset. ``currency`` defaults to the asset's (or
    the previous valuation's); ``effective_at`` to now. ``NotFound`` for an unknown market,
    ``ValidationFailed`` naming the field for a bad value."""
    fields: dict[str, str] = {}
    if isinstance(valuation, bool) or not isinstance(valuation, Decimal):
        fields["valuation"] = "must be an exact decimal"
    elif not valuation.is_finite() or valuation <= 0:
        fields["valuation"] = "must be positive"
    if currency is not None and not _CURRENCY.fullmatch(currency):
        fields["currency"] = "must be an ISO 4217 code such as USD"
    if effective_at is not None and (
        effective_at.tzinfo is None or effective_at.utcoffset() is None
    ):
        fields["effectiveAt"] = "must have a time zone"
    if note is not None and len(note) > MAX_NOTE:
        fields["note"] = f"must be at most {MAX_NOTE} characters"
    if source is not None and len(source) > MAX_SOURCE:
        fields["source"] = f"must be at most {MAX_SOURCE} characters"
    if fields:
        raise ValidationFailed("the valuation update is invalid", fields=fields)
    now = clock.now()
    async with storage.unit_of_work() as uow:
        market = await uow.markets.get(market_id)
        asset = await uow.markets.get_asset(market_id) if market is not None else None
        if market is None:
            raise NotFound(f"market {market_id} not found", code="market_not_found")
        record = await append_valuation(
            uow,
            actor,
            market,
            asset,
            valuation=valuation,
            currency=currency,
            effective_at=effective_at or now,
            source=source,
            note=note,
            now=now,
        )
        await uow.commit()
    return record


class ValuationUseCases:
    """Valuation updates of a market's asset (``update-token-metadata``) and their history."""

    def __init__(self, storage: Storage, clock: Clock, authorizer: Authorizer) -> None:
        self._storage = storage
        self._clock = clock
        self._auth = authorizer

    async def update(
        self,
        actor: Actor,
        market_id: str,
        *,
        valuation: str,
        currency: str | None = None,
        effective_at: str | None = None,
        source: str | None = None,
        note: str | None = None,
    ) -> AssetValuation:
        """Append a valuation (an exact decimal string; ``effective_at`` an ISO 8601 UTC
        instant) after the permission check: admins,
        or the market's own issuer. ``NotFound``, ``PermissionDenied``, ``ValidationFailed``."""
        amount = parse_valuation(valuation)
        effective = None if effective_at is None else parse_utc(effective_at, "effectiveAt")
        market = await self._market(market_id)
        await self._auth.require(
            actor, UPDATE, entity_id=market.entity_id, owner_id=market.issuer_id
        )
        return await update_token_metadata(
            self._storage,
            self._clock,
            actor,
            market_id,
            valuation=amount,
            currency=currency,
            effective_at=effective,
            source=source,
            note=note,
        )

    async def history(self, market_id: str) -> list[AssetValuation]:
        """Every valuation of the market's asset, oldest first; before any update, the one it
        was registered with (if any) as version 1."""
        async with self._storage.unit_of_work(read_only=True) as uow:
            market = await uow.markets.get(market_id)
            if market is None:
                raise NotFound(f"market {market_id} not found", details={"marketId": market_id})
            found = await uow.valuations.history(market_id)
            if found:
                return found
            asset = await uow.markets.get_asset(market_id)
        first = registration_valuation(market, asset, self._clock.now())
        return [] if first is None else [first]

    async def _market(self, market_id: str) -> Market:
        async with self._storage.unit_of_work(read_only=True) as uow:
            market = await uow.markets.get(market_id)
        if market is None:
            raise NotFound(f"market {market_id} not found", details={"marketId": market_id})
        return market
