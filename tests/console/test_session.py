"""The console's session cookie: made at sign-in from an API key, refused
when tampered with, expired, or when its key was removed or changed."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.console.session import COOKIE
from api.console.signing import Signer
from tests.api.conftest import API_KEYS, TOKENS
from tests.console.conftest import SECRET, Browser, settings_for


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def test_sign_in_sets_a_strict_http_only_cookie_of_8_hours(app_client: TestClient) -> None:
    person = Browser(app_client, "helpdesk", sign_in=False)
    answer = person.sign_in()
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=28800" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http here; https sets it
    assert TOKENS["helpdesk"] not in cookie
    home = person.get("/console/")
    assert home.status_code == 200 and "helpdesk" in home.text


def test_a_wrong_key_does_not_sign_in(app_client: TestClient) -> None:
    person = Browser(app_client, "helpdesk", sign_in=False)
    answer = person.sign_in("not-a-key-of-this-ledger")
    assert answer.status_code == 401
    assert "not one of the ledger" in answer.text
    assert COOKIE not in answer.headers.get("set-cookie", "")


def test_pages_need_a_session(app_client: TestClient) -> None:
    stranger = Browser(app_client, "helpdesk", sign_in=False)
    answer = stranger.get("/console/accounts")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/sign-in?next=")


def test_a_tampered_cookie_is_no_session(app_client: TestClient) -> None:
    person = Browser(app_client, "helpdesk")
    value = person.client.cookies[COOKIE]
    body, mac = value.split(".")
    forged = Signer(b"another secret", "session").sign(
        {"name": "di", "role": "admin", "proof": "x", "nonce": "n"}, ttl_s=3600
    )
    for bad in (body[:-2] + "AA." + mac, forged, "garbage", ""):
        person.client.cookies.clear()
        person.client.cookies.set(COOKIE, bad)
        assert person.get("/console/").status_code == 303, bad
    person.client.cookies.clear()
    person.client.cookies.set(COOKIE, value)
    assert person.get("/console/").status_code == 200  # the untouched one still works


def test_an_expired_cookie_is_no_session(app_client: TestClient) -> None:
    person = Browser(app_client, "finance")
    value = person.client.cookies[COOKIE]
    payload = Signer(SECRET.encode(), "session").unsign(value)
    assert payload is not None
    old = Signer(SECRET.encode(), "session").sign(
        {k: v for k, v in payload.items() if k != "exp"}, ttl_s=60, now=time.time() - 3600
    )
    person.client.cookies.clear()
    person.client.cookies.set(COOKIE, old)
    assert person.get("/console/").status_code == 303


def test_removing_or_changing_the_key_ends_the_session(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with TestClient(create_app(settings_for(db))) as first:
        person = Browser(first, "finance")
        cookie = person.client.cookies[COOKIE]
        assert person.get("/console/").status_code == 200
    keys = API_KEYS
    changed_token = keys.replace(TOKENS["finance"], "finance-token-9999")
    removed = ",".join(e for e in keys.split(",") if "finance" not in e)
    for api_keys, still in ((keys, True), (changed_token, False), (removed, False)):
        settings = settings_for(db).model_copy(update={"api_keys": SecretStr(api_keys)})
        with TestClient(create_app(settings)) as restarted:
            visitor = TestClient(restarted.app)
            visitor.cookies.set(COOKIE, cookie)
            answer = visitor.get("/console/", follow_redirects=False)
            assert (answer.status_code == 200) is still, api_keys
