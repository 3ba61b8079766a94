"""Imported by a ``taskiq worker`` process only (``rwa-market worker tests.harness.worker_tasks``):
registers the test-only job types on the worker's queue, next to the real ones."""

from __future__ import annotations

import worker
from tests.harness.worker_jobs import RecordJob, run_record

worker.queue.register(RecordJob, run_record)
