"""The ledger application: one command per policy action, and queries.

This is the one place that saves. Each command:
1. checks the actor's role (``ledger.permissions``);
2. loads the aggregates it needs and lets them decide (rules live in the
   aggregates; a refusal raises a ``ledger.errors`` error and writes nothing);
3. saves every changed aggregate in **one** atomic append, together with a
   ``CommandReceipt`` when an idempotency key was given;
4. retries a bounded number of times when another writer changed one of the
   same streams first (``IntegrityError``), then reports a conflict;
5. returns a plain result with ``position``, the global position of its last
   event.

Queries return plain values (``ledger.views``), never aggregates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    EventStore,
    IntegrityError,
    InterfaceError,
    JSONTranscoder,
    OperationalError,
    Transcoder,
)
from eventsourcing.utils import get_topic, resolve_topic

from ledger import views
from ledger.aggregates import (
    CommandReceipt,
    CustomerAccount,
    Invoice,
    SupportRequest,
    account_id_for,
    receipt_id_for,
)
from ledger.errors import (
    AccountAlreadyExistsError,
    ConcurrencyConflictError,
    IdempotencyKeyReusedError,
    InvalidInputError,
    StoreUnavailableError,
    UnknownAccountError,
    UnknownInvoiceError,
    UnknownRequestError,
)
from ledger.permissions import Action, authorize
from ledger.persistence.library import WritePathApplication, project
from ledger.persistence.recorders import guard_snapshots
from ledger.persistence.transcodings import LedgerTranscoder, register_ledger_transcodings
from ledger.policy import (
    DEFAULT_CALENDAR,
    Package,
    SupportCalendar,
    custom_package,
    parse_category,
    standard_package,
    validate_credits,
)
from ledger.values import Actor

logger = logging.getLogger(__name__)

R = TypeVar("R")
A = TypeVar("A", bound=Aggregate)

MAX_ATTEMPTS = 12
MAX_KEY_LENGTH = 200


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- results: what a command returns ---------------------------------------------


@dataclass(frozen=True)
class AccountOpened:
    customer_id: str
    name: str
    balance: int
    position: int = 0


@dataclass(frozen=True)
class InvoiceIssued:
    invoice_id: UUID
    customer_id: str
    credits: int
    amount_usd: Decimal
    status: str
    position: int = 0


@dataclass(frozen=True)
class InvoiceSettled:
    """The answer to a payment or a void."""

    invoice_id: UUID
    customer_id: str
    status: str
    balance: int
    position: int = 0


@dataclass(frozen=True)
class BalanceChanged:
    customer_id: str
    balance: int
    position: int = 0


@dataclass(frozen=True)
class SubscriptionRecorded:
    customer_id: str
    valid_from: date
    valid_until: date
    position: int = 0


@dataclass(frozen=True)
class RequestChanged:
    """The answer to every request command but the charge and the refund."""

    request_id: UUID
    status: str
    price: int | None
    position: int = 0


@dataclass(frozen=True)
class Quoted:
    request_id: UUID
    status: str
    work_price: int
    surcharge: int
    price: int
    position: int = 0


@dataclass(frozen=True)
class Charged:
    request_id: UUID
    charged: int
    balance: int
    position: int = 0


@dataclass(frozen=True)
class Refunded:
    request_id: UUID
    refunded: int
    balance: int
    position: int = 0


# --- the application ---------------------------------------------------------------


class Ledger(WritePathApplication):
    """Commands and queries of the support-credit ledger."""

    name = "Ledger"
    snapshotting_intervals = {CustomerAccount: 50}  # noqa: RUF012 - the library's API

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        calendar: SupportCalendar = DEFAULT_CALENDAR,
        clock: Callable[[], datetime] = utc_now,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        super().__init__(env)
        self.calendar = calendar
        self.clock = clock
        self.max_attempts = max_attempts

    def construct_snapshot_store(self) -> EventStore[UUID]:
        """The library's, its table append-only like the events."""
        store = super().construct_snapshot_store()
        if getattr(self.factory, "env_create_table", lambda: True)():
            guard_snapshots(store.recorder)
        return store

    def construct_transcoder(self) -> Transcoder:
        transcoder = LedgerTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_ledger_transcodings(transcoder)

    # --- accounts -------------------------------------------------------------

    def open_account(
        self, customer_id: str, name: str, *, actor: Actor, idempotency_key: str | None = None
    ) -> AccountOpened:
        """Emits ``CustomerAccount.Opened``. Raises ``AccountAlreadyExistsError``,
        ``InvalidInputError``."""

        def decide(at: datetime) -> tuple[Sequence[Aggregate], AccountOpened]:
            account = CustomerAccount.open(customer_id, name, actor=actor, at=at)
            if account.id in self.repository:
                raise AccountAlreadyExistsError(account.customer_id)
            return [account], AccountOpened(account.customer_id, account.name, 0)

        return self._execute(
            Action.OPEN_ACCOUNT,
            actor,
            idempotency_key,
            decide,
            customer_id=customer_id,
            name=name,
        )

    def issue_invoice(
        self,
        customer_id: str,
        *,
        package: int | None = None,
        credits: int | None = None,
        amount_usd: Decimal | str | None = None,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> InvoiceIssued:
        """Emits ``InvoiceIssued`` for a standard package (80, 160, 320 credits)
        or a custom one (credits and USD amount). Raises ``InvalidInputError``,
        ``UnknownAccountError``."""

        def decide(at: datetime) -> tuple[Sequence[Aggregate], InvoiceIssued]:
            chosen = _package(package, credits, amount_usd)
            account = self._account(customer_id)
            invoice = Invoice.issue(account, chosen, actor=actor, at=at)
            return [invoice], InvoiceIssued(
                invoice.id, account.customer_id, chosen.credits, chosen.amount_usd, "issued"
            )

        return self._execute(
            Action.ISSUE_INVOICE,
            actor,
            idempotency_key,
            decide,
            customer_id=customer_id,
            package=package,
            credits=credits,
            amount_usd=amount_usd,
        )

    def pay_invoice(
        self,
        invoice_id: UUID,
        payment_ref: str,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> InvoiceSettled:
        """Emits ``InvoicePaid`` and the account's ``CreditsPurchased`` in one
        append. Raises ``InvoiceAlreadyPaidError``, ``InvoiceVoidedError``,
        ``UnknownInvoiceError``."""

        def decide(at: datetime) -> tuple[Sequence[Aggregate], InvoiceSettled]:
            invoice = self._invoice(invoice_id)
            account = self._get(CustomerAccount, invoice.account_id, invoice.customer_id)
            invoice.pay(account, payment_ref, actor=actor, at=at)
            return [invoice, account], InvoiceSettled(
                invoice.id, invoice.customer_id, invoice.status.value, account.balance
            )

        return self._execute(
            Action.RECORD_PAYMENT,
            actor,
            idempotency_key,
            decide,
            invoice_id=invoice_id,
            payment_ref=payment_ref,
        )

    def void_invoice(
        self, invoice_id: UUID, reason: str, *, actor: Actor, idempotency_key: str | None = None
    ) -> InvoiceSettled:
        """Emits ``InvoiceVoided``. Raises ``InvoiceAlreadyPaidError``,
        ``InvoiceVoidedError``, ``UnknownInvoiceError``."""

        def decide(at: datetime) -> tuple[Sequence[Aggregate], InvoiceSettled]:
            invoice = self._invoice(invoice_id)
            invoice.void(reason, actor=actor, at=at)
            account = self._get(CustomerAccount, invoice.account_id, invoice.customer_id)
            return [invoice], InvoiceSettled(
                invoice.id, invoice.customer_id, invoice.status.value, account.balance
            )

        return self._execute(
            Action.VOID_INVOICE,
            actor,
            idempotency_key,
            decide,
            invoice_id=invoice_id,
            reason=reason,
        )

    def adjust_balance(
        self,
        customer_id: str,
        credits: int,
        reason: str,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> BalanceChanged:
        """Emits ``BalanceAdjusted`` (signed, not zero, with a reason). Raises
        ``AdjustmentBelowZeroError``, ``InvalidInputError``, ``UnknownAccountError``."""

        def decide(at: datetime) -> tuple[Sequence[Aggregate], BalanceChanged]:
            account = self._account(customer_id)
            account.adjust(
                validate_credits("credits", credits, allow_negative=True),
                reason,
                actor=actor,
                at=at,
            )
            return [account], BalanceChanged(account.customer_id, account.balance)

        return self._execute(
            Action.ADJUST_BALANCE,
            actor,
            idempotency_key,
            decide,
            customer_id=customer_id,
            credits=credits,
            reason=reason,
        )

    def record_subscription(
        self,
        customer_id: str,
        valid_from: date,
        valid_until: date,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> SubscriptionRecorded:
        """Emits ``UpdateSubscriptionRecorded`` for ``[valid_from, valid_until)``.
        Raises ``InvalidInputError``, ``UnknownAccountError``."""

        def decide(at: datetime) -> tuple[Sequence[Aggregate], SubscriptionRecorded]:
            account = self._account(customer_id)
            account.record_subscription(valid_from, valid_until, actor=actor, at=at)
            return [account], SubscriptionRecorded(account.customer_id, valid_from, valid_until)

        return self._execute(
            Action.RECORD_SUBSCRIPTION,
            actor,
            idempotency_key,
            decide,
            customer_id=customer_id,
            valid_from=valid_from,
            valid_until=valid_until,
        )

    # --- requests -------------------------------------------------------------

    def open_request(
        self,
        customer_id: str,
        category: str,
        channel: str,
        subject: str,
        *,
        from_version: str | None = None,
        to_version: str | None = None,
        third_party: bool = False,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> RequestChanged:
        """Emits ``RequestOpened`` priced by its category. Raises
        ``ChannelNotAllowedError``, ``UnknownCategoryError``,
        ``InvalidStoreUpdateError``, ``InvalidInputError``, ``UnknownAccountError``."""

        def decide(at: datetime) -> tuple[Sequence[Aggregate], RequestChanged]:
            account = self._account(customer_id)
            request = SupportRequest.open(
                account,
                parse_category(category),
                subject,
                channel,
                from_version=from_version,
                to_version=to_version,
                third_party=third_party,
                actor=actor,
                at=at,
            )
            return [request], _request_changed(request)

        return self._execute(
            Action.OPEN_REQUEST,
            actor,
            idempotency_key,
            decide,
            customer_id=customer_id,
            category=category,
            channel=channel,
            subject=subject,
            from_version=from_version,
            to_version=to_version,
            third_party=third_party,
        )

    def request_pre_quote(
        self,
        request_id: UUID,
        note: str | None = None,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> RequestChanged:
        """Emits ``PreQuoteRequested``. Raises ``InvalidRequestStateError``,
        ``RequestClosedError``, ``UnknownRequestError``."""
        return self._change_request(
            Action.REQUEST_PRE_QUOTE,
            request_id,
            actor,
            idempotency_key,
            lambda r, at: r.request_pre_quote(note, actor=actor, at=at),
            note=note,
        )

    def quote(
        self,
        request_id: UUID,
        price: int,
        surcharge: int = 0,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> Quoted:
        """Emits ``RequestQuoted`` (price = work price + surcharge). Raises
        ``PriceBelowMinimumError``, ``InvalidInputError``,
        ``InvalidRequestStateError``, ``UnknownRequestError``."""

        def decide(at: datetime) -> tuple[Sequence[Aggregate], Quoted]:
            request = self._request(request_id)
            request.quote(price, surcharge, actor=actor, at=at)
            assert request.price is not None  # just quoted
            return [request], Quoted(
                request.id, request.status.value, price, surcharge, request.price
            )

        return self._execute(
            Action.QUOTE,
            actor,
            idempotency_key,
            decide,
            request_id=request_id,
            price=price,
            surcharge=surcharge,
        )

    def accept_quote(
        self, request_id: UUID, *, actor: Actor, idempotency_key: str | None = None
    ) -> RequestChanged:
        """Emits ``QuoteAccepted``. Raises ``InvalidRequestStateError``,
        ``RequestClosedError``, ``UnknownRequestError``."""
        return self._change_request(
            Action.ACCEPT_QUOTE,
            request_id,
            actor,
            idempotency_key,
            lambda r, at: r.accept_quote(actor=actor, at=at),
        )

    def decline_quote(
        self,
        request_id: UUID,
        reason: str | None = None,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> RequestChanged:
        """Emits ``QuoteDeclined``: closed, nothing charged. Raises
        ``InvalidRequestStateError``, ``RequestClosedError``, ``UnknownRequestError``."""
        return self._change_request(
            Action.DECLINE_QUOTE,
            request_id,
            actor,
            idempotency_key,
            lambda r, at: r.decline_quote(reason, actor=actor, at=at),
            reason=reason,
        )

    def revise_price(
        self,
        request_id: UUID,
        price: int,
        reason: str,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> RequestChanged:
        """Emits ``PriceRevised``. Raises ``PriceBelowMinimumError``,
        ``InvalidInputError``, ``AlreadyChargedError``, ``RequestClosedError``,
        ``UnknownRequestError``."""
        return self._change_request(
            Action.REVISE_PRICE,
            request_id,
            actor,
            idempotency_key,
            lambda r, at: r.revise_price(price, reason, actor=actor, at=at),
            price=price,
            reason=reason,
        )

    def charge(
        self, request_id: UUID, *, actor: Actor, idempotency_key: str | None = None
    ) -> Charged:
        """Emits ``AnswerCharged`` and the account's ``CreditsCharged`` in one
        append. Raises, state conflicts first: ``AlreadyChargedError``,
        ``RequestClosedError``, ``QuoteAwaitingAcceptanceError``,
        ``QuotePendingError``, ``OutsideWorkingHoursError``,
        ``SubscriptionRequiredError``; then ``InsufficientCreditsError``."""

        def decide(at: datetime) -> tuple[Sequence[Aggregate], Charged]:
            request = self._request(request_id)
            account = self._get(CustomerAccount, request.account_id, request.customer_id)
            request.charge(account, self.calendar, actor=actor, at=at)
            return [request, account], Charged(request.id, request.charged or 0, account.balance)

        return self._execute(Action.CHARGE, actor, idempotency_key, decide, request_id=request_id)

    def refer(
        self, request_id: UUID, reason: str, *, actor: Actor, idempotency_key: str | None = None
    ) -> RequestChanged:
        """Emits ``RequestReferred`` (to custom development). Raises
        ``InvalidRequestStateError``, ``RequestClosedError``, ``UnknownRequestError``."""
        return self._change_request(
            Action.REFER,
            request_id,
            actor,
            idempotency_key,
            lambda r, at: r.refer(reason, actor=actor, at=at),
            reason=reason,
        )

    def cancel(
        self,
        request_id: UUID,
        reason: str | None = None,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> RequestChanged:
        """Emits ``RequestCancelled``. Raises ``InvalidRequestStateError``,
        ``RequestClosedError``, ``UnknownRequestError``."""
        return self._change_request(
            Action.CANCEL,
            request_id,
            actor,
            idempotency_key,
            lambda r, at: r.cancel(reason, actor=actor, at=at),
            reason=reason,
        )

    def dispute(
        self, request_id: UUID, reason: str, *, actor: Actor, idempotency_key: str | None = None
    ) -> RequestChanged:
        """Emits ``ChargeDisputed``. Raises ``InvalidRequestStateError``,
        ``RequestClosedError``, ``UnknownRequestError``."""
        return self._change_request(
            Action.DISPUTE,
            request_id,
            actor,
            idempotency_key,
            lambda r, at: r.dispute(reason, actor=actor, at=at),
            reason=reason,
        )

    def refund(
        self,
        request_id: UUID,
        credits: int,
        reason: str,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> Refunded:
        """Emits ``ChargeRefunded`` and the account's ``CreditsRefunded`` in one
        append; resolves the open dispute. Raises ``RefundExceedsChargeError``,
        ``InvalidInputError``, ``InvalidRequestStateError``, ``UnknownRequestError``."""

        def decide(at: datetime) -> tuple[Sequence[Aggregate], Refunded]:
            request = self._request(request_id)
            account = self._get(CustomerAccount, request.account_id, request.customer_id)
            request.refund(account, credits, reason, actor=actor, at=at)
            return [request, account], Refunded(request.id, request.refunded, account.balance)

        return self._execute(
            Action.RESOLVE_DISPUTE,
            actor,
            idempotency_key,
            decide,
            request_id=request_id,
            credits=credits,
            reason=reason,
        )

    def reject_dispute(
        self, request_id: UUID, reason: str, *, actor: Actor, idempotency_key: str | None = None
    ) -> RequestChanged:
        """Emits ``DisputeRejected``. Raises ``InvalidRequestStateError``,
        ``UnknownRequestError``."""
        return self._change_request(
            Action.RESOLVE_DISPUTE,
            request_id,
            actor,
            idempotency_key,
            lambda r, at: r.reject_dispute(reason, actor=actor, at=at),
            reason=reason,
        )

    # --- queries --------------------------------------------------------------

    def get_account(self, customer_id: str) -> views.AccountView:
        """The account now, from the event store. Raises ``UnknownAccountError``."""
        account = self._read(lambda: self._account(customer_id))
        return views.account_view(account, self.calendar.local_date(self.clock()))

    def get_account_as_of(self, customer_id: str, as_of: datetime) -> views.AccountView:
        """The account as it was at ``as_of``, replayed from the event store.
        Raises ``UnknownAccountError`` (also when it did not exist yet)."""
        if as_of.tzinfo is None:
            raise InvalidInputError("as_of", "as_of needs a time zone offset")
        account = self._read(
            lambda: _replay_until(self.events.get(account_id_for(customer_id)), as_of)
        )
        if not isinstance(account, CustomerAccount):
            raise UnknownAccountError(customer_id)
        return views.account_view(account, self.calendar.local_date(as_of))

    def get_request(self, request_id: UUID) -> views.RequestView:
        """Raises ``UnknownRequestError``."""
        return views.request_view(self._read(lambda: self._request(request_id)))

    def get_invoice(self, invoice_id: UUID) -> views.InvoiceView:
        """Raises ``UnknownInvoiceError``."""
        return views.invoice_view(self._read(lambda: self._invoice(invoice_id)))

    def request_history(self, request_id: UUID) -> list[views.HistoryEntry]:
        """Every event of a request, oldest first, each with the request's
        whole state right after it. Raises ``UnknownRequestError``."""
        events = self._read(lambda: list(self.events.get(request_id)))
        # The id of an account or an invoice is no request either.
        if not events or not isinstance(events[0], SupportRequest.RequestOpened):
            raise UnknownRequestError(request_id)
        positions = self._read(lambda: self.recorder.positions_of(request_id))  # type: ignore[attr-defined]
        return list(views.history(events, positions))

    def support_hours(self) -> views.SupportHours:
        now = self.clock()
        return views.SupportHours(
            open=self.calendar.is_open(now),
            now=now,
            next_open=self.calendar.next_opening(now),
            time_zone=self.calendar.time_zone,
            hours=self.calendar.describe(),
        )

    def position(self) -> int:
        """The global position of the newest stored event (0 when empty)."""
        return self._read(lambda: self.recorder.max_notification_id() or 0)

    # --- the command cycle ----------------------------------------------------

    def _change_request(
        self,
        action: Action,
        request_id: UUID,
        actor: Actor,
        idempotency_key: str | None,
        change: Callable[[SupportRequest, datetime], None],
        **arguments: Any,
    ) -> RequestChanged:
        def decide(at: datetime) -> tuple[Sequence[Aggregate], RequestChanged]:
            request = self._request(request_id)
            change(request, at)
            return [request], _request_changed(request)

        return self._execute(
            action, actor, idempotency_key, decide, request_id=request_id, **arguments
        )

    def _execute(
        self,
        action: Action,
        actor: Actor,
        idempotency_key: str | None,
        decide: Callable[[datetime], tuple[Sequence[Aggregate], R]],
        **arguments: Any,
    ) -> R:
        authorize(actor, action)
        scope = str(actor)
        fingerprint = ""
        if idempotency_key is not None:
            _check_key(idempotency_key)
            fingerprint = _fingerprint(action, arguments)
        for attempt in range(1, self.max_attempts + 1):
            try:
                if idempotency_key is not None:
                    first: R | None = self._replay(scope, idempotency_key, fingerprint)
                    if first is not None:
                        return first
                at = self.clock()
                aggregates, result = decide(at)
                pending = list(aggregates)
                if idempotency_key is not None:
                    pending.append(
                        _receipt(scope, idempotency_key, action, fingerprint, result, actor, at)
                    )
                recordings = self.save(*pending)
            except IntegrityError:
                # Another writer appended to one of these streams first (or
                # used the same idempotency key): decide again on fresh state.
                time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))
                continue
            except (OperationalError, InterfaceError) as e:
                raise StoreUnavailableError(f"the event store is unavailable: {e}") from e
            return replace(result, position=recordings[-1].notification.id)  # type: ignore[type-var]
        raise ConcurrencyConflictError(self.max_attempts)

    def _replay(self, scope: str, key: str, fingerprint: str) -> Any:
        receipt_id = receipt_id_for(scope, key)
        receipt = self._load(receipt_id)
        if receipt is None:
            return None
        assert isinstance(receipt, CommandReceipt)
        if receipt.fingerprint != fingerprint:
            raise IdempotencyKeyReusedError(key)
        position = self.recorder.positions_of(receipt_id)[1]  # type: ignore[attr-defined]
        return resolve_topic(receipt.result_topic)(**receipt.result, position=position)

    def _read(self, query: Callable[[], R]) -> R:
        try:
            return query()
        except (OperationalError, InterfaceError) as e:
            raise StoreUnavailableError(f"the event store is unavailable: {e}") from e

    # --- loading --------------------------------------------------------------

    def _get(
        self, cls: type[A], aggregate_id: UUID, label: str, *, version: int | None = None
    ) -> A:
        snapshotted = cls in (self.snapshotting_intervals or {})
        aggregate = self._load(aggregate_id, version=version, snapshots=snapshotted)
        if not isinstance(aggregate, cls):
            raise {
                CustomerAccount: UnknownAccountError,
                SupportRequest: UnknownRequestError,
                Invoice: UnknownInvoiceError,
            }[cls](label)
        return aggregate

    def _load(
        self, aggregate_id: UUID, *, version: int | None = None, snapshots: bool = False
    ) -> Aggregate | None:
        """The aggregate, or ``None`` when it has no events.

        The types in ``snapshotting_intervals`` (accounts) go through the
        library's repository: its snapshots, and its cache of aggregates when
        configured (``ledger.bootstrap``), brought up to date by one query for
        newer events on every load. The others never have snapshots: their
        events are read and replayed directly, without the snapshot lookup.
        """
        if snapshots:
            try:
                found: Aggregate = self.repository.get(
                    aggregate_id, version=version, projector_func=project
                )
            except AggregateNotFoundError:
                return None
            return found
        replayed: Aggregate | None = project(None, self.events.get(aggregate_id, lte=version))
        return replayed

    def _account(self, customer_id: str) -> CustomerAccount:
        if not isinstance(customer_id, str) or not customer_id:
            raise UnknownAccountError(str(customer_id))
        return self._get(CustomerAccount, account_id_for(customer_id), customer_id)

    def _request(self, request_id: UUID) -> SupportRequest:
        return self._get(SupportRequest, request_id, str(request_id))

    def _invoice(self, invoice_id: UUID) -> Invoice:
        return self._get(Invoice, invoice_id, str(invoice_id))


def _replay_until(events: Iterable[Any], at: datetime) -> Any:
    """The aggregate as its events made it up to ``at`` (one pass over them)."""
    aggregate = None
    for event in events:
        if event.timestamp > at:
            break
        aggregate = event.mutate(aggregate)
    return aggregate


def _package(package: int | None, credits: int | None, amount_usd: Decimal | str | None) -> Package:
    """A standard package by its credits, or a custom one (credits and USD)."""
    if package is not None and (credits is not None or amount_usd is not None):
        raise InvalidInputError("package", "give either a package or credits and amount_usd")
    if package is not None:
        return standard_package(package)
    if credits is not None and amount_usd is not None:
        return custom_package(credits, amount_usd)
    field = "credits" if credits is None else "amount_usd"
    raise InvalidInputError(field, "give a package, or both credits and amount_usd")


def _request_changed(request: SupportRequest) -> RequestChanged:
    return RequestChanged(request.id, request.status.value, request.price)


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            "Idempotency-Key", f"an idempotency key is 1 to {MAX_KEY_LENGTH} characters"
        )


def _fingerprint(action: Action, arguments: dict[str, Any]) -> str:
    canonical = json.dumps([action.value, arguments], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _receipt(
    scope: str,
    key: str,
    action: Action,
    fingerprint: str,
    result: Any,
    actor: Actor,
    at: datetime,
) -> CommandReceipt:
    data = asdict(result)
    data.pop("position")
    return CommandReceipt._create(
        CommandReceipt.CommandRecorded,
        scope=scope,
        key=key,
        command=action.value,
        fingerprint=fingerprint,
        result_topic=get_topic(type(result)),
        result=data,
        actor=actor,
        timestamp=at,
    )
