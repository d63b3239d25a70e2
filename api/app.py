"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ledger.bootstrap import open_ledger
from ledger.settings import LedgerSettings, load_settings


def create_app(settings: LedgerSettings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ledger = open_ledger(settings)
        app.state.ledger = ledger
        try:
            yield
        finally:
            ledger.close()

    app = FastAPI(title="Support-credit ledger", version="1", lifespan=lifespan)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
