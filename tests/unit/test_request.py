"""A support request's life (POLICY.md, "A request's life", "Working hours",
"Update subscription"): given events, when a command, then these events or
this error. Every refusal leaves both aggregates without new events."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ledger.aggregates import CustomerAccount, RequestStatus, SupportRequest
from ledger.aggregates.request import REFUSALS
from ledger.errors import (
    AlreadyChargedError,
    ChannelNotAllowedError,
    ConflictError,
    InsufficientCreditsError,
    InvalidInputError,
    InvalidRequestStateError,
    OutsideWorkingHoursError,
    PaymentRequiredError,
    PriceBelowMinimumError,
    QuoteAwaitingAcceptanceError,
    QuotePendingError,
    RefundExceedsChargeError,
    RequestClosedError,
    SubscriptionRequiredError,
)
from ledger.policy import Category, SupportCalendar
from tests.support.domain import (
    AT,
    CALENDAR,
    EARLIER,
    HELPDESK,
    NEXT_MONDAY_OPENING,
    SATURDAY,
    SPECIALIST,
    given,
    given_account,
    given_charged,
    given_disputed,
    given_request,
    new_events,
    types_of,
)

S = RequestStatus
R = SupportRequest
MARCH = (date(2026, 3, 1), date(2026, 4, 1))


def charge(request: SupportRequest, account: CustomerAccount, at: datetime = AT) -> None:
    request.charge(account, CALENDAR, actor=SPECIALIST, at=at)


def assert_nothing_emitted(*aggregates: SupportRequest | CustomerAccount) -> None:
    for aggregate in aggregates:
        assert new_events(aggregate) == []


def then_charged(
    request: SupportRequest, account: CustomerAccount, price: int, balance_after: int
) -> None:
    """The request's AnswerCharged and the account's CreditsCharged, both signed."""
    [answer] = new_events(request)
    [debit] = new_events(account)
    assert type(answer) is R.AnswerCharged
    assert type(debit) is CustomerAccount.CreditsCharged
    assert answer.amount == debit.amount == -price
    assert answer.balance_after == debit.balance_after == balance_after
    assert debit.request_id == request.id
    assert answer.actor == debit.actor == SPECIALIST
    assert answer.timestamp == debit.timestamp == AT
    assert request.status is S.CHARGED
    assert request.charged == price


def given_quoted(account: CustomerAccount, work_price: int = 30, surcharge: int = 5) -> R:
    request = given_request(account, Category.INVESTIGATION)
    request.request_pre_quote("How much?", actor=HELPDESK, at=EARLIER)
    request.quote(work_price, surcharge, actor=SPECIALIST, at=EARLIER)
    given(request)
    return request


def given_agreed(account: CustomerAccount, price: int = 30) -> R:
    """A complex modification whose price the client accepted."""
    request = given_request(account, Category.COMPLEX_MODIFICATION)
    request.quote(price, 0, actor=SPECIALIST, at=EARLIER)
    request.accept_quote(actor=HELPDESK, at=EARLIER)
    given(request)
    return request


# --- opening ---------------------------------------------------------------


def test_opening_a_request_records_its_category_price_channel_and_actor() -> None:
    account = given_account()

    request = SupportRequest.open(
        account, Category.CONFIGURATION, "Shipping rates", "helpdesk", actor=HELPDESK, at=AT
    )

    [opened] = new_events(request)
    assert type(opened) is R.RequestOpened
    assert (opened.account_id, opened.customer_id) == (account.id, account.customer_id)
    assert (opened.category, opened.subject, opened.channel, opened.price) == (
        Category.CONFIGURATION,
        "Shipping rates",
        "helpdesk",
        10,
    )
    assert (opened.actor, opened.timestamp) == (HELPDESK, AT)
    assert request.status is S.OPEN


def test_store_update_is_priced_by_its_patch_steps_at_opening() -> None:
    request = given_request(
        given_account(), Category.STORE_UPDATE, from_version="4.4.1", to_version="4.4.4"
    )

    assert request.price == 25


def test_complex_modification_opens_without_a_price() -> None:
    assert given_request(given_account(), Category.COMPLEX_MODIFICATION).price is None


@pytest.mark.parametrize("channel", ["phone", "skype", "email", "Helpdesk", ""])
def test_request_from_a_channel_other_than_the_helpdesk_is_refused(channel: str) -> None:
    with pytest.raises(ChannelNotAllowedError) as refused:
        SupportRequest.open(
            given_account(), Category.CONFIGURATION, "Help", channel, actor=HELPDESK, at=AT
        )

    assert isinstance(refused.value, InvalidInputError)
    assert (refused.value.field, refused.value.channel) == ("channel", channel)


def test_request_is_refused_without_a_subject() -> None:
    with pytest.raises(InvalidInputError) as refused:
        SupportRequest.open(
            given_account(), Category.CONFIGURATION, " ", "helpdesk", actor=HELPDESK, at=AT
        )

    assert refused.value.field == "subject"


# --- RequestOpened -> AnswerCharged ----------------------------------------


def test_life_of_a_pre_quoted_request_follows_the_policy_diagram() -> None:
    account = given_account(balance=100)
    request = given_request(account, Category.INVESTIGATION)

    request.request_pre_quote(None, actor=HELPDESK, at=AT)
    request.quote(20, 2, actor=SPECIALIST, at=AT)
    request.revise_price(25, "More logs to read", actor=SPECIALIST, at=AT)
    request.accept_quote(actor=HELPDESK, at=AT)
    charge(request, account)
    request.dispute("Did not help", actor=HELPDESK, at=AT)
    request.refund(account, 5, "Partly", actor=SPECIALIST, at=AT)
    request.dispute("Still not", actor=HELPDESK, at=AT)
    request.reject_dispute("It was answered", actor=SPECIALIST, at=AT)

    assert types_of(new_events(request)) == [
        R.PreQuoteRequested,
        R.RequestQuoted,
        R.PriceRevised,
        R.QuoteAccepted,
        R.AnswerCharged,
        R.ChargeDisputed,
        R.ChargeRefunded,
        R.ChargeDisputed,
        R.DisputeRejected,
    ]
    assert (request.charged, request.refunded, account.balance) == (25, 5, 80)


def test_charge_takes_the_category_price_from_the_balance_in_both_aggregates() -> None:
    account = given_account(balance=100)
    request = given_request(account, Category.INSTALLATION)

    charge(request, account)

    then_charged(request, account, price=20, balance_after=80)
    assert request.closed_at == AT


@pytest.mark.parametrize("category", [Category.SECURITY_FIX, Category.COMPATIBILITY_FIX])
def test_free_request_is_charged_zero_and_still_appears_in_the_audit_trail(
    category: Category,
) -> None:
    account = given_account(balance=0)
    request = given_request(account, category)

    charge(request, account)

    then_charged(request, account, price=0, balance_after=0)


def test_free_request_revised_for_third_party_code_waits_for_the_client_to_accept() -> None:
    account = given_account(balance=50)
    request = given_request(account, Category.SECURITY_FIX, third_party=True)
    request.revise_price(20, "Caused by a third-party add-on", actor=SPECIALIST, at=EARLIER)
    given(request)

    assert request.status is RequestStatus.AWAITING_ACCEPTANCE
    with pytest.raises(QuoteAwaitingAcceptanceError):
        charge(request, account)


def test_free_request_revised_for_third_party_code_is_charged_once_accepted() -> None:
    account = given_account(balance=50)
    request = given_request(account, Category.SECURITY_FIX, third_party=True)
    request.revise_price(20, "Caused by a third-party add-on", actor=SPECIALIST, at=EARLIER)
    request.accept_quote(actor=HELPDESK, at=EARLIER)
    given(request)

    charge(request, account)

    then_charged(request, account, price=20, balance_after=30)


# --- pre-quote -> quote -> accepted / declined -----------------------------


def test_pre_quote_holds_the_request_until_a_quote() -> None:
    request = given_request(given_account(), Category.INVESTIGATION)

    request.request_pre_quote("Price first, please", actor=HELPDESK, at=AT)

    [asked] = new_events(request)
    assert type(asked) is R.PreQuoteRequested
    assert (asked.note, asked.actor, asked.timestamp) == ("Price first, please", HELPDESK, AT)
    assert request.status is S.AWAITING_QUOTE


def test_quote_adds_a_separately_recorded_surcharge_for_pricing_time() -> None:
    request = given_request(given_account(), Category.INVESTIGATION)
    request.request_pre_quote(None, actor=HELPDESK, at=EARLIER)
    given(request)

    request.quote(30, 5, actor=SPECIALIST, at=AT)

    [quoted] = new_events(request)
    assert type(quoted) is R.RequestQuoted
    assert (quoted.work_price, quoted.surcharge, quoted.price) == (30, 5, 35)
    assert (quoted.actor, quoted.timestamp) == (SPECIALIST, AT)
    assert (request.status, request.price) == (S.QUOTED, 35)


def test_accepting_a_quote_agrees_its_price_and_the_charge_takes_it() -> None:
    account = given_account(balance=100)
    request = given_quoted(account, 30, 5)

    request.accept_quote(actor=HELPDESK, at=AT)

    [accepted] = new_events(request)
    assert type(accepted) is R.QuoteAccepted
    assert (accepted.price, accepted.actor) == (35, HELPDESK)
    assert (request.status, request.agreed_price) == (S.OPEN, 35)

    charge(request, account)
    then_charged(request, account, price=35, balance_after=65)


def test_declining_a_quote_closes_the_request_at_no_cost() -> None:
    account = given_account(balance=100)
    request = given_quoted(account)

    request.decline_quote("Too expensive", actor=HELPDESK, at=AT)

    [declined] = new_events(request)
    assert type(declined) is R.QuoteDeclined
    assert declined.reason == "Too expensive"
    assert (request.status, request.closed_at) == (S.DECLINED, AT)
    with pytest.raises(RequestClosedError) as refused:
        charge(request, account)
    assert refused.value.status == "declined"
    assert_nothing_emitted(request, account)
    assert account.balance == 100


def test_quote_is_refused_without_a_pre_quote_for_a_priced_category() -> None:
    request = given_request(given_account(), Category.INVESTIGATION)

    with pytest.raises(InvalidRequestStateError) as refused:
        request.quote(30, 0, actor=SPECIALIST, at=AT)

    assert (refused.value.status, refused.value.action) == ("open", "quote")
    assert_nothing_emitted(request)


@pytest.mark.parametrize("command", ["accept_quote", "decline_quote"])
def test_accepting_or_declining_is_refused_when_no_quote_awaits(command: str) -> None:
    request = given_request(given_account(), Category.INVESTIGATION)
    arguments = {} if command == "accept_quote" else {"reason": None}

    with pytest.raises(InvalidRequestStateError):
        getattr(request, command)(**arguments, actor=HELPDESK, at=AT)

    assert_nothing_emitted(request)


def test_pre_quote_is_refused_once_a_price_was_agreed() -> None:
    request = given_agreed(given_account())

    with pytest.raises(InvalidRequestStateError):
        request.request_pre_quote(None, actor=HELPDESK, at=AT)


def test_quote_may_not_carry_a_negative_surcharge() -> None:
    request = given_request(given_account(), Category.INVESTIGATION)
    request.request_pre_quote(None, actor=HELPDESK, at=EARLIER)
    given(request)

    with pytest.raises(InvalidInputError) as refused:
        request.quote(30, -1, actor=SPECIALIST, at=AT)

    assert refused.value.field == "surcharge"
    assert_nothing_emitted(request)


# --- complex modification --------------------------------------------------


def test_complex_modification_is_quoted_without_a_pre_quote() -> None:
    request = given_request(given_account(), Category.COMPLEX_MODIFICATION)

    request.quote(20, 0, actor=SPECIALIST, at=AT)

    [quoted] = new_events(request)
    assert (type(quoted), quoted.price) == (R.RequestQuoted, 20)
    assert request.status is S.QUOTED


def test_complex_modification_price_below_twenty_is_refused() -> None:
    request = given_request(given_account(), Category.COMPLEX_MODIFICATION)

    with pytest.raises(PriceBelowMinimumError) as refused:
        request.quote(19, 10, actor=SPECIALIST, at=AT)

    assert (refused.value.price, refused.value.minimum) == (19, 20)
    assert_nothing_emitted(request)


def test_complex_modification_cannot_be_charged_before_its_price_is_set() -> None:
    account = given_account(balance=100)
    request = given_request(account, Category.COMPLEX_MODIFICATION)

    with pytest.raises(QuotePendingError) as refused:
        charge(request, account)

    assert refused.value.request_id == request.id
    assert_nothing_emitted(request, account)


def test_complex_modification_is_charged_its_agreed_price() -> None:
    account = given_account(balance=100)
    request = given_agreed(account, price=45)

    charge(request, account)

    then_charged(request, account, price=45, balance_after=55)


# --- price revision --------------------------------------------------------


def test_price_revision_keeps_old_price_new_price_reason_who_and_when() -> None:
    request = given_request(given_account(), Category.CONFIGURATION)

    request.revise_price(20, "Needs a server change", actor=SPECIALIST, at=AT)

    [revised] = new_events(request)
    assert type(revised) is R.PriceRevised
    assert (revised.old_price, revised.new_price, revised.reason) == (
        10,
        20,
        "Needs a server change",
    )
    assert (revised.actor, revised.timestamp, revised.needs_acceptance) == (
        SPECIALIST,
        AT,
        False,
    )
    assert (request.price, request.revisions) == (20, 1)


@pytest.mark.parametrize("reason", ["", "  ", None])
def test_price_revision_is_refused_without_a_reason(reason: str | None) -> None:
    request = given_request(given_account(), Category.CONFIGURATION)

    with pytest.raises(InvalidInputError) as refused:
        request.revise_price(20, reason, actor=SPECIALIST, at=AT)  # type: ignore[arg-type]

    assert refused.value.field == "reason"
    assert_nothing_emitted(request)


def test_price_revision_to_the_same_price_is_refused() -> None:
    request = given_request(given_account(), Category.CONFIGURATION)

    with pytest.raises(InvalidInputError) as refused:
        request.revise_price(10, "No change", actor=SPECIALIST, at=AT)

    assert refused.value.field == "price"


def test_complex_modification_may_not_be_revised_below_twenty() -> None:
    request = given_agreed(given_account(), price=30)

    with pytest.raises(PriceBelowMinimumError):
        request.revise_price(15, "Smaller than thought", actor=SPECIALIST, at=AT)


def test_price_revision_is_refused_after_the_charge() -> None:
    account = given_account(balance=100)
    request = given_charged(account)

    with pytest.raises(AlreadyChargedError) as refused:
        request.revise_price(30, "Too late", actor=SPECIALIST, at=AT)

    assert refused.value.status == "charged"
    assert_nothing_emitted(request)


def test_raised_price_on_an_unagreed_request_needs_no_acceptance() -> None:
    account = given_account(balance=100)
    request = given_request(account, Category.CONFIGURATION)
    request.revise_price(20, "Larger than thought", actor=SPECIALIST, at=EARLIER)
    given(request)

    charge(request, account)

    then_charged(request, account, price=20, balance_after=80)


def test_lowered_agreed_price_never_needs_acceptance_and_is_charged() -> None:
    account = given_account(balance=100)
    request = given_agreed(account, price=40)

    request.revise_price(25, "Simpler than thought", actor=SPECIALIST, at=EARLIER)

    [revised] = new_events(request)
    assert revised.needs_acceptance is False
    assert request.status is S.OPEN
    charge(request, account)
    then_charged(request, account, price=25, balance_after=75)


def test_raised_agreed_price_is_refused_at_charge_until_the_client_accepts_again() -> None:
    account = given_account(balance=100)
    request = given_agreed(account, price=30)

    request.revise_price(50, "Needs a database migration", actor=SPECIALIST, at=EARLIER)

    [revised] = new_events(request)
    assert revised.needs_acceptance is True
    assert request.status is S.AWAITING_ACCEPTANCE
    with pytest.raises(QuoteAwaitingAcceptanceError) as refused:
        charge(request, account)
    assert (refused.value.request_id, refused.value.price) == (request.id, 50)
    assert_nothing_emitted(request, account)

    request.accept_quote(actor=HELPDESK, at=EARLIER)
    [accepted] = new_events(request)
    assert (type(accepted), accepted.price) == (R.QuoteAccepted, 50)
    charge(request, account)
    then_charged(request, account, price=50, balance_after=50)


def test_raised_accepted_quote_needs_acceptance_again() -> None:
    account = given_account(balance=100)
    request = given_quoted(account, 30, 0)
    request.accept_quote(actor=HELPDESK, at=EARLIER)
    given(request)

    request.revise_price(35, "More pages to fix", actor=SPECIALIST, at=EARLIER)

    assert new_events(request)[0].needs_acceptance is True
    with pytest.raises(QuoteAwaitingAcceptanceError):
        charge(request, account)


def test_lowering_a_raise_that_awaits_acceptance_back_below_the_agreement_frees_it() -> None:
    account = given_account(balance=100)
    request = given_agreed(account, price=30)
    request.revise_price(50, "Bigger", actor=SPECIALIST, at=EARLIER)
    given(request)

    request.revise_price(28, "Smaller after all", actor=SPECIALIST, at=EARLIER)

    assert new_events(request)[0].needs_acceptance is False
    assert request.status is S.OPEN
    charge(request, account)
    then_charged(request, account, price=28, balance_after=72)


def test_declining_a_raised_agreed_price_closes_the_request_at_no_cost() -> None:
    account = given_account(balance=100)
    request = given_agreed(account, price=30)
    request.revise_price(50, "Bigger", actor=SPECIALIST, at=EARLIER)
    given(request)

    request.decline_quote(None, actor=HELPDESK, at=AT)

    assert types_of(new_events(request)) == [R.QuoteDeclined]
    assert request.status is S.DECLINED


def test_revision_while_quoted_replaces_the_quoted_price() -> None:
    account = given_account(balance=100)
    request = given_quoted(account, 30, 5)

    request.revise_price(40, "Found more work while quoting", actor=SPECIALIST, at=EARLIER)

    [revised] = new_events(request)
    assert (revised.old_price, revised.new_price, revised.needs_acceptance) == (35, 40, False)
    assert (request.status, request.price) == (S.QUOTED, 40)
    with pytest.raises(QuoteAwaitingAcceptanceError) as refused:
        charge(request, account)
    assert refused.value.price == 40
    request.accept_quote(actor=HELPDESK, at=EARLIER)
    assert new_events(request)[0].price == 40
    charge(request, account)
    then_charged(request, account, price=40, balance_after=60)


def test_price_may_be_revised_while_a_pre_quote_is_awaited() -> None:
    request = given_request(given_account(), Category.INVESTIGATION)
    request.request_pre_quote(None, actor=HELPDESK, at=EARLIER)
    given(request)

    request.revise_price(25, "New details", actor=SPECIALIST, at=AT)

    assert types_of(new_events(request)) == [R.PriceRevised]
    assert request.status is S.AWAITING_QUOTE


def test_complex_modification_without_a_price_cannot_be_revised() -> None:
    request = given_request(given_account(), Category.COMPLEX_MODIFICATION)

    with pytest.raises(InvalidRequestStateError):
        request.revise_price(30, "Guess", actor=SPECIALIST, at=AT)


# --- charge refusals, and their order --------------------------------------


def test_charge_is_refused_when_balance_is_below_price() -> None:
    account = given_account(balance=19)
    request = given_request(account, Category.INSTALLATION)

    with pytest.raises(InsufficientCreditsError) as refused:
        charge(request, account)

    assert isinstance(refused.value, PaymentRequiredError)
    assert (refused.value.balance, refused.value.price) == (19, 20)
    assert refused.value.customer_id == account.customer_id
    assert_nothing_emitted(request, account)
    assert (account.balance, request.status) == (19, S.OPEN)


def test_second_charge_is_refused_as_already_charged() -> None:
    account = given_account(balance=100)
    request = given_charged(account)

    with pytest.raises(AlreadyChargedError) as refused:
        charge(request, account)

    assert (refused.value.request_id, refused.value.status) == (request.id, "charged")
    assert_nothing_emitted(request, account)
    assert account.balance == 80


def test_charge_is_refused_outside_working_hours_with_the_next_opening() -> None:
    account = given_account(balance=100)
    request = given_request(account)

    with pytest.raises(OutsideWorkingHoursError) as refused:
        charge(request, account, at=SATURDAY)

    assert refused.value.at == SATURDAY
    assert refused.value.next_opening == NEXT_MONDAY_OPENING
    assert_nothing_emitted(request, account)


def test_charge_is_refused_on_a_holiday() -> None:
    account = given_account(balance=100)
    request = given_request(account)
    calendar = SupportCalendar.parse("Mon-Fri 09:00-18:00 Europe/Samara", "2026-03-02")

    with pytest.raises(OutsideWorkingHoursError) as refused:
        request.charge(account, calendar, actor=SPECIALIST, at=AT)

    assert refused.value.next_opening == datetime(2026, 3, 3, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize("category", [Category.ADDON_UPDATE, Category.THEME_UPDATE])
def test_update_is_refused_without_an_active_subscription(category: Category) -> None:
    account = given_account(balance=500)
    request = given_request(account, category)

    with pytest.raises(SubscriptionRequiredError) as refused:
        charge(request, account)

    assert (refused.value.customer_id, refused.value.category, refused.value.at) == (
        account.customer_id,
        category.value,
        AT,
    )
    assert_nothing_emitted(request, account)


@pytest.mark.parametrize(
    ("category", "price"), [(Category.ADDON_UPDATE, 40), (Category.THEME_UPDATE, 100)]
)
def test_update_is_charged_while_a_subscription_is_active(category: Category, price: int) -> None:
    account = given_account(balance=500, subscription=MARCH)
    request = given_request(account, category)

    charge(request, account)

    then_charged(request, account, price=price, balance_after=500 - price)


@pytest.mark.parametrize(
    ("subscription", "allowed"),
    [
        ((date(2026, 3, 2), date(2026, 3, 3)), True),  # AT's day is valid_from
        ((date(2026, 2, 1), date(2026, 3, 2)), False),  # AT's day is valid_until
        ((date(2026, 2, 1), date(2026, 3, 3)), True),  # AT's day is the last day
    ],
)
def test_subscription_boundary_days_at_charge(
    subscription: tuple[date, date], allowed: bool
) -> None:
    account = given_account(balance=100, subscription=subscription)
    request = given_request(account, Category.ADDON_UPDATE)

    if allowed:
        charge(request, account)
        then_charged(request, account, price=40, balance_after=60)
    else:
        with pytest.raises(SubscriptionRequiredError):
            charge(request, account)
        assert_nothing_emitted(request, account)


# 21:30 UTC on Sunday 1 March is 01:30 on Monday 2 March in Samara (UTC+4).
LATE_SUNDAY_UTC = datetime(2026, 3, 1, 21, 30, tzinfo=UTC)
ROUND_THE_CLOCK_SAMARA = SupportCalendar.parse("Mon-Sun 00:00-24:00 Europe/Samara")


def test_subscription_day_is_the_calendar_day_in_its_time_zone_when_it_starts() -> None:
    account = given_account(balance=100, subscription=(date(2026, 3, 2), date(2026, 4, 1)))
    request = given_request(account, Category.ADDON_UPDATE)

    request.charge(account, ROUND_THE_CLOCK_SAMARA, actor=SPECIALIST, at=LATE_SUNDAY_UTC)

    assert types_of(new_events(request)) == [R.AnswerCharged]


def test_subscription_day_is_the_calendar_day_in_its_time_zone_when_it_ends() -> None:
    account = given_account(balance=100, subscription=(date(2026, 2, 1), date(2026, 3, 2)))
    request = given_request(account, Category.ADDON_UPDATE)

    with pytest.raises(SubscriptionRequiredError):
        request.charge(account, ROUND_THE_CLOCK_SAMARA, actor=SPECIALIST, at=LATE_SUNDAY_UTC)

    assert_nothing_emitted(request, account)


# Each case makes every later refusal apply too (closed on SATURDAY, no
# subscription then, no credits), so only the first in the policy's order shows.
MONDAY_ONLY = (date(2026, 3, 2), date(2026, 3, 3))


def test_charge_refusal_order_already_charged_comes_before_everything_else() -> None:
    account = given_account(balance=100, subscription=MONDAY_ONLY)
    request = given_request(account, Category.THEME_UPDATE)
    charge(request, account)
    given(request, account)
    assert account.balance == 0

    with pytest.raises(AlreadyChargedError):
        charge(request, account, at=SATURDAY)


@pytest.mark.parametrize(("command", "status"), [("refer", "referred"), ("cancel", "cancelled")])
def test_charge_refusal_order_referred_or_cancelled_comes_before_everything_else(
    command: str, status: str
) -> None:
    account = given_account(balance=0)
    request = given_request(account, Category.THEME_UPDATE)
    getattr(request, command)("Closed", actor=SPECIALIST, at=EARLIER)
    given(request)

    with pytest.raises(RequestClosedError) as refused:
        charge(request, account, at=SATURDAY)

    assert type(refused.value) is RequestClosedError
    assert refused.value.status == status


def test_charge_refusal_order_awaiting_acceptance_before_hours_subscription_credits() -> None:
    account = given_account(balance=0)
    request = given_request(account, Category.THEME_UPDATE)
    request.request_pre_quote(None, actor=HELPDESK, at=EARLIER)
    request.quote(100, 0, actor=SPECIALIST, at=EARLIER)

    with pytest.raises(QuoteAwaitingAcceptanceError):
        charge(request, account, at=SATURDAY)


def test_charge_refusal_order_quote_pending_before_hours_subscription_credits() -> None:
    account = given_account(balance=0)
    request = given_request(account, Category.THEME_UPDATE)
    request.request_pre_quote(None, actor=HELPDESK, at=EARLIER)

    with pytest.raises(QuotePendingError):
        charge(request, account, at=SATURDAY)


def test_charge_refusal_order_working_hours_before_subscription_and_credits() -> None:
    account = given_account(balance=0)
    request = given_request(account, Category.THEME_UPDATE)

    with pytest.raises(OutsideWorkingHoursError):
        charge(request, account, at=SATURDAY)


def test_charge_refusal_order_subscription_before_credits() -> None:
    account = given_account(balance=0)
    request = given_request(account, Category.THEME_UPDATE)

    with pytest.raises(SubscriptionRequiredError):
        charge(request, account)


def test_charge_refusal_order_insufficient_credits_is_the_last_reason() -> None:
    account = given_account(balance=99, subscription=MARCH)
    request = given_request(account, Category.THEME_UPDATE)

    with pytest.raises(InsufficientCreditsError) as refused:
        charge(request, account)

    assert (refused.value.balance, refused.value.price) == (99, 100)
    assert not isinstance(refused.value, ConflictError)


# --- referral and cancellation ---------------------------------------------


def test_referral_closes_the_request_without_a_charge() -> None:
    account = given_account(balance=100)
    request = given_request(account)

    request.refer("Needs custom development", actor=SPECIALIST, at=AT)

    [referred] = new_events(request)
    assert (type(referred), referred.reason, referred.actor) == (
        R.RequestReferred,
        "Needs custom development",
        SPECIALIST,
    )
    assert (request.status, request.closed_at, request.charged) == (S.REFERRED, AT, None)
    assert_nothing_emitted(account)


def test_referral_needs_a_reason() -> None:
    request = given_request(given_account())

    with pytest.raises(InvalidInputError) as refused:
        request.refer(" ", actor=SPECIALIST, at=AT)

    assert refused.value.field == "reason"


def test_cancelling_closes_the_request_without_a_charge() -> None:
    request = given_quoted(given_account(balance=100))

    request.cancel("Solved it myself", actor=HELPDESK, at=AT)

    [cancelled] = new_events(request)
    assert (type(cancelled), cancelled.reason) == (R.RequestCancelled, "Solved it myself")
    assert (request.status, request.closed_at) == (S.CANCELLED, AT)


@pytest.mark.parametrize("command", ["cancel", "refer"])
def test_a_charged_request_can_no_longer_be_cancelled_or_referred(command: str) -> None:
    request = given_charged(given_account(balance=100))

    with pytest.raises(InvalidRequestStateError):
        getattr(request, command)("Too late", actor=HELPDESK, at=AT)

    assert_nothing_emitted(request)


@pytest.mark.parametrize("command", ["cancel", "refer", "request_pre_quote"])
def test_a_closed_request_refuses_further_commands(command: str) -> None:
    request = given_request(given_account())
    request.cancel(None, actor=HELPDESK, at=EARLIER)
    given(request)

    with pytest.raises(RequestClosedError) as refused:
        getattr(request, command)("Again", actor=HELPDESK, at=AT)

    assert refused.value.status == "cancelled"


def test_every_status_says_why_it_refuses_a_command() -> None:
    assert set(REFUSALS) == set(RequestStatus)


@pytest.mark.parametrize("command", ["revise", "charge"])
def test_a_disputed_request_refuses_a_new_price_or_charge_as_already_charged(
    command: str,
) -> None:
    account = given_account(balance=100)
    request = given_disputed(account)

    with pytest.raises(AlreadyChargedError) as refused:
        if command == "charge":
            charge(request, account)
        else:
            request.revise_price(50, "more work", actor=SPECIALIST, at=AT)

    assert refused.value.status == "disputed"
    assert_nothing_emitted(request, account)


# --- disputes (Decision) ---------------------------------------------------


def test_dispute_of_a_charged_request_is_recorded_with_its_reason() -> None:
    request = given_charged(given_account(balance=100))

    request.dispute("The fix broke checkout", actor=HELPDESK, at=AT)

    [disputed] = new_events(request)
    assert (type(disputed), disputed.reason, disputed.actor) == (
        R.ChargeDisputed,
        "The fix broke checkout",
        HELPDESK,
    )
    assert request.status is S.DISPUTED


def test_dispute_needs_a_reason() -> None:
    request = given_charged(given_account(balance=100))

    with pytest.raises(InvalidInputError) as refused:
        request.dispute("", actor=HELPDESK, at=AT)

    assert refused.value.field == "reason"


def test_dispute_is_refused_before_the_charge_and_while_one_is_open() -> None:
    account = given_account(balance=100)
    with pytest.raises(InvalidRequestStateError):
        given_request(account).dispute("Not charged yet", actor=HELPDESK, at=AT)

    request = given_disputed(account)
    with pytest.raises(InvalidRequestStateError):
        request.dispute("Twice", actor=HELPDESK, at=AT)
    assert_nothing_emitted(request)


def test_partial_refund_returns_credits_in_both_aggregates_and_resolves_the_dispute() -> None:
    account = given_account(balance=100)
    request = given_disputed(account)  # charged 20, balance 80

    request.refund(account, 8, "Partly unsolved", actor=SPECIALIST, at=AT)

    [refunded] = new_events(request)
    [credited] = new_events(account)
    assert type(refunded) is R.ChargeRefunded
    assert type(credited) is CustomerAccount.CreditsRefunded
    assert refunded.amount == credited.amount == 8
    assert refunded.balance_after == credited.balance_after == 88
    assert (refunded.refunded_total, refunded.reason) == (8, "Partly unsolved")
    assert (credited.request_id, credited.reason, credited.actor) == (
        request.id,
        "Partly unsolved",
        SPECIALIST,
    )
    assert (request.status, request.refunded) == (S.REFUNDED, 8)


def test_total_refund_returns_the_whole_charge() -> None:
    account = given_account(balance=100)
    request = given_disputed(account)

    request.refund(account, 20, "Unsolved", actor=SPECIALIST, at=AT)

    assert new_events(request)[0].refunded_total == 20
    assert account.balance == 100


def test_refund_above_the_charge_is_refused_with_what_is_still_refundable() -> None:
    account = given_account(balance=100)
    request = given_disputed(account)

    with pytest.raises(RefundExceedsChargeError) as refused:
        request.refund(account, 21, "Too generous", actor=SPECIALIST, at=AT)

    assert (refused.value.credits, refused.value.refundable) == (21, 20)
    assert refused.value.request_id == request.id
    assert_nothing_emitted(request, account)
    assert account.balance == 80


def test_dispute_again_after_a_partial_refund_and_refunds_never_total_above_the_charge() -> None:
    account = given_account(balance=100)
    request = given_disputed(account)
    request.refund(account, 12, "Half done", actor=SPECIALIST, at=EARLIER)
    given(request, account)

    request.dispute("Still broken", actor=HELPDESK, at=AT)
    assert types_of(new_events(request)) == [R.ChargeDisputed]
    with pytest.raises(RefundExceedsChargeError) as refused:
        request.refund(account, 9, "The rest and more", actor=SPECIALIST, at=AT)
    assert refused.value.refundable == 8

    request.refund(account, 8, "The rest", actor=SPECIALIST, at=AT)
    assert new_events(request)[0].refunded_total == 20
    assert account.balance == 100

    request.dispute("Once more", actor=HELPDESK, at=AT)
    with pytest.raises(RefundExceedsChargeError) as refused:
        request.refund(account, 1, "Nothing left", actor=SPECIALIST, at=AT)
    assert refused.value.refundable == 0


@pytest.mark.parametrize("credits", [0, -5])
def test_refund_must_be_a_positive_number_of_credits(credits: int) -> None:
    account = given_account(balance=100)
    request = given_disputed(account)

    with pytest.raises(InvalidInputError) as refused:
        request.refund(account, credits, "Odd", actor=SPECIALIST, at=AT)

    assert refused.value.field == "credits"
    assert_nothing_emitted(request, account)


def test_refund_needs_an_open_dispute() -> None:
    account = given_account(balance=100)
    request = given_charged(account)

    with pytest.raises(InvalidRequestStateError):
        request.refund(account, 5, "No dispute", actor=SPECIALIST, at=AT)

    assert_nothing_emitted(request, account)


def test_rejected_dispute_keeps_the_charge() -> None:
    account = given_account(balance=100)
    request = given_disputed(account)

    request.reject_dispute("The answer was correct", actor=SPECIALIST, at=AT)

    [rejected] = new_events(request)
    assert (type(rejected), rejected.reason) == (R.DisputeRejected, "The answer was correct")
    assert request.status is S.DISPUTE_REJECTED
    with pytest.raises(InvalidRequestStateError):
        request.refund(account, 5, "After rejection", actor=SPECIALIST, at=AT)
    assert account.balance == 80


def test_rejecting_a_dispute_needs_an_open_dispute_and_a_reason() -> None:
    account = given_account(balance=100)
    with pytest.raises(InvalidRequestStateError):
        given_charged(account).reject_dispute("No dispute", actor=SPECIALIST, at=AT)

    with pytest.raises(InvalidInputError) as refused:
        given_disputed(account).reject_dispute(" ", actor=SPECIALIST, at=AT)
    assert refused.value.field == "reason"


def test_a_free_request_can_be_disputed_but_nothing_can_be_refunded() -> None:
    account = given_account(balance=10)
    request = given_charged(account, Category.SECURITY_FIX)
    request.dispute("Still insecure", actor=HELPDESK, at=AT)

    with pytest.raises(RefundExceedsChargeError) as refused:
        request.refund(account, 1, "Sorry", actor=SPECIALIST, at=AT)

    assert refused.value.refundable == 0
