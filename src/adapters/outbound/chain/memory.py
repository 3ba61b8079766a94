"""``MemoryChain``: an in-memory chain that behaves like the real chain adapters, for tests.

It keeps the rules the service relies on: a nonce per signing address that counts up (the
platform's, and each custodial key's that signs a deposit sweep), a prepared transaction that
changes nothing until its exact bytes are sent, a second send of the same bytes answering the
same hash, a nonce that is used only once (a different transaction with a used nonce is
refused, like "nonce too low"), no nonce gaps (refused, as eth-tester does), contract
addresses computed like CREATE, and a block per transaction. Native coin is modelled for
gas: the platform starts rich and pays nothing; any other address pays a fixed ERC-20
transfer's gas per transaction and is refused ("insufficient funds") without it.

It models the T-REX suite as far as the service depends on it, and refuses what the real
contracts refuse, at ``prepare_*`` (as gas estimation does) and again when mined (a receipt
with status 0): a mint or forced transfer to an address the identity registry does not verify
(identity registered, a claim on every required topic from a trusted issuer), to a country the
compliance's country module does not allow, or beyond the sender's unfrozen balance; pausing a
paused token or unpausing a running one; agent functions from a non-agent; a forced transfer
from an address to itself (refused by our own code before signing, as on the real adapters).

Its "raw transactions" are not RLP-signed Ethereum transactions but a JSON document with a
marker prefix: only this adapter can send them, and it refuses anything else. The platform's
are its own; one from any other address carries that address's key's EIP-191 signature of
the document (``TransactionSigner.sign_message``), checked with eth-account before it is
accepted, so a transaction is sent only by the holder of its sender's key.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from adapters.outbound.chain.trex.artifacts import TrexContract, stablecoin_artifact, trex_artifact
from adapters.outbound.chain.trex.batch import batch_lines
from adapters.outbound.chain.trex.steps import (
    PLATFORM_CONTRACTS,
    SUITE_CONTRACTS,
    check_amount,
    check_spec,
    country_alpha2,
    country_number,
    distinct,
)
from adapters.outbound.chain.validation import checksum_address, create_address
from core.ports.chain import (
    PLATFORM_STEPS,
    Chain,
    ForcedTransfer,
    IdentityCall,
    IdentityCallKind,
    PreparedTransaction,
    RegisteredIdentity,
    SignedTransaction,
    SuiteSpec,
    TokenCall,
    TokenCallKind,
    TokenMetadata,
    TransactionReceipt,
    TransferLog,
    suite_steps,
)
from core.ports.custody import TransactionSigner
from core.shared.errors import ChainError

DEFAULT_CUSTODY = to_checksum_address(keccak(b"rwa-market memory custody")[-20:])
MEMORY_CHAIN_ID = 1337
ZERO_ADDRESS = "0x" + "00" * 20
_EMITTED = "emitted"  # Transfer events of the transaction being mined, in a contract's state
_MARKER = b"rwa-memory-tx:"
STABLECOIN_DECIMALS = 6
PLATFORM_NATIVE = 10**24  # the platform signer's native coin (wei) at genesis
GAS_PRICE = 10**9  # wei per gas, fixed
CUSTODIAL_TRANSFER_GAS = 60_000  # the gas of an ERC-20 transfer signed by a custodial key
FEE_HEADROOM_PERCENT = 125  # as the web3 adapters: funding covers a price rising 25 %


def _fee(sender: str, platform: str) -> int:
    """Gas paid by a transaction: the platform's are free here (it starts rich and never
    runs out in a test); every other address pays a fixed ERC-20 transfer's gas."""
    return 0 if sender == platform else CUSTODIAL_TRANSFER_GAS * GAS_PRICE


@attrs.define
class _Contract:
    kind: str  # a TrexContract value, or "Stablecoin"
    state: dict[str, Any] = attrs.Factory(dict)


class _Revert(ChainError):
    """What the contract would revert with."""


def _revert(reason: str) -> _Revert:
    return _Revert(f"execution reverted: {reason}")


