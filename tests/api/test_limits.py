"""Limits and the odd statuses: 413 before parsing, 400 for malformed JSON,
405, 404 routes, 503 when a read model does not catch up in time, the
X-Request-ID header, and start-up refusing bad keys."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.bootstrap import open_ledger
from ledger.errors import StoreUnavailableError
from ledger.settings import LedgerSettings, SettingsError, load_settings
from tests.api.conftest import Api, _check, auth, make_settings
from tests.pg import fresh_database


@pytest.fixture
def idle_api(database_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """An app on a database of its own whose read models do not run: every
    read with ?after= times out."""
    with ExitStack() as stack:
        if database_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / 'idle.db'}"
        else:
            url = stack.enter_context(fresh_database(request.getfixturevalue("postgres_url")))
        settings = make_settings(url, in_process_projections=False, read_timeout_s=0.2)
        client = stack.enter_context(TestClient(create_app(settings)))
        client.event_hooks["response"].append(_check)
        yield Api(client)


def test_a_read_model_that_does_not_catch_up_answers_503(idle_api: Api) -> None:
    customer_id = idle_api.open_account()
    paid = idle_api.buy(customer_id)
    for path in (
        f"/v1/accounts/{customer_id}",
        f"/v1/accounts/{customer_id}/movements",
        "/v1/reports/summary",
        "/v1/audit/movements",
    ):
        response = idle_api.get("finance", path, params={"after": paid["position"]})
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert response.json()["type"].endswith("/read-model-behind")
    # The event store itself is not behind: as_of and history still answer.
    as_of = idle_api.get(
        "finance", f"/v1/accounts/{customer_id}", params={"as_of": "2999-01-01T00:00:00Z"}
    )
    assert as_of.status_code == 200 and as_of.json()["balance"] == 80
    # Readiness is 503 (no worker runs the read models) and reports the lag.
    ready = idle_api.get("admin", "/readyz")
    assert ready.status_code == 503
    assert ready.json()["type"].endswith("/no-projection-worker")
    assert max(ready.json()["lag"].values()) > 0


def test_a_body_over_the_limit_is_413_before_parsing(api: Api) -> None:
    headers = {**auth("finance"), "content-type": "application/json"}
    big = api.client.post("/v1/accounts", content=b"[" * 70_000, headers=headers)
    assert big.status_code == 413
    assert big.json()["type"].endswith("/body-too-large")

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b" " * 1024

    streamed = api.client.post("/v1/accounts", content=chunks(), headers=headers)
    assert streamed.status_code == 413


def test_malformed_json_is_400_and_a_wrong_shape_is_422(api: Api) -> None:
    headers = {**auth("finance"), "content-type": "application/json"}
    malformed = api.client.post("/v1/accounts", content=b'{"customer_id": ', headers=headers)
    assert malformed.status_code == 400 and malformed.json()["field"] == "body"
    shape = api.client.post("/v1/accounts", content=b"[1, 2]", headers=headers)
    assert shape.status_code == 422
    missing = api.client.post("/v1/accounts", headers=headers)
    assert missing.status_code == 422


def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    assert api.get("finance", "/v1/nothing-here").status_code == 404
    wrong = api.client.delete("/v1/accounts", headers=auth("finance"))
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"


def test_text_with_control_characters_is_422_not_500(api: Api) -> None:
    for name in ("bad\x00name", "bad\udc80name"):
        response = api.client.post(
            "/v1/accounts",
            content=json.dumps({"customer_id": "C-ctl", "name": name}),
            headers={**auth("finance"), "content-type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "name"


def test_every_response_has_a_request_id_and_a_sane_one_is_kept(api: Api) -> None:
    generated = api.get(None, "/healthz")
    assert len(generated.headers["x-request-id"]) >= 16
    again = api.get(None, "/healthz")
    assert again.headers["x-request-id"] != generated.headers["x-request-id"]
    kept = api.get(None, "/healthz", headers={"X-Request-ID": "trace-123"})
    assert kept.headers["x-request-id"] == "trace-123"
    replaced = api.get(None, "/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"


def test_one_json_log_line_per_request_without_the_token(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="api.access"):
        api.get("finance", "/v1/support-hours", headers={"X-Request-ID": "log-me"})
    lines = [r.getMessage() for r in caplog.records if r.name == "api.access"]
    assert len(lines) == 1
    line = lines[0]
    assert '"route": "/v1/support-hours"' in line and '"status": 200' in line
    assert '"request_id": "log-me"' in line and '"actor": "finance:cy"' in line
    assert "duration_ms" in line and "finance-token" not in caplog.text


@pytest.mark.parametrize(
    "value",
    ["finance", "finance:", "auditor:abcdefgh12", "finance:a b:abcdefgh12", "finance:short"],
)
def test_malformed_api_keys_stop_start_up_naming_the_variable(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_API_KEYS", value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert message.startswith("LEDGER_API_KEYS:") and "\n" not in message
    assert "abcdefgh12" not in message


def test_keys_get_default_names_per_role(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = LedgerSettings(
        api_keys="finance:tok-aaaaaaaa,finance:tok-bbbbbbbb,admin:x:tok-cccccccc"
    )
    names = [(e.role.value, e.name) for e in settings.api_key_entries]
    assert names == [("finance", "finance-1"), ("finance", "finance-2"), ("admin", "x")]


def test_readiness_is_503_when_the_store_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'down.db'}", in_process_projections=False)
    ledger = open_ledger(settings)
    try:
        with TestClient(create_app(settings, ledger=ledger)) as client:
            client.event_hooks["response"].append(_check)

            def down() -> int:
                raise StoreUnavailableError("the event store is unavailable: connection refused")

            monkeypatch.setattr(ledger, "position", down)
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["type"].endswith("/store-unavailable")
            assert client.get("/healthz").status_code == 200
            metrics = client.get("/metrics", headers=auth("admin"))
            assert metrics.status_code == 200 and "ledger_events_appended" not in metrics.text
    finally:
        ledger.close()


def test_an_unexpected_error_is_a_logged_problem_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'bug.db'}", in_process_projections=False)
    ledger = open_ledger(settings)
    try:
        with TestClient(create_app(settings, ledger=ledger)) as client:

            def bug() -> None:
                raise RuntimeError("a bug")

            monkeypatch.setattr(ledger, "support_hours", bug)
            with caplog.at_level(logging.ERROR, logger="api"):
                response = client.get("/v1/support-hours", headers=auth("admin"))
            assert response.status_code == 500
            assert response.headers["content-type"] == "application/problem+json"
            body = response.json()
            assert body["request_id"] == response.headers["x-request-id"]
            assert "a bug" not in body["detail"] and "RuntimeError: a bug" in caplog.text
    finally:
        ledger.close()
