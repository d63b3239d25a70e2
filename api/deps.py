"""Dependencies: settings, the shared resources built in ``lifespan``, the
caller's actor and its permission, and the consistency wait.

Invariants owned here:
- resources come from ``app.state`` (built in ``lifespan``), never from import time;
- every endpoint but the operational ones resolves an ``Actor`` from a bearer
  token (401 otherwise) and checks it against ``ledger.permissions`` (403);
- a read served by a read model first waits until that model has processed
  ``?after=`` (bounded by ``read_timeout_s``, then 503).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from api.auth import KeyRing, bearer_token
from api.problems import NotAuthenticatedError
from ledger.application import Ledger
from ledger.permissions import Action, authorize
from ledger.projections import ReadModels
from ledger.settings import LedgerSettings
from ledger.values import Actor

MAX_POSITION = 2**53


def get_settings(request: Request) -> LedgerSettings:
    """The settings the app was built with (``create_app``)."""
    settings: LedgerSettings = request.app.state.settings
    return settings


def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


def get_read_models(request: Request) -> ReadModels:
    read_models: ReadModels = request.app.state.read_models
    return read_models


def get_keyring(request: Request) -> KeyRing:
    keyring: KeyRing = request.app.state.keyring
    return keyring


def current_actor(
    request: Request,
    keyring: Annotated[KeyRing, Depends(get_keyring)],
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Actor:
    """The actor of the bearer token; ``NotAuthenticatedError`` (401) otherwise."""
    token = bearer_token(authorization)
    if token is None:
        raise NotAuthenticatedError("an Authorization: Bearer <token> header is required")
    actor = keyring.actor_for(token)
    if actor is None:
        raise NotAuthenticatedError("the bearer token matches no API key")
    request.state.actor = actor
    return actor


def allowed(action: Action) -> Callable[[Actor], Actor]:
    """A dependency: the caller's actor, if its role may do ``action`` (else 403)."""

    def check(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
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


def read_after(
    read_models: Annotated[ReadModels, Depends(get_read_models)],
    settings: Annotated[LedgerSettings, Depends(get_settings)],
    after: After = None,
) -> ReadModels:
    """The read models, once they have caught up with ``?after=``."""
    read_models.wait_for(after, timeout_s=settings.read_timeout_s)
    return read_models


CaughtUp = Annotated[ReadModels, Depends(read_after)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
