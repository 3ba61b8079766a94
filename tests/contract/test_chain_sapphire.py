"""``Web3Chain`` on Oasis Sapphire: deployments and reads leave the process encrypted.

There is no Sapphire node here, so the tests serve a stand-in on loopback: a real HTTP
JSON-RPC server holding an X25519 key pair the test generated. It publishes the public half
as ``oasis_callDataPublicKey`` (the shape sapphirepy reads: ``key``, ``checksum``,
``signature``, ``epoch``), opens every envelope it receives with the secret half through
sapphirepy's own envelope primitives, and answers ``eth_call`` with an encrypted result, as
Sapphire does. It keeps a tiny fake ledger (a fixed supply held by the owner of each deployed
stablecoin), enough for ``totalSupply`` and ``balanceOf``; it runs no EVM. The deployment the
tests send is the embedded stablecoin's (``prepare_stablecoin``): a creation with constructor
arguments, the case Sapphire's envelope must hide.

The same adapter against Hardhat (chain 31337) must stay unwrapped and send plain data.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import cbor2
import pytest
import rlp  # type: ignore[import-untyped]
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from nacl.public import PrivateKey, PublicKey
from sapphirepy.deoxysii import NONCE_SIZE, TAG_SIZE, DeoxysII  # type: ignore[import-untyped]
from sapphirepy.envelope import _derive_shared_secret  # type: ignore[import-untyped]
from web3 import HTTPProvider, Web3

from adapters.outbound.chain.trex.artifacts import stablecoin_artifact
from adapters.outbound.chain.web3_rpc import SAPPHIRE_CHAIN_IDS, Web3Chain
from core.ports.chain import Chain, TokenCall, TokenCallKind, TransactionReceipt
from core.shared.errors import ChainError
from tests.harness.common import free_port
from tests.harness.hardhat import HARDHAT_CHAIN_ID, HARDHAT_DEV_KEY

SAPPHIRE_LOCALNET = 23293
KEY = HARDHAT_DEV_KEY  # any key: the stand-in checks signatures, not balances
SENDER = Account.from_key(KEY).address
OTHER = "0x1111111111111111111111111111111111111111"
CONSTRUCTOR_TYPES = ["string", "string", "address"]
STAND_IN_SUPPLY = 10**24  # what the stand-in answers for every token it deployed
TOTAL_SUPPLY = keccak(text="totalSupply()")[:4]
BALANCE_OF = keccak(text="balanceOf(address)")[:4]
MINT = keccak(text="mint(address,uint256)")[:4]
GWEI = 10**9


@attrs.frozen
class Coin:
    name: str = "Secret Dollar"
    symbol: str = "SEC"


def plain_deployment(coin: Coin, owner: str) -> bytes:
    """Creation code + ABI-encoded constructor arguments, built without web3."""
    creation = bytes.fromhex(stablecoin_artifact().bytecode.removeprefix("0x"))
    return creation + abi_encode(CONSTRUCTOR_TYPES, (coin.name, coin.symbol, owner))


async def deploy(chain: Chain, coin: Coin) -> TransactionReceipt:
    async with chain.signing_lock:
        return await chain.execute(await chain.prepare_stablecoin(coin.name, coin.symbol))


def contract_address(sender: str, nonce: int) -> str:
    return to_checksum_address(keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:])


class StandInSapphire:
    """Answers the JSON-RPC methods ``Web3Chain`` uses, like a Sapphire node would."""

    def __init__(self, chain_id: int = SAPPHIRE_LOCALNET) -> None:
        self.chain_id = chain_id
        self.url = ""  # set once the server listens
        self.secret = PrivateKey.generate()
        self.epoch = 7
        self.public_key: dict[str, Any] = {
            "key": "0x" + bytes(self.secret.public_key).hex(),
            "checksum": "0x" + "00" * 32,
            "signature": "0x" + "00" * 64,
            "epoch": self.epoch,
        }
        self.lock = threading.Lock()
        self.bodies: list[str] = []  # every request body, as received
        self.methods: list[str] = []
        self.failures: list[str] = []  # anything the stand-in refused
        self.sent: list[dict[str, Any]] = []  # decoded raw transactions, with "plain" added
        self.estimated: list[bytes] = []  # plaintext of every eth_estimateGas
        self.calls: list[dict[str, Any]] = []  # eth_call params, with "plain" added
        self.nonces: dict[str, int] = {}
        self.tokens: dict[str, tuple[int, str]] = {}  # address -> (supply, holder)
        self.receipts: dict[str, dict[str, Any]] = {}
        self.block = 1

    # -- envelopes ------------------------------------------------------------------------

    def open_envelope(self, data: bytes) -> tuple[bytes, bytes]:
        """The plaintext calldata and the shared key, or AssertionError."""
        envelope = cbor2.loads(data)
        assert isinstance(envelope, dict), "calldata is not a CBOR map: not encrypted"
        assert envelope.get("format") == 1, f"unexpected envelope format {envelope.get('format')}"
        body = envelope["body"]
        assert set(body) == {"pk", "data", "nonce", "epoch"}, sorted(body)
        assert body["epoch"] == self.epoch
        shared = _derive_shared_secret(PublicKey(body["pk"]), self.secret)
        sealed = body["data"]
        opened = bytearray(len(sealed) - TAG_SIZE)
        assert DeoxysII(shared).decrypt(body["nonce"], opened, None, sealed), "tag mismatch"
        inner = cbor2.loads(bytes(opened))
        return bytes(inner["body"]), shared

    @staticmethod
    def seal_result(shared: bytes, result: bytes) -> str:
        inner = cbor2.dumps({"ok": result}, canonical=True)
        nonce = os.urandom(NONCE_SIZE)
        sealed = bytearray(len(inner) + TAG_SIZE)
        DeoxysII(shared).encrypt(nonce, sealed, None, inner)
        return "0x" + cbor2.dumps({"ok": {"nonce": nonce, "data": bytes(sealed)}}).hex()

    # -- JSON-RPC -------------------------------------------------------------------------

    def handle(self, method: str, params: list[Any]) -> Any:
        handler = getattr(self, "rpc_" + method, None)
        if handler is None:
            raise LookupError(f"method {method} not served by the stand-in")
        return handler(*params)

    def rpc_eth_chainId(self) -> str:
        return hex(self.chain_id)

    def rpc_oasis_callDataPublicKey(self) -> dict[str, Any]:
        return self.public_key

    def rpc_eth_blockNumber(self) -> str:
        return hex(self.block)

    def rpc_eth_getTransactionCount(self, address: str, _block: str) -> str:
        return hex(self.nonces.get(to_checksum_address(address), 0))

    def rpc_eth_gasPrice(self) -> str:
        return hex(100 * GWEI)

    def rpc_eth_maxPriorityFeePerGas(self) -> str:
        return hex(0)

    def rpc_eth_getBlockByNumber(self, _block: str, _full: bool) -> dict[str, Any]:
        return {
            "number": hex(self.block),
            "hash": "0x" + keccak(self.block.to_bytes(8, "big")).hex(),
            "parentHash": "0x" + "00" * 32,
            "nonce": "0x" + "00" * 8,
            "sha3Uncles": "0x" + "00" * 32,
            "logsBloom": "0x" + "00" * 256,
            "transactionsRoot": "0x" + "00" * 32,
            "stateRoot": "0x" + "00" * 32,
            "receiptsRoot": "0x" + "00" * 32,
            "miner": "0x" + "00" * 20,
            "difficulty": "0x0",
            "totalDifficulty": "0x0",
            "extraData": "0x",
            "size": "0x0",
            "gasLimit": hex(30_000_000),
            "gasUsed": "0x0",
            "timestamp": hex(1_700_000_000 + self.block),
            "transactions": [],
            "uncles": [],
            "baseFeePerGas": hex(100 * GWEI),
        }

    def rpc_eth_estimateGas(self, tx: dict[str, Any], *_block: Any) -> str:
        plain, _ = self.open_envelope(bytes.fromhex(tx["data"][2:]))
        self.estimated.append(plain)
        return hex(3_000_000)

    def rpc_eth_sendRawTransaction(self, raw_hex: str) -> str:
        raw = HexBytes(raw_hex)
        assert raw[0] == 2, "expected an EIP-1559 transaction"
        tx = TypedTransaction.from_bytes(raw).as_dict()
        sender = Account.recover_transaction(raw)
        assert tx["chainId"] == self.chain_id
        assert tx["nonce"] == self.nonces.get(sender, 0), "nonce out of order"
        plain, _ = self.open_envelope(bytes(tx["data"]))
        tx["plain"] = plain
        tx["from"] = sender
        self.sent.append(tx)
        address: str | None = None
        if not tx["to"]:  # a creation: the stablecoin
            address = contract_address(sender, tx["nonce"])
            creation = bytes.fromhex(stablecoin_artifact().bytecode.removeprefix("0x"))
            assert plain.startswith(creation), "plaintext is not the Stablecoin creation code"
            _name, _symbol, owner = abi_decode(CONSTRUCTOR_TYPES, plain[len(creation) :])
            self.tokens[address] = (STAND_IN_SUPPLY, to_checksum_address(owner))
        self.nonces[sender] = tx["nonce"] + 1
        self.block += 1
        tx_hash = "0x" + keccak(raw).hex()
        self.receipts[tx_hash] = {
            "transactionHash": tx_hash,
            "transactionIndex": "0x0",
            "blockHash": "0x" + keccak(self.block.to_bytes(8, "big")).hex(),
            "blockNumber": hex(self.block),
            "from": sender,
            "to": to_checksum_address(tx["to"]) if tx["to"] else None,
            "cumulativeGasUsed": hex(1_000_000),
            "gasUsed": hex(1_000_000),
            "effectiveGasPrice": hex(100 * GWEI),
            "contractAddress": address,
            "logs": [],
            "logsBloom": "0x" + "00" * 256,
            "status": "0x1",
            "type": "0x2",
        }
        return tx_hash

    def rpc_eth_getTransactionReceipt(self, tx_hash: str) -> dict[str, Any] | None:
        return self.receipts.get(tx_hash.lower())

    def rpc_eth_getCode(self, address: str, _block: str) -> str:
        known = to_checksum_address(address) in self.tokens
        return stablecoin_artifact().deployed_bytecode if known else "0x"

    def rpc_eth_call(self, call: dict[str, Any], _block: str) -> str:
        plain, shared = self.open_envelope(bytes.fromhex(call["data"][2:]))
        self.calls.append({**call, "plain": plain})
        supply, holder = self.tokens[to_checksum_address(call["to"])]
        if plain == TOTAL_SUPPLY:
            return self.seal_result(shared, abi_encode(["uint256"], [supply]))
        assert plain[:4] == BALANCE_OF, f"unexpected call {plain[:4].hex()}"
        (owner,) = abi_decode(["address"], plain[4:])
        balance = supply if to_checksum_address(owner) == holder else 0
        return self.seal_result(shared, abi_encode(["uint256"], [balance]))


class _Handler(BaseHTTPRequestHandler):
    node: StandInSapphire

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        request = json.loads(body)
        with self.node.lock:
            self.node.bodies.append(body)
            self.node.methods.append(request["method"])
            try:
                reply = {"result": self.node.handle(request["method"], request["params"])}
            except Exception as exc:  # an answer the adapter can show, and a record
                self.node.failures.append(f"{request['method']}: {exc!r}")
                reply = {"error": {"code": -32000, "message": f"stand-in refused: {exc}"}}
        payload = json.dumps({"jsonrpc": "2.0", "id": request["id"], **reply}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: Any) -> None:
        """Quiet: pytest shows failures, not access logs."""


@pytest.fixture
def node() -> Iterator[StandInSapphire]:
    stand_in = StandInSapphire()
    handler = type("Handler", (_Handler,), {"node": stand_in})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="stand-in-sapphire",
        daemon=True,
    )
    thread.start()
    stand_in.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
async def chain(node: StandInSapphire) -> AsyncIterator[Web3Chain]:
    adapter = Web3Chain(
        node.url, KEY, chain_id=SAPPHIRE_LOCALNET, receipt_timeout=5, poll_interval=0.01
    )
    yield adapter
    await adapter.close()


def test_the_sapphire_chain_ids() -> None:
    assert set(SAPPHIRE_CHAIN_IDS) == {23293, 23294, 23295}


async def test_a_deployment_leaves_as_a_sapphire_envelope(
    node: StandInSapphire, chain: Web3Chain
) -> None:
    assert chain.sapphire is True  # decided by the configured chain id, before any request
    token = Coin()
    expected_plain = plain_deployment(token, SENDER)

    deployed = await deploy(chain, token)

    assert node.failures == []
    assert deployed.contract_address == contract_address(SENDER, 0)
    [sent] = node.sent
    on_the_wire = bytes(sent["data"])
    assert on_the_wire != expected_plain
    assert expected_plain not in on_the_wire
    envelope = cbor2.loads(on_the_wire)
    assert envelope["format"] == 1
    assert envelope["body"]["epoch"] == node.epoch
    assert len(envelope["body"]["pk"]) == 32  # the sender's ephemeral X25519 key
    assert sent["plain"] == expected_plain  # the node's key opens it to the exact deployment
    assert node.estimated == [expected_plain]  # gas was estimated on the envelope too
    assert "oasis_callDataPublicKey" in node.methods
    # neither the code+arguments nor the token name went anywhere in the clear
    for body in node.bodies:
        assert expected_plain.hex() not in body.lower()
        assert token.name.encode().hex() not in body.lower()


async def test_an_agent_call_leaves_as_a_sapphire_envelope(
    node: StandInSapphire, chain: Web3Chain
) -> None:
    """The T-REX steps and agent calls are encrypted like deployments (here: a mint)."""
    token = "0x" + "42" * 20
    prepared = await chain.prepare_token_call(TokenCall(TokenCallKind.MINT, token, OTHER, None, 7))
    assert prepared.contract_address is None
    async with chain.signing_lock:
        receipt = await chain.execute(prepared)
    assert receipt.succeeded and receipt.contract_address is None
    assert node.failures == []
    [sent] = node.sent
    expected = MINT + abi_encode(["address", "uint256"], [OTHER, 7])
    assert to_checksum_address(sent["to"]) == to_checksum_address(token)
    assert sent["plain"] == expected and node.estimated == [expected]
    assert bytes(sent["data"]) != expected
    for body in node.bodies:
        assert expected.hex() not in body.lower()


async def test_reads_are_encrypted_and_their_results_decrypted(
    node: StandInSapphire, chain: Web3Chain
) -> None:
    deployed = await deploy(chain, Coin())
    assert deployed.contract_address is not None

    assert await chain.total_supply(deployed.contract_address) == STAND_IN_SUPPLY
    assert await chain.balance_of(deployed.contract_address, SENDER) == STAND_IN_SUPPLY
    assert await chain.balance_of(deployed.contract_address, OTHER) == 0

    assert node.failures == []
    assert [call["plain"][:4] for call in node.calls] == [TOTAL_SUPPLY, BALANCE_OF, BALANCE_OF]
    for call in node.calls:
        assert not call["data"][2:].startswith(call["plain"].hex())  # ciphertext on the wire
        assert "from" not in call  # unsigned queries
    assert await chain.code_at(deployed.contract_address) == stablecoin_artifact().runtime_code


async def test_concurrent_deployments_keep_their_nonces_and_plaintexts(
    node: StandInSapphire, chain: Web3Chain
) -> None:
    tokens = [Coin(name=f"Dollar {i}") for i in range(4)]
    deployed = await asyncio.gather(*(deploy(chain, t) for t in tokens))

    assert node.failures == []
    assert [tx["nonce"] for tx in node.sent] == [0, 1, 2, 3]
    assert sorted(tx["plain"] for tx in node.sent) == sorted(
        plain_deployment(t, SENDER) for t in tokens
    )
    assert len({d.contract_address for d in deployed}) == len(tokens)


async def test_without_a_configured_chain_id_the_node_decides(node: StandInSapphire) -> None:
    adapter = Web3Chain(node.url, KEY, receipt_timeout=5, poll_interval=0.01)
    try:
        assert adapter.sapphire is None  # nothing asked yet: construction does no I/O
        assert node.methods == []
        assert await adapter.block_number() == 1
        assert node.methods == ["eth_chainId", "eth_blockNumber"]
        assert adapter.sapphire is True

        token = Coin()
        await deploy(adapter, token)
        assert node.failures == []
        [sent] = node.sent
        assert sent["plain"] == plain_deployment(token, SENDER)
        assert bytes(sent["data"]) != sent["plain"]
    finally:
        await adapter.close()


async def test_a_node_without_a_usable_calldata_key_gets_nothing(node: StandInSapphire) -> None:
    node.public_key = {**node.public_key, "key": "0x1234"}
    adapter = Web3Chain(node.url, KEY, chain_id=SAPPHIRE_LOCALNET, receipt_timeout=5)
    try:
        with pytest.raises(ChainError, match="calldata public key"):
            await deploy(adapter, Coin())
        assert node.sent == []
        assert "eth_estimateGas" not in node.methods
        node.public_key = {**node.public_key, "key": "0x" + bytes(node.secret.public_key).hex()}
        assert await deploy(adapter, Coin())  # the nonce was not burnt
        assert [tx["nonce"] for tx in node.sent] == [0]
    finally:
        await adapter.close()


@pytest.mark.hardhat
class TestNotSapphire:
    """Chain 31337 is not Sapphire: no wrapping, plain deployment data, the contract works."""

    async def test_the_node_chain_id_leaves_the_adapter_unwrapped(self, hardhat_url: str) -> None:
        adapter = Web3Chain(hardhat_url, HARDHAT_DEV_KEY, receipt_timeout=30)
        try:
            assert await adapter.block_number() >= 0
            assert adapter.sapphire is False
            token = Coin(name="Plain Dollar")
            deployed = await deploy(adapter, token)
            assert deployed.contract_address is not None
            assert await adapter.total_supply(deployed.contract_address) == 0
            metadata = await adapter.token_metadata(deployed.contract_address)
            assert (metadata.name, metadata.decimals) == ("Plain Dollar", 6)
            w3 = Web3(HTTPProvider(hardhat_url))
            tx = w3.eth.get_transaction(HexBytes(deployed.tx_hash))
            owner = await adapter.custody_address()
            assert bytes(tx["input"]) == plain_deployment(token, owner)
        finally:
            await adapter.close()

    async def test_a_configured_non_sapphire_id_is_unwrapped_at_once(
        self, hardhat_url: str
    ) -> None:
        adapter = Web3Chain(hardhat_url, HARDHAT_DEV_KEY, chain_id=HARDHAT_CHAIN_ID)
        try:
            assert adapter.sapphire is False
            deployed = await deploy(adapter, Coin())
            assert deployed.contract_address is not None
            assert await adapter.total_supply(deployed.contract_address) == 0
        finally:
            await adapter.close()
