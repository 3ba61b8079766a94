"""Mint and transfer endpoints (``/api/v1/tokens/:token/...``) and withdrawals
(``/api/v1/withdrawals``, ``/api/v1/users/:userId/withdrawals``).

Order of checks (DESIGN 5.1): no or bad token 401; roles that allow none of the endpoint's
actions 403; the path, the ``Idempotency-Key`` header and the body 400/415/422 (each field
named; an amount with more decimals than the token has, zero, a sign, an exponent or a
JSON number with a fraction is 422); the permissions port 403; then storage and rules: an
unknown token 404 ``token_not_found``, an unknown user 404 ``user_not_found``, compliance
403 with the failed check as the code, 409 ``insufficient_funds`` (nothing posted, nothing
locked), ``idempotency_key_reused``, ``token_not_on_chain``, ``withdrawal_not_pending``.

Amounts cross the wire as exact whole-token decimal strings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from pydantic.alias_generators import to_camel
from quart import Blueprint, Response, current_app, jsonify, request

from adapters.inbound.http.dependencies import HttpDependencies
from adapters.inbound.http.guard import current_actor, guarded, query_text, read_body
from adapters.inbound.http.openapi import DateTime, WireModel, documented, envelope
from core.shared.errors import ValidationFailed
from core.tokens.deposits import READ as READ_DEPOSITS
from core.tokens.deposits import READ_ANY as READ_DEPOSITS_ANY
from core.tokens.mint import MINT
from core.tokens.model import Token, format_units
from core.tokens.operations import (
    Deposit,
    DepositStatus,
    Mint,
    OperationStatus,
    Transfer,
    Withdrawal,
    WithdrawalStatus,
)
from core.tokens.transfers import TRANSFER
from core.tokens.withdrawals import APPROVE, READ, READ_ANY, REQUEST, WithdrawalPage

token_operations = Blueprint("token_operations", __name__, url_prefix="/api/v1")

WHOLE_TOKENS = r"^[0-9]+(\.[0-9]*[1-9])?$"
AMOUNT_IN = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$"
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
HASH_PATTERN = r"^0x[0-9a-f]{64}$"
USER_PATH = {"user_id": {"maxLength": 100}}
TOKEN_PATH = {"token": {"maxLength": 100}}
ID_PATH = {"withdrawal_id": {"maxLength": 100}}


def deps() -> HttpDependencies:
    found: HttpDependencies = current_app.config["RWA_DEPS"]
    return found


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ok(data: Any, status: int = 200, message: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"data": data, **extra}
    if message:
        body["message"] = message
    response = jsonify(body)
    response.status_code = status
    return response


# -- wire models -------------------------------------------------------------------------------

WholeTokens = Field(pattern=WHOLE_TOKENS, description="Exact whole tokens, no trailing zeros")
TxHash = Field(pattern=HASH_PATTERN, description="The chain transaction, once sent")


class MintOut(WireModel):
    """A mint: ``PENDING`` until minted on chain and credited, then ``COMPLETED`` (or
    ``FAILED`` with the chain's reason, nothing credited)."""

    model_config = ConfigDict(title="Mint")

    id: str
    token_id: str
    user_id: str
    amount: str = WholeTokens
    status: OperationStatus
    tx_hash: str | None = TxHash
    error: str | None
    created_at: str = DateTime
    updated_at: str = DateTime


class TransferOut(WireModel):
    """A transfer: the ledger moved when it was accepted; an RWA token's is ``PENDING``
    until mirrored on chain by a forced transfer (``COMPLETED``) or refused (``FAILED``)."""

    model_config = ConfigDict(title="Transfer")

    id: str
    token_id: str
    from_user_id: str
    to_user_id: str
    amount: str = WholeTokens
    status: OperationStatus
    tx_hash: str | None = TxHash
    error: str | None
    created_at: str = DateTime


class WithdrawalOut(WireModel):
    """A withdrawal: ``PENDING_APPROVAL -> APPROVED -> SENT -> COMPLETED``, or
    ``REJECTED`` / ``FAILED`` (funds unlocked)."""

    model_config = ConfigDict(title="Withdrawal")

    id: str
    token_id: str
    user_id: str
    amount: str = WholeTokens
    to_address: str = Field(pattern=ADDRESS_PATTERN)
    status: WithdrawalStatus
    decided_by: str | None
    tx_hash: str | None = TxHash
    error: str | None
    created_at: str = DateTime
    updated_at: str = DateTime


class DepositOut(WireModel):
    """A confirmed ERC-20 transfer to the user's custodial address, credited once."""

    model_config = ConfigDict(title="Deposit")

    id: str
    token_id: str
    amount: str = WholeTokens
    address: str = Field(pattern=ADDRESS_PATTERN, description="The deposit address")
    tx_hash: str = Field(pattern=HASH_PATTERN)
    log_index: int = Field(ge=0)
    block_number: int = Field(ge=0)
    status: DepositStatus
    credited_at: str | None = DateTime
    sweep_tx_hash: str | None = Field(
        default=None,
        pattern=HASH_PATTERN,
        description="A stablecoin deposit's sweep into the omnibus address; null until mined "
        "(and always for RWA tokens, which stay at the holder's address)",
    )


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


AmountIn = Field(
    description='Whole tokens as a decimal string ("12.5"), at most the token\'s decimals; '
    "a JSON integer is accepted, a JSON number with a fraction is not",
    json_schema_extra={"pattern": AMOUNT_IN, "maxLength": 100},
)


class MintIn(_Body):
    """``POST /api/v1/tokens/{token}/mint``"""

    model_config = ConfigDict(
        title="MintRequest", json_schema_extra={"example": {"userId": "u-1", "amount": "100"}}
    )

    user_id: StrictStr = Field(max_length=100)
    amount: StrictStr | StrictInt = AmountIn


class TransferIn(_Body):
    """``POST /api/v1/tokens/{token}/transfer``"""

    model_config = ConfigDict(
        title="TransferRequest",
        json_schema_extra={"example": {"toUserId": "u-2", "amount": "1.5"}},
    )

    to_user_id: StrictStr = Field(max_length=100)
    amount: StrictStr | StrictInt = AmountIn
    from_user_id: StrictStr | None = Field(
        default=None, max_length=100, description="Admins only: whose funds move"
    )


class WithdrawalIn(_Body):
    """``POST /api/v1/withdrawals``"""

    model_config = ConfigDict(
        title="WithdrawalRequest",
        json_schema_extra={
            "example": {
                "tokenId": "USDC",
                "amount": "10",
                "toAddress": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            }
        },
    )

    token_id: StrictStr = Field(max_length=100, description="A token id or symbol")
    amount: StrictStr | StrictInt = AmountIn
    to_address: StrictStr = Field(
        max_length=42,
        description="0x and 40 hex digits (EIP-55 checksum if mixed case); else 422 "
        "`invalid_address`",
        json_schema_extra={"pattern": ADDRESS_PATTERN},
    )


class IdempotencyHeaders(BaseModel):
    idempotency_key: str = Field(
        max_length=200,
        description="Required: 1 to 200 letters, digits or `. _ : -`. The same key returns "
        "the same mint; another body with it is 409 `idempotency_key_reused`",
        json_schema_extra={"pattern": r"^[A-Za-z0-9._:\-]{1,200}$"},
    )


class PageQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500)


