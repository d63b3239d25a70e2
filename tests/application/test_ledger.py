"""Every command and query of the ledger, through the application, on SQLite
and on PostgreSQL: results, positions, what is stored (and that a refusal
stores nothing), and the plain values queries return."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from ledger.application import Ledger
from ledger.commands.results import (
    AdjustBalanceResult,
    ChargeResult,
    InvoiceChangeResult,
    IssueInvoiceResult,
    OpenAccountResult,
    QuoteResult,
    RecordSubscriptionResult,
    RefundResult,
    RequestChangeResult,
)
from ledger.errors import (
    AccountAlreadyExistsError,
    AdjustmentBelowZeroError,
    AlreadyChargedError,
    ChannelNotAllowedError,
    InsufficientCreditsError,
    InvalidInputError,
    InvalidRequestStateError,
    InvalidStoreUpdateError,
    InvoiceAlreadyPaidError,
    InvoiceVoidedError,
    OutsideWorkingHoursError,
    PermissionDeniedError,
    PriceBelowMinimumError,
    QuoteAwaitingAcceptanceError,
    QuotePendingError,
    RefundExceedsChargeError,
    RequestClosedError,
    SubscriptionRequiredError,
    UnknownAccountError,
    UnknownCategoryError,
    UnknownInvoiceError,
    UnknownRequestError,
)
from ledger.values import SubscriptionPeriod
from ledger.views import AccountView, HistoryEntry, InvoiceView, RequestView
from tests.application.conftest import LedgerFactory
from tests.support.domain import ADMIN, FINANCE, HELPDESK, SPECIALIST
from tests.support.ledger import (
    Clock,
    funded_customer,
    movement_sum,
    new_customer_id,
    new_event_types,
    open_request,
    refused,
)

PLAIN = (str, int, bool, type(None), Decimal, date, datetime, type(uuid4()))


def assert_positioned(ledger: Ledger, result: Any, before: int) -> None:
    """The result's position is past ``before`` and is the newest stored event."""
    assert result.position > before
    assert result.position == ledger.recorder.max_notification_id() == ledger.position()


def charged_request(ledger: Ledger, customer_id: str, category: str = "installation") -> Any:
    request_id = open_request(ledger, customer_id, category)
    ledger.charge(request_id, actor=SPECIALIST)
    return request_id


# --- accounts --------------------------------------------------------------


def test_open_account_answers_a_zero_balance_and_its_position(ledger: Ledger) -> None:
    customer_id = new_customer_id()
    before = ledger.position()

    opened = ledger.open_account(customer_id, "Acme Store", actor=HELPDESK)

    assert opened == OpenAccountResult(customer_id, "Acme Store", 0, opened.position)
    assert_positioned(ledger, opened, before)
    assert new_event_types(ledger, before) == ["Opened"]


def test_a_second_account_for_the_same_customer_is_refused(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger)

    with refused(ledger, AccountAlreadyExistsError) as error:
        ledger.open_account(customer_id, "Again", actor=FINANCE)

    assert error.value.customer_id == customer_id


def test_open_account_is_refused_without_a_name(ledger: Ledger) -> None:
    with refused(ledger, InvalidInputError) as error:
        ledger.open_account(new_customer_id(), " ", actor=HELPDESK)

    assert error.value.field == "name"


def test_a_role_that_may_not_act_is_refused_and_nothing_is_stored(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id)

    with refused(ledger, PermissionDeniedError) as error:
        ledger.charge(request_id, actor=HELPDESK)
    assert (error.value.role, error.value.action) == ("helpdesk", "charge")
    with refused(ledger, PermissionDeniedError):
        ledger.adjust_balance(customer_id, 10, "Goodwill", actor=SPECIALIST)
    with refused(ledger, PermissionDeniedError):
        ledger.open_request(customer_id, "installation", "helpdesk", "x", actor=FINANCE)


def test_admin_may_run_any_command(ledger: Ledger) -> None:
    customer_id = new_customer_id()
    ledger.open_account(customer_id, "Acme", actor=ADMIN)
    ledger.adjust_balance(customer_id, 50, "Migration", actor=ADMIN)
    request_id = ledger.open_request(
        customer_id, "installation", "helpdesk", "x", actor=ADMIN
    ).request_id

    assert ledger.charge(request_id, actor=ADMIN).balance == 30


