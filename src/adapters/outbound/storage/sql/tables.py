"""The schema as SQLAlchemy Core metadata. Migrations must keep the database equal to this."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from adapters.outbound.storage.sql.types import DecimalText, ExactJson, IntegerText, UtcDateTime
from adapters.outbound.storage.sql.uint import Uint256, uint_checks

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# JSON everywhere, JSONB on Postgres.
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# Integer primary keys autoincrement as ROWID on SQLite and BIGSERIAL on Postgres.
Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# A symbol belongs to at most one market that is neither rejected nor archived.
LIVE_MARKET = "status NOT IN ('rejected', 'archived')"

markets = sa.Table(
    "markets",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("asset_type", sa.String(32), nullable=False),
    sa.Column("issuer_id", sa.Text, nullable=False),
    sa.Column("entity_id", sa.Text),
    sa.Column("token_symbol", sa.Text, nullable=False),
    sa.Column("token_name", sa.Text, nullable=False),
    sa.Column("total_supply", IntegerText, nullable=False),
    sa.Column("decimals", sa.Integer, nullable=False),
    sa.Column("tick_size", DecimalText),
    sa.Column("lot_size", DecimalText),
    sa.Column("maker_fee_bps", sa.Integer),
    sa.Column("taker_fee_bps", sa.Integer),
    sa.Column("accredited_investors_only", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("allowed_countries", ExactJson, nullable=False, server_default="[]"),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("contract_address", sa.Text),
    sa.Column("deployment_tx_hash", sa.Text),
    sa.Column("approved_by", sa.Text),
    sa.Column("approved_at", UtcDateTime),
    sa.Column("activated_at", UtcDateTime),
    sa.Column("rejected_by", sa.Text),
    sa.Column("rejected_at", UtcDateTime),
    sa.Column("rejected_reason", sa.Text),
    sa.Column("activation_attempts", sa.Integer, nullable=False),
    sa.Column("activation_error", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Index("ix_markets_status_id", "status", "id"),
    sa.Index("ix_markets_asset_type_id", "asset_type", "id"),
    sa.Index("ix_markets_issuer_id_id", "issuer_id", "id"),
    sa.Index(
        "uq_markets_live_token_symbol",
        "token_symbol",
        unique=True,
        sqlite_where=sa.text(LIVE_MARKET),
        postgresql_where=sa.text(LIVE_MARKET),
    ),
)

market_assets = sa.Table(
    "market_assets",
    metadata,
    sa.Column(
        "market_id",
        sa.String(36),
        sa.ForeignKey("markets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("valuation", DecimalText),
    sa.Column("currency", sa.Text),
    sa.Column("location", sa.Text),
    sa.Column("description", sa.Text),
    # free-form JSON as exact text: numbers come back as sent (0.95 stays 0.95)
    sa.Column("compliance_documents", ExactJson, nullable=False),
    sa.Column("regulatory_info", ExactJson, nullable=False),
    sa.Column("attributes", ExactJson, nullable=False),
    sa.Column("id", sa.String(36), nullable=False),
)


def _event_columns() -> list[sa.Column[object]]:
    """The columns of a domain event, shared by the history and the outbox."""
    return [
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("aggregate_id", sa.Text, nullable=False),
        sa.Column("actor_id", sa.Text, nullable=False),
        sa.Column("actor_type", sa.Text, nullable=False),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("decision", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("metadata", Json, nullable=False),
        sa.Column("stream", sa.Text, nullable=False),
        sa.Column("stream_seq", sa.BigInteger, nullable=False),
    ]


market_events = sa.Table(
    "market_events",
    metadata,
    sa.Column("seq", Position, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False),
    *_event_columns(),
    sa.UniqueConstraint("id", name="uq_market_events_id"),
    # the event's stream and its number there (DomainEvent.seq); the global order is "seq"
    sa.Index("uq_market_events_stream_stream_seq", "stream", "stream_seq", unique=True),
    sa.Index("ix_market_events_aggregate_id_seq", "aggregate_id", "seq"),
    sqlite_autoincrement=True,
)

OUTBOX_UNFINISHED = "published_at IS NULL OR reacted_at IS NULL"

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("position", Position, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False),
    *_event_columns(),
    sa.Column("published_at", UtcDateTime),  # went out on the event bus
    sa.Column("reacted_at", UtcDateTime),  # every reaction ran
    # the request, connection or job that wrote it (its reactions log with this id)
    sa.Column("correlation_id", sa.String(64)),
    sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    sa.Index("uq_outbox_stream_stream_seq", "stream", "stream_seq", unique=True),
    sa.Index(
        "ix_outbox_unfinished",
        "position",
        sqlite_where=sa.text(OUTBOX_UNFINISHED),
        postgresql_where=sa.text(OUTBOX_UNFINISHED),
    ),
    sqlite_autoincrement=True,
)

# Named leases with one holder until they expire (the outbox relay's leader).
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)

# The inbox of the Entity Permissions Core's events: one row per event id, ever.
PROCESS_STATUSES = "status IN ('success', 'failed', 'skipped')"

processed_events = sa.Table(
    "processed_events",
    metadata,
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("payload", Json, nullable=False),
    sa.Column("context", Json, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("processed_at", UtcDateTime, nullable=False),
    sa.CheckConstraint(PROCESS_STATUSES, name="status"),
    sa.Index("ix_processed_events_status_processed_at", "status", "processed_at"),
)

# Named positions in outside feeds (key/value).
cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

# Chain transactions, recorded before they are sent (core/ports/deployments.py): at most one
# open (signed, sent or mined) transaction per (subject, step); the subject is a market's id
# or "@platform" (market_id NULL).
DEPLOYMENT_STATES = "state IN ('signed', 'sent', 'mined', 'failed', 'superseded')"
OPEN_DEPLOYMENT = "state IN ('signed', 'sent', 'mined')"

deployment_transactions = sa.Table(
    "deployment_transactions",
    metadata,
    sa.Column("tx_hash", sa.String(66), primary_key=True),
    sa.Column("market_id", sa.String(36), sa.ForeignKey("markets.id"), nullable=True),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("signer", sa.String(42), nullable=False),
    sa.Column("nonce", sa.BigInteger, nullable=False),
    sa.Column("raw_transaction", sa.Text, nullable=False),
    sa.Column("contract_address", sa.String(42), nullable=True),
    sa.Column("holder", sa.String(42), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("block_number", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("subject", sa.String(36), nullable=False),
    sa.Column("step", sa.String(64), nullable=False),
    sa.CheckConstraint(DEPLOYMENT_STATES, name="state"),
    sa.Index(
        "uq_deployment_transactions_open_step",
        "subject",
        "step",
        unique=True,
        sqlite_where=sa.text(OPEN_DEPLOYMENT),
        postgresql_where=sa.text(OPEN_DEPLOYMENT),
    ),
    sa.Index("ix_deployment_transactions_signer_nonce", "signer", "nonce"),
    sa.Index("ix_deployment_transactions_state_block_number", "state", "block_number"),
)

# -- the ledger (see docs/architecture.md, "The ledger") -------------------------------------
# Amounts are Uint256: NUMERIC(78, 0) on Postgres, 78 zero-padded digits on SQLite; every
# stored amount has a CHECK keeping it in 0 .. 2**256 - 1, so no balance is ever negative.
LEDGER_BUCKETS = "bucket IN ('available', 'locked')"
LEDGER_SIDES = "side IN ('debit', 'credit')"
LEDGER_COUNTERS = "counter IN ('minted', 'deposited', 'withdrawn', 'burned')"
# The journal's sequence: BIGINT on Postgres, the ROWID on SQLite (as Position).
JournalSeq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

ledger_accounts = sa.Table(
    "ledger_accounts",
    metadata,
    sa.Column("token", sa.String(100), primary_key=True),
    sa.Column("owner", sa.String(200), primary_key=True),
    sa.Column("available", Uint256, nullable=False),
    sa.Column("locked", Uint256, nullable=False),
    *uint_checks("available"),
    *uint_checks("locked"),
    sa.Index("ix_ledger_accounts_owner_token", "owner", "token"),
)

# Per-token counters, only ever increased: sum of balances = minted + deposited - withdrawn
# - burned.
ledger_supply = sa.Table(
    "ledger_supply",
    metadata,
    sa.Column("token", sa.String(100), primary_key=True),
    sa.Column("minted", Uint256, nullable=False),
    sa.Column("deposited", Uint256, nullable=False),
    sa.Column("withdrawn", Uint256, nullable=False),
    sa.Column("burned", Uint256, nullable=False),
    *uint_checks("minted"),
    *uint_checks("deposited"),
    *uint_checks("withdrawn"),
    *uint_checks("burned"),
)

# One row per applied posting set; the key makes applying idempotent.
ledger_posting_sets = sa.Table(
    "ledger_posting_sets",
    metadata,
    sa.Column("seq", Position, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("reference", sa.String(200)),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("occurred_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("key", name="uq_ledger_posting_sets_key"),
    sa.Index("ix_ledger_posting_sets_reference", "reference"),
    sqlite_autoincrement=True,
)

ledger_postings = sa.Table(
    "ledger_postings",
    metadata,
    sa.Column(
        "posting_set_seq",
        JournalSeq,
        sa.ForeignKey("ledger_posting_sets.seq"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("line", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("token", sa.String(100), nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("bucket", sa.String(16), nullable=False),
    sa.Column("side", sa.String(8), nullable=False),
    sa.Column("amount", Uint256, nullable=False),
    sa.CheckConstraint(LEDGER_BUCKETS, name="bucket"),
    sa.CheckConstraint(LEDGER_SIDES, name="side"),
    *uint_checks("amount"),
    sa.Index("ix_ledger_postings_token_owner", "token", "owner", "posting_set_seq"),
)

ledger_supply_changes = sa.Table(
    "ledger_supply_changes",
    metadata,
    sa.Column(
        "posting_set_seq",
        JournalSeq,
        sa.ForeignKey("ledger_posting_sets.seq"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("line", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("token", sa.String(100), nullable=False),
    sa.Column("counter", sa.String(16), nullable=False),
    sa.Column("amount", Uint256, nullable=False),
    sa.CheckConstraint(LEDGER_COUNTERS, name="counter"),
    *uint_checks("amount"),
)

# -- wallets and the audit log (migration 0007) ------------------------------------------------
# One row per user who has needed an address. ``user_number`` is the BIP-44 index of the
# user's custodial address (m/44'/60'/0'/0/<n>): assigned once, from 1, never reused (SQLite
# AUTOINCREMENT, a Postgres sequence). An external address belongs to at most one user.
wallets = sa.Table(
    "wallets",
    metadata,
    sa.Column("user_number", Position, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(200), nullable=False),
    sa.Column("external_address", sa.String(42)),
    sa.Column("external_registered_at", UtcDateTime),
    sa.Column("verified_on_chain", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("user_id", name="uq_wallets_user_id"),
    sa.Index("uq_wallets_external_address", "external_address", unique=True),
    sqlite_autoincrement=True,
)

# Challenges to sign (EIP-191) before registering an external address; each used once.
wallet_challenges = sa.Table(
    "wallet_challenges",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(200), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("used_at", UtcDateTime),
    sa.Index("ix_wallet_challenges_user_id_created_at", "user_id", "created_at"),
)

# Append-only: triggers created by migration 0007 refuse UPDATE and DELETE (and, on Postgres,
# TRUNCATE). ``seq`` orders the entries; ``before``/``after`` are plain JSON.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", Position, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False),
    sa.Column("actor_id", sa.String(200), nullable=False),
    sa.Column("actor_type", sa.String(32), nullable=False),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("before", Json),
    sa.Column("after", Json),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("id", name="uq_audit_log_id"),
    sa.Index("ix_audit_log_actor_id_seq", "actor_id", "seq"),
    sa.Index("ix_audit_log_action_seq", "action", "seq"),
    sa.Index("ix_audit_log_at", "at"),
    sqlite_autoincrement=True,
)

# -- tokens and compliance records (migration 0008) ---------------------------------------------
TOKEN_TYPES = "type IN ('RWA', 'CRYPTO', 'STABLE')"
TOKEN_DECIMALS = "decimals BETWEEN 0 AND 36"
KYC_STATUSES = "kyc_status IN ('PENDING', 'APPROVED', 'REJECTED', 'EXPIRED')"
# ``scope`` is '*' for the general record or the token's id: a primary key cannot hold NULL.
COMPLIANCE_SCOPE = "(token_id IS NULL AND scope = '*') OR scope = token_id"

# The ledger keys its accounts by ``tokens.id``. Symbol unique; contract address and market
# unique when set (one market, one token).
tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("symbol", sa.String(12), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("decimals", sa.Integer, nullable=False),
    sa.Column("contract_address", sa.String(42)),
    sa.Column("market_id", sa.String(36), sa.ForeignKey("markets.id")),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("symbol", name="uq_tokens_symbol"),
    sa.Index("uq_tokens_contract_address", "contract_address", unique=True),
    sa.Index("uq_tokens_market_id", "market_id", unique=True),
    sa.Index("ix_tokens_type_id", "type", "id"),
    sa.CheckConstraint(TOKEN_TYPES, name="type"),
    sa.CheckConstraint(TOKEN_DECIMALS, name="decimals"),
)

# One general record per user (scope '*') and one per (user, token); ``version`` makes every
# change conditional on the one it was built from.
compliance_records = sa.Table(
    "compliance_records",
    metadata,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("scope", sa.String(36), primary_key=True),
    sa.Column("token_id", sa.String(36), sa.ForeignKey("tokens.id")),
    sa.Column("kyc_status", sa.String(16), nullable=False),
    sa.Column("whitelisted", sa.Boolean, nullable=False),
    sa.Column("accredited", sa.Boolean, nullable=False),
    sa.Column("jurisdiction", sa.String(2), nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Index("ix_compliance_records_expires_at", "expires_at"),
    sa.CheckConstraint(KYC_STATUSES, name="kyc_status"),
    sa.CheckConstraint(COMPLIANCE_SCOPE, name="scope"),
)

# -- token operations (core/tokens/operations.py) ---------------------------------------------
# Each record is versioned: an update applies only ``WHERE version = :expected``. A mint is
# stored once per (token, Idempotency-Key); a deposit once per (tx hash, log index).
OPERATION_STATUSES = "status IN ('PENDING', 'COMPLETED', 'FAILED')"
WITHDRAWAL_STATUSES = (
    "status IN ('PENDING_APPROVAL', 'APPROVED', 'SENT', 'COMPLETED', 'REJECTED', 'FAILED')"
)
DEPOSIT_STATUSES = "status IN ('PENDING', 'CREDITED')"

mints = sa.Table(
    "mints",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("token_id", sa.String(36), sa.ForeignKey("tokens.id"), nullable=False),
    sa.Column("user_id", sa.String(200), nullable=False),
    sa.Column("amount", Uint256, nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("actor_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("address", sa.String(42)),
    sa.Column("tx_hash", sa.String(66)),
    sa.Column("error", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("token_id", "idempotency_key", name="uq_mints_token_id_key"),
    sa.CheckConstraint(OPERATION_STATUSES, name="status"),
    *uint_checks("amount"),
)

transfers = sa.Table(
    "transfers",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("token_id", sa.String(36), sa.ForeignKey("tokens.id"), nullable=False),
    sa.Column("from_user_id", sa.String(200), nullable=False),
    sa.Column("to_user_id", sa.String(200), nullable=False),
    sa.Column("amount", Uint256, nullable=False),
    sa.Column("actor_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("tx_hash", sa.String(66)),
    sa.Column("error", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index("ix_transfers_status_id", "status", "id"),
    sa.CheckConstraint(OPERATION_STATUSES, name="status"),
    *uint_checks("amount"),
)

withdrawals = sa.Table(
    "withdrawals",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("token_id", sa.String(36), sa.ForeignKey("tokens.id"), nullable=False),
    sa.Column("user_id", sa.String(200), nullable=False),
    sa.Column("amount", Uint256, nullable=False),
    sa.Column("to_address", sa.String(42), nullable=False),
    sa.Column("actor_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("decided_by", sa.String(200)),
    sa.Column("tx_hash", sa.String(66)),
    sa.Column("error", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index("ix_withdrawals_user_id_id", "user_id", "id"),
    sa.CheckConstraint(WITHDRAWAL_STATUSES, name="status"),
    *uint_checks("amount"),
)

# Incoming ERC-20 Transfer logs to users' addresses (deposits).
blockchain_events = sa.Table(
    "blockchain_events",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("token_id", sa.String(36), sa.ForeignKey("tokens.id"), nullable=False),
    sa.Column("user_id", sa.String(200), nullable=False),
    sa.Column("address", sa.String(42), nullable=False),
    sa.Column("tx_hash", sa.String(66), nullable=False),
    sa.Column("log_index", sa.Integer, nullable=False),
    sa.Column("block_number", sa.BigInteger, nullable=False),
    sa.Column("amount", Uint256, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("credited_at", UtcDateTime),
    sa.Column("sweep_tx_hash", sa.String(66)),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("tx_hash", "log_index", name="uq_blockchain_events_tx_hash_log_index"),
    sa.Index("ix_blockchain_events_user_id_id", "user_id", "id"),
    sa.CheckConstraint(DEPOSIT_STATUSES, name="status"),
    *uint_checks("amount"),
)

# Market data: trades as the candle aggregator stored them (one per (pair, stream seq)),
# candles, accepted reference prices and the append-only valuations of markets' assets.
marketdata_trades = sa.Table(
    "marketdata_trades",
    metadata,
    sa.Column("pair_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("trade_id", sa.String(64), nullable=False),
    sa.Column("price", DecimalText, nullable=False),
    sa.Column("quantity", DecimalText, nullable=False),
    sa.Column("taker_side", sa.String(4), nullable=False),
    sa.Column("time", UtcDateTime, nullable=False),
    sa.Index("ix_marketdata_trades_pair_id_time", "pair_id", "time", "seq"),
)

marketdata_candles = sa.Table(
    "marketdata_candles",
    metadata,
    sa.Column("pair_id", sa.String(64), primary_key=True),
    sa.Column("interval", sa.String(4), primary_key=True),
    sa.Column("open_time", UtcDateTime, primary_key=True),
    sa.Column("open", DecimalText, nullable=False),
    sa.Column("high", DecimalText, nullable=False),
    sa.Column("low", DecimalText, nullable=False),
    sa.Column("close", DecimalText, nullable=False),
    sa.Column("volume", DecimalText, nullable=False),
    sa.Column("quote_volume", DecimalText, nullable=False),
    sa.Column("trade_count", sa.Integer, nullable=False),
    sa.Column("first_time", UtcDateTime, nullable=False),
    sa.Column("first_seq", sa.BigInteger, nullable=False),
    sa.Column("last_time", UtcDateTime, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

reference_prices = sa.Table(
    "reference_prices",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("price", DecimalText, nullable=False),
    sa.Column("observed_at", UtcDateTime, nullable=False),
    sa.Column("fetched_at", UtcDateTime, nullable=False),
    sa.Index("ix_reference_prices_symbol_observed_at", "symbol", "observed_at"),
)

asset_valuations = sa.Table(
    "asset_valuations",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("market_id", sa.String(36), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("valuation", DecimalText, nullable=False),
    sa.Column("currency", sa.String(16), nullable=False),
    sa.Column("effective_at", UtcDateTime, nullable=False),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
    sa.Column("actor_id", sa.String(200), nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("note", sa.Text),
    sa.UniqueConstraint("market_id", "version", name="uq_asset_valuations_market_id_version"),
)

# -- trading (core/trading): pairs, orders, trades ---------------------------------------------
# Amounts are exact integers (base units; prices in quote base units per whole base token).
# A pair's symbol and market are unique; a user's clientOrderId is unique; an order's (pair,
# seq) is unique (seq: its id in the pair's matching core). Updates apply ``WHERE version``.
PAIR_STATUSES = "status IN ('trading', 'halted', 'closed')"
ORDER_STATUSES = (
    "status IN ('OPEN', 'PARTIALLY_FILLED', 'FILLED', 'CANCELLED', 'REJECTED', 'EXPIRED', "
    "'PENDING_TRIGGER')"
)
LIVE_ORDER = "status IN ('OPEN', 'PARTIALLY_FILLED', 'PENDING_TRIGGER')"

trading_pairs = sa.Table(
    "trading_pairs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("symbol", sa.String(25), nullable=False),
    sa.Column("base_token_id", sa.String(36), sa.ForeignKey("tokens.id"), nullable=False),
    sa.Column("quote_token_id", sa.String(36), sa.ForeignKey("tokens.id"), nullable=False),
    sa.Column("base_decimals", sa.Integer, nullable=False),
    sa.Column("quote_decimals", sa.Integer, nullable=False),
    sa.Column("tick", Uint256, nullable=False),
    sa.Column("lot", Uint256, nullable=False),
    sa.Column("min_quantity", Uint256, nullable=False),
    sa.Column("max_quantity", Uint256, nullable=False),
    sa.Column("maker_fee_bps", sa.Integer, nullable=False),
    sa.Column("taker_fee_bps", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("market_id", sa.String(36)),
    sa.Column("book_seq", sa.BigInteger, nullable=False),
    sa.Column("last_price", Uint256),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("symbol", name="uq_trading_pairs_symbol"),
    sa.Index("uq_trading_pairs_market_id", "market_id", unique=True),
    sa.CheckConstraint(PAIR_STATUSES, name="status"),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("pair_id", sa.String(36), sa.ForeignKey("trading_pairs.id"), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("user_id", sa.String(200), nullable=False),
    sa.Column("side", sa.String(4), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("time_in_force", sa.String(3), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("price", Uint256),
    sa.Column("stop_price", Uint256),
    sa.Column("quantity", Uint256),
    sa.Column("quote_amount", Uint256),
    sa.Column("post_only", sa.Boolean, nullable=False),
    sa.Column("client_order_id", sa.String(64)),
    sa.Column("maker_fee_bps", sa.Integer, nullable=False),
    sa.Column("taker_fee_bps", sa.Integer, nullable=False),
    sa.Column("filled_quantity", Uint256, nullable=False),
    sa.Column("filled_quote", Uint256, nullable=False),
    sa.Column("fee", Uint256, nullable=False),
    sa.Column("fee_accrued", Uint256, nullable=False),
    sa.Column("locked", Uint256, nullable=False),
    sa.Column("reject_reason", sa.String(64)),
    sa.Column("rest_position", sa.BigInteger),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("pair_id", "seq", name="uq_orders_pair_id_seq"),
    sa.UniqueConstraint("user_id", "client_order_id", name="uq_orders_user_id_client_order_id"),
    sa.Index("ix_orders_user_id_id", "user_id", "id"),
    sa.Index(
        "ix_orders_live_pair_id_seq",
        "pair_id",
        "seq",
        sqlite_where=sa.text(LIVE_ORDER),
        postgresql_where=sa.text(LIVE_ORDER),
    ),
    sa.CheckConstraint(ORDER_STATUSES, name="status"),
)

trades = sa.Table(
    "trades",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("pair_id", sa.String(36), sa.ForeignKey("trading_pairs.id"), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("price", Uint256, nullable=False),
    sa.Column("quantity", Uint256, nullable=False),
    sa.Column("maker_order_id", sa.String(36), nullable=False),
    sa.Column("taker_order_id", sa.String(36), nullable=False),
    sa.Column("maker_user_id", sa.String(200), nullable=False),
    sa.Column("taker_user_id", sa.String(200), nullable=False),
    sa.Column("taker_side", sa.String(4), nullable=False),
    sa.Column("maker_fee", Uint256, nullable=False),
    sa.Column("taker_fee", Uint256, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    # on-chain settlement (core/ports/settlement.py; migration 0013)
    sa.Column("settlement_status", sa.String(8), nullable=False, server_default="PENDING"),
    sa.Column("settlement_batch_id", sa.String(36), nullable=True),
    sa.Column("settlement_tx_hash", sa.String(66), nullable=True),
    sa.Column("settlement_error", sa.Text, nullable=True),
    sa.Column("settlement_updated_at", UtcDateTime, nullable=True),
    sa.UniqueConstraint("pair_id", "seq", name="uq_trades_pair_id_seq"),
    sa.Index("ix_trades_maker_user_id_id", "maker_user_id", "id"),
    sa.Index("ix_trades_taker_user_id_id", "taker_user_id", "id"),
    sa.Index("ix_trades_settlement", "pair_id", "settlement_status", "seq"),
    sa.Index("ix_trades_settlement_batch_id", "settlement_batch_id"),
    sa.CheckConstraint(
        "settlement_status IN ('PENDING', 'SENT', 'SETTLED', 'FAILED')", name="settlement_status"
    ),
)
