"""Chain port: sign, send and follow transactions on an EVM chain; read tokens back.

Sending is split in two so that a caller can record a transaction before it leaves the
process (DESIGN §4 "one market, one contract", §9 "never sent twice"):

1. ``prepare_deployment`` builds and signs a transaction with the signer's next nonce and
   returns everything needed to send it again later: nonce, hash, raw signed bytes and the
   address the contract will have (the CREATE address of signer and nonce). Nothing is
   broadcast; calling it twice gives two different transactions.
2. ``send_raw_transaction`` broadcasts those exact bytes. Sending bytes the chain already
   has (pending or mined) is not an error: it answers the same hash. So a retry re-sends the
   recorded bytes instead of signing again.
3. ``transaction_receipt`` (None while unknown or pending) and ``wait_for_receipt`` follow it.

Nonces: ``prepare_*`` takes the node's count of the signer's transactions, pending included.
Hold ``signing_lock`` from prepare until the send has returned (recording in between), so two
preparations of one process never get the same nonce. A transaction whose nonce is below
``confirmed_nonce`` and that has no receipt was replaced by another one with that nonce and
can never be mined any more: only then may a caller sign a replacement.

Every failure surfaces as ``ChainError``.
"""

from __future__ import annotations

import abc
import asyncio

import attrs

from core.shared.errors import ChainError


@attrs.frozen
class TokenSpec:
    name: str
    symbol: str
    decimals: int
    initial_supply: int  # base units, minted at deployment to ``holder``
    holder: str | None = None  # None: the platform's custody address


@attrs.frozen
class SignedTransaction:
    """A signed transaction that has not necessarily been sent."""

    signer: str  # checksummed address
    nonce: int
    tx_hash: str  # 0x + 64 lowercase hex digits
    raw_transaction: str  # 0x-prefixed hex of the signed bytes, as sent
    chain_id: int


@attrs.frozen
class PreparedDeployment:
    """A signed, unsent token deployment and where its contract will be."""

    transaction: SignedTransaction
    contract_address: str  # checksummed CREATE address of (signer, nonce)
    holder: str  # checksummed; receives the initial supply


@attrs.frozen
class TransactionReceipt:
    tx_hash: str
    block_number: int
    succeeded: bool  # status 1; a reverted transaction still used its nonce
    contract_address: str | None  # checksummed, for a successful contract creation


@attrs.frozen
class DeployedToken:
    contract_address: str
    tx_hash: str
    block_number: int
    holder: str


@attrs.frozen
class TokenMetadata:
    name: str
    symbol: str
    decimals: int


class Chain(abc.ABC):
    """An EVM chain and the platform's signer on it."""

    _lock: asyncio.Lock | None = None

    @property
    def signing_lock(self) -> asyncio.Lock:
        """Held from choosing a nonce (``prepare_*``) until the transaction is sent."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    # -- transactions ----------------------------------------------------------------------

    @abc.abstractmethod
    async def prepare_deployment(self, spec: TokenSpec) -> PreparedDeployment:
        """Sign (but do not send) the deployment of a token. ``ChainError`` for a spec the
        token cannot represent; a deployment that would revert may only fail when mined."""

    @abc.abstractmethod
    async def send_raw_transaction(self, raw_transaction: str) -> str:
        """Broadcast signed bytes; their hash. Bytes already pending or mined answer their
        hash again. ``ChainError`` when the chain refuses them (bad encoding, nonce already
        used by another transaction, a nonce gap the chain does not queue)."""

    @abc.abstractmethod
    async def transaction_receipt(self, tx_hash: str) -> TransactionReceipt | None:
        """The receipt of a mined transaction; None while unknown or pending."""

    @abc.abstractmethod
    async def wait_for_receipt(self, tx_hash: str) -> TransactionReceipt:
        """Poll until mined; ``ChainError`` after the adapter's receipt timeout."""

    @abc.abstractmethod
    async def confirmed_nonce(self, address: str) -> int:
        """How many transactions of ``address`` are mined (its next nonce, pending ignored)."""

    async def deploy_token(self, spec: TokenSpec) -> DeployedToken:
        """Prepare, send and wait, keeping no record: for tools and tests. The service's
        deployments record the transaction first (``core.markets.deployment``)."""
        async with self.signing_lock:
            prepared = await self.prepare_deployment(spec)
            await self.send_raw_transaction(prepared.transaction.raw_transaction)
        receipt = await self.wait_for_receipt(prepared.transaction.tx_hash)
        return deployed_token(prepared, receipt)

    # -- reads -----------------------------------------------------------------------------

    @abc.abstractmethod
    async def code_at(self, address: str) -> bytes: ...

    @abc.abstractmethod
    async def total_supply(self, token_address: str) -> int: ...

    @abc.abstractmethod
    async def balance_of(self, token_address: str, holder: str) -> int: ...

    @abc.abstractmethod
    async def token_metadata(self, token_address: str) -> TokenMetadata:
        """Name, symbol and decimals as the token contract answers them."""

    @abc.abstractmethod
    async def custody_address(self) -> str:
        """The platform's address that signs deployments and holds issued supply."""

    @abc.abstractmethod
    async def block_number(self) -> int:
        """The latest block; also the health check."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and threads."""


def deployed_token(prepared: PreparedDeployment, receipt: TransactionReceipt) -> DeployedToken:
    """The token a mined deployment created; ``ChainError`` if it reverted or created
    something other than the predicted contract."""
    tx_hash = prepared.transaction.tx_hash
    if not receipt.succeeded:
        raise ChainError(f"deployment transaction {tx_hash} reverted (status 0)")
    if receipt.contract_address is None:
        raise ChainError(f"receipt of {tx_hash} has no contract address")
    if receipt.contract_address.lower() != prepared.contract_address.lower():
        raise ChainError(
            f"deployment {tx_hash} created {receipt.contract_address}, "
            f"not the predicted {prepared.contract_address}"
        )
    return DeployedToken(
        contract_address=receipt.contract_address,
        tx_hash=tx_hash,
        block_number=receipt.block_number,
        holder=prepared.holder,
    )
