"""Which adapters bootstrap chooses for jobs, event bus, rate limits and cache; the worker
settings and the ``rwa-market worker`` command line. Nothing here connects to Redis."""

from __future__ import annotations

import shlex
import sys

import pytest

import bootstrap
import cli
from adapters.outbound.cache.memory import MemoryCache
from adapters.outbound.cache.redis import RedisCache
from adapters.outbound.events.memory import MemoryEventBus
from adapters.outbound.events.redis import RedisEventBus
from adapters.outbound.jobs.memory import MemoryJobQueue
from adapters.outbound.jobs.redis_stream import RedisStreamJobBroker
from adapters.outbound.jobs.taskiq import TaskiqJobQueue
from adapters.outbound.ratelimit.memory import MemoryRateLimiter
from adapters.outbound.ratelimit.redis import RedisRateLimiter
from bootstrap import ConfigurationError, Container, Settings

REDIS = "redis://127.0.0.1:1/3"


def container(**settings: object) -> Container:
    return Container(settings=Settings(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize("profile", ["embedded", "production"])
def test_redis_url_selects_every_redis_adapter(profile: str) -> None:
    c = container(profile=profile, redis_url=REDIS, jobs_queue="q:stream")
    jobs = c.jobs()
    assert isinstance(jobs, TaskiqJobQueue) and jobs.durable
    assert isinstance(jobs.broker, RedisStreamJobBroker)
    assert jobs.broker.queue_name == "q:stream"
    assert jobs.broker.due_key == "q:stream:due"
    assert isinstance(c.event_bus(), RedisEventBus)
    assert isinstance(c.rate_limiter(), RedisRateLimiter)
    assert isinstance(c.raw_cache(), RedisCache)  # counted by MeteredCache (c.cache())


def test_without_redis_everything_stays_in_memory() -> None:
    c = container(profile="embedded")
    jobs = c.jobs()
    assert isinstance(jobs, TaskiqJobQueue) and not jobs.durable
    assert isinstance(c.event_bus(), MemoryEventBus)
    assert isinstance(c.rate_limiter(), MemoryRateLimiter)
    assert isinstance(c.raw_cache(), MemoryCache)


def test_the_test_profile_ignores_redis() -> None:
    c = container(profile="test", redis_url=REDIS)
    assert isinstance(c.jobs(), MemoryJobQueue)
    assert isinstance(c.event_bus(), MemoryEventBus)
    assert isinstance(c.raw_cache(), MemoryCache)


def test_job_settings_reach_the_broker() -> None:
    c = container(
        profile="embedded", redis_url=REDIS, jobs_claim_idle_seconds=9.0, jobs_max_deliveries=2
    )
    broker = c.jobs().broker
    assert broker.claim_idle_seconds == 9.0
    assert broker.lease_renew_seconds == 3.0
    assert broker.max_deliveries == 2


def test_settings_from_env() -> None:
    s = Settings.from_env(
        {
            "RWA_REDIS_URL": REDIS,
            "RWA_JOBS_QUEUE": "x:stream",
            "RWA_JOBS_CLAIM_IDLE_SECONDS": "12.5",
            "RWA_JOBS_MAX_DELIVERIES": "7",
            "RWA_JOBS_RESULT_TTL_SECONDS": "60",
            "RWA_WORKER_IN_PROCESS": "no",
        }
    )
    assert (s.jobs_queue, s.jobs_claim_idle_seconds, s.jobs_max_deliveries) == ("x:stream", 12.5, 7)
    assert s.jobs_result_ttl_seconds == 60
    assert s.worker_in_process is False
    assert s.consume_jobs_in_process is False
    defaults = Settings.from_env({})
    assert defaults.jobs_claim_idle_seconds == 60.0
    assert defaults.worker_in_process is None


def test_who_consumes_jobs_by_default() -> None:
    assert Settings(profile="embedded", redis_url=REDIS).consume_jobs_in_process is True
    assert Settings(profile="production", redis_url=REDIS).consume_jobs_in_process is False
    assert Settings(
        profile="production", redis_url=REDIS, worker_in_process=True
    ).consume_jobs_in_process


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RWA_WORKER_IN_PROCESS": "maybe"}, "RWA_WORKER_IN_PROCESS"),
        ({"RWA_JOBS_CLAIM_IDLE_SECONDS": "0"}, "RWA_JOBS_CLAIM_IDLE_SECONDS"),
        ({"RWA_JOBS_MAX_DELIVERIES": "0"}, "RWA_JOBS_MAX_DELIVERIES"),
    ],
)
def test_bad_job_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env).check()


def test_a_worker_needs_the_redis_queue() -> None:
    runtime = bootstrap.build(Settings(profile="test"))
    with pytest.raises(ConfigurationError, match="RWA_REDIS_URL"):
        runtime.job_broker()


def test_worker_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("RWA_"):
            monkeypatch.delenv(name)
    assert cli.main(["worker", "--dry-run"]) == 2
    assert "RWA_REDIS_URL" in capsys.readouterr().err

    monkeypatch.setenv("RWA_REDIS_URL", REDIS)
    assert cli.main(["worker", "--dry-run", "-w", "3", "extra.tasks"]) == 0
    argv = shlex.split(capsys.readouterr().out.strip().splitlines()[-1])
    assert argv[:6] == [sys.executable, "-m", "taskiq", "worker", "worker:broker", "extra.tasks"]
    assert argv[argv.index("--workers") + 1] == "3"
    assert argv[argv.index("--ack-type") + 1] == "when_saved"
