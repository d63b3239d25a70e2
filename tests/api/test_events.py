"""``GET /v1/events``: the feed of a fixed history equals a stored document
on SQLite and on PostgreSQL; filters, paging, the long poll, the errors.

The stored document ``data/feed_expected.json`` is the whole feed of
``tests/projections/story.py`` (every event type) plus a correction that
takes a balance below 20 (a ``BalanceLow``). It is deterministic because the
clock is fixed (one minute per command, from 2026-03-02 09:00 UTC); the ids
the aggregates draw at random (invoices, requests) are normalised in the
comparison: every UUID is replaced by ``<id-N>``, N counting distinct UUIDs
in order of first appearance. Regenerate it with
``LEDGER_WRITE_FEED_EXPECTED=1`` after a *deliberate* change of the public
shape, and say so in the change.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.integrations.feed import FEED_TYPES
from ledger.policy import DEFAULT_PRICE_LIST
from ledger.values import Actor, Role
from tests.api.conftest import Api, auth, make_settings
from tests.projections.story import FINANCE, HELPDESK, SPECIALIST, tell
from tests.support.domain import ADMIN

EXPECTED = Path(__file__).parent / "data" / "feed_expected.json"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def normalised(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    text = json.dumps(items, indent=1, sort_keys=True)
    names: dict[str, str] = {}
    for found in _UUID.findall(text):
        names.setdefault(found, f"<id-{len(names) + 1}>")
    result: list[dict[str, Any]] = json.loads(_UUID.sub(lambda m: names[m.group(0)], text))
    return result


class FixedClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            self.now += timedelta(minutes=1)
            return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def story_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """An API over a fresh store holding only the fixed story."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'feed.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    settings = make_settings(url)
    ledger = open_ledger(settings, clock=FixedClock())
    tell(ledger)
    ledger.adjust_balance("bolt", -100, "correction", actor=FINANCE)  # 115 -> 15
    _holds_and_four_eyes(ledger)
    with TestClient(create_app(settings, ledger=ledger)) as client:
        yield client
    ledger.close()


def all_items(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = 0
    for _ in range(100):
        page = client.get(
            "/v1/events", params={"after": after, **params}, headers=auth("finance")
        ).json()
        if not page["items"]:
            return items
        items += page["items"]
        after = page["next_after"]
    raise AssertionError("the feed did not end")


def _holds_and_four_eyes(ledger: Ledger) -> None:
    """A hold taken by its charge, and two large adjustments (issue 15): one
    approved by a second finance key, one rejected; a price list published."""
    request_id = ledger.open_request(
        "bolt", "configuration", "helpdesk", "subject held", actor=HELPDESK
    ).request_id
    ledger.start_work(request_id, actor=SPECIALIST)
    ledger.charge(request_id, actor=SPECIALIST)  # 15 -> 5
    second = Actor(Role.FINANCE, "dee")
    approved = ledger.adjust_balance("bolt", 150, "migration", actor=FINANCE).adjustment_id
    rejected = ledger.adjust_balance("bolt", -500, "typo", actor=FINANCE).adjustment_id
    assert approved is not None and rejected is not None
    ledger.approve_adjustment(approved, actor=second)  # 5 -> 155
    ledger.reject_adjustment(rejected, "wrong sign", actor=second)
    # A price list (issue 14), in force from a minute after its publication.
    dearer = DEFAULT_PRICE_LIST.to_data()
    dearer["categories"] = {**dearer["categories"], "configuration": 12}
    ledger.publish_price_list(dearer, ledger.clock() + timedelta(minutes=5), actor=ADMIN)


def test_the_feed_of_a_fixed_history_equals_the_stored_document(story_client: TestClient) -> None:
    items = all_items(story_client, limit=500)
    got = normalised(items)
    if os.environ.get("LEDGER_WRITE_FEED_EXPECTED"):
        EXPECTED.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(EXPECTED.read_text())
    assert {i["type"] for i in items} == set(FEED_TYPES)  # the story shows every type


def test_pages_by_after_give_the_same_items_as_one_page(story_client: TestClient) -> None:
    whole = all_items(story_client, limit=500)
    assert all_items(story_client, limit=3) == whole
    positions = [i["position"] for i in whole]
    assert positions == sorted(positions)


def test_a_type_filter_keeps_those_types_only(story_client: TestClient) -> None:
    low = all_items(story_client, type=["BalanceLow"])
    assert [(i["customer_id"], i["data"]) for i in low] == [
        ("bolt", {"balance": 15, "previous_balance": 115, "threshold": 20})
    ]
    both = all_items(story_client, type=["BalanceAdjusted", "BalanceLow"], limit=1)
    assert [i["type"] for i in both] == ["BalanceAdjusted"] * 3 + ["BalanceLow", "BalanceAdjusted"]
    assert both[3]["position"] == both[2]["position"]  # the position of its cause
    quotes = all_items(story_client, type=["QuoteAwaitingAcceptance"])
    assert [(i["data"]["price"], i["data"]["reason"]) for i in quotes] == [
        (30, "quoted"),
        (40, "quoted"),
        (50, "raised"),
    ]


def test_bad_parameters_are_422_naming_the_field(api: Api) -> None:
    for params, field in [
        ({"type": ["CreditsCharged", "Nope"]}, "type"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"wait": 31}, "wait"),
        ({"after": -1}, "after"),
    ]:
        response = api.get("finance", "/v1/events", params=params)
        assert response.status_code == 422, params
        assert response.json()["field"] == field
    assert "Nope" in api.get("finance", "/v1/events", params={"type": "Nope"}).json()["detail"]


def test_the_feed_is_for_finance_and_admin(api: Api) -> None:
    for role, status in [("helpdesk", 403), ("specialist", 403), ("finance", 200), ("admin", 200)]:
        assert api.get(role, "/v1/events", params={"limit": 1}).status_code == status
    assert api.get(None, "/v1/events").status_code == 401


def test_a_long_poll_answers_when_an_event_arrives(api: Api) -> None:
    after = api.ok(api.get("admin", "/readyz"))["position"]
    answer: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        response = api.get(
            "finance", "/v1/events", params={"after": after, "wait": 10, "type": "AccountOpened"}
        )
        answer.update(body=response.json(), elapsed=time.monotonic() - started)

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.5)
    customer_id = api.open_account()
    thread.join(15)
    assert [i["customer_id"] for i in answer["body"]["items"]] == [customer_id]
    assert answer["elapsed"] < 5


def test_a_long_poll_with_nothing_new_answers_empty_when_the_time_is_up(api: Api) -> None:
    head = api.ok(api.get("admin", "/readyz"))["position"]
    started = time.monotonic()
    body = api.ok(
        api.get("finance", "/v1/events", params={"after": head, "wait": 0.6, "type": "BalanceLow"})
    )
    assert body["items"] == [] and time.monotonic() - started >= 0.6


def test_the_openapi_document_shows_one_feed_item_schema_with_an_example_per_type(
    api: Api,
) -> None:
    schema = api.client.get("/openapi.json").json()["components"]["schemas"]["FeedItemOut"]
    assert sorted(e["type"] for e in schema["examples"]) == sorted(FEED_TYPES)
    stored = {i["type"]: i for i in json.loads(EXPECTED.read_text())}
    for example in schema["examples"]:
        # The documented fields are the ones the feed really sends.
        assert example.keys() == stored[example["type"]].keys()
        assert example["data"].keys() == stored[example["type"]]["data"].keys(), example["type"]
