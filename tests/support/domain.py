"""Given-when-then helpers for the aggregates, without a database.

"Given" builds aggregates through their own command methods at fixed
instants and then forgets their pending events; "then" reads the events the
command under test emitted (``collect_events``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

from eventsourcing.domain import Aggregate

from ledger.aggregates import CustomerAccount, SupportRequest
from ledger.policy import DEFAULT_CALENDAR, Category
from ledger.values import Actor, Role

HELPDESK = Actor(Role.HELPDESK, "desk-1")
SPECIALIST = Actor(Role.SPECIALIST, "ana")
FINANCE = Actor(Role.FINANCE, "finance-1")
ADMIN = Actor(Role.ADMIN, "root")

#: When the "given" events happened.
EARLIER = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
#: When the command under test runs: Monday 2026-03-02, 14:00 in Samara (open).
AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
#: Saturday 2026-03-07, 14:00 in Samara: support is closed.
SATURDAY = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
#: Monday 2026-03-09 09:00 in Samara (UTC+4), the opening after SATURDAY.
NEXT_MONDAY_OPENING = datetime(2026, 3, 9, 5, 0, tzinfo=UTC)
CALENDAR = DEFAULT_CALENDAR


def given(*aggregates: Aggregate) -> None:
    """Forget the pending events: what happened so far is the "given"."""
    for aggregate in aggregates:
        aggregate.collect_events()


def new_events(aggregate: Aggregate) -> list[Any]:
    """The events the "when" emitted (and only those)."""
    return list(aggregate.collect_events())


def types_of(events: list[Any]) -> list[type]:
    return [type(event) for event in events]


def given_account(
    balance: int = 0, *, subscription: tuple[date, date] | None = None
) -> CustomerAccount:
    """An open account holding ``balance`` credits from one paid invoice."""
    account = CustomerAccount.open(
        f"cust-{uuid4().hex[:12]}", "Acme Store", actor=HELPDESK, at=EARLIER
    )
    if balance:
        account.purchase(
            uuid4(), balance, Decimal(balance), price_list_version=None, actor=FINANCE, at=EARLIER
        )
    if subscription is not None:
        account.record_subscription(*subscription, actor=FINANCE, at=EARLIER)
    given(account)
    return account


def given_request(
    account: CustomerAccount,
    category: Category = Category.INSTALLATION,
    **options: Any,
) -> SupportRequest:
    """A request opened through the helpdesk."""
    request = SupportRequest.open(
        account, category, "Please help", "helpdesk", actor=HELPDESK, at=EARLIER, **options
    )
    given(request)
    return request


def given_charged(
    account: CustomerAccount, category: Category = Category.INSTALLATION
) -> SupportRequest:
    """A request whose answer was charged at its category's price."""
    request = given_request(account, category)
    request.charge(account, CALENDAR, actor=SPECIALIST, at=AT)
    given(request, account)
    return request


def given_disputed(account: CustomerAccount) -> SupportRequest:
    request = given_charged(account)
    request.dispute("The answer did not help", actor=HELPDESK, at=AT)
    given(request)
    return request
