"""The HTTP baselines: bare FastAPI endpoints on a psycopg pool of
autocommit connections (one statement, one round trip: no BEGIN and COMMIT
around it); no auth, no middleware, no read model, no event store.

- ``GET /bare/{account_id}``: one primary-key SELECT on the balances table
  (the read baseline);
- ``POST /bare-insert/{value}``: one durable single-row INSERT, the
  statement pgbench runs (the ceiling of any HTTP write on this stack and
  machine: a command that must store anything cannot beat it).

Run it exactly like the API (uvicorn factory mode, same workers):

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
        app.state.pool = pool = ConnectionPool(
            url, min_size=2, max_size=POOL_MAX, kwargs={"autocommit": True}, open=True
        )
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

    @app.post("/bare-insert/{value}")
    def insert(value: int, request: Request) -> dict[str, Any]:
        pool: ConnectionPool = request.app.state.pool
        with pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO bench_t (v) VALUES (%s) RETURNING id", (value,)
            ).fetchone()
        assert row is not None  # an INSERT ... RETURNING returns its row
        return {"id": row[0]}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
