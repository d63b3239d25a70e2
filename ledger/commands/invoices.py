"""The commands on invoices: issue one for a package, record its payment
(which credits the account), void it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.aggregates import PRICE_LISTS_ID, CustomerAccount, Invoice
from ledger.commands.accounts import account_needs
from ledger.commands.cycle import Command
from ledger.commands.results import InvoiceChangeResult, IssueInvoiceResult
from ledger.errors import InvalidInputError
from ledger.permissions import Action
from ledger.policy import Package, PriceList, custom_package, standard_package
from ledger.values import Actor

if TYPE_CHECKING:
    from ledger.application import Ledger


@dataclass(frozen=True)
class IssueInvoice(Command[IssueInvoiceResult]):
    """Emits ``InvoiceIssued`` for a standard package of the price list in
    force now (recording its version), or a custom one (credits and USD
    amount). Raises ``InvalidInputError``, ``UnknownAccountError``."""

    action = Action.ISSUE_INVOICE

    customer_id: str
    package: int | None = None
    credits: int | None = None
    amount_usd: Decimal | str | None = None

    def needs(self, loaded: Mapping[UUID, Aggregate | None]) -> Iterable[tuple[UUID, bool]]:
        return [*account_needs(self.customer_id), (PRICE_LISTS_ID, False)]

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], IssueInvoiceResult]:
        prices = ledger._price_list_at(at)
        chosen = _package(self.package, self.credits, self.amount_usd, prices)
        account = ledger._account(self.customer_id)
        invoice = Invoice.issue(
            account, chosen, price_list_version=prices.version, actor=actor, at=at
        )
        return [invoice], IssueInvoiceResult(
            invoice.id, account.customer_id, chosen.credits, chosen.amount_usd, "issued"
        )


@dataclass(frozen=True)
class PayInvoice(Command[InvoiceChangeResult]):
    """Emits ``InvoicePaid`` and the account's ``CreditsPurchased`` in one
    append. Raises ``InvoiceAlreadyPaidError``, ``InvoiceVoidedError``,
    ``UnknownInvoiceError``."""

    action = Action.RECORD_PAYMENT

    invoice_id: UUID
    payment_ref: str

    def needs(self, loaded: Mapping[UUID, Aggregate | None]) -> Iterable[tuple[UUID, bool]]:
        return _invoice_and_account_needs(self.invoice_id, loaded)

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], InvoiceChangeResult]:
        invoice = ledger._invoice(self.invoice_id)
        account = ledger._get(CustomerAccount, invoice.account_id, invoice.customer_id)
        invoice.pay(account, self.payment_ref, actor=actor, at=at)
        return [invoice, account], InvoiceChangeResult(
            invoice.id, invoice.customer_id, invoice.status.value, account.balance
        )


@dataclass(frozen=True)
class VoidInvoice(Command[InvoiceChangeResult]):
    """Emits ``InvoiceVoided``. Raises ``InvoiceAlreadyPaidError``,
    ``InvoiceVoidedError``, ``UnknownInvoiceError``."""

    action = Action.VOID_INVOICE

    invoice_id: UUID
    reason: str

    def needs(self, loaded: Mapping[UUID, Aggregate | None]) -> Iterable[tuple[UUID, bool]]:
        return _invoice_and_account_needs(self.invoice_id, loaded)

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], InvoiceChangeResult]:
        invoice = ledger._invoice(self.invoice_id)
        invoice.void(self.reason, actor=actor, at=at)
        account = ledger._get(CustomerAccount, invoice.account_id, invoice.customer_id)
        return [invoice], InvoiceChangeResult(
            invoice.id, invoice.customer_id, invoice.status.value, account.balance
        )


def _invoice_and_account_needs(
    invoice_id: UUID, loaded: Mapping[UUID, Aggregate | None]
) -> list[tuple[UUID, bool]]:
    """The invoice, then the account it names (``Command.needs``)."""
    if invoice_id not in loaded:
        return [(invoice_id, False)]
    invoice = loaded[invoice_id]
    return [(invoice.account_id, True)] if isinstance(invoice, Invoice) else []


def _package(
    package: int | None,
    credits: int | None,
    amount_usd: Decimal | str | None,
    prices: PriceList,
) -> Package:
    """A standard package of ``prices`` by its credits, or a custom one
    (credits and USD)."""
    if package is not None and (credits is not None or amount_usd is not None):
        raise InvalidInputError("package", "give either a package or credits and amount_usd")
    if package is not None:
        return standard_package(package, prices)
    if credits is not None and amount_usd is not None:
        return custom_package(credits, amount_usd, prices)
    field = "credits" if credits is None else "amount_usd"
    raise InvalidInputError(field, "give a package, or both credits and amount_usd")
