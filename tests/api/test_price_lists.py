"""``/v1/price-list`` and ``/v1/price-lists`` (API-1.1.md, "Price lists"),
on both stores. The module has a store of its own (the conftest's module
fixtures): the price lists are one stream per store."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api

VERSION_1_CATEGORIES = {
    "functionality_explanation": 5,
    "configuration": 10,
    "installation": 20,
    "investigation": 20,
    "complex_modification": None,
    "addon_update": 40,
    "theme_update": 100,
    "store_update": 20,
    "security_fix": 0,
    "compatibility_fix": 0,
}


def new_list(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "effective_from": "2099-03-09T00:00:00+04:00",
        "packages": [
            {"credits": 80, "amount_usd": "95.00"},
            {"credits": 160, "amount_usd": "180.00"},
        ],
        "categories": {**VERSION_1_CATEGORIES, "configuration": 12},
        "store_update": {"base": 20, "included_steps": 2, "per_step": 5},
    }
    body.update(changes)
    return body


def test_publish_a_list_for_later_and_read_every_version(api: Api) -> None:
    now = api.ok(api.get("helpdesk", "/v1/price-list"))
    assert now["version"] == 1
    assert now["categories"] == VERSION_1_CATEGORIES
    assert now["packages"][0] == {"credits": 80, "amount_usd": "90.00"}
    assert now["store_update"] == {"base": 20, "included_steps": 2, "per_step": 5}
    assert now["minimums"] == {"complex_modification": 20}

    published = api.ok(api.post("admin", "/v1/price-lists", new_list()), 201)
    assert published["version"] == 2

    assert api.ok(api.get("specialist", "/v1/price-list"))["version"] == 1
    later = api.ok(api.get("finance", "/v1/price-list", params={"at": "2099-03-09T00:00:00Z"}))
    assert (later["version"], later["categories"]["configuration"]) == (2, 12)
    assert later["packages"] == [
        {"credits": 80, "amount_usd": "95.00"},
        {"credits": 160, "amount_usd": "180.00"},
    ]
    versions = api.ok(api.get("helpdesk", "/v1/price-lists"))["versions"]
    assert [v["version"] for v in versions] == [1, 2]


def test_an_invalid_list_is_refused_naming_the_field_and_nothing_is_stored(api: Api) -> None:
    before = api.ok(api.get("admin", "/v1/price-lists"))["versions"]
    missing = {k: v for k, v in VERSION_1_CATEGORIES.items() if k != "theme_update"}
    cases = [
        (new_list(categories=missing), "categories.theme_update"),
        (new_list(effective_from="2020-01-01T00:00:00Z"), "effective_from"),
        (new_list(effective_from="2099-03-09T00:00:00"), "effective_from"),
        (new_list(packages=[{"credits": 80, "amount_usd": "95.001"}]), None),
        (new_list(categories={**VERSION_1_CATEGORIES, "security_fix": 3}), None),
    ]
    for body, field in cases:
        response = api.post("admin", "/v1/price-lists", body)
        assert response.status_code == 422, response.text
        if field is not None:
            assert response.json()["field"] == field, response.text
    assert api.ok(api.get("admin", "/v1/price-lists"))["versions"] == before


def test_only_an_admin_publishes_and_any_role_reads(api: Api) -> None:
    for role in ("helpdesk", "specialist", "finance"):
        assert api.post(role, "/v1/price-lists", new_list()).status_code == 403
        assert api.get(role, "/v1/price-lists").status_code == 200


def test_requests_history_and_invoices_show_their_price_list_version(api: Api) -> None:
    customer_id = api.open_account()
    invoice = api.ok(
        api.post("finance", f"/v1/accounts/{customer_id}/invoices", {"package": 80}), 201
    )
    view = api.ok(api.get("finance", f"/v1/invoices/{invoice['invoice_id']}"))
    assert view["price_list_version"] == 1
    opened = api.open_request(customer_id, "configuration")
    history = api.ok(api.get("specialist", f"/v1/requests/{opened['request_id']}/history"))
    first = history["events"][0]
    assert first["data"]["price_list_version"] == 1
    assert first["state"]["price_list_version"] == 1
    read = api.ok(
        api.get(
            "helpdesk",
            f"/v1/requests/{opened['request_id']}",
            params={"after": opened["position"]},
        )
    )
    assert read["price_list_version"] == 1
    listed = api.ok(api.get("specialist", "/v1/requests", params={"customer_id": customer_id}))
    assert [r["price_list_version"] for r in listed["items"]] == [1]
    paid = api.ok(
        api.post("finance", f"/v1/invoices/{invoice['invoice_id']}/payment", {"payment_ref": "b-1"})
    )
    moves = api.ok(
        api.get(
            "finance",
            f"/v1/accounts/{customer_id}/movements",
            params={"after": paid["position"]},
        )
    )
    assert [(m["kind"], m["price_list_version"]) for m in moves["items"]] == [("purchase", 1)]
