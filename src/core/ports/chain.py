"""Chain port: deploy and read the ERC-20 token of a market."""

from __future__ import annotations

import abc

import attrs


@attrs.frozen
class TokenSpec:
    name: str
    symbol: str
    decimals: int
    initial_supply: int  # base units, minted at deployment to ``holder``
    holder: str | None = None  # None: the platform's custody address


@attrs.frozen
class DeployedToken:
    contract_address: str
    tx_hash: str
    block_number: int
    holder: str


class Chain(abc.ABC):
    """An EVM chain. Every failure surfaces as ``ChainError``."""

    @abc.abstractmethod
    async def deploy_token(self, spec: TokenSpec) -> DeployedToken:
        """Deploy a token and wait for its receipt."""

    @abc.abstractmethod
    async def code_at(self, address: str) -> bytes: ...

    @abc.abstractmethod
    async def total_supply(self, token_address: str) -> int: ...

    @abc.abstractmethod
    async def balance_of(self, token_address: str, holder: str) -> int: ...

    @abc.abstractmethod
    async def custody_address(self) -> str:
        """The platform's address that signs deployments and holds issued supply."""

    @abc.abstractmethod
    async def block_number(self) -> int:
        """The latest block; also the health check."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and threads."""
