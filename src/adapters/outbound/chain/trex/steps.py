"""The web3 call behind each named step of the Chain port (``core.ports.chain``).

``suite_call`` turns one of ``suite_steps(spec)`` into the constructor or function call the
platform signs, wiring the contracts created by the steps before it (``created``: step name
to address); ``platform_call`` does the same for ``PLATFORM_STEPS``, ``token_call`` for an
agent function of a deployed token. The wiring is the one ``suite.TrexDeployer`` performs
synchronously (no proxies, no factory: every contract deployed from its packaged artifact
and set up with its own ``init``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pycountry
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction

from adapters.outbound.chain.trex.artifacts import TrexContract, stablecoin_artifact, trex_artifact
from adapters.outbound.chain.trex.claims import ECDSA_SCHEME, claim_id, sign_claim
from adapters.outbound.chain.trex.suite import contract_at
from adapters.outbound.chain.validation import MAX_UINT256, ZERO_ADDRESS, checksum_address
from core.ports.chain import (
    MAX_TOKEN_DECIMALS,
    PLATFORM_STEPS,
    IdentityCall,
    IdentityCallKind,
    SuiteSpec,
    TokenCall,
    TokenCallKind,
    suite_steps,
)
from core.shared.errors import ChainError

Call = ContractFunction | ContractConstructor

# Which contract each creating step deploys.
SUITE_CONTRACTS: dict[str, TrexContract] = {
    "storage": TrexContract.IDENTITY_REGISTRY_STORAGE,
    "topics": TrexContract.CLAIM_TOPICS_REGISTRY,
    "issuers": TrexContract.TRUSTED_ISSUERS_REGISTRY,
    "registry": TrexContract.IDENTITY_REGISTRY,
    "compliance": TrexContract.MODULAR_COMPLIANCE,
    "token": TrexContract.TOKEN,
    "identity": TrexContract.IDENTITY,
}
PLATFORM_CONTRACTS: dict[str, TrexContract] = {
    "claim_issuer": TrexContract.CLAIM_ISSUER,
    "country_module": TrexContract.COUNTRY_ALLOW_MODULE,
}


def country_number(alpha2: str) -> int:
    """The ISO 3166-1 numeric code T-REX registries store for an alpha-2 code."""
    country = pycountry.countries.get(alpha_2=alpha2) if isinstance(alpha2, str) else None
    if country is None or len(alpha2) != 2:
        raise ChainError(f"{alpha2!r} is not an ISO 3166-1 alpha-2 country code")
    return int(country.numeric)


def country_alpha2(number: int) -> str:
    """The alpha-2 code of an ISO 3166-1 numeric code (``ChainError`` for an unknown one)."""
    country = pycountry.countries.get(numeric=f"{number:03d}")
    if country is None:
        raise ChainError(f"{number} is not an ISO 3166-1 numeric country code")
    return str(country.alpha_2)


def check_spec(spec: SuiteSpec) -> None:
    """Refuse, before anything is signed, what a T-REX suite cannot represent."""
    if not spec.name or not spec.symbol:
        raise ChainError("token name and symbol must not be empty")
    if isinstance(spec.decimals, bool) or not 0 <= spec.decimals <= MAX_TOKEN_DECIMALS:
        raise ChainError(f"a T-REX token has 0 to {MAX_TOKEN_DECIMALS} decimals")
    check_amount(spec.supply, "supply")
    checksum_address(spec.issuer, "issuer address")
    country_number(spec.issuer_country)
    for country in spec.allowed_countries:
        country_number(country)
    if spec.allowed_countries and spec.issuer_country not in spec.allowed_countries:
        raise ChainError(f"the issuer's country {spec.issuer_country} is not allowed")


def check_amount(amount: int, what: str = "amount") -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_UINT256:
        raise ChainError(f"{what} {amount!r} must be an integer in 1 .. 2**256 - 1")
    return amount


def _created(created: Mapping[str, str], step: str) -> str:
    address = created.get(step)
    if address is None:
        raise ChainError(f"step {step!r} has not created its contract yet")
    return checksum_address(address, step)


def _deploy(w3: Web3, contract: TrexContract, *args: object) -> ContractConstructor:
    artifact = trex_artifact(contract)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=HexBytes(artifact.bytecode))
    return factory.constructor(*args)


def platform_call(w3: Web3, platform: str, step: str, created: Mapping[str, str]) -> Call:
    if step == "claim_issuer":
        return _deploy(w3, TrexContract.CLAIM_ISSUER, platform)
    if step == "country_module":
        return _deploy(w3, TrexContract.COUNTRY_ALLOW_MODULE)
    if step == "country_module.init":
        module = _created(created, "country_module")
        return contract_at(w3, TrexContract.COUNTRY_ALLOW_MODULE, module).functions.initialize()
    raise ChainError(f"unknown platform step {step!r} (known: {', '.join(PLATFORM_STEPS)})")


def suite_call(
    w3: Web3,
    platform: str,
    claim_signer: LocalAccount,
    spec: SuiteSpec,
    step: str,
    created: Mapping[str, str],
) -> Call:
    """The call of ``step``; ``ChainError`` for an unknown step or a missing contract."""
    check_spec(spec)
    if step not in suite_steps(spec):
        raise ChainError(f"{step!r} is not a step of this suite")
    if step in SUITE_CONTRACTS:
        if step == "identity":  # the platform holds its management key
            return _deploy(w3, TrexContract.IDENTITY, platform, False)
        return _deploy(w3, SUITE_CONTRACTS[step])

    def contract(name: str) -> Any:
        return contract_at(w3, SUITE_CONTRACTS[name], _created(created, name)).functions

    claim_issuer = checksum_address(spec.platform.claim_issuer, "claim issuer")
    issuer = checksum_address(spec.issuer, "issuer address")
    head, _, arg = step.partition(":")
    call: ContractFunction
    match head:
        case "storage.init":
            call = contract("storage").init()
        case "topics.init":
            call = contract("topics").init()
        case "topics.add":
            call = contract("topics").addClaimTopic(int(arg))
        case "issuers.init":
            call = contract("issuers").init()
        case "issuers.trust":
            call = contract("issuers").addTrustedIssuer(claim_issuer, list(spec.claim_topics))
        case "registry.init":
            call = contract("registry").init(
                _created(created, "issuers"),
                _created(created, "topics"),
                _created(created, "storage"),
            )
        case "storage.bind":
            call = contract("storage").bindIdentityRegistry(_created(created, "registry"))
        case "compliance.init":
            call = contract("compliance").init()
        case "compliance.add_module":
            module = checksum_address(spec.platform.country_module, "country module")
            call = contract("compliance").addModule(module)
        case "compliance.allow_countries":
            module = checksum_address(spec.platform.country_module, "country module")
            countries = [country_number(c) for c in spec.allowed_countries]
            module_c = contract_at(w3, TrexContract.COUNTRY_ALLOW_MODULE, module)
            data = module_c.encode_abi("batchAllowCountries", [countries])
            call = contract("compliance").callModuleFunction(HexBytes(data), module)
        case "token.init":
            call = contract("token").init(
                _created(created, "registry"),
                _created(created, "compliance"),
                spec.name,
                spec.symbol,
                spec.decimals,
                ZERO_ADDRESS,
            )
        case "token.agent":
            call = contract("token").addAgent(platform)
        case "registry.agent":
            call = contract("registry").addAgent(platform)
        case "registry.register":
            call = contract("registry").registerIdentity(
                issuer, _created(created, "identity"), country_number(spec.issuer_country)
            )
        case "identity.claim":
            identity = _created(created, "identity")
            topic = int(arg)
            signature = sign_claim(claim_signer, identity, topic, b"")
            call = contract("identity").addClaim(
                topic, ECDSA_SCHEME, claim_issuer, signature, b"", ""
            )
        case "token.mint":
            call = contract("token").mint(issuer, check_amount(spec.supply, "supply"))
        case "token.unpause":
            call = contract("token").unpause()
        case _:  # pragma: no cover - suite_steps and this match are kept in step
            raise ChainError(f"no call for step {step!r}")
    return call


def token_call(w3: Web3, call: TokenCall) -> ContractFunction:
    """The agent function of ``call``; ``ChainError`` for a refused input (see ``TokenCall``)."""
    functions = contract_at(w3, TrexContract.TOKEN, checksum_address(call.token, "token")).functions
    match call.kind:
        case TokenCallKind.PAUSE:
            return functions.pause()
        case TokenCallKind.UNPAUSE:
            return functions.unpause()
        case TokenCallKind.MINT:
            return functions.mint(_account(call), check_amount(call.amount))
        case TokenCallKind.BURN:
            return functions.burn(_account(call), check_amount(call.amount))
        case TokenCallKind.FREEZE | TokenCallKind.UNFREEZE:
            return functions.setAddressFrozen(_account(call), call.kind is TokenCallKind.FREEZE)
        case TokenCallKind.FORCED_TRANSFER:
            sender, receiver = distinct(call)
            return functions.forcedTransfer(sender, receiver, check_amount(call.amount))
        case TokenCallKind.TRANSFER:  # ERC-20 transfer(address,uint256): T-REX and the stablecoin
            return functions.transfer(_account(call), check_amount(call.amount))
    raise ChainError(f"unknown token call {call.kind!r}")  # pragma: no cover


def identity_call(w3: Web3, platform: str, claim_signer: LocalAccount, call: IdentityCall) -> Call:
    """The call behind an ``IdentityCall``; ``ChainError`` when one of its inputs is missing."""
    if call.kind is IdentityCallKind.DEPLOY:  # the platform holds its management key
        return _deploy(w3, TrexContract.IDENTITY, platform, False)
    if call.kind in (IdentityCallKind.ADD_CLAIM, IdentityCallKind.REMOVE_CLAIM):
        identity = checksum_address(_needed(call.identity, "identity"), "identity")
        issuer = checksum_address(_needed(call.claim_issuer, "claim issuer"), "claim issuer")
        contract = contract_at(w3, TrexContract.IDENTITY, identity).functions
        if call.kind is IdentityCallKind.REMOVE_CLAIM:
            return contract.removeClaim(claim_id(issuer, call.topic))
        signature = sign_claim(claim_signer, identity, call.topic, b"")
        return contract.addClaim(call.topic, ECDSA_SCHEME, issuer, signature, b"", "")
    token = checksum_address(_needed(call.token, "token"), "token")
    holder = checksum_address(_needed(call.holder, "holder"), "holder")
    registry_address = (
        contract_at(w3, TrexContract.TOKEN, token).functions.identityRegistry().call()
    )
    registry = contract_at(w3, TrexContract.IDENTITY_REGISTRY, registry_address).functions
    match call.kind:
        case IdentityCallKind.REGISTER:
            identity = checksum_address(_needed(call.identity, "identity"), "identity")
            country = country_number(_needed(call.country, "country"))
            return registry.registerIdentity(holder, identity, country)
        case IdentityCallKind.UPDATE_COUNTRY:
            return registry.updateCountry(holder, country_number(_needed(call.country, "country")))
        case IdentityCallKind.DELETE:
            return registry.deleteIdentity(holder)
    raise ChainError(f"unknown identity call {call.kind!r}")  # pragma: no cover


def _needed(value: str | None, what: str) -> str:
    if value is None:
        raise ChainError(f"this identity call needs its {what}")
    return value


def _account(call: TokenCall) -> str:
    if call.account is None:
        raise ChainError(f"a {call.kind.value} needs an account")
    return checksum_address(call.account, "account")


def distinct(call: TokenCall) -> tuple[str, str]:
    """Sender and receiver of a forced transfer; ``ChainError`` when they are the same."""
    sender = _account(call)
    if call.receiver is None:
        raise ChainError("a forced transfer needs a receiver")
    receiver = checksum_address(call.receiver, "receiver")
    if sender == receiver:
        raise ChainError(f"forced transfer from {sender} to itself refused")
    return sender, receiver


def stablecoin_constructor(w3: Web3, name: str, symbol: str, owner: str) -> ContractConstructor:
    if not name or not symbol:
        raise ChainError("stablecoin name and symbol must not be empty")
    artifact = stablecoin_artifact()
    factory = w3.eth.contract(abi=artifact.abi, bytecode=HexBytes(artifact.bytecode))
    return factory.constructor(name, symbol, checksum_address(owner, "owner"))
