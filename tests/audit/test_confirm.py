"""Verification's plain pass (``confirm``, over tuples read from the store)
answers exactly as the judging pass (``verify``) alone would: it accepts
only what ``verify`` accepts, with the same link, and leaves every break to
``verify`` to name."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Notification
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.audit.chain import (
    EMPTY_HEAD,
    NOTHING_CONFIRMED,
    ChainEntry,
    Confirmed,
    Verification,
    confirm,
    extend,
    head_of,
    verify,
)
from ledger.audit.store import stored_notifications, stored_rows
from ledger.bootstrap import open_services
from ledger.settings import LedgerSettings
from tests.audit.conftest import Story, tamper_sqlite, tell_story

TOPICS = ["ledger.aggregates.account:CustomerAccount.Opened", "t:é"]


def _notes(count: int) -> list[Notification]:
    return [
        Notification(
            id=2 * i + 1,  # positions need not be contiguous
            originator_id=uuid4(),
            originator_version=i % 3 + 1,
            topic=TOPICS[i % 2],
            state=b'{"n":%d}' % i,
        )
        for i in range(count)
    ]


def _stored_row(n: Any) -> tuple[Any, ...]:
    oid = n.originator_id.bytes if isinstance(n.originator_id, UUID) else n.originator_id
    return (n.id, oid, n.originator_version, n.topic, n.state)


def _chain_row(e: ChainEntry) -> tuple[Any, ...]:
    return (e.position, e.originator_id.bytes, e.originator_version, e.event_digest, e.link)


def _both_passes(notes: list[Any], entries: list[ChainEntry]) -> Verification:
    """``Audit.verify``'s way: ``confirm``, then ``verify`` from where it stopped."""
    done = confirm([_stored_row(n) for n in notes], [_chain_row(e) for e in entries])
    after = -(2**62) if done.position is None else done.position
    return _judge(
        [n for n in notes if n.id > after], [e for e in entries if e.position > after], done
    )


def _judge(
    notes: list[Any], entries: list[ChainEntry], start: Confirmed = NOTHING_CONFIRMED
) -> Verification:
    head = head_of(entries[-1]) if entries else EMPTY_HEAD
    where = {(e.originator_id, e.originator_version): e.position for e in entries}
    return verify(notes, entries, head=head, locate=lambda i, v: where.get((i, v)), start=start)


def test_confirm_hashes_as_event_digest_does() -> None:
    notes = _notes(50)
    entries = list(extend(EMPTY_HEAD, notes))

    done = confirm([_stored_row(n) for n in notes], [_chain_row(e) for e in entries])

    assert (done.position, done.link, done.checked) == (99, entries[-1].link, 50)


TAMPERS = {
    "state": lambda n: replace(n, state=n.state + b" "),
    "state as text": lambda n: replace(n, state=n.state.decode()),
    "version": lambda n: replace(n, originator_version=n.originator_version + 1),
    "version as text": lambda n: replace(n, originator_version=str(n.originator_version)),
    "id": lambda n: replace(n, originator_id=uuid4()),
    "id no uuid": lambda n: replace(n, originator_id="not-a-uuid"),
    "topic": lambda n: replace(n, topic=n.topic + "x"),
    "position": lambda n: replace(n, id=n.id + 1),
}


@settings(max_examples=200, deadline=None)
@given(
    count=st.integers(1, 12),
    at=st.integers(0, 11),
    tamper=st.sampled_from(sorted(TAMPERS)),
    drop=st.sampled_from(["none", "event", "entry"]),
)
def test_both_passes_answer_as_the_judging_pass_alone(
    count: int, at: int, tamper: str, drop: str
) -> None:
    notes = _notes(count)
    entries = list(extend(EMPTY_HEAD, notes))
    at %= count
    changed: list[Any] = list(notes)
    changed[at] = TAMPERS[tamper](notes[at])
    if drop == "event":
        del changed[(at + 1) % count]
    elif drop == "entry":
        del entries[(at + 1) % count]
    changed.sort(key=lambda n: n.id)

    alone = _judge(changed, entries)

    assert alone.ok is (drop == "entry" and count == 1)  # else the tamper is a break
    assert _both_passes(changed, entries) == alone


def test_confirm_reaches_the_head_of_an_untouched_store(story: Story) -> None:
    head = story.audit.head()

    done = confirm(
        stored_rows(story.audit.store, head.position), story.audit.chain.rows(head.position)
    )

    assert (done.position, done.link, done.checked) == (head.position, head.link, head.count)


def _judged_alone(story: Story) -> Verification:
    head = story.audit.head()
    return verify(
        stored_notifications(story.audit.store),
        story.audit.chain.entries(head.position),
        head=head,
        locate=story.audit.chain.locate,
    )


SQLITE_TAMPERS = [
    "UPDATE stored_events SET originator_id = 'not-a-uuid' WHERE rowid = ?",
    "UPDATE stored_events SET originator_version = CAST(originator_version AS TEXT) "
    "WHERE rowid = ?",
    "UPDATE stored_events SET topic = CAST(topic AS BLOB) WHERE rowid = ?",
    "UPDATE stored_events SET state = CAST(state AS TEXT) WHERE rowid = ?",
    "UPDATE ledger_chain SET originator_id = upper(originator_id) WHERE position = ?",
    "UPDATE ledger_chain SET event_digest = zeroblob(32) WHERE position = ?",
    "UPDATE ledger_chain SET link = zeroblob(32) WHERE position = ?",
    "DELETE FROM stored_events WHERE rowid = ?",
    "DELETE FROM ledger_chain WHERE position = ?",
]


@pytest.fixture(params=SQLITE_TAMPERS)
def tampered(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Story]:
    """The audit story on SQLite, then one of ``SQLITE_TAMPERS`` at a
    position in the middle of its history."""
    url = f"sqlite:///{tmp_path}/ledger.db"
    services = open_services(LedgerSettings(database_url=url, support_hours="24/7"))
    customer_id = f"cust-{uuid4().hex[:10]}"
    request_id = tell_story(services.ledger, customer_id)
    services.audit.catch_up()
    tamper_sqlite(url, request.param, params=(services.audit.head().position // 2,))
    yield Story(services.ledger, services.audit, url, customer_id, request_id)
    services.close()


def test_on_a_tampered_sqlite_store_both_passes_answer_as_the_judging_pass(
    tampered: Story,
) -> None:
    alone = _judged_alone(tampered)
    both = tampered.audit.verify()

    assert (both.first_break, both.checked, both.head) == (
        alone.first_break,
        alone.checked,
        alone.head,
    )


def test_an_originator_id_that_is_no_uuid_is_unreadable_not_a_traceback(
    story: Story,
) -> None:
    if not story.url.startswith("sqlite"):
        return  # a uuid column holds only UUIDs
    position = story.audit.head().position // 2
    tamper_sqlite(
        story.url,
        "UPDATE stored_events SET originator_id = 'not-a-uuid' WHERE rowid = ?",
        params=(position,),
    )

    result = story.audit.verify()

    assert result.first_break is not None
    assert (result.first_break.position, result.first_break.kind) == (position, "unreadable")
