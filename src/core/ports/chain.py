"""Chain port: sign, send and follow transactions on an EVM chain; read tokens back.

Market tokens are ERC-3643 (T-REX) suites (DESIGN §9). Everything the platform sends is split
so that a caller can record a transaction before it leaves the process (DESIGN §4 "one
market, one contract", §9 "never sent twice"):

1. ``prepare_*`` builds and signs one transaction with the signer's next nonce and returns
   everything needed to send it again later: nonce, hash, raw signed bytes and, for a
   contract creation, the address the contract will have (the CREATE address of signer and
   nonce). Nothing is broadcast; calling it twice gives two different transactions. A
   transaction the chain would refuse (a transfer to an unverified address, a paused token,
   a caller without the role) fails here with ``ChainError``, as gas estimation does.
2. ``send_raw_transaction`` broadcasts those exact bytes. Sending bytes the chain already
   has (pending or mined) is not an error: it answers the same hash. So a retry re-sends the
   recorded bytes instead of signing again.
3. ``transaction_receipt`` (None while unknown or pending) and ``wait_for_receipt`` follow it.

A market's suite is deployed as an ordered list of named steps (``suite_steps``), one
transaction each; a step may need the contracts created by earlier steps (``created``: step
name to contract address), so each is prepared only once the steps before it are mined.
Platform-wide contracts (the ClaimIssuer, the shared country module) are steps of their own
(``PLATFORM_STEPS``), deployed once per chain.

Nonces: ``prepare_*`` takes the node's count of the signer's transactions, pending included.
Hold ``signing_lock`` from prepare until the send has returned (recording in between), so two
preparations of one process never get the same nonce. A transaction whose nonce is below
``confirmed_nonce`` and that has no receipt was replaced by another one with that nonce and
can never be mined any more: only then may a caller sign a replacement.

Nonces are per signing address: the platform's (``custody_address``) for everything it
signs, and a custodial address's own for the transfers signed with that address's key
(``prepare_custodial_transfer``: deposit sweeps).

Every failure surfaces as ``ChainError``.
"""

from __future__ import annotations

import abc
import asyncio
import enum
from collections.abc import Mapping, Sequence

import attrs

from core.ports.custody import TransactionSigner
from core.shared.errors import ChainError

# Claim topics the platform issues (DESIGN §9): KYC always, accreditation when required.
KYC_TOPIC = 1
ACCREDITATION_TOPIC = 2
MAX_TOKEN_DECIMALS = 18  # T-REX tokens

# Deployed once per chain: the platform's ONCHAINID ClaimIssuer, and one CountryAllowModule
# shared by every market that restricts countries (modules keep state per compliance).
PLATFORM_STEPS: tuple[str, ...] = ("claim_issuer", "country_module", "country_module.init")


@attrs.frozen
class PlatformContracts:
    claim_issuer: str  # checksummed
    country_module: str  # checksummed

    @classmethod
    def from_created(cls, created: Mapping[str, str]) -> PlatformContracts:
        return cls(claim_issuer=created["claim_issuer"], country_module=created["country_module"])


@attrs.frozen
class SuiteSpec:
    """One market's T-REX suite, and the issuer who receives its supply."""

    name: str
    symbol: str
    decimals: int
    supply: int  # base units minted to ``issuer`` at activation
    issuer: str  # the issuer's (custodial) address
    issuer_country: str  # ISO 3166-1 alpha-2, registered with the issuer's identity
    platform: PlatformContracts
    accredited_only: bool = False
    allowed_countries: tuple[str, ...] = ()  # ISO 3166-1 alpha-2; empty: any country
    # the issuer's own ONCHAINID identity, deployed once per user and reused by every market
    # (``core.tokens.identities``); None: the suite deploys one (step ``identity``)
    issuer_identity: str | None = None

    @property
    def claim_topics(self) -> tuple[int, ...]:
        return (KYC_TOPIC, ACCREDITATION_TOPIC) if self.accredited_only else (KYC_TOPIC,)