class MemoryChain(Chain):
    """A model of the platform's contracts with a real nonce discipline; each sent
    transaction mines one block.

    ``auto_mine=False`` keeps sent transactions pending until ``mine()`` (tests of crashes
    between send and receipt). Reads of addresses without a token fail like a call to a
    non-contract does on a real chain.
    """

    def __init__(self, custody_address: str | None = None, *, auto_mine: bool = True) -> None:
        self._custody = checksum_address(custody_address or DEFAULT_CUSTODY, "custody address")
        self._nonces: dict[str, int] = {}  # mined transactions per signing address
        self._block = 0
        self._contracts: dict[str, _Contract] = {}
        self._mined: dict[str, TransactionReceipt] = {}
        # (signer, nonce) -> (hash, body), in the order they were sent
        self._pending: dict[tuple[str, int], tuple[str, dict[str, Any]]] = {}
        self._native: dict[str, int] = {self._custody: PLATFORM_NATIVE}  # wei per address
        self._logs: list[TransferLog] = []  # Transfer events, in chain order
        self.auto_mine = auto_mine
        self._closed = False
        self.sent: list[str] = []  # every hash accepted by send_raw_transaction, in order

    # -- transactions ----------------------------------------------------------------------

    async def prepare_platform_step(
        self, step: str, created: Mapping[str, str]
    ) -> PreparedTransaction:
        self._check_open()
        if step not in PLATFORM_STEPS:
            raise ChainError(f"unknown platform step {step!r}")
        if step in PLATFORM_CONTRACTS:
            return self._prepare({"op": "deploy", "kind": PLATFORM_CONTRACTS[step].value})
        module = _created(created, "country_module")
        return self._prepare({"op": "call", "to": module, "fn": "module.init", "args": []})

    async def prepare_suite_step(
        self, spec: SuiteSpec, step: str, created: Mapping[str, str]
    ) -> PreparedTransaction:
        self._check_open()
        check_spec(spec)
        if step not in suite_steps(spec):
            raise ChainError(f"{step!r} is not a step of this suite")
        return self._prepare(self._suite_body(spec, step, created))

    async def prepare_token_call(self, call: TokenCall) -> PreparedTransaction:
        self._check_open()
        token = checksum_address(call.token, "token")
        args: list[Any]
        if call.kind in (TokenCallKind.PAUSE, TokenCallKind.UNPAUSE):
            args = []
        elif call.kind is TokenCallKind.FORCED_TRANSFER:
            sender, receiver = distinct(call)
            args = [sender, receiver, str(check_amount(call.amount))]
        elif call.kind in (TokenCallKind.FREEZE, TokenCallKind.UNFREEZE):
            args = [_account(call)]
        else:
            args = [_account(call), str(check_amount(call.amount))]
        return self._prepare({"op": "call", "to": token, "fn": f"token.{call.kind}", "args": args})

    async def prepare_batch_forced_transfer(
        self, token: str, transfers: Sequence[ForcedTransfer]
    ) -> PreparedTransaction:
        self._check_open()
        address = checksum_address(token, "token")
        args = [[s, r, str(a)] for s, r, a in batch_lines(transfers)]
        return self._prepare(
            {"op": "call", "to": address, "fn": "token.batch_forced_transfer", "args": args}
        )

    async def prepare_identity_call(self, call: IdentityCall) -> PreparedTransaction:
        self._check_open()
        if call.kind is IdentityCallKind.DEPLOY:
            return self._prepare({"op": "deploy", "kind": TrexContract.IDENTITY.value})
        if call.kind in (IdentityCallKind.ADD_CLAIM, IdentityCallKind.REMOVE_CLAIM):
            identity = checksum_address(_needed(call.identity, "identity"), "identity")
            issuer = checksum_address(_needed(call.claim_issuer, "claim issuer"), "claim issuer")
            fn = "identity.claim" if call.kind is IdentityCallKind.ADD_CLAIM else "identity.unclaim"
            return self._prepare(
                {"op": "call", "to": identity, "fn": fn, "args": [issuer, int(call.topic)]}
            )
        token = self._token(_needed(call.token, "token"))
        if "registry" not in token:
            raise ChainError(f"{call.token} is not a T-REX token")
        holder = checksum_address(_needed(call.holder, "holder"), "holder")
        args: list[Any] = [holder]
        if call.kind is IdentityCallKind.REGISTER:
            identity = checksum_address(_needed(call.identity, "identity"), "identity")
            args = [holder, identity, country_number(_needed(call.country, "country"))]
        elif call.kind is IdentityCallKind.UPDATE_COUNTRY:
            args = [holder, country_number(_needed(call.country, "country"))]
        fn = {
            IdentityCallKind.REGISTER: "registry.register",
            IdentityCallKind.UPDATE_COUNTRY: "registry.update_country",
            IdentityCallKind.DELETE: "registry.delete",
        }[call.kind]
        return self._prepare({"op": "call", "to": token["registry"], "fn": fn, "args": args})

    async def prepare_stablecoin(self, name: str, symbol: str) -> PreparedTransaction:
        self._check_open()
        if not name or not symbol:
            raise ChainError("stablecoin name and symbol must not be empty")
        return self._prepare({"op": "deploy", "kind": "Stablecoin", "args": [name, symbol]})

    def _next_nonce(self, signer: str) -> int:
        return self._nonces.get(signer, 0) + sum(1 for s, _ in self._pending if s == signer)

    def _prepare(
        self, body: dict[str, Any], signer: TransactionSigner | None = None
    ) -> PreparedTransaction:
        sender = self._custody if signer is None else checksum_address(signer.address, "signer")
        nonce = self._next_nonce(sender)
        body = {**body, "chainId": MEMORY_CHAIN_ID, "from": sender, "nonce": nonce}
        # like estimating gas: run it on a copy of the state as it will be once the pending
        # transactions are mined; a revert is refused before anything is signed
        trial = copy.deepcopy(self._contracts)
        for _, pending in self._pending.values():
            with contextlib.suppress(ChainError):
                self._execute(trial, pending)
        try:
            self._execute(trial, body)
        except _Revert as exc:
            raise ChainError(f"transaction reverted: {exc}") from None
        text = json.dumps(body, sort_keys=True)
        if signer is not None:  # only the key's holder can sign for its address
            text = json.dumps({**body, "signature": signer.sign_message(text)}, sort_keys=True)
        raw = _MARKER + text.encode()
        creation = body["op"] == "deploy"
        return PreparedTransaction(
            transaction=SignedTransaction(
                signer=sender,
                nonce=nonce,
                tx_hash="0x" + keccak(raw).hex(),
                raw_transaction="0x" + raw.hex(),
                chain_id=MEMORY_CHAIN_ID,
            ),
            contract_address=create_address(self._custody, nonce) if creation else None,
        )

    def _suite_body(self, spec: SuiteSpec, step: str, created: Mapping[str, str]) -> dict[str, Any]:
        if step in SUITE_CONTRACTS:
            return {"op": "deploy", "kind": SUITE_CONTRACTS[step].value}
        head, _, arg = step.partition(":")
        owner, _, _ = head.partition(".")
        target = _created(created, "token" if owner == "token" else owner)
        args: list[Any] = []
        platform = self._custody
        issuer = checksum_address(spec.issuer, "issuer")
        match head:
            case "topics.add":
                args = [int(arg)]
            case "issuers.trust":
                args = [spec.platform.claim_issuer, list(spec.claim_topics)]
            case "registry.init":
                args = [_created(created, s) for s in ("issuers", "topics", "storage")]
            case "storage.bind":
                args = [_created(created, "registry")]
            case "compliance.add_module":
                args = [spec.platform.country_module]
            case "compliance.allow_countries":
                countries = [country_number(c) for c in spec.allowed_countries]
                args = [spec.platform.country_module, countries]
            case "token.init":
                args = [
                    _created(created, "registry"),
                    _created(created, "compliance"),
                    spec.name,
                    spec.symbol,
                    spec.decimals,
                ]
            case "token.agent" | "registry.agent":
                args = [platform]
            case "registry.register":
                identity = _created(created, "identity")
                args = [issuer, identity, country_number(spec.issuer_country)]
            case "identity.claim":
                args = [spec.platform.claim_issuer, int(arg)]
            case "token.mint":
                args = [issuer, str(check_amount(spec.supply, "supply"))]
        return {"op": "call", "to": target, "fn": head, "args": args}

    # -- the contracts' rules ------------------------------------------------------------------

    def _execute(self, contracts: dict[str, _Contract], body: dict[str, Any]) -> str | None:
        """Apply one transaction to ``contracts``; the created address, if any. ``_Revert``
        (leaving ``contracts`` as it was) when the contract would revert. Native coin moves
        when the transaction is mined (``mine``), not here."""
        if body["op"] == "value":
            return None
        if body["op"] == "deploy":
            address = create_address(self._custody, int(body["nonce"]))
            kind = str(body["kind"])
            state: dict[str, Any] = {"self": address, "owner": self._custody}
            if kind == "Stablecoin":
                name, symbol = body["args"]
                state.update(name=name, symbol=symbol, decimals=STABLECOIN_DECIMALS)
                state.update(balances={}, total=0)
            contracts[address] = _Contract(kind, state)
            return address
        target = contracts.get(str(body["to"]))
        if target is None:
            raise _revert(f"no contract at {body['to']}")
        fn, args = str(body["fn"]), list(body["args"])
        trial = copy.deepcopy(target.state)
        self._call(contracts, target.kind, trial, fn, args, str(body["from"]))
        target.state = trial
        return None

    def _call(
        self,
        contracts: dict[str, _Contract],
        kind: str,
        st: dict[str, Any],
        fn: str,
        args: list[Any],
        sender: str,
    ) -> None:
        name = fn.partition(".")[2]
        if name == "init" or name == "initialize":
            if st.get("initialized"):
                raise _revert("Initializable: contract is already initialized")
            st["initialized"] = True
        match fn:
            case "storage.init" | "topics.init" | "issuers.init" | "compliance.init":
                return
            case "module.init":
                st["allowed"] = {}
                return
            case "topics.add":
                st.setdefault("topics", []).append(int(args[0]))
            case "issuers.trust":
                st.setdefault("trusted", {})[args[0]] = list(args[1])
            case "registry.init":
                st.update(issuers=args[0], topics=args[1], storage=args[2], identities={})
            case "storage.bind":
                st["registry"] = args[0]
            case "compliance.add_module":
                st.setdefault("modules", []).append(args[0])
            case "compliance.allow_countries":
                module = contracts[args[0]].state
                if args[0] not in st.get("modules", []):
                    raise _revert("module not bound")
                module.setdefault("allowed", {}).setdefault(str(st["self"]), [])
                module["allowed"][str(st["self"])] += list(args[1])
            case "token.init":
                registry, compliance, name_, symbol, decimals = args
                st.update(registry=registry, compliance=compliance, name=name_, symbol=symbol)
                st.update(decimals=int(decimals), paused=True, balances={}, frozen=[], total=0)
                contracts[compliance].state["token"] = str(st["self"])
            case "token.agent" | "registry.agent":
                st.setdefault("agents", []).append(args[0])
            case "registry.register":
                self._agent(st)
                user, identity, country = args
                if user in st["identities"]:
                    raise _revert("address stored already")
                st["identities"][user] = [identity, int(country)]
            case "identity.claim":  # a claim of the same issuer and topic is replaced
                claims = [c for c in st.get("claims", []) if c != [args[0], int(args[1])]]
                st["claims"] = [*claims, [args[0], int(args[1])]]
            case "identity.unclaim":
                if [args[0], int(args[1])] not in st.get("claims", []):
                    raise _revert("NonExisting: There is no claim with this ID")
                st["claims"] = [c for c in st["claims"] if c != [args[0], int(args[1])]]
            case "registry.update_country" | "registry.delete":
                self._agent(st)
                if args[0] not in st["identities"]:
                    raise _revert("address not stored yet")
                if fn == "registry.delete":
                    del st["identities"][args[0]]
                else:
                    st["identities"][args[0]][1] = int(args[1])
            case _:
                self._token_call(contracts, st, fn, args, sender)

    def _token_call(
        self,
        contracts: dict[str, _Contract],
        st: dict[str, Any],
        fn: str,
        args: list[Any],
        sender: str,
    ) -> None:
        if fn == "token.transfer" and "registry" in st:
            self._receivable(contracts, st, args[0])
        if fn == "token.transfer" or ("registry" not in st and "balances" in st):
            self._erc20_call(st, fn, args, sender)
            return
        if "registry" not in st or "balances" not in st:
            raise _revert(f"{fn} is not a function of this contract")
        self._agent(st)
        balances: dict[str, int] = {k: int(v) for k, v in st["balances"].items()}
        match fn:
            case "token.pause":
                if st["paused"]:
                    raise _revert("Pausable: paused")
                st["paused"] = True
                return
            case "token.unpause":
                if not st["paused"]:
                    raise _revert("Pausable: not paused")
                st["paused"] = False
                return
            case "token.freeze" | "token.unfreeze":
                frozen = set(st["frozen"]) - {args[0]}
                st["frozen"] = sorted(frozen | ({args[0]} if fn == "token.freeze" else set()))
                return
            case "token.mint":
                to, amount = args[0], int(args[1])
                self._receivable(contracts, st, to)
                balances[to] = balances.get(to, 0) + amount
                st["total"] = int(st["total"]) + amount
                self._log(st, ZERO_ADDRESS, to, amount)
            case "token.burn":
                holder, amount = args[0], int(args[1])
                if balances.get(holder, 0) < amount:
                    raise _revert("cannot burn more than balance")
                balances[holder] -= amount
                st["total"] = int(st["total"]) - amount
                self._log(st, holder, ZERO_ADDRESS, amount)
            case "token.forced_transfer":
                sender, to, amount = args[0], args[1], int(args[2])
                if balances.get(sender, 0) < amount:
                    raise _revert("sender balance too low")
                self._receivable(contracts, st, to)
                balances[sender] -= amount
                balances[to] = balances.get(to, 0) + amount
                self._log(st, sender, to, amount)
            case "token.batch_forced_transfer":  # all lines or none, in order
                moves = []
                for sender, to, text in args:
                    amount = int(text)
                    if balances.get(sender, 0) < amount:
                        raise _revert("sender balance too low")
                    self._receivable(contracts, st, to)
                    balances[sender] -= amount
                    balances[to] = balances.get(to, 0) + amount
                    moves.append((sender, to, amount))
                for sender, to, amount in moves:
                    self._log(st, sender, to, amount)
            case _:
                raise _revert(f"{fn} is not a function of this contract")
        st["balances"] = {k: str(v) for k, v in balances.items()}

    def _erc20_call(self, st: dict[str, Any], fn: str, args: list[Any], sender: str) -> None:
        """The stablecoin's owner ``mint``, and a plain ``transfer`` from the sender's own
        address (on a T-REX token too, where the receiver must be verified)."""
        if "balances" not in st:
            raise _revert(f"{fn} is not a function of this contract")
        balances: dict[str, int] = {k: int(v) for k, v in st["balances"].items()}
        to, amount = args[0], int(args[1])
        if fn == "token.mint":
            if st.get("owner") != self._custody:
                raise _revert("OwnableUnauthorizedAccount")
            balances[to] = balances.get(to, 0) + amount
            st["total"] = int(st["total"]) + amount
        elif fn == "token.transfer":
            if st.get("paused"):
                raise _revert("Pausable: paused")
            if balances.get(sender, 0) < amount:
                raise _revert("ERC20InsufficientBalance")
            balances[sender] -= amount
            balances[to] = balances.get(to, 0) + amount
        else:
            raise _revert(f"{fn} is not a function of this contract")
        st["balances"] = {k: str(v) for k, v in balances.items()}
        self._log(st, sender if fn == "token.transfer" else ZERO_ADDRESS, to, amount)

    def _log(self, st: dict[str, Any], sender: str, receiver: str, amount: int) -> None:
        """A Transfer event of the transaction being executed (numbered when mined)."""
        st.setdefault(_EMITTED, []).append([sender, receiver, str(amount)])

    def _agent(self, st: dict[str, Any]) -> None:
        if self._custody not in st.get("agents", []):
            raise _revert("AgentRole: caller does not have the Agent role")

    def _receivable(self, contracts: dict[str, _Contract], token: dict[str, Any], to: str) -> None:
        registry = contracts[token["registry"]].state
        if not self._verified(contracts, registry, to):
            raise _revert("Identity is not verified.")
        compliance = contracts[token["compliance"]].state
        country = int(registry["identities"][to][1])
        for module in compliance.get("modules", []):
            allowed = contracts[module].state.get("allowed", {}).get(token["compliance"], [])
            if country not in allowed:
                raise _revert("Compliance not followed")

    def _verified(self, contracts: dict[str, _Contract], registry: dict[str, Any], to: str) -> bool:
        entry = registry.get("identities", {}).get(to)
        if entry is None:
            return False
        claims = contracts[entry[0]].state.get("claims", [])
        topics = contracts[registry["topics"]].state.get("topics", [])
        trusted: dict[str, list[int]] = contracts[registry["issuers"]].state.get("trusted", {})
        return all(
            any(topic in trusted.get(issuer, []) and t == topic for issuer, t in claims)
            for topic in topics
        )

    async def send_raw_transaction(self, raw_transaction: str) -> str:
        self._check_open()
        raw = _decode_raw(raw_transaction)
        tx_hash = "0x" + keccak(raw).hex()
        if tx_hash in self._mined or any(h == tx_hash for h, _ in self._pending.values()):
            return tx_hash
        try:
            body = json.loads(raw[len(_MARKER) :])
            nonce = int(body["nonce"])
            sender = str(body["from"])
        except (ValueError, KeyError, TypeError):
            raise ChainError("cannot decode the raw transaction") from None
        if body.get("chainId") != MEMORY_CHAIN_ID:
            raise ChainError("the raw transaction is for another chain")
        self._check_signature(body, sender)
        expected = self._next_nonce(sender)
        if nonce < expected:
            raise ChainError(f"nonce too low: {nonce}, the signer's next nonce is {expected}")
        if nonce > expected:
            raise ChainError(f"nonce gap: {nonce}, the signer's next nonce is {expected}")
        cost = _fee(sender, self._custody) + int(body.get("value", 0))
        if self._native.get(sender, 0) < cost:
            raise ChainError(
                f"insufficient funds for gas * price + value: {sender} has "
                f"{self._native.get(sender, 0)}, needs {cost}"
            )
        self._pending[(sender, nonce)] = (tx_hash, body)
        self.sent.append(tx_hash)
        if self.auto_mine:
            self.mine()
        return tx_hash

    def _check_signature(self, body: dict[str, Any], sender: str) -> None:
        """The platform's transactions are this adapter's own; any other address's must carry
        its key's signature of the transaction (``TransactionSigner.sign_message``)."""
        signature = body.pop("signature", None)
        if sender == self._custody:
            if signature is not None:
                raise ChainError("the raw transaction is for another chain or signer")
            return
        text = json.dumps(body, sort_keys=True)
        try:
            recovered = Account.recover_message(encode_defunct(text=text), signature=signature)
        except Exception:
            recovered = None
        if recovered != sender:
            raise ChainError(f"the raw transaction is not signed by {sender}")

    def _next_ready(self) -> tuple[str, int] | None:
        """The first pending transaction (in send order) whose nonce is its signer's next."""
        for signer, nonce in self._pending:
            if nonce == self._nonces.get(signer, 0):
                return signer, nonce
        return None

    def mine(self) -> int:
        """Mine every pending transaction that can be, one block each; how many were mined.
        A transaction the contracts refuse now is mined with status 0 (its nonce is used,
        its gas paid)."""
        count = 0
        while (ready := self._next_ready()) is not None:
            tx_hash, body = self._pending.pop(ready)
            signer = ready[0]
            self._nonces[signer] = ready[1] + 1
            self._block += 1
            value = int(body.get("value", 0))
            funds = self._native.get(signer, 0) - _fee(signer, self._custody)
            try:
                if funds < value:
                    raise _revert("insufficient funds")
                address = self._execute(self._contracts, body)
                receipt = TransactionReceipt(tx_hash, self._block, True, address)
                if value:
                    funds -= value
                    to = str(body["to"])
                    self._native[to] = self._native.get(to, 0) + value
            except ChainError:
                receipt = TransactionReceipt(tx_hash, self._block, False, None)
            self._native[signer] = max(funds, 0)
            for token, contract in self._contracts.items():
                for index, (sender, receiver, amount) in enumerate(
                    contract.state.pop(_EMITTED, [])
                ):
                    self._logs.append(
                        TransferLog(
                            token=token,
                            sender=sender,
                            receiver=receiver,
                            amount=int(amount),
                            tx_hash=tx_hash,
                            log_index=index,
                            block_number=self._block,
                        )
                    )
            self._mined[tx_hash] = receipt
            count += 1
        return count

    def drop_pending(self) -> int:
        """Forget pending transactions, as a node restarted without its mempool would."""
        count = len(self._pending)
        self._pending.clear()
        return count

    async def transaction_receipt(self, tx_hash: str) -> TransactionReceipt | None:
        self._check_open()
        return self._mined.get(_check_hash(tx_hash))

    async def wait_for_receipt(self, tx_hash: str) -> TransactionReceipt:
        receipt = await self.transaction_receipt(tx_hash)
        if receipt is None:  # nothing mines while we wait: there is no other actor
            raise ChainError(f"no receipt for {tx_hash}")
        return receipt

    async def confirmed_nonce(self, address: str) -> int:
        self._check_open()
        return self._nonces.get(checksum_address(address), 0)

    async def prepare_native_transfer(self, receiver: str, value: int) -> PreparedTransaction:
        self._check_open()
        to = checksum_address(receiver, "receiver")
        amount = check_amount(value, "value")
        if self._native.get(self._custody, 0) < amount + sum(
            int(b.get("value", 0)) for s, b in self._pending.values()
        ):
            raise ChainError("insufficient funds for the transfer")
        return self._prepare({"op": "value", "to": to, "value": str(amount)})

    async def prepare_custodial_transfer(
        self, signer: TransactionSigner, token: str, receiver: str, amount: int
    ) -> PreparedTransaction:
        self._check_open()
        contract = checksum_address(token, "token")
        to = checksum_address(receiver, "receiver")
        units = check_amount(amount)
        sender = checksum_address(signer.address, "signer")
        if self._native.get(sender, 0) < CUSTODIAL_TRANSFER_GAS * GAS_PRICE:
            raise ChainError(
                f"{sender} holds {self._native.get(sender, 0)} wei of native coin, its "
                f"transfer needs {CUSTODIAL_TRANSFER_GAS * GAS_PRICE} for gas"
            )
        body = {"op": "call", "to": contract, "fn": "token.transfer", "args": [to, str(units)]}
        return self._prepare(body, signer)

    async def custodial_transfer_fee(
        self, token: str, sender: str, receiver: str, amount: int
    ) -> int:
        self._check_open()
        for address, what in ((token, "token"), (sender, "sender"), (receiver, "receiver")):
            checksum_address(address, what)
        check_amount(amount)
        return CUSTODIAL_TRANSFER_GAS * GAS_PRICE * FEE_HEADROOM_PERCENT // 100

    async def native_balance(self, address: str) -> int:
        self._check_open()
        return self._native.get(checksum_address(address), 0)

    # -- reads -----------------------------------------------------------------------------

    async def code_at(self, address: str) -> bytes:
        self._check_open()
        found = self._contracts.get(checksum_address(address))
        if found is None:
            return b""
        if found.kind == "Stablecoin":
            return stablecoin_artifact().runtime_code
        return trex_artifact(TrexContract(found.kind)).runtime_code

    async def transfer_logs(
        self, token_address: str, from_block: int, to_block: int, receivers: frozenset[str]
    ) -> list[TransferLog]:
        self._check_open()
        token = checksum_address(token_address, "token address")
        wanted = {checksum_address(r, "receiver") for r in receivers}
        return [
            log
            for log in self._logs
            if log.token == token
            and from_block <= log.block_number <= to_block
            and log.receiver in wanted
        ]

    async def total_supply(self, token_address: str) -> int:
        return int(self._token(token_address)["total"])

    async def balance_of(self, token_address: str, holder: str) -> int:
        balances = self._token(token_address)["balances"]
        return int(balances.get(checksum_address(holder, "holder"), 0))

    async def token_metadata(self, token_address: str) -> TokenMetadata:
        st = self._token(token_address)
        return TokenMetadata(name=st["name"], symbol=st["symbol"], decimals=int(st["decimals"]))

    async def is_paused(self, token_address: str) -> bool:
        st = self._token(token_address)
        if "paused" not in st:
            raise ChainError(f"{token_address} is not a T-REX token")
        return bool(st["paused"])

    async def is_verified(self, token_address: str, holder: str) -> bool:
        st = self._token(token_address)
        if "registry" not in st:
            raise ChainError(f"{token_address} is not a T-REX token")
        registry = self._contracts[st["registry"]].state
        return self._verified(self._contracts, registry, checksum_address(holder, "holder"))

    async def registered_identity(
        self, token_address: str, holder: str
    ) -> RegisteredIdentity | None:
        st = self._token(token_address)
        if "registry" not in st:
            raise ChainError(f"{token_address} is not a T-REX token")
        registry = self._contracts[st["registry"]].state
        entry = registry.get("identities", {}).get(checksum_address(holder, "holder"))
        if entry is None:
            return None
        return RegisteredIdentity(identity=entry[0], country=country_alpha2(int(entry[1])))

    async def has_claim(self, identity: str, claim_issuer: str, topic: int) -> bool:
        self._check_open()
        found = self._contracts.get(checksum_address(identity, "identity"))
        if found is None:
            return False
        wanted = [checksum_address(claim_issuer, "claim issuer"), int(topic)]
        return wanted in found.state.get("claims", [])

    async def custody_address(self) -> str:
        self._check_open()
        return self._custody

    async def block_number(self) -> int:
        self._check_open()
        return self._block

    async def close(self) -> None:
        self._closed = True

    def _token(self, address: str) -> dict[str, Any]:
        self._check_open()
        found = self._contracts.get(checksum_address(address, "token address"))
        if found is None or "balances" not in found.state:
            raise ChainError(f"no token contract at {address}")
        return found.state

    def _check_open(self) -> None:
        if self._closed:
            raise ChainError("chain adapter is closed")


def _created(created: Mapping[str, str], step: str) -> str:
    address = created.get(step)
    if address is None:
        raise ChainError(f"step {step!r} has not created its contract yet")
    return checksum_address(address, step)


def _needed(value: str | None, what: str) -> str:
    if value is None:
        raise ChainError(f"this identity call needs its {what}")
    return value


def _account(call: TokenCall) -> str:
    if call.account is None:
        raise ChainError(f"a {call.kind.value} needs an account")
    return checksum_address(call.account, "account")


def _decode_raw(raw_transaction: str) -> bytes:
    text = raw_transaction if isinstance(raw_transaction, str) else ""
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if not text.startswith("0x") or not raw.startswith(_MARKER):
        raise ChainError("cannot decode the raw transaction")
    return raw


def _check_hash(tx_hash: str) -> str:
    text = tx_hash if isinstance(tx_hash, str) else ""
    try:
        valid = len(text) == 66 and text.startswith("0x") and bool(bytes.fromhex(text[2:]))
    except ValueError:
        valid = False
    if not valid:
        raise ChainError(f"invalid transaction hash: {tx_hash!r}")
    return text.lower()
