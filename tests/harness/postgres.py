"""Pytest plugin: a throwaway PostgreSQL cluster on loopback, started once per test session.

``initdb`` and ``pg_ctl`` run as the ``postgres`` OS user (``runuser``) when we are root,
because Postgres refuses to run as root. Data directory and unix socket live in a temp
directory that is removed at the end of the session.

Fixtures:
- ``postgres_server``: the running ``PostgresServer`` (create and drop databases with it);
- ``postgres_url``: an asyncpg SQLAlchemy URL to a database created for the session;
- ``fresh_postgres_url``: a new empty database for one test, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.common import free_port, missing_service

PG_USER = "postgres"  # both the OS user that runs the server and the database superuser
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
}


def find_bin_dir() -> Path | None:
    """A directory holding initdb and pg_ctl: PATH first, then /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb"), shutil.which("pg_ctl")
    if all(on_path):
        return Path(os.path.realpath(on_path[0] or "")).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: int(Path(path).parent.name) if Path(path).parent.name.isdigit() else 0,
        reverse=True,
    )
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class PostgresServer:
    """A running cluster that trusts connections from 127.0.0.1 as ``postgres``."""

    bin_dir: Path
    base_dir: Path
    port: int
    host: str = "127.0.0.1"
    user: str = PG_USER

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    def url(self, database: str = "postgres") -> str:
        """An async SQLAlchemy URL (asyncpg driver) to ``database``."""
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        psql = self.bin_dir / "psql"
        argv = [str(psql) if psql.exists() else "psql", "-X", "-q", "-t", "-A"]
        argv += ["-v", "ON_ERROR_STOP=1", "-h", self.host, "-p", str(self.port)]
        argv += ["-U", self.user, "-d", database, "-c", sql]
        done = _run(argv, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({sql!r}): {done.stderr.strip()}")
        return done.stdout

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create ``name`` (optionally as a copy of ``template``) and return its URL."""
        suffix = f' TEMPLATE "{template}"' if template else ""
        self.psql(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        done = _run(
            _as_server_user(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "30",
                    "stop",
                ]
            ),
            timeout=60,
        )
        if done.returncode != 0:
            self._kill()

    def _kill(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def start_postgres(bin_dir: Path, *, attempts: int = 3) -> PostgresServer:
    """initdb a new cluster in a temp dir and start it on a free loopback port."""
    base_dir = Path(tempfile.mkdtemp(prefix="rwa-pg-"))
    try:
        if os.geteuid() == 0:
            account = pwd.getpwnam(PG_USER)
            os.chown(base_dir, account.pw_uid, account.pw_gid)
        server = PostgresServer(bin_dir=bin_dir, base_dir=base_dir, port=0)
        initdb = [
            str(bin_dir / "initdb"),
            "-D",
            str(server.data_dir),
            "-U",
            PG_USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]
        done = _run(_as_server_user(initdb))
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        with (server.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"\nunix_socket_directories = '{base_dir}'\n")
            conf.writelines(f"{key} = {value}\n" for key, value in SETTINGS.items())
        log = base_dir / "server.log"
        for _ in range(attempts):
            server.port = free_port()
            start = [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(server.data_dir),
                "-l",
                str(log),
                "-o",
                f"-p {server.port}",
                "-w",
                "-t",
                "60",
                "start",
            ]
            if _run(_as_server_user(start)).returncode == 0:
                return server
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"pg_ctl start failed {attempts} times; server log:\n{tail}")
    except BaseException:
        shutil.rmtree(base_dir, ignore_errors=True)
        raise


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the whole session."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        missing_service("PostgreSQL: initdb/pg_ctl not on PATH nor in /usr/lib/postgresql/*/bin")
    assert bin_dir is not None
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing_service("PostgreSQL: running as root needs runuser to drop to the postgres user")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            missing_service(f"PostgreSQL: running as root needs an OS user named {PG_USER}")
    server = start_postgres(bin_dir)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """A database created for this session (shared by every test that asks for it)."""
    return postgres_server.create_database("rwa_session")


def unique_database_name(prefix: str = "rwa_t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """An empty database of its own for one test, dropped when the test ends."""
    name = unique_database_name()
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)
