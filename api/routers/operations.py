"""Operations: support hours (any role), liveness, readiness, metrics (no auth)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from api import metrics as m
from api import schemas as s
from api.deps import LedgerDep, current_actor, get_read_models
from api.responses import ModelJSON
from api.routers import problems
from ledger.errors import StoreUnavailableError
from ledger.projections import ReadQueries
from ledger.values import Actor

router = APIRouter(tags=["operations"])


@router.get("/v1/support-hours", response_model=s.SupportHoursOut, responses=problems())
def support_hours(actor: Annotated[Actor, Depends(current_actor)], ledger: LedgerDep) -> ModelJSON:
    """Whether support is open now and when it next opens (null under 24/7)."""
    hours = ledger.support_hours()
    return ModelJSON(
        s.SupportHoursOut(
            open=hours.open,
            now=hours.now,
            next_open=hours.next_open,
            time_zone=hours.time_zone,
            hours=hours.hours,
        )
    )


@router.get("/healthz", response_model=s.HealthOut)
def healthz() -> ModelJSON:
    """Liveness: the process answers."""
    return ModelJSON(s.HealthOut(status="ok"))


@router.get("/readyz", response_model=s.ReadyOut, responses={503: problems(503)[503]})
def readyz(
    request: Request,
    ledger: LedgerDep,
    read_models: Annotated[ReadQueries, Depends(get_read_models)],
) -> ModelJSON:
    """Readiness: the store answers (else 503); each read model's lag in
    events; ``details.webhooks``: whether this process delivers, and the
    webhooks that gave up."""
    webhooks = request.app.state.integrations.readiness()
    return ModelJSON(
        s.ReadyOut(
            status="ready",
            position=ledger.position(),
            lag=read_models.lag(),
            details={"webhooks": webhooks},
        )
    )


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(
    request: Request,
    ledger: LedgerDep,
    read_models: Annotated[ReadQueries, Depends(get_read_models)],
) -> PlainTextResponse:
    """Prometheus text: requests by route and status, latency, events, read-model lag."""
    collector: m.Metrics = request.app.state.metrics
    try:
        position: int | None = ledger.position()
        lag = read_models.lag()
    except StoreUnavailableError:
        position, lag = None, {}
    return PlainTextResponse(collector.render(position, lag), media_type=m.CONTENT_TYPE)