# --- invoices --------------------------------------------------------------


def test_issue_invoice_for_a_standard_package(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger)
    before = ledger.position()

    issued = ledger.issue_invoice(customer_id, package=320, actor=FINANCE)

    assert issued == IssueInvoiceResult(
        issued.invoice_id, customer_id, 320, Decimal("360.00"), "issued", issued.position
    )
    assert_positioned(ledger, issued, before)
    assert ledger.get_invoice(issued.invoice_id) == InvoiceView(
        issued.invoice_id,
        customer_id,
        320,
        Decimal("360.00"),
        "issued",
        None,
        ledger.clock(),
        price_list_version=1,
    )


def test_issue_invoice_for_a_custom_package(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger)

    issued = ledger.issue_invoice(customer_id, credits=1000, amount_usd="1050.00", actor=FINANCE)

    assert (issued.credits, issued.amount_usd) == (1000, Decimal("1050.00"))


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"package": 100}, "package"),
        ({"package": 80, "credits": 80}, "package"),
        ({"credits": 80}, "amount_usd"),
        ({"amount_usd": "90.00"}, "credits"),
        ({"credits": 80, "amount_usd": 90.0}, "amount_usd"),
        ({"credits": 0, "amount_usd": "1.00"}, "credits"),
    ],
)
def test_issue_invoice_refuses_a_package_that_is_neither_listed_nor_fully_custom(
    ledger: Ledger, arguments: dict[str, Any], field: str
) -> None:
    customer_id = funded_customer(ledger)

    with refused(ledger, InvalidInputError) as error:
        ledger.issue_invoice(customer_id, **arguments, actor=FINANCE)

    assert error.value.field == field


def test_issue_invoice_for_an_unknown_customer_is_refused(ledger: Ledger) -> None:
    with refused(ledger, UnknownAccountError):
        ledger.issue_invoice(new_customer_id(), package=80, actor=FINANCE)


def test_paying_an_invoice_stores_the_payment_and_the_credits_in_one_append(
    ledger: Ledger,
) -> None:
    customer_id = funded_customer(ledger)
    invoice = ledger.issue_invoice(customer_id, package=80, actor=FINANCE)
    before = ledger.position()

    paid = ledger.pay_invoice(invoice.invoice_id, "bank-42", actor=FINANCE)

    assert paid == InvoiceChangeResult(invoice.invoice_id, customer_id, "paid", 80, paid.position)
    assert_positioned(ledger, paid, before)
    assert sorted(new_event_types(ledger, before)) == ["CreditsPurchased", "InvoicePaid"]
    assert ledger.get_account(customer_id).purchased == 80
    assert ledger.get_invoice(invoice.invoice_id).payment_ref == "bank-42"


def test_an_invoice_adds_its_credits_exactly_once(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger)
    invoice = ledger.issue_invoice(customer_id, package=160, actor=FINANCE)
    ledger.pay_invoice(invoice.invoice_id, "bank-1", actor=FINANCE)

    with refused(ledger, InvoiceAlreadyPaidError) as error:
        ledger.pay_invoice(invoice.invoice_id, "bank-2", actor=FINANCE)

    assert error.value.invoice_id == invoice.invoice_id
    assert ledger.get_account(customer_id).balance == 160
    assert movement_sum(ledger, customer_id) == 160


def test_void_invoice_then_payment_is_refused(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger)
    invoice = ledger.issue_invoice(customer_id, package=80, actor=FINANCE)
    before = ledger.position()

    voided = ledger.void_invoice(invoice.invoice_id, "Wrong package", actor=FINANCE)

    assert (voided.status, voided.balance) == ("voided", 0)
    assert_positioned(ledger, voided, before)
    with refused(ledger, InvoiceVoidedError):
        ledger.pay_invoice(invoice.invoice_id, "bank-1", actor=FINANCE)
    assert ledger.get_account(customer_id).balance == 0


