"""Commands as values through the ledger, on SQLite and PostgreSQL:
``Ledger.execute`` runs a command value as the verbs do; a key reused with
any field changed is refused; a receipt stored by the code before commands
were values (its fingerprint of the keyword arguments, its result under the
old topic ``ledger.application:<Name>``) still answers an idempotent retry."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from ledger.aggregates import CommandReceipt, Invoice
from ledger.application import Ledger
from ledger.commands import AdjustBalance, Charge, OpenRequest, Refund
from ledger.commands.results import ChargeResult, IssueInvoiceResult, RefundResult
from ledger.errors import IdempotencyKeyReusedError, PermissionDeniedError
from ledger.policy import custom_package
from ledger.values import Actor
from tests.support.domain import FINANCE, HELPDESK, SPECIALIST
from tests.support.ledger import funded_customer, new_event_types, open_request, refused


def new_key() -> str:
    return f"key-{uuid4().hex}"


def old_receipt(
    actor: Actor,
    key: str,
    action: str,
    arguments: dict[str, Any],
    topic: str,
    result: Any,
    at: datetime,
) -> CommandReceipt:
    """A receipt as ``ledger.application`` wrote it before commands were values."""
    canonical = json.dumps([action, arguments], sort_keys=True, default=str)
    data = dataclasses.asdict(result)
    data.pop("position")
    return CommandReceipt._create(
        CommandReceipt.CommandRecorded,
        scope=str(actor),
        key=key,
        command=action,
        fingerprint=hashlib.sha256(canonical.encode()).hexdigest(),
        result_topic=topic,
        result=data,
        actor=actor,
        timestamp=at,
    )


@contextmanager
def stores_nothing(ledger: Ledger) -> Iterator[None]:
    before = ledger.position()
    yield
    assert ledger.position() == before, "a replayed command stored events"


def test_execute_runs_a_command_value_as_the_verb_does(ledger: Ledger) -> None:
    request_id = open_request(ledger, funded_customer(ledger, 100))
    before = ledger.position()

    charged = ledger.execute(Charge(request_id), actor=SPECIALIST)

    assert charged == ChargeResult(request_id, 20, 80, charged.position)
    assert charged.position == ledger.position() > before
    assert new_event_types(ledger, before) == ["AnswerCharged", "CreditsCharged"]


def test_execute_with_a_key_answers_a_retry_with_the_first_result(ledger: Ledger) -> None:
    request_id = open_request(ledger, funded_customer(ledger, 100))
    key = new_key()
    first = ledger.execute(Charge(request_id), actor=SPECIALIST, idempotency_key=key)

    with stores_nothing(ledger):
        again = ledger.execute(Charge(request_id), actor=SPECIALIST, idempotency_key=key)
    by_verb = ledger.charge(request_id, actor=SPECIALIST, idempotency_key=key)

    assert again == first == by_verb


def test_execute_checks_the_actors_role(ledger: Ledger) -> None:
    request_id = open_request(ledger, funded_customer(ledger, 100))

    with refused(ledger, PermissionDeniedError):
        ledger.execute(Charge(request_id), actor=HELPDESK)


@pytest.mark.parametrize(
    ("first", "other"),
    [
        ({"reason": "Gift"}, {"reason": "Goodwill"}),
        ({"credits": 5}, {"credits": 6}),
    ],
)
def test_a_key_reused_with_any_field_changed_is_refused(
    ledger: Ledger, first: dict[str, Any], other: dict[str, Any]
) -> None:
    customer_id = funded_customer(ledger, 80)
    command = AdjustBalance(customer_id, 5, "Gift")
    key = new_key()
    ledger.execute(dataclasses.replace(command, **first), actor=FINANCE, idempotency_key=key)

    with refused(ledger, IdempotencyKeyReusedError):
        ledger.execute(dataclasses.replace(command, **other), actor=FINANCE, idempotency_key=key)


def test_a_key_reused_with_a_default_field_changed_is_refused(ledger: Ledger) -> None:
    customer_id = funded_customer(ledger)
    command = OpenRequest(customer_id, "installation", "helpdesk", "Theme")
    key = new_key()
    ledger.execute(command, actor=HELPDESK, idempotency_key=key)

    with refused(ledger, IdempotencyKeyReusedError):
        ledger.execute(
            dataclasses.replace(command, third_party=True), actor=HELPDESK, idempotency_key=key
        )


def test_a_key_used_for_a_refund_is_refused_for_another_refund(ledger: Ledger) -> None:
    request_id = open_request(ledger, funded_customer(ledger, 100))
    ledger.charge(request_id, actor=SPECIALIST)
    ledger.dispute(request_id, "Unsolved", actor=HELPDESK)
    key = new_key()
    refunded = ledger.execute(
        Refund(request_id, 5, "Partly"), actor=SPECIALIST, idempotency_key=key
    )

    with refused(ledger, IdempotencyKeyReusedError):
        ledger.refund(request_id, 5, "Partly!", actor=SPECIALIST, idempotency_key=key)
    assert refunded == RefundResult(request_id, 5, 85, refunded.position)


def test_a_charge_receipt_stored_by_the_old_code_answers_a_retry(ledger: Ledger) -> None:
    """Written as the old ``_execute`` did: the request, the account and the
    receipt in one append, the result under ``ledger.application:Charged``."""
    request_id = open_request(ledger, funded_customer(ledger, 100))
    key = new_key()
    request = ledger._request(request_id)
    account = ledger._account(request.customer_id)
    request.charge(account, ledger.calendar, actor=SPECIALIST, at=ledger.clock())
    stored = ChargeResult(request_id, 20, 80)
    receipt = old_receipt(
        SPECIALIST,
        key,
        "charge",
        {"request_id": request_id},
        "ledger.application:Charged",
        stored,
        ledger.clock(),
    )
    position = ledger.save(request, account, receipt)[-1].notification.id

    with stores_nothing(ledger):
        again = ledger.charge(request_id, actor=SPECIALIST, idempotency_key=key)

    assert again == dataclasses.replace(stored, position=position)
    assert type(again) is ChargeResult
    assert ledger.get_account(request.customer_id).balance == 80  # charged once


def test_an_invoice_receipt_stored_by_the_old_code_answers_a_retry(ledger: Ledger) -> None:
    """A custom package with its amount as text, as the API sends it; the
    stored result carries a UUID and a Decimal."""
    customer_id = funded_customer(ledger)
    key = new_key()
    package = custom_package(100, "95.50")
    invoice = Invoice.issue(ledger._account(customer_id), package, actor=FINANCE, at=ledger.clock())
    stored = IssueInvoiceResult(invoice.id, customer_id, 100, Decimal("95.50"), "issued")
    arguments = {"customer_id": customer_id, "package": None, "credits": 100, "amount_usd": "95.50"}
    receipt = old_receipt(
        FINANCE,
        key,
        "issue_invoice",
        arguments,
        "ledger.application:InvoiceIssued",
        stored,
        ledger.clock(),
    )
    position = ledger.save(invoice, receipt)[-1].notification.id

    with stores_nothing(ledger):
        again = ledger.issue_invoice(
            customer_id, credits=100, amount_usd="95.50", actor=FINANCE, idempotency_key=key
        )

    assert again == dataclasses.replace(stored, position=position)
    with refused(ledger, IdempotencyKeyReusedError):
        ledger.issue_invoice(
            customer_id, credits=100, amount_usd="96.50", actor=FINANCE, idempotency_key=key
        )
