"""``Web3Chain``: any EVM node over JSON-RPC (HTTP), signing locally with a private key.

Not done yet: Oasis Sapphire (chain ids 23293 localnet, 23294 mainnet, 23295 testnet) needs
the provider wrapped with ``oasis-sapphire-py`` so that calldata is encrypted. This adapter
does not wrap anything yet; against Sapphire it sends plain, unencrypted transactions.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from eth_account import Account
from web3 import HTTPProvider, Web3

from adapters.outbound.chain.web3_base import Web3ChainBase
from core.shared.errors import ChainError


def redact_url(url: str) -> str:
    """Scheme, host and port only: paths and user info may carry API keys."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


class Web3Chain(Web3ChainBase):
    """A JSON-RPC node at ``rpc_url``; ``chain_id``, when given, must match the node's."""

    def __init__(
        self,
        rpc_url: str,
        private_key: str,
        chain_id: int | None = None,
        receipt_timeout: float = 120.0,
        *,
        request_timeout: float = 30.0,
        poll_interval: float = 0.5,
    ) -> None:
        try:
            account = Account.from_key(private_key)
        except Exception:  # never echo the key itself
            raise ChainError("the chain private key is not a valid 32-byte hex key") from None
        self._session = requests.Session()
        provider = HTTPProvider(
            rpc_url,
            request_kwargs={"timeout": request_timeout},
            session=self._session,
        )
        super().__init__(
            Web3(provider),
            account,
            endpoint=redact_url(rpc_url),
            chain_id=chain_id,
            receipt_timeout=receipt_timeout,
            poll_interval=poll_interval,
        )

    def _close_transport(self) -> None:
        self._session.close()
