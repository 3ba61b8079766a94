"""``EvmChain``: an in-process EVM (eth-tester + py-evm) running the real ``RwaToken`` bytecode.

Every transaction is mined at once into its own block.

Without ``data_dir`` the state lives in memory and is gone when the process exits (tests).
With ``data_dir`` (the embedded profile passes ``RWA_DATA_DIR``) py-evm's database is the
SQLite file ``chain.sqlite3`` there (``durable_store.ChainStore``): a restart, ``kill -9``
included, continues the same chain, so every contract keeps its code and balances and the
signer's nonce (hence every new contract address) keeps counting up. Nothing is replayed: the
chain is reopened from its stored canonical head, so restart time does not depend on how many
contracts exist. Each mined block is committed to the file in one transaction together with
the new head; a crash loses at most a transaction that was never mined.

The signer is the first of eth-tester's fixed development accounts (private key 1), funded at
genesis: the same key after every restart.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from eth.db.atomic import AtomicDB
from eth.exceptions import TransactionNotFound as EvmTransactionNotFound
from eth_account import Account
from eth_tester import EthereumTester, PyEVMBackend  # type: ignore[import-untyped]
from eth_tester.backends.pyevm.main import (  # type: ignore[import-untyped]
    generate_genesis_state_for_keys,
    get_default_genesis_params,
    setup_tester_chain,
)
from eth_tester.backends.pyevm.serializers import (  # type: ignore[import-untyped]
    serialize_transaction,
    serialize_transaction_receipt,
)
from eth_tester.exceptions import TransactionNotFound  # type: ignore[import-untyped]
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from adapters.outbound.chain.durable_store import ChainStore
from adapters.outbound.chain.web3_base import Web3ChainBase

log = logging.getLogger(__name__)


class DurablePyEVMBackend(PyEVMBackend):  # type: ignore[misc]
    """eth-tester's py-evm backend over a ``ChainStore``: opens the stored chain (or writes a
    genesis into an empty store) and commits the store after every mined block."""

    def __init__(self, store: ChainStore) -> None:
        # eth-tester defines its chain class inside ``setup_tester_chain``; build a throwaway
        # in-memory chain to get the class and the default accounts, then open ours with it.
        keys, template = setup_tester_chain()
        chain_class = type(template)
        self._store = store
        self.account_keys = keys
        db = AtomicDB(store.db)
        self.created = not store.has_chain
        if not self.created:
            self.chain = chain_class(db)
        else:
            genesis = get_default_genesis_params()
            self.chain = chain_class.from_genesis(
                db, genesis, generate_genesis_state_for_keys(keys)
            )
            self._commit()

    def _commit(self) -> None:
        head = self.chain.get_canonical_head()
        genesis = self.chain.get_canonical_block_header_by_number(0)
        self._store.commit_block(
            head_number=head.block_number,
            head_hash="0x" + head.hash.hex(),
            genesis_hash="0x" + genesis.hash.hex(),
            chain_id=self.chain.chain_id,
        )

    def mine_blocks(self, num_blocks: int = 1, coinbase: Any = None) -> Any:
        hashes = (
            super().mine_blocks(num_blocks)
            if coinbase is None
            else super().mine_blocks(num_blocks, coinbase)
        )
        self._commit()
        return hashes

    # eth-tester finds a transaction by scanning every block back from the head; py-evm keeps
    # an index (hash -> block number, position), so use it: lookups stay O(1) on a long chain.
    def _locate(self, transaction_hash: bytes) -> tuple[Any, Any, int]:
        pending = self.chain.get_block()
        for index, transaction in enumerate(pending.transactions):
            if transaction.hash == transaction_hash:
                return pending, transaction, index
        try:
            number, index = self.chain.chaindb.get_transaction_index(transaction_hash)
        except EvmTransactionNotFound:
            raise TransactionNotFound(
                f"No transaction found for transaction hash: 0x{transaction_hash.hex()}"
            ) from None
        block = self.chain.get_canonical_block_by_number(number)
        return block, block.transactions[index], index

    def get_transaction_by_hash(self, transaction_hash: bytes) -> Any:
        block, transaction, index = self._locate(transaction_hash)
        is_pending = block.number == self.chain.get_block().number
        return serialize_transaction(block, transaction, index, is_pending)

    def get_transaction_receipt(self, transaction_hash: bytes) -> Any:
        block, transaction, index = self._locate(transaction_hash)
        is_pending = block.number == self.chain.get_block().number
        receipts = block.get_receipts(self.chain.chaindb)
        return serialize_transaction_receipt(
            block, receipts, transaction, index, is_pending, self.chain.get_vm()
        )


class EvmChain(Web3ChainBase):
    """Signs with the first funded account of the in-process chain.

    ``data_dir``: keep the chain in ``data_dir/chain.sqlite3`` across restarts (one process
    per directory); None: in memory only.
    """

    def __init__(self, *, receipt_timeout: float = 30.0, data_dir: Path | None = None) -> None:
        self._store: ChainStore | None = None
        if data_dir is None:
            backend = PyEVMBackend()
        else:
            self._store = ChainStore(data_dir)
            try:
                backend = DurablePyEVMBackend(self._store)
            except BaseException:
                self._store.close()
                raise
            head = backend.chain.get_canonical_head().block_number
            state = "created" if backend.created else "reopened"
            log.info("embedded chain %s at block %d: %s", state, head, self._store.path)
        self._created = data_dir is not None and backend.created
        self._tester = EthereumTester(backend)
        w3 = Web3(EthereumTesterProvider(self._tester))
        account = Account.from_key(backend.account_keys[0].to_bytes())
        super().__init__(
            w3,
            account,
            endpoint="in-process EVM",
            receipt_timeout=receipt_timeout,
            poll_interval=0.01,
        )

    @property
    def ethereum_tester(self) -> EthereumTester:
        """The underlying tester, for tests that control mining or time."""
        return self._tester

    @property
    def store(self) -> ChainStore | None:
        """The chain file, when the chain is durable."""
        return self._store

    @property
    def created_fresh(self) -> bool:
        """True when this start wrote a new genesis (no chain file was there, or it was empty)."""
        return self._created

    def _close_transport(self) -> None:
        if self._store is not None:
            self._store.close()
