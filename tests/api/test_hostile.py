"""A hostile client's attacks (issue 18, points 7 to 9), each refused:
open operations endpoints and driver text in 503s, customer ids that were
unreachable or confusable, two ``Authorization`` headers, a body parsed
before the caller is known, keys in a repr, world-readable files."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import ledger.aggregates.account as account_module
from api.app import create_app
from ledger.bootstrap import open_ledger
from ledger.errors import StoreUnavailableError
from ledger.settings import LedgerSettings
from ledger.validation import required_text
from ledger.values import Role
from tests.api.conftest import API_KEYS, SECOND_FINANCE, TOKENS, Api, _check, auth, make_settings

METRICS_TOKEN = "prometheus-scrape-0001"
FULLWIDTH_SP_9001 = "\uff33\uff30-9001"  # SP-9001 in fullwidth letters


@pytest.fixture(scope="module")
def app_settings(database_url: str) -> LedgerSettings:
    return make_settings(database_url, metrics_token=METRICS_TOKEN)


# --- 7. operations endpoints --------------------------------------------------------


def test_metrics_need_the_admin_role_or_the_metrics_token(api: Api) -> None:
    api.get("helpdesk", "/v1/support-hours")
    # Before: 200 with request counts per route and status to anyone.
    anonymous = api.get(None, "/metrics")
    assert anonymous.status_code == 401 and "ledger_http" not in anonymous.text
    assert api.get("finance", "/metrics").status_code == 403
    wrong = api.get(None, "/metrics", headers={"Authorization": "Bearer not-the-token-01"})
    assert wrong.status_code == 401
    for headers in (auth("admin"), {"Authorization": f"Bearer {METRICS_TOKEN}"}):
        metrics = api.get(None, "/metrics", headers=headers)
        assert metrics.status_code == 200 and "ledger_http_requests_total" in metrics.text


def test_readiness_says_only_ready_without_the_admin_role(api: Api) -> None:
    # Before: the position and every read model's lag to anyone.
    for role in (None, "helpdesk", "finance"):
        assert api.ok(api.get(role, "/readyz")) == {"status": "ready"}
    ready = api.ok(api.get("admin", "/readyz"))
    assert ready["status"] == "ready" and ready["position"] >= 0 and ready["lag"]


def test_a_503_says_what_to_do_and_logs_the_driver_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'down.db'}", in_process_projections=False)
    ledger = open_ledger(settings)
    driver_text = "terminating connection due to administrator command"
    try:
        with TestClient(create_app(settings, ledger=ledger)) as client:
            client.event_hooks["response"].append(_check)

            def down() -> int:
                raise StoreUnavailableError(f"the read models are unavailable: {driver_text}")

            monkeypatch.setattr(ledger, "position", down)
            with caplog.at_level(logging.WARNING, logger="api"):
                for headers in ({}, auth("admin")):
                    ready = client.get("/readyz", headers=headers)
                    assert ready.status_code == 503 and ready.headers["retry-after"] == "1"
                    # Before: "the read models are unavailable: terminating connection ..."
                    assert ready.json()["detail"] == "the read models are unavailable; retry later"
                    assert driver_text not in ready.text
            assert driver_text in caplog.text
    finally:
        ledger.close()


# --- 8. customer ids ------------------------------------------------------------------


@pytest.mark.parametrize(
    "customer_id",
    ["C/1", "C\\1", "C\t1", "C\n1", "C\r1", "C\u200b1", "C" * 65, "C\x7f1"],
    ids=["slash", "backslash", "tab", "newline", "cr", "zero-width", "65-long", "del"],
)
def test_a_customer_id_breaking_the_rule_is_422_naming_the_field(
    api: Api, customer_id: str
) -> None:
    # Before: accepted at opening, then unreachable (the path cannot carry it).
    response = api.post("helpdesk", "/v1/accounts", {"customer_id": customer_id, "name": "X"})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == "customer_id"
    assert "customer_id" in body["detail"]


def test_confusable_customer_ids_are_one_account(api: Api) -> None:
    plain = "SP-9001"
    opened = api.ok(api.post("helpdesk", "/v1/accounts", {"customer_id": plain, "name": "A"}), 201)
    assert opened["customer_id"] == plain
    # Before: each of these opened an account of its own.
    for twin in (FULLWIDTH_SP_9001, "SP\u20119001", " SP-9001 "):
        again = api.post("helpdesk", "/v1/accounts", {"customer_id": twin, "name": "B"})
        assert again.status_code == 409, again.text
    paid = api.buy(plain)
    # A lookup by a twin finds the same account.
    for twin in (FULLWIDTH_SP_9001, "SP\u20119001"):
        found = api.get("helpdesk", f"/v1/accounts/{twin}", params={"after": paid["position"]})
        assert api.ok(found)["customer_id"] == plain
    charged = api.charged_request(FULLWIDTH_SP_9001)
    assert charged["balance"] == 80 - 25
    after = {"after": charged["position"]}
    assert api.ok(api.get("helpdesk", f"/v1/accounts/{plain}", params=after))["balance"] == 55


def test_an_account_opened_under_the_old_rule_keeps_working(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids stored before the rule (not in normal form, longer than 64) are
    found by their exact id, read and charged, even beside a new account
    with their normal form."""
    old_ids = ["\uff2f\uff2c\uff24-1", "old-" + "x" * 96]

    def old_rule(value: object) -> str:
        assert isinstance(value, str)
        return required_text("customer_id", value, max_length=200)

    with monkeypatch.context() as patched:
        patched.setattr(account_module, "valid_customer_id", old_rule)
        for old in old_ids:
            api.ok(api.post("helpdesk", "/v1/accounts", {"customer_id": old, "name": "Old"}), 201)
    # The new rule is back: the normal form of the first is a new account of its own.
    api.ok(api.post("helpdesk", "/v1/accounts", {"customer_id": "OLD-1", "name": "New"}), 201)
    for old in old_ids:
        paid = api.buy(old)
        charged = api.charged_request(old)
        assert charged["balance"] == 80 - 25, charged
        account = api.ok(
            api.get("helpdesk", f"/v1/accounts/{old}", params={"after": charged["position"]})
        )
        assert account["customer_id"] == old and account["balance"] == 55
        assert paid["position"] < charged["position"]
    new = api.ok(api.get("helpdesk", "/v1/accounts/OLD-1", params={"after": charged["position"]}))
    assert new["customer_id"] == "OLD-1" and new["balance"] == 0


