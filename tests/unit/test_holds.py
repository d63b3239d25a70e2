"""Holds on the customer account (issue 15): given events, when a command,
then these events or this error. A hold moves no credits; ``available`` is the
balance less the live holds, and only it may be charged, adjusted or held."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from ledger.aggregates import CustomerAccount
from ledger.errors import AdjustmentBelowZeroError, InsufficientCreditsError
from ledger.values import ReleaseCause
from tests.support.domain import AT, FINANCE, SPECIALIST, given, given_account, new_events, types_of

LAPSES_AT = AT + timedelta(hours=30)
AFTER_LAPSE = LAPSES_AT + timedelta(minutes=1)


def held_account(balance: int, held: int) -> tuple[CustomerAccount, UUID]:
    account = given_account(balance=balance)
    request_id = uuid4()
    account.reserve(request_id, held, LAPSES_AT, actor=SPECIALIST, at=AT)
    given(account)
    return account, request_id


def test_a_hold_reserves_credits_without_moving_them() -> None:
    account = given_account(balance=50)
    request_id = uuid4()

    account.reserve(request_id, 20, LAPSES_AT, actor=SPECIALIST, at=AT)

    [reserved] = new_events(account)
    assert type(reserved) is CustomerAccount.CreditsReserved
    assert (reserved.request_id, reserved.amount, reserved.lapses_at, reserved.actor) == (
        request_id,
        20,
        LAPSES_AT,
        SPECIALIST,
    )
    assert (account.balance, account.available(AT)) == (50, 30)


def test_holding_the_same_request_twice_emits_nothing() -> None:
    account, request_id = held_account(50, 20)

    account.reserve(request_id, 20, LAPSES_AT, actor=SPECIALIST, at=AT)

    assert new_events(account) == []
    assert account.available(AT) == 30


def test_a_hold_needs_the_credits_available() -> None:
    account, _ = held_account(50, 40)

    with pytest.raises(InsufficientCreditsError) as refused:
        account.reserve(uuid4(), 20, LAPSES_AT, actor=SPECIALIST, at=AT)

    assert (refused.value.balance, refused.value.available, refused.value.price) == (50, 10, 20)
    assert "10 credits available" in refused.value.detail
    assert new_events(account) == []


def test_a_charge_of_a_held_request_takes_its_hold_in_the_same_events() -> None:
    account, request_id = held_account(20, 20)

    account.charge(request_id, 20, price_list_version=1, actor=SPECIALIST, at=AT)

    released, charged = new_events(account)
    assert type(released) is CustomerAccount.CreditsReleased
    assert (released.request_id, released.amount, released.cause) == (
        request_id,
        20,
        ReleaseCause.CHARGED,
    )
    assert type(charged) is CustomerAccount.CreditsCharged
    assert (account.balance, account.available(AT), account.holds) == (0, 0, ())


def test_another_charge_may_use_only_the_credits_available() -> None:
    account, _ = held_account(30, 20)

    with pytest.raises(InsufficientCreditsError) as refused:
        account.charge(uuid4(), 20, price_list_version=1, actor=SPECIALIST, at=AT)

    assert (refused.value.balance, refused.value.available) == (30, 10)
    assert new_events(account) == []


def test_a_negative_adjustment_may_use_only_the_credits_available() -> None:
    account, _ = held_account(30, 20)

    with pytest.raises(AdjustmentBelowZeroError) as refused:
        account.adjust(-11, "correction", actor=FINANCE, at=AT)
    assert (refused.value.balance, refused.value.available) == (30, 10)

    account.adjust(-10, "correction", actor=FINANCE, at=AT)
    assert (account.balance, account.available(AT)) == (20, 0)


@pytest.mark.parametrize("cause", [ReleaseCause.CANCELLED, ReleaseCause.REFERRED])
def test_a_release_frees_the_credits(cause: ReleaseCause) -> None:
    account, request_id = held_account(30, 20)

    account.release(request_id, cause, actor=SPECIALIST, at=AT)

    [released] = new_events(account)
    assert (released.cause, released.amount) == (cause, 20)
    assert account.available(AT) == 30


def test_releasing_a_request_without_a_hold_emits_nothing() -> None:
    account, _ = held_account(30, 20)

    account.release(uuid4(), ReleaseCause.CANCELLED, actor=SPECIALIST, at=AT)

    assert new_events(account) == []


def test_a_resize_releases_and_reserves_the_new_price_lapsing_as_before() -> None:
    account, request_id = held_account(50, 20)

    account.resize(request_id, 35, actor=SPECIALIST, at=AT)

    released, reserved = new_events(account)
    assert (released.cause, released.amount) == (ReleaseCause.REVISED, 20)
    assert (reserved.amount, reserved.lapses_at) == (35, LAPSES_AT)
    assert account.available(AT) == 15


def test_a_raise_the_account_cannot_cover_is_refused() -> None:
    account, request_id = held_account(30, 20)

    with pytest.raises(InsufficientCreditsError) as refused:
        account.resize(request_id, 31, actor=SPECIALIST, at=AT)

    assert (refused.value.available, refused.value.price) == (30, 31)
    assert new_events(account) == []
    assert account.available(AT) == 10


def test_a_lapsed_hold_blocks_nothing_before_its_release_is_written() -> None:
    account, _ = held_account(30, 20)

    assert account.available(LAPSES_AT - timedelta(microseconds=1)) == 10
    assert account.available(LAPSES_AT) == 30
    assert account.hold_of(account.holds[0].request_id, LAPSES_AT) is None


def test_the_next_command_writes_the_lapse_in_its_own_events() -> None:
    account, request_id = held_account(30, 20)

    account.charge(uuid4(), 30, price_list_version=1, actor=SPECIALIST, at=AFTER_LAPSE)

    lapsed, charged = new_events(account)
    assert (lapsed.request_id, lapsed.cause, lapsed.amount) == (
        request_id,
        ReleaseCause.LAPSED,
        20,
    )
    assert types_of([charged]) == [CustomerAccount.CreditsCharged]
    assert account.holds == ()


def test_a_charge_after_its_hold_lapsed_releases_it_as_lapsed_and_charges() -> None:
    account, request_id = held_account(30, 20)

    account.charge(request_id, 20, price_list_version=1, actor=SPECIALIST, at=AFTER_LAPSE)

    lapsed, charged = new_events(account)
    assert lapsed.cause is ReleaseCause.LAPSED
    assert (charged.amount, account.balance) == (-20, 10)


def test_holds_replay_from_the_events() -> None:
    account = CustomerAccount.open("cust-replay", "Acme", actor=FINANCE, at=AT)
    account.adjust(50, "opening credit", actor=FINANCE, at=AT)
    first, second = uuid4(), uuid4()
    account.reserve(first, 20, LAPSES_AT, actor=SPECIALIST, at=AT)
    account.reserve(second, 5, LAPSES_AT, actor=SPECIALIST, at=AT)
    account.release(first, ReleaseCause.CANCELLED, actor=SPECIALIST, at=AT)

    replayed = None
    for event in new_events(account):
        replayed = event.mutate(replayed)

    assert isinstance(replayed, CustomerAccount)
    assert [(h.request_id, h.amount) for h in replayed.holds] == [(second, 5)]
    assert (replayed.balance, replayed.available(AT)) == (50, 45)
