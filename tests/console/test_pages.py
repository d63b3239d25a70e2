"""Console pages through a real client: each form posts, is checked (CSRF,
same site, role) and redirects to a page that reads with ``?after=``."""

from __future__ import annotations

import re
import time
from uuid import uuid4

from fastapi.testclient import TestClient

from api.console.signing import Signer
from tests.console.conftest import SECRET, Browser


def _key() -> str:
    return uuid4().hex


def _open_account(finance: Browser) -> str:
    customer_id = f"C-{uuid4().hex[:8]}"
    answer = finance.post(
        "/console/accounts",
        {"customer_id": customer_id, "name": "Acme Store", "idempotency_key": _key()},
        form_page="/console/accounts",
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith(f"/console/accounts/{customer_id}?after=")
    return customer_id


def _sell(finance: Browser, customer_id: str, credits: int = 80) -> int:
    """Issue and pay an invoice; the position to read after (``?after=``)."""
    page = f"/console/accounts/{customer_id}"
    issued = finance.post(
        f"{page}/invoices", {"package": str(credits), "idempotency_key": _key()}, form_page=page
    )
    assert issued.status_code == 303, issued.text
    invoice = issued.headers["location"].split("?")[0]
    paid = finance.post(
        f"{invoice}/payment",
        {"payment_ref": "bank-1", "idempotency_key": _key()},
        form_page=invoice,
    )
    assert paid.status_code == 303, paid.text
    return int(paid.headers["location"].split("after=")[1])


def _open_update(helpdesk: Browser, customer_id: str) -> str:
    answer = helpdesk.post(
        "/console/requests",
        {
            "customer_id": customer_id,
            "category": "store_update",
            "from_version": "4.4.1",
            "to_version": "4.4.4",
            "subject": "Update to 4.4.4",
            "idempotency_key": _key(),
        },
        form_page="/console/requests/new",
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"].split("?")[0]


def test_the_price_shows_before_submitting_with_and_without_script(
    app_client: TestClient,
) -> None:
    helpdesk = Browser(app_client, "helpdesk")
    priced = helpdesk.get(
        "/console/price",
        params={"category": "store_update", "from_version": "4.4.1", "to_version": "4.4.4"},
    )
    assert priced.json() == {"price": 25, "reason": None, "price_list_version": 1}
    preview = helpdesk.post(
        "/console/requests",
        {
            "customer_id": "C-x",
            "category": "store_update",
            "from_version": "4.4.1",
            "to_version": "4.4.4",
            "subject": "s",
            "preview": "1",
        },
        form_page="/console/requests/new",
    )
    assert preview.status_code == 200
    assert "Price: <strong>25</strong> credits" in preview.text


def test_a_charge_then_a_double_submit_charges_once(app_client: TestClient) -> None:
    finance, helpdesk = Browser(app_client, "finance"), Browser(app_client, "helpdesk")
    specialist = Browser(app_client, "specialist")
    customer_id = _open_account(finance)
    _sell(finance, customer_id)
    request_page = _open_update(helpdesk, customer_id)
    key = _key()
    form = {"csrf_token": specialist.csrf(request_page), "idempotency_key": key}
    first = specialist.client.post(f"{request_page}/charge", data=form, follow_redirects=False)
    again = specialist.client.post(f"{request_page}/charge", data=form, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    account = helpdesk.get(first.headers["location"].replace(request_page, request_page))
    assert "charged" in account.text
    page = helpdesk.get(f"/console/accounts/{customer_id}?after=0")
    assert re.search(r'id="balance">55 credits', page.text), page.text


def test_a_charge_beyond_the_balance_is_refused_in_words(app_client: TestClient) -> None:
    finance, helpdesk = Browser(app_client, "finance"), Browser(app_client, "helpdesk")
    specialist = Browser(app_client, "specialist")
    customer_id = _open_account(finance)
    request_page = _open_update(helpdesk, customer_id)
    refused = specialist.post(
        f"{request_page}/charge", {"idempotency_key": _key()}, form_page=request_page
    )
    assert refused.status_code == 402
    assert "Not enough credits: balance 0, price 25, short by 25." in refused.text
    assert "smallest package that covers it is 80 credits (USD 90.00)" in refused.text


def test_a_form_from_another_site_or_without_the_csrf_token_is_refused(
    app_client: TestClient,
) -> None:
    finance = Browser(app_client, "finance")
    data = {"customer_id": f"C-{uuid4().hex[:8]}", "name": "n", "idempotency_key": _key()}
    cross = finance.post(
        "/console/accounts",
        data,
        form_page="/console/accounts",
        headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403 and "another site" in cross.text
    no_token = finance.client.post("/console/accounts", data=data, follow_redirects=False)
    assert no_token.status_code == 403 and "expired or was not made" in no_token.text
    assert finance.get(f"/console/accounts/{data['customer_id']}").status_code == 404


def test_a_page_the_role_may_not_see_is_a_403_page(app_client: TestClient) -> None:
    helpdesk = Browser(app_client, "helpdesk")
    for path in ("/console/finance", "/console/admin", "/console/audit", "/console/movements"):
        answer = helpdesk.get(path)
        assert answer.status_code == 403, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "You may not see this page" in answer.text and "Who may:" in answer.text


def test_unknown_ids_and_bad_addresses_answer_pages_not_stack_traces(
    app_client: TestClient,
) -> None:
    specialist = Browser(app_client, "specialist")
    for path, status in (
        (f"/console/requests/{uuid4()}", 404),
        ("/console/requests/not-a-uuid", 422),
        ("/console/accounts/C-nobody", 404),
        ("/console/nowhere", 404),
    ):
        answer = specialist.get(path)
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["content-type"].startswith("text/html"), path


def test_every_console_page_has_strict_security_headers(app_client: TestClient) -> None:
    answer = Browser(app_client, "helpdesk").get("/console/")
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"


def test_the_statement_link_works_and_is_refused_altered_or_expired(
    app_client: TestClient,
) -> None:
    finance, helpdesk = Browser(app_client, "finance"), Browser(app_client, "helpdesk")
    customer_id = _open_account(finance)
    paid = _sell(finance, customer_id)
    page = helpdesk.get(f"/console/accounts/{customer_id}?link=1&after={paid}")
    link = re.search(r'id="statement-link" readonly value="([^"]+)"', page.text)
    assert link, page.text
    path = link.group(1).removeprefix("http://testserver")
    public = TestClient(app_client.app)  # no session at all
    shown = public.get(path)
    assert shown.status_code == 200
    assert 'id="statement-balance">80 credits' in shown.text
    assert re.search(r'id="statement-digest">[0-9a-f]{64}<', shown.text)
    assert public.get(path + "/statement.json").json()["closing_balance"] == 80
    token = path.rsplit("/", 1)[1]
    altered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert public.get(f"/console/s/{altered}").status_code == 404
    expired = Signer(SECRET.encode(), "statement").sign(
        {"customer_id": customer_id, "since": "2026-01-01T00:00:00+00:00"},
        ttl_s=60,
        now=time.time() - 3600,
    )
    answer = public.get(f"/console/s/{expired}")
    assert answer.status_code == 404 and "expired or was altered" in answer.text
    session = Signer(SECRET.encode(), "session").sign({"customer_id": customer_id}, ttl_s=60)
    assert public.get(f"/console/s/{session}").status_code == 404  # another purpose's token


def test_queues_count_and_list_requests_by_status(app_client: TestClient) -> None:
    finance, helpdesk = Browser(app_client, "finance"), Browser(app_client, "helpdesk")
    specialist = Browser(app_client, "specialist")
    customer_id = _open_account(finance)
    request_page = _open_update(helpdesk, customer_id)
    request_id = request_page.rsplit("/", 1)[1]
    position = helpdesk.client.app.state.ledger.position()  # type: ignore[attr-defined]
    before = specialist.get(f"/console/queues?queue=charge&after={position}")
    assert before.status_code == 200
    assert request_id in before.text
    count = re.search(
        r'Ready to charge <span class="count" aria-label="(\d+) requests"', before.text
    )
    assert count and int(count.group(1)) >= 1
    assert request_id not in specialist.get("/console/queues?queue=disputed").text
    assert specialist.get("/console/queues?queue=nope").status_code == 404
    assert specialist.get("/console/queues?cursor=forged").status_code == 422


def test_accounts_are_found_by_a_part_of_the_name_or_a_low_balance(
    app_client: TestClient,
) -> None:
    finance = Browser(app_client, "finance")
    customer_id = _open_account(finance)
    position = finance.client.app.state.ledger.position()  # type: ignore[attr-defined]
    finance.client.app.state.read_models.wait_for(position)  # type: ignore[attr-defined]
    found = finance.get("/console/accounts", params={"q": "acme sto"})
    assert found.status_code == 200 and customer_id in found.text
    exact = finance.get("/console/accounts", params={"q": customer_id})
    assert exact.status_code == 303 and exact.headers["location"].endswith(customer_id)
    low = finance.get("/console/accounts", params={"balance_below": "1"})
    assert customer_id in low.text
    _sell(finance, customer_id)
    finance.client.app.state.read_models.wait_for(  # type: ignore[attr-defined]
        finance.client.app.state.ledger.position()  # type: ignore[attr-defined]
    )
    assert customer_id not in finance.get("/console/accounts?balance_below=1").text


def test_unpaid_invoices_are_listed_for_finance_and_the_helpdesk(app_client: TestClient) -> None:
    finance, helpdesk = Browser(app_client, "finance"), Browser(app_client, "helpdesk")
    customer_id = _open_account(finance)
    page = f"/console/accounts/{customer_id}"
    issued = finance.post(
        f"{page}/invoices", {"package": "160", "idempotency_key": _key()}, form_page=page
    )
    invoice_id = issued.headers["location"].split("?")[0].rsplit("/", 1)[1]
    finance.client.app.state.read_models.wait_for(  # type: ignore[attr-defined]
        finance.client.app.state.ledger.position()  # type: ignore[attr-defined]
    )
    listed = helpdesk.get("/console/invoices", params={"customer_id": customer_id})
    assert listed.status_code == 200 and invoice_id in listed.text
    assert (
        invoice_id
        not in helpdesk.get(f"/console/invoices?status=paid&customer_id={customer_id}").text
    )
