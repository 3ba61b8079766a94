"""Valuation-source port: where ``update-token-metadata`` reads the current valuation of a
market's real-world asset (an appraiser's or administrator's HTTP JSON endpoint, ...). A source
only reads and parses strictly; the job decides what to record."""

from __future__ import annotations

import abc
from datetime import datetime
from decimal import Decimal

import attrs

from core.shared.errors import ServiceUnavailable


class ValuationSourceError(ServiceUnavailable):
    """The source gave no usable valuation: unreachable, unknown asset, a malformed answer.
    ``message`` says which and never repeats the source's text unescaped."""

    code = "valuation_source_error"


@attrs.frozen
class ValuationQuote:
    """The source's valuation of the asset of ``market_id`` (``symbol``: its token): an exact
    positive ``valuation`` in ``currency`` (ISO 4217), as of ``as_of`` (timezone-aware UTC)."""

    market_id: str
    symbol: str
    valuation: Decimal
    currency: str
    as_of: datetime
    source: str


class ValuationSource(abc.ABC):
    @property
    @abc.abstractmethod
    def source(self) -> str:
        """A short stable name of this source (recorded as each valuation's ``source``)."""

    @abc.abstractmethod
    async def latest(self, market_id: str, symbol: str) -> ValuationQuote:
        """The source's current valuation of the market's asset; ``ValuationSourceError`` when
        there is none or the answer is not usable."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
