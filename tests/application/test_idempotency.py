"""Idempotent commands (API.md, "Idempotency"), on SQLite and PostgreSQL: a
retry with the same key and arguments answers the first result, at the first
position, and stores nothing; the same key with other arguments is refused;
keys are scoped per actor; two racing retries write one receipt. Each test
runs with the batcher (``LEDGER_BATCH_COMMANDS``) and without it; two
commands with one key in one batch are in ``test_batch.py``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest

from ledger.aggregates import CommandReceipt, receipt_id_for
from ledger.application import Ledger
from ledger.errors import IdempotencyKeyReusedError, InsufficientCreditsError, InvalidInputError
from ledger.values import Actor, Role
from tests.application.conftest import BOTH_WAYS
from tests.support.domain import FINANCE, HELPDESK, SPECIALIST
from tests.support.ledger import (
    funded_customer,
    movement_sum,
    new_customer_id,
    new_event_types,
    open_request,
    refused,
)

Command = Callable[[str], Any]

pytestmark = BOTH_WAYS


def new_key() -> str:
    return f"key-{uuid4().hex}"


# Each case prepares what the command needs and returns it twice: with the
# arguments of the first call, and with other arguments.


def open_account_case(ledger: Ledger) -> tuple[Command, Command]:
    customer_id = new_customer_id()
    return (
        lambda key: ledger.open_account(customer_id, "Acme", actor=HELPDESK, idempotency_key=key),
        lambda key: ledger.open_account(customer_id, "Other", actor=HELPDESK, idempotency_key=key),
    )


def issue_invoice_case(ledger: Ledger) -> tuple[Command, Command]:
    customer_id = funded_customer(ledger)
    return (
        lambda key: ledger.issue_invoice(
            customer_id, package=80, actor=FINANCE, idempotency_key=key
        ),
        lambda key: ledger.issue_invoice(
            customer_id, package=160, actor=FINANCE, idempotency_key=key
        ),
    )


def pay_invoice_case(ledger: Ledger) -> tuple[Command, Command]:
    customer_id = funded_customer(ledger)
    invoice_id = ledger.issue_invoice(customer_id, package=80, actor=FINANCE).invoice_id
    return (
        lambda key: ledger.pay_invoice(invoice_id, "bank-1", actor=FINANCE, idempotency_key=key),
        lambda key: ledger.pay_invoice(invoice_id, "bank-2", actor=FINANCE, idempotency_key=key),
    )


def adjust_case(ledger: Ledger) -> tuple[Command, Command]:
    customer_id = funded_customer(ledger, 80)
    return (
        lambda key: ledger.adjust_balance(
            customer_id, 5, "Gift", actor=FINANCE, idempotency_key=key
        ),
        lambda key: ledger.adjust_balance(
            customer_id, 6, "Gift", actor=FINANCE, idempotency_key=key
        ),
    )


def open_request_case(ledger: Ledger) -> tuple[Command, Command]:
    customer_id = funded_customer(ledger)

    def open_with(subject: str) -> Command:
        return lambda key: ledger.open_request(
            customer_id, "installation", "helpdesk", subject, actor=HELPDESK, idempotency_key=key
        )

    return open_with("Theme"), open_with("Add-on")


def charge_case(ledger: Ledger) -> tuple[Command, Command]:
    customer_id = funded_customer(ledger, 100)
    first, second = open_request(ledger, customer_id), open_request(ledger, customer_id)
    return (
        lambda key: ledger.charge(first, actor=SPECIALIST, idempotency_key=key),
        lambda key: ledger.charge(second, actor=SPECIALIST, idempotency_key=key),
    )


def refund_case(ledger: Ledger) -> tuple[Command, Command]:
    request_id = open_request(ledger, funded_customer(ledger, 100))
    ledger.charge(request_id, actor=SPECIALIST)
    ledger.dispute(request_id, "Unsolved", actor=HELPDESK)
    return (
        lambda key: ledger.refund(request_id, 5, "Partly", actor=SPECIALIST, idempotency_key=key),
        lambda key: ledger.refund(request_id, 6, "Partly", actor=SPECIALIST, idempotency_key=key),
    )


def void_invoice_case(ledger: Ledger) -> tuple[Command, Command]:
    customer_id = funded_customer(ledger)
    invoice_id = ledger.issue_invoice(customer_id, package=80, actor=FINANCE).invoice_id
    return (
        lambda key: ledger.void_invoice(invoice_id, "Twice", actor=FINANCE, idempotency_key=key),
        lambda key: ledger.void_invoice(invoice_id, "Other", actor=FINANCE, idempotency_key=key),
    )


def subscription_case(ledger: Ledger) -> tuple[Command, Command]:
    customer_id = funded_customer(ledger)

    def record(until: date) -> Command:
        return lambda key: ledger.record_subscription(
            customer_id, date(2026, 3, 1), until, actor=FINANCE, idempotency_key=key
        )

    return record(date(2026, 4, 1)), record(date(2026, 5, 1))


def _request_case(
    prepare: Callable[[Ledger, UUID], object],
    command: str,
    first: dict[str, Any],
    other: dict[str, Any],
    actor: Actor,
) -> Callable[[Ledger], tuple[Command, Command]]:
    """A request command, given a request prepared for it."""

    def case(ledger: Ledger) -> tuple[Command, Command]:
        customer_id = funded_customer(ledger, 100)
        request_id = open_request(ledger, customer_id, "investigation")
        prepare(ledger, request_id)
        run = getattr(ledger, command)
        return (
            lambda key: run(request_id, **first, actor=actor, idempotency_key=key),
            lambda key: run(request_id, **other, actor=actor, idempotency_key=key),
        )

    case.__name__ = f"{command}_case"
    return case


def _nothing(ledger: Ledger, request_id: UUID) -> None:
    pass


def _pre_quoted(ledger: Ledger, request_id: UUID) -> None:
    ledger.request_pre_quote(request_id, actor=HELPDESK)


def _quoted(ledger: Ledger, request_id: UUID) -> None:
    ledger.request_pre_quote(request_id, actor=HELPDESK)
    ledger.quote(request_id, 25, actor=SPECIALIST)


def _disputed(ledger: Ledger, request_id: UUID) -> None:
    ledger.charge(request_id, actor=SPECIALIST)
    ledger.dispute(request_id, "Unsolved", actor=HELPDESK)


def _charged(ledger: Ledger, request_id: UUID) -> None:
    ledger.charge(request_id, actor=SPECIALIST)


def accept_quote_case(ledger: Ledger) -> tuple[Command, Command]:
    customer_id = funded_customer(ledger, 100)
    first, second = (open_request(ledger, customer_id, "complex_modification") for _ in "12")
    for request_id in (first, second):
        ledger.quote(request_id, 30, actor=SPECIALIST)
    return (
        lambda key: ledger.accept_quote(first, actor=HELPDESK, idempotency_key=key),
        lambda key: ledger.accept_quote(second, actor=HELPDESK, idempotency_key=key),
    )


CASES = [
    open_account_case,
    issue_invoice_case,
    pay_invoice_case,
    void_invoice_case,
    adjust_case,
    subscription_case,
    open_request_case,
    _request_case(_nothing, "request_pre_quote", {"note": "a"}, {"note": "b"}, HELPDESK),
    _request_case(_pre_quoted, "quote", {"price": 30}, {"price": 30, "surcharge": 5}, SPECIALIST),
    accept_quote_case,
    _request_case(_quoted, "decline_quote", {"reason": "a"}, {"reason": "b"}, HELPDESK),
    _request_case(
        _nothing,
        "revise_price",
        {"price": 30, "reason": "a"},
        {"price": 31, "reason": "a"},
        SPECIALIST,
    ),
    charge_case,
    _request_case(_nothing, "refer", {"reason": "a"}, {"reason": "b"}, SPECIALIST),
    _request_case(_nothing, "cancel", {"reason": "a"}, {"reason": "b"}, HELPDESK),
    _request_case(_charged, "dispute", {"reason": "a"}, {"reason": "b"}, HELPDESK),
    refund_case,
    _request_case(_disputed, "reject_dispute", {"reason": "a"}, {"reason": "b"}, SPECIALIST),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__.removesuffix("_case"))
def test_retry_with_the_same_key_answers_the_first_result_and_stores_nothing(
    ledger: Ledger, case: Callable[[Ledger], tuple[Command, Command]]
) -> None:
    same, _ = case(ledger)
    key = new_key()
    first = same(key)
    assert first.position == ledger.recorder.max_notification_id()

    before = ledger.recorder.max_notification_id()
    again = same(key)

    assert again == first
    assert type(again) is type(first)
    assert ledger.recorder.max_notification_id() == before


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__.removesuffix("_case"))
def test_same_key_with_other_arguments_is_refused(
    ledger: Ledger, case: Callable[[Ledger], tuple[Command, Command]]
) -> None:
    same, other = case(ledger)
    key = new_key()
    same(key)

    with refused(ledger, IdempotencyKeyReusedError) as error:
        other(key)

    assert isinstance(error.value, InvalidInputError)
    assert (error.value.field, error.value.key) == ("Idempotency-Key", key)


def test_the_receipt_is_stored_in_the_same_append_as_the_command(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id)
    before = ledger.position()

    charged = ledger.charge(request_id, actor=SPECIALIST, idempotency_key=new_key())

    assert sorted(new_event_types(ledger, before)) == [
        "AnswerCharged",
        "CommandRecorded",
        "CreditsCharged",
    ]
    assert charged.position == ledger.position()


def test_a_retried_payment_adds_the_credits_exactly_once(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger)
    invoice_id = ledger.issue_invoice(customer_id, package=320, actor=FINANCE).invoice_id
    key = new_key()

    for _ in range(3):
        paid = ledger.pay_invoice(invoice_id, "bank-1", actor=FINANCE, idempotency_key=key)

    assert paid.balance == 320
    assert ledger.get_account(customer_id).balance == 320 == movement_sum(ledger, customer_id)


def test_same_key_for_another_command_is_refused(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    key = new_key()
    ledger.adjust_balance(customer_id, 5, "Gift", actor=FINANCE, idempotency_key=key)

    with refused(ledger, IdempotencyKeyReusedError):
        ledger.issue_invoice(customer_id, package=80, actor=FINANCE, idempotency_key=key)


def test_keys_are_scoped_per_actor(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger, 100)
    key = new_key()
    other_finance = Actor(Role.FINANCE, "finance-2")
    admin = Actor(Role.ADMIN, "finance-1")  # same name, another role

    first = ledger.adjust_balance(customer_id, 5, "Gift", actor=FINANCE, idempotency_key=key)
    second = ledger.adjust_balance(customer_id, 5, "Gift", actor=other_finance, idempotency_key=key)
    third = ledger.adjust_balance(customer_id, 5, "Gift", actor=admin, idempotency_key=key)

    assert (first.balance, second.balance, third.balance) == (105, 110, 115)
    assert first.position < second.position < third.position
    for actor in (FINANCE, other_finance, admin):
        assert len(list(ledger.events.get(receipt_id_for(str(actor), key)))) == 1


def test_a_refused_command_stores_no_receipt_and_its_key_can_be_retried(
    ledger: Ledger,
) -> None:
    customer_id = funded_customer(ledger, 10)
    request_id = open_request(ledger, customer_id)
    key = new_key()

    with refused(ledger, InsufficientCreditsError):
        ledger.charge(request_id, actor=SPECIALIST, idempotency_key=key)
    ledger.adjust_balance(customer_id, 10, "Top-up", actor=FINANCE)

    assert ledger.charge(request_id, actor=SPECIALIST, idempotency_key=key).balance == 0


@pytest.mark.parametrize("key", ["", "   ", "k" * 201])
def test_an_idempotency_key_is_one_to_two_hundred_characters(ledger: Ledger, key: str) -> None:
    with refused(ledger, InvalidInputError) as error:
        ledger.open_account(new_customer_id(), "Acme", actor=HELPDESK, idempotency_key=key)

    assert error.value.field == "Idempotency-Key"


def test_two_threads_racing_with_one_key_write_one_receipt(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, batch_commands: bool
) -> None:
    customer_id = funded_customer(ledger)
    key = new_key()
    # Hold both first saves until both threads have decided, so that they
    # really race to append (neither can see the other's receipt yet). With
    # the batcher the two never race: one batch answers the second with the
    # first's result, or the second batch finds the first's receipt.
    both_decided = threading.Barrier(2, timeout=10)
    saves: list[int] = []
    real_save = ledger.save

    def save_after_both_decided(*aggregates: Any, **kwargs: Any) -> Any:
        saves.append(len(aggregates))
        if len(saves) <= 2:
            both_decided.wait()
        return real_save(*aggregates, **kwargs)

    monkeypatch.setattr(ledger, "save", save_after_both_decided)
    before = ledger.position()
    results: list[Any] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            results.append(
                ledger.open_request(
                    customer_id,
                    "installation",
                    "helpdesk",
                    "Once",
                    actor=HELPDESK,
                    idempotency_key=key,
                )
            )
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    # Both appended a request and a receipt; the loser's append was refused
    # whole, and its retry found the winner's receipt instead of saving again.
    assert saves == ([] if batch_commands else [2, 2])
    assert sorted(new_event_types(ledger, before)) == ["CommandRecorded", "RequestOpened"]
    receipt_events = list(ledger.events.get(receipt_id_for(str(HELPDESK), key)))
    assert [type(e) for e in receipt_events] == [CommandReceipt.CommandRecorded]
    assert receipt_events[0].result["request_id"] == results[0].request_id
    assert ledger.get_request(results[0].request_id).subject == "Once"