def test_a_paid_invoice_cannot_be_voided(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger)
    invoice = ledger.issue_invoice(customer_id, package=80, actor=FINANCE)
    ledger.pay_invoice(invoice.invoice_id, "bank-1", actor=FINANCE)

    with refused(ledger, InvoiceAlreadyPaidError):
        ledger.void_invoice(invoice.invoice_id, "Too late", actor=FINANCE)


def test_unknown_invoice_is_refused(ledger: Ledger) -> None:
    with refused(ledger, UnknownInvoiceError):
        ledger.pay_invoice(uuid4(), "bank-1", actor=FINANCE)
    with pytest.raises(UnknownInvoiceError):
        ledger.get_invoice(uuid4())


# --- adjustments and subscriptions ------------------------------------------


def test_adjustments_add_and_remove_credits(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 80)
    before = ledger.position()

    added = ledger.adjust_balance(customer_id, 20, "Goodwill", actor=FINANCE)
    removed = ledger.adjust_balance(customer_id, -100, "Correction", actor=FINANCE)

    assert added == AdjustBalanceResult(customer_id, 100, added.position)
    assert removed == AdjustBalanceResult(customer_id, 0, removed.position)
    assert before < added.position < removed.position
    assert_positioned(ledger, removed, added.position)
    assert ledger.get_account(customer_id).adjusted == -80


def test_adjustment_below_zero_is_refused(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 80)

    with refused(ledger, AdjustmentBelowZeroError) as error:
        ledger.adjust_balance(customer_id, -81, "Correction", actor=FINANCE)

    assert (error.value.balance, error.value.credits) == (80, -81)


@pytest.mark.parametrize(("credits", "reason", "field"), [(0, "x", "credits"), (5, " ", "reason")])
def test_adjustment_needs_credits_and_a_reason(
    ledger: Ledger, credits: int, reason: str, field: str
) -> None:
    customer_id = funded_customer(ledger, 80)

    with refused(ledger, InvalidInputError) as error:
        ledger.adjust_balance(customer_id, credits, reason, actor=FINANCE)

    assert error.value.field == field


def test_record_subscription_makes_it_active_on_its_days(ledger: Ledger, clock: Clock) -> None:
    customer_id = funded_customer(ledger)
    today = clock().date()
    before = ledger.position()

    recorded = ledger.record_subscription(
        customer_id, today, today + timedelta(days=1), actor=FINANCE
    )

    assert recorded == RecordSubscriptionResult(
        customer_id, today, today + timedelta(days=1), recorded.position
    )
    assert_positioned(ledger, recorded, before)
    account = ledger.get_account(customer_id)
    assert account.update_subscription == SubscriptionPeriod(today, today + timedelta(days=1))
    assert account.subscription_active is True
    clock.advance(days=1)
    assert ledger.get_account(customer_id).subscription_active is False


def test_subscription_that_does_not_end_after_it_starts_is_refused(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger)

    with refused(ledger, InvalidInputError) as error:
        ledger.record_subscription(customer_id, date(2026, 3, 2), date(2026, 3, 2), actor=FINANCE)

    assert error.value.field == "valid_until"


# --- opening requests --------------------------------------------------------


def test_open_request_answers_its_status_and_price(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger)
    before = ledger.position()

    opened = ledger.open_request(customer_id, "configuration", "helpdesk", "Taxes", actor=HELPDESK)

    assert opened == RequestChangeResult(opened.request_id, "open", 10, opened.position)
    assert_positioned(ledger, opened, before)
    assert ledger.get_request(opened.request_id).subject == "Taxes"


def test_store_update_request_is_priced_by_its_versions(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger)

    opened = ledger.open_request(
        customer_id,
        "store_update",
        "helpdesk",
        "Update",
        from_version="4.4.1",
        to_version="4.4.4",
        actor=HELPDESK,
    )

    assert opened.price == 25
    view = ledger.get_request(opened.request_id)
    assert (view.from_version, view.to_version) == ("4.4.1", "4.4.4")