def suite_steps(spec: SuiteSpec) -> tuple[str, ...]:
    """The transactions of one market's activation, in order (each one mined before the next).

    Registries and compliance, the token (``init`` leaves it paused) with the platform as agent,
    the issuer's identity (deployed here unless ``spec.issuer_identity`` names their own)
    registered with their country and given the platform's claims, the supply minted to the
    issuer, and the token unpaused. With ``issuer_identity``, ``created["identity"]`` must
    name it before the first step (``suite_created``).
    """
    steps = ["storage", "storage.init", "topics", "topics.init"]
    steps += [f"topics.add:{topic}" for topic in spec.claim_topics]
    steps += ["issuers", "issuers.init", "issuers.trust"]
    steps += ["registry", "registry.init", "storage.bind"]
    steps += ["compliance", "compliance.init"]
    if spec.allowed_countries:
        steps += ["compliance.add_module", "compliance.allow_countries"]
    steps += ["token", "token.init", "token.agent", "registry.agent"]
    steps += [] if spec.issuer_identity is not None else ["identity"]
    steps += ["registry.register"]
    steps += [f"identity.claim:{topic}" for topic in spec.claim_topics]
    steps += ["token.mint", "token.unpause"]
    return tuple(steps)


def suite_created(spec: SuiteSpec) -> dict[str, str]:
    """The contracts a suite's steps may use before any of them ran: the issuer's identity
    when it exists already."""
    return {} if spec.issuer_identity is None else {"identity": spec.issuer_identity}


# The step whose created contract is the market's token, and the step minting its supply.
TOKEN_STEP = "token"
MINT_STEP = "token.mint"


class TokenCallKind(enum.StrEnum):
    PAUSE = "pause"
    UNPAUSE = "unpause"
    MINT = "mint"
    BURN = "burn"
    FORCED_TRANSFER = "forced_transfer"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    TRANSFER = "transfer"  # ERC-20 transfer from the platform's own (omnibus) address


@attrs.frozen
class TransferLog:
    """One ERC-20 ``Transfer(from, to, value)`` event as mined."""

    token: str  # checksummed contract address
    sender: str  # checksummed
    receiver: str  # checksummed
    amount: int
    tx_hash: str  # 0x + 64 lowercase hex
    log_index: int
    block_number: int


@attrs.frozen
class TokenCall:
    """An agent function of a deployed T-REX token.

    ``account``: the receiver of a mint or of a plain ``TRANSFER`` (an ERC-20 transfer signed by
    the platform from its own address: the omnibus of the stablecoin), the holder of a burn or
    freeze, the sender of a forced transfer; ``receiver``: the receiver of a forced transfer.
    ``MINT`` and ``TRANSFER`` also work on the platform's stablecoin (its owner mints).
    Adapters refuse, before signing, a forced transfer whose sender is its receiver (T-REX
    would emit a Transfer that moves nothing) and an amount outside ``1 .. 2**256 - 1``.
    """

    kind: TokenCallKind
    token: str
    account: str | None = None
    receiver: str | None = None
    amount: int = 0


class IdentityCallKind(enum.StrEnum):
    """What the platform does to a user's ONCHAINID identity (``IdentityCall``)."""

    DEPLOY = "deploy"  # a new Identity whose management key is the platform's
    REGISTER = "register"  # registerIdentity(holder, identity, country) in a token's registry
    UPDATE_COUNTRY = "update_country"  # updateCountry(holder, country) in a token's registry
    DELETE = "delete"  # deleteIdentity(holder) from a token's registry
    ADD_CLAIM = "add_claim"  # a claim on ``topic`` signed by the platform's claim key
    REMOVE_CLAIM = "remove_claim"  # the platform ClaimIssuer's claim on ``topic``


@attrs.frozen
class ForcedTransfer:
    """One line of a token agent's ``batchForcedTransfer``: ``amount`` base units from
    ``sender`` to ``receiver`` (distinct addresses; the receiver must be verified)."""

    sender: str
    receiver: str
    amount: int


MAX_BATCH_TRANSFERS = 200  # lines of one batchForcedTransfer (gas stays well under a block)


@attrs.frozen
class IdentityCall:
    """One identity or identity-registry transaction of the compliance mirror.

    ``token``: the T-REX token whose identity registry is changed (REGISTER, UPDATE_COUNTRY,
    DELETE); ``holder``: the user's address there; ``identity``: the user's Identity contract
    (REGISTER, ADD_CLAIM, REMOVE_CLAIM); ``country``: ISO 3166-1 alpha-2, stored as its
    numeric code; ``claim_issuer``: the platform's ClaimIssuer (claims); ``topic``: the claim
    topic (``KYC_TOPIC``, ``ACCREDITATION_TOPIC``).
    """

    kind: IdentityCallKind
    token: str | None = None
    holder: str | None = None
    identity: str | None = None
    country: str | None = None
    claim_issuer: str | None = None
    topic: int = 0


