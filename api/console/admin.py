"""The admin page: each read model's position and lag, and the audit chain."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.web import allowed_to, audit_of, ledger_of, read_models_of, render
from ledger.permissions import Action

router = APIRouter()


@router.get("/admin", response_class=HTMLResponse)
async def admin(request: Request) -> Response:
    person = allowed_to(request, Action.OPERATE)
    read_models = read_models_of(request)
    positions = await run_in_threadpool(read_models.positions)
    lags = await run_in_threadpool(read_models.lag)
    head = await run_in_threadpool(audit_of(request).head)
    stored = await run_in_threadpool(ledger_of(request).position)
    return render(
        request,
        "admin.html",
        person,
        models=[(name, positions.get(name), lags.get(name, 0)) for name in positions],
        chain_lag=lags.get("chain", 0),
        head=head,
        stored=stored,
    )
