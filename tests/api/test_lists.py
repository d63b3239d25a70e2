"""The lists (API-1.1, "Lists") through HTTP on SQLite and PostgreSQL: every
filter, the roles, keyset pages that neither repeat nor skip while writes go
on between pages, tamper-evident cursors, and 422 for every bad parameter."""

from __future__ import annotations

import base64
import json
from typing import Any
from uuid import uuid4

import pytest

from tests.api.conftest import Api


def _token() -> str:
    return uuid4().hex[:10]


def _all_pages(
    api: Api, role: str, path: str, params: dict[str, Any], between: Any = None
) -> list[list[dict[str, Any]]]:
    """Every page of a list, calling ``between()`` after each page but the last."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    for _ in range(100):
        page = api.ok(
            api.get(role, path, params={**params, **({"cursor": cursor} if cursor else {})})
        )
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        if between is not None:
            between()
    raise AssertionError("the list did not end within 100 pages")


def settle(api: Api) -> None:
    """Wait until the app's read models have processed every stored event."""
    read_models = api.client.app.state.read_models  # type: ignore[attr-defined]
    read_models.wait_for(api.client.app.state.ledger.position())  # type: ignore[attr-defined]


# --- accounts ------------------------------------------------------------------


def test_accounts_are_found_by_a_prefix_of_the_customer_id_case_insensitively(
    api: Api,
) -> None:
    prefix = f"Zq{_token()}"
    ids = [f"{prefix}-{i}" for i in range(3)]
    last = 0
    for customer_id in ids:
        last = api.ok(
            api.post("helpdesk", "/v1/accounts", {"customer_id": customer_id, "name": "Shop"}),
            201,
        )["position"]
    other = api.open_account()
    found = api.ok(api.get("helpdesk", "/v1/accounts", params={"q": prefix.upper(), "after": last}))
    assert [a["customer_id"] for a in found["items"]] == sorted(ids)
    assert other not in {a["customer_id"] for a in found["items"]}
    assert found["next_cursor"] is None
    item = found["items"][0]
    assert item == api.ok(api.get("helpdesk", f"/v1/accounts/{item['customer_id']}"))


def test_accounts_are_found_by_a_part_of_the_name_unicode_aware(api: Api) -> None:
    token = _token()
    street = api.open_account(f"Weiße Straße {token} GmbH")
    muller = api.open_account(f"Müller {token} Ltd")
    api.open_account("Somebody Else")
    settle(api)
    by_eszett = api.ok(api.get("specialist", "/v1/accounts", params={"q": f"STRASSE {token}"}))
    assert [a["customer_id"] for a in by_eszett["items"]] == [street]
    by_umlaut = api.ok(api.get("finance", "/v1/accounts", params={"q": f"MÜLLER {token.upper()}"}))
    assert [a["customer_id"] for a in by_umlaut["items"]] == [muller]
    both = api.ok(api.get("helpdesk", "/v1/accounts", params={"q": token}))
    assert {a["customer_id"] for a in both["items"]} == {street, muller}


def test_a_search_for_like_wildcards_matches_them_literally(api: Api) -> None:
    token = _token()
    percent = api.open_account(f"100% {token}")
    api.open_account(f"100 {token}")
    settle(api)
    found = api.ok(api.get("helpdesk", "/v1/accounts", params={"q": f"0% {token}"}))
    assert [a["customer_id"] for a in found["items"]] == [percent]
    assert api.ok(api.get("helpdesk", "/v1/accounts", params={"q": f"_ {token}"}))["items"] == []


def test_accounts_with_a_balance_below_a_bound(api: Api) -> None:
    token = _token()
    empty = api.open_account(f"Low {token}")
    rich = api.open_account(f"High {token}")
    paid = api.buy(rich)
    found = api.ok(
        api.get(
            "helpdesk",
            "/v1/accounts",
            params={"q": token, "balance_below": 80, "after": paid["position"]},
        )
    )
    assert [(a["customer_id"], a["balance"]) for a in found["items"]] == [(empty, 0)]
    above = api.ok(api.get("helpdesk", "/v1/accounts", params={"q": token, "balance_below": 81}))
    assert {a["customer_id"] for a in above["items"]} == {empty, rich}


