"""``Web3Chain``: any EVM node over JSON-RPC (HTTP), signing locally with a private key.

Oasis Sapphire (chain ids 23293 localnet, 23294 mainnet, 23295 testnet) is confidential: on
those chains the web3 instance is wrapped with ``oasis-sapphire-py`` (``sapphirepy``). The
chain id decides: the configured one (``RWA_CHAIN_ID``) at construction, otherwise the node's
``eth_chainId``, read once on the chain thread before the first operation.

What is encrypted on Sapphire, and how:

- Reads (``eth_call``: ``totalSupply``, ``balanceOf``): sapphirepy's middleware encrypts the
  calldata to the node's calldata public key (``oasis_callDataPublicKey``, X25519) and
  decrypts the result. The calls carry no ``from``, so they are unsigned queries (on
  Sapphire ``msg.sender`` is the zero address for them, which these public views ignore).
- Transactions (every deployment and call of a T-REX suite, agent calls, the stablecoin):
  sapphirepy's middleware only touches ``eth_call``, ``eth_estimateGas`` and
  ``eth_sendTransaction``, and skips deployments unless its global ``ENCRYPT_DEPLOYS`` is on.
  This adapter signs locally and sends ``eth_sendRawTransaction``, which no middleware can
  encrypt after signing. So it encrypts explicitly: it fetches the current calldata public
  key, wraps the creation code and constructor arguments (or a call's ABI-encoded data) in
  sapphirepy's envelope (``TransactionCipher.encrypt``: CBOR, X25519 + Deoxys-II), and
  estimates gas, signs and sends that envelope. The plain calldata never leaves the process.
  The price: an encrypted deployment cannot be verified against its source on an explorer.

Not done: the calldata public key's signature is not verified (sapphirepy does not verify it
either). ``eth_getCode``, block and receipt reads carry no calldata and stay plain. The
tests run this against a loopback stand-in that decrypts with its own key, not against a real
Sapphire node: that Sapphire accepts an encrypted creation in ``eth_estimateGas`` and
``eth_sendRawTransaction`` follows sapphirepy's ``ENCRYPT_DEPLOYS`` path, not a test here.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import requests
from eth_account import Account
from hexbytes import HexBytes
from sapphirepy.envelope import TransactionCipher  # type: ignore[import-untyped]
from sapphirepy.sapphire import wrap as sapphire_wrap  # type: ignore[import-untyped]
from web3 import HTTPProvider, Web3
from web3._utils.transactions import fill_transaction_defaults
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.types import RPCEndpoint, TxParams, Wei

from adapters.outbound.chain.web3_base import Web3ChainBase
from core.shared.errors import ChainError

SAPPHIRE_CHAIN_IDS = {
    23293: "Sapphire localnet",
    23294: "Sapphire mainnet",
    23295: "Sapphire testnet",
}
_PUBLIC_KEY = re.compile(r"^0x[0-9a-fA-F]{64}$")


def redact_url(url: str) -> str:
    """Scheme, host and port only: paths and user info may carry API keys."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


class Web3Chain(Web3ChainBase):
    """A JSON-RPC node at ``rpc_url``; ``chain_id``, when given, must match the node's."""

    def __init__(
        self,
        rpc_url: str,
        private_key: str,
        chain_id: int | None = None,
        receipt_timeout: float = 120.0,
        *,
        request_timeout: float = 30.0,
        poll_interval: float = 0.5,
    ) -> None:
        try:
            account = Account.from_key(private_key)
        except Exception:  # never echo the key itself
            raise ChainError("the chain private key is not a valid 32-byte hex key") from None
        self._session = requests.Session()
        provider = HTTPProvider(
            rpc_url,
            request_kwargs={"timeout": request_timeout},
            session=self._session,
        )
        super().__init__(
            Web3(provider),
            account,
            endpoint=redact_url(rpc_url),
            chain_id=chain_id,
            receipt_timeout=receipt_timeout,
            poll_interval=poll_interval,
        )
        self._sapphire: bool | None = None  # None: decided on the chain thread
        if chain_id is not None:
            self._decide_sapphire(chain_id)

    @property
    def sapphire(self) -> bool | None:
        """True when calls and deployments are encrypted; None until the chain id is known."""
        return self._sapphire

    def _close_transport(self) -> None:
        self._session.close()

    # -- Sapphire -----------------------------------------------------------------------------

    def _decide_sapphire(self, chain_id: int) -> None:
        if chain_id in SAPPHIRE_CHAIN_IDS:
            sapphire_wrap(self._w3)  # no account: reads stay unsigned queries
            self._sapphire = True
        else:
            self._sapphire = False

    def _before_chain_call(self) -> None:
        if self._sapphire is None:  # RWA_CHAIN_ID unset: the node's chain id decides
            self._decide_sapphire(self._node_chain_id())

    def _deployment_transaction(
        self, constructor: ContractConstructor, params: dict[str, Any]
    ) -> dict[str, Any]:
        if not self._sapphire:
            return super()._deployment_transaction(constructor, params)
        envelope = self._encrypt(HexBytes(constructor.data_in_transaction))
        # No "to": sapphirepy's middleware leaves deployments alone (ENCRYPT_DEPLOYS off), so
        # eth_estimateGas sees this envelope as it is, as the node will in the raw transaction.
        tx: TxParams = {**params, "data": envelope, "value": Wei(0)}  # type: ignore[typeddict-item]
        return dict(fill_transaction_defaults(self._w3, tx))

    def _call_transaction(self, call: ContractFunction, params: dict[str, Any]) -> dict[str, Any]:
        if not self._sapphire:
            return super()._call_transaction(call, params)
        encoder = self._w3.eth.contract(abi=call.contract_abi)
        plain = encoder.encode_abi(call.abi_element_identifier, args=call.args, kwargs=call.kwargs)
        # gas: estimated on the plain call, which sapphirepy's middleware encrypts itself (a
        # call, unlike a deployment, goes through it); then signed locally with an envelope of
        # our own, since no middleware sees eth_sendRawTransaction
        plain_tx: TxParams = {**params, "to": call.address, "data": HexBytes(plain)}  # type: ignore[typeddict-item]
        gas = self._w3.eth.estimate_gas(plain_tx)
        envelope = self._encrypt(HexBytes(plain))
        tx: TxParams = {**plain_tx, "data": envelope, "value": Wei(0), "gas": gas}
        return dict(fill_transaction_defaults(self._w3, tx))

    def _encrypt(self, plain: bytes) -> HexBytes:
        """Seal ``plain`` to the node's current calldata public key (fetched per deployment)."""
        key: Any = self._w3.manager.request_blocking(RPCEndpoint("oasis_callDataPublicKey"), [])
        try:
            public_key, epoch = key["key"], key["epoch"]
        except (KeyError, TypeError):
            public_key, epoch = None, None
        if not isinstance(public_key, str) or not _PUBLIC_KEY.match(public_key):
            raise ChainError(f"the node at {self._endpoint} returned no calldata public key")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise ChainError(f"the node at {self._endpoint} returned a bad calldata key epoch")
        return HexBytes(TransactionCipher(public_key, epoch).encrypt(plain))
