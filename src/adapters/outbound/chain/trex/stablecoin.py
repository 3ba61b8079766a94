"""The embedded chain's quote currency: the OpenZeppelin ERC-20 of ``contracts/Stablecoin.sol``.

Not part of T-REX, but deployed and driven through the same ``Transactor`` (explicit nonces,
receipts awaited), so it lives beside it.
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3.contract import Contract

from adapters.outbound.chain.trex.artifacts import stablecoin_artifact
from adapters.outbound.chain.trex.transactor import Transactor
from adapters.outbound.chain.validation import MAX_UINT256, checksum_address
from core.shared.errors import ChainError, ValidationFailed

STABLECOIN_DECIMALS = 6  # fixed in Stablecoin.sol


class Stablecoin:
    """Deploy the stablecoin once, then mint (owner only) and read balances."""

    def __init__(self, transactor: Transactor, address: str) -> None:
        self._tx = transactor
        self.address = checksum_address(address, "stablecoin address")
        self._contract: Contract = transactor.w3.eth.contract(
            address=self.address, abi=stablecoin_artifact().abi
        )

    @classmethod
    def deploy(
        cls, transactor: Transactor, owner: LocalAccount, *, name: str, symbol: str
    ) -> Stablecoin:
        if not name or not symbol:
            raise ValidationFailed("stablecoin name and symbol must not be empty")
        artifact = stablecoin_artifact()
        factory = transactor.w3.eth.contract(abi=artifact.abi, bytecode=HexBytes(artifact.bytecode))
        constructor = factory.constructor(name, symbol, owner.address)
        receipt = transactor.send(owner, constructor, what="deploy the stablecoin")
        address = receipt["contractAddress"]
        if not address:
            raise ChainError("deploy the stablecoin: the receipt has no contract address")
        return cls(transactor, address)

    def mint(self, owner: LocalAccount, to: str, amount: int) -> str:
        """Mint ``amount`` base units (10**-6) to ``to``; only the owner may. The tx hash."""
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_UINT256:
            raise ValidationFailed(f"amount {amount!r} must be a positive uint256")
        call = self._contract.functions.mint(checksum_address(to, "receiver"), amount)
        receipt = self._tx.send(owner, call, what="mint stablecoin")
        return HexBytes(receipt["transactionHash"]).to_0x_hex()

    def balance_of(self, holder: str) -> int:
        call = self._contract.functions.balanceOf(checksum_address(holder, "holder"))
        return int(self._tx.read(call, what="read stablecoin balance"))

    def decimals(self) -> int:
        return int(self._tx.read(self._contract.functions.decimals(), what="read decimals"))
