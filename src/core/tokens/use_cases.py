"""Tokens and balances: create (admin), list, get by id or symbol; a user's balances in whole
tokens.

Order of checks (DESIGN 5.1), after the HTTP guard (401, role 403): the command's fields
(422 naming the field), then the permissions port (403), then storage (404, 409).

Balances: the ledger keys accounts by token id; amounts leave as exact whole-token strings
(``core.tokens.model.format_units``). A caller reads their own balances; another user's need
``balance.read_any`` (admins). A user the platform has no record of (no wallet, no
compliance record, no ledger account) is 404 ``user_not_found`` to an admin; the caller
themselves is always known (an empty list, zero balances).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from core.ledger.model import AccountRef, Balance
from core.markets.queries import decode_cursor, encode_cursor
from core.ports.audit import audit_entry
from core.ports.clock import Clock
from core.ports.custody import MalformedAddress, SignatureVerifier
from core.ports.storage import Storage, UnitOfWork
from core.shared.authorization import TRUSTED_ACTOR_TYPES, Authorizer
from core.shared.errors import PermissionDenied, ValidationFailed
from core.shared.events import Actor
from core.shared.roles import roles_allow_any
from core.tokens.model import (
    SYMBOL_RE,
    Token,
    TokenNotFound,
    TokenSymbolTaken,
    TokenType,
    UserNotFound,
    check_decimals,
    check_name,
    check_symbol,
    check_type,
    check_user_id,
    format_units,
)

CREATE = "token.create"
READ_BALANCE = "balance.read"
READ_BALANCE_ANY = "balance.read_any"
MAX_PAGE = 100
MAX_REFERENCE = 100


@attrs.frozen
class CreateToken:
    """``POST /tokens``; fields as received, checked by ``TokenUseCases.create``."""

    symbol: object
    name: object
    type: object
    decimals: object
    contract_address: object = None


@attrs.frozen
class TokenPage:
    items: list[Token]
    limit: int
    next_cursor: str | None


@attrs.frozen
class TokenBalance:
    token: Token
    available: int  # base units
    locked: int

    @property
    def total(self) -> int:
        return self.available + self.locked

    def whole(self, amount: int) -> str:
        return format_units(amount, self.token.decimals)


def token_view(token: Token) -> dict[str, object]:
    """A token as plain JSON (for the audit log)."""
    return {
        "id": token.id,
        "symbol": token.symbol,
        "name": token.name,
        "type": token.type.value,
        "decimals": token.decimals,
        "contractAddress": token.contract_address,
        "marketId": token.market_id,
        "paused": token.paused,
    }


async def find_token(uow: UnitOfWork, reference: str) -> Token:
    """A token by id or by symbol; ``TokenNotFound`` (404 ``token_not_found``)."""
    if not isinstance(reference, str) or not reference or len(reference) > MAX_REFERENCE:
        raise TokenNotFound(str(reference)[:MAX_REFERENCE])
    found = await uow.tokens.get(reference)
    if found is None and SYMBOL_RE.fullmatch(reference.upper()):
        found = await uow.tokens.by_symbol(reference.upper())
    if found is None:
        raise TokenNotFound(reference)
    return found


async def user_is_known(uow: UnitOfWork, user_id: str) -> bool:
    """Whether the platform holds anything about ``user_id``: a wallet (user number), a
    compliance record or a ledger account."""
    if await uow.wallets.get(user_id) is not None:
        return True
    if await uow.compliance.for_user(user_id):
        return True
    return bool(await uow.ledger.balances(user_id))


def require_reader(actor: Actor, user_id: str, own: str, any_user: str, what: str) -> None:
    """A caller reads their own ``what``; another user's needs ``any_user`` (admins)."""
    if actor.type in TRUSTED_ACTOR_TYPES:
        return
    if actor.id == user_id and roles_allow_any(actor.roles, (own,)):
        return
    if roles_allow_any(actor.roles, (any_user,)):
        return
    raise PermissionDenied(own, (f"a caller reads only their own {what}",))