@pytest.mark.parametrize(
    ("category", "channel", "options", "error"),
    [
        ("configuration", "phone", {}, ChannelNotAllowedError),
        ("configuration", "skype", {}, ChannelNotAllowedError),
        ("hosting", "helpdesk", {}, UnknownCategoryError),
        (
            "store_update",
            "helpdesk",
            {"from_version": "4.4.1", "to_version": "4.5.0"},
            InvalidStoreUpdateError,
        ),
    ],
)
def test_open_request_refusals_store_nothing(
    ledger: Ledger, category: str, channel: str, options: dict[str, Any], error: type
) -> None:
    customer_id = funded_customer(ledger)

    with refused(ledger, error):
        ledger.open_request(customer_id, category, channel, "Help", actor=HELPDESK, **options)


def test_open_request_for_an_unknown_customer_is_refused(ledger: Ledger) -> None:
    with refused(ledger, UnknownAccountError):
        open_request(ledger, new_customer_id())


# --- the charge ------------------------------------------------------------


def test_charge_stores_the_answer_and_the_debit_in_one_append(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id, "installation")
    before = ledger.position()

    charged = ledger.charge(request_id, actor=SPECIALIST)

    assert charged == ChargeResult(request_id, 20, 80, charged.position)
    assert_positioned(ledger, charged, before)
    assert sorted(new_event_types(ledger, before)) == ["AnswerCharged", "CreditsCharged"]
    assert ledger.get_request(request_id).charged == 20
    assert ledger.get_account(customer_id).balance == 80 == movement_sum(ledger, customer_id)


def test_charge_is_refused_when_balance_is_below_price(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 19)
    request_id = open_request(ledger, customer_id, "installation")

    with refused(ledger, InsufficientCreditsError) as error:
        ledger.charge(request_id, actor=SPECIALIST)

    assert (error.value.balance, error.value.price) == (19, 20)
    assert ledger.get_request(request_id).status == "open"


def test_second_charge_is_refused(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = charged_request(ledger, customer_id)

    with refused(ledger, AlreadyChargedError):
        ledger.charge(request_id, actor=SPECIALIST)

    assert ledger.get_account(customer_id).balance == 80


@pytest.mark.parametrize("category", ["security_fix", "compatibility_fix"])
def test_free_request_is_charged_zero_and_both_events_are_stored(
    ledger: Ledger, category: str
) -> None:
    customer_id = funded_customer(ledger)
    request_id = open_request(ledger, customer_id, category)
    before = ledger.position()

    charged = ledger.charge(request_id, actor=SPECIALIST)

    assert (charged.charged, charged.balance) == (0, 0)
    assert sorted(new_event_types(ledger, before)) == ["AnswerCharged", "CreditsCharged"]


def test_update_request_needs_an_active_subscription(ledger: Ledger, clock: Clock) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id, "addon_update")

    with refused(ledger, SubscriptionRequiredError) as error:
        ledger.charge(request_id, actor=SPECIALIST)
    assert error.value.category == "addon_update"

    today = clock().date()
    ledger.record_subscription(customer_id, today, today + timedelta(days=30), actor=FINANCE)
    assert ledger.charge(request_id, actor=SPECIALIST).balance == 60


def test_charge_outside_working_hours_is_refused_until_support_opens(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    ledger = make_ledger(support_hours="Mon-Fri 09:00-18:00 Europe/Samara")
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id)
    clock.now = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)  # Saturday, 14:00 in Samara

    with refused(ledger, OutsideWorkingHoursError) as error:
        ledger.charge(request_id, actor=SPECIALIST)

    monday_opening = datetime(2026, 3, 9, 5, 0, tzinfo=UTC)
    assert error.value.next_opening == monday_opening
    hours = ledger.support_hours()
    assert (hours.open, hours.next_open, hours.time_zone) == (
        False,
        monday_opening,
        "Europe/Samara",
    )
    clock.now = monday_opening
    assert ledger.support_hours().open is True
    assert ledger.charge(request_id, actor=SPECIALIST).balance == 80


def test_charge_on_a_configured_holiday_is_refused(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    ledger = make_ledger(support_hours="Mon-Fri 09:00-18:00 Europe/Samara", holidays="2026-03-02")
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id)

    with refused(ledger, OutsideWorkingHoursError) as error:
        ledger.charge(request_id, actor=SPECIALIST)

    assert error.value.next_opening == datetime(2026, 3, 3, 5, 0, tzinfo=UTC)


