"""Operations: support hours (any role), liveness and readiness (no token;
readiness details for the admin role), metrics (the admin role or
``LEDGER_METRICS_TOKEN``).

``/healthz`` and ``/readyz`` never wait behind the thread pool that the other
handlers share: ``/healthz`` answers on the event loop, ``/readyz`` asks the
store from a thread of its own (``_READINESS``), so a flood of slow requests
does not make a healthy process look dead."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from api import metrics as m
from api import schemas as s
from api.deps import (
    LedgerDep,
    current_actor,
    get_projections,
    get_read_models,
    may_read_metrics,
    optional_actor,
)
from api.problems import problem
from api.responses import ModelJSON
from api.routers import problems
from ledger.errors import StoreUnavailableError
from ledger.permissions import Action, may
from ledger.projections import Projections, ReadQueries
from ledger.projections.readiness import Readiness, Verdict
from ledger.values import Actor

router = APIRouter(tags=["operations"])

#: The readiness checks' own thread: never queued behind the shared pool.
_READINESS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="readyz")


@router.get("/v1/support-hours", response_model=s.SupportHoursOut, responses=problems())
def support_hours(actor: Annotated[Actor, Depends(current_actor)], ledger: LedgerDep) -> ModelJSON:
    """Whether support is open now and when it next opens (null under 24/7)."""
    return ModelJSON(s.SupportHoursOut.model_validate(ledger.support_hours()))


@router.get("/healthz", response_model=s.HealthOut)
async def healthz() -> ModelJSON:
    """Liveness: the process answers (on the event loop, no thread)."""
    return ModelJSON(s.HealthOut(status="ok"))


@router.get("/readyz", response_model=s.ReadyOut, responses={503: problems(503)[503]})
async def readyz(
    request: Request,
    ledger: LedgerDep,
    projections: Annotated[Projections, Depends(get_projections)],
) -> ModelJSON | JSONResponse:
    """Readiness: the store answers, no read model has stopped on an event it
    cannot apply, none lags by more than ``LEDGER_READY_MAX_LAG`` events for
    longer than ``LEDGER_READY_LAG_GRACE_S``, and (with in-process
    projections off) a worker has held the read models' locks within that
    grace period (else 503, whose ``type`` says which). The position, each
    read model's lag in events, what is wrong, and ``details.webhooks``
    (whether this process delivers, and the webhooks that gave up) only for
    the admin role; anyone else gets the status alone."""
    actor = optional_actor(request)
    admin = actor is not None and may(actor.role, Action.OPERATE)
    failure = projections.failure()
    if failure is not None:
        if admin:
            raise failure
        return problem(503, "a read model has stopped; an operator must act", code=failure.code)
    readiness: Readiness = request.app.state.readiness

    def check() -> tuple[int, Verdict, dict[str, Any]]:
        webhooks = request.app.state.integrations.readiness()
        return ledger.position(), readiness.check(), webhooks

    position, verdict, webhooks = await asyncio.get_running_loop().run_in_executor(
        _READINESS, check
    )
    if not verdict.ready:
        if admin:
            fields = {"lag": verdict.lag, "position": position, "details": {"webhooks": webhooks}}
            return problem(503, str(verdict.reason), code=verdict.code, fields=fields)
        return problem(503, "not ready; an operator must act", code=verdict.code)
    if admin:
        details = {"webhooks": webhooks}
        return ModelJSON(
            s.ReadyOut(status="ready", position=position, lag=verdict.lag, details=details)
        )
    return JSONResponse({"status": "ready"})


_METRICS_EXAMPLE = """\
# HELP ledger_http_requests_total HTTP requests answered
# TYPE ledger_http_requests_total counter
ledger_http_requests_total{method="GET",route="/v1/support-hours",status="200"} 3
# HELP ledger_auth_failures_total requests with a wrong bearer token
# TYPE ledger_auth_failures_total counter
ledger_auth_failures_total 0
# HELP ledger_events_appended global position of the newest stored event
# TYPE ledger_events_appended gauge
ledger_events_appended 7
"""


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        **problems(401, 403),
        200: {"content": {"text/plain": {"example": _METRICS_EXAMPLE}}},
    },
)
def metrics(
    request: Request,
    _: Annotated[None, Depends(may_read_metrics)],
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
