"""Read side of markets: listing with filters and cursors, details, history."""

from __future__ import annotations

import base64
import binascii
import re

import attrs

from core.markets.chain_state import ChainStateGuard, ChainStateMismatch
from core.markets.model import AssetType, Market, MarketAsset, MarketStatus
from core.ports.chain import MINT_STEP, Chain
from core.ports.storage import MarketFilter, Storage
from core.shared.errors import Conflict, NotFound, ValidationFailed
from core.shared.events import DomainEvent

MAX_PAGE = 100


@attrs.frozen
class MarketPage:
    items: list[Market]
    next_cursor: str | None
    limit: int


@attrs.frozen
class MarketDetails:
    market: Market
    asset: MarketAsset


@attrs.frozen
class StateReached:
    status: MarketStatus
    reached: bool
    at: object | None = None  # datetime of the first event that entered the status


def encode_cursor(market_id: str) -> str:
    return base64.urlsafe_b64encode(market_id.encode()).decode().rstrip("=")


_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def decode_cursor(cursor: str) -> str:
    """The market id a cursor stands for; ``ValidationFailed`` for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        market_id = base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed("bad cursor", fields={"cursor": "is not a valid cursor"}) from exc
    if not _ID_RE.fullmatch(market_id):
        raise ValidationFailed("bad cursor", fields={"cursor": "is not a valid cursor"})
    return market_id


def parse_filter(status: str | None, asset_type: str | None, issuer_id: str | None) -> MarketFilter:
    fields: dict[str, str] = {}
    parsed_status = parsed_type = None
    if status is not None:
        try:
            parsed_status = MarketStatus(status)
        except ValueError:
            fields["status"] = "must be one of: " + ", ".join(s.value for s in MarketStatus)
    if asset_type is not None:
        try:
            parsed_type = AssetType(asset_type)
        except ValueError:
            fields["assetType"] = "must be one of: " + ", ".join(t.value for t in AssetType)
    if fields:
        raise ValidationFailed("bad filter", fields=fields)
    return MarketFilter(status=parsed_status, asset_type=parsed_type, issuer_id=issuer_id)


@attrs.frozen
class OnChainToken:
    """What the chain itself says about a market's T-REX token."""

    contract_address: str
    code_size: int
    total_supply: int  # base units
    custody_address: str  # the platform: owner and agent of the token
    issuer_address: str | None  # where activation minted the supply
    issuer_balance: int | None  # base units
    paused: bool
    name: str = ""  # as the token contract answers them
    symbol: str = ""
    decimals: int = 0


class MarketQueries:
    def __init__(
        self, storage: Storage, chain: Chain, guard: ChainStateGuard | None = None
    ) -> None:
        self._storage = storage
        self._chain = chain
        self._guard = guard

    async def page(
        self, market_filter: MarketFilter, *, limit: int = 20, cursor: str | None = None
    ) -> MarketPage:
        """Newest first. ``next_cursor`` is None on the last page."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed("bad limit", fields={"limit": f"must be 1 to {MAX_PAGE}"})
        before = decode_cursor(cursor) if cursor else None
        async with self._storage.unit_of_work(read_only=True) as uow:
            rows = await uow.markets.list(market_filter, limit=limit + 1, before_id=before)
        has_more = len(rows) > limit
        items = rows[:limit]
        next_cursor = encode_cursor(items[-1].id) if has_more and items else None
        return MarketPage(items=items, next_cursor=next_cursor, limit=limit)

    async def get(self, market_id: str) -> Market:
        async with self._storage.unit_of_work(read_only=True) as uow:
            market = await uow.markets.get(market_id)
        if market is None:
            raise NotFound(f"market {market_id} not found", details={"marketId": market_id})
        return market

    async def details(self, market_id: str) -> MarketDetails:
        async with self._storage.unit_of_work(read_only=True) as uow:
            market = await uow.markets.get(market_id)
            asset = await uow.markets.get_asset(market_id)
        if market is None or asset is None:
            raise NotFound(f"market {market_id} not found", details={"marketId": market_id})
        return MarketDetails(market=market, asset=asset)

    async def events(self, market_id: str) -> list[DomainEvent]:
        async with self._storage.unit_of_work(read_only=True) as uow:
            if await uow.markets.get(market_id) is None:
                raise NotFound(f"market {market_id} not found", details={"marketId": market_id})
            return await uow.events.for_aggregate(market_id)

    async def has_reached(self, market_id: str, status: MarketStatus) -> StateReached:
        """Whether the market ever entered ``status`` (from its event history), and when."""
        for event in await self.events(market_id):
            if event.metadata.get("status") == status.value:
                return StateReached(status=status, reached=True, at=event.occurred_at)
        return StateReached(status=status, reached=False)

    async def on_chain(self, market_id: str) -> OnChainToken:
        """Read the deployed token back from the chain (code, name, symbol, supply, the
        issuer's balance, paused).

        ``ChainStateMismatch`` (503) when the chain does not hold what the database recorded
        (``ChainStateGuard``), or when the contract at the market's address is another token:
        wrong data is never served as the market's."""
        market = await self.get(market_id)
        if market.contract_address is None:
            raise Conflict(
                f"market {market_id} has no deployed token yet",
                details={"currentStatus": market.status.value},
                code="not_deployed",
            )
        if self._guard is not None:
            await self._guard.ensure()
        address = market.contract_address
        code = await self._chain.code_at(address)
        if not code:
            raise ChainStateMismatch(
                f"market {market_id}'s token {address} has no code on the chain",
                details={"marketId": market_id, "contractAddress": address},
            )
        metadata = await self._chain.token_metadata(address)
        if metadata.symbol != market.token_symbol:
            raise ChainStateMismatch(
                f"the contract at {address} is token {metadata.symbol!r}, not market "
                f"{market_id}'s {market.token_symbol!r}",
                details={"marketId": market_id, "contractAddress": address},
            )
        async with self._storage.unit_of_work(read_only=True) as uow:
            minted = await uow.deployments.open_for(market.id, MINT_STEP)
        issuer = None if minted is None else minted.holder
        balance = None if issuer is None else await self._chain.balance_of(address, issuer)
        return OnChainToken(
            contract_address=address,
            code_size=len(code),
            total_supply=await self._chain.total_supply(address),
            custody_address=await self._chain.custody_address(),
            issuer_address=issuer,
            issuer_balance=balance,
            paused=await self._chain.is_paused(address),
            name=metadata.name,
            decimals=metadata.decimals,
            symbol=metadata.symbol,
        )
