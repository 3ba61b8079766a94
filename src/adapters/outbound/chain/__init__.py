"""Chain adapters of the ``Chain`` port.

``MemoryChain`` (fake ledger), ``EvmChain`` (in-process EVM), ``Web3Chain`` (JSON-RPC).

Import the adapter modules directly; this package does not import web3 on its own.
"""
