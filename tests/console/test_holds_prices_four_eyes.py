"""The console shows what issues 14 and 15 added: the price a new request
will open at under the price list in force (not version 1's), an account's
``available`` credits beside its balance, holds in the movements as entries
of zero credits with the credits held, and the four-eyes adjustments, which
a second finance key approves or rejects on the page.

Each test has an app over a store of its own (a published price list would
change the prices other tests expect)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.application import Ledger
from ledger.policy import DEFAULT_PRICE_LIST
from tests.console.conftest import Browser, settings_for
from tests.support.domain import ADMIN, FINANCE, HELPDESK, SPECIALIST


@pytest.fixture
def app(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(f"sqlite:///{tmp_path / 'ledger.db'}")
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


def _ledger(app: TestClient) -> Ledger:
    found: Ledger = app.app.state.ledger  # type: ignore[attr-defined]
    return found


def _customer(ledger: Ledger, credits: int) -> str:
    customer_id = f"C-{uuid4().hex[:8]}"
    ledger.open_account(customer_id, "Acme Store", actor=HELPDESK)
    invoice = ledger.issue_invoice(customer_id, package=credits, actor=FINANCE)
    ledger.pay_invoice(invoice.invoice_id, "bank-1", actor=FINANCE)
    return customer_id


def test_the_price_shown_before_opening_is_the_list_in_force(app: TestClient) -> None:
    ledger = _ledger(app)
    dearer = DEFAULT_PRICE_LIST.to_data()
    dearer["categories"] = {**dearer["categories"], "configuration": 12}
    dearer["minimums"] = {"complex_modification": 30}
    helpdesk = Browser(app, "helpdesk")

    before = helpdesk.get("/console/price", params={"category": "configuration"}).json()
    ledger.publish_price_list(dearer, actor=ADMIN)  # in force now
    after = helpdesk.get("/console/price", params={"category": "configuration"}).json()
    page = helpdesk.get("/console/requests/new")
    specialist_priced = helpdesk.get(
        "/console/price", params={"category": "complex_modification"}
    ).json()

    assert before == {"price": 10, "reason": None, "price_list_version": 1}
    assert after == {"price": 12, "reason": None, "price_list_version": 2}
    assert 'id="price-list-version">2<' in page.text
    assert specialist_priced["price"] is None
    assert "at least 30 credits" in specialist_priced["reason"]


def test_an_account_shows_available_credits_and_its_holds_in_the_movements(
    app: TestClient,
) -> None:
    ledger = _ledger(app)
    customer_id = _customer(ledger, 80)
    request_id = ledger.open_request(
        customer_id, "installation", "helpdesk", "Install it", actor=HELPDESK
    ).request_id
    started = ledger.start_work(request_id, actor=SPECIALIST)

    page = Browser(app, "helpdesk").get(f"/console/accounts/{customer_id}?after={started.position}")

    assert page.status_code == 200, page.text
    assert '<dd id="available">60 credits</dd>' in page.text
    assert 'id="balance">80 credits' in page.text
    assert re.search(
        r"<td>reservation</td><td class=\"num\">0 <span class=\"hint\">\(20 held\)", page.text
    )
    assert 'purchase <span class="hint">price list 1</span>' in page.text


def test_a_large_adjustment_is_proposed_then_approved_by_another_finance_key(
    app: TestClient,
) -> None:
    ledger = _ledger(app)
    customer_id = _customer(ledger, 80)
    proposer = Browser(app, "finance")
    account_page = f"/console/accounts/{customer_id}"

    proposed = proposer.post(
        f"{account_page}/adjustments",
        {"credits": "150", "reason": "migration", "idempotency_key": uuid4().hex},
        form_page=account_page,
    )
    assert proposed.status_code == 303
    assert proposed.headers["location"].startswith("/console/adjustments?proposed=")
    listed = proposer.get(proposed.headers["location"])
    assert "Proposed. It changes the balance once another finance key approves it." in listed.text
    assert "Awaiting another finance key." in listed.text  # no buttons for the proposer
    [adjustment] = ledger.list_adjustments("proposed")
    assert ledger.get_account(customer_id).balance == 80

    # The proposer's own approval is refused by the four-eyes rule, on a page.
    own = proposer.post(
        f"/console/adjustments/{adjustment.adjustment_id}/approve",
        {"idempotency_key": uuid4().hex},
        form_page="/console/adjustments",
    )
    assert own.status_code == 403 and "Approval refused" in own.text

    second = Browser(app, "finance", sign_in=False)
    assert second.sign_in("finance-token-0002").status_code == 303
    queue = second.get("/console/adjustments")
    assert f"/console/adjustments/{adjustment.adjustment_id}/approve" in queue.text
    approved = second.post(
        f"/console/adjustments/{adjustment.adjustment_id}/approve",
        {"idempotency_key": uuid4().hex},
        form_page="/console/adjustments",
    )
    assert approved.status_code == 303
    assert approved.headers["location"].startswith(f"/console/accounts/{customer_id}?after=")
    assert ledger.get_account(customer_id).balance == 230
    assert "No proposed adjustments." in second.get("/console/adjustments").text
    assert "dee" in second.get("/console/adjustments?status=approved").text


def test_a_rejection_needs_a_reason_and_keeps_the_balance(app: TestClient) -> None:
    ledger = _ledger(app)
    customer_id = _customer(ledger, 80)
    ledger.adjust_balance(customer_id, -500, "typo", actor=FINANCE)
    [adjustment] = ledger.list_adjustments("proposed")
    second = Browser(app, "finance", sign_in=False)
    second.sign_in("finance-token-0002")
    path = f"/console/adjustments/{adjustment.adjustment_id}/reject"

    blank = second.post(path, {"reason": " "}, form_page="/console/adjustments")
    rejected = second.post(path, {"reason": "wrong sign"}, form_page="/console/adjustments")

    assert blank.status_code == 422 and "required and may not be blank" in blank.text
    assert rejected.status_code == 303
    assert ledger.list_adjustments("rejected")[0].decided_by == "finance:dee"
    assert ledger.get_account(customer_id).balance == 80
    assert Browser(app, "helpdesk").get("/console/adjustments").status_code == 403
