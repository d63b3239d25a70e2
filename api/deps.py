"""Dependencies: the shared resources built in ``lifespan``, the caller's
actor and its permission, and the consistency wait.

Invariants owned here:
- the dependencies are few and ``async``: each one costs FastAPI's
  per-request solving, and a plain ``def`` one a thread-pool round trip too
  (their share of a request is measured in ``bench/results.md``, "Read-path
  profile", "FastAPI dependency solving"); a route resolves its caller in one
  (``allowed``), and the one that can wait, ``read_after``, hands the wait to
  the thread pool only when there is something to wait for;
- resources come from ``app.state`` (built in ``lifespan``), never from import time;
- every endpoint but the operational ones resolves an ``Actor`` from a bearer
  token (401 otherwise) and checks it against ``ledger.permissions`` (403);
- a read served by a read model first waits until that model has processed
  ``?after=`` (bounded by the read models' ``read_timeout_s``, then 503).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from api.auth import KeyRing, bearer_token
from api.problems import NotAuthenticatedError
from ledger.application import Ledger
from ledger.audit.service import Audit
from ledger.permissions import Action, authorize
from ledger.projections import Projections, ReadQueries
from ledger.values import Actor

MAX_POSITION = 2**53


async def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


async def get_read_models(request: Request) -> ReadQueries:
    read_models: ReadQueries = request.app.state.read_models
    return read_models


async def get_projections(request: Request) -> Projections:
    projections: Projections = request.app.state.projections
    return projections


async def get_audit(request: Request) -> Audit:
    audit: Audit = request.app.state.audit
    return audit


def authenticate(request: Request) -> Actor:
    """The actor of the request's bearer token; ``NotAuthenticatedError`` (401)
    otherwise. A plain function, so that each route resolves its caller in
    one dependency."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise NotAuthenticatedError("an Authorization: Bearer <token> header is required")
    keyring: KeyRing = request.app.state.keyring
    actor = keyring.actor_for(token)
    if actor is None:
        raise NotAuthenticatedError("the bearer token matches no API key")
    request.state.actor = actor
    return actor


async def current_actor(request: Request) -> Actor:
    """A dependency: the caller's actor (401 without a valid token)."""
    return authenticate(request)


def allowed(action: Action) -> Callable[[Request], Awaitable[Actor]]:
    """A dependency: the caller's actor, if its role may do ``action`` (else 403)."""

    async def check(request: Request) -> Actor:
        actor = authenticate(request)
        authorize(actor, action)
        return actor

    check.__name__ = f"may_{action.value}"
    return check


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        # Visible ASCII and spaces: a control character in a key is refused (422),
        # never stored in a receipt.
        pattern=r"^[\x20-\x7e]+$",
        description=(
            "Scoped per API key (visible ASCII, at most 200 characters). "
            "A retry with the same key and the same command "
            "returns the first answer and writes nothing; the same key with "
            "another command or body is 422. A refused command stores nothing, "
            "so its retry is evaluated again."
        ),
    ),
]

After = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_POSITION,
        description="wait (bounded, then 503) until the read model has processed this position",
    ),
]


async def read_after(request: Request, after: After = None) -> ReadQueries:
    """The read models, once they have caught up with ``?after=``."""
    read_models: ReadQueries = request.app.state.read_models
    if after is not None:
        await run_in_threadpool(read_models.wait_for, after)
    return read_models


CaughtUp = Annotated[ReadQueries, Depends(read_after)]
AuditDep = Annotated[Audit, Depends(get_audit)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
