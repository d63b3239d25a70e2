"""The read baseline: a bare FastAPI endpoint doing one primary-key SELECT
on the balances table, on a psycopg pool; no auth, no middleware, no read
model. Run it exactly like the API (uvicorn factory mode, same workers):

    BENCH_DATABASE_URL=... uvicorn bench.bare_app:create_app --factory
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from psycopg_pool import ConnectionPool

POOL_MAX = 10


def create_app() -> FastAPI:
    url = os.environ["BENCH_DATABASE_URL"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = pool = ConnectionPool(url, min_size=2, max_size=POOL_MAX, open=True)
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/bare/{account_id}")
    def balance(account_id: str, request: Request) -> dict[str, Any]:
        pool: ConnectionPool = request.app.state.pool
        with pool.connection() as conn:
            row = conn.execute(
                "SELECT customer_id, balance FROM rm_balances WHERE account_id = %s",
                (account_id,),
            ).fetchone()
        if row is None:
            raise HTTPException(404)
        return {"customer_id": row[0], "balance": row[1]}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
