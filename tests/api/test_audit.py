"""``GET /v1/audit/verify`` and ``GET /v1/accounts/{id}/statement``."""

from __future__ import annotations

from tests.api.conftest import Api


def test_verify_answers_ok_with_the_chain_head(api: Api) -> None:
    customer_id = api.open_account()
    bought = api.buy(customer_id)

    answer = api.ok(api.get("finance", "/v1/audit/verify"))

    assert answer["ok"] is True
    assert answer["first_break"] is None
    assert answer["checked"] == answer["head"]["count"]
    assert answer["head"]["position"] + answer["unchained"] >= bought["position"]
    assert len(answer["head"]["hash"]) == 64


def test_statement_shows_opening_movements_closing_and_the_chain_head(api: Api) -> None:
    customer_id = api.open_account()
    api.buy(customer_id)
    api.charged_request(customer_id)

    statement = api.ok(api.get("helpdesk", f"/v1/accounts/{customer_id}/statement"))

    assert statement["opening_balance"] == 0
    assert [(line["kind"], line["amount"]) for line in statement["lines"]] == [
        ("purchase", 80),
        ("charge", -25),
    ]
    assert statement["closing_balance"] == 55
    assert statement["chain_head"]["position"] >= statement["lines"][-1]["position"]
    assert len(statement["digest"]) == 64


def test_statement_of_a_period_starts_from_the_balance_before_it(api: Api) -> None:
    customer_id = api.open_account()
    api.buy(customer_id)
    api.charged_request(customer_id)
    first = api.ok(api.get("finance", f"/v1/accounts/{customer_id}/statement"))
    since = first["lines"][1]["at"]

    period = api.ok(
        api.get("finance", f"/v1/accounts/{customer_id}/statement", params={"since": since})
    )

    assert period["opening_balance"] == 80
    assert [line["amount"] for line in period["lines"]] == [-25]


def test_statement_of_an_unknown_account_is_404(api: Api) -> None:
    response = api.get("finance", "/v1/accounts/C-nobody/statement")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_statement_with_since_after_until_is_422_naming_until(api: Api) -> None:
    customer_id = api.open_account()

    response = api.get(
        "finance",
        f"/v1/accounts/{customer_id}/statement",
        params={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    )

    assert response.status_code == 422
    assert response.json()["field"] == "until"
