"""What the stores keep (POLICY.md: "Nothing is ever updated or deleted"):
the database itself refuses to change or remove stored events; the ledger's
own types come back as the same types; snapshots load correctly; and an
event stored by an older version of the code is upcast when read."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from psycopg import sql

from ledger.aggregates import (
    CustomerAccount,
    Invoice,
    InvoiceStatus,
    RequestStatus,
    SupportRequest,
    account_id_for,
)
from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.errors import LedgerCorruptionError
from ledger.policy import Category
from ledger.settings import LedgerSettings
from ledger.values import Actor, Role, SubscriptionPeriod
from tests.application.conftest import LedgerFactory
from tests.support.domain import FINANCE, HELPDESK, SPECIALIST
from tests.support.ledger import funded_customer, open_request

REQUEST_OPENED_TOPIC = "ledger.aggregates.request:SupportRequest.RequestOpened"


# --- append-only, enforced by the database ------------------------------------

PG_CHANGES = {
    "UPDATE": "UPDATE ledger_events SET topic = 'tampered' WHERE originator_id = %s",
    "DELETE": "DELETE FROM ledger_events WHERE originator_id = %s",
    "TRUNCATE": "TRUNCATE ledger_events",
}


def _pg_rows(url: str, originator_id: UUID) -> list[tuple[object, ...]]:
    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.execute(
            "SELECT originator_version, topic, state, notification_id FROM ledger_events "
            "WHERE originator_id = %s ORDER BY originator_version",
            (originator_id,),
        ).fetchall()


@pytest.mark.postgres
def test_postgres_refuses_to_update_delete_or_truncate_stored_events(
    fresh_postgres_url: str,
) -> None:
    # A database of its own: should the refusal ever fail, nothing shared is lost.
    ledger = open_ledger(LedgerSettings(database_url=fresh_postgres_url, support_hours="24/7"))
    try:
        customer_id = funded_customer(ledger, 80)
    finally:
        ledger.close()
    account_id = account_id_for(customer_id)
    rows = _pg_rows(fresh_postgres_url, account_id)
    assert len(rows) == 2

    for operation, statement in PG_CHANGES.items():
        with psycopg.connect(fresh_postgres_url, connect_timeout=10) as conn:
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(statement, (account_id,) if "%s" in statement else None)
            assert "append-only" in str(refused.value), operation
            assert operation in str(refused.value)
        assert _pg_rows(fresh_postgres_url, account_id) == rows, operation


def test_sqlite_refuses_to_update_or_delete_stored_events(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = open_ledger(LedgerSettings(database_url=f"sqlite:///{path}", support_hours="24/7"))
    try:
        customer_id = funded_customer(ledger, 80)
    finally:
        ledger.close()
    account_id = account_id_for(customer_id).hex
    select = "SELECT * FROM stored_events WHERE originator_id = ? ORDER BY originator_version"

    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(select, (account_id,)).fetchall()
        assert len(rows) == 2
        for operation, statement in {
            "UPDATE": "UPDATE stored_events SET topic = 'tampered' WHERE originator_id = ?",
            "DELETE": "DELETE FROM stored_events WHERE originator_id = ?",
        }.items():
            with pytest.raises(sqlite3.DatabaseError) as refused:
                conn.execute(statement, (account_id,))
            conn.rollback()
            assert "append-only" in str(refused.value), operation
            assert operation in str(refused.value)
            assert conn.execute(select, (account_id,)).fetchall() == rows, operation
    finally:
        conn.close()


# --- the ledger's types round-trip through the store -----------------------------


def test_dates_enums_actors_and_periods_come_back_as_the_same_types(
    ledger: Ledger, make_ledger: LedgerFactory
) -> None:
    customer_id = funded_customer(ledger, 100)
    ledger.record_subscription(customer_id, date(2026, 3, 1), date(2027, 3, 1), actor=FINANCE)
    request_id = open_request(ledger, customer_id, "addon_update")
    ledger.charge(request_id, actor=SPECIALIST)
    invoice = ledger.issue_invoice(customer_id, credits=7, amount_usd="7.35", actor=FINANCE)
    invoice_id = invoice.invoice_id

    fresh = make_ledger()
    account = fresh.repository.get(account_id_for(customer_id))
    request = fresh.repository.get(request_id)
    stored_invoice = fresh.repository.get(invoice_id)

    assert isinstance(account, CustomerAccount)
    [period] = account.subscriptions
    assert period == SubscriptionPeriod(date(2026, 3, 1), date(2027, 3, 1))
    assert type(period) is SubscriptionPeriod and type(period.valid_from) is date
    assert isinstance(request, SupportRequest)
    assert request.category is Category.ADDON_UPDATE
    assert request.status is RequestStatus.CHARGED
    assert isinstance(stored_invoice, Invoice)
    assert stored_invoice.status is InvoiceStatus.ISSUED
    assert stored_invoice.amount_usd == Decimal("7.35")
    assert type(stored_invoice.amount_usd) is Decimal
    opened = next(iter(fresh.events.get(request_id)))
    assert opened.actor == HELPDESK
    assert type(opened.actor) is Actor and opened.actor.role is Role.HELPDESK
    assert opened.category is Category.ADDON_UPDATE


def test_enums_in_snapshots_come_back_as_the_same_members(
    ledger: Ledger, make_ledger: LedgerFactory
) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id, "investigation")
    ledger.request_pre_quote(request_id, actor=HELPDESK)
    invoice_id = ledger.issue_invoice(customer_id, package=80, actor=FINANCE).invoice_id
    ledger.void_invoice(invoice_id, "Mistake", actor=FINANCE)
    ledger.take_snapshot(request_id)
    ledger.take_snapshot(invoice_id)

    fresh = make_ledger()
    assert fresh.snapshots is not None
    [request_snapshot] = fresh.snapshots.get(request_id)
    [invoice_snapshot] = fresh.snapshots.get(invoice_id)

    assert request_snapshot.state["status"] is RequestStatus.AWAITING_QUOTE
    assert request_snapshot.state["category"] is Category.INVESTIGATION
    assert invoice_snapshot.state["status"] is InvoiceStatus.VOIDED
    request = fresh.repository.get(request_id)
    assert (request.status, request.category, request.version) == (
        RequestStatus.AWAITING_QUOTE,
        Category.INVESTIGATION,
        2,
    )
    # Loaded from the snapshot, the request goes on living normally.
    fresh.quote(request_id, 25, actor=SPECIALIST)
    assert fresh.get_request(request_id).status == "quoted"


# --- snapshots -------------------------------------------------------------


def test_an_account_with_more_than_two_snapshot_intervals_of_events_loads_correctly(
    make_ledger: LedgerFactory,
) -> None:
    interval = 5
    ledger = make_ledger(snapshot_interval=interval)
    customer_id = funded_customer(ledger, 80)  # events 1 and 2
    ledger.record_subscription(  # event 3, inside every snapshot
        customer_id, date(2026, 1, 1), date(2027, 1, 1), actor=FINANCE
    )
    for credits in range(1, 11):  # events 4 .. 13
        ledger.adjust_balance(customer_id, credits, f"Goodwill {credits}", actor=FINANCE)
    account_id = account_id_for(customer_id)
    assert ledger.snapshots is not None
    assert ledger.snapshots.recorder.events_table_name in ("ledger_snapshots", "stored_snapshots")
    snapshot_versions = [
        s.originator_version for s in ledger.snapshots.recorder.select_events(account_id)
    ]
    assert snapshot_versions == [5, 10]

    fresh = make_ledger(snapshot_interval=interval)
    account = fresh.get_account(customer_id)

    assert (account.version, account.balance, account.adjusted, account.purchased) == (
        13,
        80 + 55,
        55,
        80,
    )
    assert account.update_subscription == SubscriptionPeriod(date(2026, 1, 1), date(2027, 1, 1))
    assert fresh.get_account_as_of(customer_id, fresh.clock()).balance == 135
    assert fresh.repository.get(account_id, version=11).balance == 80 + 36


def test_each_snapshot_holds_exactly_the_state_its_events_replay_to(
    make_ledger: LedgerFactory,
) -> None:
    # Snapshots are taken of the aggregate just saved, in memory: they must be
    # what a replay of the stored events up to their version gives.
    ledger = make_ledger(snapshot_interval=3)
    customer_id = funded_customer(ledger, 80)
    ledger.record_subscription(customer_id, date(2026, 1, 1), date(2027, 1, 1), actor=FINANCE)
    for credits in (5, -3, 7, 11):
        ledger.adjust_balance(customer_id, credits, "Correction", actor=FINANCE)
    request_id = open_request(ledger, customer_id, "installation")
    ledger.charge(request_id, actor=SPECIALIST)
    account_id = account_id_for(customer_id)
    assert ledger.snapshots is not None
    snapshots = list(ledger.snapshots.get(account_id))
    assert [s.originator_version for s in snapshots] == [3, 6]

    def state(aggregate: object) -> dict[str, object]:
        return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}

    events = list(ledger.events.get(account_id))
    for snapshot in snapshots:
        replayed = None
        for event in events[: snapshot.originator_version]:
            replayed = event.mutate(replayed)
        assert state(snapshot.mutate(None)) == state(replayed)


def _forge_snapshot(ledger: Ledger, customer_id: str, version: int, balance: int) -> None:
    """What an attacker with write access to the snapshots table does: a
    snapshot of the account at ``version`` whose balance says ``balance``."""
    account = ledger.repository.get(account_id_for(customer_id), version=version)
    account.balance = balance
    assert ledger.snapshots is not None
    ledger.snapshots.put([CustomerAccount.Snapshot.take(account)])


def test_a_forged_account_snapshot_is_refused_at_the_next_event_after_it(
    make_ledger: LedgerFactory,
) -> None:
    ledger = make_ledger()
    customer_id = funded_customer(ledger, 80)  # events 1 and 2
    ledger.adjust_balance(customer_id, 5, "Goodwill", actor=FINANCE)  # event 3: 85
    _forge_snapshot(ledger, customer_id, version=2, balance=100_000)

    restarted = make_ledger()  # a new process: nothing cached
    with pytest.raises(LedgerCorruptionError) as corrupted:
        restarted.get_account(customer_id)
    with pytest.raises(LedgerCorruptionError):
        open_request(restarted, customer_id, "installation")

    error = corrupted.value
    assert (error.customer_id, error.version, error.what) == (customer_id, 3, "balance")
    assert (error.expected, error.found) == (100_005, 85)
    # The events themselves are intact: a replay of them alone still adds up.
    at = restarted.clock()
    assert restarted.get_account_as_of(customer_id, at).balance == 85


@pytest.mark.postgres
def test_snapshot_rows_are_written_to_the_postgres_snapshots_table(
    postgres_url: str,
) -> None:
    ledger = open_ledger(
        LedgerSettings(database_url=postgres_url, support_hours="24/7", snapshot_interval=2)
    )
    try:
        customer_id = funded_customer(ledger, 80)
        ledger.adjust_balance(customer_id, 1, "Goodwill", actor=FINANCE)
        ledger.adjust_balance(customer_id, 1, "Goodwill", actor=FINANCE)
    finally:
        ledger.close()

    with psycopg.connect(postgres_url, connect_timeout=10) as conn:
        versions = conn.execute(
            sql.SQL(
                "SELECT originator_version FROM ledger_snapshots WHERE originator_id = %s "
                "ORDER BY originator_version"
            ),
            (account_id_for(customer_id),),
        ).fetchall()
    assert versions == [(2,), (4,)]


# --- upcasting -------------------------------------------------------------


def test_a_version_one_request_opened_without_a_channel_is_read_as_helpdesk(
    ledger: Ledger, make_ledger: LedgerFactory
) -> None:
    customer_id = funded_customer(ledger, 100)
    current = ledger.recorder.select_events(open_request(ledger, customer_id))[0]
    assert current.topic == REQUEST_OPENED_TOPIC
    state = json.loads(current.state)
    assert (state.pop("channel"), state.pop("class_version")) == ("helpdesk", 3)
    assert state.pop("price_list_version") == 1
    old_id = uuid4()

    ledger.recorder.insert_events(
        [
            StoredEvent(
                originator_id=old_id,
                originator_version=1,
                topic=REQUEST_OPENED_TOPIC,
                state=json.dumps(state).encode(),
            )
        ]
    )

    fresh = make_ledger()
    request = fresh.repository.get(old_id)
    assert isinstance(request, SupportRequest)
    assert request.channel == "helpdesk"
    assert (request.category, request.price, request.customer_id) == (
        Category.INSTALLATION,
        20,
        customer_id,
    )
    # The old request goes on living with today's code.
    assert fresh.charge(old_id, actor=SPECIALIST).balance == 80


# --- the append: one statement, under the table lock --------------------------


def _stored(originator_id: UUID, version: int) -> StoredEvent:
    return StoredEvent(
        originator_id=originator_id, originator_version=version, topic="test:Event", state=b"{}"
    )


@pytest.mark.postgres
def test_an_append_returns_positions_in_order_and_a_clash_stores_none_of_its_events(
    postgres_url: str,
) -> None:
    ledger = open_ledger(LedgerSettings(database_url=postgres_url, support_hours="24/7"))
    try:
        first, second = uuid4(), uuid4()
        positions = ledger.recorder.insert_events([_stored(first, 1), _stored(second, 1)])
        assert positions is not None and len(positions) == 2
        assert positions[1] == positions[0] + 1

        with pytest.raises(IntegrityError):  # second's version 1 exists
            ledger.recorder.insert_events([_stored(first, 2), _stored(second, 1)])
        assert [e.originator_version for e in ledger.recorder.select_events(first)] == [1]
    finally:
        ledger.close()


@pytest.mark.postgres
def test_an_append_waits_for_the_table_lock_so_positions_commit_in_order(
    postgres_url: str,
) -> None:
    # Readers tail the log by position: a writer must not commit a position
    # while another holds the lock with a lower one still uncommitted.
    ledger = open_ledger(LedgerSettings(database_url=postgres_url, support_hours="24/7"))
    done = threading.Event()
    try:
        with psycopg.connect(postgres_url, connect_timeout=10) as holder:
            holder.execute("LOCK TABLE ledger_events IN EXCLUSIVE MODE")  # until commit
            writer = threading.Thread(
                target=lambda: (ledger.recorder.insert_events([_stored(uuid4(), 1)]), done.set())
            )
            writer.start()
            assert not done.wait(0.5)  # blocked behind the lock
        writer.join(10)
        assert done.is_set()  # and through once it was released
    finally:
        ledger.close()