@attrs.frozen
class RegisteredIdentity:
    """A holder's entry in a token's identity registry."""

    identity: str  # checksummed
    country: str  # ISO 3166-1 alpha-2


@attrs.frozen
class SignedTransaction:
    """A signed transaction that has not necessarily been sent."""

    signer: str  # checksummed address
    nonce: int
    tx_hash: str  # 0x + 64 lowercase hex digits
    raw_transaction: str  # 0x-prefixed hex of the signed bytes, as sent
    chain_id: int


@attrs.frozen
class PreparedTransaction:
    """A signed, unsent transaction and, for a contract creation, where the contract will be."""

    transaction: SignedTransaction
    contract_address: str | None = None  # checksummed CREATE address of (signer, nonce)


@attrs.frozen
class TransactionReceipt:
    tx_hash: str
    block_number: int
    succeeded: bool  # status 1; a reverted transaction still used its nonce
    contract_address: str | None  # checksummed, for a successful contract creation


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
    async def prepare_platform_step(
        self, step: str, created: Mapping[str, str]
    ) -> PreparedTransaction:
        """Sign one of ``PLATFORM_STEPS``; ``created`` holds the addresses of the platform
        steps before it."""

    @abc.abstractmethod
    async def prepare_suite_step(
        self, spec: SuiteSpec, step: str, created: Mapping[str, str]
    ) -> PreparedTransaction:
        """Sign one of ``suite_steps(spec)``; ``created`` holds the contracts created by the
        steps before it (step name to address). ``ChainError`` for a spec the suite cannot
        represent or a step whose inputs are missing."""

    @abc.abstractmethod
    async def prepare_token_call(self, call: TokenCall) -> PreparedTransaction:
        """Sign an agent function of a deployed T-REX token (refusals: see ``TokenCall``)."""

    @abc.abstractmethod
    async def prepare_batch_forced_transfer(
        self, token: str, transfers: Sequence[ForcedTransfer]
    ) -> PreparedTransaction:
        """Sign the agent's ``batchForcedTransfer`` of a T-REX token: every line or none
        (one line that would revert refuses the whole batch before it is signed). Refused
        like ``FORCED_TRANSFER``: a sender that is its receiver, an amount outside
        ``1 .. 2**256 - 1``; and an empty batch or one over ``MAX_BATCH_TRANSFERS``."""

    @abc.abstractmethod
    async def prepare_identity_call(self, call: IdentityCall) -> PreparedTransaction:
        """Sign one identity or registry transaction (``IdentityCall``); refused like the
        contract would refuse it (a holder registered twice, a caller without the role)."""

    @abc.abstractmethod
    async def prepare_stablecoin(self, name: str, symbol: str) -> PreparedTransaction:
        """Sign the deployment of the quote stablecoin (an OpenZeppelin ERC-20, 6 decimals,
        owned by the platform). Chains that have no stablecoin of ours refuse it."""

    @abc.abstractmethod
    async def prepare_native_transfer(self, receiver: str, value: int) -> PreparedTransaction:
        """Sign a plain transfer of ``value`` wei of the chain's native coin from the platform's
        address to ``receiver`` (the gas a custodial address needs to send its own
        transaction). ``value`` outside ``1 .. 2**256 - 1`` is refused."""

    @abc.abstractmethod
    async def prepare_custodial_transfer(
        self, signer: TransactionSigner, token: str, receiver: str, amount: int
    ) -> PreparedTransaction:
        """Sign, with a custodial key, an ERC-20 ``transfer(receiver, amount)`` of ``token``
        from the signer's own address (a deposit sweep), with that address's next nonce
        (pending included) and the gas price ``custodial_transfer_fee`` assumed. Refused
        before signing (``ChainError``) when it would revert or when the address holds less
        native coin than its gas costs."""

    @abc.abstractmethod
    async def custodial_transfer_fee(
        self, token: str, sender: str, receiver: str, amount: int
    ) -> int:
        """The native coin (wei) ``sender`` needs for ``prepare_custodial_transfer`` of these
        arguments at the current gas price, with headroom for a rising price."""

    @abc.abstractmethod
    async def native_balance(self, address: str) -> int:
        """The native coin (wei) held by ``address``."""

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

    async def execute(self, prepared: PreparedTransaction) -> TransactionReceipt:
        """Send a prepared transaction and wait for a successful receipt, keeping no record:
        for tools and tests (callers hold ``signing_lock`` from prepare to here). The service
        records its transactions first (``core.markets.transactions``)."""
        await self.send_raw_transaction(prepared.transaction.raw_transaction)
        receipt = await self.wait_for_receipt(prepared.transaction.tx_hash)
        check_receipt(prepared, receipt)
        return receipt

    async def deploy_platform(self) -> PlatformContracts:
        """Deploy the platform contracts without records (tools and tests)."""
        created: dict[str, str] = {}
        for step in PLATFORM_STEPS:
            async with self.signing_lock:
                prepared = await self.prepare_platform_step(step, created)
                receipt = await self.execute(prepared)
            if receipt.contract_address is not None:
                created[step] = receipt.contract_address
        return PlatformContracts.from_created(created)

    async def deploy_suite(self, spec: SuiteSpec) -> dict[str, str]:
        """Run every step of a market's suite without records (tools and tests); the created
        contracts by step (``created[TOKEN_STEP]`` is the token)."""
        created = suite_created(spec)
        for step in suite_steps(spec):
            async with self.signing_lock:
                prepared = await self.prepare_suite_step(spec, step, created)
                receipt = await self.execute(prepared)
            if receipt.contract_address is not None:
                created[step] = receipt.contract_address
        return created

    async def call_token(self, call: TokenCall) -> TransactionReceipt:
        """Prepare, send and wait for one token call without a record (tools and tests)."""
        async with self.signing_lock:
            return await self.execute(await self.prepare_token_call(call))

    # -- reads -----------------------------------------------------------------------------

    @abc.abstractmethod
    async def code_at(self, address: str) -> bytes: ...

    @abc.abstractmethod
    async def transfer_logs(
        self, token_address: str, from_block: int, to_block: int, receivers: frozenset[str]
    ) -> list[TransferLog]:
        """ERC-20 ``Transfer`` events of ``token_address`` mined in blocks ``from_block`` to
        ``to_block`` (inclusive) whose receiver is one of ``receivers`` (checksummed), in
        chain order (block, log index)."""

    @abc.abstractmethod
    async def total_supply(self, token_address: str) -> int: ...

    @abc.abstractmethod
    async def balance_of(self, token_address: str, holder: str) -> int: ...

    @abc.abstractmethod
    async def token_metadata(self, token_address: str) -> TokenMetadata:
        """Name, symbol and decimals as the token contract answers them."""

    @abc.abstractmethod
    async def is_paused(self, token_address: str) -> bool:
        """Whether the T-REX token is paused."""

    @abc.abstractmethod
    async def is_verified(self, token_address: str, holder: str) -> bool:
        """Whether the token's identity registry verifies ``holder`` (identity registered,
        the required claims present from a trusted issuer)."""

    @abc.abstractmethod
    async def registered_identity(
        self, token_address: str, holder: str
    ) -> RegisteredIdentity | None:
        """The holder's identity and country in the token's identity registry; None when the
        holder is not registered there."""

    @abc.abstractmethod
    async def has_claim(self, identity: str, claim_issuer: str, topic: int) -> bool:
        """Whether ``identity`` holds a claim of ``claim_issuer`` on ``topic``."""

    @abc.abstractmethod
    async def custody_address(self) -> str:
        """The platform's address: it signs every transaction, owns the contracts and is the
        agent of every token."""

    @abc.abstractmethod
    async def block_number(self) -> int:
        """The latest block; also the health check."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and threads."""


def check_receipt(prepared: PreparedTransaction, receipt: TransactionReceipt) -> None:
    """``ChainError`` if the mined transaction reverted or created something other than the
    predicted contract."""
    tx_hash = prepared.transaction.tx_hash
    if not receipt.succeeded:
        raise ChainError(f"transaction {tx_hash} reverted (status 0)")
    if prepared.contract_address is None:
        return
    if receipt.contract_address is None:
        raise ChainError(f"receipt of {tx_hash} has no contract address")
    if receipt.contract_address.lower() != prepared.contract_address.lower():
        raise ChainError(
            f"transaction {tx_hash} created {receipt.contract_address}, "
            f"not the predicted {prepared.contract_address}"
        )
