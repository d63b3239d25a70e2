"""``ledger price-list publish FILE.json``: publish the next price list
version (the body of ``POST /v1/price-lists``), as an admin; ``ledger
price-list show``: the version in force (or at ``--at``)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer

from ledger.cli.app import app, command, fail, services_or_exit
from ledger.errors import LedgerError
from ledger.values import Actor, Role

price_list = typer.Typer(no_args_is_help=True, help="The price lists: publish, show.")
app.add_typer(price_list, name="price-list")

CLI_ADMIN = Actor(Role.ADMIN, "cli")


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option}: not an ISO 8601 time: {value!r}")
    if parsed.tzinfo is None:
        fail(f"{option}: give a time zone offset, e.g. {value}+00:00")
    return parsed


@command("publish", group=price_list)
def publish_command(file: Path) -> None:
    """Publish FILE.json ({effective_from?, packages, categories,
    store_update, ...}) as the next version; exit 2 naming the field when the
    list is refused."""
    try:
        data: Any = json.loads(file.read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, ValueError) as e:
        fail(f"{file}: not a readable JSON file: {e}")
    if not isinstance(data, dict):
        fail(f"{file}: a price list is a JSON object")
    effective_from = data.pop("effective_from", None)
    if effective_from is not None and not isinstance(effective_from, str):
        fail("effective_from: an ISO 8601 time with an offset")
    services = services_or_exit()
    try:
        result = services.ledger.publish_price_list(
            data, _time(effective_from, "effective_from"), actor=CLI_ADMIN
        )
    except LedgerError as e:
        fail(f"refused: {e} (field: {e.fields().get('field', '-')})")
    finally:
        services.close()
    typer.echo(
        f"published price list version {result.version}, in force from "
        f"{result.effective_from.isoformat()} (position {result.position})"
    )


@command("show", group=price_list)
def show_command(
    at: str | None = typer.Option(None, help="ISO time with offset; now when left out."),
) -> None:
    """The version in force now (or at --at), as JSON."""
    services = services_or_exit()
    try:
        shown = services.ledger.price_list_at(_time(at, "--at"))
    finally:
        services.close()
    body = {"version": shown.version, "effective_from": shown.effective_from, **shown.to_data()}
    typer.echo(json.dumps(body, default=str, indent=2))
