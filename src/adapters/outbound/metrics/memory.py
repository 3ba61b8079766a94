"""Metrics kept in plain dicts and counters, for tests to assert on."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping

from core.ports.metrics import Metrics


class MemoryMetrics(Metrics):
    def __init__(self) -> None:
        self.matching: defaultdict[str, list[float]] = defaultdict(list)
        self.trades: Counter[tuple[str, bool]] = Counter()
        self.settlement: defaultdict[str, list[float]] = defaultdict(list)
        self.deployments: Counter[str] = Counter()
        self.drift: dict[str, int] = {}
        self.valuations: Counter[str] = Counter()
        self.enqueued: Counter[str] = Counter()
        self.jobs: Counter[tuple[str, bool]] = Counter()
        self.job_seconds: defaultdict[str, list[float]] = defaultdict(list)
        self.depth: dict[str, int] = {}
        self.cache: Counter[tuple[str, bool]] = Counter()
        self.pool: tuple[int, int] | None = None
        self.markets: dict[str, int] = {}
        self.oldest_activating_seconds: float | None = None
        self.http: Counter[tuple[str, str, int]] = Counter()
        self.http_seconds: list[float] = []
        self.ws_open = 0
        self.ws_opened = 0
        self.ws_frames: Counter[str] = Counter()
        self.slow_consumer_closes = 0

    def observe_matching_latency(self, pair: str, seconds: float) -> None:
        _check_seconds(seconds)
        self.matching[pair].append(seconds)

    def trades_executed(self, pair: str, *, ok: bool, count: int = 1) -> None:
        _check_count(count)
        self.trades[(pair, ok)] += count

    def settlement_lag(self, kind: str, seconds: float) -> None:
        self.settlement[kind].append(max(0.0, seconds))

    def deployment_attempt(self, outcome: str) -> None:
        self.deployments[outcome] += 1

    def reconciliation_drift(self, token: str, amount: int) -> None:
        self.drift[token] = amount

    def valuation_fetched(self, outcome: str) -> None:
        self.valuations[outcome] += 1

    def job_enqueued(self, name: str) -> None:
        self.enqueued[name] += 1

    def job_processed(self, name: str, *, ok: bool, seconds: float) -> None:
        _check_seconds(seconds)
        self.jobs[(name, ok)] += 1
        self.job_seconds[name].append(seconds)

    def queue_depth(self, queue: str, depth: int) -> None:
        _check_count(depth)
        self.depth[queue] = depth

    def cache_hit(self, cache: str, *, hit: bool) -> None:
        self.cache[(cache, hit)] += 1

    def db_pool(self, *, in_use: int, size: int) -> None:
        _check_count(in_use)
        _check_count(size)
        self.pool = (in_use, size)

    def markets_by_status(self, counts: Mapping[str, int]) -> None:
        for n in counts.values():
            _check_count(n)
        self.markets = dict(counts)

    def oldest_activating(self, seconds: float) -> None:
        self.oldest_activating_seconds = max(0.0, seconds)

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        _check_seconds(seconds)
        self.http[(method, route, status)] += 1
        self.http_seconds.append(seconds)

    def ws_connection(self, *, opened: bool) -> None:
        if opened:
            self.ws_open += 1
            self.ws_opened += 1
        else:
            if self.ws_open == 0:
                raise ValueError("a WebSocket connection closed that never opened")
            self.ws_open -= 1

    def ws_messages(self, direction: str, count: int = 1) -> None:
        _check_count(count)
        self.ws_frames[direction] += count

    def ws_slow_consumer_closes(self, count: int = 1) -> None:
        _check_count(count)
        self.slow_consumer_closes += count


def _check_seconds(seconds: float) -> None:
    if not seconds >= 0:  # NaN too
        raise ValueError(f"a duration is never negative: {seconds}")


def _check_count(n: int) -> None:
    if n < 0:
        raise ValueError(f"a count is never negative: {n}")
