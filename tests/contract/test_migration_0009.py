"""Migration 0009 on SQLite and Postgres: a token deployment recorded before it (the retired
``RwaToken``, one record per market) becomes the market's ``token`` step; a downgrade keeps
the records of the old shape and drops the others (platform records, other steps)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.outbound.storage.sql.engine import create_engine
from adapters.outbound.storage.sql.migrate import downgrade_async, upgrade_async
from adapters.outbound.storage.sql.storage import SqlStorage
from core.markets.model import MarketStatus
from core.ports.deployments import PLATFORM_SUBJECT, DeploymentState
from tests.contract.deployment_suite import make_record
from tests.contract.storage_suite import make_asset, make_market

AT = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
OLD_HASH = "0x" + "ab" * 32


async def _old_record(url: str, market_id: str) -> None:
    """A row as 0003 stored it: no subject, no step."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO deployment_transactions (tx_hash, market_id, chain_id, signer,"
                    " nonce, raw_transaction, contract_address, holder, state, block_number,"
                    " error, created_at, updated_at) VALUES (:h, :m, 1337, :s, 0, '0x02f9',"
                    " :c, :s, 'mined', 1, NULL, :at, :at)"
                ),
                {
                    "h": OLD_HASH,
                    "m": market_id,
                    "s": "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf",
                    "c": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                    "at": AT,
                },
            )
    finally:
        await engine.dispose()


async def _check(url: str) -> None:
    await upgrade_async(url, "0008")
    market = make_market(status=MarketStatus.ACTIVE)
    storage = SqlStorage(url)
    try:
        async with storage.unit_of_work() as uow:
            await uow.markets.add(market, make_asset(market))
            await uow.commit()
    finally:
        await storage.close()
    await _old_record(url, market.id)

    await upgrade_async(url, "head")
    storage = SqlStorage(url)
    try:
        async with storage.unit_of_work() as uow:
            token = await uow.deployments.open_for(market.id, "token")
            assert token is not None and token.tx_hash == OLD_HASH
            assert (token.subject, token.step, token.state) == (
                market.id,
                "token",
                DeploymentState.MINED,
            )
            # the new shapes fit: a call step of the market, a platform record
            await uow.deployments.add(
                make_record(market.id, step="token.unpause", contract_address=None, holder=None)
            )
            await uow.deployments.add(make_record(None, step="claim_issuer"))
            await uow.commit()
        async with storage.unit_of_work() as uow:
            assert len(await uow.deployments.for_subject(PLATFORM_SUBJECT)) == 1
    finally:
        await storage.close()

    await downgrade_async(url, "0008")
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(sa.text("SELECT tx_hash FROM deployment_transactions"))
            ).all()
    finally:
        await engine.dispose()
    assert [r[0] for r in rows] == [OLD_HASH]
    await upgrade_async(url, "head")


async def test_sqlite_0009_keeps_recorded_deployments(tmp_path: Path) -> None:
    await _check(f"sqlite+aiosqlite:///{tmp_path / 'rwa.db'}")


@pytest.mark.postgres
async def test_postgres_0009_keeps_recorded_deployments(fresh_postgres_url: str) -> None:
    await _check(fresh_postgres_url)
