"""The token and compliance use cases on every storage (memory, SQLite, Postgres): a
compliance change writes its record, audit entry and ``compliance.changed`` event together or
not at all; the quote-token startup step is idempotent, also when several processes start at
once, fills in an address learned later and refuses a different one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from adapters.outbound.custody.eth_signatures import EthAccountSignatureVerifier
from adapters.outbound.permissions.local import LocalPolicyPermissions
from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade, upgrade_async
from core.ports.audit import AuditFilter
from core.ports.clock import Clock
from core.ports.storage import Storage
from core.shared.authorization import Authorizer
from core.shared.errors import PermissionDenied
from core.shared.events import Actor
from core.shared.ids import new_id
from core.tokens.compliance import ComplianceDenied
from core.tokens.compliance_use_cases import ComplianceUseCases, SetCompliance, require_compliant
from core.tokens.model import Token, TokenNotFound, TokenSymbolTaken, TokenType
from core.tokens.quote import QuoteTokenMismatch, QuoteTokenSetup, fixed_address, no_address
from core.tokens.use_cases import CreateToken, TokenUseCases
from tests.harness.postgres import PostgresServer, unique_database_name

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
ADMIN = Actor(id="admin-1", roles=("admin",))
TRADER = Actor(id="t-1", roles=("trader",))
ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
OTHER_ADDRESS = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"


class StepClock(Clock):
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        self.at += timedelta(milliseconds=1)
        return self.at


def approved(**overrides: object) -> SetCompliance:
    fields: dict[str, object] = {
        "kyc_status": "APPROVED",
        "whitelisted": True,
        "accredited": False,
        "jurisdiction": "PT",
        "expires_at": "2027-01-01T00:00:00Z",
    }
    fields.update(overrides)
    return SetCompliance(**fields)


class TokenUseCaseContract:
    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        raise NotImplementedError
        yield  # pragma: no cover

    def _use_cases(self, storage: Storage) -> tuple[TokenUseCases, ComplianceUseCases]:
        clock = StepClock()
        authorizer = Authorizer(LocalPolicyPermissions())
        tokens = TokenUseCases(storage, authorizer, clock, EthAccountSignatureVerifier())
        return tokens, ComplianceUseCases(storage, authorizer, clock)

    async def test_a_compliance_change_commits_record_audit_and_event_together(
        self, storage: Storage
    ) -> None:
        tokens, compliance = self._use_cases(storage)
        gold = await tokens.create(
            ADMIN, CreateToken(symbol="GOLD", name="Gold", type="RWA", decimals=0)
        )
        first = await compliance.set(ADMIN, "t-1", approved())
        second = await compliance.set(ADMIN, "t-1", approved(kyc_status="REJECTED"))
        own = await compliance.set(ADMIN, "t-1", approved(token="GOLD"))
        assert (first.version, second.version, own.version) == (1, 2, 1)
        assert own.token_id == gold.id and second.created_at == first.created_at
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.compliance.for_user("t-1") == [second, own]
            entries = await uow.audit.query(AuditFilter(action="compliance.update"), limit=10)
            events = await uow.events.for_aggregate("user:t-1")
            pending = await uow.outbox.pending(100)
        assert [e.after["version"] for e in entries] == [1, 2, 1]
        assert entries[1].before == entries[2].after  # newest first: v2 built on v1
        assert [(e.type, e.stream, e.seq) for e in events] == [
            ("compliance.changed", "user:t-1", n) for n in (1, 2, 3)
        ]
        assert events[2].metadata["tokenId"] == gold.id
        assert events[2].metadata["symbol"] == "GOLD"
        assert sum(m.event.stream == "user:t-1" for m in pending) == 3
        async with storage.unit_of_work(read_only=True) as uow:
            with pytest.raises(ComplianceDenied) as caught:
                await require_compliant(uow, "t-1", another_rwa(gold), T0)
            assert caught.value.code == "kyc_not_approved"  # the general record: REJECTED
            assert await require_compliant(uow, "t-1", gold, T0) == own

    async def test_a_refused_change_writes_nothing(self, storage: Storage) -> None:
        _, compliance = self._use_cases(storage)
        with pytest.raises(TokenNotFound):
            await compliance.set(ADMIN, "t-1", approved(token="NOPE"))
        with pytest.raises(PermissionDenied):
            await compliance.set(TRADER, "t-1", approved())
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.compliance.for_user("t-1") == []
            assert await uow.audit.query(AuditFilter(), limit=10) == []
            assert await uow.events.for_aggregate("user:t-1") == []

    async def test_a_taken_symbol_leaves_no_audit_entry(self, storage: Storage) -> None:
        tokens, _ = self._use_cases(storage)
        command = CreateToken(symbol="WETH", name="Wrapped", type="CRYPTO", decimals=18)
        await tokens.create(ADMIN, command)
        with pytest.raises(TokenSymbolTaken):
            await tokens.create(ADMIN, command)
        async with storage.unit_of_work(read_only=True) as uow:
            assert len(await uow.audit.query(AuditFilter(action="token.create"), limit=10)) == 1

    async def test_the_quote_token_setup_is_idempotent_across_processes(
        self, storage: Storage
    ) -> None:
        setups = [
            QuoteTokenSetup(storage, StepClock(), symbol="USDC", address_source=no_address)
            for _ in range(3)
        ]
        made = await asyncio.gather(*(s.ensure() for s in setups))
        assert len({t.id for t in made}) == 1
        usdc = made[0]
        assert (usdc.type, usdc.decimals, usdc.contract_address) == (TokenType.STABLE, 6, None)
        # a later start learns the address: filled in once, audited
        later = QuoteTokenSetup(
            storage, StepClock(), symbol="USDC", address_source=fixed_address(ADDRESS)
        )
        filled = await later.ensure()
        assert filled.id == usdc.id and filled.contract_address == ADDRESS
        assert (await later.ensure()) == filled
        lower = fixed_address(ADDRESS.lower())
        same = QuoteTokenSetup(storage, StepClock(), symbol="USDC", address_source=lower)
        assert (await same.ensure()) == filled
        # a start that answers another address stops
        wrong = QuoteTokenSetup(
            storage, StepClock(), symbol="USDC", address_source=fixed_address(OTHER_ADDRESS)
        )
        with pytest.raises(QuoteTokenMismatch):
            await wrong.ensure()
        async with storage.unit_of_work(read_only=True) as uow:
            actions = [e.action for e in await uow.audit.query(AuditFilter(), limit=10)]
        assert actions == ["token.set_contract_address"]  # once: the first registration is not


def another_rwa(token: Token) -> Token:
    """Another RWA token, one the user has no record of its own for."""
    return attrs.evolve(token, id=new_id(), symbol="OTHER")


class TestMemoryTokenUseCases(TokenUseCaseContract):
    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        storage = MemoryStorage()
        yield storage
        await storage.close()


class TestSqliteTokenUseCases(TokenUseCaseContract):
    @pytest.fixture
    async def storage(self, tmp_path: Path) -> AsyncIterator[Storage]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'tokens.db'}"
        await upgrade_async(url)
        storage = SqlStorage(url)
        yield storage
        await storage.close()


@pytest.fixture(scope="session")
def tokens_postgres_template(postgres_server: PostgresServer) -> str:
    name = unique_database_name("rwa_tokens_template")
    upgrade(postgres_server.create_database(name))
    return name


@pytest.fixture
def tokens_postgres_url(
    postgres_server: PostgresServer, tokens_postgres_template: str
) -> Iterator[str]:
    name = unique_database_name()
    yield postgres_server.create_database(name, template=tokens_postgres_template)
    postgres_server.drop_database(name)


@pytest.mark.postgres
class TestPostgresTokenUseCases(TokenUseCaseContract):
    @pytest.fixture
    async def storage(self, tokens_postgres_url: str) -> AsyncIterator[Storage]:
        storage = SqlStorage(tokens_postgres_url)
        yield storage
        await storage.close()
