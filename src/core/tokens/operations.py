"""Token operations the ledger and the chain both see: mints, transfers, withdrawals and
deposits (incoming chain transfers), as stored records.

Each record carries a ``version`` (1 when added, + 1 on every change, compared by the store
before it overwrites) and an id (``core.shared.ids.new_id``). Amounts are ints of the token's
base units, ``1 .. 2**256 - 1``; on the wire they are whole-token decimal strings
(``parse_units`` in, ``core.tokens.model.format_units`` out).

Statuses:

- a mint: ``PENDING`` until the ``mint-token`` job minted on chain and credited the ledger
  (``COMPLETED``, with its hash) or the chain refused it (``FAILED``, nothing credited);
- a transfer: the ledger moved when it was accepted; ``PENDING`` until ``process-transfer``
  mirrored it on chain (``COMPLETED``) or the chain refused (``FAILED``: reconciliation shows
  the drift);
- a withdrawal: ``PENDING_APPROVAL -> APPROVED -> SENT -> COMPLETED``, or ``REJECTED`` by an
  admin, or ``FAILED`` (its funds unlocked);
- a deposit: ``PENDING`` when seen below the confirmation depth, ``CREDITED`` once counted.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime

import attrs

from core.shared.errors import Conflict, NotFound, ValidationFailed
from core.shared.ids import new_id
from core.shared.money import MAX_AMOUNT_CHARS, MAX_UINT256

_AMOUNT_RE = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")
MAX_IDEMPOTENCY_KEY = 200
_KEY_RE = re.compile(r"[A-Za-z0-9._:\-]{1,200}")


class OperationStatus(enum.StrEnum):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class WithdrawalStatus(enum.StrEnum):
    PENDING_APPROVAL = "PENDING_APPROVAL"
    APPROVED = "APPROVED"
    SENT = "SENT"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"


FINAL_WITHDRAWAL = frozenset(
    {WithdrawalStatus.COMPLETED, WithdrawalStatus.REJECTED, WithdrawalStatus.FAILED}
)


class DepositStatus(enum.StrEnum):
    PENDING = "PENDING"
    CREDITED = "CREDITED"


@attrs.frozen
class Mint:
    token_id: str
    user_id: str
    amount: int
    idempotency_key: str
    actor_id: str
    created_at: datetime
    updated_at: datetime
    status: OperationStatus = OperationStatus.PENDING
    address: str | None = None  # where it was minted on chain
    tx_hash: str | None = None
    error: str | None = None
    version: int = 1
    id: str = attrs.field(factory=new_id)


@attrs.frozen
class Transfer:
    token_id: str
    from_user_id: str
    to_user_id: str
    amount: int
    actor_id: str
    created_at: datetime
    updated_at: datetime
    status: OperationStatus = OperationStatus.PENDING
    tx_hash: str | None = None
    error: str | None = None
    version: int = 1
    id: str = attrs.field(factory=new_id)


@attrs.frozen
class Withdrawal:
    token_id: str
    user_id: str
    amount: int
    to_address: str  # checksummed
    actor_id: str
    created_at: datetime
    updated_at: datetime
    status: WithdrawalStatus = WithdrawalStatus.PENDING_APPROVAL
    decided_by: str | None = None
    tx_hash: str | None = None
    error: str | None = None
    version: int = 1
    id: str = attrs.field(factory=new_id)


@attrs.frozen
class Deposit:
    """One ERC-20 ``Transfer`` log to a user's address, recorded once per (tx hash, log
    index)."""

    token_id: str
    user_id: str
    address: str
    tx_hash: str
    log_index: int
    block_number: int
    amount: int
    created_at: datetime
    updated_at: datetime
    status: DepositStatus = DepositStatus.PENDING
    credited_at: datetime | None = None
    sweep_tx_hash: str | None = None
    version: int = 1
    id: str = attrs.field(factory=new_id)


# -- errors ------------------------------------------------------------------------------------


class DuplicateOperation(Conflict):
    """The store already holds a record with this id or unique key."""

    code = "duplicate_operation"


class OperationNotFound(NotFound):
    def __init__(self, kind: str, operation_id: str) -> None:
        super().__init__(f"no such {kind}", details={"id": operation_id}, code=f"{kind}_not_found")


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(
            "this Idempotency-Key was used for a different request",
            details={"idempotencyKey": key},
        )


class SelfTransfer(ValidationFailed):
    code = "self_transfer"

    def __init__(self) -> None:
        super().__init__(
            "a transfer to oneself is refused", fields={"toUserId": "must differ from the sender"}
        )


class TokenNotOnChain(Conflict):
    code = "token_not_on_chain"

    def __init__(self, symbol: str, why: str) -> None:
        super().__init__(f"token {symbol} {why}", details={"token": symbol})


class WithdrawalNotPending(Conflict):
    code = "withdrawal_not_pending"

    def __init__(self, withdrawal: Withdrawal) -> None:
        super().__init__(
            f"the withdrawal is {withdrawal.status.value}, not PENDING_APPROVAL",
            details={"id": withdrawal.id, "status": withdrawal.status.value},
        )


# -- input rules -------------------------------------------------------------------------------


def parse_units(value: object, decimals: int, field: str = "amount") -> int:
    """A positive whole-token decimal string (or a JSON integer) as base units, exactly.

    Refused (422 ``invalid_amount`` naming ``field``): floats, bools, signs, exponents, more
    fractional digits than ``decimals``, zero, and anything above ``2**256 - 1`` base units.
    """

    def bad(why: str) -> ValidationFailed:
        error = ValidationFailed(f"{field} is invalid", fields={field: why})
        error.code = "invalid_amount"
        return error

    if isinstance(value, bool) or not isinstance(value, int | str):
        raise bad('must be a decimal string of whole tokens such as "12.5"')
    text = str(value)
    if len(text) > MAX_AMOUNT_CHARS:
        raise bad(f"must be at most {MAX_AMOUNT_CHARS} characters")
    if not _AMOUNT_RE.fullmatch(text):
        raise bad('must be a positive decimal string such as "12.5" (no sign or exponent)')
    whole, _, fraction = text.partition(".")
    if len(fraction) > decimals:
        raise bad(f"has more than {decimals} decimal places (the token's decimals)")
    scale: int = 10**decimals
    units = int(whole) * scale + (int(fraction.ljust(decimals, "0")) if fraction else 0)
    if units <= 0:
        raise bad("must be greater than zero")
    if units > MAX_UINT256:
        raise bad("is too large")
    return units


def check_idempotency_key(value: object) -> str:
    """An ``Idempotency-Key`` header: 1 to 200 of letters, digits, ``. _ : -``."""
    if not isinstance(value, str) or not _KEY_RE.fullmatch(value):
        raise ValidationFailed(
            "the Idempotency-Key header is missing or invalid",
            fields={"Idempotency-Key": "required: 1 to 200 letters, digits or . _ : -"},
        )
    return value
