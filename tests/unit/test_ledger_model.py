"""The pure ledger model: amounts, the balance rule, netting, fingerprints, the builders."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.ledger import (
    FEE_OWNER,
    SYSTEM_OWNER,
    AccountRef,
    Balance,
    Bucket,
    InvalidAmount,
    Posting,
    PostingSet,
    Side,
    Supply,
    SupplyChange,
    SupplyCounter,
    check_amount,
    conservation_gap,
)
from core.ledger import operations as ops
from core.shared.errors import ValidationFailed
from core.shared.money import MAX_UINT256

T0 = datetime(2026, 11, 23, tzinfo=UTC)
A = AccountRef.user("alice", "HTT")
B = AccountRef.user("bob", "HTT")


@pytest.mark.parametrize("value", [1, 10**30, MAX_UINT256])
def test_positive_ints_up_to_uint256_are_amounts(value: int) -> None:
    assert check_amount(value) == value


@pytest.mark.parametrize(
    "value", [0, -5, True, 1.0, Decimal("1"), "1", None, MAX_UINT256 + 1, 2**256]
)
def test_everything_else_is_not_an_amount(value: object) -> None:
    with pytest.raises(InvalidAmount) as caught:
        check_amount(value)
    assert caught.value.code == "invalid_amount" and "amount" in caught.value.fields


def test_special_accounts_and_reserved_owners() -> None:
    assert AccountRef.fee("HTT") == AccountRef(token="HTT", owner=FEE_OWNER)
    assert AccountRef.system("HTT").owner == SYSTEM_OWNER
    assert A.is_user and not AccountRef.fee("HTT").is_user
    for bad_owner in ("", "@me", "x" * 201):
        with pytest.raises(ValidationFailed):
            AccountRef.user(bad_owner, "HTT")
    with pytest.raises(ValidationFailed):
        AccountRef(token="", owner="alice")


def test_lines_net_per_account_in_token_then_owner_order() -> None:
    usd = AccountRef.user("alice", "AUSD")
    lines = ops.lock(A, 5) + ops.transfer(A, B, 3) + ops.credit(usd, 2) + ops.debit(usd, 2)
    posting_set = ops.posting_set("k", "mixed", T0, lines)
    assert list(posting_set.net_changes().items()) == [
        (usd, (0, 0)),
        (A, (-8, 5)),
        (B, (3, 0)),
    ]
    assert posting_set.tokens() == {"HTT", "AUSD"}


def test_a_set_must_balance_per_token_against_the_supply() -> None:
    with pytest.raises(ValidationFailed, match="does not balance for HTT"):
        ops.posting_set("k", "x", T0, ops.credit(A, 5))
    with pytest.raises(ValidationFailed, match="does not balance"):  # wrong direction
        ops.posting_set(
            "k", "x", T0, ops.credit(A, 5), supply=[SupplyChange("HTT", SupplyCounter.BURNED, 5)]
        )
    with pytest.raises(ValidationFailed, match="for AUSD: the accounts change by 0"):  # other token
        ops.posting_set(
            "k", "x", T0, ops.credit(A, 5), supply=[SupplyChange("AUSD", SupplyCounter.MINTED, 5)]
        )
    minted = ops.mint("k", T0, A, 5)
    assert minted.supply_changes() == {"HTT": {SupplyCounter.MINTED: 5}}


def test_the_fingerprint_is_the_content_not_the_key_or_the_time() -> None:
    base = ops.mint("k1", T0, A, 5, reference="r")
    assert (
        base.fingerprint()
        == ops.mint("k2", datetime(2030, 1, 1, tzinfo=UTC), A, 5, reference="r").fingerprint()
    )
    others = [
        ops.mint("k1", T0, A, 6, reference="r"),
        ops.mint("k1", T0, B, 5, reference="r"),
        ops.mint("k1", T0, A, 5),
        ops.deposit("k1", T0, A, 5, reference="r"),
    ]
    assert len({p.fingerprint() for p in [base, *others]}) == 5


def test_a_posting_set_needs_lines_an_aware_time_and_a_key() -> None:
    with pytest.raises(ValidationFailed):
        ops.posting_set("k", "x", T0, [])
    with pytest.raises(ValidationFailed):
        ops.posting_set("k", "x", datetime(2026, 1, 1), ops.transfer(A, B, 1))
    with pytest.raises(ValidationFailed):
        ops.posting_set("", "x", T0, ops.transfer(A, B, 1))
    with pytest.raises(ValidationFailed):
        Posting(A, Bucket.AVAILABLE, Side.DEBIT, 0)


def test_primitives_refuse_one_account_or_two_tokens() -> None:
    for build in (ops.transfer, ops.settle):
        with pytest.raises(ValidationFailed):
            build(A, A, 1)
        with pytest.raises(ValidationFailed):
            build(A, AccountRef.user("bob", "AUSD"), 1)


def test_withdrawal_steps_have_one_key_each() -> None:
    request = ops.request_withdrawal("w1", T0, A, 7)
    complete = ops.complete_withdrawal("w1", T0, A, 7)
    reject = ops.release_withdrawal("w1", T0, A, 7, outcome="reject")
    fail = ops.release_withdrawal("w1", T0, A, 7, outcome="fail")
    assert [s.key for s in (request, complete, reject, fail)] == [
        "withdrawal:w1:request",
        "withdrawal:w1:complete",
        "withdrawal:w1:reject",
        "withdrawal:w1:fail",
    ]
    assert request.net_changes() == {A: (-7, 7)}
    assert complete.net_changes() == {A: (0, -7)}
    assert complete.supply_changes() == {"HTT": {SupplyCounter.WITHDRAWN: 7}}
    assert reject.net_changes() == fail.net_changes() == {A: (7, -7)}
    assert {s.reference for s in (request, complete, reject, fail)} == {"w1"}
    with pytest.raises(ValidationFailed):
        ops.release_withdrawal("w1", T0, A, 7, outcome="approve")


def test_a_fee_goes_from_locked_to_the_fee_account() -> None:
    fee = ops.collect_fee("f", T0, A, 3)
    assert fee.net_changes() == {AccountRef.fee("HTT"): (3, 0), A: (0, -3)}


def test_conservation_gap() -> None:
    supply = Supply("HTT", minted=10, deposited=5, withdrawn=3, burned=2)
    assert supply.outstanding == 10
    balances = [Balance(A, 4, 1), Balance(B, 5, 0), Balance(AccountRef.user("x", "AUSD"), 99)]
    assert conservation_gap(balances, supply) == 0
    assert conservation_gap(balances[:1], supply) == -5


operations = st.sampled_from(["mint", "burn", "deposit", "transfer", "lock", "unlock", "fee"])


@given(kind=operations, amount=st.integers(1, MAX_UINT256))
def test_every_builder_balances(kind: str, amount: int) -> None:
    built: PostingSet = {
        "mint": lambda: ops.mint("k", T0, A, amount),
        "burn": lambda: ops.burn("k", T0, A, amount),
        "deposit": lambda: ops.deposit("k", T0, A, amount),
        "transfer": lambda: ops.transfer_between("k", T0, A, B, amount),
        "lock": lambda: ops.lock_funds("k", T0, A, amount),
        "unlock": lambda: ops.unlock_funds("k", T0, A, amount),
        "fee": lambda: ops.collect_fee("k", T0, A, amount),
    }[kind]()
    moved = sum(a + b for a, b in built.net_changes().values())
    supply = sum(c.outstanding_delta for c in built.supply)
    assert moved == supply