def test_account_pages_neither_repeat_nor_skip_while_accounts_are_opened(api: Api) -> None:
    prefix = f"P{_token()}"
    existing = [f"{prefix}-{i:02d}" for i in range(1, 20, 2)]
    for customer_id in existing:
        api.ok(
            api.post("helpdesk", "/v1/accounts", {"customer_id": customer_id, "name": "Shop"}), 201
        )
    settle(api)
    counter = iter(range(0, 40, 2))

    def open_more() -> None:
        # Both before and after the page boundary: "-00", "-02", ... and "-99x".
        n = next(counter)
        api.ok(
            api.post(
                "helpdesk", "/v1/accounts", {"customer_id": f"{prefix}-{n:02d}", "name": "New"}
            ),
            201,
        )
        api.ok(
            api.post("helpdesk", "/v1/accounts", {"customer_id": f"{prefix}-99{n}", "name": "New"}),
            201,
        )
        settle(api)

    pages = _all_pages(api, "helpdesk", "/v1/accounts", {"q": prefix, "limit": 3}, open_more)
    seen = [a["customer_id"] for page in pages for a in page]
    assert len(seen) == len(set(seen)), "a page repeated an account"
    assert set(existing) <= set(seen), "a page skipped an account"
    assert seen == sorted(seen)
    assert all(len(page) <= 3 for page in pages)


# --- requests -------------------------------------------------------------------


def _requests_story(api: Api) -> dict[str, Any]:
    """One customer with requests open, awaiting a quote, charged, cancelled."""
    customer_id = api.open_account()
    api.buy(customer_id, 320)
    opened = api.open_request(customer_id, "configuration")
    awaiting = api.open_request(customer_id, "investigation")
    api.ok(api.post("helpdesk", f"/v1/requests/{awaiting['request_id']}/pre-quote"))
    charged = api.charged_request(customer_id)
    cancelled = api.open_request(customer_id, "configuration")
    last = api.ok(api.post("helpdesk", f"/v1/requests/{cancelled['request_id']}/cancel"))
    return {
        "customer_id": customer_id,
        "open": opened["request_id"],
        "awaiting_quote": awaiting["request_id"],
        "charged": charged["request_id"],
        "cancelled": cancelled["request_id"],
        "position": last["position"],
    }


def _ids(page: dict[str, Any]) -> list[str]:
    return [item["request_id"] for item in page["items"]]


def test_requests_are_listed_newest_first_and_filtered(api: Api) -> None:
    story = _requests_story(api)
    customer = {"customer_id": story["customer_id"], "after": story["position"]}
    every = api.ok(api.get("specialist", "/v1/requests", params=customer))
    assert _ids(every) == [
        story["cancelled"],
        story["charged"],
        story["awaiting_quote"],
        story["open"],
    ]
    item = every["items"][0]
    assert item == api.ok(api.get("specialist", f"/v1/requests/{item['request_id']}"))
    waiting = api.ok(
        api.get("specialist", "/v1/requests", params={**customer, "status": "awaiting_quote"})
    )
    assert _ids(waiting) == [story["awaiting_quote"]]
    two = api.ok(
        api.get(
            "helpdesk",
            "/v1/requests",
            params=[*customer.items(), ("status", "open"), ("status", "charged")],
        )
    )
    assert _ids(two) == [story["charged"], story["open"]]
    configuration = api.ok(
        api.get("finance", "/v1/requests", params={**customer, "category": "configuration"})
    )
    assert _ids(configuration) == [story["cancelled"], story["open"]]
    assert (
        api.ok(
            api.get(
                "finance",
                "/v1/requests",
                params={**customer, "category": "configuration", "status": "charged"},
            )
        )["items"]
        == []
    )


def test_the_status_filter_without_a_customer_sees_every_customer(api: Api) -> None:
    first, second = _requests_story(api), _requests_story(api)
    found = api.ok(
        api.get(
            "specialist",
            "/v1/requests",
            params={"status": "awaiting_quote", "limit": 500, "after": second["position"]},
        )
    )
    assert {first["awaiting_quote"], second["awaiting_quote"]} <= set(_ids(found))
    assert {item["status"] for item in found["items"]} == {"awaiting_quote"}


