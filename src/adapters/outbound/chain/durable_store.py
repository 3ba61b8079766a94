"""A durable key-value store for py-evm's chain database: one SQLite file, one commit per block.

py-evm keeps everything it knows (headers, bodies, receipts, the state trie, the canonical
head) in a flat ``bytes -> bytes`` database. ``ChainStore`` is that database on disk:

- Writes are buffered in memory (``BufferedChainDB``) and reach the file only in
  ``commit_block()``, which the backend calls once per mined block: the block's trie nodes,
  its header, body, receipts and the new canonical head go in one SQLite transaction. A
  ``kill -9`` at any moment leaves the file at the last mined block; what is lost is at most
  a transaction that was applied to the pending block but not mined.
- Reads look in the buffer first, then in the file (point lookups on a ``WITHOUT ROWID``
  primary key, so restart time does not grow with the number of contracts).
- The ``meta`` table repeats the head (number and hash) and the genesis hash in the same
  transaction, for operators and for the consistency check at start.
- One process at a time: an exclusive ``flock`` on ``chain.lock`` beside the file. A second
  process (a worker started on the same data directory) is refused with a clear message
  instead of forking the chain.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import Any

from eth.db.backends.base import BaseDB

from core.shared.errors import ChainError

CHAIN_FILE = "chain.sqlite3"
LOCK_FILE = "chain.lock"
FORMAT_VERSION = "1"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_DELETED = None


class BufferedChainDB(BaseDB):
    """py-evm's ``DatabaseAPI`` over a SQLite connection, with writes held until ``flush``."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._pending: dict[bytes, bytes | None] = {}

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._pending:
            value = self._pending[key]
            if value is None:  # deleted in this block
                raise KeyError(key)
            return value
        row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[bytes(key)] = bytes(value)

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._pending[bytes(key)] = _DELETED

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def flush(self, meta: dict[str, str]) -> None:
        """Write the buffered changes and ``meta`` in one transaction, then forget them."""
        writes = [(k, v) for k, v in self._pending.items() if v is not _DELETED]
        deletes = [(k,) for k, v in self._pending.items() if v is _DELETED]
        with self._conn:  # BEGIN ... COMMIT, or ROLLBACK on error
            if writes:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", writes
                )
            if deletes:
                self._conn.executemany("DELETE FROM kv WHERE key = ?", deletes)
            self._conn.executemany(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", list(meta.items())
            )
        self._pending.clear()

    def discard(self) -> None:
        """Forget unflushed writes (the pending block of a process that is closing)."""
        self._pending.clear()


class ChainStore:
    """The chain file under a data directory, locked for this process while open."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / CHAIN_FILE
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(self.data_dir / LOCK_FILE)
        try:
            # The chain thread is the only user after construction (see Web3ChainBase).
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            with self._conn:
                for statement in _SCHEMA:
                    self._conn.execute(statement)
            self.db = BufferedChainDB(self._conn)
        except sqlite3.Error as exc:
            os.close(self._lock_fd)
            raise ChainError(f"cannot open the embedded chain file {self.path}: {exc}") from exc
        self._closed = False

    def meta(self) -> dict[str, str]:
        rows = self._conn.execute("SELECT name, value FROM meta").fetchall()
        return {str(name): str(value) for name, value in rows}

    @property
    def has_chain(self) -> bool:
        return "head_number" in self.meta()

    def commit_block(self, **meta: Any) -> None:
        self.db.flush({"format": FORMAT_VERSION, **{k: str(v) for k, v in meta.items()}})

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.db.discard()
        try:
            self._conn.close()
        finally:
            os.close(self._lock_fd)


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ChainError(
            f"the embedded chain in {path.parent} is in use by another process; "
            "run one service per RWA_DATA_DIR or point workers at a JSON-RPC node "
            "(RWA_CHAIN_RPC_URL)"
        ) from None
    return fd
