"""Helpers shared by the service harnesses: free ports and the CI rule for missing services."""

from __future__ import annotations

import os
import socket

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing_service(message: str) -> None:
    """Locally a loud skip; with CI=true a failure, because CI must run every tier."""
    if in_ci():
        pytest.fail(f"CI=true but a required service is missing: {message}", pytrace=False)
    pytest.skip(f"SERVICE MISSING (would fail in CI): {message}")
