"""The coarse roles of a bearer token and the actions each may ever take.

Two uses: the local permission policies decide by this table, and every endpoint refuses at
once (403, before looking at the body) a caller none of whose roles could take any of the
endpoint's actions. The precise decision (entity, ownership) stays with the permissions port.
"""

from __future__ import annotations

from collections.abc import Iterable

ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(
        {
            "market.register",
            "market.register_for_issuer",
            "market.approve",
            "market.reject",
            "market.activate",
            "market.pause",
            "market.resume",
            "market.archive",
            "token.create",
            "token.mint",
            "token.transfer",
            "token.transfer_any",  # another user's funds (fromUserId)
            "compliance.update",
            "withdrawal.request",
            "withdrawal.read",
            "withdrawal.read_any",  # any user's withdrawals
            "withdrawal.approve",
            "deposit.read",
            "deposit.read_any",  # any user's deposits
            "order.submit",
            "order.cancel",
            "wallet.read",
            "wallet.register",
            "wallet.manage_any",  # any user's wallet, not only the caller's own
            "audit.read",
            "balance.read",
            "balance.read_any",  # any user's balances, not only the caller's own
            "compliance.read",
            "compliance.read_any",  # any user's compliance records
            "order.read",
            "order.read_any",  # any user's orders and trades
            "pair.create",
            "pair.update",
            "market.valuation_update",
        }
    ),
    "issuer": frozenset(
        {
            "market.register",
            "market.activate",
            "market.valuation_update",  # its own markets only (OWNER_ONLY)
            "token.transfer",
            "withdrawal.request",
            "withdrawal.read",
            "deposit.read",
            "wallet.read",
            "wallet.register",
            "balance.read",
            "compliance.read",
        }
    ),
    "trader": frozenset(
        {
            "order.submit",
            "order.cancel",
            "token.transfer",
            "withdrawal.request",
            "withdrawal.read",
            "deposit.read",
            "wallet.read",
            "wallet.register",
            "balance.read",
            "compliance.read",
            "order.read",
        }
    ),
}

# Actions an issuer may take only on what it owns.
OWNER_ONLY = {("issuer", "market.activate"), ("issuer", "market.valuation_update")}


def roles_allow_any(roles: Iterable[str], actions: Iterable[str]) -> bool:
    """Whether some role in ``roles`` grants at least one of ``actions``."""
    wanted = frozenset(actions)
    return any(wanted & ROLE_ACTIONS.get(role, frozenset()) for role in roles)
