"""Every ``RWA_`` variable, parsed and checked once (pydantic-settings).

``Settings.from_env()`` reads the environment (or a given mapping, for tests); a keyword
constructor ``Settings(profile="test", ...)`` builds settings from values alone, without
reading the environment. Either way a bad value raises ``ConfigurationError`` whose message is
one line naming the variable, e.g. ``RWA_CHAIN_ID: must be an integer (got 'abc')``. Secrets
are kept out of ``repr`` and out of error messages; each may also come from a file named by
``<VARIABLE>_FILE`` (e.g. ``RWA_JWT_SECRET_FILE``).

Checks that involve several variables (what the production profile needs) are in
``Settings.check()``, which ``bootstrap.build`` runs.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

PROFILES = ("test", "embedded", "production")
ENV_PREFIX = "RWA_"
DEV_JWT_SECRET = "DEVELOPMENT-ONLY-jwt-secret-do-not-use-in-production"
DEV_WEBHOOK_SECRETS = "DEVELOPMENT-ONLY-webhook-secret"
# DEVELOPMENT-ONLY: the well-known test mnemonic of Hardhat/Foundry; its keys are public.
DEV_CUSTODY_MNEMONIC = "test test test test test test test test test test test junk"
SECRET_FIELDS = frozenset(
    {
        "jwt_secret",
        "chain_private_key",
        "custody_mnemonic",
        "permissions_api_key",
        "webhook_secrets",
        "notification_webhook_secret",
    }
)
# Read elsewhere: the migrations directory override (tests, packaging).
OTHER_VARIABLES = frozenset({"RWA_MIGRATIONS_DIR"})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
CommaSeparated = Annotated[tuple[str, ...], NoDecode]


class ConfigurationError(ValueError):
    """The environment does not describe a runnable service."""


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _one_line(error: ValidationError) -> str:
    """``RWA_X: reason (got 'value')`` for the first problem; secrets' values never shown."""
    parts: list[str] = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        name = env_name(field) if field else "configuration"
        reason = str(item["msg"]).removeprefix("Value error, ")
        text = f"{name}: {reason}"
        if (
            field not in SECRET_FIELDS
            and item.get("input") is not None
            and item["type"]
            not in {
                "value_error",
                "assertion_error",
            }
        ):
            text += f" (got {str(item['input'])[:80]!r})"
        parts.append(text.replace("\n", " "))
    return "; ".join(parts)


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls, case_sensitive=False, env_prefix=ENV_PREFIX)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Names are matched in lower case (pydantic-settings' convention); only RWA_ ones.
        return {
            key.lower(): value
            for key, value in self._environ.items()
            if key.startswith(ENV_PREFIX) and value != ""
        }


class Settings(BaseSettings):
    """The service's configuration. Frozen; secrets are not in ``repr``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        env_ignore_empty=True,
        frozen=True,
        extra="forbid",
        validate_default=True,
    )

    profile: Literal["test", "embedded", "production"] = "embedded"
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Path("./var")
    database_url: str | None = None
    redis_url: str | None = None
    jobs_queue: str = Field(default="rwa:jobs:stream", min_length=1)
    jobs_claim_idle_seconds: float = Field(default=60.0, gt=0)
    jobs_max_deliveries: int = Field(default=5, ge=1)
    jobs_result_ttl_seconds: int = Field(default=86_400, gt=0)
    worker_in_process: bool | None = None  # None: yes in embedded, no in production
    jwt_secret: str = Field(default=DEV_JWT_SECRET, min_length=1, repr=False)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_max_ttl_seconds: int = Field(default=86_400, gt=0)
    chain_rpc_url: str | None = None
    chain_id: int | None = Field(default=None, gt=0)
    chain_private_key: str | None = Field(default=None, repr=False)
    chain_confirmations: int | None = Field(default=None, ge=0)  # None: 0 in-process, else 12
    deposit_sync_seconds: float = Field(default=0.0, ge=0)  # sync-blockchain; 0: not scheduled
    reconcile_seconds: float = Field(default=0.0, ge=0)  # reconcile job; 0: not scheduled
    # scheduled verify-compliance (expiries mirrored on chain); 0: not scheduled
    compliance_sweep_seconds: float = Field(default=0.0, ge=0)
    # scheduled fetch-external-prices (reference prices of the ticker); 0: not scheduled
    price_fetch_seconds: float = Field(default=0.0, ge=0)
    price_feed_url: str | None = None  # an HTTP JSON source: GET <url>/prices/{symbol}
    price_feed_symbols: CommaSeparated = ()  # the symbols asked from price_feed_url
    # Chainlink-style aggregators read over RWA_CHAIN_RPC_URL: "HVO=0xabc...,GLD=0xdef..."
    price_feed_chainlink: CommaSeparated = ()
    price_max_age_seconds: float = Field(default=3_600.0, gt=0)  # older quotes are stale
    price_max_deviation_bps: int = Field(default=1_000, ge=0)  # band around the last price
    # scheduled update-token-metadata (valuations of active markets' assets); daily, but only
    # with a source: GET on a URL template with {symbol} and/or {marketId}; 0: not scheduled
    valuation_fetch_seconds: float = Field(default=86_400.0, ge=0)
    valuation_source_url: str | None = None
    valuation_timeout_seconds: float = Field(default=10.0, gt=0)  # per request, in all
    valuation_max_age_seconds: float = Field(default=604_800.0, gt=0)  # older as-of: stale
    valuation_max_change_bps: int = Field(default=2_000, ge=0)  # band around the current one
    custody_mnemonic: str = Field(default=DEV_CUSTODY_MNEMONIC, min_length=1, repr=False)
    quote_symbol: str = Field(default="USDC", pattern=r"^[A-Z0-9]{2,12}$")
    quote_token_address: str | None = None
    maker_fee_bps: int = Field(default=10, ge=0, le=10_000)
    taker_fee_bps: int = Field(default=20, ge=0, le=10_000)
    permissions_base_url: str | None = None
    permissions_api_key: str | None = Field(default=None, repr=False)
    webhook_secrets: CommaSeparated = Field(default=(DEV_WEBHOOK_SECRETS,), repr=False)
    webhook_tolerance_seconds: int = Field(default=300, gt=0)
    sns_topic_arns: CommaSeparated = ()
    sns_max_age_seconds: int = Field(default=3600, gt=0)
    permissions_timeout_seconds: float = Field(default=3.0, gt=0)
    permissions_poll_seconds: float = Field(default=10.0, ge=0)  # 0: no polling
    permissions_poll_in_process: bool | None = None  # None: yes in embedded, no in production
    trusted_proxies: Annotated[tuple[IpNetwork, ...], NoDecode] = ()
    deploy_max_attempts: int = Field(default=5, ge=1)
    deploy_backoff_seconds: float = Field(default=2.0, ge=0)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    http_rate_limit: int = Field(default=600, ge=0)  # per window and client; 0 turns it off
    http_rate_window_seconds: float = Field(default=60.0, gt=0)
    order_rate_limit: int = Field(default=120, ge=0)  # orders per window and user; 0: off
    order_rate_window_seconds: float = Field(default=60.0, gt=0)
    settlement_batch_size: int = Field(default=50, ge=1, le=200)  # trades per batchForcedTransfer
    settlement_retry_seconds: float = Field(default=30.0, ge=0)  # 0: no automatic retry
    notification_webhook_url: str | None = None  # None: notifications are log lines
    notification_webhook_secret: str | None = Field(default=None, repr=False)
    notification_timeout_seconds: float = Field(default=5.0, gt=0)
    # production: pairs owned by `rwa-market engine` processes (DESIGN 13)
    engine_lease_seconds: float = Field(default=5.0, gt=0, le=300)  # takeover bound
    engine_reply_timeout_seconds: float = Field(default=10.0, gt=0, le=300)  # then 503
    ws_send_queue: int = Field(default=1024, ge=1)  # frames waiting per WebSocket connection
    ws_max_message_bytes: int = Field(default=16 * 1024, ge=256)  # larger: close 1009
    ws_rate_per_second: float = Field(default=20.0, gt=0)  # client frames, per connection
    ws_rate_burst: int = Field(default=50, ge=1)
    ws_heartbeat_seconds: float = Field(default=5.0, gt=0)
    ws_compression: bool = False  # permessage-deflate when a client offers it (costly fan-out)
    ws_raw_writes: bool = True  # queued frames in one socket write below ASGI (ws/raw_write.py)
    # the garbage collector of a serving process (gc_tuning.py): freeze what start-up built,
    # then collect the youngest generation every gc_thresholds[0] allocations
    gc_freeze: bool = True
    gc_thresholds: Annotated[tuple[int, int, int], NoDecode] = (10_000, 50, 100)
    log_level: str = "INFO"
    # text, json, or auto (None): json in production or when stderr is not a terminal
    log_format: Literal["text", "json", "auto"] | None = None
    access_log: bool = True  # hypercorn's access log, one (escaped) line per request

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigurationError(_one_line(exc)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the values given: ``from_env`` reads the environment explicitly, so building
        # settings in a test never picks up the developer's shell.
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``env`` (default: ``os.environ``); ``<SECRET>_FILE`` read here."""
        environ = dict(os.environ if env is None else env)
        for field in sorted(SECRET_FIELDS):
            name = env_name(field)
            path = environ.get(f"{name}_FILE", "")
            if not path:
                continue
            if environ.get(name):
                raise ConfigurationError(f"{name}: set either {name} or {name}_FILE, not both")
            try:
                environ[name] = Path(path).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise ConfigurationError(f"{name}_FILE: cannot read {path!r}: {reason}") from None
            if not environ[name]:
                raise ConfigurationError(f"{name}_FILE: {path!r} is empty")
        try:
            values = _MappingEnvSource(cls, environ)()
        except Exception as exc:  # pydantic-settings' own parse errors name the variable
            raise ConfigurationError(str(exc).splitlines()[0]) from None
        return cls(**values)

    @classmethod
    def unknown_variables(cls, env: Mapping[str, str] | None = None) -> list[str]:
        """``RWA_`` names in ``env`` that no setting reads (a typo such as ``RWA_PROFLE``)."""
        known = {env_name(field) for field in cls.model_fields}
        known |= {f"{env_name(field)}_FILE" for field in SECRET_FIELDS}
        known |= OTHER_VARIABLES
        environ = os.environ if env is None else env
        return sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)

    # -- field rules ---------------------------------------------------------------------------

    @field_validator(
        "webhook_secrets",
        "sns_topic_arns",
        "price_feed_symbols",
        "price_feed_chainlink",
        "gc_thresholds",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        items = _split_commas(value)
        if not isinstance(items, tuple | list):
            return items
        networks: list[IpNetwork] = []
        for item in items:
            if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
                networks.append(item)
                continue
            try:
                networks.append(ipaddress.ip_network(str(item), strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
        return tuple(networks)

    @field_validator("gc_thresholds")
    @classmethod
    def _gc_thresholds(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        young, middle, old = value
        # 0 would turn automatic collection off: cyclic garbage would grow without bound
        if not (1 <= young <= 10_000_000 and 1 <= middle <= 10_000 and 1 <= old <= 10_000):
            raise ValueError(
                "three collection thresholds: 1 to 10,000,000, then two of 1 to 10,000"
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        level = str(value).strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, not {str(value)[:20]!r}")
        return level

    @field_validator("price_feed_chainlink")
    @classmethod
    def _aggregators(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            symbol, sep, address = item.partition("=")
            if not sep or not symbol.strip() or not _ADDRESS.match(address.strip()):
                raise ValueError("must be SYMBOL=0xADDRESS pairs, comma-separated")
        return value

    @property
    def chainlink_feeds(self) -> dict[str, str]:
        """``RWA_PRICE_FEED_CHAINLINK`` as symbol -> aggregator address."""
        pairs = (item.partition("=") for item in self.price_feed_chainlink)
        return {symbol.strip(): address.strip() for symbol, _, address in pairs}

    @field_validator(
        "permissions_base_url", "chain_rpc_url", "notification_webhook_url", "price_feed_url"
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("valuation_source_url")
    @classmethod
    def _valuation_template(cls, value: str | None) -> str | None:
        from adapters.outbound.valuations.http_json import check_template

        return None if value is None else check_template(value)

    @property
    def valuation_fetch_enabled(self) -> bool:
        """Whether ``update-token-metadata`` is scheduled: a source and a positive interval."""
        return bool(self.valuation_source_url) and self.valuation_fetch_seconds > 0

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("custody_mnemonic")
    @classmethod
    def _mnemonic(cls, value: str) -> str:
        from bip_utils import Bip39MnemonicValidator  # type: ignore[import-untyped]

        phrase = " ".join(value.split())
        if not Bip39MnemonicValidator().IsValid(phrase):
            raise ValueError("must be a BIP-39 mnemonic (12 to 24 English words, valid checksum)")
        return phrase

    @field_validator("quote_token_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not _ADDRESS.match(value):
            raise ValueError("must be a 0x-prefixed 20-byte hex address")
        return value

    # -- derived -------------------------------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        if self.profile == "production":
            raise ConfigurationError("RWA_DATABASE_URL: the production profile needs Postgres")
        return f"sqlite+aiosqlite:///{(self.data_dir / 'rwa.sqlite3').resolve()}"

    @property
    def effective_log_format(self) -> str:
        """``RWA_LOG_FORMAT`` for this process's stderr (see ``log_format_for``)."""
        return self.log_format_for(sys.stderr.isatty())

    def log_format_for(self, terminal: bool) -> str:
        """``text`` or ``json`` as chosen; unset or ``auto``: json in production or when the
        log does not go to a terminal, text in a terminal (``make run``)."""
        if self.log_format in ("text", "json"):
            return self.log_format
        return "text" if terminal and self.profile != "production" else "json"

    def secret_values(self) -> list[str]:
        """Every secret's value, for the logs to redact."""
        found: list[str] = []
        for name in sorted(SECRET_FIELDS):
            value = getattr(self, name)
            if isinstance(value, str):
                found.append(value)
            elif isinstance(value, tuple | list):
                found.extend(str(v) for v in value)
        return found

    @property
    def effective_chain_confirmations(self) -> int:
        if self.chain_confirmations is not None:
            return self.chain_confirmations
        return 0 if self.chain_kind != "rpc" else 12

    @property
    def storage_kind(self) -> str:
        return "memory" if self.profile == "test" else "sql"

    @property
    def chain_kind(self) -> str:
        if self.profile == "test":
            return "memory"
        return "rpc" if self.chain_rpc_url else "evm"

    @property
    def redis_kind(self) -> str:
        """Event bus, rate limiter and cache: Redis when RWA_REDIS_URL is set (not in test)."""
        return "redis" if self.redis_url and self.profile != "test" else "memory"

    @property
    def engine_kind(self) -> str:
        """Where the books live: ``remote`` (production: ``rwa-market engine`` processes own
        the pairs by lease; API processes route orders to them over Redis Streams) or
        ``local`` (this process runs every pair's writer: embedded and test)."""
        return "remote" if self.profile == "production" and self.redis_url else "local"

    @property
    def jobs_kind(self) -> str:
        if self.profile == "test":
            return "memory"
        return "redis" if self.redis_kind == "redis" else "taskiq"

    @property
    def consume_jobs_in_process(self) -> bool:
        """Whether the API process also runs a taskiq receiver on the Redis queue."""
        if self.worker_in_process is not None:
            return self.worker_in_process
        return self.profile != "production"

    @property
    def permissions_kind(self) -> str:
        """memory (test), http (RWA_PERMISSIONS_BASE_URL set) or the local role policy."""
        if self.profile == "test":
            return "memory"
        return "http" if self.permissions_base_url else "local"

    @property
    def permission_feed_kind(self) -> str:
        return "http" if self.permissions_kind == "http" else "memory"

    @property
    def sns_kind(self) -> str:
        return "memory" if self.profile == "test" else "http"

    @property
    def poll_permissions_in_process(self) -> bool:
        """Whether this API process polls the Core's event feed (``rwa-market poll`` does
        it as its own process in production)."""
        if self.permission_feed_kind != "http" or self.permissions_poll_seconds <= 0:
            return False
        if self.permissions_poll_in_process is not None:
            return self.permissions_poll_in_process
        return self.profile != "production"

    @property
    def poll_lease_seconds(self) -> float:
        """How long one poller's lease lasts without renewal (renewed every poll)."""
        return max(30.0, 3 * (self.permissions_poll_seconds or 10.0))

    @property
    def uses_development_secrets(self) -> bool:
        return self.jwt_secret == DEV_JWT_SECRET or DEV_WEBHOOK_SECRETS in self.webhook_secrets

    def check(self) -> None:
        """What no single variable can tell: a bad combination raises ``ConfigurationError``."""
        if not self.webhook_secrets:
            raise ConfigurationError("RWA_WEBHOOK_SECRETS: must name at least one secret")
        if self.chain_rpc_url and not self.chain_private_key:
            raise ConfigurationError("RWA_CHAIN_PRIVATE_KEY: RWA_CHAIN_RPC_URL needs a signer key")
        if self.notification_webhook_url and not self.notification_webhook_secret:
            raise ConfigurationError(
                "RWA_NOTIFICATION_WEBHOOK_SECRET: RWA_NOTIFICATION_WEBHOOK_URL needs a secret"
            )
        if self.profile != "production":
            return
        if not self.database_url:
            raise ConfigurationError("RWA_DATABASE_URL: the production profile needs Postgres")
        if not self.redis_url:
            raise ConfigurationError(
                "RWA_REDIS_URL: the production profile needs Redis (durable jobs, shared events "
                "and rate limits)"
            )
        if self.permissions_base_url and not self.permissions_api_key:
            raise ConfigurationError(
                "RWA_PERMISSIONS_API_KEY: required in production when RWA_PERMISSIONS_BASE_URL "
                "is set"
            )
        if self.uses_development_secrets:
            raise ConfigurationError(
                "RWA_JWT_SECRET / RWA_WEBHOOK_SECRETS: the production profile refuses the "
                "DEVELOPMENT-ONLY secrets"
            )
        if self.custody_mnemonic == DEV_CUSTODY_MNEMONIC:
            raise ConfigurationError(
                "RWA_CUSTODY_MNEMONIC: the production profile refuses the DEVELOPMENT-ONLY "
                "mnemonic (its keys are public)"
            )
        if len(self.jwt_secret.encode()) < 32:
            raise ConfigurationError("RWA_JWT_SECRET: must be at least 32 bytes in production")