MintEnvelope = envelope(MintOut)
TransferEnvelope = envelope(TransferOut)
WithdrawalEnvelope = envelope(WithdrawalOut)
WithdrawalPageEnvelope = envelope(WithdrawalOut, many=True, paginated=True)
DepositPageEnvelope = envelope(DepositOut, many=True, paginated=True)


# -- dumps -------------------------------------------------------------------------------------


async def _token(token_id: str) -> Token:
    return await deps().token_use_cases.get(token_id)


def dump_mint(mint: Mint, token: Token) -> dict[str, Any]:
    return {
        "id": mint.id,
        "tokenId": mint.token_id,
        "userId": mint.user_id,
        "amount": format_units(mint.amount, token.decimals),
        "status": mint.status.value,
        "txHash": mint.tx_hash,
        "error": mint.error,
        "createdAt": _iso(mint.created_at),
        "updatedAt": _iso(mint.updated_at),
    }


def dump_transfer(transfer: Transfer, token: Token) -> dict[str, Any]:
    return {
        "id": transfer.id,
        "tokenId": transfer.token_id,
        "fromUserId": transfer.from_user_id,
        "toUserId": transfer.to_user_id,
        "amount": format_units(transfer.amount, token.decimals),
        "status": transfer.status.value,
        "txHash": transfer.tx_hash,
        "error": transfer.error,
        "createdAt": _iso(transfer.created_at),
    }


