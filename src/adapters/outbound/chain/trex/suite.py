"""Deploy one market's ERC-3643 (T-REX 4.1) suite with the platform's key, synchronously.

Each contract is deployed directly from the packaged implementation artifact and set up with
its own ``init(...)`` (no proxies, no implementation authority, no factory): a market's code
cannot be upgraded under it by whoever holds a shared authority, and there is no
``TREXFactory`` (23.5 kB, one more owner) to deploy and guard. The cost is gas: every market
pays for full contract code instead of small proxies.

Platform-wide contracts are deployed once and shared by every market:
- the platform's ONCHAINID ``ClaimIssuer`` (management key: the platform; claim key: the
  platform or a separate claim signer), trusted for KYC (1) and, when a market requires it,
  accreditation (2);
- one ``CountryAllowModule``: T-REX modules keep their state per compliance contract, so one
  instance serves every market that restricts countries.

Per market, in this order (every step a transaction signed by the platform, which ends up
owner of every contract and agent of the token and the identity registry):
identity registry storage, claim topics registry, trusted issuers registry, identity registry
(bound to the storage), modular compliance (plus the country module and its allow-list), token
(``init`` binds the compliance and leaves the token paused), agents.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from adapters.outbound.chain.trex.artifacts import TrexContract, trex_artifact
from adapters.outbound.chain.trex.claims import (
    ACCREDITATION_TOPIC,
    CLAIM_PURPOSE,
    ECDSA_KEY_TYPE,
    KYC_TOPIC,
    key_of,
)
from adapters.outbound.chain.trex.transactor import Transactor
from adapters.outbound.chain.validation import ZERO_ADDRESS, checksum_address
from core.shared.errors import ChainError, ValidationFailed

TOKEN_DECIMALS = 18
MAX_COUNTRY = 999  # ISO 3166-1 numeric codes are three digits


@attrs.frozen
class MarketTokenSpec:
    """What one market's suite needs to know."""

    name: str
    symbol: str
    accredited_only: bool = False
    # ISO 3166-1 numeric codes; empty: investors from any country may hold the token.
    allowed_countries: tuple[int, ...] = ()
    onchain_id: str = ZERO_ADDRESS  # the token's own ONCHAINID, if the issuer has one

    @property
    def claim_topics(self) -> tuple[int, ...]:
        return (KYC_TOPIC, ACCREDITATION_TOPIC) if self.accredited_only else (KYC_TOPIC,)


@attrs.frozen
class PlatformContracts:
    """Deployed once per chain and reused by every market."""

    claim_issuer: str
    country_allow_module: str


@attrs.frozen
class TrexSuite:
    """The addresses of one market's suite and what deploying it cost."""

    token: str
    identity_registry: str
    identity_registry_storage: str
    claim_topics_registry: str
    trusted_issuers_registry: str
    compliance: str
    country_module: str | None
    claim_issuer: str
    claim_topics: tuple[int, ...]
    gas_used: int
    transactions: int
    first_block: int
    last_block: int


def contract_at(w3: Web3, contract: TrexContract, address: str) -> Contract:
    """A web3 handle on a deployed T-REX / ONCHAINID contract."""
    return w3.eth.contract(address=checksum_address(address), abi=trex_artifact(contract).abi)


def check_countries(countries: Sequence[int]) -> tuple[int, ...]:
    for country in countries:
        if isinstance(country, bool) or not isinstance(country, int):
            raise ValidationFailed(f"country {country!r} is not an ISO 3166-1 numeric code")
        if not 1 <= country <= MAX_COUNTRY:
            raise ValidationFailed(f"country {country} is not an ISO 3166-1 numeric code")
    if len(set(countries)) != len(countries):
        raise ValidationFailed("allowed countries contain duplicates")
    return tuple(countries)


class _Receipts:
    """Totals over the receipts of one multi-transaction operation."""

    def __init__(self) -> None:
        self.gas_used = 0
        self.count = 0
        self.first_block: int | None = None
        self.last_block = 0

    def add(self, receipt: TxReceipt) -> TxReceipt:
        self.gas_used += int(receipt["gasUsed"])
        self.count += 1
        block = int(receipt["blockNumber"])
        if self.first_block is None:
            self.first_block = block
        self.last_block = block
        return receipt


