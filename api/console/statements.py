"""The customer statement link: a public, read-only page at an unguessable
signed URL that expires (``STATEMENT_LINK_DAYS``, 30 by default).

This is what the policy means by "in the customer's help desk system you can
see your balance": the helpdesk sends or embeds the link. The page shows the
balance, the movements since the link's start, the chain head and the
statement's digest, and how to verify it; the same statement downloads as
JSON for ``ledger verify-statement``.

Invariants owned here:
- the link names one customer and a period start, and is signed for this
  purpose only (it is never accepted as a session, nor a session as a link);
- an altered, forged or expired link answers a 404 page that says so, and
  reveals nothing about any account.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.signing import Signer
from api.console.web import ConsolePageError, audit_of, render

router = APIRouter()

STATEMENT_LINK_DAYS = 30
#: How far back the movements of a new link start.
PERIOD_DAYS = 90


def _signer(request: Request) -> Signer:
    secret: bytes = request.app.state.console_secret
    return Signer(secret, "statement")


def statement_link(request: Request, customer_id: str, *, days: int = STATEMENT_LINK_DAYS) -> str:
    """An absolute URL of the customer's statement page, valid for ``days``."""
    since = datetime.now(UTC) - timedelta(days=PERIOD_DAYS)
    token = _signer(request).sign(
        {"customer_id": customer_id, "since": since.isoformat(timespec="seconds")},
        ttl_s=days * 86400,
    )
    return str(request.url_for("statement_page", token=token))


def _statement(request: Request, token: str) -> Any:
    payload = _signer(request).unsign(token)
    if payload is None or not isinstance(payload.get("customer_id"), str):
        raise ConsolePageError(
            404,
            "This statement link does not work",
            "The link has expired or was altered. Ask the helpdesk for a new one.",
        )
    since = datetime.fromisoformat(str(payload["since"]))
    return payload["exp"], audit_of(request).statement(payload["customer_id"], since=since)


@router.get("/s/{token}", response_class=HTMLResponse, name="statement_page")
async def statement_page(request: Request, token: str) -> Response:
    expires, statement = await run_in_threadpool(_statement, request, token)
    return render(
        request,
        "statement.html",
        None,
        statement=statement,
        expires=datetime.fromtimestamp(expires, UTC),
        json_url=str(request.url_for("statement_json", token=token)),
    )


@router.get("/s/{token}/statement.json", name="statement_json")
async def statement_json(request: Request, token: str) -> Response:
    _, statement = await run_in_threadpool(_statement, request, token)
    return JSONResponse(
        statement.to_json(),
        headers={"Content-Disposition": 'attachment; filename="statement.json"'},
    )
