"""The FastAPI application factory: ``create_app``.

Invariants owned here:
- nothing is built at import time: settings and API keys are read (and a
  bad value refused, naming the variable) when the app is created; the
  ledger, the read models and the audit are built by
  ``ledger.bootstrap.open_services`` in ``lifespan`` and handed to the
  handlers through ``Depends``;
- the read models' projection runner runs in this process when
  ``in_process_projections`` is set, and is stopped on shutdown;
- every route lives in one resource's router; errors go through
  ``api.problems`` and every request through ``api.middleware``;
- ``/docs`` and ``/redoc`` are served from installed packages (no CDN), and
  the OpenAPI document (``api.openapi``) names each operation's roles.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api import console, openapi, problems
from api.auth import AuthThrottle, KeyRing
from api.metrics import Metrics
from api.middleware import RequestMiddleware
from api.routers import (
    accounts,
    adjustments,
    audit,
    events,
    invoices,
    operations,
    price_lists,
    reports,
    requests,
    webhooks,
)
from ledger.application import Ledger
from ledger.bootstrap import open_checked, open_integrations
from ledger.settings import LedgerSettings, load_settings

logger = logging.getLogger("api")

DESCRIPTION = """
The support-credit ledger's HTTP contract, version 1.

**Authentication:** `Authorization: Bearer <token>` ("Authorize" above); the
token's key (role and name, from `LEDGER_API_KEYS`) is the actor recorded on
events. Each operation names the roles that may call it. More than
`LEDGER_AUTH_FAILURES_PER_MINUTE` wrong tokens from one address in a minute:
429 with `Retry-After`.

**Bodies** are JSON, sent with `Content-Type: application/json` (else 415).

**Errors** are `application/problem+json` (RFC 9457): `type`, `title`,
`status`, `detail` and the rule's own fields (`balance` and `price` for 402,
`next_opening` outside working hours, `field` for 422).

**Idempotency:** every `POST` accepts `Idempotency-Key`, scoped per API key.
A retry with the same key and the same command returns the first answer
(status and body, with its `position`) and writes nothing; the same key with
another command or body is 422. A *refused* command stores nothing, so a
retry of a refusal is evaluated again (and may then succeed).

**Consistency:** every write answers with `position`; every `GET` accepts
`?after=<position>` and, when it is served by a read model, waits (bounded)
until that model has processed it, else 503.
"""


def console_secret(settings: LedgerSettings) -> bytes:
    """``LEDGER_SECRET_KEY``; without it (tests, a library use of the app), a
    random secret of this process: sessions and statement links then end
    with it. ``ledger serve`` refuses to start without the setting."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    logger.warning("LEDGER_SECRET_KEY is not set: console sessions last only this process")
    return secrets.token_bytes(32)


def create_app(settings: LedgerSettings | None = None, *, ledger: Ledger | None = None) -> FastAPI:
    """The API. ``settings`` default to the environment; a given ``ledger`` is
    used as is (and left open on shutdown: its owner closes it)."""
    if settings is None:
        settings = load_settings()
    # LEDGER_API_KEYS was validated with the settings; unset means no one gets in.
    keyring = KeyRing(settings.api_key_entries)
    metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    chosen = settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = open_checked(chosen, ledger=ledger)  # one-line database errors
        app.state.ledger = services.ledger
        app.state.read_models = services.queries
        app.state.projections = services.projections
        app.state.audit = services.audit
        app.state.readiness = services.readiness
        app.state.keyring = keyring
        app.state.metrics_token = metrics_token
        # The feed, the webhooks and their delivery (delivered here when the
        # projections run here too).
        app.state.integrations = integrations = open_integrations(chosen, services.ledger)
        if chosen.in_process_projections:
            services.projections.start()
            integrations.start()
        try:
            yield
        finally:
            integrations.close()
            services.close()

    # /docs and /redoc from the assets the fastapi-offline package ships: no CDN.
    app = FastAPIOffline(
        title="Support-credit ledger",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    app.state.metrics = metrics = Metrics()
    app.state.auth_throttle = AuthThrottle(settings.auth_failures_per_minute)
    openapi.install(app)
    problems.install(app)
    routers = (accounts, adjustments, invoices, requests, price_lists, audit, reports)
    for module in (*routers, operations, events, webhooks):
        app.include_router(module.router)
    console.install(app, secret=console_secret(settings), keyring=keyring)
    app.add_middleware(
        RequestMiddleware,
        max_body_bytes=settings.max_body_bytes,
        metrics=metrics,
        max_concurrent_per_key=settings.max_concurrent_per_key,
    )
    return app
