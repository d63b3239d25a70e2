"""An invoice for a credit package (POLICY.md, "Credits and money"): paid at
most once, its credits added exactly once in the same append as the payment;
a voided invoice cannot be paid and a paid one cannot be voided."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.aggregates import CustomerAccount, Invoice, InvoiceStatus
from ledger.errors import (
    ConflictError,
    InvalidInputError,
    InvoiceAlreadyPaidError,
    InvoiceVoidedError,
)
from ledger.policy import custom_package, standard_package
from tests.support.domain import AT, EARLIER, FINANCE, given, given_account, new_events


def given_invoice(account: CustomerAccount, credits: int = 80) -> Invoice:
    invoice = Invoice.issue(account, standard_package(credits), actor=FINANCE, at=EARLIER)
    given(invoice)
    return invoice


def test_issuing_an_invoice_records_the_package_credits_and_dollars() -> None:
    account = given_account()

    invoice = Invoice.issue(account, standard_package(160), actor=FINANCE, at=AT)

    [issued] = new_events(invoice)
    assert type(issued) is Invoice.InvoiceIssued
    assert (issued.account_id, issued.customer_id) == (account.id, account.customer_id)
    assert (issued.credits, issued.amount_usd, issued.standard_package) == (
        160,
        Decimal("180.00"),
        True,
    )
    assert (issued.actor, issued.timestamp) == (FINANCE, AT)
    assert invoice.status is InvoiceStatus.ISSUED
    assert new_events(account) == []


def test_custom_package_invoice_is_marked_as_not_standard() -> None:
    invoice = Invoice.issue(given_account(), custom_package(100, "95.50"), actor=FINANCE, at=AT)

    [issued] = new_events(invoice)
    assert (issued.credits, issued.amount_usd, issued.standard_package) == (
        100,
        Decimal("95.50"),
        False,
    )


def test_paying_an_invoice_adds_its_credits_to_the_account() -> None:
    account = given_account(balance=5)
    invoice = given_invoice(account, 80)

    invoice.pay(account, "bank-2026-0042", actor=FINANCE, at=AT)

    [paid] = new_events(invoice)
    [purchased] = new_events(account)
    assert type(paid) is Invoice.InvoicePaid
    assert (paid.payment_ref, paid.actor, paid.timestamp) == ("bank-2026-0042", FINANCE, AT)
    assert type(purchased) is CustomerAccount.CreditsPurchased
    assert (purchased.invoice_id, purchased.amount, purchased.amount_usd) == (
        invoice.id,
        80,
        Decimal("90.00"),
    )
    assert (purchased.balance_after, purchased.actor, purchased.timestamp) == (85, FINANCE, AT)
    assert (invoice.status, invoice.payment_ref) == (InvoiceStatus.PAID, "bank-2026-0042")


def test_an_invoice_is_paid_only_once() -> None:
    account = given_account()
    invoice = given_invoice(account)
    invoice.pay(account, "bank-1", actor=FINANCE, at=EARLIER)
    given(invoice, account)

    with pytest.raises(InvoiceAlreadyPaidError) as refused:
        invoice.pay(account, "bank-2", actor=FINANCE, at=AT)

    assert isinstance(refused.value, ConflictError)
    assert refused.value.invoice_id == invoice.id
    assert new_events(invoice) == new_events(account) == []
    assert account.balance == 80


def test_payment_needs_a_payment_reference() -> None:
    account = given_account()
    invoice = given_invoice(account)

    with pytest.raises(InvalidInputError) as refused:
        invoice.pay(account, "  ", actor=FINANCE, at=AT)

    assert refused.value.field == "payment_ref"
    assert new_events(invoice) == new_events(account) == []


def test_voiding_an_invoice_records_the_reason() -> None:
    invoice = given_invoice(given_account())

    invoice.void("Issued twice by mistake", actor=FINANCE, at=AT)

    [voided] = new_events(invoice)
    assert (type(voided), voided.reason, voided.actor) == (
        Invoice.InvoiceVoided,
        "Issued twice by mistake",
        FINANCE,
    )
    assert invoice.status is InvoiceStatus.VOIDED


def test_voiding_needs_a_reason() -> None:
    invoice = given_invoice(given_account())

    with pytest.raises(InvalidInputError) as refused:
        invoice.void("", actor=FINANCE, at=AT)

    assert refused.value.field == "reason"


def test_a_voided_invoice_cannot_be_paid() -> None:
    account = given_account()
    invoice = given_invoice(account)
    invoice.void("Wrong package", actor=FINANCE, at=EARLIER)
    given(invoice)

    with pytest.raises(InvoiceVoidedError) as refused:
        invoice.pay(account, "bank-1", actor=FINANCE, at=AT)

    assert refused.value.invoice_id == invoice.id
    assert new_events(invoice) == new_events(account) == []
    assert account.balance == 0


def test_a_paid_invoice_cannot_be_voided() -> None:
    account = given_account()
    invoice = given_invoice(account)
    invoice.pay(account, "bank-1", actor=FINANCE, at=EARLIER)
    given(invoice, account)

    with pytest.raises(InvoiceAlreadyPaidError):
        invoice.void("Too late", actor=FINANCE, at=AT)

    assert new_events(invoice) == []


def test_a_voided_invoice_cannot_be_voided_again() -> None:
    invoice = given_invoice(given_account())
    invoice.void("Wrong package", actor=FINANCE, at=EARLIER)
    given(invoice)

    with pytest.raises(InvoiceVoidedError):
        invoice.void("Again", actor=FINANCE, at=AT)
