"""Random sequences of valid and invalid commands keep the ledger's
invariants (POLICY.md, "Credits and money", "What every credit movement
records"), on SQLite and, in a shorter run, on PostgreSQL. After every step:

- balance == purchased + adjusted - charged + refunded, as ``get_account``
  reports it and as a model of the successful commands predicts;
- the balance is never below zero and equals the sum of the movements;
- a refused command (any ``LedgerError``) stored nothing at all;
- with starts (holds), releases and time passing (lapses):
  ``available == balance - live holds >= 0``, the live holds replayed from
  the account's own reservations and releases (issue 15).

It runs with the batcher (``LEDGER_BATCH_COMMANDS``: each step a batch of
one) and without it; commands sharing batches are in ``test_batch.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from ledger.aggregates import CustomerAccount
from ledger.application import Ledger
from ledger.errors import InsufficientCreditsError, LedgerError
from ledger.policy import Category
from tests.application.conftest import BOTH_WAYS
from tests.support.domain import FINANCE, HELPDESK, SPECIALIST
from tests.support.ledger import Clock, account_events, movement_sum, new_customer_id

CATEGORIES = st.sampled_from([c.value for c in Category])
CREDITS = st.integers(min_value=-60, max_value=60)
PRICES = st.integers(min_value=0, max_value=120)
REASONS = st.sampled_from(["New details", "Goodwill", " ", ""])


def ledger_machine(ledger: Ledger, clock: Clock) -> type[RuleBasedStateMachine]:
    """A state machine driving one new customer of ``ledger`` per example."""

    class LedgerMachine(RuleBasedStateMachine):
        requests = Bundle("requests")
        invoices = Bundle("invoices")

        def __init__(self) -> None:
            super().__init__()
            self.customer_id = new_customer_id()
            self.purchased = self.adjusted = self.charged = self.refunded = 0
            self.refusals = 0

        def attempt(self, command: Callable[[], Any], *, may_change_nothing: bool = False) -> Any:
            """Run a command; a refusal must leave the store untouched."""
            before = ledger.recorder.max_notification_id()
            available = ledger.get_account(self.customer_id).available
            try:
                result = command()
            except LedgerError as error:
                assert ledger.recorder.max_notification_id() == before, (
                    f"{type(error).__name__} stored events"
                )
                self.refusals += 1
                if isinstance(error, InsufficientCreditsError):
                    assert error.balance == self.balance()
                    assert error.available == available < error.price
                return None
            if may_change_nothing and result.position == before:
                return result
            assert result.position == ledger.recorder.max_notification_id() > (before or 0)
            return result

        def balance(self) -> int:
            return self.purchased + self.adjusted - self.charged + self.refunded

        @initialize(target=requests, credits=st.sampled_from([0, 45, 160, 320]))
        def open_account(self, credits: int) -> UUID:
            ledger.open_account(self.customer_id, "Hypothesis Store", actor=HELPDESK)
            if credits:
                invoice = ledger.issue_invoice(
                    self.customer_id, credits=credits, amount_usd="99.00", actor=FINANCE
                )
                ledger.pay_invoice(invoice.invoice_id, "bank", actor=FINANCE)
                self.purchased += credits
            return ledger.open_request(
                self.customer_id, "installation", "helpdesk", "First", actor=HELPDESK
            ).request_id

        # --- money in ---------------------------------------------------

        @rule(target=invoices, credits=st.sampled_from([80, 160, 320, 7, 45]))
        def issue_invoice(self, credits: int) -> UUID:
            issued = ledger.issue_invoice(
                self.customer_id, credits=credits, amount_usd=f"{credits}.50", actor=FINANCE
            )
            return issued.invoice_id

        @rule(invoice_id=invoices)
        def pay_invoice(self, invoice_id: UUID) -> None:
            paid = self.attempt(lambda: ledger.pay_invoice(invoice_id, "bank", actor=FINANCE))
            if paid is not None:
                self.purchased += ledger.get_invoice(invoice_id).credits

        @rule(invoice_id=invoices)
        def void_invoice(self, invoice_id: UUID) -> None:
            self.attempt(lambda: ledger.void_invoice(invoice_id, "Mistake", actor=FINANCE))

        @rule(credits=CREDITS, reason=REASONS)
        def adjust(self, credits: int, reason: str) -> None:
            available = ledger.get_account(self.customer_id).available
            adjusted = self.attempt(
                lambda: ledger.adjust_balance(self.customer_id, credits, reason, actor=FINANCE)
            )
            if adjusted is not None:
                self.adjusted += credits
            else:
                assert credits == 0 or not reason.strip() or available + credits < 0

        @rule(days=st.integers(min_value=-3, max_value=3))
        def record_subscription(self, days: int) -> None:
            today = ledger.clock().date()
            start = today + timedelta(days=days)
            self.attempt(
                lambda: ledger.record_subscription(
                    self.customer_id, start, start + timedelta(days=2), actor=FINANCE
                )
            )

        # --- requests ---------------------------------------------------

        @rule(
            target=requests,
            category=CATEGORIES,
            channel=st.sampled_from(["helpdesk", "helpdesk", "phone"]),
        )
        def open_request(self, category: str, channel: str) -> UUID | None:
            versions = (
                {"from_version": "4.4.1", "to_version": "4.4.5"}
                if category == "store_update"
                else {}
            )
            opened = self.attempt(
                lambda: ledger.open_request(
                    self.customer_id, category, channel, "Random", actor=HELPDESK, **versions
                )
            )
            return None if opened is None else opened.request_id

        @rule(target=requests, category=CATEGORIES)
        def open_and_charge(self, category: str) -> UUID | None:
            """The common path: answered at once (so disputes and refunds have
            charged requests to work on)."""
            request_id: UUID | None = self.open_request(category, "helpdesk")
            self.charge(request_id)
            return request_id

        def on_request(self, request_id: UUID | None, command: Callable[[UUID], Any]) -> Any:
            if request_id is None:  # its opening was refused
                return None
            return self.attempt(lambda: command(request_id))

        @rule(request_id=requests)
        def request_pre_quote(self, request_id: UUID | None) -> None:
            self.on_request(request_id, lambda r: ledger.request_pre_quote(r, actor=HELPDESK))

        @rule(request_id=requests, price=PRICES, surcharge=st.integers(0, 10))
        def quote(self, request_id: UUID | None, price: int, surcharge: int) -> None:
            self.on_request(
                request_id, lambda r: ledger.quote(r, price, surcharge, actor=SPECIALIST)
            )

        @rule(request_id=requests, price=PRICES, reason=REASONS)
        def revise_price(self, request_id: UUID | None, price: int, reason: str) -> None:
            self.on_request(
                request_id, lambda r: ledger.revise_price(r, price, reason, actor=SPECIALIST)
            )

        @rule(request_id=requests)
        def accept_quote(self, request_id: UUID | None) -> None:
            self.on_request(request_id, lambda r: ledger.accept_quote(r, actor=HELPDESK))

        @rule(request_id=requests)
        def decline_quote(self, request_id: UUID | None) -> None:
            self.on_request(request_id, lambda r: ledger.decline_quote(r, actor=HELPDESK))

        @rule(request_id=requests)
        def charge(self, request_id: UUID | None) -> None:
            charged = self.on_request(request_id, lambda r: ledger.charge(r, actor=SPECIALIST))
            if charged is not None:
                self.charged += charged.charged
                assert charged.balance == self.balance()

        @rule(request_id=requests)
        def start(self, request_id: UUID | None) -> None:
            if request_id is not None:
                self.attempt(
                    lambda: ledger.start_work(request_id, actor=SPECIALIST),
                    may_change_nothing=True,
                )

        @rule(hours=st.sampled_from([1, 6, 17]))
        def pass_time(self, hours: int) -> None:
            """Holds lapse after 16 hours (the calendar is 24/7)."""
            clock.advance(hours=hours)

        @rule(request_id=requests)
        def dispute(self, request_id: UUID | None) -> None:
            self.on_request(request_id, lambda r: ledger.dispute(r, "Unhappy", actor=HELPDESK))

        @rule(request_id=requests, credits=st.integers(min_value=-1, max_value=50))
        def refund(self, request_id: UUID | None, credits: int) -> None:
            refunded = self.on_request(
                request_id, lambda r: ledger.refund(r, credits, "Upheld", actor=SPECIALIST)
            )
            if refunded is not None:
                self.refunded += credits
                assert refunded.balance == self.balance()

        @rule(request_id=requests)
        def reject_dispute(self, request_id: UUID | None) -> None:
            self.on_request(
                request_id, lambda r: ledger.reject_dispute(r, "Answered", actor=SPECIALIST)
            )

        @rule(request_id=requests)
        def cancel(self, request_id: UUID | None) -> None:
            self.on_request(request_id, lambda r: ledger.cancel(r, actor=HELPDESK))

        @rule(request_id=requests)
        def refer(self, request_id: UUID | None) -> None:
            self.on_request(request_id, lambda r: ledger.refer(r, "Custom work", actor=SPECIALIST))

        # --- invariants ---------------------------------------------------

        @invariant()
        def balance_is_the_sum_of_its_movements_and_never_negative(self) -> None:
            account = ledger.get_account(self.customer_id)
            assert account.balance == (
                account.purchased + account.adjusted - account.charged + account.refunded
            )
            assert (account.purchased, account.adjusted, account.charged, account.refunded) == (
                self.purchased,
                self.adjusted,
                self.charged,
                self.refunded,
            )
            assert account.balance >= 0
            assert account.balance == movement_sum(ledger, self.customer_id)

        @invariant()
        def available_is_the_balance_less_the_live_holds(self) -> None:
            held: dict[UUID, CustomerAccount.CreditsReserved] = {}
            for event in account_events(ledger, self.customer_id):
                if isinstance(event, CustomerAccount.CreditsReserved):
                    assert event.request_id not in held, "a request held twice"
                    held[event.request_id] = event
                elif isinstance(event, CustomerAccount.CreditsReleased):
                    assert held.pop(event.request_id).amount == event.amount
            now = ledger.clock()
            live = sum(e.amount for e in held.values() if now < e.lapses_at)
            account = ledger.get_account(self.customer_id)
            assert account.available == account.balance - live >= 0

        @invariant()
        def every_request_refunds_at_most_its_charge(self) -> None:
            assert 0 <= self.refunded <= self.charged

    return LedgerMachine


pytestmark = BOTH_WAYS

PROPERTY_SETTINGS = {
    "deadline": None,
    "stateful_step_count": 25,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
    "database": None,
}


def test_random_command_sequences_keep_the_ledger_invariants(
    ledger: Ledger, database_url: str, clock: Clock
) -> None:
    examples = 30 if database_url.startswith("sqlite") else 12
    run_state_machine_as_test(
        ledger_machine(ledger, clock), settings=settings(max_examples=examples, **PROPERTY_SETTINGS)
    )
