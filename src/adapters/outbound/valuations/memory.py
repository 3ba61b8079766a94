"""``MemoryValuationSource``: answers set by a test (or a demo), kept as raw bytes per symbol
and parsed by the HTTP source's own rules (``answer.parse_answer``): it refuses exactly what
``HttpJsonValuationSource`` refuses. A symbol without an answer, or one marked unavailable, is
a ``ValuationSourceError`` as an unreachable source would be."""

from __future__ import annotations

import json

from adapters.outbound.valuations.answer import fail, parse_answer
from core.ports.valuation_source import ValuationQuote, ValuationSource


class MemoryValuationSource(ValuationSource):
    def __init__(self, source: str = "memory") -> None:
        self._source = source
        self._answers: dict[str, bytes | None] = {}
        self.requests: list[tuple[str, str]] = []

    @property
    def source(self) -> str:
        return self._source

    def set_json(self, symbol: str, document: object) -> None:
        """Answer ``document`` (encoded as JSON, as a server would send it) for ``symbol``."""
        self._answers[symbol] = json.dumps(document).encode()

    def set_raw(self, symbol: str, body: bytes) -> None:
        self._answers[symbol] = bytes(body)

    def set_unavailable(self, symbol: str) -> None:
        self._answers[symbol] = None

    async def latest(self, market_id: str, symbol: str) -> ValuationQuote:
        self.requests.append((market_id, symbol))
        body = self._answers.get(symbol)
        if body is None:
            raise fail(self._source, symbol, "no answer")
        return parse_answer(body, source=self._source, market_id=market_id, symbol=symbol)
