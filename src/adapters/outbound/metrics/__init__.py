"""Metrics adapters: Prometheus for ``/metrics``, memory for tests."""
