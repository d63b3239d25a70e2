"""What the console refuses, in a real Chromium: a page the role may not
see, a double-clicked charge, a form posted from another site, a charge
beyond the balance (in words), and statement links altered or expired."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from uuid import uuid4

import pytest
from playwright.sync_api import expect

from api.console.signing import Signer
from tests.browser.conftest import LiveServer, Person
from tests.console.conftest import SECRET
from tests.support.domain import FINANCE, HELPDESK


def _account_with(live: LiveServer, credits: int) -> str:
    """Setup through the application: an account holding ``credits``."""
    ledger = live.app.state.ledger
    customer_id = f"C-{uuid4().hex[:6]}"
    ledger.open_account(customer_id, "Guarded Ltd", actor=HELPDESK)
    if credits:
        invoice = ledger.issue_invoice(customer_id, package=credits, actor=FINANCE)
        ledger.pay_invoice(invoice.invoice_id, "wire", actor=FINANCE)
    return customer_id


def _update_request(live: LiveServer, customer_id: str) -> Any:
    return live.app.state.ledger.open_request(
        customer_id,
        "store_update",
        "helpdesk",
        "Update",
        from_version="4.4.1",
        to_version="4.4.4",
        actor=HELPDESK,
    )


def test_a_role_is_refused_a_page_it_may_not_see(people: Any) -> None:
    helpdesk: Person = people("helpdesk")
    response = helpdesk.page.goto("/console/finance")
    assert response is not None and response.status == 403
    expect(helpdesk.page.locator("h1")).to_have_text("You may not see this page")
    expect(helpdesk.page.locator("main")).to_contain_text("Who may: finance, admin")
    helpdesk.shot("forbidden")


def test_a_double_click_on_charge_charges_once(people: Any, live: LiveServer) -> None:
    customer_id = _account_with(live, 80)
    opened = _update_request(live, customer_id)
    specialist: Person = people("specialist")
    page = specialist.page
    page.goto(f"/console/requests/{opened.request_id}")
    page.get_by_role("button", name="Charge the answer").dblclick()
    expect(page.locator("#status")).to_have_text("charged")
    live.app.state.read_models.wait_for(live.app.state.ledger.position())
    balance = live.app.state.read_models.balance(customer_id)
    assert balance is not None and balance.balance == 55 and balance.charged == 25


def test_a_charge_beyond_the_balance_is_shown_in_words(people: Any, live: LiveServer) -> None:
    customer_id = _account_with(live, 0)
    opened = _update_request(live, customer_id)
    specialist: Person = people("specialist")
    page = specialist.page
    page.goto(f"/console/requests/{opened.request_id}")
    page.get_by_role("button", name="Charge the answer").click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("Not enough credits: balance 0, price 25, short by 25.")
    expect(summary).to_contain_text("smallest package that covers it is 80 credits")
    expect(page.locator("#status")).to_have_text("open")
    specialist.shot("refused-charge")


class _Attacker(BaseHTTPRequestHandler):
    """Another site on another port, whose page posts a form to the console."""

    target = ""

    def do_GET(self) -> None:
        body = (
            f'<form id="f" method="post" action="{self.target}/console/accounts">'
            '<input name="customer_id" value="C-EVIL"><input name="name" value="Evil">'
            '<button id="go" type="submit">Win a prize</button></form>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def attacker(live: LiveServer) -> Iterator[str]:
    _Attacker.target = live.url
    server = HTTPServer(("127.0.0.1", 0), _Attacker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # "localhost" is another site than 127.0.0.1 for the browser.
    yield f"http://localhost:{server.server_port}/"
    server.shutdown()


def test_a_form_posted_from_another_site_is_refused(
    people: Any, live: LiveServer, attacker: str
) -> None:
    finance: Person = people("finance")
    page = finance.page
    page.goto(attacker)
    page.locator("#go").click()
    page.wait_for_load_state()
    # The session cookie is SameSite=Strict (not sent), and the post is
    # refused as coming from another site whatever it carries.
    assert "/console/" in page.url
    expect(page.locator("h1")).to_have_text("Form refused")
    live.app.state.read_models.wait_for(live.app.state.ledger.position())
    assert live.app.state.read_models.balance("C-EVIL") is None


def test_the_statement_link_opens_and_is_refused_altered_or_expired(
    people: Any, live: LiveServer
) -> None:
    customer_id = _account_with(live, 80)
    helpdesk: Person = people("helpdesk")
    page = helpdesk.page
    page.goto(f"/console/accounts/{customer_id}")
    page.get_by_role("link", name="Customer statement link").click()
    link = page.locator("#statement-link").input_value()
    helpdesk.shot("account")
    customer: Person = people(None)  # no key at all
    customer.page.goto(link)
    expect(customer.page.locator("#statement-balance")).to_have_text("80 credits")
    expect(customer.page.locator("#statement-digest")).to_have_text(
        __import__("re").compile(r"^[0-9a-f]{64}$")
    )
    customer.shot("statement")
    altered = link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")
    answer = customer.page.goto(altered)
    assert answer is not None and answer.status == 404
    expect(customer.page.locator("h1")).to_have_text("This statement link does not work")
    expired = Signer(SECRET.encode(), "statement").sign(
        {"customer_id": customer_id, "since": "2026-01-01T00:00:00+00:00"},
        ttl_s=60,
        now=time.time() - 3600,
    )
    answer = customer.page.goto(f"{live.url}/console/s/{expired}")
    assert answer is not None and answer.status == 404
