"""Every endpoint of the contract and its error statuses, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from tests.api.conftest import Api, auth

# --- accounts ------------------------------------------------------------------------


def test_opening_an_account_answers_201_with_a_zero_balance(api: Api) -> None:
    customer_id = f"C-{uuid4().hex[:10]}"
    body = api.ok(
        api.post("finance", "/v1/accounts", {"customer_id": customer_id, "name": "Shop"}), 201
    )
    assert body["customer_id"] == customer_id and body["balance"] == 0 and body["position"] > 0


def test_opening_an_existing_account_is_409(api: Api) -> None:
    customer_id = api.open_account()
    response = api.post("helpdesk", "/v1/accounts", {"customer_id": customer_id, "name": "Again"})
    assert response.status_code == 409
    assert response.json()["type"].endswith("/account-already-exists")


def test_reading_an_account_after_a_write_sees_it(api: Api) -> None:
    customer_id = api.open_account("Read Me")
    paid = api.buy(customer_id)
    body = api.ok(
        api.get("specialist", f"/v1/accounts/{customer_id}", params={"after": paid["position"]})
    )
    assert body["name"] == "Read Me" and body["balance"] == 80 and body["purchased"] == 80
    assert body["position"] >= paid["position"]


def test_unknown_account_is_404(api: Api) -> None:
    response = api.get("helpdesk", f"/v1/accounts/nobody-{uuid4().hex}")
    assert response.status_code == 404
    assert response.json()["customer_id"].startswith("nobody-")


def test_as_of_reads_the_account_as_it_was(api: Api) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    customer_id = api.open_account()
    api.buy(customer_id)
    between = datetime.now(UTC)
    api.charged_request(customer_id)
    then = api.ok(
        api.get("finance", f"/v1/accounts/{customer_id}", params={"as_of": between.isoformat()})
    )
    assert then["balance"] == 80 and then["as_of"] is not None
    now = api.ok(
        api.get(
            "finance",
            f"/v1/accounts/{customer_id}",
            params={"as_of": datetime.now(UTC).isoformat()},
        )
    )
    assert now["balance"] == 55
    # Before the account existed: 404.
    missing = api.get(
        "finance", f"/v1/accounts/{customer_id}", params={"as_of": before.isoformat()}
    )
    assert missing.status_code == 404


def test_as_of_accepts_an_unencoded_plus_and_refuses_a_naive_time(api: Api) -> None:
    customer_id = api.open_account()
    later = (datetime.now(UTC) + timedelta(hours=1)).astimezone().isoformat()
    # "+04:00" sent unencoded arrives as " 04:00".
    spaced = api.client.get(
        f"/v1/accounts/{customer_id}?as_of=2099-01-01T10:00:00+04:00", headers=auth("helpdesk")
    )
    assert spaced.status_code == 200, (spaced.text, later)
    naive = api.get("helpdesk", f"/v1/accounts/{customer_id}", params={"as_of": "2026-01-01T10:00"})
    assert naive.status_code == 422 and naive.json()["field"] == "as_of"
    garbage = api.get("helpdesk", f"/v1/accounts/{customer_id}", params={"as_of": "yesterday"})
    assert garbage.status_code == 422 and garbage.json()["field"] == "as_of"


def test_account_movements_are_paged_oldest_first(api: Api) -> None:
    customer_id = api.open_account()
    api.buy(customer_id)
    charged = api.charged_request(customer_id)
    first = api.ok(
        api.get(
            "helpdesk",
            f"/v1/accounts/{customer_id}/movements",
            params={"limit": 1, "after": charged["position"]},
        )
    )
    assert [m["amount"] for m in first["items"]] == [80]
    assert first["next_after"] is not None
    second = api.ok(
        api.get(
            "helpdesk",
            f"/v1/accounts/{customer_id}/movements",
            params={"limit": 1, "page_after": first["next_after"]},
        )
    )
    assert [(m["amount"], m["balance_after"]) for m in second["items"]] == [(-25, 55)]
    assert second["items"][0]["request_id"] == charged["request_id"]
    assert second["items"][0]["actor"] == "specialist:bo"


def test_movements_of_an_unknown_account_are_404(api: Api) -> None:
    assert api.get("finance", f"/v1/accounts/no-{uuid4().hex}/movements").status_code == 404


# --- invoices ------------------------------------------------------------------------


def test_a_custom_invoice_keeps_dollars_exact(api: Api) -> None:
    customer_id = api.open_account()
    invoice = api.ok(
        api.post(
            "finance",
            f"/v1/accounts/{customer_id}/invoices",
            {"credits": 50, "amount_usd": "60.00"},
        ),
        201,
    )
    assert invoice["amount_usd"] == "60.00" and invoice["status"] == "issued"
    read = api.ok(api.get("finance", f"/v1/invoices/{invoice['invoice_id']}"))
    assert read["amount_usd"] == "60.00" and read["credits"] == 50


def test_invoice_input_errors_name_the_field(api: Api) -> None:
    customer_id = api.open_account()
    path = f"/v1/accounts/{customer_id}/invoices"
    cases = [
        ({"package": 81}, "package"),
        ({"credits": 50, "amount_usd": "60.001"}, "amount_usd"),
        ({"credits": 50, "amount_usd": 60}, "amount_usd"),
        ({"credits": 50}, "amount_usd"),
        ({"package": "80"}, "package"),
        ({"package": True}, "package"),
        ({"credits": 1_000_000_001, "amount_usd": "1.00"}, "credits"),
        ({"package": 80, "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        response = api.post("finance", path, body)
        assert response.status_code == 422, (body, response.text)
        assert field in response.json()["field"], (body, response.json())


def test_an_invoice_is_paid_once_and_a_paid_one_cannot_be_voided(api: Api) -> None:
    customer_id = api.open_account()
    invoice = api.ok(
        api.post("finance", f"/v1/accounts/{customer_id}/invoices", {"package": 160}), 201
    )
    pay = f"/v1/invoices/{invoice['invoice_id']}/payment"
    assert api.ok(api.post("finance", pay, {"payment_ref": "p-1"}))["balance"] == 160
    again = api.post("finance", pay, {"payment_ref": "p-2"})
    assert again.status_code == 409
    void = api.post("finance", f"/v1/invoices/{invoice['invoice_id']}/void", {"reason": "x"})
    assert void.status_code == 409


def test_a_voided_invoice_cannot_be_paid(api: Api) -> None:
    customer_id = api.open_account()
    invoice = api.ok(
        api.post("finance", f"/v1/accounts/{customer_id}/invoices", {"package": 80}), 201
    )
    voided = api.ok(
        api.post("finance", f"/v1/invoices/{invoice['invoice_id']}/void", {"reason": "twice"})
    )
    assert voided["status"] == "voided" and voided["balance"] == 0
    pay = api.post("finance", f"/v1/invoices/{invoice['invoice_id']}/payment", {"payment_ref": "p"})
    assert pay.status_code == 409


def test_unknown_or_malformed_invoice_ids(api: Api) -> None:
    unknown = api.post("finance", f"/v1/invoices/{uuid4()}/payment", {"payment_ref": "p"})
    assert unknown.status_code == 404
    malformed = api.post("finance", "/v1/invoices/12/payment", {"payment_ref": "p"})
    assert malformed.status_code == 422 and malformed.json()["field"] == "invoice_id"


# --- subscription and adjustments --------------------------------------------------


def test_a_subscription_period_shows_and_allows_a_theme_update(api: Api) -> None:
    customer_id = api.open_account()
    api.buy(customer_id, 160)
    theme = api.open_request(customer_id, "theme_update")
    refused = api.post("specialist", f"/v1/requests/{theme['request_id']}/charge")
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/subscription-required")
    today = datetime.now(UTC).date()
    recorded = api.ok(
        api.post(
            "finance",
            f"/v1/accounts/{customer_id}/subscription",
            {
                "valid_from": (today - timedelta(days=2)).isoformat(),
                "valid_until": (today + timedelta(days=365)).isoformat(),
            },
        )
    )
    account = api.ok(
        api.get("helpdesk", f"/v1/accounts/{customer_id}", params={"after": recorded["position"]})
    )
    assert (
        account["update_subscription"]["valid_until"] == (today + timedelta(days=365)).isoformat()
    )
    assert account["subscription_active"] is True
    charged = api.ok(api.post("specialist", f"/v1/requests/{theme['request_id']}/charge"))
    assert charged["charged"] == 100 and charged["balance"] == 60


def test_a_subscription_must_end_after_it_starts(api: Api) -> None:
    customer_id = api.open_account()
    response = api.post(
        "finance",
        f"/v1/accounts/{customer_id}/subscription",
        {"valid_from": "2026-05-01", "valid_until": "2026-05-01"},
    )
    assert response.status_code == 422
    bad_date = api.post(
        "finance",
        f"/v1/accounts/{customer_id}/subscription",
        {"valid_from": "2026-02-30", "valid_until": "2026-05-01"},
    )
    assert bad_date.status_code == 422 and bad_date.json()["field"] == "valid_from"


def test_adjustments_are_signed_and_never_below_zero(api: Api) -> None:
    customer_id = api.open_account()
    path = f"/v1/accounts/{customer_id}/adjustments"
    assert api.ok(api.post("finance", path, {"credits": 10, "reason": "goodwill"}))["balance"] == 10
    below = api.post("finance", path, {"credits": -11, "reason": "fix"})
    assert below.status_code == 409 and below.json()["balance"] == 10
    zero = api.post("finance", path, {"credits": 0, "reason": "nothing"})
    assert zero.status_code == 422 and zero.json()["field"] == "credits"
    no_reason = api.post("finance", path, {"credits": 5})
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"


# --- requests ------------------------------------------------------------------------


def test_opening_a_request_refuses_other_channels_and_bad_versions(api: Api) -> None:
    customer_id = api.open_account()
    base = {"customer_id": customer_id, "category": "configuration", "subject": "s"}
    phone = api.post("helpdesk", "/v1/requests", {**base, "channel": "phone"})
    assert phone.status_code == 422 and phone.json()["field"] == "channel"
    category = api.post(
        "helpdesk", "/v1/requests", {**base, "channel": "helpdesk", "category": "magic"}
    )
    assert category.status_code == 422 and category.json()["field"] == "category"
    minor = api.post(
        "helpdesk",
        "/v1/requests",
        {
            **base,
            "channel": "helpdesk",
            "category": "store_update",
            "from_version": "4.3.9",
            "to_version": "4.4.1",
        },
    )
    assert minor.status_code == 422 and "complex_modification" in minor.json()["detail"]
    unknown = api.post(
        "helpdesk", "/v1/requests", {**base, "channel": "helpdesk", "customer_id": "nobody-x"}
    )
    assert unknown.status_code == 404


def test_request_read_model_shows_price_charged_and_refunded(api: Api) -> None:
    customer_id = api.open_account()
    opened = api.open_request(customer_id, "configuration")
    read = api.ok(
        api.get(
            "helpdesk", f"/v1/requests/{opened['request_id']}", params={"after": opened["position"]}
        )
    )
    assert read["price"] == 10 and read["charged"] is None and read["refunded"] == 0
    assert read["status"] == "open" and read["category"] == "configuration"
    assert api.get("helpdesk", f"/v1/requests/{uuid4()}").status_code == 404
    assert api.get("helpdesk", "/v1/requests/not-a-uuid").status_code == 422


def test_pre_quote_quote_and_accept_then_charge(api: Api) -> None:
    customer_id = api.open_account()
    api.buy(customer_id)
    request_id = api.open_request(customer_id, "configuration")["request_id"]
    base = f"/v1/requests/{request_id}"
    pre = api.ok(api.post("helpdesk", f"{base}/pre-quote", {"note": "price first"}))
    assert pre["status"] == "awaiting_quote"
    early = api.post("specialist", f"{base}/charge")
    assert early.status_code == 409
    quoted = api.ok(api.post("specialist", f"{base}/quote", {"price": 12, "surcharge": 3}))
    assert (quoted["work_price"], quoted["surcharge"], quoted["price"]) == (12, 3, 15)
    pending = api.post("specialist", f"{base}/charge")
    assert pending.status_code == 409
    api.ok(api.post("helpdesk", f"{base}/quote/accept"))
    charged = api.ok(api.post("specialist", f"{base}/charge"))
    assert charged["charged"] == 15 and charged["balance"] == 65


def test_a_declined_quote_closes_the_request_at_no_cost(api: Api) -> None:
    customer_id = api.open_account()
    request_id = api.open_request(customer_id, "installation")["request_id"]
    base = f"/v1/requests/{request_id}"
    api.ok(api.post("helpdesk", f"{base}/pre-quote"))
    api.ok(api.post("specialist", f"{base}/quote", {"price": 20}))
    declined = api.ok(api.post("helpdesk", f"{base}/quote/decline", {"reason": "too much"}))
    assert declined["status"] == "declined"
    assert api.post("specialist", f"{base}/charge").status_code == 409


def test_complex_modification_needs_a_price_of_at_least_20_and_agreement(api: Api) -> None:
    customer_id = api.open_account()
    api.buy(customer_id)
    opened = api.open_request(customer_id, "complex_modification")
    assert opened["price"] is None
    base = f"/v1/requests/{opened['request_id']}"
    low = api.post("specialist", f"{base}/quote", {"price": 19})
    assert low.status_code == 422 and low.json()["field"] == "price"
    api.ok(api.post("specialist", f"{base}/quote", {"price": 30}))
    api.ok(api.post("helpdesk", f"{base}/quote/accept"))
    raised = api.ok(api.post("specialist", f"{base}/price", {"price": 40, "reason": "more"}))
    assert raised["price"] == 40
    assert api.post("specialist", f"{base}/charge").status_code == 409
    api.ok(api.post("helpdesk", f"{base}/quote/accept"))
    assert api.ok(api.post("specialist", f"{base}/charge"))["balance"] == 40


def test_a_charge_beyond_the_balance_is_402_with_balance_and_price(api: Api) -> None:
    customer_id = api.open_account()
    request_id = api.open_request(customer_id, "investigation")["request_id"]
    response = api.post("specialist", f"/v1/requests/{request_id}/charge")
    assert response.status_code == 402
    body = response.json()
    assert (body["balance"], body["price"]) == (0, 20)
    assert body["type"].endswith("/insufficient-credits")


def test_a_conflict_is_reported_before_the_402(api: Api) -> None:
    customer_id = api.open_account()
    request_id = api.open_request(customer_id, "addon_update")["request_id"]
    response = api.post("specialist", f"/v1/requests/{request_id}/charge")
    assert response.status_code == 409  # no subscription, and no credits either


def test_referral_and_cancel_close_the_request(api: Api) -> None:
    customer_id = api.open_account()
    referred = api.open_request(customer_id, "investigation")["request_id"]
    body = api.ok(api.post("specialist", f"/v1/requests/{referred}/referral", {"reason": "big"}))
    assert body["status"] == "referred"
    cancelled = api.open_request(customer_id, "investigation")["request_id"]
    assert api.ok(api.post("helpdesk", f"/v1/requests/{cancelled}/cancel"))["status"] == "cancelled"
    assert api.post("helpdesk", f"/v1/requests/{cancelled}/cancel").status_code == 409


def test_a_dispute_can_be_rejected_and_a_refund_never_exceeds_the_charge(api: Api) -> None:
    customer_id = api.open_account()
    api.buy(customer_id)
    request_id = api.charged_request(customer_id)["request_id"]
    base = f"/v1/requests/{request_id}"
    no_dispute = api.post("specialist", f"{base}/refund", {"credits": 5, "reason": "x"})
    assert no_dispute.status_code == 409
    api.ok(api.post("helpdesk", f"{base}/dispute", {"reason": "slow"}))
    rejected = api.ok(api.post("specialist", f"{base}/dispute/reject", {"reason": "was fine"}))
    assert rejected["status"] == "dispute_rejected"
    api.ok(api.post("helpdesk", f"{base}/dispute", {"reason": "still slow"}))
    too_much = api.post("specialist", f"{base}/refund", {"credits": 26, "reason": "x"})
    assert too_much.status_code == 422 and too_much.json()["field"] == "credits"
    part = api.ok(api.post("specialist", f"{base}/refund", {"credits": 10, "reason": "part"}))
    assert part["refunded"] == 10 and part["balance"] == 65


def test_history_replays_every_event_with_the_state_after_it(api: Api) -> None:
    customer_id = api.open_account()
    api.buy(customer_id)
    request_id = api.open_request(customer_id, "configuration")["request_id"]
    base = f"/v1/requests/{request_id}"
    api.ok(api.post("specialist", f"{base}/price", {"price": 12, "reason": "more work"}))
    api.ok(api.post("specialist", f"{base}/charge"))
    history = api.ok(api.get("finance", f"{base}/history"))
    events = history["events"]
    assert [e["type"] for e in events] == ["RequestOpened", "PriceRevised", "AnswerCharged"]
    assert [e["version"] for e in events] == [1, 2, 3]
    assert [e["state"]["price"] for e in events] == [10, 12, 12]
    assert events[-1]["state"]["charged"] == 12
    assert all(e["position"] for e in events)
    assert events[0]["actor"] == "helpdesk:ana" and events[2]["actor"] == "specialist:bo"
    assert api.get("finance", f"/v1/requests/{uuid4()}/history").status_code == 404


# --- finance and operations ------------------------------------------------------------


def test_audit_movements_filter_by_customer_and_time(api: Api) -> None:
    customer_id = api.open_account()
    start = datetime.now(UTC)
    paid = api.buy(customer_id)
    trail = api.ok(
        api.get(
            "finance",
            "/v1/audit/movements",
            params={
                "customer_id": customer_id,
                "since": start.isoformat(),
                "after": paid["position"],
            },
        )
    )
    assert [m["amount"] for m in trail["items"]] == [80]
    assert trail["items"][0]["invoice_id"] is not None
    assert trail["items"][0]["actor"] == "finance:cy"
    empty = api.ok(
        api.get(
            "finance",
            "/v1/audit/movements",
            params={"customer_id": customer_id, "until": start.isoformat()},
        )
    )
    assert empty["items"] == [] and empty["next_after"] is None


def test_summary_is_one_consistent_snapshot(api: Api) -> None:
    customer_id = api.open_account()
    paid = api.buy(customer_id)
    body = api.ok(api.get("finance", "/v1/reports/summary", params={"after": paid["position"]}))
    assert body["credits_sold"] >= 80
    assert body["credits_outstanding"] == (
        body["credits_sold"]
        - body["credits_charged"]
        + body["credits_refunded"]
        + body["credits_adjusted"]
    )
    assert body["usd_received"].count(".") == 1 and len(body["usd_received"].split(".")[1]) == 2
    assert len(body["liability_usd"].split(".")[1]) == 2


def test_support_hours_for_any_role(api: Api) -> None:
    for role in ("helpdesk", "specialist", "finance", "admin"):
        body = api.ok(api.get(role, "/v1/support-hours"))
        assert body["open"] is True and body["next_open"] is None
        assert datetime.fromisoformat(body["now"]).utcoffset() is not None


def test_health_readiness_and_metrics(api: Api) -> None:
    assert api.ok(api.get(None, "/healthz"))["status"] == "ok"
    ready = api.ok(api.get("admin", "/readyz"))
    assert ready["position"] >= 0
    assert {"balances", "movements", "requests", "summary"} <= set(ready["lag"])
    api.get("helpdesk", "/v1/support-hours")
    metrics = api.get("admin", "/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'ledger_http_requests_total{method="GET",route="/v1/support-hours",status="200"}' in text
    assert "ledger_http_request_duration_seconds_bucket" in text
    assert "ledger_events_appended" in text and "ledger_read_model_lag_events" in text


def test_openapi_and_docs_are_served(api: Api) -> None:
    schema = api.ok(api.get(None, "/openapi.json"))
    assert "/v1/requests/{request_id}/charge" in schema["paths"]
    bodies = [
        op["requestBody"]
        for path in schema["paths"].values()
        for op in path.values()
        if "requestBody" in op
    ]
    assert bodies
    components = schema["components"]["schemas"]
    for body in bodies:
        ref = body["content"]["application/json"]["schema"]
        ref = ref.get("$ref") or next(r["$ref"] for r in ref["anyOf"] if "$ref" in r)
        assert components[ref.rsplit("/", 1)[1]].get("examples"), ref
    assert api.get(None, "/docs").status_code == 200
