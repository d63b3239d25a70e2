"""The hash chain: maintained exactly once, verified from the store, and any
rewrite of stored history found at its first position with its kind."""

from __future__ import annotations

import sqlite3
import time
import tracemalloc
from collections.abc import Callable
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from ledger.audit.chain import GENESIS, event_digest, next_link
from ledger.bootstrap import open_services
from ledger.settings import LedgerSettings
from tests.audit.conftest import Story, tamper_sqlite, tell_story


def test_an_untouched_store_verifies_with_its_head(story: Story) -> None:
    result = story.audit.verify()

    assert result.ok
    assert result.checked == result.head.count == story.ledger.position()
    assert result.head.position == story.ledger.position()


def test_each_link_hashes_the_previous_link_and_the_stored_event(story: Story) -> None:
    link = GENESIS
    notifications = story.ledger.recorder.select_notifications(start=None, limit=1000)
    for n in notifications:
        link = next_link(link, n.id, event_digest(n))

    assert story.audit.head().link == link


def test_catching_up_twice_chains_each_event_once(story: Story) -> None:
    count = story.audit.head().count

    assert story.audit.catch_up() == 0
    tell_story(story.ledger, f"cust-{uuid4().hex[:8]}")
    added = story.audit.catch_up(batch=3)

    assert added == story.ledger.position() - count
    assert story.audit.head().count == story.ledger.position()
    assert story.audit.verify().ok


def test_events_stored_after_the_head_are_counted_not_judged(story: Story) -> None:
    tell_story(story.ledger, f"cust-{uuid4().hex[:8]}")

    result = story.audit.verify()

    assert result.ok
    assert result.unchained == story.ledger.position() - result.head.position > 0


def test_the_chain_table_refuses_updates_and_deletes(story: Story) -> None:
    writer = story.audit.store.writer()
    try:
        for statement in ("DELETE FROM ledger_chain", "UPDATE ledger_chain SET count = 0"):
            with (
                pytest.raises((sqlite3.DatabaseError, psycopg.Error), match="append-only"),
                writer.transaction() as cur,
            ):
                cur.run(statement)
    finally:
        writer.close()
    assert story.audit.verify().ok


# --- tampering on PostgreSQL, as a superuser that bypasses the trigger ----------


def _tamper(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # triggers off
        for statement in statements:
            conn.execute(statement)


def _position_of(story: Story, event_name: str) -> int:
    notifications = story.ledger.recorder.select_notifications(start=None, limit=1000)
    return next(n.id for n in notifications if n.topic.endswith("." + event_name))


def _change(story: Story) -> int:
    p = _position_of(story, "CreditsCharged")
    _tamper(
        story.url,
        "UPDATE ledger_events SET state = convert_to(replace(convert_from(state, 'UTF8'), "
        f"'\"amount\":-25', '\"amount\":-2'), 'UTF8') WHERE notification_id = {p}",
    )
    return p


def _delete(story: Story) -> int:
    p = _position_of(story, "ChargeDisputed")
    _tamper(story.url, f"DELETE FROM ledger_events WHERE notification_id = {p}")
    return p


def _insert(story: Story) -> int:
    # A forged copy of a real event under a new id, at a position in the
    # chained range that no event holds (0, before the first).
    p = _position_of(story, "CreditsPurchased")
    _tamper(
        story.url,
        "INSERT INTO ledger_events (originator_id, originator_version, topic, state, "
        f"notification_id) SELECT gen_random_uuid(), 2, topic, state, 0 FROM ledger_events "
        f"WHERE notification_id = {p}",
    )
    return 0


def _reorder(story: Story) -> int:
    p1 = _position_of(story, "CreditsPurchased")
    p2 = _position_of(story, "CreditsCharged")
    _tamper(
        story.url,
        f"UPDATE ledger_events SET notification_id = -1 WHERE notification_id = {p1}",
        f"UPDATE ledger_events SET notification_id = {p1} WHERE notification_id = {p2}",
        f"UPDATE ledger_events SET notification_id = {p2} WHERE notification_id = -1",
    )
    return p1


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("tamper", "kind"),
    [(_change, "changed"), (_delete, "missing"), (_insert, "inserted"), (_reorder, "reordered")],
)
def test_verify_names_the_first_position_and_kind_of_a_rewrite(
    fresh_postgres_url: str, tamper: Callable[[Story], int], kind: str
) -> None:
    services = open_services(LedgerSettings(database_url=fresh_postgres_url, support_hours="24/7"))
    ledger, audit = services.ledger, services.audit
    customer_id = f"cust-{uuid4().hex[:8]}"
    request_id = tell_story(ledger, customer_id)
    audit.catch_up()
    story = Story(ledger, audit, fresh_postgres_url, customer_id, request_id)
    assert audit.verify().ok  # the untouched copy

    position = tamper(story)
    result = audit.verify()

    assert not result.ok
    assert result.first_break is not None
    assert (result.first_break.position, result.first_break.kind) == (position, kind)
    services.close()


def test_a_changed_event_is_found_on_sqlite_too(story: Story) -> None:
    if not story.url.startswith("sqlite"):
        return  # the PostgreSQL variants are above
    p = _position_of(story, "CreditsRefunded")
    tamper_sqlite(
        story.url,
        "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), "
        "'\"amount\":10', '\"amount\":99') AS BLOB) WHERE rowid = ?",
        params=(p,),
    )
    result = story.audit.verify()

    assert result.first_break is not None
    assert (result.first_break.position, result.first_break.kind) == (p, "changed")


def test_verifying_100k_events_stays_within_a_fixed_memory_bound(database_url: str) -> None:
    services = open_services(LedgerSettings(database_url=database_url, support_hours="24/7"))
    ledger, audit = services.ledger, services.audit
    topic = "ledger.aggregates.account:CustomerAccount.BalanceAdjusted"
    state = b'{"amount":1,"padding":"' + b"x" * 100 + b'"}'
    for _ in range(200):  # in batches of 500: one append of 100k events is no real load
        ledger.recorder.insert_events([StoredEvent(uuid4(), 1, topic, state) for _ in range(500)])
    audit.catch_up(batch=5_000)

    tracemalloc.start()
    result = audit.verify()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert result.ok and result.checked == 100_000
    assert peak < 16 * 1024 * 1024, f"verification peaked at {peak / 2**20:.1f} MiB"
    services.close()


def test_the_read_model_worker_keeps_the_chain_up_to_date(story: Story) -> None:
    settings = LedgerSettings(database_url=story.url, support_hours="24/7")
    services = open_services(settings, ledger=story.ledger)
    services.projections.start()
    try:
        tell_story(story.ledger, f"cust-{uuid4().hex[:8]}")
        target = story.ledger.position()
        deadline = time.monotonic() + 10
        while story.audit.head().position < target and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        services.close()

    assert story.audit.head().position == target
    assert services.projections.lag()["chain"] == 0
    assert story.audit.verify().ok
