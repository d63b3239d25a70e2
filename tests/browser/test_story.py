"""The whole story by clicking, across three roles, in a real Chromium:
finance sells 80 credits; the helpdesk opens the 4.4.1 -> 4.4.4 store update
and sees 25 before submitting; the specialist charges it (balance 55); the
helpdesk disputes; the specialist reads the timeline and refunds 10; finance
sees the movements, downloads the CSV and runs a verification that passes."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from uuid import uuid4

from playwright.sync_api import expect

from tests.browser.conftest import Person


def test_the_story_across_three_roles(people: object) -> None:
    finance: Person = people("finance")  # type: ignore[operator]
    helpdesk: Person = people("helpdesk")  # type: ignore[operator]
    specialist: Person = people("specialist")  # type: ignore[operator]
    customer_id = f"C-{uuid4().hex[:6]}"

    # Finance opens the account and sells 80 credits.
    f = finance.page
    finance.open_account_and_sell(customer_id, f"Acme Store {customer_id}", 80, shot="account")

    # The helpdesk opens the store update and sees its price before submitting.
    h = helpdesk.page
    # The helpdesk finds the customer by a part of the name, case aside.
    h.goto("/console/accounts")
    h.get_by_label("Name or customer id").fill(f"store {customer_id.lower()}")
    h.get_by_role("button", name="Search").click()
    helpdesk.shot("accounts-search")
    h.get_by_role("link", name=customer_id).click()
    expect(h.locator("#balance")).to_have_text("80 credits")
    h.get_by_role("link", name="Open a request").click()
    h.get_by_label("Category").select_option("store_update")
    h.get_by_label("From version").fill("4.4.1")
    h.get_by_label("To version").fill("4.4.4")
    h.get_by_label("Subject").fill(f"Update to 4.4.4 for {customer_id}")
    expect(h.locator("#price")).to_have_text("Price: 25 credits")
    helpdesk.shot("new-request")
    h.get_by_role("button", name="Open the request").click()
    expect(h.locator("#status")).to_have_text("open")
    request_url = h.url.split("?")[0]

    # The specialist finds it in the "ready to charge" queue and charges it.
    s = specialist.page
    s.goto("/console/queues")
    s.get_by_role("link", name="Ready to charge").click()
    specialist.shot("queues")
    s.get_by_role("link", name=f"Update to 4.4.4 for {customer_id}").click()
    assert s.url.split("?")[0] == request_url
    s.get_by_role("button", name="Charge the answer").click()
    expect(s.locator("#status")).to_have_text("charged")
    h.goto(f"/console/accounts/{customer_id}")
    expect(h.locator("#balance")).to_have_text("55 credits")
    expect(h.locator("main table").first).to_contain_text("charged")  # its requests

    # The helpdesk disputes the charge.
    h.goto(request_url)
    h.locator("#dispute-reason").fill("the checkout broke")
    h.get_by_role("button", name="Dispute the charge").click()
    expect(h.locator("#status")).to_have_text("disputed")

    # The specialist reads the timeline and refunds 10.
    s.goto(request_url)
    timeline = s.locator("ol.timeline > li")
    expect(timeline).to_have_count(3)
    expect(timeline.nth(1)).to_contain_text("AnswerCharged")
    expect(timeline.nth(1)).to_have_class(re.compile("credit-move"))
    specialist.shot("request-timeline")
    s.locator("#refund-credits").fill("10")
    s.locator("#refund-reason").fill("checkout fixed late")
    s.get_by_role("button", name="Refund").click()
    expect(s.locator("#status")).to_have_text("refunded")
    expect(s.locator("ol.timeline > li")).to_have_count(4)

    # Finance sees the movements, downloads the CSV and verifies the history.
    f.goto("/console/movements")
    f.get_by_label("Customer id", exact=True).fill(customer_id)
    f.get_by_role("button", name="Filter").click()
    rows = f.locator("main table tbody tr")
    expect(rows).to_have_count(3)
    finance.shot("movements")
    with f.expect_download() as download:
        f.locator("#csv").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    lines = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["amount"]) for r in lines] == [80, -25, 10]
    assert {r["customer_id"] for r in lines} == {customer_id}
    f.goto("/console/finance")
    expect(f.locator("svg.chart")).to_be_visible()
    finance.shot("finance")
    f.goto("/console/audit")
    f.get_by_role("button", name="Run the verification").click()
    expect(f.locator("#verification")).to_contain_text("Verified")
    finance.shot("audit")
