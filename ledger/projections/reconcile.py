"""Reconciliation: every account aggregate, replayed from the events,
against the read models (``ledger reconcile``).

Invariants owned here:
- it reports, never repairs: the answer is a list of readable differences,
  empty when the read models agree with the events;
- a difference is a line, never a traceback: a read model that cannot
  process an event (the FIFO lots run out, say), an account that cannot be
  loaded or compared, each becomes a line naming the read model or the
  account; only an unreachable store is raised (``StoreUnavailableError``);
- per account it compares the balances row, the sum and the last
  ``balance_after`` of the movements, and the credits left in the FIFO lots;
  then the totals (summary against balances, against the lots).
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger.aggregates import CustomerAccount, account_id_for
from ledger.application import Ledger
from ledger.errors import ProjectionFailedError, StoreUnavailableError, UnknownAccountError
from ledger.projections import balances, movements, summary
from ledger.projections.control import LOCK_WAIT_S, Projections
from ledger.projections.fifo import LotsExhaustedError
from ledger.projections.rows import ReadModelBehindError

PAGE = 1000
COMPARED = ("name", "balance", "purchased", "charged", "refunded", "adjusted")


def reconcile(ledger: Ledger, projections: Projections) -> list[str]:
    """Compare every account aggregate with the read models; return readable
    differences (``[]`` when they agree)."""
    differences = _settle(ledger, projections)
    settled = not differences
    for customer_id in _customer_ids(ledger):
        found = _compare_account(ledger, projections, customer_id)
        if found and settled:
            # A write may have landed between the two reads: settle, look again.
            _settle(ledger, projections)
            found = _compare_account(ledger, projections, customer_id)
        differences += found
    differences += _compare_totals(projections)
    return differences


def _settle(ledger: Ledger, projections: Projections) -> list[str]:
    """Bring the read models up to the store's newest event; what stops them,
    as difference lines."""
    position = ledger.position()
    try:
        try:
            projections.wait_for(position, timeout_s=0.5)
        except ReadModelBehindError:
            projections.catch_up()
            projections.wait_for(position, timeout_s=LOCK_WAIT_S)
    except ReadModelBehindError as e:
        return [f"read models: {e}"]
    except StoreUnavailableError:
        raise
    except LotsExhaustedError as e:
        return [_lots_line(ledger, e)]
    except ProjectionFailedError as e:  # the worker names the model; the cause says why
        if isinstance(e.__cause__, LotsExhaustedError):
            return [_lots_line(ledger, e.__cause__)]
        return [f"read models: {e.detail}"]
    except Exception as e:  # any event a read model cannot apply is a difference
        return [f"read models: cannot process the events: {type(e).__name__}: {e}"]
    return []


def _lots_line(ledger: Ledger, e: LotsExhaustedError) -> str:
    where = f" at position {e.position}" if e.position is not None else ""
    account = f"{_customer_of(ledger, e.account_id)}: " if e.account_id is not None else ""
    return f"{account}the summary's FIFO lots cannot take the event{where}: {e.reason}"


def _customer_of(ledger: Ledger, account_id: UUID) -> str:
    """The customer id of an account (from its first event), else the account id."""
    try:
        first = ledger.recorder.select_events(account_id, limit=1)
        event = ledger.mapper.to_domain_event(first[0]) if first else None
    except Exception:  # naming is best effort: the line is what matters
        event = None
    if isinstance(event, CustomerAccount.Opened):
        return str(event.customer_id)
    return f"account {account_id}"


def _customer_ids(ledger: Ledger) -> Iterator[str]:
    topic = [get_topic(CustomerAccount.Opened)]
    start = 1
    while True:
        notes = ledger.recorder.select_notifications(start, PAGE, topics=topic)
        for note in notes:
            event = ledger.mapper.to_domain_event(note)
            assert isinstance(event, CustomerAccount.Opened)  # selected by topic
            yield event.customer_id
        if len(notes) < PAGE:
            return
        start = notes[-1].id + 1


def _compare_account(ledger: Ledger, projections: Projections, customer_id: str) -> list[str]:
    try:
        return _compare(ledger, projections, customer_id)
    except StoreUnavailableError:
        raise
    except UnknownAccountError:
        return [f"{customer_id}: in the event store's log but not loadable"]
    except Exception as e:  # a corrupt account is a difference, not a crash
        return [f"{customer_id}: cannot be compared: {type(e).__name__}: {e}"]


def _compare(ledger: Ledger, projections: Projections, customer_id: str) -> list[str]:
    account = ledger.get_account(customer_id)
    store = projections.store
    with store.reading() as cur:
        row = balances.get(cur, store, customer_id)
        moved = movements.totals(cur, customer_id)
        in_lots = summary.remaining(cur, store, account_id_for(customer_id))
    if row is None:
        return [f"{customer_id}: balance {account.balance} missing from the balances"]
    out = []
    for field in COMPARED:
        expected, got = getattr(account, field), getattr(row, field)
        if expected != got:
            out.append(f"{customer_id}: {field} is {expected} in the events, {got} in balances")
    if moved.amount != account.balance:
        out.append(
            f"{customer_id}: balance is {account.balance} in the events, "
            f"movements sum to {moved.amount}"
        )
    if moved.last_balance_after != account.balance:
        out.append(
            f"{customer_id}: balance is {account.balance} in the events, "
            f"the last movement's balance_after is {moved.last_balance_after}"
        )
    if in_lots != account.balance:
        out.append(
            f"{customer_id}: balance is {account.balance} in the events, "
            f"its FIFO lots hold {in_lots}"
        )
    return out


def _compare_totals(projections: Projections) -> list[str]:
    with projections.store.reading() as cur:
        balances_total = balances.total(cur)
        row = summary.get(cur)
        lots = summary.read_lots(cur)
    out = []
    if row.credits_outstanding != balances_total:
        out.append(
            f"summary: credits outstanding {row.credits_outstanding}, "
            f"balances sum to {balances_total}"
        )
    in_lots = sum(lot.remaining for lot in lots)
    if in_lots != row.credits_outstanding:
        out.append(
            f"summary: credits outstanding {row.credits_outstanding}, FIFO lots hold {in_lots}"
        )
    return out
