"""An invoice for a credit package.

Invariants owned here: an invoice is paid at most once, a voided invoice
cannot be paid and a paid one cannot be voided; paying it adds its credits to
the account exactly once, in the same atomic append as the payment.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from ledger.aggregates.account import CustomerAccount
from ledger.errors import InvoiceAlreadyPaidError, InvoiceVoidedError
from ledger.policy import Package
from ledger.validation import required_text
from ledger.values import Actor


class InvoiceStatus(StrEnum):
    ISSUED = "issued"
    PAID = "paid"
    VOIDED = "voided"


class Invoice(Aggregate):
    class InvoiceIssued(Aggregate.Created):
        account_id: UUID
        customer_id: str
        credits: int
        amount_usd: Decimal
        standard_package: bool
        price_list_version: int | None
        actor: Actor

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 had no price list version: a standard package was
            priced by version 1, a custom one by no list."""
            state["price_list_version"] = 1 if state["standard_package"] else None

    class InvoicePaid(Aggregate.Event):
        payment_ref: str
        actor: Actor

        def apply(self, invoice: Invoice) -> None:
            invoice.status = InvoiceStatus.PAID
            invoice.payment_ref = self.payment_ref

    class InvoiceVoided(Aggregate.Event):
        reason: str
        actor: Actor

        def apply(self, invoice: Invoice) -> None:
            invoice.status = InvoiceStatus.VOIDED

    def __init__(
        self,
        account_id: UUID,
        customer_id: str,
        credits: int,
        amount_usd: Decimal,
        standard_package: bool,
        price_list_version: int | None,
        actor: Actor,
    ) -> None:
        self.account_id = account_id
        self.customer_id = customer_id
        self.credits = credits
        self.amount_usd = amount_usd
        self.standard_package = standard_package
        self.price_list_version = price_list_version
        self.status = InvoiceStatus.ISSUED
        self.payment_ref: str | None = None

    @classmethod
    def issue(
        cls,
        account: CustomerAccount,
        package: Package,
        *,
        price_list_version: int = 1,
        actor: Actor,
        at: datetime,
    ) -> Invoice:
        """Emits ``InvoiceIssued`` for a package the policy module validated;
        a standard package records ``price_list_version``, the version that
        listed it (in force at ``at``)."""
        return cls._create(
            cls.InvoiceIssued,
            id=uuid4(),
            account_id=account.id,
            customer_id=account.customer_id,
            credits=package.credits,
            amount_usd=package.amount_usd,
            standard_package=package.standard,
            price_list_version=price_list_version if package.standard else None,
            actor=actor,
            timestamp=at,
        )

    def pay(
        self, account: CustomerAccount, payment_ref: str, *, actor: Actor, at: datetime
    ) -> None:
        """Emits ``InvoicePaid`` here and ``CreditsPurchased`` on the account.
        Raises ``InvoiceAlreadyPaidError``, ``InvoiceVoidedError``."""
        self._check_open()
        payment_ref = required_text("payment_ref", payment_ref, max_length=200)
        account.purchase(
            self.id,
            self.credits,
            self.amount_usd,
            price_list_version=self.price_list_version,
            actor=actor,
            at=at,
        )
        self.trigger_event(self.InvoicePaid, payment_ref=payment_ref, actor=actor, timestamp=at)

    def void(self, reason: str, *, actor: Actor, at: datetime) -> None:
        """Emits ``InvoiceVoided``. Raises ``InvoiceAlreadyPaidError``,
        ``InvoiceVoidedError``."""
        self._check_open()
        self.trigger_event(
            self.InvoiceVoided, reason=required_text("reason", reason), actor=actor, timestamp=at
        )

    def _check_open(self) -> None:
        if self.status is InvoiceStatus.PAID:
            raise InvoiceAlreadyPaidError(self.id)
        if self.status is InvoiceStatus.VOIDED:
            raise InvoiceVoidedError(self.id)
