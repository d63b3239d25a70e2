"""``ledger serve``: the HTTP API on uvicorn (factory mode: ``api.app:create_app``).

Invariants owned here:
- the configuration is checked before uvicorn starts: an invalid value stops
  start-up with one line naming the variable (exit 2);
- without ``LEDGER_API_KEYS`` the API does not start, except in ``--embedded``
  mode, which generates a random token per role (never a fixed default),
  hands them to the worker(s) through the environment and prints them once
  with a ready-to-paste ``curl`` line; with ``--keys-file`` (``make run``) it
  also writes them there, readable by the owner only (0600);
- uvicorn gets its connection limits from the settings and the API's HTTP
  protocol, which has a deadline for reading each request
  (``api.server``).
"""

from __future__ import annotations

import copy
import os
import secrets
from pathlib import Path
from typing import Any

import typer
import uvicorn
from uvicorn.config import LOGGING_CONFIG

from ledger.cli.app import app, fail, settings_or_exit
from ledger.values import Role


def log_config() -> dict[str, Any]:
    """uvicorn's logging plus the API's own loggers (one JSON line per request)."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["plain"] = {"format": "%(message)s"}
    config["handlers"]["api"] = {
        "formatter": "plain",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["api"] = {"handlers": ["api"], "level": "INFO", "propagate": False}
    config["loggers"]["ledger"] = {"handlers": ["api"], "level": "INFO", "propagate": False}
    return config


VARIABLE = "LEDGER_API_KEYS"
SECRET_VARIABLE = "LEDGER_SECRET_KEY"
#: Where ``--embedded`` keeps the secret it generates, so that console
#: sessions and statement links survive a restart.
EMBEDDED_SECRET_FILE = Path("var") / "secret_key"


def _embedded_secret() -> None:
    """Read (or create, 0600) the embedded mode's secret and hand it to the workers."""
    if not EMBEDDED_SECRET_FILE.exists():
        EMBEDDED_SECRET_FILE.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(EMBEDDED_SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        typer.echo(f"{SECRET_VARIABLE} was unset: generated one into {EMBEDDED_SECRET_FILE}")
    os.environ[SECRET_VARIABLE] = EMBEDDED_SECRET_FILE.read_text().strip()


def _embedded_keys(host: str, port: int, keys_file: Path | None) -> None:
    tokens = {role: secrets.token_urlsafe(24) for role in Role}
    os.environ[VARIABLE] = value = ",".join(
        f"{role.value}:{token}" for role, token in tokens.items()
    )
    typer.echo(f"{VARIABLE} was unset: generated a token per role for this run:")
    for role, token in tokens.items():
        typer.echo(f"  {role.value:<10} {token}")
    if keys_file is not None:
        _write_private(keys_file, f"{VARIABLE}={value}\n")
        typer.echo(f"The keys are also in {keys_file} (readable by you only).")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo(
        f"Try: curl -H 'Authorization: Bearer {tokens[Role.HELPDESK]}' "
        f"http://{shown}:{port}/v1/support-hours"
    )


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Address to bind (LEDGER_HOST)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (LEDGER_PORT)."),
    workers: int = typer.Option(1, min=1, max=64, help="Worker processes."),
    embedded: bool = typer.Option(
        False, help="Embedded mode for a first run: generates a token per role if keys are unset."
    ),
    keys_file: Path | None = typer.Option(
        None, help="With --embedded: also write the generated keys to this file (mode 0600)."
    ),
) -> None:
    """Serve the HTTP API."""
    settings = settings_or_exit()
    host = host or settings.host
    port = port or settings.port
    if not settings.api_keys:
        if not embedded:
            fail(f"invalid configuration: {VARIABLE} is not set (role:token,...); see README")
        _embedded_keys(host, port, keys_file)
    if settings.secret_key is None:
        if not embedded:
            fail(
                f"invalid configuration: {SECRET_VARIABLE} is not set (at least 32 random "
                "characters; it signs console sessions and statement links); see README"
            )
        _embedded_secret()
    typer.echo(f"Ledger API on http://{host}:{port}  (store: {settings.backend})")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo(f"Console: http://{shown}:{port}/console  (sign in with an API key)")
    # Imported here: api.server brings FastAPI in, which the other ledger
    # commands (``ledger project``, a worker that must start quickly) do not need.
    from api.server import uvicorn_options

    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=log_config(),
        access_log=False,
        log_level="info",
        **uvicorn_options(settings),
    )


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable and writable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode otherwise
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
