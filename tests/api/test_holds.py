"""``POST /v1/requests/{id}/start`` and ``available`` over HTTP (issue 15):
roles, the 402 with balance / available / price, the 409 without a price,
idempotent starts, and the account and read model showing the hold."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api


def started(api: Api, credits: int = 80, category: str = "installation") -> tuple[str, str]:
    customer_id = api.open_account()
    api.buy(customer_id, credits)
    request_id = api.open_request(customer_id, category)["request_id"]
    return customer_id, request_id


def test_a_start_holds_the_price_and_the_account_shows_balance_and_available(api: Api) -> None:
    customer_id, request_id = started(api)

    body = api.ok(api.post("specialist", f"/v1/requests/{request_id}/start"))

    assert (body["held"], body["balance"], body["available"]) == (20, 80, 60)
    assert body["request_id"] == request_id and body["lapses_at"]
    account = api.ok(
        api.get("finance", f"/v1/accounts/{customer_id}", params={"after": body["position"]})
    )
    assert (account["balance"], account["available"]) == (80, 60)


def test_starting_twice_is_idempotent(api: Api) -> None:
    _, request_id = started(api)
    first = api.ok(api.post("specialist", f"/v1/requests/{request_id}/start"))

    again = api.ok(api.post("specialist", f"/v1/requests/{request_id}/start"))

    assert (again["held"], again["available"], again["lapses_at"]) == (
        first["held"],
        first["available"],
        first["lapses_at"],
    )


def test_a_start_the_available_credits_cannot_cover_is_402(api: Api) -> None:
    customer_id, request_id = started(api)
    for _ in range(4):
        other = api.open_request(customer_id, "installation")["request_id"]
        api.ok(api.post("specialist", f"/v1/requests/{other}/start"))

    response = api.post("specialist", f"/v1/requests/{request_id}/start")

    assert response.status_code == 402
    body = response.json()
    assert (body["balance"], body["available"], body["price"]) == (80, 0, 20)
    assert body["type"].endswith("/insufficient-credits")


def test_a_request_without_a_price_cannot_be_started(api: Api) -> None:
    _, request_id = started(api, category="complex_modification")

    response = api.post("specialist", f"/v1/requests/{request_id}/start")

    assert response.status_code == 409
    assert response.json()["type"].endswith("/quote-pending")


def test_a_charge_takes_the_hold_and_a_cancel_releases_it(api: Api) -> None:
    customer_id, request_id = started(api)
    api.ok(api.post("specialist", f"/v1/requests/{request_id}/start"))
    cancelled = api.open_request(customer_id, "installation")["request_id"]
    api.ok(api.post("specialist", f"/v1/requests/{cancelled}/start"))

    charged = api.ok(api.post("specialist", f"/v1/requests/{request_id}/charge"))
    done = api.ok(api.post("helpdesk", f"/v1/requests/{cancelled}/cancel", {}))

    assert charged["balance"] == 60
    account = api.ok(
        api.get("finance", f"/v1/accounts/{customer_id}", params={"after": done["position"]})
    )
    assert (account["balance"], account["available"]) == (60, 60)


@pytest.mark.parametrize("role", ["helpdesk", "finance"])
def test_only_a_specialist_starts_work(api: Api, role: str) -> None:
    _, request_id = started(api)

    response = api.post(role, f"/v1/requests/{request_id}/start")

    assert response.status_code == 403


def test_starting_an_unknown_request_is_404(api: Api) -> None:
    response = api.post("specialist", "/v1/requests/00000000-0000-0000-0000-000000000000/start")

    assert response.status_code == 404
