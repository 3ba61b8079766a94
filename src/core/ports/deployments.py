"""Chain transactions, recorded before they are sent (DESIGN §4: one market, one contract).

Every transaction the platform sends for a market (each step of its T-REX suite, the pauses
and resumes of its token) or for the platform itself (its ClaimIssuer, the shared country
module, the embedded stablecoin) is signed, recorded here in its own committed unit of work,
and only then broadcast. A retried or redelivered job finds the record of its (subject, step)
and follows that exact transaction (its receipt, or the same signed bytes sent again) instead
of signing another.

A record's *subject* is the market's id, or ``PLATFORM_SUBJECT`` for platform-wide contracts;
its *step* names the transaction within the subject (``core.ports.chain.suite_steps``,
``PLATFORM_STEPS``, ``pause:<event id>``...).

States:

- ``signed``: recorded; it may or may not have reached the chain.
- ``sent``: the chain accepted the bytes at least once.
- ``mined``: its receipt exists and succeeded; ``block_number`` is set. Final.
- ``failed``: mined but reverted (no contract); its nonce is used. Final.
- ``superseded``: never mined, and another transaction has used its nonce, so it never can
  be. Final. Only then may the market's deployment be signed again.

At most one record per (subject, step) is open (``signed``, ``sent`` or ``mined``).
"""

from __future__ import annotations

import abc
import enum
from datetime import datetime

import attrs

from core.shared.errors import Conflict


class DeploymentState(enum.StrEnum):
    SIGNED = "signed"
    SENT = "sent"
    MINED = "mined"
    FAILED = "failed"
    SUPERSEDED = "superseded"


OPEN_STATES = frozenset({DeploymentState.SIGNED, DeploymentState.SENT, DeploymentState.MINED})
UNMINED_STATES = frozenset({DeploymentState.SIGNED, DeploymentState.SENT})
PLATFORM_SUBJECT = "@platform"
MAX_STEP_LENGTH = 64


@attrs.frozen
class DeploymentRecord:
    tx_hash: str  # 0x + 64 lowercase hex
    market_id: str | None  # None: a platform-wide transaction
    chain_id: int
    signer: str  # checksummed
    nonce: int
    raw_transaction: str  # 0x-prefixed hex of the signed bytes
    contract_address: str | None  # predicted CREATE address (checksummed) of a creation
    holder: str | None  # who receives what it mints, when it mints
    state: DeploymentState
    created_at: datetime
    updated_at: datetime
    block_number: int | None = None
    error: str | None = None
    step: str = "token"
    subject: str = attrs.field()

    @subject.default
    def _subject(self) -> str:
        return self.market_id if self.market_id is not None else PLATFORM_SUBJECT

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class DuplicateDeployment(Conflict):
    """The (subject, step) already has an open record, or the hash is already recorded."""

    code = "duplicate_deployment"

    def __init__(self, subject: str, step: str, tx_hash: str) -> None:
        super().__init__(
            f"{subject} already has an open transaction for step {step}",
            details={"subject": subject, "step": step, "txHash": tx_hash},
        )


class DeploymentRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, record: DeploymentRecord) -> None:
        """Record a new transaction; ``DuplicateDeployment`` when its (subject, step) already
        has an open record or its hash is known (possibly only at ``commit()``)."""

    @abc.abstractmethod
    async def get(self, tx_hash: str) -> DeploymentRecord | None: ...

    @abc.abstractmethod
    async def open_for(self, subject: str, step: str) -> DeploymentRecord | None:
        """The (subject, step)'s record that is ``signed``, ``sent`` or ``mined``, if any."""

    @abc.abstractmethod
    async def for_subject(self, subject: str) -> list[DeploymentRecord]:
        """Every record of the subject (a market's id, ``PLATFORM_SUBJECT``), oldest first."""

    async def for_market(self, market_id: str) -> list[DeploymentRecord]:
        """Every record of the market, oldest first."""
        return await self.for_subject(market_id)

    @abc.abstractmethod
    async def update(self, record: DeploymentRecord, *, expected_state: DeploymentState) -> None:
        """Overwrite state, block number, error and ``updated_at`` of ``record.tx_hash`` whose
        stored state is ``expected_state``; ``Conflict`` when it is not (someone moved it)."""

    @abc.abstractmethod
    async def unmined(self, signer: str, *, limit: int) -> list[DeploymentRecord]:
        """``signed`` or ``sent`` records of ``signer``, lowest nonce first."""

    @abc.abstractmethod
    async def latest_mined(self, *, limit: int) -> list[DeploymentRecord]:
        """``mined`` records, highest block first."""
