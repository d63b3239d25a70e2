"""Four-eyes adjustments through the ledger on both stores (issue 15): one
larger than the limit is proposed, changes nothing, and is applied only when
another finance key approves it (the balance rule checked then), or rejected
with a reason; the proposer's own key is refused."""

from __future__ import annotations

from uuid import uuid4

import pytest

from ledger.aggregates import Adjustment, CustomerAccount
from ledger.application import Ledger
from ledger.errors import (
    AdjustmentBelowZeroError,
    AdjustmentDecidedError,
    ForbiddenError,
    FourEyesError,
    InvalidInputError,
    PermissionDeniedError,
    UnknownAdjustmentError,
)
from ledger.values import Actor, Role
from tests.support.domain import FINANCE, SPECIALIST
from tests.support.ledger import account_events, funded_customer, new_event_types, refused

SECOND_FINANCE = Actor(Role.FINANCE, "finance-2")


def test_an_adjustment_within_the_limit_is_applied_at_once(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 0)

    result = ledger.adjust_balance(customer_id, 100, "Goodwill", actor=FINANCE)

    assert (result.status, result.balance, result.adjustment_id) == ("applied", 100, None)


def test_a_larger_adjustment_is_proposed_and_changes_nothing(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 0)

    proposed = ledger.adjust_balance(customer_id, 101, "Migration", actor=FINANCE)

    assert proposed.status == "proposed" and proposed.adjustment_id is not None
    assert ledger.get_account(customer_id).balance == 0
    assert new_event_types(ledger, proposed.position - 1) == ["AdjustmentProposed"]


def test_another_finance_key_approves_it_in_one_append_with_the_balance(
    ledger: Ledger,
) -> None:
    customer_id = funded_customer(ledger, 0)
    proposed = ledger.adjust_balance(customer_id, 500, "Migration", actor=FINANCE)
    assert proposed.adjustment_id is not None

    approved = ledger.approve_adjustment(proposed.adjustment_id, actor=SECOND_FINANCE)

    assert (approved.status, approved.balance) == ("approved", 500)
    assert new_event_types(ledger, proposed.position) == ["AdjustmentApproved", "BalanceAdjusted"]
    [adjusted] = [
        e
        for e in account_events(ledger, customer_id)
        if isinstance(e, CustomerAccount.BalanceAdjusted)
    ]
    assert (adjusted.amount, adjusted.reason, adjusted.actor) == (500, "Migration", SECOND_FINANCE)
    with refused(ledger, AdjustmentDecidedError):
        ledger.approve_adjustment(proposed.adjustment_id, actor=SECOND_FINANCE)


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_the_proposers_own_key_is_refused_by_the_four_eyes_rule(
    ledger: Ledger, decision: str
) -> None:
    customer_id = funded_customer(ledger, 0)
    proposed = ledger.adjust_balance(customer_id, 200, "Migration", actor=FINANCE)
    assert proposed.adjustment_id is not None

    with refused(ledger, FourEyesError) as error:
        if decision == "approve":
            ledger.approve_adjustment(proposed.adjustment_id, actor=FINANCE)
        else:
            ledger.reject_adjustment(proposed.adjustment_id, "No", actor=FINANCE)

    assert isinstance(error.value, ForbiddenError)
    assert "four-eyes" in error.value.detail


def test_a_rejection_needs_a_reason_and_leaves_the_balance(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 0)
    proposed = ledger.adjust_balance(customer_id, 200, "Migration", actor=FINANCE)
    assert proposed.adjustment_id is not None

    with refused(ledger, InvalidInputError) as error:
        ledger.reject_adjustment(proposed.adjustment_id, " ", actor=SECOND_FINANCE)
    assert error.value.field == "reason"
    rejected = ledger.reject_adjustment(
        proposed.adjustment_id, "Wrong account", actor=SECOND_FINANCE
    )

    assert (rejected.status, rejected.balance) == ("rejected", 0)
    with refused(ledger, AdjustmentDecidedError):
        ledger.approve_adjustment(proposed.adjustment_id, actor=SECOND_FINANCE)


def test_the_balance_rule_is_checked_at_approval(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 320)
    proposed = ledger.adjust_balance(customer_id, -300, "Refund by bank", actor=FINANCE)
    assert proposed.adjustment_id is not None
    ledger.adjust_balance(customer_id, -50, "Correction", actor=FINANCE)

    with refused(ledger, AdjustmentBelowZeroError):
        ledger.approve_adjustment(proposed.adjustment_id, actor=SECOND_FINANCE)


def test_only_finance_decides_and_unknown_adjustments_are_404(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 0)
    proposed = ledger.adjust_balance(customer_id, 200, "Migration", actor=FINANCE)
    assert proposed.adjustment_id is not None

    with refused(ledger, PermissionDeniedError):
        ledger.approve_adjustment(proposed.adjustment_id, actor=SPECIALIST)
    with refused(ledger, UnknownAdjustmentError):
        ledger.approve_adjustment(uuid4(), actor=SECOND_FINANCE)
    assert isinstance(ledger._adjustment(proposed.adjustment_id), Adjustment)
