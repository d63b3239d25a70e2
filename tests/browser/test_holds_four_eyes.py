"""Holds and four eyes by clicking, in a real Chromium (issue 15): the
specialist starts work on a request and the account shows the price held
(balance 80, available 60, a reservation of 0 credits with 20 held); finance
proposes a goodwill credit above the limit, which waits on the adjustments
page; a second finance key approves it and the balance is 230."""

from __future__ import annotations

from uuid import uuid4

from playwright.sync_api import expect

from tests.browser.conftest import Person


def test_a_hold_and_a_four_eyes_adjustment(people: object) -> None:
    finance: Person = people("finance")  # type: ignore[operator]
    helpdesk: Person = people("helpdesk")  # type: ignore[operator]
    specialist: Person = people("specialist")  # type: ignore[operator]
    second: Person = people(None)  # type: ignore[operator]
    second.sign_in("finance-token-0002")
    customer_id = f"C-{uuid4().hex[:6]}"

    f = finance.page
    finance.open_account_and_sell(customer_id, f"Held Store {customer_id}", 80)

    h = helpdesk.page
    h.goto(f"/console/requests/new?customer_id={customer_id}")
    h.get_by_label("Category").select_option("installation")
    h.get_by_label("Subject").fill(f"Install for {customer_id}")
    expect(h.locator("#price")).to_have_text("Price: 20 credits")
    expect(h.locator("#price-list-version")).to_have_text("1")
    h.get_by_role("button", name="Open the request").click()
    expect(h.locator("#status")).to_have_text("open")
    request_url = h.url.split("?")[0]

    s = specialist.page
    s.goto(request_url)
    s.get_by_role("button", name="Start work (hold the price)").click()
    expect(s.locator("#status")).to_have_text("open")
    s.goto(f"/console/accounts/{customer_id}")
    expect(s.locator("#balance")).to_have_text("80 credits")
    expect(s.locator("#available")).to_have_text("60 credits")
    expect(s.locator("main table").last).to_contain_text("reservation")
    expect(s.locator("main table").last).to_contain_text("(20 held)")
    specialist.shot("account-hold")

    f.goto(f"/console/accounts/{customer_id}")
    f.get_by_label("Credits", exact=True).fill("150")
    f.get_by_label("Reason", exact=True).fill("migration")
    f.get_by_role("button", name="Adjust").click()
    expect(f.locator("#proposed-notice")).to_be_visible()
    expect(f.locator("main table")).to_contain_text("Awaiting another finance key.")
    finance.shot("adjustment-proposed")

    p = second.page
    p.goto("/console/adjustments")
    row = p.locator("tr", has_text=customer_id)
    row.get_by_role("button", name="Approve").click()
    expect(p.locator("#balance")).to_have_text("230 credits")
    expect(p.locator("#available")).to_have_text("210 credits")
