"""``/docs`` and ``/redoc`` in a real browser with the network cut: every
request to anywhere but the ledger's own server is aborted, and Swagger UI
still renders, "Authorize" takes a key, and "Try it out" gets a 200.
Screenshots go to ``test-artifacts/docs/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Route

from tests.api.conftest import TOKENS
from tests.browser.conftest import LiveServer

REDOC_BADGE = "https://cdn.redoc.ly/redoc/logo-mini.svg"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "docs"


class Offline:
    """A browser context that reaches the ledger's server and nothing else."""

    def __init__(self, browser: Browser, live: LiveServer) -> None:
        self.elsewhere: list[str] = []
        self.context: BrowserContext = browser.new_context(
            base_url=live.url, viewport={"width": 1200, "height": 1000}
        )
        self.context.set_default_timeout(20_000)
        own = live.url

        def cut(route: Route) -> None:
            if route.request.url.startswith(own):
                route.continue_()
            else:
                self.elsewhere.append(route.request.url)
                route.abort("internetdisconnected")

        self.context.route("**/*", cut)
        self.page = self.context.new_page()

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


@pytest.fixture
def offline(browser: Browser, live: LiveServer) -> Iterator[Offline]:
    found = Offline(browser, live)
    yield found
    found.context.close()


def test_swagger_ui_works_offline_with_authorize_and_try_it_out(offline: Offline) -> None:
    page = offline.page
    page.goto("/docs")
    page.locator(".swagger-ui .opblock").first.wait_for()
    assert page.locator(".swagger-ui .opblock").count() >= 30

    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".auth-container input").first.fill(TOKENS["helpdesk"])
    page.locator(".auth-btn-wrapper button.authorize").click()
    page.locator(".auth-btn-wrapper button.btn-done").click()

    operation = page.locator("#operations-operations-support_hours_v1_support_hours_get")
    operation.locator(".opblock-summary").first.click()
    operation.get_by_text("Roles:").first.wait_for()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip().startswith("200")
    operation.scroll_into_view_if_needed()
    offline.shot("docs-offline")

    assert offline.elsewhere == [], f"the page tried to reach {offline.elsewhere}"


def test_redoc_works_offline(offline: Offline) -> None:
    page = offline.page
    page.goto("/redoc")
    page.get_by_text("Support-credit ledger").first.wait_for()
    page.get_by_text("Roles:").first.wait_for()
    offline.shot("redoc-offline")

    # ReDoc's "powered by" badge is an image on its CDN: cut off, only the
    # badge is missing; everything else is the package's.
    elsewhere = [u for u in offline.elsewhere if u != REDOC_BADGE]
    assert elsewhere == [], f"the page tried to reach {elsewhere}"
