"""T-REX (ERC-3643) flows on the packaged artifacts, on the in-process EVM and on Hardhat.

One suite of behaviour, run by both chains: deploy a market's suite, verify identities with
claims signed by the platform's ClaimIssuer key, and exercise what the agent and holders can
and cannot do (unverified receivers, pause, freeze, forced and batch forced transfers, burn,
country and accreditation rules), plus the checks our code makes before anything is signed.
"""

from __future__ import annotations

import time

import attrs
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend  # type: ignore[import-untyped]
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from adapters.outbound.chain.trex.artifacts import TrexContract, trex_artifact
from adapters.outbound.chain.trex.claims import ACCREDITATION_TOPIC, KYC_TOPIC, claim_id
from adapters.outbound.chain.trex.operations import (
    ForcedTransfer,
    SelfTransferRefused,
    TrexOperations,
)
from adapters.outbound.chain.trex.stablecoin import Stablecoin
from adapters.outbound.chain.trex.suite import (
    MarketTokenSpec,
    PlatformContracts,
    TrexDeployer,
    TrexSuite,
    contract_at,
)
from adapters.outbound.chain.trex.transactor import Transactor
from core.shared.errors import ChainError, ValidationFailed
from tests.harness.hardhat import HARDHAT_DEV_KEY

UNIT = 10**18
GERMANY, FRANCE, UNITED_STATES = 276, 250, 840
GAS_MONEY = 10**18  # 1 ether for each user that signs its own transfers


@attrs.frozen
class TrexEnv:
    """One chain with the platform contracts deployed, shared by a test class."""

    label: str
    transactor: Transactor
    platform: LocalAccount
    deployer: TrexDeployer
    ops: TrexOperations
    contracts: PlatformContracts

    def new_user(self) -> LocalAccount:
        """A fresh key with gas money, so it can sign its own transfers."""
        user: LocalAccount = Account.create()
        self.transactor.send_native(self.platform, user.address, GAS_MONEY, what="fund a user")
        return user

    def verify(
        self,
        suite: TrexSuite,
        user: str,
        *,
        country: int = GERMANY,
        topics: tuple[int, ...] = (KYC_TOPIC,),
    ) -> str:
        """Deploy an identity for ``user``, register it with ``country`` and add the claims."""
        identity = self.ops.deploy_identity()
        self.ops.register_identity(suite, user, identity, country)
        for topic in topics:
            self.ops.add_claim(identity, self.contracts.claim_issuer, topic, b"approved")
        return identity

    def deploy(self, spec: MarketTokenSpec | None = None) -> TrexSuite:
        return self.deployer.deploy_suite(self.contracts, spec or MarketTokenSpec("Tower", "TWR"))


def make_env(label: str, w3: Web3, platform: LocalAccount, endpoint: str) -> TrexEnv:
    transactor = Transactor(w3, endpoint=endpoint, receipt_timeout=60, poll_interval=0.01)
    deployer = TrexDeployer(transactor, platform)
    contracts = deployer.deploy_platform_contracts()
    ops = TrexOperations(transactor, platform, claim_signer=None)
    return TrexEnv(label, transactor, platform, deployer, ops, contracts)


@attrs.frozen
class Market:
    """A live market: the issuer verified, the supply minted to it, the token unpaused."""

    suite: TrexSuite
    issuer: LocalAccount


SUPPLY = 1_000 * UNIT


@pytest.fixture(scope="module")
def evm_env() -> TrexEnv:
    """A fresh py-evm chain (eth-tester's default 30,029,122 block gas limit is enough)."""
    backend = PyEVMBackend()
    w3 = Web3(EthereumTesterProvider(EthereumTester(backend)))
    platform: LocalAccount = Account.from_key(backend.account_keys[0].to_bytes())
    return make_env("in-process EVM", w3, platform, "in-process EVM")


@pytest.fixture(scope="module")
def hardhat_env(hardhat_url: str) -> TrexEnv:
    w3 = Web3(Web3.HTTPProvider(hardhat_url, request_kwargs={"timeout": 30}))
    # A platform key of its own, funded by the dev account: other suites on the shared node
    # sign with the dev key, and two nonce counters for one key would collide.
    dev: LocalAccount = Account.from_key(HARDHAT_DEV_KEY)
    platform: LocalAccount = Account.create()
    funder = Transactor(w3, endpoint="hardhat")
    funder.send_native(dev, platform.address, 1_000 * 10**18, what="fund the platform")
    return make_env("hardhat", w3, platform, "hardhat")


