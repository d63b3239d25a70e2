"""Helpers for tests that drive the ``Ledger`` application on a real store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from ledger.aggregates import CustomerAccount, account_id_for
from ledger.application import Ledger
from tests.support.domain import FINANCE, HELPDESK, SPECIALIST

#: Monday 2026-03-02, 14:00 in Samara: inside the default working hours.
MONDAY_AFTERNOON = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

MOVEMENTS = (
    CustomerAccount.CreditsPurchased,
    CustomerAccount.BalanceAdjusted,
    CustomerAccount.CreditsCharged,
    CustomerAccount.CreditsRefunded,
)


class Clock:
    """A clock the test moves by hand; the ledger calls it for every command."""

    def __init__(self, now: datetime = MONDAY_AFTERNOON) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def new_customer_id() -> str:
    return f"cust-{uuid4().hex}"


def funded_customer(ledger: Ledger, credits: int = 0) -> str:
    """A new customer whose paid invoice bought ``credits``."""
    customer_id = new_customer_id()
    ledger.open_account(customer_id, "Acme Store", actor=HELPDESK)
    if credits:
        invoice = ledger.issue_invoice(
            customer_id, credits=credits, amount_usd=f"{credits}.00", actor=FINANCE
        )
        ledger.pay_invoice(invoice.invoice_id, f"bank-{uuid4().hex[:8]}", actor=FINANCE)
    return customer_id


def open_request(
    ledger: Ledger, customer_id: str, category: str = "installation", **options: Any
) -> UUID:
    return ledger.open_request(
        customer_id, category, "helpdesk", "Please help", actor=HELPDESK, **options
    ).request_id


def account_events(ledger: Ledger, customer_id: str) -> list[Any]:
    return list(ledger.events.get(account_id_for(customer_id)))


def movement_sum(ledger: Ledger, customer_id: str) -> int:
    """The sum of the signed amounts of every credit movement of the account."""
    return sum(e.amount for e in account_events(ledger, customer_id) if isinstance(e, MOVEMENTS))


def new_event_types(ledger: Ledger, after: int) -> list[str]:
    """The names of the events stored after position ``after``, in order."""
    notifications = ledger.recorder.select_notifications(start=after + 1, limit=100)
    return [n.topic.rsplit(".", 1)[-1] for n in notifications]


@contextmanager
def refused(ledger: Ledger, error: type[Exception]) -> Iterator[pytest.ExceptionInfo[Any]]:
    """The command inside raises ``error`` and stores nothing at all."""
    before = ledger.recorder.max_notification_id()
    with pytest.raises(error) as info:
        yield info
    assert ledger.recorder.max_notification_id() == before, "a refused command stored events"


def forge_uncovered_charge(ledger: Ledger, customer_id: str, credits: int) -> int:
    """Append what the ledger never writes, as someone with access to the
    store could: a charge of ``credits`` on an account that bought none (its
    own arithmetic adds up, but no lot covers it: the FIFO read model cannot
    apply it). The position it was stored at."""
    account = ledger.repository.get(account_id_for(customer_id))
    charge = CustomerAccount.CreditsCharged(  # type: ignore[call-arg]
        originator_id=account.id,
        originator_version=account.version + 1,
        timestamp=datetime.now(UTC),
        request_id=uuid4(),
        amount=-credits,
        balance_after=account.balance - credits,
        price_list_version=1,
        actor=SPECIALIST,
    )
    [recording] = ledger.events.put([charge])
    return int(recording.notification.id)
