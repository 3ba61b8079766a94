"""Metrics port: what the service measures, in its own words.

Core code reports facts (a match took 12 µs, a job failed, a market is activating); the
adapter decides how they are kept and exported (``PrometheusMetrics`` for ``/metrics``,
``MemoryMetrics`` for tests). Label values are short, bounded names (a pair id, a job name,
a route template, a token id), never free text or a raw URL path.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping


class Metrics(abc.ABC):
    # -- trading ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def observe_matching_latency(self, pair: str, seconds: float) -> None:
        """One command through the matching engine of ``pair`` (the pure book step)."""

    @abc.abstractmethod
    def trades_executed(self, pair: str, *, ok: bool, count: int = 1) -> None:
        """``count`` trades committed (``ok``) or matched then lost with their batch."""

    # -- chain -----------------------------------------------------------------------------------

    @abc.abstractmethod
    def settlement_lag(self, kind: str, seconds: float) -> None:
        """From an operation's ledger commit to its confirmed transaction (mint, transfer,
        withdrawal, trade: its batch's ``batchForcedTransfer``)."""

    @abc.abstractmethod
    def deployment_attempt(self, outcome: str) -> None:
        """One ``deploy-token`` attempt: ``succeeded``, ``retrying`` or ``failed``."""

    @abc.abstractmethod
    def reconciliation_drift(self, token: str, amount: int) -> None:
        """How far chain and ledger differ for ``token`` after a reconcile run: the sum of
        the absolute differences, in base units (0: they agree)."""

    @abc.abstractmethod
    def valuation_fetched(self, outcome: str) -> None:
        """One market's valuation in an ``update-token-metadata`` run: ``recorded`` or the
        reason it was refused (``stale``, ``out_of_band``, ``repeated``, ``unavailable``...)."""

    # -- jobs, cache, database -------------------------------------------------------------------

    @abc.abstractmethod
    def job_enqueued(self, name: str) -> None: ...

    @abc.abstractmethod
    def job_processed(self, name: str, *, ok: bool, seconds: float) -> None: ...

    @abc.abstractmethod
    def queue_depth(self, queue: str, depth: int) -> None:
        """Jobs queued, delayed or running in ``queue``."""

    @abc.abstractmethod
    def cache_hit(self, cache: str, *, hit: bool) -> None: ...

    @abc.abstractmethod
    def db_pool(self, *, in_use: int, size: int) -> None:
        """Connections of this process's pool checked out, and the pool's capacity."""

    # -- markets ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def markets_by_status(self, counts: Mapping[str, int]) -> None:
        """How many markets are in each status (every status, zeros included)."""

    @abc.abstractmethod
    def oldest_activating(self, seconds: float) -> None:
        """Age of the oldest market still ``activating`` (0: none)."""

    # -- inbound ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request; ``route`` is the matched rule (``/api/v1/markets/<id>``)."""

    @abc.abstractmethod
    def ws_connection(self, *, opened: bool) -> None:
        """A WebSocket connection opened (True) or closed (False)."""

    @abc.abstractmethod
    def ws_messages(self, direction: str, count: int = 1) -> None:
        """Frames ``in`` from clients or ``out`` to them."""

    @abc.abstractmethod
    def ws_slow_consumer_closes(self, count: int = 1) -> None: ...


class NoMetrics(Metrics):
    """Keeps nothing: for one-shot commands and the default of use cases built without
    metrics (the composition root hands every long-running part a real adapter)."""

    def observe_matching_latency(self, pair: str, seconds: float) -> None:
        return None

    def trades_executed(self, pair: str, *, ok: bool, count: int = 1) -> None:
        return None

    def settlement_lag(self, kind: str, seconds: float) -> None:
        return None

    def deployment_attempt(self, outcome: str) -> None:
        return None

    def reconciliation_drift(self, token: str, amount: int) -> None:
        return None

    def valuation_fetched(self, outcome: str) -> None:
        return None

    def job_enqueued(self, name: str) -> None:
        return None

    def job_processed(self, name: str, *, ok: bool, seconds: float) -> None:
        return None

    def queue_depth(self, queue: str, depth: int) -> None:
        return None

    def cache_hit(self, cache: str, *, hit: bool) -> None:
        return None

    def db_pool(self, *, in_use: int, size: int) -> None:
        return None

    def markets_by_status(self, counts: Mapping[str, int]) -> None:
        return None

    def oldest_activating(self, seconds: float) -> None:
        return None

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        return None

    def ws_connection(self, *, opened: bool) -> None:
        return None

    def ws_messages(self, direction: str, count: int = 1) -> None:
        return None

    def ws_slow_consumer_closes(self, count: int = 1) -> None:
        return None


NO_METRICS: Metrics = NoMetrics()
