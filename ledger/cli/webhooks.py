"""``ledger webhooks``: list the webhooks, show one's delivery log, and
``replay --from POSITION`` to send again from a point (after an
integrator's outage). Reads and writes the registry directly; the delivery
worker (``ledger project`` or the API process) does the sending."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from ledger.bootstrap import open_integrations, open_ledger
from ledger.cli.app import app, fail, settings_or_exit
from ledger.errors import LedgerError
from ledger.integrations.service import Integrations

webhooks_app = typer.Typer(no_args_is_help=True, help="Webhooks: list, deliveries, replay.")
app.add_typer(webhooks_app, name="webhooks")


@contextmanager
def _integrations() -> Iterator[Integrations]:
    settings = settings_or_exit()
    try:
        ledger = open_ledger(settings)
        integrations = open_integrations(settings, ledger)
    except LedgerError as e:
        fail(f"store unavailable: {e.detail}", code=1)
    try:
        yield integrations
    except LedgerError as e:
        fail(e.detail, code=1)
    finally:
        integrations.close()
        ledger.close()


def _id(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        fail(f"WEBHOOK_ID: not a webhook id: {value!r}")


@webhooks_app.command("list")
def list_webhooks() -> None:
    """Every webhook: status, URL, types, how far it was delivered."""
    with _integrations() as integrations:
        webhooks = integrations.webhooks.all()
    table = Table("webhook_id", "status", "url", "types", "delivered up to", "last error")
    for w in webhooks:
        table.add_row(
            str(w.webhook_id),
            w.status,
            w.url,
            ",".join(w.types),
            str(w.position),
            w.last_error or "",
        )
    Console(width=200).print(table)


@webhooks_app.command("deliveries")
def deliveries(
    webhook_id: str = typer.Argument(..., metavar="WEBHOOK_ID"),
    limit: int = typer.Option(
        50, min=1, max=10_000, help="The newest attempts, at most this many."
    ),
) -> None:
    """The delivery log of one webhook, newest first."""
    with _integrations() as integrations:
        attempts = integrations.webhooks.deliveries(_id(webhook_id), limit=limit)
    table = Table("seq", "position", "type", "at", "outcome", "status", "error", "next retry")
    for a in attempts:
        table.add_row(
            str(a.seq),
            str(a.position),
            a.type,
            a.at.isoformat(timespec="seconds"),
            a.outcome,
            "" if a.status_code is None else str(a.status_code),
            a.error or "",
            a.next_retry_at.isoformat(timespec="seconds") if a.next_retry_at else "",
        )
    Console(width=200).print(table)


@webhooks_app.command("replay")
def replay(
    webhook_id: str = typer.Argument(..., metavar="WEBHOOK_ID"),
    from_position: int = typer.Option(..., "--from", min=1, help="Send again from this position."),
) -> None:
    """Send every subscribed item again from POSITION on, in order (a
    webhook that gave up becomes active again)."""
    with _integrations() as integrations:
        webhook = integrations.webhooks.replay(_id(webhook_id), from_position)
    typer.echo(f"webhook {webhook.webhook_id}: delivering again from position {from_position}")
