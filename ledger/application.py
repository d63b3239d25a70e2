"""The ledger application: the one entry point the API and the CLI call.

Commands are values (``ledger.commands``: one module per aggregate, each
command a frozen dataclass whose docstring says which events it emits and
which errors it raises); ``execute`` runs one through the command cycle
(``ledger.commands.cycle``: authorize, decide, save every changed aggregate
in one atomic append with its receipt, bounded retry), the one place that
saves (``ledger.commands.batch`` when concurrent commands share one load
and one append). Each verb below (``charge``, ``open_account``, ...) builds its command
value and executes it.

Queries return plain values (``ledger.views``), never aggregates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    EventStore,
    InterfaceError,
    JSONTranscoder,
    OperationalError,
    Transcoder,
)
from eventsourcing.utils import get_topic

from ledger import views
from ledger.aggregates import (
    PRICE_LISTS_ID,
    Adjustment,
    AdjustmentStatus,
    CustomerAccount,
    Invoice,
    PriceLists,
    SupportRequest,
    account_id_for,
)
from ledger.commands import cycle
from ledger.commands.accounts import AdjustBalance, OpenAccount, RecordSubscription
from ledger.commands.adjustments import ApproveAdjustment, RejectAdjustment
from ledger.commands.batch import WORKING, Batcher
from ledger.commands.cycle import MAX_ATTEMPTS, Command
from ledger.commands.invoices import IssueInvoice, PayInvoice, VoidInvoice
from ledger.commands.price_lists import PublishPriceList
from ledger.commands.requests import (
    AcceptQuote,
    Cancel,
    Charge,
    DeclineQuote,
    Dispute,
    OpenRequest,
    Quote,
    Refer,
    Refund,
    RejectDispute,
    RequestPreQuote,
    RevisePrice,
    StartWork,
)
from ledger.commands.results import (
    AdjustBalanceResult,
    AdjustmentDecisionResult,
    ChargeResult,
    InvoiceChangeResult,
    IssueInvoiceResult,
    OpenAccountResult,
    PublishPriceListResult,
    QuoteResult,
    RecordSubscriptionResult,
    RefundResult,
    RequestChangeResult,
    StartResult,
)
from ledger.errors import (
    InvalidInputError,
    StoreUnavailableError,
    UnknownAccountError,
    UnknownAdjustmentError,
    UnknownInvoiceError,
    UnknownRequestError,
)
from ledger.persistence.library import WritePathApplication, project
from ledger.persistence.recorders import guard_snapshots
from ledger.persistence.transcodings import LedgerTranscoder, register_ledger_transcodings
from ledger.policy import (
    DEFAULT_CALENDAR,
    DEFAULT_PRICE_LIST,
    PriceList,
    SupportCalendar,
    price_list_in_force,
)
from ledger.values import Actor

R = TypeVar("R")

#: ``LEDGER_HOLD_WORKING_HOURS``'s default: the open hours a hold lives.
HOLD_WORKING_HOURS = 16
#: ``LEDGER_ADJUSTMENT_LIMIT``'s default: larger adjustments need four eyes.
ADJUSTMENT_LIMIT = 100
A = TypeVar("A", bound=Aggregate)


def utc_now() -> datetime:
    return datetime.now(UTC)


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
        hold_working_hours: int = HOLD_WORKING_HOURS,
        adjustment_limit: int = ADJUSTMENT_LIMIT,
        batch_commands: bool = False,
    ) -> None:
        super().__init__(env)
        self.calendar = calendar
        #: How many open hours of the calendar a hold lives.
        self.hold_working_hours = hold_working_hours
        #: The largest adjustment (absolute credits) applied without approval.
        self.adjustment_limit = adjustment_limit
        self.clock = clock
        self.max_attempts = max_attempts
        #: Group commit of concurrent commands (``LEDGER_BATCH_COMMANDS``), or ``None``.
        self.batcher: Batcher | None = Batcher(self) if batch_commands else None

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

    # --- commands -------------------------------------------------------------

    def execute(
        self, command: Command[R], *, actor: Actor, idempotency_key: str | None = None
    ) -> R:
        """Run one command (``ledger.commands``) as ``actor``; with an
        idempotency key, a retry returns the first result. Raises what the
        command's docstring says, and ``PermissionDeniedError``,
        ``IdempotencyKeyReusedError``, ``ConcurrencyConflictError``,
        ``StoreUnavailableError``.

        With ``batch_commands``, the command is decided and appended together
        with those of other threads waiting at the same time
        (``ledger.commands.batch``), with the same answers and guarantees."""
        if self.batcher is not None:
            return self.batcher.run(command, actor, idempotency_key)
        return cycle.run(self, command, actor, idempotency_key)

    # Each verb builds its command (whose docstring says what it emits and
    # raises) and executes it.

    def open_account(
        self, customer_id: str, name: str, *, actor: Actor, idempotency_key: str | None = None
    ) -> OpenAccountResult:
        return self.execute(
            OpenAccount(customer_id, name), actor=actor, idempotency_key=idempotency_key
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
    ) -> IssueInvoiceResult:
        command = IssueInvoice(customer_id, package, credits, amount_usd)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def pay_invoice(
        self,
        invoice_id: UUID,
        payment_ref: str,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> InvoiceChangeResult:
        command = PayInvoice(invoice_id, payment_ref)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def void_invoice(
        self, invoice_id: UUID, reason: str, *, actor: Actor, idempotency_key: str | None = None
    ) -> InvoiceChangeResult:
        command = VoidInvoice(invoice_id, reason)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def adjust_balance(
        self,
        customer_id: str,
        credits: int,
        reason: str,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> AdjustBalanceResult:
        command = AdjustBalance(customer_id, credits, reason)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def approve_adjustment(
        self, adjustment_id: UUID, *, actor: Actor, idempotency_key: str | None = None
    ) -> AdjustmentDecisionResult:
        command = ApproveAdjustment(adjustment_id)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def reject_adjustment(
        self,
        adjustment_id: UUID,
        reason: str,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> AdjustmentDecisionResult:
        command = RejectAdjustment(adjustment_id, reason)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def record_subscription(
        self,
        customer_id: str,
        valid_from: date,
        valid_until: date,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> RecordSubscriptionResult:
        command = RecordSubscription(customer_id, valid_from, valid_until)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

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
    ) -> RequestChangeResult:
        command = OpenRequest(
            customer_id, category, channel, subject, from_version, to_version, third_party
        )
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def request_pre_quote(
        self,
        request_id: UUID,
        note: str | None = None,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> RequestChangeResult:
        command = RequestPreQuote(request_id, note)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def quote(
        self,
        request_id: UUID,
        price: int,
        surcharge: int = 0,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> QuoteResult:
        command = Quote(request_id, price, surcharge)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def accept_quote(
        self, request_id: UUID, *, actor: Actor, idempotency_key: str | None = None
    ) -> RequestChangeResult:
        command = AcceptQuote(request_id)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def decline_quote(
        self,
        request_id: UUID,
        reason: str | None = None,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> RequestChangeResult:
        command = DeclineQuote(request_id, reason)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def revise_price(
        self,
        request_id: UUID,
        price: int,
        reason: str,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> RequestChangeResult:
        command = RevisePrice(request_id, price, reason)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def start_work(
        self, request_id: UUID, *, actor: Actor, idempotency_key: str | None = None
    ) -> StartResult:
        command = StartWork(request_id)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def charge(
        self, request_id: UUID, *, actor: Actor, idempotency_key: str | None = None
    ) -> ChargeResult:
        command = Charge(request_id)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def refer(
        self, request_id: UUID, reason: str, *, actor: Actor, idempotency_key: str | None = None
    ) -> RequestChangeResult:
        command = Refer(request_id, reason)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def cancel(
        self,
        request_id: UUID,
        reason: str | None = None,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> RequestChangeResult:
        command = Cancel(request_id, reason)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def dispute(
        self, request_id: UUID, reason: str, *, actor: Actor, idempotency_key: str | None = None
    ) -> RequestChangeResult:
        command = Dispute(request_id, reason)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def refund(
        self,
        request_id: UUID,
        credits: int,
        reason: str,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> RefundResult:
        command = Refund(request_id, credits, reason)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def reject_dispute(
        self, request_id: UUID, reason: str, *, actor: Actor, idempotency_key: str | None = None
    ) -> RequestChangeResult:
        command = RejectDispute(request_id, reason)
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    def publish_price_list(
        self,
        data: dict[str, Any],
        effective_from: datetime | None = None,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> PublishPriceListResult:
        """Publish the next price list version from plain values (the shape
        of ``PriceList.to_data``; ``PublishPriceList``)."""
        unknown = set(data) - {
            "packages",
            "categories",
            "store_update",
            "minimums",
            "free_categories",
            "subscription_categories",
        }
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidInputError(name, f"{name} is not a field of a price list")
        command = PublishPriceList(
            packages=data.get("packages"),
            categories=data.get("categories"),
            store_update=data.get("store_update"),
            effective_from=effective_from,
            minimums=data.get("minimums"),
            free_categories=data.get("free_categories"),
            subscription_categories=data.get("subscription_categories"),
        )
        return self.execute(command, actor=actor, idempotency_key=idempotency_key)

    # --- queries --------------------------------------------------------------

    def price_lists(self) -> tuple[PriceList, ...]:
        """Every version of the price list, oldest first (version 1 first)."""
        return self._read(self._price_list_versions)

    def price_list_at(self, at: datetime | None = None) -> PriceList:
        """The version in force at ``at`` (now when not given)."""
        if at is not None and (at.tzinfo is None or at.utcoffset() is None):
            raise InvalidInputError("at", "at needs a time zone offset")
        return price_list_in_force(self.price_lists(), self.clock() if at is None else at)

    def get_account(self, customer_id: str) -> views.AccountView:
        """The account now, from the event store. Raises ``UnknownAccountError``."""
        account = self._read(lambda: self._account(customer_id))
        return views.account_view(account, self.today(), self.clock())

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
        return views.account_view(account, self.calendar.local_date(as_of), as_of)

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

    def today(self) -> date:
        """Today's date in the support calendar's time zone (the day by which
        a subscription is current)."""
        return self.calendar.local_date(self.clock())

    def list_adjustments(self, status: str | None = None) -> list[views.AdjustmentView]:
        """The large adjustments (four eyes), oldest first; only those in
        ``status`` ("proposed", "approved", "rejected") when given. Reads the
        proposals' notifications by topic, then each adjustment: fine for the
        few proposals finance handles, not a read model."""
        if status is not None and status not in {s.value for s in AdjustmentStatus}:
            known = ", ".join(s.value for s in AdjustmentStatus)
            raise InvalidInputError("status", f"status must be one of {known}, not {status!r}")
        topic = get_topic(Adjustment.AdjustmentProposed)

        def read() -> list[views.AdjustmentView]:
            found: list[views.AdjustmentView] = []
            start = 1
            while True:
                page = self.recorder.select_notifications(start=start, limit=500, topics=[topic])
                for notification in page:
                    adjustment = self._adjustment(notification.originator_id)  # type: ignore[arg-type]
                    if status is None or adjustment.status.value == status:
                        found.append(views.adjustment_view(adjustment))
                if len(page) < 500:
                    return found
                start = page[-1].id + 1

        return self._read(read)

    def position(self) -> int:
        """The global position of the newest stored event (0 when empty)."""
        return self._read(lambda: self.recorder.max_notification_id() or 0)

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
                Adjustment: UnknownAdjustmentError,
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

        While a batch of commands decides (on this thread), the aggregate as
        that batch left it (``ledger.commands.batch.WORKING``).
        """
        working = WORKING.get()
        if working is not None and version is None:
            return working.get(aggregate_id, snapshots)
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

    def _price_lists(self) -> PriceLists | None:
        """The price list stream, or ``None`` while only version 1 exists:
        one read of one small stream, and never a write."""
        found = self._load(PRICE_LISTS_ID)
        return found if isinstance(found, PriceLists) else None

    def _price_list_versions(self) -> tuple[PriceList, ...]:
        lists = self._price_lists()
        return (DEFAULT_PRICE_LIST,) if lists is None else tuple(lists.versions)

    def _price_list_at(self, at: datetime) -> PriceList:
        """The version in force at ``at``: a scheduled version is in force from
        its time on, with no process having to run."""
        return price_list_in_force(self._price_list_versions(), at)

    def _price_list(self, version: int) -> PriceList:
        """Version ``version`` (1 needs no read: it is the policy's)."""
        if version == DEFAULT_PRICE_LIST.version:
            return DEFAULT_PRICE_LIST
        return self._price_list_versions()[version - 1]

    def _request(self, request_id: UUID) -> SupportRequest:
        return self._get(SupportRequest, request_id, str(request_id))

    def _invoice(self, invoice_id: UUID) -> Invoice:
        return self._get(Invoice, invoice_id, str(invoice_id))

    def _adjustment(self, adjustment_id: UUID) -> Adjustment:
        return self._get(Adjustment, adjustment_id, str(adjustment_id))


def _replay_until(events: Iterable[Any], at: datetime) -> Any:
    """The aggregate as its events made it up to ``at`` (one pass over them)."""
    aggregate = None
    for event in events:
        if event.timestamp > at:
            break
        aggregate = event.mutate(aggregate)
    return aggregate