def test_request_pages_neither_repeat_nor_skip_while_requests_change(api: Api) -> None:
    customer_id = api.open_account()
    api.buy(customer_id, 320)
    existing = [api.open_request(customer_id, "configuration")["request_id"] for _ in range(7)]
    settle(api)

    changing = iter(existing)

    def write() -> None:
        # A new request (newer than every page) and a change to an old one.
        api.open_request(customer_id, "configuration")
        api.ok(api.post("helpdesk", f"/v1/requests/{next(changing)}/pre-quote"))
        settle(api)

    pages = _all_pages(
        api, "helpdesk", "/v1/requests", {"customer_id": customer_id, "limit": 2}, write
    )
    seen = [item["request_id"] for page in pages for item in page]
    assert len(seen) == len(set(seen))
    assert set(existing) <= set(seen)
    assert seen[-1] == existing[0]


# --- invoices -------------------------------------------------------------------


def test_invoices_are_listed_newest_first_by_status_and_customer(api: Api) -> None:
    customer_id = api.open_account()
    paid = api.buy(customer_id)
    voided = api.ok(
        api.post("finance", f"/v1/accounts/{customer_id}/invoices", {"package": 160}), 201
    )
    api.ok(api.post("finance", f"/v1/invoices/{voided['invoice_id']}/void", {"reason": "wrong"}))
    issued = api.ok(
        api.post("finance", f"/v1/accounts/{customer_id}/invoices", {"package": 320}), 201
    )
    mine = {"customer_id": customer_id, "after": issued["position"]}
    every = api.ok(api.get("finance", "/v1/invoices", params=mine))
    assert [i["invoice_id"] for i in every["items"]] == [
        issued["invoice_id"],
        voided["invoice_id"],
        paid["invoice_id"],
    ]
    assert [i["status"] for i in every["items"]] == ["issued", "voided", "paid"]
    assert every["items"][0] == api.ok(api.get("finance", f"/v1/invoices/{issued['invoice_id']}"))
    assert every["items"][2]["payment_ref"].startswith("pay-")
    for status, invoice_id in (
        ("issued", issued["invoice_id"]),
        ("paid", paid["invoice_id"]),
        ("voided", voided["invoice_id"]),
    ):
        page = api.ok(api.get("helpdesk", "/v1/invoices", params={**mine, "status": status}))
        assert [i["invoice_id"] for i in page["items"]] == [invoice_id]
    pages = _all_pages(api, "finance", "/v1/invoices", {"customer_id": customer_id, "limit": 1})
    assert [p[0]["invoice_id"] for p in pages] == [i["invoice_id"] for i in every["items"]]


# --- movements ------------------------------------------------------------------


def test_movements_are_paged_by_cursor_and_by_the_older_page_after(api: Api) -> None:
    customer_id = api.open_account()
    api.buy(customer_id, 320)
    last = 0
    for _ in range(4):
        last = api.charged_request(customer_id)["position"]
    path = f"/v1/accounts/{customer_id}/movements"
    every = api.ok(api.get("helpdesk", path, params={"after": last}))
    assert [m["amount"] for m in every["items"]] == [320, -25, -25, -25, -25]
    assert every["next_cursor"] is None and every["next_after"] is None

    def charge() -> None:
        api.charged_request(customer_id)

    pages = _all_pages(api, "specialist", path, {"limit": 2}, charge)
    seen = [m["position"] for page in pages for m in page]
    assert seen == sorted(set(seen))
    assert {m["position"] for m in every["items"]} <= set(seen)
    first = api.ok(api.get("finance", path, params={"limit": 2}))
    by_position = api.ok(
        api.get("finance", path, params={"limit": 2, "page_after": first["next_after"]})
    )
    by_cursor = api.ok(
        api.get("finance", path, params={"limit": 2, "cursor": first["next_cursor"]})
    )
    assert by_position["items"] == by_cursor["items"] == every["items"][2:4]