def dump_withdrawal(withdrawal: Withdrawal, token: Token) -> dict[str, Any]:
    return {
        "id": withdrawal.id,
        "tokenId": withdrawal.token_id,
        "userId": withdrawal.user_id,
        "amount": format_units(withdrawal.amount, token.decimals),
        "toAddress": withdrawal.to_address,
        "status": withdrawal.status.value,
        "decidedBy": withdrawal.decided_by,
        "txHash": withdrawal.tx_hash,
        "error": withdrawal.error,
        "createdAt": _iso(withdrawal.created_at),
        "updatedAt": _iso(withdrawal.updated_at),
    }


def _limit() -> int:
    raw = query_text("limit", max_length=3) or "20"
    if not raw.isascii() or not raw.isdigit():
        raise ValidationFailed("bad limit", fields={"limit": "must be a whole number"})
    return int(raw)


# -- mint and transfer -------------------------------------------------------------------------


@token_operations.post("/tokens/<token>/mint")
@documented(
    MintEnvelope,
    202,
    auth=True,
    body=MintIn,
    headers=IdempotencyHeaders,
    errors=[404, 409],
    path=TOKEN_PATH,
)
@guarded(MINT)
async def mint(token: str) -> Response:
    """Mint ``amount`` of the token to ``userId`` (admins), on chain then in the ledger, by
    the ``mint-token`` job. An RWA token's receiver must be compliant (403 with the failed
    check); a token the platform does not mint on chain is 409 ``token_not_on_chain``."""
    key = request.headers.get("Idempotency-Key")
    body = await read_body(MintIn)
    found = await deps().mints.request(current_actor(), token, key, body.user_id, body.amount)
    return ok(dump_mint(found, await _token(found.token_id)), 202, "Mint accepted")


@token_operations.get("/tokens/<token>/mints/<mint_id>")
@documented(
    MintEnvelope,
    auth=True,
    errors=[404, 422],
    path={**TOKEN_PATH, "mint_id": {"maxLength": 100}},
)
@guarded(MINT)
async def get_mint(token: str, mint_id: str) -> Response:
    """A mint of the token and its status (admins); 404 ``mint_not_found``."""
    found = await deps().mints.get(current_actor(), token, mint_id)
    return ok(dump_mint(found, await _token(found.token_id)))


@token_operations.post("/tokens/<token>/transfer")
@documented(TransferEnvelope, auth=True, body=TransferIn, errors=[404, 409], path=TOKEN_PATH)
@guarded(TRANSFER)
async def transfer(token: str) -> Response:
    """Move the caller's tokens (an admin may name ``fromUserId``) to ``toUserId`` in the
    ledger at once; an RWA token's move is mirrored on chain by ``process-transfer``. A
    transfer to oneself is 422 ``self_transfer``; too little available 409
    ``insufficient_funds``."""
    body = await read_body(TransferIn)
    done = await deps().transfers.transfer(
        current_actor(), token, body.to_user_id, body.amount, body.from_user_id
    )
    return ok(dump_transfer(done, await _token(done.token_id)))


# -- withdrawals -------------------------------------------------------------------------------


@token_operations.post("/withdrawals")
@documented(WithdrawalEnvelope, 201, auth=True, body=WithdrawalIn, errors=[404, 409])
@guarded(REQUEST)
async def request_withdrawal() -> Response:
    """Withdraw the caller's tokens to ``toAddress``: the amount is locked until an admin
    approves (then it is sent) or rejects (then it is unlocked)."""
    body = await read_body(WithdrawalIn)
    made = await deps().withdrawals.request(
        current_actor(), body.token_id, body.amount, body.to_address
    )
    return ok(dump_withdrawal(made, await _token(made.token_id)), 201, "Withdrawal requested")


@token_operations.post("/withdrawals/<withdrawal_id>/<decision>")
@documented(
    WithdrawalEnvelope,
    auth=True,
    errors=[404, 409, 422],
    path={**ID_PATH, "decision": {"enum": ["approve", "reject"]}},
)
@guarded(APPROVE)
async def decide_withdrawal(withdrawal_id: str, decision: str) -> Response:
    """Approve (the job sends it) or reject (the funds are unlocked) a withdrawal awaiting
    approval (admins); otherwise 409 ``withdrawal_not_pending``."""
    use_cases = deps().withdrawals
    if decision == "approve":
        done = await use_cases.approve(current_actor(), withdrawal_id)
    elif decision == "reject":
        done = await use_cases.reject(current_actor(), withdrawal_id)
    else:
        raise ValidationFailed("unknown decision", fields={"decision": "approve or reject"})
    return ok(dump_withdrawal(done, await _token(done.token_id)))


