"""Each read model's rows after a realistic story, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import fields
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.bootstrap import Services, open_services
from ledger.errors import StoreUnavailableError
from ledger.persistence.store import SQLiteStore
from ledger.projections import Projections, ReadModelBehindError, reconcile, runner
from ledger.projections.requests import COLUMNS, _opened
from ledger.projections.rows import RequestRow
from ledger.settings import LedgerSettings
from ledger.values import SubscriptionPeriod
from tests.projections.story import FINANCE, HELPDESK, tell


def test_balances_follow_every_credit_movement(ledger: Ledger, services: Services) -> None:
    story = tell(ledger)
    services.projections.catch_up()
    services.projections.wait_for(story.last_position, timeout_s=0)
    acme = services.queries.balance("acme")
    assert acme is not None
    assert (acme.name, acme.balance, acme.purchased, acme.charged) == ("Acme Ltd", 123, 180, 65)
    assert (acme.refunded, acme.adjusted) == (15, -7)
    assert acme.subscriptions == (SubscriptionPeriod(date(2026, 1, 1), date(2027, 1, 1)),)
    assert acme.position == story.last_position
    bolt = services.queries.balance("bolt")
    assert bolt is not None
    assert (bolt.balance, bolt.purchased, bolt.charged, bolt.adjusted) == (115, 160, 60, 15)
    assert services.queries.balance("nobody") is None


def test_movements_are_the_audit_trail_in_store_order(ledger: Ledger, services: Services) -> None:
    story = tell(ledger)
    services.projections.catch_up()
    rows = services.queries.movements(customer_id="acme")
    assert [(m.kind, m.amount, m.balance_after) for m in rows] == [
        ("purchase", 80, 80),
        ("purchase", 100, 180),
        ("charge", -20, 160),
        ("charge", -20, 140),
        ("refund", 5, 145),
        ("refund", 10, 155),
        ("charge", -25, 130),
        ("charge", 0, 130),
        ("adjustment", -7, 123),
    ]
    assert [m.position for m in rows] == sorted(m.position for m in rows)
    assert rows[0].invoice_id is not None and rows[0].request_id is None
    assert rows[4].request_id == story.requests["refunded"]
    assert (rows[4].actor, rows[4].reason) == ("specialist:ana", "partly")
    assert (rows[-1].actor, rows[-1].reason) == ("finance:finance-1", "correction")
    everyone = services.queries.movements(limit=1000)
    assert len(everyone) == 13 and {m.customer_id for m in everyone} == {"acme", "bolt"}


def test_movements_page_by_position_and_filter_by_time(ledger: Ledger, services: Services) -> None:
    tell(ledger)
    services.projections.catch_up()
    everyone = services.queries.movements(limit=1000)
    first = services.queries.movements(limit=5)
    second = services.queries.movements(limit=5, after_position=first[-1].position)
    assert first + second == everyone[:10]
    assert list(services.queries.iter_movements(chunk=4)) == everyone
    assert list(services.queries.iter_movements(customer_id="bolt", chunk=2)) == [
        m for m in everyone if m.customer_id == "bolt"
    ]
    middle = everyone[6].at
    assert services.queries.movements(since=middle, limit=1000) == [
        m for m in everyone if m.at >= middle
    ]
    assert services.queries.movements(until=middle, limit=1000) == [
        m for m in everyone if m.at < middle
    ]
    assert services.queries.movements(since=middle + timedelta(days=1)) == []


def test_requests_show_status_price_and_money(ledger: Ledger, services: Services) -> None:
    story = tell(ledger)
    services.projections.catch_up()

    def row(key: str) -> tuple[object, ...]:
        r = services.queries.request(story.requests[key])
        assert r is not None
        return (r.status, r.price, r.agreed_price, r.charged, r.refunded, r.revisions)

    assert row("charged") == ("charged", 20, None, 20, 0, 0)
    assert row("refunded") == ("refunded", 20, None, 20, 15, 0)
    assert row("rejected") == ("dispute_rejected", 10, None, 10, 0, 0)
    assert row("declined") == ("declined", 30, None, None, 0, 0)
    assert row("complex") == ("charged", 50, 50, 50, 0, 1)
    assert row("cancelled") == ("cancelled", 10, None, None, 0, 0)
    assert row("referred") == ("referred", 20, None, None, 0, 0)
    assert row("free") == ("charged", 0, None, 0, 0, 0)
    update = services.queries.request(story.requests["update"])
    assert update is not None
    assert (update.category, update.from_version, update.to_version) == (
        "store_update",
        "4.4.1",
        "4.4.4",
    )
    assert (update.customer_id, update.subject, update.third_party) == (
        "acme",
        "subject update",
        False,
    )
    assert update.closed_at is not None and update.closed_at >= update.opened_at
    cancelled = services.queries.request(story.requests["cancelled"])
    assert cancelled is not None and cancelled.closed_at is not None
    open_one = ledger.open_request("acme", "configuration", "helpdesk", "new", actor=HELPDESK)
    services.projections.catch_up()
    still_open = services.queries.request(open_one.request_id)
    assert still_open is not None and still_open.closed_at is None
    assert still_open.position == open_one.position


def test_summary_totals_and_fifo_liability(ledger: Ledger, services: Services) -> None:
    story = tell(ledger)
    services.projections.catch_up()
    summary = services.queries.summary()
    assert summary.credits_sold == 340  # the voided invoice is not sold
    assert summary.usd_received == Decimal("320.00")
    assert (summary.credits_charged, summary.credits_refunded) == (125, 15)
    assert summary.credits_adjusted == 8
    assert summary.credits_outstanding == 238 == 123 + 115
    # acme: 23 left of 80 @ 90.00 and 100 of 100 @ 50.00; bolt: 100 of 160 @ 180.00
    # and 15 goodwill @ 0: 25.875 + 50 + 112.5 = 188.375
    assert summary.liability_usd == Decimal("188.38")
    assert summary.position == story.last_position


def test_read_models_run_in_the_background(ledger: Ledger, services: Services) -> None:
    services.projections.start()
    services.projections.start()  # idempotent
    try:
        story = tell(ledger)
        services.projections.wait_for(story.last_position, timeout_s=10)
        balance = services.queries.balance("acme")
        assert balance is not None and balance.balance == 123
        lag = services.projections.lag()
        assert {name: lag[name] for name in services.projections.names} == dict.fromkeys(
            services.projections.names, 0
        )
    finally:
        services.projections.stop()
        services.projections.stop()


def test_wait_for_times_out_when_the_runner_is_stopped(ledger: Ledger, services: Services) -> None:
    services.projections.wait_for(None, timeout_s=0)
    ledger.open_account("c1", "One", actor=HELPDESK)
    invoice = ledger.issue_invoice("c1", package=80, actor=FINANCE)
    paid = ledger.pay_invoice(invoice.invoice_id, "ref", actor=FINANCE)
    with pytest.raises(ReadModelBehindError) as raised:
        services.projections.wait_for(paid.position, timeout_s=0.2, names=["balances"])
    assert (raised.value.read_model, raised.value.position, raised.value.processed) == (
        "balances",
        paid.position,
        0,
    )
    assert services.projections.lag()["balances"] == 4
    services.projections.start()
    try:
        services.projections.wait_for(paid.position, timeout_s=10)
    finally:
        services.projections.stop()
    # A position past the newest event is processed: no event lies in between.
    services.projections.wait_for(paid.position + 1000, timeout_s=0)


def test_a_position_the_model_has_no_use_for_counts_as_processed(
    ledger: Ledger, services: Services
) -> None:
    ledger.open_account("c1", "One", actor=HELPDESK)
    services.projections.catch_up()
    issued = ledger.issue_invoice("c1", package=80, actor=FINANCE)  # no read model uses it
    with pytest.raises(ReadModelBehindError):
        services.projections.wait_for(issued.position, timeout_s=0.1, names=["summary"])
    services.projections.catch_up()
    services.projections.wait_for(issued.position, timeout_s=0, names=["summary"])
    assert services.projections.positions()["summary"] == issued.position


def test_rebuild_gives_the_same_rows(ledger: Ledger, services: Services) -> None:
    from tests.projections.conftest import dump

    tell(ledger)
    services.projections.catch_up()
    before = dump(services.projections)
    seen: list[tuple[int, int]] = []
    assert services.projections.rebuild(progress=lambda done, total: seen.append((done, total))) > 0
    assert dump(services.projections) == before
    assert seen[-1][0] == seen[-1][1] == ledger.position()
    assert services.projections.rebuild(["movements"]) > 0
    assert dump(services.projections) == before
    assert reconcile(ledger, services.projections) == []


def test_rebuild_while_running_pauses_and_resumes_the_runner(
    ledger: Ledger, services: Services
) -> None:
    story = tell(ledger)
    services.projections.start()
    try:
        services.projections.wait_for(story.last_position, timeout_s=10)
        assert services.projections.rebuild(["summary"]) > 0
        later = ledger.adjust_balance("bolt", 1, "rounding", actor=FINANCE)
        services.projections.wait_for(later.position, timeout_s=10)
        assert services.queries.summary().credits_adjusted == 9
    finally:
        services.projections.stop()


@pytest.mark.postgres
def test_gaps_left_by_rolled_back_writes_are_passed_over(fresh_postgres_url: str) -> None:
    services = open_services(LedgerSettings(database_url=fresh_postgres_url, support_hours="24/7"))
    ledger = services.ledger
    try:
        ledger.open_account("c1", "One", actor=HELPDESK)
        services.projections.catch_up()
        burned = burn_positions(services.projections, 5)
        adjusted = ledger.adjust_balance("c1", 3, "goodwill", actor=FINANCE)
        assert adjusted.position == burned + 1
        services.projections.wait_for(burned, timeout_s=0)  # nothing was ever stored there
        with pytest.raises(ReadModelBehindError):
            services.projections.wait_for(adjusted.position, timeout_s=0.05)
        services.projections.catch_up()
        services.projections.wait_for(adjusted.position, timeout_s=0)
        balance = services.queries.balance("c1")
        assert balance is not None
        assert (balance.balance, balance.position) == (3, adjusted.position)
    finally:
        services.close()


def burn_positions(projections: Projections, count: int) -> int:
    """Take positions as writes that roll back do: the store's ids get a gap.
    (SQLite reuses a rolled-back rowid, so only PostgreSQL has gaps.)"""
    writer = projections.store.writer()
    try:
        with writer.transaction() as cur:
            for _ in range(count):
                row = cur.run("SELECT nextval('ledger_events_notification_id_seq')").one()
        assert row is not None
        return int(row[0])
    finally:
        writer.close()


def test_a_read_when_the_store_is_unreachable_says_so() -> None:
    store = SQLiteStore("/nonexistent-dir/ledger.db", "stored_events")
    with pytest.raises(StoreUnavailableError), store.reading() as cur:
        cur.run("SELECT 1")


def test_a_batch_is_written_for_every_read_model_or_for_none(
    ledger: Ledger, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # All read models take a batch in one transaction; when one of them was
    # moved by another worker meanwhile, none of them keeps any of it.
    story = tell(ledger)
    worker = services.projections.worker()
    held = worker.acquire()
    real_move = runner.move_tracking
    refused: list[str] = []

    def move_but_not_summary(cur: Any, name: str, old: int, new: int) -> bool:
        if name == "summary" and not refused:
            refused.append(name)
            return False  # as if another worker had moved it first
        return real_move(cur, name, old, new)

    monkeypatch.setattr(runner, "move_tracking", move_but_not_summary)
    try:
        worker.step(held)
        assert refused == ["summary"]
        assert set(services.projections.positions().values()) == {0}
        assert services.queries.balance("acme") is None

        worker.catch_up(held)  # read again: now it goes through
    finally:
        worker.close()
    assert set(services.projections.positions().values()) == {story.last_position}
    assert services.queries.balance("acme") is not None


@pytest.mark.parametrize("batch", [3, 2000])
def test_rebuild_through_copy_gives_the_same_rows(
    ledger: Ledger, services: Services, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """With every write of many rows staged through ``COPY`` (on PostgreSQL;
    SQLite keeps ``executemany``), in batches that split aggregates (3: rows
    updated from an earlier batch) or hold them whole."""
    from ledger.projections import base
    from tests.projections.conftest import dump

    for prefix in ("x-", "y-"):
        tell(ledger, prefix)
    services.projections.catch_up()
    before = dump(services.projections)
    monkeypatch.setattr(base, "STAGE_MIN_ROWS", 1)
    services.projections.rebuild_batch_size = batch

    assert services.projections.rebuild() > 0
    assert dump(services.projections) == before
    assert reconcile(ledger, services.projections) == []


def test_the_requests_mirror_holds_exactly_a_request_rows_fields(ledger: Ledger) -> None:
    """The requests read model's mirror is built from ``RequestOpened`` and
    written as the table's values: it holds every field of a ``RequestRow``
    (the one definition of a request's state), and only those."""
    ledger.open_account("mirror", "Mirror", actor=HELPDESK)
    request_id = ledger.open_request(
        "mirror", "configuration", "helpdesk", "s", actor=HELPDESK
    ).request_id
    [opened] = list(ledger.events.get(request_id))
    mirror = _opened(opened, 7)
    names = {f.name for f in fields(RequestRow)}
    assert set(vars(mirror)) == names
    assert {c.strip() for c in COLUMNS.split(",")} == names
