"""The console: web pages for the helpdesk, specialists and finance at
``/console``, on the same application commands and read models as the API.

Server-rendered (Jinja2), forms that work without JavaScript (post, then a
303 to a page that reads with ``?after=``), one stylesheet of ours and a few
lines of script that only show an opening price early. Signed in with an API
key (``api.console.session``).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import KeyRing
from api.console import (
    accounts,
    adjustments,
    admin,
    finance,
    queues,
    requests,
    signin,
    statements,
)
from api.console.session import Sessions
from api.console.web import HERE, ConsolePageError, ConsoleRedirect, render, signed_in_or_none

#: Headers of every console page: no framing, no foreign content, no caching.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Same-origin (not no-referrer): the browser then keeps sending ``Origin``
    # on the console's own form posts, and never a link's token to another site.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


_ENCODED_HEADERS = [(k.lower().encode(), v.encode()) for k, v in PAGE_HEADERS.items()]


class PageHeaders:
    """Adds ``PAGE_HEADERS`` to every answer under ``/console`` (pure ASGI:
    the API's own paths pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/console"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _ENCODED_HEADERS if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, *, secret: bytes, keyring: KeyRing) -> None:
    """Mount the console's pages, stylesheet and error pages on ``app``."""
    app.state.console_secret = secret
    app.state.console_sessions = Sessions(secret, keyring)
    router = APIRouter(prefix="/console", include_in_schema=False)
    for module in (signin, accounts, requests, queues, finance, adjustments, admin, statements):
        router.include_router(module.router)
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

    app.add_middleware(PageHeaders)

    @app.exception_handler(ConsoleRedirect)
    async def _redirect(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleRedirect)
        return RedirectResponse(exc.url, status_code=303)

    @app.exception_handler(ConsolePageError)
    async def _page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsolePageError)
        return error_page(request, exc.status, exc.title, exc.detail)

    # Errors raised below the console's handlers (a store outage, an invalid
    # id in the path) are answered by ``api.problems`` with this page.
    app.state.error_page = error_page


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    if status == 503:  # never pass driver text on to a person
        title = "The ledger is unavailable"
        detail = "The ledger's database cannot be reached right now. Try again in a moment."
    return render(
        request,
        "error.html",
        signed_in_or_none(request),
        status_code=status,
        title=title,
        detail=detail,
    )
