"""One ONCHAINID identity per user, deployed once and reused by every market.

A user's ``Identity`` contract (the platform holds its management key) is deployed by the
first of: the activation of a market they issue (``core.markets.deployment``), or the
``verify-compliance`` job (``core.tokens.compliance_chain``). Both go through this module,
under the same recorded-transactions subject ``kyc:<sha256 of the user id>`` and step
``identity``: the mined record is where the identity's address is persisted (one per user;
the registries of the markets map each of the user's addresses to it), and a second caller,
a retry or a crash after the broadcast finds that record instead of deploying another one.
"""

from __future__ import annotations

import hashlib

from core.markets.transactions import RecordedTransactions
from core.ports.chain import Chain, IdentityCall, IdentityCallKind, PreparedTransaction
from core.ports.clock import Clock
from core.ports.storage import Storage
from core.shared.errors import ChainError

IDENTITY_STEP = "identity"


def identity_subject(user_id: str) -> str:
    """The recorded transactions' subject of a user's identity and claims (36 characters at
    most)."""
    return "kyc:" + hashlib.sha256(user_id.encode()).hexdigest()[:32]


class UserIdentities:
    def __init__(self, storage: Storage, chain: Chain, clock: Clock) -> None:
        self._chain = chain
        self._recorded = RecordedTransactions(storage, chain, clock)

    async def existing(self, user_id: str) -> str | None:
        """The address of the user's identity, if it was deployed (its record mined)."""
        mined = await self._recorded.mined(identity_subject(user_id))
        record = mined.get(IDENTITY_STEP)
        return None if record is None else record.contract_address

    async def ensure(self, user_id: str) -> str:
        """The user's identity, deployed now (recorded before it is sent) if it does not
        exist yet."""
        found = await self.existing(user_id)
        if found is not None:
            return found

        async def prepare() -> PreparedTransaction:
            return await self._chain.prepare_identity_call(
                IdentityCall(kind=IdentityCallKind.DEPLOY)
            )

        subject = identity_subject(user_id)
        receipt = await self._recorded.run(subject, IDENTITY_STEP, prepare, for_market=False)
        if receipt.contract_address is None:
            raise ChainError(f"{subject}: the identity deployment created no contract")
        return receipt.contract_address