class TrexContract_:
    """The behaviour both chains must show. Subclasses provide ``env``."""

    @pytest.fixture
    def env(self) -> TrexEnv:
        raise NotImplementedError

    @pytest.fixture
    def market(self, env: TrexEnv) -> Market:
        suite = env.deploy()
        issuer = env.new_user()
        env.verify(suite, issuer.address)
        env.ops.mint(suite, issuer.address, SUPPLY)
        env.ops.unpause(suite)
        return Market(suite, issuer)

    # -- deployment --------------------------------------------------------------------------

    def test_deployment_wires_the_suite_and_reports_its_cost(self, env: TrexEnv) -> None:
        spec = MarketTokenSpec(
            "Tower Shares", "TWR", accredited_only=True, allowed_countries=(GERMANY, FRANCE)
        )
        started = time.monotonic()
        suite = env.deployer.deploy_suite(env.contracts, spec)
        seconds = time.monotonic() - started
        w3 = env.transactor.w3
        platform = env.platform.address

        token = contract_at(w3, TrexContract.TOKEN, suite.token).functions
        assert token.name().call() == "Tower Shares"
        assert token.symbol().call() == "TWR"
        assert token.decimals().call() == 18
        assert token.paused().call() is True, "a new token starts paused"
        assert token.owner().call() == platform
        assert token.isAgent(platform).call() is True
        assert token.identityRegistry().call() == suite.identity_registry
        assert token.compliance().call() == suite.compliance
        assert token.onchainID().call() == "0x" + "00" * 20
        assert (
            w3.eth.get_code(Web3.to_checksum_address(suite.token))
            == trex_artifact(TrexContract.TOKEN).runtime_code
        )

        registry = contract_at(w3, TrexContract.IDENTITY_REGISTRY, suite.identity_registry)
        assert registry.functions.isAgent(platform).call() is True
        assert registry.functions.identityStorage().call() == suite.identity_registry_storage
        assert registry.functions.topicsRegistry().call() == suite.claim_topics_registry
        assert registry.functions.issuersRegistry().call() == suite.trusted_issuers_registry
        storage = contract_at(
            w3, TrexContract.IDENTITY_REGISTRY_STORAGE, suite.identity_registry_storage
        )
        assert storage.functions.linkedIdentityRegistries().call() == [suite.identity_registry]
        topics = contract_at(w3, TrexContract.CLAIM_TOPICS_REGISTRY, suite.claim_topics_registry)
        assert topics.functions.getClaimTopics().call() == [KYC_TOPIC, ACCREDITATION_TOPIC]
        issuers = contract_at(
            w3, TrexContract.TRUSTED_ISSUERS_REGISTRY, suite.trusted_issuers_registry
        )
        assert issuers.functions.getTrustedIssuers().call() == [env.contracts.claim_issuer]
        assert issuers.functions.getTrustedIssuerClaimTopics(env.contracts.claim_issuer).call() == [
            KYC_TOPIC,
            ACCREDITATION_TOPIC,
        ]
        compliance = contract_at(w3, TrexContract.MODULAR_COMPLIANCE, suite.compliance)
        assert compliance.functions.getTokenBound().call() == suite.token
        assert compliance.functions.getModules().call() == [env.contracts.country_allow_module]
        module = contract_at(
            w3, TrexContract.COUNTRY_ALLOW_MODULE, env.contracts.country_allow_module
        ).functions
        assert module.isCountryAllowed(suite.compliance, GERMANY).call() is True
        assert module.isCountryAllowed(suite.compliance, UNITED_STATES).call() is False

        assert suite.country_module == env.contracts.country_allow_module
        assert suite.transactions == 20  # 17 for a market with only KYC and no countries
        assert suite.last_block >= suite.first_block
        assert 0 < suite.gas_used < 30_000_000
        print(  # the figures docs/custody.md quotes; shown with `pytest -s`
            f"\n[{env.label}] T-REX suite: {suite.gas_used} gas in {suite.transactions} "
            f"transactions, {seconds:.2f}s"
        )

    def test_a_market_without_restrictions_has_no_module_and_only_kyc(self, env: TrexEnv) -> None:
        suite = env.deploy()
        w3 = env.transactor.w3
        compliance = contract_at(w3, TrexContract.MODULAR_COMPLIANCE, suite.compliance)
        assert compliance.functions.getModules().call() == []
        assert suite.country_module is None
        assert suite.claim_topics == (KYC_TOPIC,)
        assert suite.transactions == 17

    def test_bad_suite_input_is_refused_before_signing(self, env: TrexEnv) -> None:
        nonce = env.transactor.w3.eth.get_transaction_count(env.platform.address)
        with pytest.raises(ValidationFailed):
            env.deploy(MarketTokenSpec("", "X"))
        with pytest.raises(ValidationFailed):
            env.deploy(MarketTokenSpec("X", "X", allowed_countries=(0,)))
        with pytest.raises(ValidationFailed):
            env.deploy(MarketTokenSpec("X", "X", allowed_countries=(GERMANY, GERMANY)))
        assert env.transactor.w3.eth.get_transaction_count(env.platform.address) == nonce

    # -- identities and claims ---------------------------------------------------------------

    def test_the_issuer_is_verified_and_holds_the_supply(
        self, env: TrexEnv, market: Market
    ) -> None:
        suite, issuer = market.suite, market.issuer
        assert env.ops.is_verified(suite, issuer.address)
        identity = env.ops.identity_of(suite, issuer.address)
        stored = contract_at(env.transactor.w3, TrexContract.IDENTITY, identity)
        claim = stored.functions.getClaim(claim_id(env.contracts.claim_issuer, KYC_TOPIC)).call()
        assert claim[0] == KYC_TOPIC and claim[2] == env.contracts.claim_issuer
        assert env.ops.balance_of(suite, issuer.address) == SUPPLY
        assert env.ops.total_supply(suite) == SUPPLY
        assert env.ops.paused(suite) is False

    def test_a_claim_signed_by_another_key_is_refused(self, env: TrexEnv) -> None:
        suite = env.deploy()
        user = Account.create()
        identity = env.ops.deploy_identity()
        env.ops.register_identity(suite, user.address, identity, GERMANY)
        forger = TrexOperations(env.transactor, env.platform, claim_signer=Account.create())
        with pytest.raises(ChainError, match="invalid claim"):
            forger.add_claim(identity, env.contracts.claim_issuer, KYC_TOPIC, b"approved")
        assert not env.ops.is_verified(suite, user.address)

    def test_removing_the_kyc_claim_unverifies_the_holder(
        self, env: TrexEnv, market: Market
    ) -> None:
        suite = market.suite
        user = Account.create()
        identity = env.verify(suite, user.address)
        assert env.ops.is_verified(suite, user.address)
        env.ops.remove_claim(identity, env.contracts.claim_issuer, KYC_TOPIC)
        assert not env.ops.is_verified(suite, user.address)
        with pytest.raises(ChainError, match="Transfer not possible"):
            env.ops.transfer(suite, market.issuer, user.address, UNIT)

    def test_an_accredited_market_needs_both_claims(self, env: TrexEnv) -> None:
        suite = env.deploy(MarketTokenSpec("Fund", "FND", accredited_only=True))
        user = Account.create()
        identity = env.verify(suite, user.address, topics=(KYC_TOPIC,))
        assert not env.ops.is_verified(suite, user.address)
        with pytest.raises(ChainError, match="Identity is not verified"):
            env.ops.mint(suite, user.address, UNIT)
        env.ops.add_claim(identity, env.contracts.claim_issuer, ACCREDITATION_TOPIC, b"accredited")
        assert env.ops.is_verified(suite, user.address)
        env.ops.mint(suite, user.address, UNIT)
        assert env.ops.balance_of(suite, user.address) == UNIT

    def test_a_country_restricted_market_refuses_other_countries(self, env: TrexEnv) -> None:
        suite = env.deploy(MarketTokenSpec("Bund", "BND", allowed_countries=(GERMANY,)))
        local, foreign = Account.create(), Account.create()
        env.verify(suite, local.address, country=GERMANY)
        env.verify(suite, foreign.address, country=UNITED_STATES)
        assert env.ops.is_verified(suite, foreign.address), "verified, but not allowed"
        env.ops.mint(suite, local.address, UNIT)
        with pytest.raises(ChainError, match="Compliance not followed"):
            env.ops.mint(suite, foreign.address, UNIT)
        assert env.ops.balance_of(suite, local.address) == UNIT
        assert env.ops.balance_of(suite, foreign.address) == 0

    # -- transfers ---------------------------------------------------------------------------

    def test_a_transfer_to_an_unverified_address_reverts(
        self, env: TrexEnv, market: Market
    ) -> None:
        stranger = Account.create()
        with pytest.raises(ChainError, match="Transfer not possible"):
            env.ops.transfer(market.suite, market.issuer, stranger.address, UNIT)
        with pytest.raises(ChainError, match="Identity is not verified"):
            env.ops.mint(market.suite, stranger.address, UNIT)
        assert env.ops.balance_of(market.suite, stranger.address) == 0
        assert env.ops.balance_of(market.suite, market.issuer.address) == SUPPLY

    def test_a_transfer_to_a_verified_user_works(self, env: TrexEnv, market: Market) -> None:
        investor = Account.create()
        env.verify(market.suite, investor.address, country=FRANCE)
        env.ops.transfer(market.suite, market.issuer, investor.address, 5 * UNIT)
        assert env.ops.balance_of(market.suite, investor.address) == 5 * UNIT
        assert env.ops.balance_of(market.suite, market.issuer.address) == SUPPLY - 5 * UNIT

    def test_pause_blocks_transfers_until_unpaused(self, env: TrexEnv, market: Market) -> None:
        investor = Account.create()
        env.verify(market.suite, investor.address)
        env.ops.pause(market.suite)
        assert env.ops.paused(market.suite)
        with pytest.raises(ChainError, match="Pausable: paused"):
            env.ops.transfer(market.suite, market.issuer, investor.address, UNIT)
        env.ops.unpause(market.suite)
        env.ops.transfer(market.suite, market.issuer, investor.address, UNIT)
        assert env.ops.balance_of(market.suite, investor.address) == UNIT

    def test_a_frozen_address_can_neither_send_nor_receive(
        self, env: TrexEnv, market: Market
    ) -> None:
        suite, issuer = market.suite, market.issuer
        investor = env.new_user()
        env.verify(suite, investor.address)
        env.ops.transfer(suite, issuer, investor.address, 10 * UNIT)
        env.ops.set_frozen(suite, investor.address, True)
        assert env.ops.is_frozen(suite, investor.address)
        with pytest.raises(ChainError, match="wallet is frozen"):
            env.ops.transfer(suite, investor, issuer.address, UNIT)
        with pytest.raises(ChainError, match="wallet is frozen"):
            env.ops.transfer(suite, issuer, investor.address, UNIT)
        env.ops.set_frozen(suite, investor.address, False)
        env.ops.transfer(suite, investor, issuer.address, UNIT)
        assert env.ops.balance_of(suite, investor.address) == 9 * UNIT

    def test_the_agent_forces_transfers_one_at_a_time_and_in_batches(
        self, env: TrexEnv, market: Market
    ) -> None:
        suite, issuer = market.suite, market.issuer
        alice, bob = Account.create(), Account.create()
        env.verify(suite, alice.address)
        env.verify(suite, bob.address, country=FRANCE)
        env.ops.forced_transfer(suite, issuer.address, alice.address, 100 * UNIT)
        assert env.ops.balance_of(suite, alice.address) == 100 * UNIT
        sent = env.ops.batch_forced_transfer(
            suite,
            [
                ForcedTransfer(alice.address, bob.address, 30 * UNIT),
                ForcedTransfer(issuer.address, bob.address, 20 * UNIT),
                ForcedTransfer(bob.address, alice.address, 5 * UNIT),
            ],
        )
        assert sent.gas_used > 0 and sent.tx_hash.startswith("0x")
        assert env.ops.balance_of(suite, alice.address) == 75 * UNIT
        assert env.ops.balance_of(suite, bob.address) == 45 * UNIT
        assert env.ops.balance_of(suite, issuer.address) == SUPPLY - 120 * UNIT
        # the agent moves tokens even while the token is paused (settlement, recovery)
        env.ops.pause(suite)
        env.ops.forced_transfer(suite, bob.address, alice.address, 5 * UNIT)
        assert env.ops.balance_of(suite, alice.address) == 80 * UNIT
        stranger = Account.create()
        with pytest.raises(ChainError, match="Transfer not possible"):
            env.ops.forced_transfer(suite, alice.address, stranger.address, UNIT)

    def test_a_forced_transfer_to_oneself_is_refused_by_our_code(
        self, env: TrexEnv, market: Market
    ) -> None:
        suite, holder = market.suite, market.issuer.address
        other = Account.create()
        env.verify(suite, other.address)
        nonce = env.transactor.w3.eth.get_transaction_count(env.platform.address)
        with pytest.raises(SelfTransferRefused) as refused:
            env.ops.forced_transfer(suite, holder, holder.lower(), UNIT)
        assert refused.value.code == "self_transfer"
        with pytest.raises(SelfTransferRefused):
            env.ops.batch_forced_transfer(
                suite,
                [
                    ForcedTransfer(holder, other.address, UNIT),
                    ForcedTransfer(other.address, other.address.lower(), UNIT),
                ],
            )
        with pytest.raises(ValidationFailed):
            env.ops.batch_forced_transfer(suite, [])
        with pytest.raises(ValidationFailed):
            env.ops.forced_transfer(suite, holder, other.address, 0)
        with pytest.raises(ValidationFailed):
            env.ops.mint(suite, holder, -1)
        assert env.transactor.w3.eth.get_transaction_count(env.platform.address) == nonce
        assert env.ops.balance_of(suite, holder) == SUPPLY

    def test_the_agent_burns(self, env: TrexEnv, market: Market) -> None:
        env.ops.burn(market.suite, market.issuer.address, 400 * UNIT)
        assert env.ops.balance_of(market.suite, market.issuer.address) == SUPPLY - 400 * UNIT
        assert env.ops.total_supply(market.suite) == SUPPLY - 400 * UNIT
        with pytest.raises(ChainError, match="cannot burn more than balance"):
            env.ops.burn(market.suite, market.issuer.address, SUPPLY)

    def test_only_the_agent_may_mint(self, env: TrexEnv, market: Market) -> None:
        outsider = TrexOperations(env.transactor, market.issuer, claim_signer=None)
        with pytest.raises(ChainError, match="AgentRole: caller does not have the Agent role"):
            outsider.mint(market.suite, market.issuer.address, UNIT)
        assert env.ops.total_supply(market.suite) == SUPPLY

    # -- stablecoin --------------------------------------------------------------------------

    def test_the_stablecoin_has_six_decimals_and_only_its_owner_mints(self, env: TrexEnv) -> None:
        coin = Stablecoin.deploy(env.transactor, env.platform, name="Test USD", symbol="TUSD")
        assert coin.decimals() == 6
        holder = env.new_user()
        coin.mint(env.platform, holder.address, 1_500_000)  # 1.5 TUSD
        assert coin.balance_of(holder.address) == 1_500_000
        with pytest.raises(ChainError, match="OwnableUnauthorizedAccount"):
            coin.mint(holder, holder.address, 1)
        assert coin.balance_of(holder.address) == 1_500_000


