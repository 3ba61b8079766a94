"""Wallet endpoints: a user's address (custodial or external), and registering an external
address with an EIP-191 signature of a server challenge.

Order of checks (DESIGN 5.1): no or bad token 401; roles without ``wallet.read`` /
``wallet.register`` 403; the body 400/415/422; then the use case: another user's wallet 403
(unless admin), the challenge 404/409, the signature 422.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator
from pydantic.alias_generators import to_camel
from quart import Blueprint, Response, current_app, jsonify

from adapters.inbound.http.dependencies import HttpDependencies
from adapters.inbound.http.guard import current_actor, guarded, read_body
from adapters.inbound.http.openapi import DateTime, WireModel, documented, envelope
from core.ports.wallets import WalletChallenge
from core.shared.text import clean_text
from core.tokens.wallets import READ, REGISTER, Wallet

wallets = Blueprint("wallets", __name__, url_prefix="/api/v1/users")

REGISTERED = "External wallet registered"
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
SIGNATURE_PATTERN = r"^0x[0-9a-fA-F]{130}$"


def deps() -> HttpDependencies:
    found: HttpDependencies = current_app.config["RWA_DEPS"]
    return found


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- wire models -------------------------------------------------------------------------------


class WalletOut(WireModel):
    """A user's wallet: the custodial address the platform derived for them, or the external
    address they proved they hold."""

    model_config = ConfigDict(title="Wallet")

    user_id: str
    address: str = Field(pattern=ADDRESS_PATTERN, description="EIP-55 checksummed")
    custody: Literal["platform", "external"]
    verified_on_chain: bool = Field(
        description="The address is registered and verified in the identity registry on chain"
    )


class ChallengeOut(WireModel):
    """Sign ``message`` exactly (EIP-191 ``personal_sign``) before ``expiresAt``; once."""

    model_config = ConfigDict(title="WalletChallenge")

    challenge_id: str
    user_id: str
    message: str
    expires_at: str = DateTime


class RegisterWalletIn(BaseModel):
    """``POST /api/v1/users/{userId}/wallet``"""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        title="RegisterWallet",
        json_schema_extra={
            "example": {
                "address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                "signature": "0x" + "ab" * 65,
            }
        },
    )

    address: StrictStr = Field(
        max_length=42,
        description="The external address, 0x and 40 hex digits (EIP-55 checksum if mixed "
        "case); refused with `invalid_address`",
        json_schema_extra={"pattern": ADDRESS_PATTERN},
    )
    signature: StrictStr = Field(
        max_length=132,
        description="EIP-191 personal_sign signature of the challenge's message, 0x and 130 "
        "hex digits; refused with `invalid_signature` or `signature_mismatch`",
        json_schema_extra={"pattern": SIGNATURE_PATTERN},
    )
    challenge_id: StrictStr | None = Field(
        default=None,
        max_length=36,
        description="Which challenge was signed; default: the user's latest",
    )

    @field_validator("challenge_id")
    @classmethod
    def _clean_challenge(cls, value: str | None) -> str | None:
        return None if value is None else clean_text(value, max_length=36)


WalletEnvelope = envelope(WalletOut)
ChallengeEnvelope = envelope(ChallengeOut)
USER_PATH = {"user_id": {"maxLength": 100}}


def dump_wallet(wallet: Wallet) -> dict[str, Any]:
    return {
        "userId": wallet.user_id,
        "address": wallet.address,
        "custody": wallet.custody,
        "verifiedOnChain": wallet.verified_on_chain,
    }


def dump_challenge(challenge: WalletChallenge) -> dict[str, Any]:
    return {
        "challengeId": challenge.id,
        "userId": challenge.user_id,
        "message": challenge.message,
        "expiresAt": _iso(challenge.expires_at),
    }


def ok(data: Any, status: int = 200, message: str | None = None) -> Response:
    body: dict[str, Any] = {"data": data}
    if message:
        body["message"] = message
    response = jsonify(body)
    response.status_code = status
    return response


# -- routes ------------------------------------------------------------------------------------


@wallets.get("/<user_id>/wallet")
@documented(WalletEnvelope, auth=True, errors=[422], path=USER_PATH)
@guarded(READ)
async def get_wallet(user_id: str) -> Response:
    """The user's wallet. A trader reads only their own; an admin anyone's. The first read
    gives the user their custodial address."""
    wallet = await deps().wallets.wallet(current_actor(), user_id)
    return ok(dump_wallet(wallet))


@wallets.get("/<user_id>/wallet/challenge")
@documented(ChallengeEnvelope, auth=True, errors=[422], path=USER_PATH)
@guarded(REGISTER)
async def get_challenge(user_id: str) -> Response:
    """A new single-use challenge to sign with the external address's key."""
    challenge = await deps().wallets.challenge(current_actor(), user_id)
    return ok(dump_challenge(challenge))


@wallets.post("/<user_id>/wallet")
@documented(WalletEnvelope, auth=True, body=RegisterWalletIn, errors=[404, 409], path=USER_PATH)
@guarded(REGISTER)
async def register_wallet(user_id: str) -> Response:
    """Register an external address: ``{address, signature}`` where ``signature`` is the
    address's EIP-191 signature of the challenge's message. A wrong signer is 422
    ``signature_mismatch``; an expired or used challenge 409 ``challenge_expired`` /
    ``challenge_used``; no challenge 404 ``challenge_not_found``; an address registered to
    another user 409 ``wallet_address_taken``."""
    body = await read_body(RegisterWalletIn)
    wallet = await deps().wallets.register_external(
        current_actor(),
        user_id,
        body.address,
        body.signature,
        challenge_id=body.challenge_id,
    )
    return ok(dump_wallet(wallet), message=REGISTERED)
