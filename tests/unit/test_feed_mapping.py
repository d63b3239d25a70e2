"""The feed's mapping is explicit and complete: every event class of the
published aggregates has an entry (a new event fails here until it gets
one), names are unique, and notifications are derived by the rule."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from eventsourcing.domain import Aggregate

from ledger.aggregates import Adjustment, CustomerAccount, Invoice, PriceLists, SupportRequest
from ledger.integrations.feed import (
    EVENTS,
    FEED_TYPES,
    NOTIFICATION_TYPES,
    UNPUBLISHED,
    notifications,
    topics_for,
)
from ledger.values import Actor, Role

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ACTOR = Actor(Role.SPECIALIST, "bo")


def _event_classes(aggregate: type) -> set[type]:
    return {
        value
        for name, value in vars(aggregate).items()
        if isinstance(value, type)
        and issubclass(value, Aggregate.Event)
        and name not in ("Event", "Created")  # the library's base classes
    }


def test_every_event_of_the_published_aggregates_is_mapped() -> None:
    for aggregate in (CustomerAccount, SupportRequest, Invoice, Adjustment, PriceLists):
        missing = _event_classes(aggregate) - set(EVENTS) - UNPUBLISHED
        assert not missing, f"add these to ledger.integrations.feed.EVENTS: {missing}"


def test_public_names_are_unique_and_notifications_are_apart() -> None:
    assert len(set(FEED_TYPES)) == len(FEED_TYPES)
    assert not set(NOTIFICATION_TYPES) & {p.type for p in EVENTS.values()}
    assert topics_for(["BalanceLow"]) == sorted(topics_for(["BalanceLow"]))


def _charged(balance_before: int, price: int) -> CustomerAccount.CreditsCharged:
    return CustomerAccount.CreditsCharged(
        originator_id=uuid4(),
        originator_version=2,
        timestamp=AT,
        request_id=uuid4(),
        amount=-price,
        balance_after=balance_before - price,
        price_list_version=1,
        actor=ACTOR,
    )


def test_balance_low_when_a_movement_crosses_the_threshold_only() -> None:
    assert notifications(_charged(30, 25), 20) == [
        ("BalanceLow", {"balance": 5, "previous_balance": 30, "threshold": 20})
    ]
    assert notifications(_charged(20, 1), 20)[0][0] == "BalanceLow"  # from exactly 20
    assert notifications(_charged(19, 5), 20) == []  # already below: not again
    assert notifications(_charged(45, 25), 20) == []  # still at 20
    assert notifications(_charged(30, 25), 0) == []  # a threshold of 0 never fires


def test_a_revision_waits_for_the_client_only_when_it_needs_acceptance() -> None:
    def revised(needs: bool) -> SupportRequest.PriceRevised:
        return SupportRequest.PriceRevised(
            originator_id=uuid4(),
            originator_version=3,
            timestamp=AT,
            old_price=40,
            new_price=50,
            reason="more",
            needs_acceptance=needs,
            actor=ACTOR,
        )

    assert notifications(revised(True), 20) == [
        ("QuoteAwaitingAcceptance", {"price": 50, "previous_price": 40, "reason": "raised"})
    ]
    assert notifications(revised(False), 20) == []
