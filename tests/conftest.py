"""Fixtures shared by every tier. Service harnesses live in tests/harness."""

pytest_plugins = [
    "tests.harness.postgres",
    "tests.harness.hardhat",
    "tests.harness.redis",
    "tests.harness.permissions_core",
]
