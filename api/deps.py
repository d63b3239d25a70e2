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
  a request with two ``Authorization`` headers is refused (400), never
  decided by the first one;
- a customer id in a path, query or body is looked up as given, then in its
  normal form (``ledger.validation.customer_id_lookups``): fullwidth ``SP-1``
  finds ``SP-1``, and an account opened before the rule keeps its exact id;
- ``/metrics`` takes the admin role or ``LEDGER_METRICS_TOKEN``; ``/readyz``
  answers anyone ready or not, and its details only to the admin role;
- a read served by a read model first waits until that model has processed
  ``?after=`` (bounded by the read models' ``read_timeout_s``, then 503).
"""

from __future__ import annotations

import hmac
import time
from math import ceil
from typing import Annotated

from fastapi import Depends, Header, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from api.auth import AuthThrottle, KeyRing, bearer_token
from api.metrics import Metrics
from api.problems import NotAuthenticatedError, TooManyFailuresError
from ledger.application import Ledger
from ledger.audit.service import Audit
from ledger.errors import UnknownAccountError
from ledger.permissions import Action, authorize
from ledger.projections import Projections, ReadQueries
from ledger.validation import customer_id_lookups
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


def _presented_token(request: Request) -> str | None:
    """The bearer token of the one ``Authorization`` header; 400 for two."""
    values = request.headers.getlist("authorization")
    if len(values) > 1:
        raise HTTPException(400, "the request has more than one Authorization header")
    return bearer_token(values[0]) if values else None


def authenticate(request: Request) -> Actor:
    """The actor of the request's bearer token; ``NotAuthenticatedError`` (401)
    otherwise. A plain function, so that each route resolves its caller in
    one dependency."""
    token = _presented_token(request)
    if token is None:
        raise NotAuthenticatedError("an Authorization: Bearer <token> header is required")
    keyring: KeyRing = request.app.state.keyring
    actor = keyring.actor_for(token)
    if actor is None:
        _count_failure(request)
        raise NotAuthenticatedError("the bearer token matches no API key")
    request.state.actor = actor
    return actor


def _count_failure(request: Request) -> None:
    """Count a wrong token; ``TooManyFailuresError`` (429) once the client's
    address is over the limit. A valid token never comes here."""
    wait_s = failed_authentication(request)
    if wait_s is not None:
        address = request.client.host if request.client else "unknown"
        raise TooManyFailuresError(
            f"too many failed authentications from {address}; retry after {wait_s} s",
            retry_after_s=wait_s,
        )


def failed_authentication(request: Request) -> int | None:
    """Count a wrong key from the client's address (``api.auth.AuthThrottle``,
    ``/metrics``); the seconds it must wait when it is over the limit, else
    ``None``. The API's bearer tokens and the console's sign-in both count."""
    throttle: AuthThrottle = request.app.state.auth_throttle
    address = request.client.host if request.client else "unknown"
    wait_s = throttle.failed(address, time.monotonic())
    metrics: Metrics = request.app.state.metrics
    metrics.auth_failed(throttled=wait_s is not None)
    return None if wait_s is None else max(ceil(wait_s), 1)


async def current_actor(request: Request) -> Actor:
    """A dependency: the caller's actor (401 without a valid token)."""
    return authenticate(request)


class Allowed:
    """A dependency: the caller's actor, if its role may do ``action`` (else 403).

    ``action`` stays readable on the dependency, so that the OpenAPI document
    names the roles of each operation from ``ledger.permissions`` (``api.openapi``)."""

    def __init__(self, action: Action) -> None:
        self.action = action
        self.__name__ = f"may_{action.value}"

    async def __call__(self, request: Request) -> Actor:
        actor = authenticate(request)
        authorize(actor, action=self.action)
        return actor


def allowed(action: Action) -> Allowed:
    """A dependency: the caller's actor, if its role may do ``action`` (else 403)."""
    return Allowed(action)


def optional_actor(request: Request) -> Actor | None:
    """The caller's actor when a valid token is presented, else ``None``
    (two ``Authorization`` headers are still 400)."""
    token = _presented_token(request)
    if token is None:
        return None
    keyring: KeyRing = request.app.state.keyring
    actor = keyring.actor_for(token)
    if actor is not None:
        request.state.actor = actor
    return actor


async def may_read_metrics(request: Request) -> None:
    """A dependency: the admin role, or the metrics token (401/403 otherwise)."""
    token = _presented_token(request)
    expected: str | None = request.app.state.metrics_token
    if (
        token is not None
        and expected is not None
        and hmac.compare_digest(token.encode(), expected.encode())
    ):
        return
    authorize(authenticate(request), Action.OPERATE)


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


def _account_exists(ledger: Ledger, customer_id: str) -> bool:
    try:
        ledger.get_account(customer_id)
    except UnknownAccountError:
        return False
    return True


def resolve_customer_id(ledger: Ledger, given: str) -> str:
    """The customer id ``given`` stands for: itself when it is in normal form
    (no I/O), else itself if an account has exactly that id (one opened
    before the rule), else its normal form."""
    lookups = customer_id_lookups(given)
    if len(lookups) == 1:
        return given
    exact, normal = lookups
    return exact if _account_exists(ledger, exact) else normal


CustomerIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="the helpdesk's own customer id (Unicode NFKC forms find the same account)",
    ),
]


async def path_customer_id(request: Request, customer_id: CustomerIdPath) -> str:
    """A dependency: the path's customer id, resolved (``resolve_customer_id``)."""
    if len(customer_id_lookups(customer_id)) == 1:
        return customer_id  # the usual case: no thread, no I/O
    ledger: Ledger = request.app.state.ledger
    return await run_in_threadpool(resolve_customer_id, ledger, customer_id)


CustomerId = Annotated[str, Depends(path_customer_id)]
