"""The ledger's values: accounts, postings, posting sets, balances and supply counters.

Every amount is an ``int`` of the token's base units, ``0 < amount <= 2**256 - 1``. An
account is one (owner, token) pair holding two non-negative buckets, ``available`` and
``locked``. A posting set is the unit the ledger applies: all of its postings or none of
them, once per idempotency key.

Conservation is structural: a posting set must balance per token, which means the sum of
its account credits minus debits equals the change of that token's outstanding supply
(minted + deposited - withdrawn - burned). The supply counters are the other side of the
double entry, so no account (the system account included) ever needs to go negative.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from core.shared.errors import Conflict, ValidationFailed
from core.shared.money import MAX_UINT256

MAX_OWNER_LENGTH = 200
MAX_TOKEN_LENGTH = 100
MAX_KEY_LENGTH = 200
MAX_KIND_LENGTH = 64
MAX_REFERENCE_LENGTH = 200

RESERVED_PREFIX = "@"  # owners that are not users start with it
FEE_OWNER = "@fee"
SYSTEM_OWNER = "@system"


# -- errors ------------------------------------------------------------------------------------


class InvalidAmount(ValidationFailed):
    """An amount that is not an int in ``1 .. 2**256 - 1`` (a bool, a float, zero, ...)."""

    code = "invalid_amount"

    def __init__(self, message: str) -> None:
        super().__init__(message, fields={"amount": message})


class InsufficientFunds(Conflict):
    """A debit, lock or settlement would take a bucket below zero; nothing was applied."""

    code = "insufficient_funds"

    def __init__(self, account: AccountRef, bucket: Bucket, needed: int) -> None:
        super().__init__(
            f"insufficient {bucket.value} balance of {account.token} for {account.owner}",
            details={
                "owner": account.owner,
                "token": account.token,
                "bucket": bucket.value,
                "needed": str(needed),
            },
        )
        self.account = account
        self.bucket = bucket
        self.needed = needed


class BalanceOverflow(Conflict):
    """A balance or a supply counter would exceed ``2**256 - 1``; nothing was applied."""

    code = "balance_overflow"


class IdempotencyConflict(Conflict):
    """The key was already used by a posting set with different content."""

    code = "idempotency_conflict"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"posting set key {key!r} was already used for different postings",
            details={"key": key},
        )
        self.key = key


def check_amount(value: object) -> int:
    """Return ``value`` if it is an exact positive amount; ``InvalidAmount`` otherwise.

    Only a real ``int`` is accepted: not a bool, float, Decimal or string.
    """
    if type(value) is not int:
        raise InvalidAmount(f"must be an integer of base units, not {type(value).__name__}")
    if value <= 0:
        raise InvalidAmount("must be greater than zero")
    if value > MAX_UINT256:
        raise InvalidAmount("must not exceed 2**256 - 1")
    return value


def _check_text(name: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValidationFailed(
            f"{name} must be a non-empty string of at most {limit} characters",
            fields={name: "invalid"},
        )
    return value


# -- accounts ----------------------------------------------------------------------------------


class Bucket(enum.StrEnum):
    AVAILABLE = "available"
    LOCKED = "locked"


class Side(enum.StrEnum):
    DEBIT = "debit"  # decreases the bucket
    CREDIT = "credit"  # increases the bucket


class SupplyCounter(enum.StrEnum):
    MINTED = "minted"
    DEPOSITED = "deposited"
    WITHDRAWN = "withdrawn"
    BURNED = "burned"


_SUPPLY_SIGN = {
    SupplyCounter.MINTED: 1,
    SupplyCounter.DEPOSITED: 1,
    SupplyCounter.WITHDRAWN: -1,
    SupplyCounter.BURNED: -1,
}


def _owner(_instance: object, _attribute: object, value: Any) -> None:
    _check_text("owner", value, MAX_OWNER_LENGTH)


def _token(_instance: object, _attribute: object, value: Any) -> None:
    _check_text("token", value, MAX_TOKEN_LENGTH)


@attrs.frozen(order=True)
class AccountRef:
    """One account: an owner's holding of one token. Orders by (token, owner)."""

    token: str = attrs.field(validator=_token)
    owner: str = attrs.field(validator=_owner)

    @classmethod
    def user(cls, user_id: str, token: str) -> AccountRef:
        """A user's account; user ids may not take the reserved ``@`` prefix."""
        if isinstance(user_id, str) and user_id.startswith(RESERVED_PREFIX):
            raise ValidationFailed(
                f"user ids may not start with {RESERVED_PREFIX!r}", fields={"owner": "reserved"}
            )
        return cls(token=token, owner=user_id)

    @classmethod
    def fee(cls, token: str) -> AccountRef:
        """Where trading fees in ``token`` are collected."""
        return cls(token=token, owner=FEE_OWNER)

    @classmethod
    def system(cls, token: str) -> AccountRef:
        """The platform's own holding of ``token`` (e.g. supply not yet given to anyone)."""
        return cls(token=token, owner=SYSTEM_OWNER)

    @property
    def is_user(self) -> bool:
        return not self.owner.startswith(RESERVED_PREFIX)


