"""``src/settings.py``: every RWA_ variable parsed once; a bad one stops the start with one line."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import pytest

from settings import DEV_JWT_SECRET, ConfigurationError, Settings, env_name
from tests.e2e.server import rwa_market_command, server_env
from tests.harness.common import free_port

STRONG = "s" * 40
PRODUCTION = {
    "RWA_PROFILE": "production",
    "RWA_DATABASE_URL": "postgresql+asyncpg://u:p@127.0.0.1:5432/rwa",
    "RWA_REDIS_URL": "redis://127.0.0.1:6379/0",
    "RWA_JWT_SECRET": STRONG,
    "RWA_WEBHOOK_SECRETS": "w-1",
    # a valid BIP-39 test vector, not the DEVELOPMENT-ONLY default (which production refuses)
    "RWA_CUSTODY_MNEMONIC": "abandon " * 11 + "about",
}


def test_every_new_variable_is_parsed() -> None:
    s = Settings.from_env(
        {
            "RWA_JWT_ISSUER": "https://issuer.example",
            "RWA_JWT_AUDIENCE": "rwa-market",
            "RWA_JWT_MAX_TTL_SECONDS": "600",
            "RWA_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7 ,::1",
            "RWA_CHAIN_CONFIRMATIONS": "3",
            "RWA_CUSTODY_MNEMONIC": "abandon " * 11 + "about",
            "RWA_QUOTE_TOKEN_ADDRESS": "0x" + "ab" * 20,
            "RWA_MAKER_FEE_BPS": "5",
            "RWA_TAKER_FEE_BPS": "15",
            "RWA_SNS_MAX_AGE_SECONDS": "900",
            "RWA_LOG_FORMAT": "json",
            "RWA_LOG_LEVEL": "debug",
            "RWA_ACCESS_LOG": "false",
        }
    )
    assert (s.jwt_issuer, s.jwt_audience, s.jwt_max_ttl_seconds) == (
        "https://issuer.example",
        "rwa-market",
        600,
    )
    assert s.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.7/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert s.effective_chain_confirmations == 3
    assert s.quote_token_address == "0x" + "ab" * 20
    assert (s.maker_fee_bps, s.taker_fee_bps, s.sns_max_age_seconds) == (5, 15, 900)
    assert (s.effective_log_format, s.log_level, s.access_log) == ("json", "DEBUG", False)
    assert "abandon" not in repr(s)
    assert "abandon " * 11 + "about" in s.secret_values()  # for the logs to redact


def test_defaults_follow_the_profile() -> None:
    embedded = Settings.from_env({})
    assert embedded.effective_chain_confirmations == 0
    # a terminal reads text, anything else (a file, a pipe, a collector) JSON lines
    assert embedded.log_format_for(terminal=True) == "text"
    assert embedded.log_format_for(terminal=False) == "json"
    assert Settings.from_env({"RWA_LOG_FORMAT": "auto"}).log_format_for(terminal=True) == "text"
    assert Settings.from_env({"RWA_LOG_FORMAT": "text"}).log_format_for(terminal=False) == "text"
    assert embedded.jwt_max_ttl_seconds == 86_400
    assert (embedded.maker_fee_bps, embedded.taker_fee_bps) == (10, 20)
    assert embedded.trusted_proxies == ()
    rpc = Settings.from_env({"RWA_CHAIN_RPC_URL": "http://127.0.0.1:8545"})
    assert rpc.effective_chain_confirmations == 12
    assert Settings.from_env(PRODUCTION).log_format_for(terminal=True) == "json"


def test_the_environment_is_not_read_by_the_constructor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RWA_PORT", "9999")
    assert Settings().port == 8000
    assert Settings.from_env().port == 9999


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"RWA_CHAIN_ID": "abc"}, "RWA_CHAIN_ID: Input should be a valid integer"),
        ({"RWA_PORT": "70000"}, "RWA_PORT:"),
        ({"RWA_PROFILE": "prod"}, "RWA_PROFILE:"),
        ({"RWA_TRUSTED_PROXIES": "10.0.0.0/8,nowhere"}, "RWA_TRUSTED_PROXIES: 'nowhere'"),
        ({"RWA_JWT_MAX_TTL_SECONDS": "0"}, "RWA_JWT_MAX_TTL_SECONDS:"),
        ({"RWA_MAKER_FEE_BPS": "10001"}, "RWA_MAKER_FEE_BPS:"),
        ({"RWA_TAKER_FEE_BPS": "-1"}, "RWA_TAKER_FEE_BPS:"),
        ({"RWA_CHAIN_CONFIRMATIONS": "-1"}, "RWA_CHAIN_CONFIRMATIONS:"),
        ({"RWA_QUOTE_TOKEN_ADDRESS": "0x12"}, "RWA_QUOTE_TOKEN_ADDRESS:"),
        ({"RWA_REDIS_URL": "localhost:6379"}, "RWA_REDIS_URL:"),
        ({"RWA_LOG_LEVEL": "loud"}, "RWA_LOG_LEVEL:"),
        ({"RWA_LOG_FORMAT": "xml"}, "RWA_LOG_FORMAT:"),
        ({"RWA_SNS_MAX_AGE_SECONDS": "x"}, "RWA_SNS_MAX_AGE_SECONDS:"),
        ({"RWA_GC_THRESHOLDS": "0,10,10"}, "RWA_GC_THRESHOLDS: three collection thresholds"),
        ({"RWA_GC_THRESHOLDS": "700,10"}, "RWA_GC_THRESHOLDS:"),
        ({"RWA_GC_THRESHOLDS": "700,10,10,10"}, "RWA_GC_THRESHOLDS:"),
        ({"RWA_GC_THRESHOLDS": "700,10,1e9"}, "RWA_GC_THRESHOLDS:"),
        ({"RWA_GC_FREEZE": "maybe"}, "RWA_GC_FREEZE:"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_secret_values_never_appear_in_errors() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings(jwt_secret=987654321)
    assert str(caught.value).startswith("RWA_JWT_SECRET: Input should be a valid string")
    assert "987654321" not in str(caught.value)
    with pytest.raises(ConfigurationError) as caught:
        Settings(chain_id=987654321.5)
    assert "987654321.5" in str(caught.value)  # not a secret: the value helps


def test_secrets_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "jwt"
    secret.write_text("from-a-file-" + "x" * 30 + "\n")
    mnemonic = tmp_path / "mnemonic"
    mnemonic.write_text(
        "legal winner thank year wave sausage worth useful legal winner thank yellow\n"
    )
    s = Settings.from_env(
        {"RWA_JWT_SECRET_FILE": str(secret), "RWA_CUSTODY_MNEMONIC_FILE": str(mnemonic)}
    )
    assert s.jwt_secret == "from-a-file-" + "x" * 30
    assert s.custody_mnemonic.startswith("legal winner")
    with pytest.raises(ConfigurationError, match=r"^RWA_JWT_SECRET_FILE: cannot read"):
        Settings.from_env({"RWA_JWT_SECRET_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigurationError, match=r"^RWA_JWT_SECRET: set either"):
        Settings.from_env({"RWA_JWT_SECRET_FILE": str(secret), "RWA_JWT_SECRET": "y" * 40})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigurationError, match="is empty"):
        Settings.from_env({"RWA_CUSTODY_MNEMONIC_FILE": str(empty)})


def test_production_needs_redis_and_a_key_for_the_core() -> None:
    Settings.from_env(PRODUCTION).check()
    without_redis = {k: v for k, v in PRODUCTION.items() if k != "RWA_REDIS_URL"}
    with pytest.raises(ConfigurationError, match=r"^RWA_REDIS_URL:"):
        Settings.from_env(without_redis).check()
    with pytest.raises(ConfigurationError, match=r"^RWA_PERMISSIONS_API_KEY:"):
        Settings.from_env({**PRODUCTION, "RWA_PERMISSIONS_BASE_URL": "https://core"}).check()
    Settings.from_env(
        {**PRODUCTION, "RWA_PERMISSIONS_BASE_URL": "https://core", "RWA_PERMISSIONS_API_KEY": "k"}
    ).check()
    with pytest.raises(ConfigurationError, match=r"^RWA_DATABASE_URL:"):
        Settings.from_env({k: v for k, v in PRODUCTION.items() if k != "RWA_DATABASE_URL"}).check()
    with pytest.raises(ConfigurationError, match="DEVELOPMENT-ONLY"):
        Settings.from_env({**PRODUCTION, "RWA_JWT_SECRET": DEV_JWT_SECRET}).check()


def _serve(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*rwa_market_command(), "serve", "--migrate"],
        env=server_env(tmp_path / "data", free_port(), env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"RWA_CHAIN_ID": "abc"}, "RWA_CHAIN_ID"),
        ({"RWA_PROFILE": "production", "RWA_JWT_SECRET": STRONG}, "RWA_DATABASE_URL"),
        ({k: v for k, v in PRODUCTION.items() if k != "RWA_REDIS_URL"}, "RWA_REDIS_URL"),
        (
            {**PRODUCTION, "RWA_PERMISSIONS_BASE_URL": "https://core.example"},
            "RWA_PERMISSIONS_API_KEY",
        ),
    ],
)
def test_the_real_command_stops_with_one_line(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    done = _serve(tmp_path, env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"configuration error: {variable}")
    assert "Traceback" not in done.stderr + done.stdout


def test_every_variable_is_documented() -> None:
    root = Path(__file__).resolve().parents[2]
    names = {env_name(field) for field in Settings.model_fields}
    example: dict[str, str] = {}
    for line in (root / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            example[key] = value
    assert set(example) == names
    Settings.from_env(example).check()  # the example itself is a valid configuration
    for doc in ("README.md", "docs/operations.md"):
        text = (root / doc).read_text()
        assert not [name for name in sorted(names) if f"`{name}" not in text], doc


def test_unknown_variables_are_named() -> None:
    env = {"RWA_PROFLE": "production", "RWA_PORT": "1", "RWA_JWT_SECRET_FILE": "/x", "OTHER": "1"}
    assert Settings.unknown_variables(env) == ["RWA_PROFLE"]
    assert Settings.unknown_variables({"RWA_MIGRATIONS_DIR": "m"}) == []


def test_the_custody_mnemonic_is_checked_and_never_shown() -> None:
    bad = "legal winner thank year wave sausage worth useful legal winner thank thank"
    with pytest.raises(ConfigurationError, match=r"^RWA_CUSTODY_MNEMONIC: must be a BIP-39") as e:
        Settings.from_env({"RWA_CUSTODY_MNEMONIC": bad})
    assert "legal" not in str(e.value)
    spaced = Settings.from_env({"RWA_CUSTODY_MNEMONIC": "  abandon " * 11 + "\tabout \n"})
    assert spaced.custody_mnemonic == "abandon " * 11 + "about"


def test_production_refuses_the_development_mnemonic() -> None:
    development = {k: v for k, v in PRODUCTION.items() if k != "RWA_CUSTODY_MNEMONIC"}
    with pytest.raises(ConfigurationError, match=r"^RWA_CUSTODY_MNEMONIC: .*DEVELOPMENT-ONLY"):
        Settings.from_env(development).check()
    Settings.from_env(PRODUCTION).check()
    Settings.from_env({"RWA_PROFILE": "embedded"}).check()  # development may use it