# --- 9. authentication and secrets ----------------------------------------------------


def test_two_authorization_headers_are_400(api: Api) -> None:
    headers = [
        ("Authorization", f"Bearer {TOKENS['helpdesk']}"),
        ("Authorization", f"Bearer {TOKENS['finance']}"),
    ]
    # Before: the first header won.
    response = api.client.get("/v1/support-hours", headers=httpx.Headers(headers))
    assert response.status_code == 400, response.text
    assert "Authorization" in response.json()["detail"]
    opened = api.client.post(
        "/v1/accounts",
        json={"customer_id": "two-auth", "name": "X"},
        headers=httpx.Headers(headers),
    )
    assert opened.status_code == 400
    assert api.get("finance", "/v1/accounts/two-auth").status_code == 404


def test_malformed_json_without_a_token_is_401(api: Api) -> None:
    json_type = {"content-type": "application/json"}
    # Before: 400 "the body is not valid JSON" to a caller with no token.
    for headers in (json_type, {**json_type, "Authorization": "Bearer unknown-token-01"}):
        response = api.client.post("/v1/accounts", content=b"{not json", headers=headers)
        assert response.status_code == 401, response.text
    with_token = api.client.post(
        "/v1/accounts", content=b"{not json", headers={**json_type, **auth("helpdesk")}
    )
    assert with_token.status_code == 400 and with_token.json()["type"].endswith("/malformed-json")


def test_the_settings_repr_shows_no_key() -> None:
    settings = LedgerSettings(api_keys=API_KEYS, metrics_token=METRICS_TOKEN)
    # Before: repr(settings) contained api_keys='helpdesk:ana:helpdesk-token-0001,...'.
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert METRICS_TOKEN not in text
        for token in TOKENS.values():
            assert token not in text
    # The keys still work: the key ring is built from them.
    # (and the second finance key of the four-eyes tests, last)
    assert [e.role for e in settings.api_key_entries] == [Role(r) for r in TOKENS] + [Role.FINANCE]
    assert SECOND_FINANCE["Authorization"].removeprefix("Bearer ") not in repr(settings)
    assert settings.metrics_token is not None
    assert settings.metrics_token.get_secret_value() == METRICS_TOKEN


def test_the_sqlite_store_and_its_directory_are_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "deep" / "ledger.db"
    settings = make_settings(f"sqlite:///{path}")
    ledger = open_ledger(settings)
    try:
        with TestClient(create_app(settings, ledger=ledger)) as client:
            Api(client).open_account()
    finally:
        ledger.close()
    # Before: var/ 0755 and ledger.db 0644 (the umask's), readable by every local user.
    for directory in (path.parent, path.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    files = [p for p in path.parent.iterdir() if p.name.startswith("ledger.db")]
    assert path in files
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