@attrs.frozen
class Balance:
    account: AccountRef
    available: int = 0
    locked: int = 0

    @property
    def total(self) -> int:
        return self.available + self.locked


@attrs.frozen
class Supply:
    """Per-token counters, only ever increased, in the posting sets that move the supply."""

    token: str
    minted: int = 0
    deposited: int = 0
    withdrawn: int = 0
    burned: int = 0

    @property
    def outstanding(self) -> int:
        """What the accounts of the token must hold in total (the invariant)."""
        return self.minted + self.deposited - self.withdrawn - self.burned

    def counter(self, counter: SupplyCounter) -> int:
        value: int = getattr(self, counter.value)
        return value


# -- postings ----------------------------------------------------------------------------------


def _amount(_instance: object, _attribute: object, value: Any) -> None:
    check_amount(value)


@attrs.frozen
class Posting:
    """One line: debit (decrease) or credit (increase) one bucket of one account."""

    account: AccountRef
    bucket: Bucket
    side: Side
    amount: int = attrs.field(validator=_amount)

    @property
    def delta(self) -> int:
        return self.amount if self.side is Side.CREDIT else -self.amount


@attrs.frozen
class SupplyChange:
    """One line that moves a token's supply counter up by ``amount``."""

    token: str = attrs.field(validator=_token)
    counter: SupplyCounter
    amount: int = attrs.field(validator=_amount)

    @property
    def outstanding_delta(self) -> int:
        return _SUPPLY_SIGN[self.counter] * self.amount


