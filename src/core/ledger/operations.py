"""Pure builders of postings and posting sets: the ledger's vocabulary.

Primitives (``credit``, ``debit``, ``transfer``, ``lock``, ``unlock``, ``settle``) return
posting lines; the operations below them (mint, burn, deposit, the withdrawal steps, a
transfer between users, a fee) return whole balanced ``PostingSet`` values that a use case
hands to ``uow.ledger.apply``. Nothing here reads or writes storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from core.ledger.model import (
    AccountRef,
    Bucket,
    Posting,
    PostingSet,
    Side,
    SupplyChange,
    SupplyCounter,
    check_amount,
)
from core.shared.errors import ValidationFailed

# -- primitives: posting lines ---------------------------------------------------------------


def credit(account: AccountRef, amount: int) -> list[Posting]:
    """Increase ``available``."""
    return [Posting(account, Bucket.AVAILABLE, Side.CREDIT, check_amount(amount))]


def debit(account: AccountRef, amount: int) -> list[Posting]:
    """Decrease ``available``; refused at apply time if it holds less."""
    return [Posting(account, Bucket.AVAILABLE, Side.DEBIT, check_amount(amount))]


def transfer(source: AccountRef, target: AccountRef, amount: int) -> list[Posting]:
    """Available of ``source`` to available of ``target`` (same token, different accounts)."""
    _distinct_same_token(source, target)
    return debit(source, amount) + credit(target, amount)


def lock(account: AccountRef, amount: int) -> list[Posting]:
    """Available to locked, on one account."""
    amount = check_amount(amount)
    return [
        Posting(account, Bucket.AVAILABLE, Side.DEBIT, amount),
        Posting(account, Bucket.LOCKED, Side.CREDIT, amount),
    ]


def unlock(account: AccountRef, amount: int) -> list[Posting]:
    """Locked back to available, on one account."""
    amount = check_amount(amount)
    return [
        Posting(account, Bucket.LOCKED, Side.DEBIT, amount),
        Posting(account, Bucket.AVAILABLE, Side.CREDIT, amount),
    ]


def settle(source: AccountRef, target: AccountRef, amount: int) -> list[Posting]:
    """Locked of ``source`` to available of ``target`` (a trade leg, a fee)."""
    _distinct_same_token(source, target)
    amount = check_amount(amount)
    return [
        Posting(source, Bucket.LOCKED, Side.DEBIT, amount),
        Posting(target, Bucket.AVAILABLE, Side.CREDIT, amount),
    ]


def _distinct_same_token(source: AccountRef, target: AccountRef) -> None:
    if source.token != target.token:
        raise ValidationFailed(
            "both accounts must hold the same token", fields={"token": "mismatch"}
        )
    if source == target:
        raise ValidationFailed(
            "source and target must be different accounts", fields={"target": "same as source"}
        )


# -- operations: balanced posting sets ---------------------------------------------------------


def posting_set(
    key: str,
    kind: str,
    at: datetime,
    postings: Sequence[Posting],
    *,
    supply: Sequence[SupplyChange] = (),
    reference: str | None = None,
) -> PostingSet:
    """A posting set from lines built above (checked to balance per token)."""
    return PostingSet(
        key=key,
        kind=kind,
        occurred_at=at,
        postings=tuple(postings),
        supply=tuple(supply),
        reference=reference,
    )


def mint(
    key: str, at: datetime, to: AccountRef, amount: int, *, reference: str | None = None
) -> PostingSet:
    """New supply credited to ``to``; ``minted`` grows by the same amount."""
    amount = check_amount(amount)
    return posting_set(
        key,
        "mint",
        at,
        credit(to, amount),
        supply=[SupplyChange(to.token, SupplyCounter.MINTED, amount)],
        reference=reference,
    )


def burn(
    key: str, at: datetime, source: AccountRef, amount: int, *, reference: str | None = None
) -> PostingSet:
    """Supply destroyed from ``source``'s available; ``burned`` grows."""
    amount = check_amount(amount)
    return posting_set(
        key,
        "burn",
        at,
        debit(source, amount),
        supply=[SupplyChange(source.token, SupplyCounter.BURNED, amount)],
        reference=reference,
    )


def deposit(
    key: str, at: datetime, to: AccountRef, amount: int, *, reference: str | None = None
) -> PostingSet:
    """Tokens that arrived from outside (a confirmed chain transfer) credited to ``to``."""
    amount = check_amount(amount)
    return posting_set(
        key,
        "deposit",
        at,
        credit(to, amount),
        supply=[SupplyChange(to.token, SupplyCounter.DEPOSITED, amount)],
        reference=reference,
    )


def transfer_between(
    key: str,
    at: datetime,
    source: AccountRef,
    target: AccountRef,
    amount: int,
    *,
    reference: str | None = None,
) -> PostingSet:
    """An off-book transfer: available of ``source`` to available of ``target``."""
    return posting_set(key, "transfer", at, transfer(source, target, amount), reference=reference)


def lock_funds(
    key: str, at: datetime, account: AccountRef, amount: int, *, reference: str | None = None
) -> PostingSet:
    return posting_set(key, "lock", at, lock(account, amount), reference=reference)


def unlock_funds(
    key: str, at: datetime, account: AccountRef, amount: int, *, reference: str | None = None
) -> PostingSet:
    return posting_set(key, "unlock", at, unlock(account, amount), reference=reference)


def collect_fee(
    key: str, at: datetime, payer: AccountRef, amount: int, *, reference: str | None = None
) -> PostingSet:
    """A fee taken from ``payer``'s locked funds into the token's fee account."""
    return posting_set(
        key, "fee", at, settle(payer, AccountRef.fee(payer.token), amount), reference=reference
    )


# Withdrawal steps. One withdrawal uses one key per step: ``withdrawal:<id>:request`` etc.


def withdrawal_key(withdrawal_id: str, step: str) -> str:
    return f"withdrawal:{withdrawal_id}:{step}"


def request_withdrawal(
    withdrawal_id: str, at: datetime, account: AccountRef, amount: int
) -> PostingSet:
    """The requested amount moves from available to locked until the withdrawal ends."""
    return posting_set(
        withdrawal_key(withdrawal_id, "request"),
        "withdrawal.request",
        at,
        lock(account, amount),
        reference=withdrawal_id,
    )


def complete_withdrawal(
    withdrawal_id: str, at: datetime, account: AccountRef, amount: int
) -> PostingSet:
    """The tokens left the platform: the lock is consumed and ``withdrawn`` grows."""
    amount = check_amount(amount)
    return posting_set(
        withdrawal_key(withdrawal_id, "complete"),
        "withdrawal.complete",
        at,
        [Posting(account, Bucket.LOCKED, Side.DEBIT, amount)],
        supply=[SupplyChange(account.token, SupplyCounter.WITHDRAWN, amount)],
        reference=withdrawal_id,
    )


def release_withdrawal(
    withdrawal_id: str, at: datetime, account: AccountRef, amount: int, *, outcome: str
) -> PostingSet:
    """A rejected or failed withdrawal gives the locked amount back (``outcome``:
    ``reject`` or ``fail``)."""
    if outcome not in ("reject", "fail"):
        raise ValidationFailed("outcome must be reject or fail", fields={"outcome": "invalid"})
    return posting_set(
        withdrawal_key(withdrawal_id, outcome),
        f"withdrawal.{outcome}",
        at,
        unlock(account, amount),
        reference=withdrawal_id,
    )
