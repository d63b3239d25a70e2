"""Idempotency-Key: a retry returns the first answer and writes nothing; the
same key with another command is 422; keys are scoped per API key."""

from __future__ import annotations

from uuid import uuid4

from ledger.application import Ledger
from tests.api.conftest import Api


def _ledger(api: Api) -> Ledger:
    ledger: Ledger = api.client.app.state.ledger  # type: ignore[attr-defined]
    return ledger


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"key-{uuid4().hex}"}


def test_a_retried_account_opening_returns_the_first_answer_and_writes_nothing(api: Api) -> None:
    key = _key()
    body = {"customer_id": f"C-{uuid4().hex[:10]}", "name": "Once"}
    first = api.post("helpdesk", "/v1/accounts", body, headers=key)
    assert first.status_code == 201
    position = _ledger(api).position()
    again = api.post("helpdesk", "/v1/accounts", body, headers=key)
    assert (again.status_code, again.json()) == (201, first.json())
    assert _ledger(api).position() == position


def test_a_retried_charge_returns_the_same_balance_and_position(api: Api) -> None:
    customer_id = api.open_account()
    api.buy(customer_id)
    request_id = api.open_request(customer_id)["request_id"]
    key = _key()
    first = api.post("specialist", f"/v1/requests/{request_id}/charge", headers=key)
    position = _ledger(api).position()
    again = api.post("specialist", f"/v1/requests/{request_id}/charge", headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() == {**first.json(), "charged": 25, "balance": 55}
    assert _ledger(api).position() == position
    without_key = api.post("specialist", f"/v1/requests/{request_id}/charge")
    assert without_key.status_code == 409


def test_a_retried_payment_adds_the_credits_once(api: Api) -> None:
    customer_id = api.open_account()
    invoice = api.ok(
        api.post("finance", f"/v1/accounts/{customer_id}/invoices", {"package": 80}), 201
    )
    key = _key()
    path = f"/v1/invoices/{invoice['invoice_id']}/payment"
    first = api.ok(api.post("finance", path, {"payment_ref": "p"}, headers=key))
    again = api.ok(api.post("finance", path, {"payment_ref": "p"}, headers=key))
    assert first == again and first["balance"] == 80


def test_the_same_key_with_another_body_or_path_is_422(api: Api) -> None:
    customer_id = api.open_account()
    key = _key()
    path = f"/v1/accounts/{customer_id}/adjustments"
    api.ok(api.post("finance", path, {"credits": 5, "reason": "r"}, headers=key))
    other_body = api.post("finance", path, {"credits": 6, "reason": "r"}, headers=key)
    assert other_body.status_code == 422
    assert other_body.json()["field"] == "Idempotency-Key"
    other_path = api.post(
        "finance", f"/v1/accounts/{customer_id}/invoices", {"package": 80}, headers=key
    )
    assert other_path.status_code == 422


def test_keys_are_scoped_per_api_key(api: Api) -> None:
    key = _key()
    body = {"customer_id": f"C-{uuid4().hex[:10]}", "name": "Scoped"}
    assert api.post("helpdesk", "/v1/accounts", body, headers=key).status_code == 201
    # finance's key space is its own: not a replay, so the account exists.
    assert api.post("finance", "/v1/accounts", body, headers=key).status_code == 409


def test_a_refusal_is_not_stored_so_its_retry_is_evaluated_again(api: Api) -> None:
    customer_id = api.open_account()
    request_id = api.open_request(customer_id)["request_id"]
    key = _key()
    refused = api.post("specialist", f"/v1/requests/{request_id}/charge", headers=key)
    assert refused.status_code == 402
    api.buy(customer_id)
    retried = api.post("specialist", f"/v1/requests/{request_id}/charge", headers=key)
    assert retried.status_code == 200 and retried.json()["balance"] == 55


def test_an_overlong_or_blank_key_is_422(api: Api) -> None:
    body = {"customer_id": f"C-{uuid4().hex[:10]}", "name": "n"}
    long_key = api.post("helpdesk", "/v1/accounts", body, headers={"Idempotency-Key": "k" * 201})
    assert long_key.status_code == 422
    blank = api.post("helpdesk", "/v1/accounts", body, headers={"Idempotency-Key": " "})
    assert blank.status_code == 422
