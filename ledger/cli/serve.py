"""``ledger serve``: the HTTP API on uvicorn."""

from __future__ import annotations

import typer
import uvicorn

from ledger.cli.app import app, settings_or_exit


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Address to bind (LEDGER_HOST)."),
    port: int | None = typer.Option(None, help="Port (LEDGER_PORT)."),
    embedded: bool = typer.Option(
        False, help="Embedded mode for a first run: SQLite default, generated tokens."
    ),
) -> None:
    """Serve the HTTP API."""
    settings = settings_or_exit()
    host = host or settings.host
    port = port or settings.port
    typer.echo(f"Ledger API on http://{host}:{port}  (store: {settings.database_url})")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, log_level="info")
