"""``GET /v1/accounts/{id}/statement``: each line says what it was, for the
customer (the request's subject and category, the invoice's package)."""

from __future__ import annotations

from tests.api.conftest import Api


def test_statement_lines_carry_subject_category_package_and_description(api: Api) -> None:
    customer_id = api.open_account()
    api.buy(customer_id, 80)
    api.charged_request(customer_id)

    body = api.ok(api.get("finance", f"/v1/accounts/{customer_id}/statement"))
    purchase, charge = body["lines"]

    assert purchase["package"] == 80
    assert purchase["description"].startswith("Purchase of 80 credits (invoice ")
    assert (charge["subject"], charge["category"]) == ("please help", "store_update")
    assert charge["description"] == "The answer to 'please help' (store update)"