class TokenUseCases:
    def __init__(
        self,
        storage: Storage,
        authorizer: Authorizer,
        clock: Clock,
        addresses: SignatureVerifier,
    ) -> None:
        self._storage = storage
        self._authorizer = authorizer
        self._clock = clock
        self._addresses = addresses

    # -- create ----------------------------------------------------------------------------------

    def _validate(self, command: CreateToken) -> Token:
        fields: dict[str, str] = {}
        values: dict[str, object] = {}
        checks: list[tuple[str, Callable[[], object]]] = [
            ("symbol", lambda: check_symbol(command.symbol)),
            ("name", lambda: check_name(command.name)),
            ("type", lambda: check_type(command.type)),
            ("decimals", lambda: check_decimals(command.decimals)),
            ("contractAddress", lambda: self._address(command.contract_address)),
        ]
        for name, check in checks:
            try:
                values[name] = check()
            except ValidationFailed as exc:
                fields.update(exc.fields or {name: exc.message})
        if fields:
            raise ValidationFailed("the token is invalid", fields=fields)
        symbol, token_name = values["symbol"], values["name"]
        token_type, decimals = values["type"], values["decimals"]
        address = values["contractAddress"]
        assert isinstance(symbol, str) and isinstance(token_name, str)
        assert isinstance(token_type, TokenType) and isinstance(decimals, int)
        assert address is None or isinstance(address, str)
        return Token(
            symbol=symbol,
            name=token_name,
            type=token_type,
            decimals=decimals,
            contract_address=address,
            created_at=self._clock.now(),
        )

    def _address(self, value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise MalformedAddress("contractAddress")
        try:
            return self._addresses.checksum_address(value)
        except MalformedAddress as exc:
            raise MalformedAddress("contractAddress") from exc

    async def create(self, actor: Actor, command: CreateToken) -> Token:
        """Register a token (admins). ``token_symbol_taken`` (409) when a token, or a live
        market other than the token's own, holds the symbol."""
        token = self._validate(command)
        await self._authorizer.require(actor, CREATE)
        async with self._storage.unit_of_work() as uow:
            await register_token(uow, token)
            await uow.audit.append(
                audit_entry(
                    actor,
                    CREATE,
                    f"token:{token.id}",
                    before=None,
                    after=token_view(token),
                    at=token.created_at,
                )
            )
            await uow.commit()
        return token

    # -- reads -----------------------------------------------------------------------------------

    async def page(
        self, token_type: str | None, *, limit: int = 20, cursor: str | None = None
    ) -> TokenPage:
        """Tokens newest first, optionally of one type; cursor pages like markets."""
        wanted = None if token_type is None else check_type(token_type)
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed("bad limit", fields={"limit": f"must be 1 to {MAX_PAGE}"})
        before = decode_cursor(cursor) if cursor else None
        async with self._storage.unit_of_work(read_only=True) as uow:
            rows = await uow.tokens.list(wanted, limit=limit + 1, before_id=before)
        items = rows[:limit]
        has_more = len(rows) > limit
        next_cursor = encode_cursor(items[-1].id) if has_more and items else None
        return TokenPage(items=items, limit=limit, next_cursor=next_cursor)

    async def get(self, reference: str) -> Token:
        async with self._storage.unit_of_work(read_only=True) as uow:
            return await find_token(uow, reference)

    async def balances(self, actor: Actor, user_id: str) -> list[TokenBalance]:
        """Every token the user holds an account of, by symbol."""
        user_id = check_user_id(user_id)
        require_reader(actor, user_id, READ_BALANCE, READ_BALANCE_ANY, "balances")
        async with self._storage.unit_of_work(read_only=True) as uow:
            rows = await uow.ledger.balances(user_id)
            if not rows and actor.id != user_id and not await user_is_known(uow, user_id):
                raise UserNotFound(user_id)
            found: list[TokenBalance] = []
            for row in rows:
                token = await uow.tokens.get(row.account.token)
                if token is not None:  # accounts are keyed by token id
                    found.append(_balance(token, row))
        return sorted(found, key=lambda b: b.token.symbol)

    async def balance(self, actor: Actor, user_id: str, reference: str) -> TokenBalance:
        """The user's balance of one token (zero without an account)."""
        user_id = check_user_id(user_id)
        require_reader(actor, user_id, READ_BALANCE, READ_BALANCE_ANY, "balances")
        async with self._storage.unit_of_work(read_only=True) as uow:
            token = await find_token(uow, reference)
            row = await uow.ledger.balance(AccountRef.user(user_id, token.id))
            empty = row.available == 0 and row.locked == 0
            if empty and actor.id != user_id and not await user_is_known(uow, user_id):
                raise UserNotFound(user_id)
        return _balance(token, row)


def _balance(token: Token, row: Balance) -> TokenBalance:
    return TokenBalance(token=token, available=row.available, locked=row.locked)


async def register_token(uow: UnitOfWork, token: Token) -> None:
    """Add ``token`` in ``uow``: its symbol must not be held by another token, nor by a live
    market other than the token's own (activation registers a market's token this way)."""
    if await uow.tokens.by_symbol(token.symbol) is None and await uow.markets.live_symbol_taken(
        token.symbol
    ):
        own = None if token.market_id is None else await uow.markets.get(token.market_id)
        if own is None or own.token_symbol != token.symbol:
            raise TokenSymbolTaken(token.symbol)
    await uow.tokens.add(token)
