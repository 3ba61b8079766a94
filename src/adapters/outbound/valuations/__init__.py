"""Valuation-source adapters: ``HttpJsonValuationSource`` (an HTTP JSON endpoint read with
httpx) and ``MemoryValuationSource`` (answers held in memory, parsed by the same rules)."""
