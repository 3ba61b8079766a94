"""What the platform does on a deployed T-REX suite, as owner, agent and claim issuer.

Identities: deploy an ONCHAINID ``Identity`` for a user (the platform holds its management
key, so it can add and remove claims), register it in a market's identity registry with the
user's country, add and remove claims signed by the platform's claim key.

Token: mint, burn, pause, unpause, freeze, forced and batch forced transfers (agent
functions), and plain transfers signed by a holder's own key (custodial addresses).

Every call is refused in our code, before anything is signed, when its input is one the
contract would take but the platform must not send: a zero or out-of-range amount, and a
forced transfer from an address to itself (T-REX accepts it and emits a Transfer event that
moves nothing, which a ledger mirror would read as a real movement).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from adapters.outbound.chain.trex.artifacts import TrexContract, trex_artifact
from adapters.outbound.chain.trex.claims import ECDSA_SCHEME, claim_id, sign_claim
from adapters.outbound.chain.trex.suite import MAX_COUNTRY, TrexSuite, contract_at
from adapters.outbound.chain.trex.transactor import Transactor
from adapters.outbound.chain.validation import MAX_UINT256, checksum_address
from core.shared.errors import ChainError, ValidationFailed


class SelfTransferRefused(ValidationFailed):
    """A forced transfer whose sender and receiver are the same address."""

    code = "self_transfer"


@attrs.frozen
class SentTransaction:
    tx_hash: str
    block_number: int
    gas_used: int

    @classmethod
    def of(cls, receipt: TxReceipt) -> SentTransaction:
        return cls(
            tx_hash=HexBytes(receipt["transactionHash"]).to_0x_hex(),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
        )


@attrs.frozen
class ForcedTransfer:
    sender: str
    receiver: str
    amount: int


def _amount(amount: int, what: str = "amount") -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationFailed(f"{what} must be an integer number of base units")
    if not 0 < amount <= MAX_UINT256:
        raise ValidationFailed(f"{what} {amount} must be positive and fit in uint256")
    return amount


def _country(country: int) -> int:
    if isinstance(country, bool) or not isinstance(country, int) or not 1 <= country <= MAX_COUNTRY:
        raise ValidationFailed(f"country {country!r} is not an ISO 3166-1 numeric code")
    return country


def _distinct(sender: str, receiver: str) -> tuple[str, str]:
    source = checksum_address(sender, "sender")
    target = checksum_address(receiver, "receiver")
    if source == target:
        raise SelfTransferRefused(
            f"forced transfer from {source} to itself refused", fields={"to": "equals from"}
        )
    return source, target


class TrexOperations:
    """Identity, claim and token operations, signed by the platform unless said otherwise."""

    def __init__(
        self, transactor: Transactor, platform: LocalAccount, *, claim_signer: LocalAccount | None
    ) -> None:
        self._tx = transactor
        self._w3 = transactor.w3
        self._platform = platform
        self._claim_signer = claim_signer or platform

    # -- identities and claims ---------------------------------------------------------------

    def deploy_identity(self) -> str:
        """A new ONCHAINID ``Identity`` whose management key is the platform's."""
        artifact = trex_artifact(TrexContract.IDENTITY)
        factory = self._w3.eth.contract(abi=artifact.abi, bytecode=HexBytes(artifact.bytecode))
        constructor = factory.constructor(self._platform.address, False)
        receipt = self._tx.send(self._platform, constructor, what="deploy an identity")
        address = receipt["contractAddress"]
        if not address:
            raise ChainError("deploy an identity: the receipt has no contract address")
        return checksum_address(address)

    def register_identity(
        self, suite: TrexSuite, user: str, identity: str, country: int
    ) -> SentTransaction:
        registry = contract_at(self._w3, TrexContract.IDENTITY_REGISTRY, suite.identity_registry)
        call = registry.functions.registerIdentity(
            checksum_address(user, "user address"),
            checksum_address(identity, "identity"),
            _country(country),
        )
        return self._send(call, "register an identity")

    def add_claim(
        self, identity: str, claim_issuer: str, topic: int, data: bytes = b"", uri: str = ""
    ) -> SentTransaction:
        """Sign a claim on ``topic`` with the claim key and store it on ``identity``."""
        target = checksum_address(identity, "identity")
        issuer = checksum_address(claim_issuer, "claim issuer")
        signature = sign_claim(self._claim_signer, target, topic, data)
        contract = contract_at(self._w3, TrexContract.IDENTITY, target)
        call = contract.functions.addClaim(topic, ECDSA_SCHEME, issuer, signature, data, uri)
        return self._send(call, f"add a topic {topic} claim")

    def remove_claim(self, identity: str, claim_issuer: str, topic: int) -> SentTransaction:
        contract = contract_at(self._w3, TrexContract.IDENTITY, identity)
        call = contract.functions.removeClaim(claim_id(claim_issuer, topic))
        return self._send(call, f"remove the topic {topic} claim")

    def is_verified(self, suite: TrexSuite, user: str) -> bool:
        registry = contract_at(self._w3, TrexContract.IDENTITY_REGISTRY, suite.identity_registry)
        call = registry.functions.isVerified(checksum_address(user, "user address"))
        return bool(self._tx.read(call, what="read isVerified"))

    def identity_of(self, suite: TrexSuite, user: str) -> str:
        registry = contract_at(self._w3, TrexContract.IDENTITY_REGISTRY, suite.identity_registry)
        call = registry.functions.identity(checksum_address(user, "user address"))
        return checksum_address(self._tx.read(call, what="read identity"))

    # -- token: agent functions --------------------------------------------------------------

    def mint(self, suite: TrexSuite, to: str, amount: int) -> SentTransaction:
        call = self._token(suite).functions.mint(checksum_address(to, "receiver"), _amount(amount))
        return self._send(call, "mint")

    def burn(self, suite: TrexSuite, holder: str, amount: int) -> SentTransaction:
        call = self._token(suite).functions.burn(
            checksum_address(holder, "holder"), _amount(amount)
        )
        return self._send(call, "burn")

    def pause(self, suite: TrexSuite) -> SentTransaction:
        return self._send(self._token(suite).functions.pause(), "pause the token")

    def unpause(self, suite: TrexSuite) -> SentTransaction:
        return self._send(self._token(suite).functions.unpause(), "unpause the token")

    def set_frozen(self, suite: TrexSuite, holder: str, frozen: bool) -> SentTransaction:
        call = self._token(suite).functions.setAddressFrozen(
            checksum_address(holder, "holder"), frozen
        )
        return self._send(call, "freeze an address" if frozen else "unfreeze an address")

    def forced_transfer(
        self, suite: TrexSuite, sender: str, receiver: str, amount: int
    ) -> SentTransaction:
        source, target = _distinct(sender, receiver)
        call = self._token(suite).functions.forcedTransfer(source, target, _amount(amount))
        return self._send(call, "forced transfer")

    def batch_forced_transfer(
        self, suite: TrexSuite, transfers: Sequence[ForcedTransfer]
    ) -> SentTransaction:
        if not transfers:
            raise ValidationFailed("a batch forced transfer needs at least one transfer")
        senders: list[str] = []
        receivers: list[str] = []
        amounts: list[int] = []
        for transfer in transfers:
            source, target = _distinct(transfer.sender, transfer.receiver)
            senders.append(source)
            receivers.append(target)
            amounts.append(_amount(transfer.amount))
        call = self._token(suite).functions.batchForcedTransfer(senders, receivers, amounts)
        return self._send(call, f"batch forced transfer of {len(transfers)}")

    # -- token: holders and reads ------------------------------------------------------------

    def transfer(
        self, suite: TrexSuite, holder: LocalAccount, to: str, amount: int
    ) -> SentTransaction:
        """A plain ERC-20 transfer signed by the holder's own key."""
        call = self._token(suite).functions.transfer(
            checksum_address(to, "receiver"), _amount(amount)
        )
        return SentTransaction.of(self._tx.send(holder, call, what="transfer"))

    def balance_of(self, suite: TrexSuite, holder: str) -> int:
        call = self._token(suite).functions.balanceOf(checksum_address(holder, "holder"))
        return int(self._tx.read(call, what="read balanceOf"))

    def total_supply(self, suite: TrexSuite) -> int:
        return int(
            self._tx.read(self._token(suite).functions.totalSupply(), what="read totalSupply")
        )

    def paused(self, suite: TrexSuite) -> bool:
        return bool(self._tx.read(self._token(suite).functions.paused(), what="read paused"))

    def is_frozen(self, suite: TrexSuite, holder: str) -> bool:
        call = self._token(suite).functions.isFrozen(checksum_address(holder, "holder"))
        return bool(self._tx.read(call, what="read isFrozen"))

    # -- internals ---------------------------------------------------------------------------

    def _token(self, suite: TrexSuite) -> Contract:
        return contract_at(self._w3, TrexContract.TOKEN, suite.token)

    def _send(self, call: ContractFunction, what: str) -> SentTransaction:
        return SentTransaction.of(self._tx.send(self._platform, call, what=what))
