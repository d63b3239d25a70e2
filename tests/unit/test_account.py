"""The customer account (POLICY.md, "Credits and money", "Update subscription",
"What every credit movement records"): given events, when a command, then
these events or this error."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from ledger.aggregates import CustomerAccount, account_id_for
from ledger.errors import (
    AdjustmentBelowZeroError,
    ConflictError,
    InsufficientCreditsError,
    InvalidInputError,
    LedgerCorruptionError,
    PaymentRequiredError,
)
from ledger.values import SubscriptionPeriod
from tests.support.domain import (
    AT,
    FINANCE,
    HELPDESK,
    SPECIALIST,
    given_account,
    new_events,
    types_of,
)

# --- opening ---------------------------------------------------------------


def test_opening_an_account_records_who_opened_it_and_starts_at_zero() -> None:
    account = CustomerAccount.open("cust-42", "Acme Store", actor=HELPDESK, at=AT)

    [opened] = new_events(account)
    assert type(opened) is CustomerAccount.Opened
    assert (opened.customer_id, opened.name, opened.actor, opened.timestamp) == (
        "cust-42",
        "Acme Store",
        HELPDESK,
        AT,
    )
    assert account.balance == 0


def test_one_account_per_customer_its_id_derives_from_the_customer_id() -> None:
    first = CustomerAccount.open("cust-42", "Acme", actor=HELPDESK, at=AT)
    second = CustomerAccount.open("cust-42", "Other name", actor=HELPDESK, at=AT)

    assert first.id == second.id == account_id_for("cust-42")
    assert account_id_for("cust-43") != first.id


@pytest.mark.parametrize("field", ["customer_id", "name"])
def test_opening_an_account_is_refused_without_an_id_or_a_name(field: str) -> None:
    arguments = {"customer_id": "cust-42", "name": "Acme", field: "   "}

    with pytest.raises(InvalidInputError) as refused:
        CustomerAccount.open(arguments["customer_id"], arguments["name"], actor=HELPDESK, at=AT)

    assert refused.value.field == field


# --- buying ----------------------------------------------------------------


def test_purchase_adds_the_invoice_credits_with_the_balance_after() -> None:
    account = given_account(balance=5)
    invoice_id = uuid4()

    account.purchase(invoice_id, 80, Decimal("90.00"), price_list_version=1, actor=FINANCE, at=AT)

    [purchased] = new_events(account)
    assert type(purchased) is CustomerAccount.CreditsPurchased
    assert purchased.invoice_id == invoice_id
    assert (purchased.amount, purchased.amount_usd, purchased.balance_after) == (
        80,
        Decimal("90.00"),
        85,
    )
    assert (purchased.actor, purchased.timestamp) == (FINANCE, AT)
    assert (account.balance, account.purchased) == (85, 85)


# --- adjustments (Decision) ------------------------------------------------


def test_adjustment_adds_goodwill_credits_with_its_reason() -> None:
    account = given_account(balance=10)

    account.adjust(15, "Goodwill after an outage", actor=FINANCE, at=AT)

    [adjusted] = new_events(account)
    assert type(adjusted) is CustomerAccount.BalanceAdjusted
    assert (adjusted.amount, adjusted.balance_after) == (15, 25)
    assert (adjusted.reason, adjusted.actor, adjusted.timestamp) == (
        "Goodwill after an outage",
        FINANCE,
        AT,
    )
    assert (account.balance, account.adjusted) == (25, 15)


def test_adjustment_removes_credits_with_a_negative_signed_amount() -> None:
    account = given_account(balance=50)

    account.adjust(-30, "Correction of a duplicate payment", actor=FINANCE, at=AT)

    [adjusted] = new_events(account)
    assert (adjusted.amount, adjusted.balance_after) == (-30, 20)
    assert (account.balance, account.adjusted) == (20, -30)


def test_adjustment_may_bring_the_balance_to_exactly_zero() -> None:
    account = given_account(balance=50)

    account.adjust(-50, "Refunded in cash", actor=FINANCE, at=AT)

    assert new_events(account)[0].balance_after == 0


def test_adjustment_below_zero_is_refused_with_the_balance_and_the_credits() -> None:
    account = given_account(balance=50)

    with pytest.raises(AdjustmentBelowZeroError) as refused:
        account.adjust(-51, "Correction", actor=FINANCE, at=AT)

    assert isinstance(refused.value, ConflictError)
    assert (refused.value.customer_id, refused.value.balance, refused.value.credits) == (
        account.customer_id,
        50,
        -51,
    )
    assert new_events(account) == []
    assert account.balance == 50


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_adjustment_is_refused_without_a_reason(reason: str | None) -> None:
    account = given_account(balance=50)

    with pytest.raises(InvalidInputError) as refused:
        account.adjust(10, reason, actor=FINANCE, at=AT)  # type: ignore[arg-type]

    assert refused.value.field == "reason"
    assert new_events(account) == []


# --- charges and refunds ---------------------------------------------------


def test_charge_takes_the_price_as_a_negative_amount() -> None:
    account = given_account(balance=80)
    request_id = uuid4()

    account.charge(request_id, 20, price_list_version=1, actor=SPECIALIST, at=AT)

    [charged] = new_events(account)
    assert type(charged) is CustomerAccount.CreditsCharged
    assert (charged.request_id, charged.amount, charged.balance_after) == (request_id, -20, 60)
    assert (charged.actor, charged.timestamp) == (SPECIALIST, AT)
    assert (account.balance, account.charged) == (60, 20)


def test_charge_may_take_the_whole_balance() -> None:
    account = given_account(balance=20)

    account.charge(uuid4(), 20, price_list_version=1, actor=SPECIALIST, at=AT)

    assert new_events(account)[0].balance_after == 0


def test_charge_is_refused_when_balance_is_below_price() -> None:
    account = given_account(balance=19)

    with pytest.raises(InsufficientCreditsError) as refused:
        account.charge(uuid4(), 20, price_list_version=1, actor=SPECIALIST, at=AT)

    assert isinstance(refused.value, PaymentRequiredError)
    assert (refused.value.balance, refused.value.price) == (19, 20)
    assert refused.value.customer_id == account.customer_id
    assert new_events(account) == []
    assert account.balance == 19


def test_refund_gives_credits_back_as_a_positive_amount_with_its_reason() -> None:
    account = given_account(balance=80)
    request_id = uuid4()
    account.charge(request_id, 20, price_list_version=1, actor=SPECIALIST, at=AT)
    new_events(account)

    account.refund(request_id, 15, "Partly unsolved", price_list_version=1, actor=SPECIALIST, at=AT)

    [refunded] = new_events(account)
    assert type(refunded) is CustomerAccount.CreditsRefunded
    assert (refunded.request_id, refunded.amount, refunded.balance_after) == (
        request_id,
        15,
        75,
    )
    assert (refunded.reason, refunded.actor) == ("Partly unsolved", SPECIALIST)
    assert (account.balance, account.refunded) == (75, 15)


def test_balance_equals_purchased_plus_adjusted_minus_charged_plus_refunded() -> None:
    account = given_account()
    account.purchase(uuid4(), 160, Decimal("180.00"), price_list_version=1, actor=FINANCE, at=AT)
    account.adjust(-7, "Correction", actor=FINANCE, at=AT)
    account.charge(uuid4(), 100, price_list_version=1, actor=SPECIALIST, at=AT)
    account.refund(uuid4(), 30, "Dispute upheld", price_list_version=1, actor=SPECIALIST, at=AT)
    account.charge(uuid4(), 0, price_list_version=1, actor=SPECIALIST, at=AT)

    movements = new_events(account)

    assert account.balance == 160 - 7 - 100 + 30 == 83
    assert account.balance == (
        account.purchased + account.adjusted - account.charged + account.refunded
    )
    assert sum(event.amount for event in movements) == account.balance
    assert [event.balance_after for event in movements] == [160, 153, 53, 83, 83]


# --- update subscriptions ----------------------------------------------------


def test_subscription_records_its_validity_period() -> None:
    account = given_account()

    account.record_subscription(date(2026, 3, 1), date(2026, 4, 1), actor=FINANCE, at=AT)

    [recorded] = new_events(account)
    assert type(recorded) is CustomerAccount.UpdateSubscriptionRecorded
    assert recorded.period == SubscriptionPeriod(date(2026, 3, 1), date(2026, 4, 1))
    assert (recorded.actor, recorded.timestamp) == (FINANCE, AT)


@pytest.mark.parametrize(
    ("day", "active"),
    [
        (date(2026, 2, 28), False),  # the day before valid_from
        (date(2026, 3, 1), True),  # valid_from is included
        (date(2026, 3, 31), True),  # the last day
        (date(2026, 4, 1), False),  # valid_until is excluded
    ],
)
def test_subscription_is_active_from_valid_from_until_before_valid_until(
    day: date, active: bool
) -> None:
    account = given_account(subscription=(date(2026, 3, 1), date(2026, 4, 1)))

    assert account.has_subscription_on(day) is active


@pytest.mark.parametrize("valid_until", [date(2026, 3, 1), date(2026, 2, 28)])
def test_subscription_is_refused_unless_it_ends_after_it_starts(valid_until: date) -> None:
    account = given_account()

    with pytest.raises(InvalidInputError) as refused:
        account.record_subscription(date(2026, 3, 1), valid_until, actor=FINANCE, at=AT)

    assert refused.value.field == "valid_until"
    assert new_events(account) == []


def test_current_subscription_is_the_covering_period_else_the_latest() -> None:
    account = given_account()
    march = SubscriptionPeriod(date(2026, 3, 1), date(2026, 4, 1))
    may = SubscriptionPeriod(date(2026, 5, 1), date(2026, 6, 1))
    for period in (may, march):
        account.record_subscription(period.valid_from, period.valid_until, actor=FINANCE, at=AT)

    assert types_of(new_events(account)) == [CustomerAccount.UpdateSubscriptionRecorded] * 2
    assert account.current_subscription(date(2026, 3, 15)) == march
    assert account.current_subscription(date(2026, 4, 15)) == may
    assert not account.has_subscription_on(date(2026, 4, 15))
    assert given_account().current_subscription(date(2026, 3, 15)) is None


# --- replay re-checks the stored history (beancount re-checks on every load) ---


def _history() -> list[Any]:
    """An account's events as they would be stored: opened, bought 80, +5, -20."""
    account = CustomerAccount.open("cust-42", "Acme", actor=HELPDESK, at=AT)
    account.purchase(uuid4(), 80, Decimal("80.00"), price_list_version=1, actor=FINANCE, at=AT)
    account.adjust(5, "Goodwill", actor=FINANCE, at=AT)
    account.charge(uuid4(), 20, price_list_version=1, actor=SPECIALIST, at=AT)
    return list(account.collect_events())


def _replay(events: list[Any]) -> CustomerAccount:
    account: Any = None
    for event in events:
        account = event.mutate(account)
    assert isinstance(account, CustomerAccount)
    return account


def test_replay_rebuilds_the_balance_the_events_carry() -> None:
    assert _replay(_history()).balance == 65


def test_replay_refuses_a_movement_whose_balance_after_does_not_add_up() -> None:
    events = _history()
    events[2] = replace(events[2], balance_after=1000)  # 80 + 5 is not 1000

    with pytest.raises(LedgerCorruptionError) as corrupted:
        _replay(events)

    error = corrupted.value
    assert (error.customer_id, error.version, error.what, error.expected, error.found) == (
        "cust-42",
        3,
        "balance",
        85,
        1000,
    )
    assert error.account_id == account_id_for("cust-42")
    assert "version 3" in error.detail and "cust-42" in error.detail


def test_replay_refuses_an_event_that_is_not_the_next_version() -> None:
    events = _history()
    del events[1]  # the purchase removed: version 3 follows version 1

    with pytest.raises(LedgerCorruptionError) as corrupted:
        _replay(events)

    error = corrupted.value
    assert (error.version, error.what, error.expected, error.found) == (3, "version", 2, 3)