# --- roles ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v1/accounts", {"helpdesk", "specialist", "finance", "admin"}),
        ("/v1/requests", {"helpdesk", "specialist", "finance", "admin"}),
        ("/v1/invoices", {"helpdesk", "finance", "admin"}),
    ],
)
def test_each_list_answers_the_roles_of_the_contract(
    api: Api, path: str, allowed: set[str]
) -> None:
    for role in ("helpdesk", "specialist", "finance", "admin"):
        response = api.get(role, path, params={"limit": 1})
        assert response.status_code == (200 if role in allowed else 403), (role, response.text)
    assert api.get(None, path).status_code == 401


def test_movements_answer_the_roles_of_the_contract(api: Api) -> None:
    customer_id = api.open_account()
    settle(api)
    for role in ("helpdesk", "specialist", "finance", "admin"):
        api.ok(api.get(role, f"/v1/accounts/{customer_id}/movements", params={"limit": 1}))
    assert api.get(None, f"/v1/accounts/{customer_id}/movements").status_code == 401


# --- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/requests", {"status": "bogus"}, "status"),
        ("/v1/requests", [("status", "open"), ("status", "nope")], "status"),
        ("/v1/requests", {"category": "bogus"}, "category"),
        ("/v1/invoices", {"status": "unpaid"}, "status"),
        ("/v1/accounts", {"balance_below": "-1"}, "balance_below"),
        ("/v1/accounts", {"balance_below": "1.5"}, "balance_below"),
        ("/v1/accounts", {"balance_below": "ten"}, "balance_below"),
        ("/v1/accounts", {"limit": "0"}, "limit"),
        ("/v1/accounts", {"limit": "501"}, "limit"),
        ("/v1/requests", {"limit": "-3"}, "limit"),
        ("/v1/invoices", {"limit": "x"}, "limit"),
        ("/v1/accounts", {"q": "x" * 201}, "q"),
        ("/v1/accounts", {"q": "nul\x00byte"}, "q"),
        ("/v1/requests", {"customer_id": "tab\there"}, "customer_id"),
        ("/v1/accounts", {"cursor": "not-a-cursor"}, "cursor"),
        ("/v1/requests", {"cursor": "e30.AAAA"}, "cursor"),
        ("/v1/invoices", {"cursor": "x" * 5000}, "cursor"),
        ("/v1/accounts", {"after": "-1"}, "after"),
    ],
)
def test_bad_list_parameters_are_422_naming_the_parameter(
    api: Api, path: str, params: Any, field: str
) -> None:
    response = api.get("admin", path, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def _first_cursor(api: Api, path: str, params: dict[str, Any]) -> str:
    page = api.ok(api.get("admin", path, params={**params, "limit": 1}))
    cursor = page["next_cursor"]
    assert isinstance(cursor, str)
    return cursor


def test_a_cursor_is_refused_for_another_list_other_filters_or_when_altered(api: Api) -> None:
    customer_id = api.open_account()
    api.buy(customer_id)
    api.buy(customer_id)
    api.open_request(customer_id, "configuration")
    api.open_request(customer_id, "configuration")
    settle(api)
    mine = {"customer_id": customer_id}
    requests_cursor = _first_cursor(api, "/v1/requests", mine)
    invoices_cursor = _first_cursor(api, "/v1/invoices", mine)
    refused = [
        ("/v1/invoices", {**mine, "cursor": requests_cursor}),  # another list
        ("/v1/requests", {"cursor": requests_cursor}),  # other filters
        ("/v1/requests", {**mine, "status": "open", "cursor": requests_cursor}),
        ("/v1/invoices", {**mine, "status": "paid", "cursor": invoices_cursor}),
    ]
    body, mac = requests_cursor.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["k"] = payload["k"] + 1000  # the same shape, another key: the MAC no longer fits
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    refused += [
        ("/v1/requests", {**mine, "cursor": f"{forged}.{mac}"}),
        ("/v1/requests", {**mine, "cursor": f"{body}.{mac[:-2]}AA"}),
        ("/v1/requests", {**mine, "cursor": f"{body}."}),
    ]
    for path, params in refused:
        response = api.get("admin", path, params=params)
        assert response.status_code == 422, (path, params, response.text)
        assert response.json()["field"] == "cursor"
    assert api.ok(api.get("admin", "/v1/requests", params={**mine, "cursor": requests_cursor}))