class TrexDeployer:
    """Deploys the platform contracts and market suites, signing with the platform's key."""

    def __init__(self, transactor: Transactor, platform: LocalAccount) -> None:
        self._tx = transactor
        self._w3 = transactor.w3
        self._platform = platform

    @property
    def platform_address(self) -> str:
        return str(self._platform.address)

    def deploy_platform_contracts(self, *, claim_signer: str | None = None) -> PlatformContracts:
        """The ``ClaimIssuer`` and the shared ``CountryAllowModule``.

        ``claim_signer``: an address whose key signs claims, when it is not the platform's
        own key (the platform, as management key, may always sign).
        """
        receipts = _Receipts()
        issuer = self._deploy(TrexContract.CLAIM_ISSUER, receipts, self.platform_address)
        if claim_signer is not None and checksum_address(claim_signer) != self.platform_address:
            call = contract_at(self._w3, TrexContract.CLAIM_ISSUER, issuer).functions.addKey(
                key_of(claim_signer), CLAIM_PURPOSE, ECDSA_KEY_TYPE
            )
            receipts.add(self._send(call, "add the claim signer's key to the claim issuer"))
        module = self._deploy(TrexContract.COUNTRY_ALLOW_MODULE, receipts)
        module_contract = contract_at(self._w3, TrexContract.COUNTRY_ALLOW_MODULE, module)
        receipts.add(self._send(module_contract.functions.initialize(), "initialize the module"))
        return PlatformContracts(claim_issuer=issuer, country_allow_module=module)

    def deploy_suite(self, platform: PlatformContracts, spec: MarketTokenSpec) -> TrexSuite:
        """Deploy and wire one market's suite; the token starts paused."""
        if not spec.name or not spec.symbol:
            raise ValidationFailed("token name and symbol must not be empty")
        countries = check_countries(spec.allowed_countries)
        onchain_id = checksum_address(spec.onchain_id, "token ONCHAINID")
        claim_issuer = checksum_address(platform.claim_issuer, "claim issuer")
        receipts = _Receipts()
        w3 = self._w3

        storage = self._deploy(TrexContract.IDENTITY_REGISTRY_STORAGE, receipts)
        storage_c = contract_at(w3, TrexContract.IDENTITY_REGISTRY_STORAGE, storage)
        receipts.add(self._send(storage_c.functions.init(), "init the identity registry storage"))

        topics = self._deploy(TrexContract.CLAIM_TOPICS_REGISTRY, receipts)
        topics_c = contract_at(w3, TrexContract.CLAIM_TOPICS_REGISTRY, topics)
        receipts.add(self._send(topics_c.functions.init(), "init the claim topics registry"))
        for topic in spec.claim_topics:
            call = topics_c.functions.addClaimTopic(topic)
            receipts.add(self._send(call, f"add claim topic {topic}"))

        issuers = self._deploy(TrexContract.TRUSTED_ISSUERS_REGISTRY, receipts)
        issuers_c = contract_at(w3, TrexContract.TRUSTED_ISSUERS_REGISTRY, issuers)
        receipts.add(self._send(issuers_c.functions.init(), "init the trusted issuers registry"))
        call = issuers_c.functions.addTrustedIssuer(claim_issuer, list(spec.claim_topics))
        receipts.add(self._send(call, "trust the platform's claim issuer"))

        registry = self._deploy(TrexContract.IDENTITY_REGISTRY, receipts)
        registry_c = contract_at(w3, TrexContract.IDENTITY_REGISTRY, registry)
        call = registry_c.functions.init(issuers, topics, storage)
        receipts.add(self._send(call, "init the identity registry"))
        call = storage_c.functions.bindIdentityRegistry(registry)
        receipts.add(self._send(call, "bind the identity registry to its storage"))

        compliance = self._deploy(TrexContract.MODULAR_COMPLIANCE, receipts)
        compliance_c = contract_at(w3, TrexContract.MODULAR_COMPLIANCE, compliance)
        receipts.add(self._send(compliance_c.functions.init(), "init the modular compliance"))
        country_module: str | None = None
        if countries:
            country_module = checksum_address(platform.country_allow_module, "country module")
            call = compliance_c.functions.addModule(country_module)
            receipts.add(self._send(call, "add the country module to the compliance"))
            module_c = contract_at(w3, TrexContract.COUNTRY_ALLOW_MODULE, country_module)
            allow = module_c.encode_abi("batchAllowCountries", [list(countries)])
            call = compliance_c.functions.callModuleFunction(HexBytes(allow), country_module)
            receipts.add(self._send(call, "allow the market's countries"))

        token = self._deploy(TrexContract.TOKEN, receipts)
        token_c = contract_at(w3, TrexContract.TOKEN, token)
        call = token_c.functions.init(
            registry, compliance, spec.name, spec.symbol, TOKEN_DECIMALS, onchain_id
        )
        receipts.add(self._send(call, "init the token"))
        call = token_c.functions.addAgent(self.platform_address)
        receipts.add(self._send(call, "make the platform agent of the token"))
        call = registry_c.functions.addAgent(self.platform_address)
        receipts.add(self._send(call, "make the platform agent of the identity registry"))

        assert receipts.first_block is not None
        return TrexSuite(
            token=token,
            identity_registry=registry,
            identity_registry_storage=storage,
            claim_topics_registry=topics,
            trusted_issuers_registry=issuers,
            compliance=compliance,
            country_module=country_module,
            claim_issuer=claim_issuer,
            claim_topics=spec.claim_topics,
            gas_used=receipts.gas_used,
            transactions=receipts.count,
            first_block=receipts.first_block,
            last_block=receipts.last_block,
        )

    # -- internals ---------------------------------------------------------------------------

    def _send(self, call: ContractFunction, what: str) -> TxReceipt:
        return self._tx.send(self._platform, call, what=what)

    def _deploy(self, contract: TrexContract, receipts: _Receipts, *args: object) -> str:
        artifact = trex_artifact(contract)
        factory = self._w3.eth.contract(abi=artifact.abi, bytecode=HexBytes(artifact.bytecode))
        receipt = receipts.add(
            self._tx.send(self._platform, factory.constructor(*args), what=f"deploy {contract}")
        )
        address = receipt["contractAddress"]
        if not address:
            raise ChainError(f"deploy {contract}: the receipt has no contract address")
        return checksum_address(address)