class TestTrexOnInProcessEvm(TrexContract_):
    @pytest.fixture
    def env(self, evm_env: TrexEnv) -> TrexEnv:
        return evm_env


@pytest.mark.hardhat
class TestTrexOnHardhat(TrexContract_):
    @pytest.fixture
    def env(self, hardhat_env: TrexEnv) -> TrexEnv:
        return hardhat_env


class TestTransactorOnInProcessEvm:
    """Nonces and receipts: what the deployer relies on when a send goes wrong."""

    @pytest.fixture
    def chain(self) -> tuple[EthereumTester, Web3, LocalAccount]:
        backend = PyEVMBackend()
        tester = EthereumTester(backend)
        account: LocalAccount = Account.from_key(backend.account_keys[0].to_bytes())
        return tester, Web3(EthereumTesterProvider(tester)), account

    def test_a_stale_nonce_fails_once_then_the_node_decides(
        self, chain: tuple[EthereumTester, Web3, LocalAccount]
    ) -> None:
        _, w3, account = chain
        ours, theirs = Transactor(w3), Transactor(w3)
        receiver = Account.create().address
        ours.send_native(account, receiver, 1, what="first")
        theirs.send_native(account, receiver, 1, what="someone else with the same key")
        with pytest.raises(ChainError, match="second"):
            ours.send_native(account, receiver, 1, what="second")  # reuses a spent nonce
        ours.send_native(account, receiver, 1, what="third")
        assert w3.eth.get_transaction_count(account.address) == 3
        assert w3.eth.get_balance(Web3.to_checksum_address(receiver)) == 3

    def test_a_missing_receipt_times_out_and_the_nonce_is_read_again(
        self, chain: tuple[EthereumTester, Web3, LocalAccount]
    ) -> None:
        tester, w3, account = chain
        transactor = Transactor(w3, receipt_timeout=0.3, poll_interval=0.05)
        deployer = TrexDeployer(transactor, account)
        tester.disable_auto_mine_transactions()
        with pytest.raises(ChainError, match="no receipt"):
            deployer.deploy_platform_contracts()
        tester.enable_auto_mine_transactions()  # mines the pending deployment
        assert w3.eth.get_transaction_count(account.address) == 1
        contracts = deployer.deploy_platform_contracts()
        issuer = contract_at(w3, TrexContract.CLAIM_ISSUER, contracts.claim_issuer)
        assert issuer.functions.getKeysByPurpose(1).call()

    def test_a_chain_id_mismatch_is_refused_before_signing(
        self, chain: tuple[EthereumTester, Web3, LocalAccount]
    ) -> None:
        _, w3, account = chain
        transactor = Transactor(w3, chain_id=23294)
        with pytest.raises(ChainError, match="not 23294"):
            transactor.send_native(account, Account.create().address, 1, what="send")
        assert w3.eth.get_transaction_count(account.address) == 0
