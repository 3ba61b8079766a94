"""``TokenIssuer.verify``: numeric ``exp`` within the longest lifetime, a usable ``sub``,
``iss``/``aud`` when configured. Each refused token is a 401 ``AuthError``."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from adapters.inbound.http.auth import MAX_ID_LENGTH, AuthError, TokenIssuer
from tests.e2e.server import rwa_market_command, server_env
from tests.harness.common import free_port

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"


def signed(secret: str = SECRET, **claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {"sub": "user-1", "roles": ["trader"], "iat": now, "exp": now + 60}
    payload.update(claims)
    for name in [k for k, v in payload.items() if v is None]:
        del payload[name]
    return jwt.encode(payload, secret, algorithm="HS256")


def refused(issuer: TokenIssuer, token: str, reason: str) -> None:
    with pytest.raises(AuthError) as caught:
        issuer.verify(token)
    assert reason.lower() in caught.value.message.lower()


def test_a_good_token_gives_its_actor() -> None:
    actor = TokenIssuer(SECRET).verify(signed(entity_id="ent-1"))
    assert (actor.id, actor.roles, actor.entity_id) == ("user-1", ("trader",), "ent-1")


def test_a_fractional_exp_is_a_number_too() -> None:
    assert TokenIssuer(SECRET).verify(signed(exp=time.time() + 60.5)).id == "user-1"


@pytest.mark.parametrize(
    "exp",
    [str(int(time.time()) + 60), True, None, [int(time.time()) + 60], {"at": 1}],
    ids=["digit-string", "bool", "missing", "list", "object"],
)
def test_exp_must_be_a_number(exp: Any) -> None:
    with pytest.raises(AuthError) as caught:
        TokenIssuer(SECRET).verify(signed(exp=exp))
    assert caught.value.code == "invalid_token"
    assert "exp" in caught.value.message


def test_exp_far_in_the_future_is_refused() -> None:
    issuer = TokenIssuer(SECRET)
    refused(issuer, signed(exp=10**20), "more than 86400 seconds ahead")
    refused(issuer, signed(exp=int(time.time()) + 86_400 + 3600), "more than 86400 seconds")
    assert issuer.verify(signed(exp=int(time.time()) + 86_000)).id == "user-1"


def test_the_longest_lifetime_is_configurable() -> None:
    issuer = TokenIssuer(SECRET, max_ttl_seconds=300)
    refused(issuer, signed(exp=int(time.time()) + 3600), "more than 300 seconds ahead")
    assert issuer.verify(signed(exp=int(time.time()) + 200)).id == "user-1"
    with pytest.raises(ValueError, match="1 to 300 seconds"):
        issuer.issue("user-1", ["trader"], ttl_seconds=301)
    assert issuer.verify(issuer.issue("user-1", ["trader"])).id == "user-1"


def test_an_expired_token_is_refused() -> None:
    with pytest.raises(AuthError) as caught:
        TokenIssuer(SECRET).verify(signed(exp=int(time.time()) - 3600))
    assert caught.value.code == "token_expired"


@pytest.mark.parametrize("name", ["iat", "nbf"])
def test_iat_and_nbf_must_be_numbers_when_present(name: str) -> None:
    refused(TokenIssuer(SECRET), signed(**{name: str(int(time.time()))}), name)


@pytest.mark.parametrize(
    ("sub", "reason"),
    [
        ("", "blank"),
        ("   ", "blank"),
        ("\t\n", "blank"),
        ("user\n2026-01-01 INFO forged", "control or invisible"),
        ("user\x00", "control or invisible"),
        ("\u200b", "control or invisible"),
        ("admin\u202e", "control or invisible"),
        ("u" * (MAX_ID_LENGTH + 1), f"at most {MAX_ID_LENGTH}"),
        (42, "must be a string"),
        (None, "sub"),
    ],
    ids=[
        "empty",
        "spaces",
        "whitespace",
        "newline",
        "nul",
        "zero-width",
        "rtl-override",
        "too-long",
        "number",
        "missing",
    ],
)
def test_sub_must_be_a_usable_identifier(sub: Any, reason: str) -> None:
    refused(TokenIssuer(SECRET), signed(sub=sub), reason)


def test_a_long_enough_sub_is_fine() -> None:
    assert TokenIssuer(SECRET).verify(signed(sub="u" * MAX_ID_LENGTH)).id == "u" * MAX_ID_LENGTH


def test_entity_id_follows_the_same_rules() -> None:
    refused(TokenIssuer(SECRET), signed(entity_id=" "), "entity_id claim must not be blank")
    refused(TokenIssuer(SECRET), signed(entity_id="e\r\n"), "entity_id claim must not contain")


def test_issuer_and_audience_are_checked_when_configured() -> None:
    issuer = TokenIssuer(SECRET, issuer="https://issuer.example", audience="rwa-market")
    good = signed(iss="https://issuer.example", aud="rwa-market")
    assert issuer.verify(good).id == "user-1"
    assert issuer.verify(issuer.issue("user-2", ["admin"])).id == "user-2"
    refused(issuer, signed(aud="rwa-market"), "iss")
    refused(issuer, signed(iss="https://issuer.example"), "aud")
    refused(issuer, signed(iss="https://evil.example", aud="rwa-market"), "issuer")
    refused(issuer, signed(iss="https://issuer.example", aud="other"), "audience")


def test_issuer_and_audience_are_ignored_when_not_configured() -> None:
    assert TokenIssuer(SECRET).verify(signed(iss="anyone", aud="anything")).id == "user-1"


def test_another_secret_or_algorithm_is_refused() -> None:
    refused(TokenIssuer(SECRET), signed(secret="another-secret-of-at-least-32-bytes!!"), "invalid")
    unsigned = jwt.encode({"sub": "u", "exp": int(time.time()) + 60}, None, algorithm="none")
    refused(TokenIssuer(SECRET), unsigned, "invalid")


def _cli_token(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*rwa_market_command(), "token", "--sub", "cli-1", "--role", "admin", *args],
        env=server_env(tmp_path, free_port(), {"RWA_JWT_SECRET": SECRET, **env}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_token_command_follows_the_claim_settings(tmp_path: Path) -> None:
    settings = {"RWA_JWT_ISSUER": "https://issuer.example", "RWA_JWT_MAX_TTL_SECONDS": "600"}
    done = _cli_token(tmp_path, **settings)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1]
    issuer = TokenIssuer(SECRET, issuer="https://issuer.example", max_ttl_seconds=600)
    assert issuer.verify(token).id == "cli-1"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="https://issuer.example")
    assert claims["exp"] - claims["iat"] == 600
    too_long = _cli_token(tmp_path, "--ttl", "601", **settings)
    assert too_long.returncode == 2
    assert too_long.stderr.strip() == "error: the token lifetime must be 1 to 600 seconds"
