"""Price lists as versioned data (issue 14), on both stores: a version is
published, takes effect at its time with no process running, and every
request and standard invoice keeps the version it was priced by.

Each test has a store of its own: the price lists are one stream per store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from ledger.aggregates import account_id_for
from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.errors import InvalidInputError, PermissionDeniedError, PriceBelowMinimumError
from ledger.policy import DEFAULT_PRICE_LIST
from ledger.settings import LedgerSettings
from tests.support.domain import ADMIN, FINANCE, HELPDESK, SPECIALIST
from tests.support.ledger import (
    Clock,
    account_events,
    funded_customer,
    new_event_types,
    open_request,
    refused,
)

#: Friday 2026-03-06, 14:00 in Samara (open).
FRIDAY = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
#: Monday 2026-03-09, 00:00 in Samara: the rise takes effect.
NEXT_MONDAY = datetime(2026, 3, 8, 20, 0, tzinfo=UTC)
#: Monday 2026-03-09, 14:00 in Samara (open).
MONDAY = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)


def rise() -> dict[str, Any]:
    """Version 1 with dearer configuration, theme updates, store updates,
    complex modifications and 80-credit package."""
    data = DEFAULT_PRICE_LIST.to_data()
    data["categories"] = {**data["categories"], "configuration": 12, "store_update": 25}
    data["store_update"] = {"base": 25, "included_steps": 2, "per_step": 10}
    data["minimums"] = {"complex_modification": 30}
    data["packages"] = [
        {"credits": 80, "amount_usd": Decimal("95.00")},
        {"credits": 160, "amount_usd": Decimal("180.00")},
        {"credits": 320, "amount_usd": Decimal("360.00")},
    ]
    return data


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


@pytest.fixture
def clock() -> Clock:
    return Clock(FRIDAY)


@pytest.fixture
def make(store_url: str, clock: Clock) -> Iterator[Callable[[], Ledger]]:
    opened: list[Ledger] = []

    def make() -> Ledger:
        settings = LedgerSettings(
            database_url=store_url, support_hours="Mon-Fri 09:00-18:00 Europe/Samara"
        )
        ledger = open_ledger(settings, clock=clock)
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(make: Callable[[], Ledger]) -> Ledger:
    return make()


def test_a_new_store_has_version_one_the_policys_list_and_reading_writes_nothing(
    ledger: Ledger,
) -> None:
    assert ledger.price_lists() == (DEFAULT_PRICE_LIST,)
    assert ledger.price_list_at(FRIDAY) is DEFAULT_PRICE_LIST
    assert ledger.position() == 0


def test_a_rise_for_next_monday_keeps_fridays_request_at_the_old_price(
    ledger: Ledger, clock: Clock
) -> None:
    customer_id = funded_customer(ledger, 100)
    published = ledger.publish_price_list(rise(), NEXT_MONDAY, actor=ADMIN)
    assert (published.version, published.effective_from) == (2, NEXT_MONDAY)
    assert ledger.price_list_at(FRIDAY).version == 1
    friday = open_request(ledger, customer_id, "configuration")
    assert ledger.get_request(friday).price == 10

    clock.now = MONDAY  # nothing runs in between: version 2 is in force when read
    assert ledger.price_list_at().version == 2
    monday = open_request(ledger, customer_id, "configuration")

    assert ledger.charge(friday, actor=SPECIALIST).charged == 10
    assert ledger.charge(monday, actor=SPECIALIST).charged == 12
    assert ledger.get_request(friday).price_list_version == 1
    assert ledger.get_request(monday).price_list_version == 2
    assert ledger.get_account(customer_id).balance == 100 - 10 - 12


def test_the_store_update_formula_and_the_minimum_are_the_requests_versions(
    ledger: Ledger, clock: Clock
) -> None:
    customer_id = funded_customer(ledger, 500)
    ledger.publish_price_list(rise(), NEXT_MONDAY, actor=ADMIN)
    versions = {"from_version": "4.4.1", "to_version": "4.4.5"}
    old_update = open_request(ledger, customer_id, "store_update", **versions)
    old_complex = open_request(ledger, customer_id, "complex_modification")

    clock.now = MONDAY
    new_update = open_request(ledger, customer_id, "store_update", **versions)
    new_complex = open_request(ledger, customer_id, "complex_modification")

    assert ledger.get_request(old_update).price == 20 + 5 * 2
    assert ledger.get_request(new_update).price == 25 + 10 * 2
    assert ledger.quote(old_complex, 20, actor=SPECIALIST).price == 20
    with refused(ledger, PriceBelowMinimumError):
        ledger.quote(new_complex, 25, actor=SPECIALIST)
    assert ledger.quote(new_complex, 30, actor=SPECIALIST).price == 30
    with refused(ledger, PriceBelowMinimumError):
        ledger.revise_price(new_complex, 29, "Less work", actor=SPECIALIST)
    ledger.revise_price(old_complex, 21, "A little more", actor=SPECIALIST)


def test_an_invoice_issued_before_a_package_change_keeps_its_amount_when_paid_after(
    ledger: Ledger, clock: Clock
) -> None:
    customer_id = funded_customer(ledger)
    ledger.publish_price_list(rise(), NEXT_MONDAY, actor=ADMIN)
    before = ledger.issue_invoice(customer_id, package=80, actor=FINANCE)
    assert before.amount_usd == Decimal("90.00")

    clock.now = MONDAY
    after = ledger.issue_invoice(customer_id, package=80, actor=FINANCE)
    ledger.pay_invoice(before.invoice_id, "bank-1", actor=FINANCE)

    assert after.amount_usd == Decimal("95.00")
    paid = ledger.get_invoice(before.invoice_id)
    assert (paid.status, paid.amount_usd, paid.price_list_version) == ("paid", Decimal("90.00"), 1)
    assert ledger.get_invoice(after.invoice_id).price_list_version == 2
    custom = ledger.issue_invoice(customer_id, credits=50, amount_usd="55.00", actor=FINANCE)
    assert ledger.get_invoice(custom.invoice_id).price_list_version is None


def test_a_replay_of_a_requests_history_shows_its_prices_under_its_own_version(
    make: Callable[[], Ledger], clock: Clock
) -> None:
    ledger = make()
    customer_id = funded_customer(ledger, 100)
    ledger.publish_price_list(rise(), NEXT_MONDAY, actor=ADMIN)
    friday = open_request(ledger, customer_id, "configuration")
    clock.now = MONDAY
    monday = open_request(ledger, customer_id, "configuration")
    ledger.charge(friday, actor=SPECIALIST)
    ledger.charge(monday, actor=SPECIALIST)

    fresh = make()  # another process, reading the store
    for request_id, price, version in ((friday, 10, 1), (monday, 12, 2)):
        history = fresh.request_history(request_id)
        assert history[0].data["price_list_version"] == version
        assert [(e.state.price, e.state.price_list_version) for e in history] == [
            (price, version),
            (price, version),
        ]
        assert history[-1].state.charged == price


def test_an_invalid_list_is_refused_naming_the_field_and_nothing_is_stored(
    ledger: Ledger,
) -> None:
    incomplete = rise()
    del incomplete["categories"]["theme_update"]
    with refused(ledger, InvalidInputError) as info:
        ledger.publish_price_list(incomplete, NEXT_MONDAY, actor=ADMIN)
    assert info.value.field == "categories.theme_update"
    assert ledger.price_lists() == (DEFAULT_PRICE_LIST,)


@pytest.mark.parametrize(
    ("effective_from", "field"),
    [(datetime(2026, 3, 5, tzinfo=UTC), "effective_from")],
)
def test_a_list_cannot_take_effect_in_the_past(
    ledger: Ledger, effective_from: datetime, field: str
) -> None:
    with refused(ledger, InvalidInputError) as info:
        ledger.publish_price_list(rise(), effective_from, actor=ADMIN)
    assert info.value.field == field


def test_a_later_version_cannot_take_effect_before_an_earlier_one(ledger: Ledger) -> None:
    ledger.publish_price_list(rise(), MONDAY, actor=ADMIN)
    with refused(ledger, InvalidInputError) as info:
        ledger.publish_price_list(rise(), NEXT_MONDAY, actor=ADMIN)
    assert info.value.field == "effective_from"
    assert [p.version for p in ledger.price_lists()] == [1, 2]


def test_only_an_admin_publishes(ledger: Ledger) -> None:
    for actor in (FINANCE, SPECIALIST):
        with refused(ledger, PermissionDeniedError):
            ledger.publish_price_list(rise(), NEXT_MONDAY, actor=actor)


def test_publishing_writes_the_stream_once_then_one_event_a_version(ledger: Ledger) -> None:
    before = ledger.position()
    ledger.publish_price_list(rise(), NEXT_MONDAY, actor=ADMIN)
    ledger.publish_price_list(rise(), MONDAY, actor=ADMIN)
    assert new_event_types(ledger, before) == [
        "PriceListsStarted",
        "PriceListPublished",
        "PriceListPublished",
    ]
    assert [p.version for p in ledger.price_lists()] == [1, 2, 3]
    assert ledger.price_lists()[2].packages[80].amount_usd == Decimal("95.00")


def test_an_invoice_issued_before_versions_is_read_as_version_1(
    make: Callable[[], Ledger],
) -> None:
    ledger = make()
    customer_id = funded_customer(ledger)
    issued = ledger.issue_invoice(customer_id, package=160, actor=FINANCE)
    stored = ledger.recorder.select_events(issued.invoice_id)[0]
    state = json.loads(stored.state)
    assert (state.pop("price_list_version"), state.pop("class_version")) == (1, 2)
    old_id = uuid4()
    ledger.recorder.insert_events(
        [StoredEvent(old_id, 1, stored.topic, json.dumps(state).encode())]
    )

    old = make().get_invoice(old_id)

    assert (old.credits, old.amount_usd, old.price_list_version) == (160, Decimal("180.00"), 1)


def test_each_movement_records_the_price_list_that_priced_it(ledger: Ledger, clock: Clock) -> None:
    customer_id = funded_customer(ledger, 100)  # a custom package: no list
    ledger.publish_price_list(rise(), NEXT_MONDAY, actor=ADMIN)
    friday = open_request(ledger, customer_id, "configuration")
    standard = ledger.issue_invoice(customer_id, package=80, actor=FINANCE)
    clock.now = MONDAY
    monday = open_request(ledger, customer_id, "configuration")
    ledger.charge(friday, actor=SPECIALIST)
    ledger.charge(monday, actor=SPECIALIST)
    ledger.dispute(monday, "Still broken", actor=HELPDESK)
    ledger.refund(monday, 2, "Partly", actor=SPECIALIST)
    ledger.pay_invoice(standard.invoice_id, "bank-9", actor=FINANCE)
    ledger.adjust_balance(customer_id, 1, "goodwill", actor=FINANCE)

    moved = [
        (type(e).__name__, e.amount, getattr(e, "price_list_version", "-"))
        for e in account_events(ledger, customer_id)
        if hasattr(e, "balance_after")
    ]

    assert moved == [
        ("CreditsPurchased", 100, None),
        ("CreditsCharged", -10, 1),
        ("CreditsCharged", -12, 2),
        ("CreditsRefunded", 2, 2),
        ("CreditsPurchased", 80, 1),  # issued on Friday, paid on Monday
        ("BalanceAdjusted", 1, "-"),
    ]


@pytest.mark.parametrize(
    ("kind", "amount", "amount_usd", "version"),
    [
        ("CreditsCharged", -20, None, 1),
        ("CreditsRefunded", 5, None, 1),
        ("CreditsPurchased", 80, "90.00", 1),  # version 1's package of 80
        ("CreditsPurchased", 80, "85.00", None),  # 80 credits for another amount
        ("CreditsPurchased", 50, "50.00", None),  # no such package
    ],
)
def test_a_movement_stored_before_versions_is_read_with_the_list_that_priced_it(
    ledger: Ledger, kind: str, amount: int, amount_usd: str | None, version: int | None
) -> None:
    """Before price lists were data there was only version 1: a request's
    movement is read as priced by it, a purchase as by it when it bought a
    listed package for its amount, else as custom."""
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id, "installation")
    ledger.charge(request_id, actor=SPECIALIST)
    ledger.dispute(request_id, "Still broken", actor=HELPDESK)
    ledger.refund(request_id, 5, "Partly", actor=SPECIALIST)
    [stored] = [
        e
        for e in ledger.recorder.select_events(account_id_for(customer_id))
        if e.topic.endswith(f".{kind}")
    ]
    state = json.loads(stored.state)
    assert (state.pop("price_list_version"), state.pop("class_version")) != (version, 1)
    state["amount"] = amount
    if amount_usd is not None:
        state["amount_usd"]["_data_"] = amount_usd

    old = ledger.mapper.to_domain_event(
        StoredEvent(
            stored.originator_id,
            stored.originator_version,
            stored.topic,
            json.dumps(state).encode(),
        )
    )

    assert old.price_list_version == version  # type: ignore[attr-defined]