def _aware(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValidationFailed(
            "occurred_at must be a timezone-aware datetime", fields={"occurredAt": "invalid"}
        )


def _key(_instance: object, _attribute: object, value: Any) -> None:
    _check_text("key", value, MAX_KEY_LENGTH)


def _kind(_instance: object, _attribute: object, value: Any) -> None:
    _check_text("kind", value, MAX_KIND_LENGTH)


def _reference(_instance: object, _attribute: object, value: Any) -> None:
    if value is not None:
        _check_text("reference", value, MAX_REFERENCE_LENGTH)


def _postings(lines: Iterable[Posting]) -> tuple[Posting, ...]:
    return tuple(lines)


def _supply_changes(lines: Iterable[SupplyChange]) -> tuple[SupplyChange, ...]:
    return tuple(lines)


@attrs.frozen
class PostingSet:
    """Postings applied together or not at all, once per ``key``.

    ``kind`` names the operation (``mint``, ``transfer``, ...), ``reference`` the business
    object behind it (a withdrawal id, an order id). The content compared for idempotency is
    kind, reference, postings and supply changes; ``occurred_at`` is not content.
    """

    key: str = attrs.field(validator=_key)
    kind: str = attrs.field(validator=_kind)
    occurred_at: datetime = attrs.field(validator=_aware)
    postings: tuple[Posting, ...] = attrs.field(converter=_postings)
    supply: tuple[SupplyChange, ...] = attrs.field(converter=_supply_changes, default=())
    reference: str | None = attrs.field(default=None, validator=_reference)

    def __attrs_post_init__(self) -> None:
        if not self.postings:
            raise ValidationFailed("a posting set needs at least one posting")
        if not all(isinstance(p, Posting) for p in self.postings) or not all(
            isinstance(s, SupplyChange) for s in self.supply
        ):
            raise ValidationFailed("postings and supply changes must be typed values")
        moved: dict[str, int] = {}
        for posting in self.postings:
            token = posting.account.token
            moved[token] = moved.get(token, 0) + posting.delta
        issued: dict[str, int] = {}
        for change in self.supply:
            issued[change.token] = issued.get(change.token, 0) + change.outstanding_delta
        for token in sorted(moved.keys() | issued.keys()):
            if moved.get(token, 0) != issued.get(token, 0):
                raise ValidationFailed(
                    f"posting set {self.key!r} does not balance for {token}: the accounts "
                    f"change by {moved.get(token, 0)}, the outstanding supply by "
                    f"{issued.get(token, 0)}",
                    fields={"postings": "unbalanced"},
                )

    def net_changes(self) -> dict[AccountRef, tuple[int, int]]:
        """(available, locked) change per account, in account order (the lock order)."""
        net: dict[AccountRef, tuple[int, int]] = {}
        for posting in self.postings:
            available, locked = net.get(posting.account, (0, 0))
            if posting.bucket is Bucket.AVAILABLE:
                available += posting.delta
            else:
                locked += posting.delta
            net[posting.account] = (available, locked)
        return dict(sorted(net.items()))

    def supply_changes(self) -> dict[str, dict[SupplyCounter, int]]:
        """Counter increases per token, in token order."""
        changes: dict[str, dict[SupplyCounter, int]] = {}
        for change in sorted(self.supply, key=lambda c: c.token):
            counters = changes.setdefault(change.token, {})
            counters[change.counter] = counters.get(change.counter, 0) + change.amount
        return changes

    def tokens(self) -> set[str]:
        return {p.account.token for p in self.postings} | {s.token for s in self.supply}

    def fingerprint(self) -> str:
        """A digest of the content (not the key, not the time): equal content, equal digest."""
        content = {
            "kind": self.kind,
            "reference": self.reference,
            "postings": [
                [p.account.token, p.account.owner, p.bucket.value, p.side.value, str(p.amount)]
                for p in self.postings
            ],
            "supply": [[s.token, s.counter.value, str(s.amount)] for s in self.supply],
        }
        text = json.dumps(content, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode()).hexdigest()


@attrs.frozen
class AppliedPostingSet:
    """What ``apply`` answers: the stored posting set, its journal sequence, and whether this
    call was a replay of an earlier application with the same key (nothing applied again)."""

    seq: int
    posting_set: PostingSet
    replayed: bool = False


@attrs.frozen
class AccountEntry:
    """What one applied posting set did to one account: its net change per bucket."""

    seq: int
    key: str
    kind: str
    reference: str | None
    occurred_at: datetime
    available: int  # signed change
    locked: int  # signed change


def account_entry(applied: AppliedPostingSet, account: AccountRef) -> AccountEntry | None:
    """The entry ``applied`` leaves in ``account``'s history, or None if it has no line there."""
    if all(p.account != account for p in applied.posting_set.postings):
        return None
    posting_set = applied.posting_set
    available, locked = posting_set.net_changes().get(account, (0, 0))
    return AccountEntry(
        seq=applied.seq,
        key=posting_set.key,
        kind=posting_set.kind,
        reference=posting_set.reference,
        occurred_at=posting_set.occurred_at,
        available=available,
        locked=locked,
    )


def conservation_gap(balances: Iterable[Balance], supply: Supply) -> int:
    """Sum of the token's balances minus its outstanding supply: zero when the books hold."""
    total = sum(b.total for b in balances if b.account.token == supply.token)
    return total - supply.outstanding
