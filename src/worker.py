"""Entry point of the ``taskiq worker`` processes (production profile, Redis job queue).

    taskiq worker worker:broker --workers 1 --ack-type when_saved
    # or, with the right arguments: rwa-market worker

Importing this module builds the container from the environment (``RWA_*``, the same as
the API) and exposes its job broker as ``broker``: a taskiq-redis ``RedisStreamBroker`` (see
``adapters/outbound/jobs/redis_stream.py``). When taskiq starts the worker, the job handlers
are registered (``deploy-token`` -> ``TokenDeployment.handle``); when it stops, the chain
and storage clients are closed.

No scheduler process is needed: delayed jobs (the deploy-token retries) wait in a Redis
sorted set, and every worker moves them to the stream when they fall due.

Extra modules given on the taskiq command line are imported after this one; tests use that
to register test-only job types on ``queue``.
"""

from __future__ import annotations

import logging

from taskiq import AsyncBroker, TaskiqEvents, TaskiqState

import bootstrap
from gc_tuning import tune_gc
from logs import configure_logging
from settings import Settings

log = logging.getLogger("rwa.worker")

settings = Settings.from_env()
configure_logging(  # replaces taskiq's
    settings.log_level, settings.effective_log_format, secrets=settings.secret_values()
)
runtime = bootstrap.build(settings)
broker: AsyncBroker = runtime.job_broker()
queue = runtime.container.jobs()


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def _startup(state: TaskiqState) -> None:
    await runtime.start_worker()
    tune_gc(freeze=settings.gc_freeze, thresholds=settings.gc_thresholds)


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def _shutdown(state: TaskiqState) -> None:
    await runtime.stop_worker()
