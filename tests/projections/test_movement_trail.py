"""The movements audit trail with holds and price list versions (issues 14
and 15), on both stores: a hold's reservation and release are entries of zero
credits with the credits held, a movement says which price list priced it,
the trail still adds up to the balance, a rebuild writes it again the same,
and the event-store export (``ledger export-audit``) reads exactly alike."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ledger.application import Ledger
from ledger.bootstrap import Services
from ledger.projections import MovementRow
from ledger.projections.reconcile import reconcile
from tests.projections.conftest import dump
from tests.support.domain import FINANCE, HELPDESK, SPECIALIST
from tests.support.ledger import funded_customer, open_request


def _trail(services: Services, customer_id: str) -> list[MovementRow]:
    services.projections.catch_up()
    return services.queries.movements(customer_id=customer_id, limit=100)


def _work(ledger: Ledger) -> str:
    """Buy 50; start a request (20 held) and cancel it; start another and
    charge it; a goodwill credit of 5; buy a custom package of 7 credits."""
    customer_id = funded_customer(ledger, 0)
    invoice = ledger.issue_invoice(customer_id, package=80, actor=FINANCE)
    ledger.pay_invoice(invoice.invoice_id, "bank-1", actor=FINANCE)
    cancelled = open_request(ledger, customer_id, "installation")
    ledger.start_work(cancelled, actor=SPECIALIST)
    ledger.cancel(cancelled, "The customer fixed it", actor=HELPDESK)
    charged = open_request(ledger, customer_id, "installation")
    ledger.start_work(charged, actor=SPECIALIST)
    ledger.charge(charged, actor=SPECIALIST)
    ledger.adjust_balance(customer_id, 5, "goodwill", actor=FINANCE)
    custom = ledger.issue_invoice(customer_id, credits=7, amount_usd="7.70", actor=FINANCE)
    ledger.pay_invoice(custom.invoice_id, "bank-2", actor=FINANCE)
    return customer_id


def _rows(trail: list[MovementRow]) -> list[tuple[Any, ...]]:
    return [(m.kind, m.amount, m.balance_after, m.held, m.price_list_version) for m in trail]


def test_holds_are_zero_credit_entries_with_the_credits_held(
    ledger: Ledger, services: Services
) -> None:
    customer_id = _work(ledger)

    trail = _trail(services, customer_id)

    assert _rows(trail) == [
        ("purchase", 80, 80, None, 1),
        ("reservation", 0, 80, 20, None),
        ("release", 0, 80, 20, None),
        ("reservation", 0, 80, 20, None),
        ("release", 0, 80, 20, None),
        ("charge", -20, 60, None, 1),
        ("adjustment", 5, 65, None, None),
        ("purchase", 7, 72, None, None),
    ]
    assert [m.reason for m in trail[2:5:2]] == ["cancelled", "charged"]
    assert trail[1].reason is not None and trail[1].reason.startswith("lapses at ")
    assert sum(m.amount for m in trail) == trail[-1].balance_after == 72
    assert reconcile(ledger, services.projections) == []
    # Holds move no money: the monthly chart has money kinds only.
    assert {kind for _, kind, _ in services.queries.monthly_movements()} == {
        "purchase",
        "charge",
        "adjustment",
    }


def test_a_rebuild_writes_the_same_trail(ledger: Ledger, services: Services) -> None:
    _work(ledger)
    services.projections.catch_up()
    before = dump(services.projections)

    services.projections.rebuild(["movements"])

    assert dump(services.projections) == before


def test_the_event_store_export_reads_like_the_read_model(
    ledger: Ledger, services: Services
) -> None:
    customer_id = _work(ledger)
    trail = _trail(services, customer_id)

    exported = [row for row in services.audit.movements() if row["customer_id"] == customer_id]

    assert [
        (
            row["position"],
            row["kind"],
            row["amount"],
            row["balance_after"],
            row["held"],
            row["price_list_version"],
            row["reason"],
        )
        for row in exported
    ] == [
        (
            m.position,
            m.kind,
            m.amount,
            m.balance_after,
            "" if m.held is None else m.held,
            "" if m.price_list_version is None else m.price_list_version,
            m.reason or "",
        )
        for m in trail
    ]


def test_holds_leave_the_summary_unchanged(ledger: Ledger, services: Services) -> None:
    customer_id = funded_customer(ledger, 0)
    invoice = ledger.issue_invoice(customer_id, package=80, actor=FINANCE)
    ledger.pay_invoice(invoice.invoice_id, "bank-1", actor=FINANCE)
    services.projections.catch_up()
    before = services.queries.summary()
    request_id = open_request(ledger, customer_id, "installation")
    ledger.start_work(request_id, actor=SPECIALIST)
    ledger.cancel(request_id, "The customer fixed it", actor=HELPDESK)
    services.projections.catch_up()

    after = services.queries.summary()
    assert after.position > before.position  # the summary saw the hold events
    assert replace(after, position=before.position) == before