@token_operations.get("/withdrawals/<withdrawal_id>")
@documented(WithdrawalEnvelope, auth=True, errors=[404, 422], path=ID_PATH)
@guarded(READ, READ_ANY)
async def get_withdrawal(withdrawal_id: str) -> Response:
    """A withdrawal (its owner, or admins); 404 ``withdrawal_not_found``."""
    found = await deps().withdrawals.get(current_actor(), withdrawal_id)
    return ok(dump_withdrawal(found, await _token(found.token_id)))


class PendingWithdrawalsQuery(PageQuery):
    status: str = Field(
        default="PENDING_APPROVAL",
        description="only PENDING_APPROVAL: the withdrawals waiting for an admin",
        json_schema_extra={"enum": ["PENDING_APPROVAL"]},
    )


@token_operations.get("/withdrawals")
@documented(WithdrawalPageEnvelope, auth=True, query=PendingWithdrawalsQuery)
@guarded(READ_ANY)
async def pending_withdrawals() -> Response:
    """Every user's withdrawals waiting for approval, oldest first (admins); cursor pages."""
    status = query_text("status", max_length=32)
    if status not in (None, "PENDING_APPROVAL"):
        raise ValidationFailed("bad status", fields={"status": "must be PENDING_APPROVAL"})
    page = await deps().withdrawals.awaiting_approval(
        current_actor(), limit=_limit(), cursor=query_text("cursor", max_length=500)
    )
    return await _withdrawal_page(page)


@token_operations.get("/users/<user_id>/withdrawals")
@documented(WithdrawalPageEnvelope, auth=True, query=PageQuery, path=USER_PATH)
@guarded(READ, READ_ANY)
async def user_withdrawals(user_id: str) -> Response:
    """The user's withdrawals, newest first (the user, or admins); cursor pages."""
    page = await deps().withdrawals.for_user(
        current_actor(),
        user_id,
        limit=_limit(),
        cursor=query_text("cursor", max_length=500),
    )
    return await _withdrawal_page(page)


async def _withdrawal_page(page: WithdrawalPage) -> Response:
    tokens: dict[str, Token] = {}
    items = []
    for w in page.items:
        if w.token_id not in tokens:
            tokens[w.token_id] = await _token(w.token_id)
        items.append(dump_withdrawal(w, tokens[w.token_id]))
    return ok(
        items,
        pagination={
            "limit": page.limit,
            "nextCursor": page.next_cursor,
            "hasMore": page.next_cursor is not None,
        },
    )


# -- deposits ----------------------------------------------------------------------------------


def dump_deposit(deposit: Deposit, token: Token) -> dict[str, Any]:
    return {
        "id": deposit.id,
        "tokenId": deposit.token_id,
        "amount": format_units(deposit.amount, token.decimals),
        "address": deposit.address,
        "txHash": deposit.tx_hash,
        "logIndex": deposit.log_index,
        "blockNumber": deposit.block_number,
        "status": deposit.status.value,
        "creditedAt": None if deposit.credited_at is None else _iso(deposit.credited_at),
        "sweepTxHash": deposit.sweep_tx_hash,
    }


@token_operations.get("/users/<user_id>/deposits")
@documented(DepositPageEnvelope, auth=True, query=PageQuery, path=USER_PATH)
@guarded(READ_DEPOSITS, READ_DEPOSITS_ANY)
async def user_deposits(user_id: str) -> Response:
    """The user's deposits, newest first (the user, or admins): transfers to their custodial
    address counted after ``RWA_CHAIN_CONFIRMATIONS`` blocks, each once."""
    page = await deps().deposits.deposits(
        current_actor(),
        user_id,
        limit=_limit(),
        cursor=query_text("cursor", max_length=500),
    )
    tokens: dict[str, Token] = {}
    items = []
    for d in page.items:
        if d.token_id not in tokens:
            tokens[d.token_id] = await _token(d.token_id)
        items.append(dump_deposit(d, tokens[d.token_id]))
    return ok(
        items,
        pagination={
            "limit": page.limit,
            "nextCursor": page.next_cursor,
            "hasMore": page.next_cursor is not None,
        },
    )