def test_support_hours_under_24_7_are_always_open(ledger: Ledger) -> None:
    hours = ledger.support_hours()

    assert (hours.open, hours.next_open, hours.hours) == (True, None, "24/7")


def test_subscription_day_is_evaluated_in_the_calendar_time_zone(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    ledger = make_ledger(support_hours="Mon-Sun 00:00-24:00 Europe/Samara")
    customer_id = funded_customer(ledger, 200)
    ledger.record_subscription(customer_id, date(2026, 3, 2), date(2026, 3, 3), actor=FINANCE)
    starts = open_request(ledger, customer_id, "addon_update")
    ends = open_request(ledger, customer_id, "addon_update")

    # 21:30 UTC on Sunday 1 March is already Monday 2 March in Samara.
    clock.now = datetime(2026, 3, 1, 21, 30, tzinfo=UTC)
    assert ledger.get_account(customer_id).subscription_active is True
    ledger.charge(starts, actor=SPECIALIST)
    # 20:30 UTC on Monday 2 March is already Tuesday 3 March in Samara.
    clock.now = datetime(2026, 3, 2, 20, 30, tzinfo=UTC)
    with refused(ledger, SubscriptionRequiredError):
        ledger.charge(ends, actor=SPECIALIST)


def test_today_is_the_date_in_the_calendar_time_zone(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    ledger = make_ledger(support_hours="Mon-Sun 00:00-24:00 Europe/Samara")

    # 21:30 UTC on Sunday 1 March is already Monday 2 March in Samara.
    clock.now = datetime(2026, 3, 1, 21, 30, tzinfo=UTC)
    assert ledger.today() == date(2026, 3, 2)
    clock.now = datetime(2026, 3, 1, 19, 59, tzinfo=UTC)
    assert ledger.today() == date(2026, 3, 1)


# --- quotes, revisions, acceptance -------------------------------------------


def test_pre_quote_quote_with_surcharge_accept_then_charge(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id, "investigation")

    asked = ledger.request_pre_quote(request_id, "Price first", actor=HELPDESK)
    assert (asked.status, asked.price) == ("awaiting_quote", 20)
    with refused(ledger, QuotePendingError):
        ledger.charge(request_id, actor=SPECIALIST)

    before = ledger.position()
    quoted = ledger.quote(request_id, 30, 5, actor=SPECIALIST)
    assert quoted == QuoteResult(request_id, "quoted", 30, 5, 35, quoted.position)
    assert_positioned(ledger, quoted, before)
    with refused(ledger, QuoteAwaitingAcceptanceError) as error:
        ledger.charge(request_id, actor=SPECIALIST)
    assert error.value.price == 35

    accepted = ledger.accept_quote(request_id, actor=HELPDESK)
    assert accepted == RequestChangeResult(request_id, "open", 35, accepted.position)
    assert ledger.get_request(request_id).agreed_price == 35
    assert ledger.charge(request_id, actor=SPECIALIST).balance == 65


def test_declined_quote_closes_the_request_at_no_cost(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id, "investigation")
    ledger.request_pre_quote(request_id, actor=HELPDESK)
    ledger.quote(request_id, 30, actor=SPECIALIST)

    declined = ledger.decline_quote(request_id, "Too expensive", actor=HELPDESK)

    assert declined.status == "declined"
    assert ledger.get_request(request_id).closed_at is not None
    with refused(ledger, RequestClosedError):
        ledger.charge(request_id, actor=SPECIALIST)
    assert ledger.get_account(customer_id).balance == 100


def test_complex_modification_is_quoted_directly_at_twenty_or_more(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id, "complex_modification")
    assert ledger.get_request(request_id).price is None

    with refused(ledger, PriceBelowMinimumError):
        ledger.quote(request_id, 19, actor=SPECIALIST)
    with refused(ledger, QuotePendingError):
        ledger.charge(request_id, actor=SPECIALIST)
    ledger.quote(request_id, 20, actor=SPECIALIST)
    ledger.accept_quote(request_id, actor=HELPDESK)

    assert ledger.charge(request_id, actor=SPECIALIST).charged == 20


def test_raised_agreed_price_needs_acceptance_again_before_the_charge(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id, "complex_modification")
    ledger.quote(request_id, 30, actor=SPECIALIST)
    ledger.accept_quote(request_id, actor=HELPDESK)
    before = ledger.position()

    revised = ledger.revise_price(request_id, 45, "A migration is needed", actor=SPECIALIST)

    assert revised == RequestChangeResult(request_id, "awaiting_acceptance", 45, revised.position)
    assert_positioned(ledger, revised, before)
    with refused(ledger, QuoteAwaitingAcceptanceError):
        ledger.charge(request_id, actor=SPECIALIST)
    ledger.accept_quote(request_id, actor=HELPDESK)
    assert ledger.charge(request_id, actor=SPECIALIST).charged == 45


def test_lowered_price_needs_no_acceptance(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id, "complex_modification")
    ledger.quote(request_id, 30, actor=SPECIALIST)
    ledger.accept_quote(request_id, actor=HELPDESK)

    revised = ledger.revise_price(request_id, 25, "Simpler", actor=SPECIALIST)

    assert (revised.status, revised.price) == ("open", 25)
    assert ledger.charge(request_id, actor=SPECIALIST).charged == 25


def test_revision_needs_a_reason_and_is_refused_after_the_charge(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id)

    with refused(ledger, InvalidInputError) as error:
        ledger.revise_price(request_id, 30, "", actor=SPECIALIST)
    assert error.value.field == "reason"
    ledger.charge(request_id, actor=SPECIALIST)
    with refused(ledger, AlreadyChargedError):
        ledger.revise_price(request_id, 30, "Too late", actor=SPECIALIST)


def test_refer_and_cancel_close_without_a_charge(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    referred_id = open_request(ledger, customer_id)
    cancelled_id = open_request(ledger, customer_id)

    referred = ledger.refer(referred_id, "Custom development", actor=SPECIALIST)
    cancelled = ledger.cancel(cancelled_id, actor=HELPDESK)

    assert (referred.status, cancelled.status) == ("referred", "cancelled")
    assert referred.position < cancelled.position == ledger.position()
    for request_id in (referred_id, cancelled_id):
        with refused(ledger, RequestClosedError):
            ledger.charge(request_id, actor=SPECIALIST)
    assert ledger.get_account(customer_id).balance == 100


def test_every_request_command_answers_the_position_of_its_last_event(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    first = open_request(ledger, customer_id, "investigation")
    second = open_request(ledger, customer_id, "investigation")
    commands = [
        lambda: ledger.request_pre_quote(first, actor=HELPDESK),
        lambda: ledger.quote(first, 30, 2, actor=SPECIALIST),
        lambda: ledger.revise_price(first, 31, "More", actor=SPECIALIST),
        lambda: ledger.decline_quote(first, actor=HELPDESK),
        lambda: ledger.request_pre_quote(second, actor=HELPDESK),
        lambda: ledger.quote(second, 20, actor=SPECIALIST),
        lambda: ledger.accept_quote(second, actor=HELPDESK),
        lambda: ledger.charge(second, actor=SPECIALIST),
        lambda: ledger.dispute(second, "Unsolved", actor=HELPDESK),
        lambda: ledger.reject_dispute(second, "Solved", actor=SPECIALIST),
        lambda: ledger.dispute(second, "Really unsolved", actor=HELPDESK),
        lambda: ledger.refund(second, 20, "Agreed", actor=SPECIALIST),
        lambda: ledger.refer(open_request(ledger, customer_id), "Custom", actor=SPECIALIST),
        lambda: ledger.cancel(open_request(ledger, customer_id), actor=HELPDESK),
    ]

    for command in commands:
        before = ledger.position()
        assert_positioned(ledger, command(), before)

    assert ledger.get_account(customer_id).balance == 100


def test_a_request_command_on_an_id_of_another_kind_is_refused(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    invoice_id = ledger.issue_invoice(customer_id, package=80, actor=FINANCE).invoice_id
    request_id = open_request(ledger, customer_id)

    with refused(ledger, UnknownRequestError):
        ledger.charge(invoice_id, actor=SPECIALIST)
    with refused(ledger, UnknownInvoiceError):
        ledger.pay_invoice(request_id, "bank-1", actor=FINANCE)
    with pytest.raises(UnknownRequestError):
        ledger.get_request(invoice_id)
    with pytest.raises(UnknownRequestError):
        ledger.request_history(invoice_id)
    with pytest.raises(UnknownInvoiceError):
        ledger.get_invoice(request_id)


def test_unknown_request_is_refused(ledger: Ledger) -> None:
    with refused(ledger, UnknownRequestError):
        ledger.charge(uuid4(), actor=SPECIALIST)
    with pytest.raises(UnknownRequestError):
        ledger.get_request(uuid4())
    with pytest.raises(UnknownRequestError):
        ledger.request_history(uuid4())


# --- disputes and refunds ----------------------------------------------------


def test_dispute_and_partial_refund_return_credits_in_one_append(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = charged_request(ledger, customer_id)  # 20 credits

    disputed = ledger.dispute(request_id, "Did not help", actor=HELPDESK)
    assert disputed.status == "disputed"
    before = ledger.position()
    refunded = ledger.refund(request_id, 8, "Partly unsolved", actor=SPECIALIST)

    assert refunded == RefundResult(request_id, 8, 88, refunded.position)
    assert_positioned(ledger, refunded, before)
    assert sorted(new_event_types(ledger, before)) == ["ChargeRefunded", "CreditsRefunded"]
    assert ledger.get_account(customer_id).refunded == 8
    assert movement_sum(ledger, customer_id) == 88


def test_refunds_never_total_more_than_the_charge(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = charged_request(ledger, customer_id)
    ledger.dispute(request_id, "Did not help", actor=HELPDESK)

    with refused(ledger, RefundExceedsChargeError) as error:
        ledger.refund(request_id, 21, "Too much", actor=SPECIALIST)
    assert error.value.refundable == 20
    ledger.refund(request_id, 15, "Most of it", actor=SPECIALIST)
    ledger.dispute(request_id, "Still broken", actor=HELPDESK)
    with refused(ledger, RefundExceedsChargeError) as error:
        ledger.refund(request_id, 6, "Too much", actor=SPECIALIST)
    assert error.value.refundable == 5

    assert ledger.refund(request_id, 5, "The rest", actor=SPECIALIST).refunded == 20
    assert ledger.get_account(customer_id).balance == 100


def test_rejected_dispute_keeps_the_charge(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = charged_request(ledger, customer_id)
    ledger.dispute(request_id, "Did not help", actor=HELPDESK)

    rejected = ledger.reject_dispute(request_id, "It was answered", actor=SPECIALIST)

    assert (rejected.status, rejected.position) == ("dispute_rejected", ledger.position())
    with refused(ledger, InvalidRequestStateError):
        ledger.refund(request_id, 5, "After rejection", actor=SPECIALIST)
    assert ledger.get_account(customer_id).balance == 80


# --- queries -----------------------------------------------------------------


def _assert_plain(value: Any, name: str = "view") -> None:
    """Only dataclasses of plain values: no aggregate, no live object."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            _assert_plain(getattr(value, field.name), field.name)
    elif isinstance(value, dict):
        json.dumps(value)  # event data is JSON-ready
    else:
        assert isinstance(value, PLAIN), f"{name} is a {type(value).__name__}"
        assert type(value).__module__ in ("builtins", "decimal", "datetime", "uuid"), name


def test_queries_return_plain_frozen_values(ledger: Ledger, clock: Clock) -> None:
    customer_id = funded_customer(ledger, 100)
    today = clock().date()
    ledger.record_subscription(customer_id, today, today + timedelta(days=9), actor=FINANCE)
    request_id = charged_request(ledger, customer_id)
    invoice_id = ledger.issue_invoice(customer_id, package=80, actor=FINANCE).invoice_id

    account = ledger.get_account(customer_id)
    request = ledger.get_request(request_id)
    invoice = ledger.get_invoice(invoice_id)

    assert isinstance(account, AccountView)
    assert isinstance(request, RequestView)
    assert isinstance(invoice, InvoiceView)
    for view in (account, request, invoice, *ledger.request_history(request_id)):
        _assert_plain(view)
    with pytest.raises(dataclasses.FrozenInstanceError):
        account.balance = 1_000  # type: ignore[misc]
    assert (account.balance, account.purchased, account.charged) == (80, 100, 20)
    assert (request.category, request.status, request.charged) == (
        "installation",
        "charged",
        20,
    )
    assert request.opened_at == clock()


def test_history_lists_every_event_with_its_position_and_the_state_after_it(
    ledger: Ledger, clock: Clock
) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id, "investigation")
    positions = [ledger.position()]
    clock.advance(minutes=1)
    positions.append(ledger.request_pre_quote(request_id, actor=HELPDESK).position)
    clock.advance(minutes=1)
    positions.append(ledger.quote(request_id, 30, 2, actor=SPECIALIST).position)
    positions.append(ledger.revise_price(request_id, 28, "Less", actor=SPECIALIST).position)
    positions.append(ledger.accept_quote(request_id, actor=HELPDESK).position)
    positions.append(ledger.charge(request_id, actor=SPECIALIST).position)
    positions.append(ledger.dispute(request_id, "Hmm", actor=HELPDESK).position)
    positions.append(ledger.refund(request_id, 3, "Partly", actor=SPECIALIST).position)

    history = ledger.request_history(request_id)

    assert all(isinstance(entry, HistoryEntry) for entry in history)
    assert [entry.type for entry in history] == [
        "RequestOpened",
        "PreQuoteRequested",
        "RequestQuoted",
        "PriceRevised",
        "QuoteAccepted",
        "AnswerCharged",
        "ChargeDisputed",
        "ChargeRefunded",
    ]
    assert [entry.version for entry in history] == list(range(1, 9))
    # The charge and the refund are appended together with the account's event.
    assert [entry.position for entry in history][:5] == positions[:5]
    for entry, position in zip(history[5:], positions[5:], strict=True):
        assert entry.position is not None and position - 1 <= entry.position <= position
    assert [entry.state.status for entry in history] == [
        "open",
        "awaiting_quote",
        "quoted",
        "quoted",
        "open",
        "charged",
        "disputed",
        "refunded",
    ]
    assert [entry.state.price for entry in history] == [20, 20, 32, 28, 28, 28, 28, 28]
    assert [entry.state.charged for entry in history][4:6] == [None, 28]
    assert history[-1].state.refunded == 3
    assert history[2].data["surcharge"] == 2
    assert history[3].data["reason"] == "Less"
    assert [entry.actor for entry in history][:3] == [str(HELPDESK), str(HELPDESK), str(SPECIALIST)]
    assert history[1].at == history[0].at + timedelta(minutes=1)


def test_account_as_of_replays_the_account_at_several_instants(
    ledger: Ledger, clock: Clock
) -> None:
    opened_at = clock()
    customer_id = funded_customer(ledger, 80)
    clock.advance(hours=1)
    ledger.adjust_balance(customer_id, 20, "Goodwill", actor=FINANCE)
    clock.advance(hours=1)
    charged_request(ledger, customer_id)
    clock.advance(hours=1)

    def balance_at(at: datetime) -> int:
        return ledger.get_account_as_of(customer_id, at).balance

    assert balance_at(opened_at) == 80
    assert balance_at(opened_at + timedelta(minutes=59)) == 80
    assert balance_at(opened_at + timedelta(hours=1)) == 100
    assert balance_at(opened_at + timedelta(hours=1, minutes=30)) == 100
    assert balance_at(opened_at + timedelta(hours=2)) == 80
    assert balance_at(clock()) == ledger.get_account(customer_id).balance == 80
    with pytest.raises(UnknownAccountError):
        ledger.get_account_as_of(customer_id, opened_at - timedelta(seconds=1))
    with pytest.raises(InvalidInputError):
        ledger.get_account_as_of(customer_id, datetime(2026, 3, 2, 12, 0))


def test_account_as_of_is_independent_of_the_offset_it_is_given_in(
    ledger: Ledger, clock: Clock
) -> None:
    customer_id = funded_customer(ledger, 80)
    clock.advance(hours=1)
    ledger.adjust_balance(customer_id, 20, "Goodwill", actor=FINANCE)
    samara = datetime.fromisoformat("2026-03-02T14:30:00+04:00")  # 10:30 UTC

    assert ledger.get_account_as_of(customer_id, samara).balance == 80
