"""``/v1/webhooks`` (admin): create shows the secret once, list, disable
(the record stays), the delivery log; bad input is 422 naming the field and
stores nothing; the API process delivers (its projections run in process)."""

from __future__ import annotations

import time

from ledger.integrations.delivery import verify
from tests.api.conftest import Api, auth
from tests.support.receiver import receiver


def test_a_webhook_is_created_listed_and_disabled_and_its_secret_shown_once(api: Api) -> None:
    with receiver() as rec:
        created = api.ok(
            api.post("admin", "/v1/webhooks", {"url": rec.url, "types": ["AccountOpened"]}), 201
        )
        webhook_id = created["webhook_id"]
        assert created["secret"].startswith("whsec_") and created["status"] == "active"
        customer_id = api.open_account()
        rec.wait_for(lambda r: customer_id in [g.item["customer_id"] for g in r.got])
        got = next(g for g in rec.got if g.item["customer_id"] == customer_id)
        assert verify(created["secret"], got.body, got.headers["Ledger-Signature"], time.time())

        listed = api.ok(api.get("admin", "/v1/webhooks"))["items"]
        mine = next(w for w in listed if w["webhook_id"] == webhook_id)
        assert "secret" not in mine and mine["types"] == ["AccountOpened"]

        deliveries = api.ok(api.get("admin", f"/v1/webhooks/{webhook_id}/deliveries"))
        assert deliveries["items"][0]["outcome"] == "delivered"
        assert deliveries["items"][0]["status_code"] == 200
        assert deliveries["items"][0]["response_body"] == "ok"

        disabled = api.ok(api.client.delete(f"/v1/webhooks/{webhook_id}", headers=_admin()))
        assert disabled["status"] == "disabled"
        still = api.ok(api.get("admin", "/v1/webhooks"))["items"]
        assert [w["status"] for w in still if w["webhook_id"] == webhook_id] == ["disabled"]


def test_bad_webhooks_are_422_naming_the_field_and_nothing_is_stored(api: Api) -> None:
    before = len(api.ok(api.get("admin", "/v1/webhooks"))["items"])
    for body, field in [
        ({"url": "ftp://127.0.0.1/x", "types": ["AccountOpened"]}, "url"),
        ({"url": "127.0.0.1:9/x", "types": ["AccountOpened"]}, "url"),
        ({"url": "http://no-such-host.invalid/x", "types": ["AccountOpened"]}, "url"),
        ({"url": "http://127.0.0.1:99999/x", "types": ["AccountOpened"]}, "url"),
        ({"url": "http://127.0.0.1:9/x", "types": ["AccountOpened", "Nope"]}, "types"),
        ({"url": "http://127.0.0.1:9/x", "types": []}, "types"),
        ({"url": "http://127.0.0.1:9/x"}, "types"),
    ]:
        response = api.post("admin", "/v1/webhooks", body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field, body
    assert len(api.ok(api.get("admin", "/v1/webhooks"))["items"]) == before


def test_webhooks_are_for_admin_only(api: Api) -> None:
    body = {"url": "http://127.0.0.1:9/x", "types": ["AccountOpened"]}
    for role in ("helpdesk", "specialist", "finance"):
        assert api.post(role, "/v1/webhooks", body).status_code == 403
        assert api.get(role, "/v1/webhooks").status_code == 403


def test_an_unknown_webhook_is_404_and_a_foreign_cursor_422(api: Api) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert api.get("admin", f"/v1/webhooks/{unknown}/deliveries").status_code == 404
    assert api.client.delete(f"/v1/webhooks/{unknown}", headers=_admin()).status_code == 404
    created = api.ok(
        api.post("admin", "/v1/webhooks", {"url": "http://127.0.0.1:9/", "types": ["BalanceLow"]}),
        201,
    )
    path = f"/v1/webhooks/{created['webhook_id']}/deliveries"
    response = api.get("admin", path, params={"cursor": "abc"})
    assert response.status_code == 422 and response.json()["field"] == "cursor"
    api.client.delete(f"/v1/webhooks/{created['webhook_id']}", headers=_admin())


def test_readiness_tells_whether_this_process_delivers(api: Api) -> None:
    details = api.ok(api.get("admin", "/readyz"))["details"]["webhooks"]
    assert details["delivering"] is True
    assert isinstance(details["failed"], list)


def _admin() -> dict[str, str]:
    return auth("admin")
