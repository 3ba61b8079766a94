"""Compliance records: set (admins), read (admins or the user), and ``require_compliant``,
the check every operation on an RWA token calls in its own unit of work.

Setting a record, in one unit of work: the record (version + 1), an audit entry
``compliance.update`` with the record before and after, and a ``compliance.changed`` event on
the user's stream ``user:<id>`` in the outbox. The on-chain mirror (``verify-compliance``)
reacts to that event; nothing here talks to the chain.

A record is set for any user id: an admin's KYC decision is what introduces a user to the
platform. ``tokenId`` (an id or a symbol) must name a token (404 ``token_not_found``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import attrs

from core.ports.audit import audit_entry
from core.ports.clock import Clock
from core.ports.storage import Storage, UnitOfWork
from core.shared.authorization import Authorizer
from core.shared.errors import ConcurrentModification, ValidationFailed
from core.shared.events import Actor, DomainEvent
from core.tokens.compliance import (
    ComplianceRecord,
    ComplianceRules,
    KycStatus,
    check_compliance,
)
from core.tokens.countries import is_country
from core.tokens.model import Token, TokenType, UserNotFound, check_user_id
from core.tokens.use_cases import find_token, require_reader, user_is_known

UPDATE = "compliance.update"
READ = "compliance.read"
READ_ANY = "compliance.read_any"
CHANGED = "compliance.changed"  # the outbox event a verify-compliance job reacts to
MAX_DATETIME = 40
_UTC_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|\+00:00)"
)


def user_stream(user_id: str) -> str:
    return f"user:{user_id}"


@attrs.frozen
class SetCompliance:
    """``POST /tokens/compliance/:userId``; fields as received, checked by ``set``."""

    kyc_status: object
    whitelisted: object
    accredited: object
    jurisdiction: object
    expires_at: object
    token: object = None  # a token id or symbol; None: the general record


@attrs.frozen
class _Checked:
    kyc_status: KycStatus
    whitelisted: bool
    accredited: bool
    jurisdiction: str
    expires_at: datetime


def parse_utc(value: object, field: str = "expiresAt") -> datetime:
    """An ISO 8601 instant in UTC (``Z`` or ``+00:00``), e.g. ``2027-01-31T00:00:00Z``."""
    bad = ValidationFailed(
        f"{field} is invalid",
        fields={field: "must be an ISO 8601 UTC date-time such as 2027-01-31T00:00:00Z"},
    )
    if not isinstance(value, str) or len(value) > MAX_DATETIME or not _UTC_RE.fullmatch(value):
        raise bad
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:  # 2027-02-30, hour 25, ...
        raise bad from exc
    return parsed.astimezone(UTC)


def _check(command: SetCompliance) -> _Checked:
    fields: dict[str, str] = {}
    kyc = KycStatus.PENDING
    if isinstance(command.kyc_status, str) and command.kyc_status in KycStatus.__members__:
        kyc = KycStatus(command.kyc_status)
    else:
        fields["kycStatus"] = "one of: " + ", ".join(s.value for s in KycStatus)
    for name, value in (("whitelisted", command.whitelisted), ("accredited", command.accredited)):
        if not isinstance(value, bool):
            fields[name] = "must be true or false"
    if not is_country(command.jurisdiction):
        fields["jurisdiction"] = "must be an ISO 3166-1 alpha-2 country code in capitals"
    try:
        expires_at = parse_utc(command.expires_at)
    except ValidationFailed as exc:
        fields.update(exc.fields)
    if command.token is not None and (
        not isinstance(command.token, str) or not command.token.strip()
    ):
        fields["tokenId"] = "must be a token id or symbol"
    if fields:
        raise ValidationFailed("the compliance record is invalid", fields=fields)
    assert isinstance(command.whitelisted, bool) and isinstance(command.accredited, bool)
    assert isinstance(command.jurisdiction, str)
    return _Checked(
        kyc_status=kyc,
        whitelisted=command.whitelisted,
        accredited=command.accredited,
        jurisdiction=command.jurisdiction,
        expires_at=expires_at,
    )


def record_view(record: ComplianceRecord | None) -> dict[str, object] | None:
    """A record as plain JSON (audit log, event metadata, the wire)."""
    if record is None:
        return None
    return {
        "userId": record.user_id,
        "tokenId": record.token_id,
        "kycStatus": record.kyc_status.value,
        "whitelisted": record.whitelisted,
        "accredited": record.accredited,
        "jurisdiction": record.jurisdiction,
        "expiresAt": _iso(record.expires_at),
        "createdAt": _iso(record.created_at),
        "updatedAt": _iso(record.updated_at),
        "updatedBy": record.updated_by,
        "version": record.version,
    }


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class ComplianceUseCases:
    def __init__(self, storage: Storage, authorizer: Authorizer, clock: Clock) -> None:
        self._storage = storage
        self._authorizer = authorizer
        self._clock = clock

    async def set(self, actor: Actor, user_id: str, command: SetCompliance) -> ComplianceRecord:
        """Create or replace the user's general record, or their record for one token."""
        user_id = check_user_id(user_id)
        checked = _check(command)
        await self._authorizer.require(actor, UPDATE, owner_id=user_id)
        for attempt in range(3):
            try:
                return await self._set(actor, user_id, checked, command.token)
            except ConcurrentModification:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _set(
        self, actor: Actor, user_id: str, checked: _Checked, reference: object
    ) -> ComplianceRecord:
        async with self._storage.unit_of_work() as uow:
            now = self._clock.now()
            token = None if reference is None else await find_token(uow, str(reference))
            token_id = None if token is None else token.id
            before = await uow.compliance.get(user_id, token_id)
            record = ComplianceRecord(
                user_id=user_id,
                token_id=token_id,
                kyc_status=checked.kyc_status,
                whitelisted=checked.whitelisted,
                accredited=checked.accredited,
                jurisdiction=checked.jurisdiction,
                expires_at=checked.expires_at,
                created_at=now if before is None else before.created_at,
                updated_at=now,
                updated_by=actor.id,
                version=1 if before is None else before.version + 1,
            )
            await uow.compliance.save(record)
            await uow.audit.append(
                audit_entry(
                    actor,
                    UPDATE,
                    f"user:{user_id}",
                    before=record_view(before),
                    after=record_view(record),
                    at=now,
                )
            )
            await uow.events.append(
                [
                    DomainEvent(
                        type=CHANGED,
                        aggregate_id=user_stream(user_id),
                        stream=user_stream(user_id),
                        actor_id=actor.id,
                        actor_type=actor.type,
                        occurred_at=now,
                        decision=record.kyc_status.value,
                        metadata={
                            "userId": user_id,
                            "tokenId": token_id,
                            "symbol": None if token is None else token.symbol,
                            "record": record_view(record),
                            "previous": record_view(before),
                        },
                    )
                ]
            )
            await uow.commit()
        return record

    async def records(self, actor: Actor, user_id: str) -> list[ComplianceRecord]:
        """The user's records, the general one first. 404 ``user_not_found`` for a user the
        platform knows nothing about (unless the caller is that user)."""
        user_id = check_user_id(user_id)
        require_reader(actor, user_id, READ, READ_ANY, "compliance records")
        async with self._storage.unit_of_work(read_only=True) as uow:
            found = await uow.compliance.for_user(user_id)
            if not found and actor.id != user_id and not await user_is_known(uow, user_id):
                raise UserNotFound(user_id)
        return found


async def compliance_rules(uow: UnitOfWork, token: Token) -> ComplianceRules:
    """What the token's market demands (none for a token without a market)."""
    if token.market_id is None:
        return ComplianceRules()
    market = await uow.markets.get(token.market_id)
    if market is None:
        return ComplianceRules()
    return ComplianceRules(
        accredited_only=market.accredited_investors_only,
        allowed_countries=tuple(market.allowed_countries),
    )


async def require_compliant(
    uow: UnitOfWork, user_id: str, token: Token, now: datetime
) -> ComplianceRecord | None:
    """Raise ``ComplianceDenied`` (403, the failed check as its code) unless ``user_id`` may
    hold, receive, order or withdraw ``token`` at ``now``; the applied record (None for a
    token that needs none). Reads in the caller's unit of work, so the check and the
    operation it guards see the same records."""
    if token.type is not TokenType.RWA:
        return None
    records = await uow.compliance.for_user(user_id)
    rules = await compliance_rules(uow, token)
    return check_compliance(records, token, rules, now, user_id=user_id)
